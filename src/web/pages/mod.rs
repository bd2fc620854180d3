//! The pages of the status page, one module per part of the site.

pub mod api;
pub mod assessment;
pub mod blockca;
pub mod blockpage;
pub mod central_log;
pub mod check;
pub mod dashboard;
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod fuzz;
pub mod log;
pub mod metrics;
pub mod reports;
pub mod rules;
pub mod safeguarding_week;
pub mod school_time;
pub mod settings;
pub mod signin;
pub mod unlock;
pub mod users;
