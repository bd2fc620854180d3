//! The `lollipop log` command: the block log filtered by date range, device,
//! profile, category or name, printed as a table or as CSV.

use std::io::Write;

use anyhow::{Context, Result, bail};

use crate::clock::start_of_day;
use crate::config::Config;
use crate::journal::{JournalReader, LogFilter, write_csv};

/// What the technician asked for on the command line.
#[derive(Debug, Default, Clone)]
pub struct LogRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    pub days: Option<u32>,
    pub device: Option<String>,
    pub profile: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub limit: u32,
    pub csv: bool,
}

pub fn run(config: &Config, request: &LogRequest, out: &mut impl Write) -> Result<()> {
    let path = config.journal_path();
    if !path.exists() {
        bail!(
            "no block log at {} yet: it is created when `lollipop run` starts",
            path.display()
        );
    }
    let tz = config.log.time_zone;
    let now_ms = crate::clock::now_unix_ms();
    let from = match (&request.from, request.days) {
        (Some(day), _) => Some(start_of_day(day, tz)?),
        (None, Some(days)) => Some(now_ms - i64::from(days) * 86_400_000),
        (None, None) => None,
    };
    let to = match &request.to {
        Some(day) => Some(tz.day_end(start_of_day(day, tz)?)),
        None => None,
    };
    let filter = LogFilter {
        from_unix_ms: from,
        to_unix_ms: to,
        device: request.device.clone(),
        client_ip: None,
        profile: request.profile.clone(),
        category: request.category.clone(),
        name_contains: request.name.clone(),
        limit: Some(request.limit),
        offset: 0,
        newest_first: !request.csv,
    };
    let reader = JournalReader::open(&path)
        .with_context(|| format!("cannot read the block log {}", path.display()))?;
    let rows = reader.query_blocked(&filter)?;
    if request.csv {
        write_csv(&rows, tz, &mut *out)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no blocked lookups match")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<19}  {:<22}  {:<18}  {:<18}  {:<40}  tries",
        format!("time ({})", tz.name()),
        "device",
        "profile",
        "category",
        "name",
    )?;
    for row in &rows {
        let device = row
            .device_name
            .clone()
            .unwrap_or_else(|| row.client_ip.clone());
        let time = crate::clock::people::when(tz, row.at_unix_ms);
        let category = row
            .category
            .as_deref()
            .map_or_else(|| "-".to_string(), crate::config::category_name);
        writeln!(
            out,
            "{:<19}  {:<22}  {:<18}  {:<18}  {:<40}  {}",
            time,
            device,
            config.profile_name(&row.profile),
            category,
            row.name,
            row.count
        )?;
    }
    Ok(())
}
