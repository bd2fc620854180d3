//! Lollipop: a DNS filtering resolver for nurseries and primary schools.
//! Every lookup is answered against compiled category lists with an age
//! profile per VLAN; see `service::start` for how the parts are assembled,
//! `service::settings` for what they are built from, and
//! `dns::pipeline::Pipeline::answer` for the path of one query.
//!
//! The layers run one way (the `layers` test below keeps them so): `cli`
//! on top, then the running `service` (start-up, reload, schedules), the
//! status page (`web`), `report`, `updates`, the HA pair (`cluster`) and
//! the central log's shippers (`ship`), the resolver (`dns`),
//! `metrics`, `admin`, `policy`, `config` and `lists`, `alerts`, the block
//! log (`journal`), and `clock` at the bottom.

pub mod admin;
pub mod alerts;
pub mod assessment;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod fleet;
pub mod journal;
pub mod lists;
pub mod metrics;
pub mod name;
pub mod policy;
pub mod report;
pub mod service;
pub mod ship;
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;
pub mod updates;
pub mod web;

#[cfg(test)]
mod layers;
