//! The build context: a directory, minus what `.dockerignore` excludes, whose paths
//! cannot escape it (`..` and symlinks leading out are refused: every source is opened
//! with `openat2(RESOLVE_BENEATH)` from the context's directory fd).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// A `.dockerignore` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    exclude: bool,
    segs: Vec<String>,
}

/// The parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

pub(crate) fn clean_segments(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

impl Ignore {
    /// Parses `.dockerignore` text.
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (exclude, pat) = match l.strip_prefix('!') {
                Some(p) => (false, p.trim()),
                None => (true, l),
            };
            let segs = clean_segments(pat);
            if segs.is_empty() {
                continue;
            }
            rules.push(Rule { exclude, segs });
        }
        Ignore { rules }
    }

    /// Whether `rel` (relative to the context, `/`-separated) is excluded: the last rule
    /// matching it or one of its parents decides.
    pub fn excluded(&self, rel: &str) -> bool {
        let segs = clean_segments(rel);
        let mut out = false;
        for r in &self.rules {
            let hit = (1..=segs.len()).any(|n| match_segs(&r.segs, &segs[..n]));
            if hit {
                out = r.exclude;
            }
        }
        out
    }

    /// Whether some negation rule could re-include something under the excluded `rel`.
    pub fn may_reinclude_under(&self, rel: &str) -> bool {
        let segs = clean_segments(rel);
        self.rules.iter().any(|r| {
            !r.exclude
                && (r.segs.len() > segs.len() || r.segs.iter().any(|s| s == "**"))
                && r.segs
                    .iter()
                    .zip(&segs)
                    .all(|(p, s)| p == "**" || glob_match(p, s))
        })
    }
}

/// Matches path segments against pattern segments (`**` spans any number).
pub fn match_segs(pat: &[String], path: &[String]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => (0..=path.len()).any(|i| match_segs(&pat[1..], &path[i..])),
        Some(p) => match path.first() {
            Some(s) if glob_match(p, s) => match_segs(&pat[1..], &path[1..]),
            _ => false,
        },
    }
}

