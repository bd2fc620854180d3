//! The `lollipop` commands' work, beneath `main.rs`'s parsing and dispatch:
//! reading the block log, the report, the lists' status, checking a name,
//! and managing the status page's users from the console. The command line
//! sits on top: it may use every other module, and none uses it.

pub mod check;
pub mod cluster;
pub mod config_check;
pub mod lists;
pub mod log;
pub mod report;
pub mod status;
pub mod trust;
pub mod users;
