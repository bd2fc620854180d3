//! Renewing the bank holidays with the lists: GOV.UK's bank-holidays.json,
//! weekly, into the downloads directory, where the calendar prefers it to
//! the copy shipped with the lists. A download that does not parse, lacks
//! the school's nation or lists far fewer days than the file in force is
//! refused, and the file in force stays.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::calendar::{date_words, holidays};
use crate::config::{Config, ListFormat, read_holidays};
use crate::lists::acquire::fetch::download_small;
use crate::lists::acquire::update::{FetchSpec, UpdateOutcome};

/// The name the renewal's state is kept under, beside the lists'.
pub const STATE_NAME: &str = "calendar-bank-holidays";
/// What `lists status` and the log call it.
pub const LABEL: &str = "Bank holidays";
/// GOV.UK adds a year's holidays at a time and a one-off holiday months
/// ahead: weekly is ample.
const CADENCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// GOV.UK's file is about 20 KiB.
const MAX_BYTES: u64 = 1024 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The schedule's view of the renewal, as for a list: `None` without a
/// calendar, when the config names its own file, or with no URL.
pub fn spec(config: &Config) -> Option<FetchSpec> {
    let calendar = config.calendar.as_ref()?;
    let url = calendar.bank_holidays_url.trim();
    if calendar.bank_holidays.is_some() || url.is_empty() {
        return None;
    }
    let mut spec = FetchSpec::new(STATE_NAME, vec![url.to_string()], ListFormat::Domains);
    spec.cadence = CADENCE;
    Some(spec)
}

/// Renews the bank holidays if the calendar reads GOV.UK's file and (with
/// `only_due`) the weekly check is due. Blocking. `None` when there was
/// nothing to do.
pub fn update_bank_holidays(
    config: &Config,
    only_due: bool,
    now: u64,
) -> Option<(String, UpdateOutcome)> {
    let spec = spec(config)?;
    super::renew_file(config, &spec, LABEL, only_due, now, |url| {
        renew(config, url)
    })
}

/// Downloads, checks and writes the file. The number of the nation's days
/// and whether the renewed copy changed.
fn renew(config: &Config, url: &str) -> Result<(u64, bool), String> {
    let calendar = config
        .calendar
        .as_ref()
        .ok_or_else(|| "no [calendar] in the config".to_string())?;
    let nation = calendar.nation.get_ref();
    let bytes = download_small(url, MAX_BYTES, DOWNLOAD_TIMEOUT)?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{url} is not UTF-8 text"))?;
    let in_force = config.bank_holidays_in_force(calendar);
    let days = acceptable(&text, nation, in_force.days.as_ref().ok())
        .map_err(|why| format!("{url}: {why}; the bank holidays in force are kept"))?;
    let path = config.renewed_bank_holidays();
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok((days.len() as u64, false));
    }
    super::write_atomically(&path, &text)?;
    // Read back as the calendar will, so a file it cannot use never stays.
    if let Err(error) = read_holidays(&path, nation) {
        let _ = std::fs::remove_file(&path);
        return Err(format!(
            "the renewed bank holidays do not read back: {error}"
        ));
    }
    tracing::info!(
        "{LABEL} renewed from {url}: {} days for {nation} in {}",
        days.len(),
        path.display()
    );
    Ok((days.len() as u64, true))
}

/// The days of `nation` in a downloaded file, unless it should be refused:
/// it is not GOV.UK's format, lacks the nation, or lists fewer than half
/// the days of the file in force (a truncated or emptied file, which would
/// silently turn bank holidays into school days).
pub fn acceptable(
    text: &str,
    nation: &str,
    in_force: Option<&BTreeMap<i64, String>>,
) -> Result<BTreeMap<i64, String>, String> {
    let days = holidays::parse(text, nation)?;
    if let Some(old) = in_force
        && days.len() * 2 < old.len()
    {
        return Err(format!(
            "it lists {} bank holidays for {nation} where the file in force lists {}: \
             refused as cut short",
            days.len(),
            old.len()
        ));
    }
    Ok(days)
}

/// "42 days, the last Monday 28 December 2026 (Boxing Day)".
pub fn summary(days: &BTreeMap<i64, String>) -> String {
    match days.iter().next_back() {
        Some((day, title)) => format!(
            "{} days, the last {} ({title})",
            days.len(),
            date_words(*day)
        ),
        None => "no days".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../lists/calendar/bank-holidays.json");

    #[test]
    fn a_whole_file_is_accepted_and_a_cut_or_foreign_one_refused() {
        let in_force = holidays::parse(SHIPPED, "scotland").expect("shipped");
        let days = acceptable(SHIPPED, "scotland", Some(&in_force)).expect("accepted");
        assert_eq!(days, in_force);
        assert!(acceptable("<html>", "scotland", Some(&in_force)).is_err());
        let no_scotland = r#"{"england-and-wales": {"division": "england-and-wales",
            "events": [{"title": "New Year's Day", "date": "2027-01-01"}]}}"#;
        let error = acceptable(no_scotland, "scotland", Some(&in_force)).unwrap_err();
        assert!(error.contains("no bank holidays for 'scotland'"), "{error}");
        let cut = r#"{"scotland": {"division": "scotland",
            "events": [{"title": "New Year's Day", "date": "2027-01-01"}]}}"#;
        let error = acceptable(cut, "scotland", Some(&in_force)).unwrap_err();
        assert!(error.contains("refused as cut short"), "{error}");
        // With nothing in force (the shipped copy unreadable), any whole
        // file for the nation is better than none.
        assert_eq!(acceptable(cut, "scotland", None).map(|d| d.len()), Ok(1));
    }
}
