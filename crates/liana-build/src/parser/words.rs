//! Words of instruction arguments, as docker's shell lexer treats them: splitting on
//! unquoted white space, then (at build time) quote removal and `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alternative}` (and the forms without `:`) substitution.
//! Single quotes are literal; in double quotes only `$` is special, and the escape
//! character escapes `"`, `$` and itself.

use std::collections::BTreeMap;

/// Splits `s` into words on unquoted white space; quotes and escapes are kept (they are
/// processed by [`expand`] later).
pub fn split(s: &str, escape: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote in {s:?}"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Variables visible to a word: build args and environment of the stage.
pub type Vars = BTreeMap<String, String>;

/// Removes quotes and escapes of `word` and substitutes variables from `vars` (none
/// when `vars` is `None`: `$` stays literal).
pub fn expand(word: &str, vars: Option<&Vars>, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => out.push(c),
            (Some('"'), '"') => quote = None,
            (Some('"'), e) if e == escape => match chars.get(i + 1) {
                Some(&n) if n == '"' || n == '$' || n == escape => {
                    out.push(n);
                    i += 1;
                }
                _ => out.push(c),
            },
            (None, '\'') | (None, '"') => quote = Some(c),
            (None, e) if e == escape => {
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            }
            (_, '$') if vars.is_some() => {
                let (s, used) = variable(&chars[i + 1..], vars.expect("checked"), escape)?;
                out.push_str(&s);
                i += used;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote in {word:?}"));
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A variable reference after `$`; returns its value and how many chars it used.
fn variable(rest: &[char], vars: &Vars, escape: char) -> Result<(String, usize), String> {
    match rest.first() {
        Some('{') => {
            let close = rest
                .iter()
                .position(|&c| c == '}')
                .ok_or_else(|| "missing '}' in variable reference".to_string())?;
            let inner: String = rest[1..close].iter().collect();
            let name_len = inner.chars().take_while(|&c| is_name_char(c)).count();
            let name = &inner[..name_len];
            if name.is_empty() {
                return Err(format!("bad substitution ${{{inner}}}"));
            }
            let op = &inner[name_len..];
            let val = vars.get(name);
            let s = if op.is_empty() {
                val.cloned().unwrap_or_default()
            } else {
                let (colon, op) = match op.strip_prefix(':') {
                    Some(o) => (true, o),
                    None => (false, op),
                };
                let set = match val {
                    Some(v) => !colon || !v.is_empty(),
                    None => false,
                };
                let word = |w: &str| expand(w, Some(vars), escape);
                match op.chars().next() {
                    Some('-') if set => val.cloned().unwrap_or_default(),
                    Some('-') => word(&op[1..])?,
                    Some('+') if set => word(&op[1..])?,
                    Some('+') => String::new(),
                    Some('?') if set => val.cloned().unwrap_or_default(),
                    Some('?') => return Err(format!("{name}: {}", &op[1..])),
                    _ => return Err(format!("unsupported modifier in ${{{inner}}}")),
                }
            };
            Ok((s, close + 1))
        }
        Some(&c) if is_name_char(c) && !c.is_ascii_digit() => {
            let n = rest.iter().take_while(|&&c| is_name_char(c)).count();
            let name: String = rest[..n].iter().collect();
            Ok((vars.get(&name).cloned().unwrap_or_default(), n))
        }
        _ => Ok(("$".into(), 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("E", ""), ("P", "/usr/bin")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn splitting() {
        assert_eq!(
            split(r#"a "b c" 'd e'  f\ g"#, '\\').unwrap(),
            ["a", "\"b c\"", "'d e'", "f\\ g"]
        );
        assert!(split("a 'b", '\\').is_err());
    }

    #[test]
    fn expansion() {
        let v = vars();
        let e = |s: &str| expand(s, Some(&v), '\\').unwrap();
        assert_eq!(e("$A"), "1");
        assert_eq!(e("${A}x"), "1x");
        assert_eq!(e("'$A'"), "$A");
        assert_eq!(e("\"$A b\""), "1 b");
        assert_eq!(e("\\$A"), "$A");
        assert_eq!(e("${E:-d}"), "d");
        assert_eq!(e("${E-d}"), "");
        assert_eq!(e("${X:-$P/x}"), "/usr/bin/x");
        assert_eq!(e("${A:+y}"), "y");
        assert_eq!(e("${X:+y}"), "");
        assert_eq!(e("a$"), "a$");
        assert_eq!(expand("$A", None, '\\').unwrap(), "$A");
        assert!(expand("${A", Some(&v), '\\').is_err());
    }
}
