//! The status page, as a browser without scripts and a monitoring script
//! see it: sign-in and roles, the reading pages, rules, overrides, users,
//! the JSON API, metrics, the block page and HTTPS.

mod alert_failing;
mod api;
mod auth;
mod blockpage;
mod blockpage_https;
mod check_vlans;
mod metrics;
mod names;
mod pages;
mod rules;
mod safeguarding;
mod staff_network;
mod tls;
mod unlock;
mod users;
