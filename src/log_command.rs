//! The `lollipop log` command: the block log filtered by date range, device,
//! profile, category or name, printed as a table or as CSV.

use std::io::Write;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::journal::{JournalReader, LogFilter, TimeZone, days_from_civil, write_csv};

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
    let now_ms = crate::updates::now_unix() as i64 * 1000;
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
        "{:<19}  {:<22}  {:<8}  {:<16}  {:<40}  tries",
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
        let time = tz.format_local(row.at_unix_ms);
        writeln!(
            out,
            "{:<19}  {:<22}  {:<8}  {:<16}  {:<40}  {}",
            time.get(..19).unwrap_or(&time),
            device,
            row.profile,
            row.category.as_deref().unwrap_or("-"),
            row.name,
            row.count
        )?;
    }
    Ok(())
}

/// Midnight at the start of `day` (YYYY-MM-DD) in the school's time zone,
/// as Unix milliseconds.
pub fn start_of_day(day: &str, tz: TimeZone) -> Result<i64> {
    let parts: Vec<&str> = day.split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] => y
            .parse::<i64>()
            .ok()
            .zip(m.parse::<u32>().ok())
            .zip(d.parse::<u32>().ok())
            .map(|((y, m), d)| (y, m, d)),
        _ => None,
    };
    let Some((year, month, day_of_month)) =
        parsed.filter(|(_, m, d)| (1..=12).contains(m) && (1..=31).contains(d))
    else {
        bail!("'{day}' is not a date: write it as YYYY-MM-DD, e.g. 2026-11-23");
    };
    let midnight_utc = days_from_civil(year, month, day_of_month) * 86_400_000;
    // Local midnight is UTC midnight less the offset in force then.
    Ok(midnight_utc - i64::from(tz.offset_seconds(midnight_utc)) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_local_midnights() {
        assert_eq!(start_of_day("1970-01-01", TimeZone::Utc).expect("day"), 0);
        assert_eq!(
            start_of_day("2026-01-15", TimeZone::Utc).expect("day"),
            1_768_435_200_000
        );
        // In summer the school's midnight is 23:00 UTC the day before.
        assert_eq!(
            start_of_day("2026-07-01", TimeZone::EuropeLondon).expect("day"),
            start_of_day("2026-07-01", TimeZone::Utc).expect("day") - 3_600_000
        );
        assert_eq!(
            start_of_day("2026-12-01", TimeZone::EuropeLondon).expect("day"),
            start_of_day("2026-12-01", TimeZone::Utc).expect("day")
        );
        for bad in ["2026-13-01", "yesterday", "2026/01/01", "2026-01-32"] {
            assert!(start_of_day(bad, TimeZone::Utc).is_err(), "{bad}");
        }
    }
}
