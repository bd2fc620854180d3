//! Which bank holidays file the calendar reads: the config's own when it
//! names one; else the list updater's renewed copy of GOV.UK's file, when
//! it reads for the school's nation; else the copy shipped with the lists.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::calendar::holidays;

use super::Config;
use super::calendar::CalendarConfig;

/// Where the shipped bank holidays are, under `lists_dir`.
pub const DEFAULT_BANK_HOLIDAYS: &str = "calendar/bank-holidays.json";
/// The renewed copy's name in the downloads directory.
pub const RENEWED_BANK_HOLIDAYS: &str = "bank-holidays.json";
/// GOV.UK's own file, which the shipped copy came from.
pub const GOV_UK_BANK_HOLIDAYS: &str = "https://www.gov.uk/bank-holidays.json";

/// Which of the three files is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolidaysSource {
    /// `[calendar] bank_holidays`: the technician's, never renewed.
    Configured,
    /// The list updater's copy from `bank_holidays_url`.
    Renewed,
    /// The copy shipped under `lists/calendar/`.
    Shipped,
}

impl HolidaysSource {
    pub fn words(self) -> &'static str {
        match self {
            HolidaysSource::Configured => "the config's own file",
            HolidaysSource::Renewed => "renewed by the list updater",
            HolidaysSource::Shipped => "shipped with the lists",
        }
    }
}

/// The file in force, where it came from, and what it holds for the
/// nation (or why it cannot be read).
pub struct HolidaysInForce {
    pub path: PathBuf,
    pub source: HolidaysSource,
    pub days: Result<BTreeMap<i64, String>, String>,
}

pub(super) fn default_bank_holidays_url() -> String {
    GOV_UK_BANK_HOLIDAYS.into()
}

/// The bank holidays of `nation` in the file at `path`.
pub fn read_holidays(
    path: &std::path::Path,
    nation: &str,
) -> Result<BTreeMap<i64, String>, String> {
    std::fs::read_to_string(path)
        .map_err(|error| error.to_string())
        .and_then(|text| holidays::parse(&text, nation))
}

impl Config {
    /// Where the list updater keeps its renewed copy.
    pub fn renewed_bank_holidays(&self) -> PathBuf {
        self.downloads_dir().join(RENEWED_BANK_HOLIDAYS)
    }

    /// The copy shipped with the lists.
    pub fn shipped_bank_holidays(&self) -> PathBuf {
        self.resolve_path(&self.server.lists_dir)
            .join(DEFAULT_BANK_HOLIDAYS)
    }

    /// The bank holidays file the calendar reads, read.
    pub fn bank_holidays_in_force(&self, calendar: &CalendarConfig) -> HolidaysInForce {
        let nation = calendar.nation.get_ref();
        if let Some(path) = &calendar.bank_holidays {
            let path = self.resolve_path(path);
            let days = read_holidays(&path, nation);
            return HolidaysInForce {
                path,
                source: HolidaysSource::Configured,
                days,
            };
        }
        let renewed = self.renewed_bank_holidays();
        if renewed.exists() {
            match read_holidays(&renewed, nation) {
                Ok(days) => {
                    return HolidaysInForce {
                        path: renewed,
                        source: HolidaysSource::Renewed,
                        days: Ok(days),
                    };
                }
                // The updater refuses such a file, so it was damaged or
                // the nation changed since: the shipped days still hold.
                Err(error) => tracing::warn!(
                    "{}: {error}; using the shipped bank holidays instead",
                    renewed.display()
                ),
            }
        }
        let path = self.shipped_bank_holidays();
        let days = read_holidays(&path, nation);
        HolidaysInForce {
            path,
            source: HolidaysSource::Shipped,
            days,
        }
    }
}
