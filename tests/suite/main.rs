//! The end-to-end tests, in one binary with a module per area: the resolver
//! over real sockets against an upstream on loopback, the real `lollipop`
//! binary (CLI, reload, VLANs in network namespaces, list downloads), and
//! the status page through an HTTP client and headless chromium. `support`
//! holds what they share.
//!
//! The tests run side by side on the harness's threads, so none may change
//! what the whole process shares (environment, current directory) and each
//! takes its ports from the system or, where a port is fixed, is the only
//! one to use it.

mod answer_modes;
mod answers;
mod block_log;
mod browser;
mod central;
mod central_alerts_tls;
mod cli;
mod cluster;
mod crash;
mod damage;
mod fairness;
mod firstboot;
mod limits;
mod lists_update;
mod name_rules;
mod rebinding;
mod recursion;
mod reload;
mod reload_live;
mod repeats;
mod school_time;
mod school_time_clock;
mod school_time_holidays;
mod still_answering;
mod support;
mod trust_bundle;
mod trust_dashboard;
mod trust_e2e;
mod upstream;
mod vlans;
mod web;
mod zones;
