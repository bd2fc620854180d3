//! The updater's tests serve their lists from the crate's test HTTP server.

pub use crate::testkit::http::{Reply, Server};
