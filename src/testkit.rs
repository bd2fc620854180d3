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

pub mod faults {
    //! Faults a test can cause from outside: the resolver must survive them.

    /// The first label of a question that makes the pipeline panic, to show
    /// that a panic in one reader or task leaves the others answering.
    pub const PANIC_LABEL: &str = "lollipop-test-panic";

    /// Panics when `first_label` asks for it.
    pub fn panic_if_asked(first_label: &[u8]) {
        if first_label.eq_ignore_ascii_case(PANIC_LABEL.as_bytes()) {
            panic!("a test asked for a panic ({PANIC_LABEL})");
        }
    }
}
