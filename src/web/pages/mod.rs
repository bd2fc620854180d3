//! The pages of the status page, one module per part of the site.

pub mod api;
pub mod blockpage;
pub mod check;
pub mod dashboard;
pub mod log;
pub mod metrics;
pub mod reports;
pub mod rules;
pub mod settings;
pub mod signin;
pub mod unlock;
pub mod users;
