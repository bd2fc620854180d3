//! Helpers for tests, shared by the unit tests inside the crate and the
//! integration suite in `tests/suite`.
//!
//! They are compiled into the library only for tests: `cfg(test)` for the
//! unit tests, and the `testkit` feature for the integration suite, which
//! turns it on through the package's dev-dependency on itself. Nothing here
//! reaches a release build. The alternative, `#[path]`-including the same
//! file from both places, would compile it twice and tie every user to the
//! file's place in the tree; a module of the library is found by its name
//! and compiled once.

pub mod http;
