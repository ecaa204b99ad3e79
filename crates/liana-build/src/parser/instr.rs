//! Logical lines → instructions.

use std::collections::BTreeMap;
use std::time::Duration;

use super::lines::{Logical, RawHeredoc};
use super::{words, ParseError};

/// Shell or exec form of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `RUN echo hi`: run with the stage's SHELL.
    Shell(String),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<String>),
}

/// A heredoc as an instruction uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// Terminator word.
    pub name: String,
    /// Body (with its final newline).
    pub body: String,
    /// Variables are substituted in the body (unquoted terminator).
    pub expand: bool,
}

impl From<&RawHeredoc> for Heredoc {
    fn from(r: &RawHeredoc) -> Self {
        Heredoc {
            name: r.name.clone(),
            body: r.body.clone(),
            expand: !r.quoted,
        }
    }
}

/// `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// `type`: bind (default), cache, tmpfs, secret, ssh.
    pub kind: String,
    /// The other options (`target`, `source`, `from`, `id`, `readonly`, ...).
    pub options: BTreeMap<String, String>,
}

impl MountSpec {
    /// The mount target (`target`, `dst` or `destination`).
    pub fn target(&self) -> Option<&str> {
        ["target", "dst", "destination"]
            .iter()
            .find_map(|k| self.options.get(*k).map(String::as_str))
    }
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The command.
    pub cmd: Cmd,
    /// `--mount`s.
    pub mounts: Vec<MountSpec>,
    /// `--network`.
    pub network: Option<String>,
    /// Heredocs following the line.
    pub heredocs: Vec<Heredoc>,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// ADD rather than COPY.
    pub add: bool,
    /// Sources (raw words; `<<NAME` designates a heredoc).
    pub srcs: Vec<String>,
    /// Destination (raw word).
    pub dest: String,
    /// `--from`.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`: sources keep their path (below a `/./` pivot, if any) under the
    /// destination.
    pub parents: bool,
    /// `--checksum` (ADD of a URL).
    pub checksum: Option<String>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Heredocs following the line.
    pub heredocs: Vec<Heredoc>,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// Name.
    pub name: String,
    /// Default (raw word).
    pub default: Option<String>,
}

/// `HEALTHCHECK` options and test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// What an instruction is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `FROM [--platform=P] base [AS name]`.
    From {
        /// Base (raw).
        base: String,
        /// Stage name, lowercased.
        name: Option<String>,
        /// `--platform` (raw).
        platform: Option<String>,
    },
    /// `RUN`.
    Run(RunArgs),
    /// `COPY` / `ADD`.
    Copy(CopyArgs),
    /// `ENV k=v ...` (raw values).
    Env(Vec<(String, String)>),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `WORKDIR` (raw).
    Workdir(String),
    /// `USER` (raw).
    User(String),
    /// `EXPOSE` (raw words).
    Expose(Vec<String>),
    /// `VOLUME` (raw words).
    Volume(Vec<String>),
    /// `LABEL k=v ...` (raw values).
    Label(Vec<(String, String)>),
    /// `ENTRYPOINT`.
    Entrypoint(Cmd),
    /// `CMD`.
    Cmd(Cmd),
    /// `SHELL [...]`.
    Shell(Vec<String>),
    /// `STOPSIGNAL` (raw).
    StopSignal(String),
    /// `HEALTHCHECK` (None: `NONE`).
    Healthcheck(Option<Health>),
    /// `ONBUILD` with the trigger's text and parse.
    Onbuild(String, Box<Instruction>),
    /// `MAINTAINER` (deprecated: the config's author).
    Maintainer(String),
}

/// One instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Line number of its first line.
    pub line: usize,
    /// Its text (continuations joined).
    pub text: String,
    /// What it is.
    pub kind: Kind,
}

