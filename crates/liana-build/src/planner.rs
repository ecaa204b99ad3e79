//! Which stages a build runs: the target (`--target`, else the last stage) and,
//! transitively, the stages it needs (its FROM, `COPY --from`, `RUN --mount=from=`);
//! stages nothing needs are skipped. Stages are returned in dependency order; stages
//! only earlier ones can be referenced, so there are no cycles.

use crate::parser::words::{self, Vars};
use crate::parser::{Dockerfile, Kind};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An earlier stage.
    Stage(usize),
    /// An image reference (build args substituted).
    Image(String),
}

/// A planning error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--target` names no stage.
    #[error("--target {0}: no stage has that name")]
    NoTarget(String),
    /// A FROM line does not expand.
    #[error("Dockerfile:{line}: FROM {base}: {reason}")]
    Base {
        /// The FROM line.
        line: usize,
        /// As written.
        base: String,
        /// Why.
        reason: String,
    },
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Each stage's base (indexed like the Dockerfile's stages).
    pub bases: Vec<Base>,
    /// The stages to run, in order (the target last).
    pub order: Vec<usize>,
    /// The target stage.
    pub target: usize,
    /// For each stage, the stages it needs (its base, `--from`s, mounts).
    pub deps: Vec<Vec<usize>>,
}

/// The values of the global ARGs: defaults, overridden by `--build-arg`.
pub fn global_vars(df: &Dockerfile, build_args: &Vars) -> Result<Vars, PlanError> {
    let mut v = Vars::new();
    for (line, a) in &df.global_args {
        let val = match (build_args.get(&a.name), &a.default) {
            (Some(x), _) => Some(x.clone()),
            (None, Some(d)) => Some(words::expand(d, Some(&v), df.directives.escape).map_err(
                |reason| PlanError::Base {
                    line: *line,
                    base: format!("ARG {}", a.name),
                    reason,
                },
            )?),
            (None, None) => None,
        };
        if let Some(val) = val {
            v.insert(a.name.clone(), val);
        }
    }
    Ok(v)
}

/// Looks a stage up by name or index among the stages before `before`.
pub fn stage_ref(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    df.stages[..before.min(df.stages.len())]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
        .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
}

/// Plans the build of `target` (the last stage when `None`).
pub fn plan(df: &Dockerfile, target: Option<&str>, globals: &Vars) -> Result<Plan, PlanError> {
    let esc = df.directives.escape;
    let mut bases = Vec::new();
    for s in &df.stages {
        let b = words::expand(&s.base, Some(globals), esc).map_err(|reason| PlanError::Base {
            line: s.line,
            base: s.base.clone(),
            reason,
        })?;
        if b.is_empty() {
            return Err(PlanError::Base {
                line: s.line,
                base: s.base.clone(),
                reason: "the image name is empty after substituting build args".into(),
            });
        }
        bases.push(if b.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(i) = stage_ref(df, &b, s.index) {
            Base::Stage(i)
        } else {
            Base::Image(b)
        });
    }
    let target = match target {
        None => df.stages.len() - 1,
        Some(t) => {
            stage_ref(df, t, df.stages.len()).ok_or_else(|| PlanError::NoTarget(t.to_string()))?
        }
    };
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); df.stages.len()];
    for (i, s) in df.stages.iter().enumerate() {
        if let Base::Stage(b) = bases[i] {
            deps[i].push(b);
        }
        for ins in &s.instructions {
            let froms: Vec<String> = match &ins.kind {
                Kind::Copy(c) => c.from.iter().cloned().collect(),
                Kind::Run(r) => r
                    .mounts
                    .iter()
                    .filter_map(|m| m.options.get("from").cloned())
                    .collect(),
                _ => Vec::new(),
            };
            for f in froms {
                let f = words::expand(&f, Some(globals), esc).unwrap_or(f);
                if let Some(d) = stage_ref(df, &f, i) {
                    deps[i].push(d);
                }
            }
        }
    }
    let mut needed = vec![false; df.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if needed[i] {
            continue;
        }
        needed[i] = true;
        todo.extend(deps[i].iter().copied());
    }
    let order = (0..df.stages.len()).filter(|&i| needed[i]).collect();
    Ok(Plan {
        bases,
        order,
        target,
        deps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    #[test]
    fn target_pruning() {
        let df = parse(
            "ARG IMG=busybox\nFROM $IMG AS a\nFROM scratch AS unused\nFROM a AS b\nRUN true\n\
             FROM busybox AS c\nCOPY --from=b /x /x\nFROM busybox\nCOPY --from=0 /y /y\n",
        )
        .unwrap();
        let g = global_vars(&df, &Vars::new()).unwrap();
        let p = plan(&df, Some("c"), &g).unwrap();
        assert_eq!(p.order, [0, 2, 3]);
        assert_eq!(p.bases[0], Base::Image("busybox".into()));
        assert_eq!(p.bases[1], Base::Scratch);
        assert_eq!(p.bases[2], Base::Stage(0));
        let p = plan(&df, None, &g).unwrap();
        assert_eq!(p.order, [0, 4]);
        assert_eq!(
            plan(&df, Some("nope"), &g),
            Err(PlanError::NoTarget("nope".into()))
        );
        let mut ba = Vars::new();
        ba.insert("IMG".into(), "alpine".into());
        let g = global_vars(&df, &ba).unwrap();
        assert_eq!(
            plan(&df, None, &g).unwrap().bases[0],
            Base::Image("alpine".into())
        );
    }
}
