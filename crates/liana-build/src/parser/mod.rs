//! Dockerfile parsing: text → [`Dockerfile`] (global ARGs and stages of instructions,
//! each with its line number).
//!
//! Two passes: [`lines`] turns the text into logical lines (parser directives at the
//! top, comments dropped, line continuations joined, heredoc bodies attached), then
//! [`instr`] parses each logical line into an [`Instruction`]. Words are only split and
//! left quoted here: quote removal and variable substitution need the build's
//! arguments and environment and happen when a stage runs ([`words::expand`]).
//!
//! No existing crate fit: the Rust Dockerfile parsers on crates.io either lack
//! heredocs and directives or keep only a syntax tree without docker's word rules, so
//! this is a small hand-written parser following docker's reference.

pub mod instr;
pub mod lines;
pub mod words;

pub use instr::{ArgDecl, Cmd, CopyArgs, Health, Heredoc, Instruction, Kind, MountSpec, RunArgs};

/// A Dockerfile that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

/// Parser directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` (recorded, not acted upon: the frontend is built in).
    pub syntax: Option<String>,
    /// `# escape=` (`\` or `` ` ``).
    pub escape: char,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
        }
    }
}

/// One build stage: `FROM base [AS name]` and its instructions.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position among the stages.
    pub index: usize,
    /// `AS name` (lowercased).
    pub name: Option<String>,
    /// The base image (unexpanded: may use global ARGs), `scratch`, or a stage name.
    pub base: String,
    /// `--platform`.
    pub platform: Option<String>,
    /// Line of the FROM.
    pub line: usize,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// How messages name the stage.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => format!("stage {n}"),
            None => format!("stage {}", self.index),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// ARGs before the first FROM (usable in FROM lines).
    pub global_args: Vec<(usize, ArgDecl)>,
    /// The stages.
    pub stages: Vec<Stage>,
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let (directives, logical) = lines::logical_lines(text)?;
    let mut df = Dockerfile {
        directives,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for l in logical {
        let ins = instr::parse_instruction(&l, df.directives.escape)?;
        match ins.kind {
            Kind::From {
                base,
                name,
                platform,
            } => {
                if let Some(n) = &name {
                    if df.stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                        return Err(ParseError::new(
                            ins.line,
                            format!("duplicate stage name {n:?}"),
                        ));
                    }
                }
                df.stages.push(Stage {
                    index: df.stages.len(),
                    name,
                    base,
                    platform,
                    line: ins.line,
                    instructions: Vec::new(),
                })
            }
            Kind::Arg(ref decls) if df.stages.is_empty() => {
                for d in decls {
                    df.global_args.push((ins.line, d.clone()));
                }
            }
            _ => match df.stages.last_mut() {
                Some(s) => s.instructions.push(ins),
                None => {
                    return Err(ParseError::new(
                        ins.line,
                        format!(
                            "{} before the first FROM (only ARG may come before FROM)",
                            ins.keyword()
                        ),
                    ))
                }
            },
        }
    }
    if df.stages.is_empty() {
        return Err(ParseError::new(
            text.lines().count().max(1),
            "no FROM instruction: the Dockerfile has no build stage",
        ));
    }
    Ok(df)
}

#[cfg(test)]
mod tests;
