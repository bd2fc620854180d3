//! `lollipop report`: the filtering report for a range of days, printed,
//! written to a file, or emailed to the `[alerts.email]` recipients.

use std::path::PathBuf;

use anyhow::Result;

use crate::clock::{now_unix_ms, start_of_day};
use crate::config::Config;

/// What the technician asked for on the command line.
#[derive(Debug, Default, Clone)]
pub struct ReportRequest {
    /// First day, YYYY-MM-DD (default: seven days before `to`).
    pub from: Option<String>,
    /// Last day, inclusive (default: up to now).
    pub to: Option<String>,
    /// Write here instead of to standard output.
    pub out: Option<PathBuf>,
    /// Plain text instead of HTML.
    pub text: bool,
    /// Email it instead.
    pub email: bool,
}

pub fn run(config: &Config, request: &ReportRequest) -> Result<()> {
    let tz = config.log.time_zone;
    let now_ms = now_unix_ms();
    let to_ms = match &request.to {
        Some(day) => tz.day_end(start_of_day(day, tz)?),
        None => now_ms,
    };
    let from_ms = match &request.from {
        Some(day) => start_of_day(day, tz)?,
        None => to_ms - 7 * 86_400_000,
    };
    if request.email {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(crate::report::email_report(config, from_ms, to_ms))?;
        println!("report sent");
        return Ok(());
    }
    let report = crate::report::build(config, from_ms, to_ms)?;
    let body = if request.text {
        report.to_text()
    } else {
        report.to_html()
    };
    match &request.out {
        Some(path) => std::fs::write(path, body)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
        None => print!("{body}"),
    }
    Ok(())
}
