//! Image integration tests against real registries (Debian's docker-registry in four
//! modes) and real clients (skopeo), started by `tests/images/setup.sh`. One test
//! binary so that one set of servers serves every test; each test has its own storage
//! root. Needs root; skipped otherwise.

mod common;

mod archive;
mod auth_tls;
mod bad_input;
mod pull_push;
mod resume;
