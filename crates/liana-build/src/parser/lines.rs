//! Physical lines → logical lines: parser directives, comments, continuations, heredocs.

use super::{Directives, ParseError};

/// A heredoc body attached to a logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeredoc {
    /// The terminator word.
    pub name: String,
    /// `<<-`: leading tabs stripped.
    pub strip_tabs: bool,
    /// The terminator was quoted: no variable expansion in the body.
    pub quoted: bool,
    /// The body, lines joined with `\n`, with a final `\n`.
    pub body: String,
}

/// One logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logical {
    /// Line number of its first physical line.
    pub line: usize,
    /// The text, continuations joined.
    pub text: String,
    /// Heredocs that followed it.
    pub heredocs: Vec<RawHeredoc>,
}

fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?.trim();
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) among the words of `text`.
pub fn heredoc_markers(text: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        let Some(rest) = w.strip_prefix("<<") else {
            continue;
        };
        let (strip, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (quoted, name) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &rest[1..];
                match inner.find(q) {
                    Some(end) => (true, &inner[..end]),
                    None => continue,
                }
            }
            _ => {
                let n = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (false, &rest[..n])
            }
        };
        if !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            out.push((name.to_string(), strip, quoted));
        }
    }
    out
}

fn takes_heredocs(text: &str) -> bool {
    let kw = text.split_whitespace().next().unwrap_or("");
    ["RUN", "COPY", "ADD"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kw))
}

/// Splits `text` into directives and logical lines.
pub fn logical_lines(text: &str) -> Result<(Directives, Vec<Logical>), ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let phys: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut d = Directives::default();
    let mut i = 0;
    let mut seen = Vec::new();
    while i < phys.len() {
        let Some((k, v)) = directive(phys[i]) else {
            break;
        };
        if !matches!(k.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        if seen.contains(&k) {
            return Err(ParseError::new(
                i + 1,
                format!("parser directive {k} given twice"),
            ));
        }
        match k.as_str() {
            "escape" => {
                d.escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError::new(
                            i + 1,
                            format!("invalid escape character {v:?}: must be \\ or `"),
                        ))
                    }
                }
            }
            "syntax" => d.syntax = Some(v),
            _ => {}
        }
        seen.push(k);
        i += 1;
    }
    let esc = d.escape;
    let mut out = Vec::new();
    while i < phys.len() {
        let l = phys[i];
        if l.trim().is_empty() || is_comment(l) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut acc = String::new();
        loop {
            let l = phys[i];
            i += 1;
            if !acc.is_empty() && (is_comment(l) || l.trim().is_empty()) {
                if i >= phys.len() {
                    break;
                }
                continue;
            }
            let t = l.trim_end();
            match t.strip_suffix(esc) {
                Some(head) => {
                    acc.push_str(head);
                    if i >= phys.len() {
                        break;
                    }
                }
                None => {
                    acc.push_str(l);
                    break;
                }
            }
        }
        let mut heredocs = Vec::new();
        if takes_heredocs(&acc) {
            for (name, strip, quoted) in heredoc_markers(&acc) {
                let mut body = String::new();
                let mut closed = false;
                while i < phys.len() {
                    let l = phys[i];
                    i += 1;
                    let l = if strip { l.trim_start_matches('\t') } else { l };
                    if l == name {
                        closed = true;
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                if !closed {
                    return Err(ParseError::new(
                        start,
                        format!("unterminated heredoc <<{name}: no line {name:?} follows"),
                    ));
                }
                heredocs.push(RawHeredoc {
                    name,
                    strip_tabs: strip,
                    quoted,
                    body,
                });
            }
        }
        out.push(Logical {
            line: start,
            text: acc,
            heredocs,
        });
    }
    Ok((d, out))
}