impl Instruction {
    /// The keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match &self.kind {
            Kind::From { .. } => "FROM",
            Kind::Run(_) => "RUN",
            Kind::Copy(c) if c.add => "ADD",
            Kind::Copy(_) => "COPY",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::Label(_) => "LABEL",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Cmd(_) => "CMD",
            Kind::Shell(_) => "SHELL",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(..) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Leading `--name[=value]` flags of `args`; returns them and the rest of the text.
fn take_flags(args: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while let Some(f) = rest.strip_prefix("--") {
        if f.is_empty() || f.starts_with(char::is_whitespace) {
            break;
        }
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        let (k, v) = match word.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (word.to_string(), None),
        };
        flags.push((k, v));
        rest = f[end..].trim_start();
    }
    (flags, rest)
}

fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn cmd_of(args: &str) -> Cmd {
    match json_array(args) {
        Some(v) => Cmd::Exec(v),
        None => Cmd::Shell(args.trim().to_string()),
    }
}

fn duration(line: usize, flag: &str, v: &str) -> Result<Duration, ParseError> {
    humantime::parse_duration(v)
        .map_err(|e| ParseError::new(line, format!("HEALTHCHECK --{flag}={v}: {e}")))
}

/// Key=value pairs (ENV, LABEL), with the legacy `KEY value` form when `legacy`.
fn pairs(
    line: usize,
    kw: &str,
    args: &str,
    escape: char,
) -> Result<Vec<(String, String)>, ParseError> {
    let ws = words::split(args, escape).map_err(|e| ParseError::new(line, format!("{kw}: {e}")))?;
    if ws.is_empty() {
        return Err(ParseError::new(
            line,
            format!("{kw} requires at least one argument"),
        ));
    }
    if !ws[0].contains('=') {
        // legacy `KEY value with spaces`
        let t = args.trim();
        let (k, v) = t
            .split_once(char::is_whitespace)
            .ok_or_else(|| ParseError::new(line, format!("{kw} {t}: must have two arguments")))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseError::new(
                line,
                format!("{kw}: {w:?} is not of the form key=value"),
            ));
        };
        let k = words::expand(k, None, escape).map_err(|e| ParseError::new(line, e))?;
        if k.is_empty() {
            return Err(ParseError::new(
                line,
                format!("{kw} names can not be blank"),
            ));
        }
        out.push((k, v.to_string()));
    }
    Ok(out)
}

fn mount_spec(line: usize, v: &str) -> Result<MountSpec, ParseError> {
    let mut kind = "bind".to_string();
    let mut options = BTreeMap::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (k, val) = part.split_once('=').unwrap_or((part, "true"));
        let k = k.trim().to_ascii_lowercase();
        if k == "type" {
            kind = val.to_string();
        } else {
            options.insert(k, val.to_string());
        }
    }
    if !matches!(kind.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
        return Err(ParseError::new(
            line,
            format!("RUN --mount: unknown mount type {kind:?}"),
        ));
    }
    let m = MountSpec { kind, options };
    if m.target().is_none() && !matches!(m.kind.as_str(), "secret" | "ssh") {
        return Err(ParseError::new(
            line,
            format!("RUN --mount={v}: a target is required"),
        ));
    }
    Ok(m)
}

fn unknown_flag(line: usize, kw: &str, f: &str) -> ParseError {
    ParseError::new(line, format!("{kw}: unknown flag --{f}"))
}

fn need_value(line: usize, kw: &str, k: &str, v: Option<String>) -> Result<String, ParseError> {
    v.ok_or_else(|| ParseError::new(line, format!("{kw}: flag --{k} needs a value")))
}

