//! `liana-runtime`: parses flags, calls the library, maps errors to exit codes.

use clap::Parser;
use liana_oci_cli::Cli;

fn main() {
    let cli = Cli::parse();
    if cli.version {
        println!("liana-runtime version {}", env!("CARGO_PKG_VERSION"));
    }
}
