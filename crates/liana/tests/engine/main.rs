//! Engine integration tests: real containers from a real registry, as root and as the
//! unprivileged user `lianatest`, through the `liana` command line, with the built-in
//! runtime and with gVisor's runsc. Set-up in `tests/engine/setup.sh` (packages, test
//! user, then the image tests' registries). Needs root; skipped otherwise.

mod common;

mod cleanup;
mod concurrency;
mod rootless;
mod verbs;
mod walkthrough;