fn parse_copy(l: &Logical, add: bool, args: &str, esc: char) -> Result<CopyArgs, ParseError> {
    let kw = if add { "ADD" } else { "COPY" };
    let (flags, rest) = take_flags(args);
    let mut c = CopyArgs {
        add,
        srcs: Vec::new(),
        dest: String::new(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        checksum: None,
        exclude: Vec::new(),
        heredocs: l.heredocs.iter().map(Heredoc::from).collect(),
    };
    for (k, v) in flags {
        match k.as_str() {
            "from" if !add => c.from = Some(need_value(l.line, kw, &k, v)?),
            "chown" => c.chown = Some(need_value(l.line, kw, &k, v)?),
            "chmod" => c.chmod = Some(need_value(l.line, kw, &k, v)?),
            "link" => c.link = v.as_deref() != Some("false"),
            "exclude" => c.exclude.push(need_value(l.line, kw, &k, v)?),
            "checksum" if add => c.checksum = Some(need_value(l.line, kw, &k, v)?),
            "parents" => c.parents = v.as_deref() != Some("false"),
            "keep-git-dir" => {}
            _ => return Err(unknown_flag(l.line, kw, &k)),
        }
    }
    let mut ws = match json_array(rest) {
        Some(v) => v
            .into_iter()
            .map(|s| format!("'{}'", s.replace('\'', "'\\''")))
            .collect(),
        None => {
            words::split(rest, esc).map_err(|e| ParseError::new(l.line, format!("{kw}: {e}")))?
        }
    };
    if ws.len() < 2 {
        return Err(ParseError::new(
            l.line,
            format!("{kw} requires at least two arguments: source(s) and destination"),
        ));
    }
    c.dest = ws.pop().expect("two or more");
    c.srcs = ws;
    Ok(c)
}

fn parse_health(l: &Logical, args: &str) -> Result<Option<Health>, ParseError> {
    let (flags, rest) = take_flags(args);
    let mut words = rest.split_whitespace();
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    if first == "NONE" {
        if !flags.is_empty() || words.next().is_some() {
            return Err(ParseError::new(
                l.line,
                "HEALTHCHECK NONE takes no flags or arguments",
            ));
        }
        return Ok(None);
    }
    if first != "CMD" {
        return Err(ParseError::new(
            l.line,
            "HEALTHCHECK: expected NONE or CMD followed by a command",
        ));
    }
    let cmd = rest.trim_start()[3..].trim();
    if cmd.is_empty() {
        return Err(ParseError::new(l.line, "HEALTHCHECK CMD: missing command"));
    }
    let test = match cmd_of(cmd) {
        Cmd::Exec(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
        Cmd::Shell(s) => vec!["CMD-SHELL".into(), s],
    };
    let mut h = Health {
        test,
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    };
    for (k, v) in flags {
        let v = need_value(l.line, "HEALTHCHECK", &k, v)?;
        match k.as_str() {
            "interval" => h.interval = Some(duration(l.line, &k, &v)?),
            "timeout" => h.timeout = Some(duration(l.line, &k, &v)?),
            "start-period" => h.start_period = Some(duration(l.line, &k, &v)?),
            "start-interval" => h.start_interval = Some(duration(l.line, &k, &v)?),
            "retries" => {
                h.retries = Some(v.parse().map_err(|_| {
                    ParseError::new(l.line, format!("HEALTHCHECK --retries={v}: not a number"))
                })?)
            }
            _ => return Err(unknown_flag(l.line, "HEALTHCHECK", &k)),
        }
    }
    Ok(Some(h))
}

/// Parses one logical line.
pub fn parse_instruction(l: &Logical, esc: char) -> Result<Instruction, ParseError> {
    let text = l.text.trim();
    let (kw, args) = match text.split_once(char::is_whitespace) {
        Some((k, a)) => (k, a.trim()),
        None => (text, ""),
    };
    let upper = kw.to_ascii_uppercase();
    let line = l.line;
    let need_args = |what: &str| -> Result<(), ParseError> {
        if args.is_empty() {
            Err(ParseError::new(
                line,
                format!("{what} requires at least one argument"),
            ))
        } else {
            Ok(())
        }
    };
    let werr = |e: String| ParseError::new(line, format!("{upper}: {e}"));
    let kind = match upper.as_str() {
        "FROM" => {
            need_args("FROM")?;
            let (flags, rest) = take_flags(args);
            let mut platform = None;
            for (k, v) in flags {
                match k.as_str() {
                    "platform" => platform = Some(need_value(line, "FROM", &k, v)?),
                    _ => return Err(unknown_flag(line, "FROM", &k)),
                }
            }
            let ws: Vec<&str> = rest.split_whitespace().collect();
            match ws.as_slice() {
                [base] => Kind::From {
                    base: base.to_string(),
                    name: None,
                    platform,
                },
                [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let n = name.to_ascii_lowercase();
                    let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !ok {
                        return Err(ParseError::new(
                            line,
                            format!("FROM: invalid stage name {name:?}"),
                        ));
                    }
                    Kind::From {
                        base: base.to_string(),
                        name: Some(n),
                        platform,
                    }
                }
                _ => {
                    return Err(ParseError::new(
                        line,
                        "FROM requires either one argument, or three: FROM <image> [AS <name>]",
                    ))
                }
            }
        }
        "RUN" => {
            let (flags, rest) = take_flags(args);
            let mut r = RunArgs {
                cmd: cmd_of(rest),
                mounts: Vec::new(),
                network: None,
                heredocs: l.heredocs.iter().map(Heredoc::from).collect(),
            };
            for (k, v) in flags {
                match k.as_str() {
                    "mount" => r.mounts.push(mount_spec(line, &need_value(line, "RUN", &k, v)?)?),
                    "network" => {
                        let v = need_value(line, "RUN", &k, v)?;
                        if !matches!(v.as_str(), "none" | "host" | "default") {
                            return Err(ParseError::new(
                                line,
                                format!("RUN --network={v}: expected none, host or default"),
                            ));
                        }
                        r.network = Some(v)
                    }
                    "security" => {}
                    _ => return Err(unknown_flag(line, "RUN", &k)),
                }
            }
            if rest.is_empty() {
                return Err(ParseError::new(line, "RUN requires a command"));
            }
            Kind::Run(r)
        }
        "COPY" | "ADD" => Kind::Copy(parse_copy(l, upper == "ADD", args, esc)?),
        "ENV" => Kind::Env(pairs(line, "ENV", args, esc)?),
        "LABEL" => Kind::Label(pairs(line, "LABEL", args, esc)?),
        "ARG" => {
            need_args("ARG")?;
            let mut v = Vec::new();
            for w in words::split(args, esc).map_err(werr)? {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.clone(), None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(ParseError::new(line, format!("ARG: invalid name {name:?}")));
                }
                v.push(ArgDecl { name, default });
            }
            Kind::Arg(v)
        }
        "WORKDIR" => {
            need_args("WORKDIR")?;
            Kind::Workdir(args.to_string())
        }
        "USER" => {
            need_args("USER")?;
            Kind::User(args.to_string())
        }
        "STOPSIGNAL" => {
            need_args("STOPSIGNAL")?;
            Kind::StopSignal(args.to_string())
        }
        "MAINTAINER" => {
            need_args("MAINTAINER")?;
            Kind::Maintainer(args.to_string())
        }
        "EXPOSE" => {
            need_args("EXPOSE")?;
            Kind::Expose(words::split(args, esc).map_err(werr)?)
        }
        "VOLUME" => {
            need_args("VOLUME")?;
            Kind::Volume(match json_array(args) {
                Some(v) => v.into_iter().map(|s| format!("'{s}'")).collect(),
                None => words::split(args, esc).map_err(werr)?,
            })
        }
        "ENTRYPOINT" => {
            need_args("ENTRYPOINT")?;
            Kind::Entrypoint(cmd_of(args))
        }
        "CMD" => {
            need_args("CMD")?;
            Kind::Cmd(cmd_of(args))
        }
        "SHELL" => match json_array(args) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => {
                return Err(ParseError::new(
                    line,
                    "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]",
                ))
            }
        },
        "HEALTHCHECK" => Kind::Healthcheck(parse_health(l, args)?),
        "ONBUILD" => {
            need_args("ONBUILD")?;
            let inner = Logical {
                line,
                text: args.to_string(),
                heredocs: l.heredocs.clone(),
            };
            let ins = parse_instruction(&inner, esc)?;
            if matches!(
                ins.kind,
                Kind::Onbuild(..) | Kind::From { .. } | Kind::Maintainer(_)
            ) {
                return Err(ParseError::new(
                    line,
                    format!("{} isn't allowed as an ONBUILD trigger", ins.keyword()),
                ));
            }
            Kind::Onbuild(args.to_string(), Box::new(ins))
        }
        _ => {
            return Err(ParseError::new(
                line,
                format!("unknown instruction: {kw}"),
            ))
        }
    };
    Ok(Instruction {
        line,
        text: text.to_string(),
        kind,
    })
}
