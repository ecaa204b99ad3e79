//! `liana`: a daemonless container engine. This binary only parses flags, sets up
//! logging and calls one library function per verb (see `cli`): image verbs go to
//! `liana-images`, container verbs to `liana-engine`.

mod cli;
mod progress;

fn main() {
    // Where the real binary is, before verbs that enter containers re-execute from a
    // sealed copy: monitors run `liana container cleanup` through it.
    if std::env::var_os("LIANA_EXE").is_none() {
        if let Ok(p) = std::fs::read_link("/proc/self/exe") {
            std::env::set_var("LIANA_EXE", p);
        }
    }
    std::process::exit(cli::main());
}
