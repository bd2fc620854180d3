//! Lollipop: a DNS filtering resolver for nurseries and primary schools.
//! Every lookup is answered against compiled category lists with an age
//! profile per VLAN; see `app::run` for how the parts are assembled and
//! `dns::pipeline::Pipeline::answer` for the path of one query.

pub mod admin;
pub mod admin_command;
pub mod alerts;
pub mod app;
pub mod config;
pub mod dns;
pub mod journal;
pub mod lists;
pub mod log_command;
pub mod metrics;
pub mod name;
pub mod policy;
pub mod reload;
pub mod report;
pub mod status;
pub mod updates;
pub mod web;
