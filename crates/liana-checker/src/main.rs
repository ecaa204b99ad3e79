//! Probe binary for tests.
fn main() {}