/// Go's `filepath.Match` for one segment: `*`, `?`, `[...]` (with `^`/`!` and ranges),
/// `\` escapes.
pub fn glob_match(pat: &str, s: &str) -> bool {
    fn rec(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len()).any(|i| rec(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && rec(&p[1..], &s[1..]),
            Some('[') => {
                let Some(c) = s.first() else { return false };
                let mut i = 1;
                let neg = matches!(p.get(1), Some('^') | Some('!'));
                if neg {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                while i < p.len() && (p[i] != ']' || first) {
                    first = false;
                    let lo = p[i];
                    if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&x| x != ']') {
                        if lo <= *c && *c <= p[i + 2] {
                            hit = true;
                        }
                        i += 3;
                    } else {
                        if lo == *c {
                            hit = true;
                        }
                        i += 1;
                    }
                }
                if i >= p.len() {
                    return false;
                }
                hit != neg && rec(&p[i + 1..], &s[1..])
            }
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && rec(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && rec(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    rec(&p, &s)
}

/// Whether a source has glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// An open build context.
#[derive(Debug)]
pub struct Context {
    dir: PathBuf,
    fd: OwnedFd,
    /// Its `.dockerignore`.
    pub ignore: Ignore,
}

/// A context problem.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context directory cannot be opened.
    #[error("build context {path}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A source leaves the context.
    #[error("{src}: refused: the path escapes the build context")]
    Escapes {
        /// The source as written.
        src: String,
    },
    /// A source is missing (or excluded by .dockerignore).
    #[error("{src}: no such file or directory in the build context{}", if *.ignored { " (excluded by .dockerignore)" } else { "" })]
    NotFound {
        /// The source as written.
        src: String,
        /// It exists but .dockerignore excludes it.
        ignored: bool,
    },
    /// Another I/O failure.
    #[error("{src}")]
    Io {
        /// The source.
        src: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl Context {
    /// Opens `dir` and reads its `.dockerignore` (or `ignore_file`).
    pub fn open(dir: &Path, ignore_file: Option<&Path>) -> Result<Self, ContextError> {
        let err = |source| ContextError::Open {
            path: dir.into(),
            source,
        };
        let dir = dir.canonicalize().map_err(err)?;
        let fd = rustix::fs::open(
            &dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(e.into()))?;
        let text = match ignore_file {
            Some(f) => std::fs::read_to_string(f).map_err(err)?,
            None => std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default(),
        };
        Ok(Context {
            dir,
            fd,
            ignore: Ignore::parse(&text),
        })
    }

    /// The context directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves `src` (as written in the Dockerfile, after expansion) to host paths of
    /// existing, not ignored entries with their context-relative names; globs expand.
    pub fn sources(&self, src: &str) -> Result<Vec<(PathBuf, String)>, ContextError> {
        let segs: Vec<&str> = src
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        let mut depth: i32 = 0;
        for s in &segs {
            depth += if *s == ".." { -1 } else { 1 };
            if depth < 0 {
                return Err(ContextError::Escapes { src: src.into() });
            }
        }
        let rel = clean_segments(src).join("/");
        if !has_glob(&rel) {
            let p = self.resolve(src, &rel)?;
            if !rel.is_empty() && self.ignore.excluded(&rel) {
                return Err(ContextError::NotFound {
                    src: src.into(),
                    ignored: true,
                });
            }
            return Ok(vec![(p, rel)]);
        }
        let pats: Vec<String> = rel.split('/').map(String::from).collect();
        let mut found = Vec::new();
        self.glob(&pats, String::new(), &mut found)
            .map_err(|source| ContextError::Io {
                src: src.into(),
                source,
            })?;
        found.sort();
        let mut out = Vec::new();
        for rel in found {
            out.push((self.resolve(src, &rel)?, rel));
        }
        if out.is_empty() {
            return Err(ContextError::NotFound {
                src: src.into(),
                ignored: false,
            });
        }
        Ok(out)
    }

    fn glob(&self, pats: &[String], prefix: String, out: &mut Vec<String>) -> io::Result<()> {
        let Some((first, rest)) = pats.split_first() else {
            return Ok(());
        };
        let dir = if prefix.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(&prefix)
        };
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            if !glob_match(first, &name) {
                continue;
            }
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if self.ignore.excluded(&rel) {
                continue;
            }
            if rest.is_empty() {
                out.push(rel);
            } else if e.file_type()?.is_dir() {
                self.glob(rest, rel, out)?;
            }
        }
        Ok(())
    }

    /// Opens `rel` beneath the context (following symlinks that stay inside) and returns
    /// the host path it designates.
    fn resolve(&self, src: &str, rel: &str) -> Result<PathBuf, ContextError> {
        let path = if rel.is_empty() { "." } else { rel };
        let fd = rustix::fs::openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| match e {
            rustix::io::Errno::XDEV => ContextError::Escapes { src: src.into() },
            rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => ContextError::NotFound {
                src: src.into(),
                ignored: false,
            },
            e => ContextError::Io {
                src: src.into(),
                source: e.into(),
            },
        })?;
        let real =
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|source| {
                ContextError::Io {
                    src: src.into(),
                    source,
                }
            })?;
        if !real.starts_with(&self.dir) {
            return Err(ContextError::Escapes { src: src.into() });
        }
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.rs"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
    }

    #[test]
    fn ignore_rules() {
        let i = Ignore::parse("# c\n*.log\n/build\n**/tmp\n!keep.log\nsecret/\n");
        assert!(i.excluded("a.log"));
        assert!(!i.excluded("keep.log"));
        assert!(!i.excluded("sub/a.log"));
        assert!(i.excluded("build/x/y"));
        assert!(i.excluded("x/y/tmp/z"));
        assert!(i.excluded("secret/key"));
        assert!(!i.excluded("src/main.rs"));
    }

    #[test]
    fn escapes_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(d.path().join("outside"), "x").unwrap();
        std::fs::write(ctx.join("in"), "y").unwrap();
        std::os::unix::fs::symlink("../outside", ctx.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("in", ctx.join("ok")).unwrap();
        let c = Context::open(&ctx, None).unwrap();
        assert!(matches!(
            c.sources("../outside"),
            Err(ContextError::Escapes { .. })
        ));
        assert!(matches!(
            c.sources("link"),
            Err(ContextError::Escapes { .. })
        ));
        assert!(matches!(
            c.sources("abs"),
            Err(ContextError::Escapes { .. })
        ));
        assert!(matches!(
            c.sources("missing"),
            Err(ContextError::NotFound { .. })
        ));
        assert_eq!(
            c.sources("ok").unwrap()[0].0,
            ctx.canonicalize().unwrap().join("in")
        );
        assert_eq!(c.sources("i*").unwrap().len(), 1);
    }
}
