//! `liana`: a daemonless container engine. This binary only parses flags, sets up
//! logging and calls one library function per verb (see `cli`).

mod cli;
mod progress;

fn main() {
    std::process::exit(cli::main());
}
