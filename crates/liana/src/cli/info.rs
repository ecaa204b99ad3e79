//! `ps`, `inspect`, `top`, `stats`.

// Engine errors carry their context by design (see liana-engine); they are only
// passed through here.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::env::HostEnv;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table.
    Table,
    /// JSON.
    Json,
}

/// `ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Containers (or images).
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Container.
    pub container: String,
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one reading and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Containers (default: all running).
    pub containers: Vec<String>,
}

/// Prints aligned columns, docker's way (three spaces between columns).
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let n = header.len();
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain(std::iter::once(header[i].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == n {
                l.push_str(c);
            } else {
                l.push_str(&format!("{:<w$}   ", c, w = widths[i]));
            }
        }
        println!("{}", l.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `ps`.
pub fn ps(env: &HostEnv, a: PsArgs) -> anyhow::Result<()> {
    let rows = env.engine()?.ps(a.all)?;
    let id = |s: &str| {
        if a.no_trunc {
            s.to_string()
        } else {
            liana_engine::ids::short(s).to_string()
        }
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(&r.container.id));
        }
        return Ok(());
    }
    if a.format == Format::Json {
        let v: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                id(&r.container.id),
                r.container.image.clone(),
                r.command(),
                r.created(),
                r.status_text.clone(),
                r.ports(),
                r.container.name.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &table,
    );
    Ok(())
}

/// `inspect`: containers first, then images.
pub fn inspect(env: &HostEnv, a: InspectArgs) -> anyhow::Result<i32> {
    let e = env.engine()?;
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        match e.inspect(n) {
            Ok(v) => out.push(v),
            Err(liana_engine::Error::NoSuchContainer(_)) => match env.store()?.find(n) {
                Ok(rec) => {
                    let store = env.store()?;
                    out.push(serde_json::json!({
                        "Id": rec.id(),
                        "RepoTags": [rec.name],
                        "Digest": rec.manifest.digest().to_string(),
                        "Config": store.config(&rec)?.config(),
                    }));
                }
                Err(_) => {
                    eprintln!("Error: no such container or image: {n}");
                    code = 1;
                }
            },
            Err(err) => return Err(err.into()),
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(code)
}

/// `top`.
pub fn top(env: &HostEnv, a: TopArgs) -> anyhow::Result<()> {
    let rows = env.engine()?.top(&a.container)?;
    print_table(&liana_engine::top::HEADER, &rows);
    Ok(())
}

fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", U[i])
    }
}

/// `stats`.
pub fn stats(env: &HostEnv, a: StatsArgs) -> anyhow::Result<()> {
    let e = env.engine()?;
    let containers = if a.containers.is_empty() {
        e.ps(false)?
            .into_iter()
            .map(|r| r.container)
            .collect::<Vec<_>>()
    } else {
        a.containers
            .iter()
            .map(|n| e.lookup(n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut prev: Vec<Option<liana_engine::stats::Sample>> =
        containers.iter().map(|c| e.sample(c)).collect();
    loop {
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let now: Vec<Option<liana_engine::stats::Sample>> =
            containers.iter().map(|c| e.sample(c)).collect();
        if !a.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        println!(
            "{:<14}{:<24}{:<9}{:<24}{:<9}PIDS",
            "ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %"
        );
        for (p, n) in prev.iter().zip(&now) {
            let Some(n) = n else { continue };
            let cpu = match p {
                Some(p) => {
                    let dt = n.at.duration_since(p.at).as_nanos() as f64;
                    if dt > 0.0 {
                        n.cpu_ns.saturating_sub(p.cpu_ns) as f64 / dt * 100.0
                    } else {
                        0.0
                    }
                }
                None => 0.0,
            };
            let mem_pct = if n.mem_limit > 0 {
                n.mem_usage as f64 / n.mem_limit as f64 * 100.0
            } else {
                0.0
            };
            println!(
                "{:<14}{:<24}{:<9}{:<24}{:<9}{}",
                liana_engine::ids::short(&n.id),
                n.name,
                format!("{cpu:.2}%"),
                format!("{} / {}", bytes(n.mem_usage), bytes(n.mem_limit)),
                format!("{mem_pct:.2}%"),
                n.pids
            );
        }
        if a.no_stream {
            return Ok(());
        }
        prev = now;
    }
}
