//! The `[calendar]` table and each profile's `[[profiles.NAME.time_rules]]`:
//! their schema, their checks (each problem names the line and says what
//! to write instead), and the [`Calendar`] built from them, with the term
//! dates of an iCalendar file and the nation's bank holidays read in.
//!
//! A calendar that cannot be read completely is an error, never a partial
//! calendar: a missing INSET day or bank holiday would put a profile on the
//! wrong rules, and a reload keeps the running calendar instead.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::calendar::{
    self, Calendar, DayRange, EVERY_DAY, MONDAY_TO_FRIDAY, Period, WEEKDAY_NAMES, holidays,
};

use super::{Config, Problems};

/// The `when` of a time rule that means "not a term day".
pub const OUT_OF_TERM: &str = "out-of-term";

pub use super::bank_holidays::DEFAULT_BANK_HOLIDAYS;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Whose bank holidays: "england-and-wales", "scotland" or
    /// "northern-ireland".
    #[serde(default = "default_nation")]
    pub nation: Spanned<String>,
    /// GOV.UK's bank-holidays.json; default: the list updater's renewed
    /// copy, else `<lists_dir>/calendar/bank-holidays.json`.
    pub bank_holidays: Option<PathBuf>,
    /// Where the list updater renews the bank holidays weekly (GOV.UK's
    /// file); "" turns that off. Not used when `bank_holidays` names a
    /// file: that file is the technician's.
    #[serde(default = "super::bank_holidays::default_bank_holidays_url")]
    pub bank_holidays_url: String,
    /// An iCalendar file of term dates, INSET days and holidays (as the
    /// local authority publishes them), read as well as `terms`.
    pub term_dates: Option<Spanned<String>>,
    #[serde(default)]
    pub terms: Vec<DayRangeConfig>,
    /// Days inside terms the school is shut (half term, a polling day).
    #[serde(default)]
    pub closures: Vec<DayRangeConfig>,
    #[serde(default)]
    pub inset_days: Vec<Spanned<String>>,
    /// When the school day ends, for unlocks "for the rest of the day";
    /// default: the end of the day's last school period.
    pub school_day_ends: Option<Spanned<String>>,
    #[serde(default)]
    pub periods: Vec<PeriodConfig>,
}

fn default_nation() -> Spanned<String> {
    Spanned::new(0..0, "england-and-wales".into())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayRangeConfig {
    #[serde(default)]
    pub name: String,
    pub start: Spanned<String>,
    pub end: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    pub name: Spanned<String>,
    /// What the pages call it; default: the name with a capital.
    pub label: Option<String>,
    pub start: Spanned<String>,
    pub end: Spanned<String>,
    /// "mon".."sun"; default Monday to Friday (every day when not `school`).
    pub days: Option<Vec<Spanned<String>>>,
    /// Part of the school day (only on term days); false for an evening
    /// or a weekend that comes whatever the term.
    #[serde(default = "yes")]
    pub school: bool,
}

fn yes() -> bool {
    true
}

/// One `[[profiles.NAME.time_rules]]`: while `when` holds, the profile
/// blocks or allows more, or its devices get another profile's rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRuleConfig {
    /// A period's name, or "out-of-term".
    pub when: Spanned<String>,
    #[serde(default)]
    pub block_categories: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_categories: Vec<Spanned<String>>,
    #[serde(default)]
    pub block_services: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_services: Vec<Spanned<String>>,
    /// The profile whose rules this profile's devices get meanwhile.
    pub use_profile: Option<Spanned<String>>,
}

impl TimeRuleConfig {
    /// Whether the rule could let anything through that the profile blocks.
    pub fn loosens(&self) -> bool {
        !self.allow_categories.is_empty()
            || !self.allow_services.is_empty()
            || self.use_profile.is_some()
    }
}

impl Config {
    /// The files the calendar is read from (for the reload watcher).
    pub fn calendar_files(&self) -> Vec<PathBuf> {
        let Some(calendar) = &self.calendar else {
            return Vec::new();
        };
        // Both copies: the renewed one appearing changes which is in force.
        let mut files = match &calendar.bank_holidays {
            Some(path) => vec![self.resolve_path(path)],
            None => vec![self.renewed_bank_holidays(), self.shipped_bank_holidays()],
        };
        if let Some(ics) = &calendar.term_dates {
            files.push(self.resolve_path(std::path::Path::new(ics.get_ref())));
        }
        files
    }

    /// Checks the calendar and the time rules, and builds the calendar.
    pub(super) fn build_calendar(&self, problems: &mut Problems<'_>) -> Option<Arc<Calendar>> {
        let period_names: Vec<&str> = self
            .calendar
            .iter()
            .flat_map(|c| c.periods.iter().map(|p| p.name.get_ref().as_str()))
            .collect();
        self.validate_time_rules(&period_names, problems);
        let config = self.calendar.as_ref()?;
        let before = problems.found.len();
        let mut built = Calendar {
            time_zone: self.log.time_zone,
            ..Calendar::default()
        };
        self.read_periods(config, &mut built, problems);
        let day = |problems: &mut Problems<'_>, text: &Spanned<String>, key: String| {
            calendar::parse_date(text.get_ref())
                .map_err(|message| problems.at(&text.span(), key, message))
                .ok()
        };
        let ranges = [
            ("terms", &config.terms, &mut built.terms),
            ("closures", &config.closures, &mut built.closures),
        ];
        for (field, list, into) in ranges {
            for (i, range) in list.iter().enumerate() {
                let key = |end: &str| format!("calendar.{field}[{i}].{end}");
                let first = day(problems, &range.start, key("start"));
                let last = day(problems, &range.end, key("end"));
                if let (Some(first), Some(last)) = (first, last) {
                    if last < first {
                        problems.at(
                            &range.end.span(),
                            key("end"),
                            format!(
                                "ends ({}) before it starts ({}): swap them",
                                range.end.get_ref(),
                                range.start.get_ref()
                            ),
                        );
                    }
                    into.push(DayRange {
                        name: if range.name.is_empty() {
                            field.trim_end_matches('s').to_string()
                        } else {
                            range.name.clone()
                        },
                        first,
                        last,
                    });
                }
            }
        }
        for (i, text) in config.inset_days.iter().enumerate() {
            if let Some(d) = day(problems, text, format!("calendar.inset_days[{i}]")) {
                built.inset_days.insert(d, "INSET day".into());
            }
        }
        if let Some(ends) = &config.school_day_ends {
            match calendar::parse_hhmm(ends.get_ref()) {
                Ok(minutes) => built.school_day_ends = Some(minutes),
                Err(message) => {
                    problems.at(&ends.span(), "calendar.school_day_ends".into(), message)
                }
            }
        }
        if !config.terms.is_empty() {
            built.sources.push(format!(
                "{}: {} terms",
                self.origin.display_name,
                config.terms.len()
            ));
        }
        if let Some(ics) = &config.term_dates {
            self.import_term_dates(ics, &mut built, problems);
        }
        self.read_bank_holidays(config, &mut built, problems);
        (problems.found.len() == before).then(|| Arc::new(built))
    }

    fn read_periods(
        &self,
        config: &CalendarConfig,
        built: &mut Calendar,
        problems: &mut Problems<'_>,
    ) {
        for (i, period) in config.periods.iter().enumerate() {
            let key = |field: &str| format!("calendar.periods[{i}].{field}");
            let name = period.name.get_ref();
            if !is_period_name(name) {
                problems.at(
                    &period.name.span(),
                    key("name"),
                    format!(
                        "'{name}' is not a period name: use lower-case letters, digits and '-', e.g. \"lunch\" or \"after-school\""
                    ),
                );
            }
            if config.periods[..i].iter().any(|p| p.name.get_ref() == name) {
                problems.at(
                    &period.name.span(),
                    key("name"),
                    format!("two periods are named '{name}': names must be unique"),
                );
            }
            let time = |problems: &mut Problems<'_>, text: &Spanned<String>, field: &str| {
                calendar::parse_hhmm(text.get_ref())
                    .map_err(|message| problems.at(&text.span(), key(field), message))
                    .ok()
            };
            let start = time(problems, &period.start, "start");
            let end = time(problems, &period.end, "end");
            let mut days = 0;
            match &period.days {
                None if period.school => days = MONDAY_TO_FRIDAY,
                None => days = EVERY_DAY,
                Some(list) => {
                    for (j, d) in list.iter().enumerate() {
                        match WEEKDAY_NAMES
                            .iter()
                            .position(|w| d.get_ref().eq_ignore_ascii_case(w))
                        {
                            Some(bit) => days |= 1 << bit,
                            None => problems.at(
                                &d.span(),
                                format!("calendar.periods[{i}].days[{j}]"),
                                format!(
                                    "'{}' is not a day: use {}",
                                    d.get_ref(),
                                    WEEKDAY_NAMES.join(", ")
                                ),
                            ),
                        }
                    }
                }
            }
            if let (Some(start), Some(end)) = (start, end) {
                if start == end || (start == 0 && end == 24 * 60) {
                    problems.at(
                        &period.end.span(),
                        key("end"),
                        "a period must start and end at different times (one that runs past midnight ends earlier than it starts, e.g. 18:00 to 07:00)".into(),
                    );
                }
                let mut label = period.label.clone().unwrap_or_default();
                if label.is_empty() {
                    label = capitalised(&name.replace('-', " "));
                }
                built.periods.push(Period {
                    name: name.clone(),
                    label,
                    start,
                    end: end % (24 * 60),
                    days,
                    school: period.school,
                });
            }
        }
    }

    fn import_term_dates(
        &self,
        ics: &Spanned<String>,
        built: &mut Calendar,
        problems: &mut Problems<'_>,
    ) {
        let path = self.resolve_path(std::path::Path::new(ics.get_ref()));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                problems.at(
                    &ics.span(),
                    "calendar.term_dates".into(),
                    format!(
                        "cannot read {}: {error}; give the path of the local authority's .ics file (relative to this config file)",
                        path.display()
                    ),
                );
                return;
            }
        };
        match calendar::ics::parse(&text, self.log.time_zone) {
            Ok(imported) => {
                built.sources.push(format!(
                    "{}: {} terms, {} closures, {} INSET days{}",
                    ics.get_ref(),
                    imported.terms.len(),
                    imported.closures.len(),
                    imported.inset_days.len(),
                    if imported.not_understood.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; not understood, so ignored: {}",
                            imported.not_understood.join("; ")
                        )
                    }
                ));
                built.terms.extend(imported.terms);
                built.closures.extend(imported.closures);
                built.inset_days.extend(imported.inset_days);
            }
            Err(error) => problems.at(
                &ics.span(),
                "calendar.term_dates".into(),
                format!(
                    "{} {error}: mend the file or remove term_dates (the running calendar is kept)",
                    path.display()
                ),
            ),
        }
    }

    fn read_bank_holidays(
        &self,
        config: &CalendarConfig,
        built: &mut Calendar,
        problems: &mut Problems<'_>,
    ) {
        let nation = config.nation.get_ref();
        if !holidays::NATIONS.contains(&nation.as_str()) {
            problems.at(
                &config.nation.span(),
                "calendar.nation".into(),
                format!(
                    "'{nation}' is not a nation with its own bank holidays: use {}",
                    holidays::NATIONS.join(", ")
                ),
            );
            return;
        }
        let in_force = self.bank_holidays_in_force(config);
        let path = in_force.path;
        match in_force.days {
            Ok(days) => built.bank_holidays = days,
            Err(error) => problems.at(
                &config.nation.span(),
                "calendar.bank_holidays".into(),
                format!(
                    "{}: {error}; Lollipop ships this file under lists/calendar/ (set bank_holidays to another copy if it was moved)",
                    path.display()
                ),
            ),
        }
    }

    fn validate_time_rules(&self, period_names: &[&str], problems: &mut Problems<'_>) {
        for (name, profile) in &self.profiles {
            for (i, rule) in profile.time_rules.iter().enumerate() {
                let key = |field: &str| format!("profiles.{name}.time_rules[{i}].{field}");
                let when = rule.when.get_ref();
                if self.calendar.is_none() {
                    problems.at(
                        &rule.when.span(),
                        key("when"),
                        "time rules need a [calendar] with the day's periods (and term dates for out-of-term rules)".into(),
                    );
                } else if when != OUT_OF_TERM && !period_names.contains(&when.as_str()) {
                    problems.at(
                        &rule.when.span(),
                        key("when"),
                        format!(
                            "no period named '{when}': use \"{OUT_OF_TERM}\" or one of the [[calendar.periods]] ({})",
                            period_names.join(", ")
                        ),
                    );
                }
                if let Some(other) = &rule.use_profile {
                    if !self.profiles.contains_key(other.get_ref()) {
                        let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                        problems.at(
                            &other.span(),
                            key("use_profile"),
                            format!(
                                "no profile named '{}' (defined profiles: {})",
                                other.get_ref(),
                                known.join(", ")
                            ),
                        );
                    } else if other.get_ref() == name {
                        problems.at(
                            &other.span(),
                            key("use_profile"),
                            "a profile cannot move to itself: name another profile".into(),
                        );
                    }
                }
                self.check_rule_names(rule, &key, problems);
                let changes = rule.block_categories.len()
                    + rule.allow_categories.len()
                    + rule.block_services.len()
                    + rule.allow_services.len();
                if changes == 0 && rule.use_profile.is_none() {
                    problems.at(
                        &rule.when.span(),
                        key("when"),
                        "this rule changes nothing: add block_categories, allow_categories, block_services, allow_services or use_profile".into(),
                    );
                }
            }
        }
    }
}

impl Config {
    /// Every category and service a time rule names must exist, as in the
    /// profile itself: a misspelt block would silently block nothing.
    fn check_rule_names(
        &self,
        rule: &TimeRuleConfig,
        key: &dyn Fn(&str) -> String,
        problems: &mut Problems<'_>,
    ) {
        let categories = self.category_names();
        for (field, list) in [
            ("block_categories", &rule.block_categories),
            ("allow_categories", &rule.allow_categories),
        ] {
            for (j, category) in list.iter().enumerate() {
                let locked = self
                    .blocking
                    .locked_categories
                    .iter()
                    .any(|c| c.get_ref() == category.get_ref());
                if locked && field == "allow_categories" {
                    problems.at(
                        &category.span(),
                        format!("{}[{j}]", key(field)),
                        format!(
                            "'{}' is locked: no rule of time can allow it",
                            category.get_ref()
                        ),
                    );
                } else if !locked && !categories.iter().any(|c| c == category.get_ref()) {
                    problems.at(
                        &category.span(),
                        format!("{}[{j}]", key(field)),
                        format!(
                            "no list has category '{}' (categories with lists: {})",
                            category.get_ref(),
                            categories.join(", ")
                        ),
                    );
                }
            }
        }
        let catalogue = super::embedded_catalogue().ok();
        for (field, list) in [
            ("block_services", &rule.block_services),
            ("allow_services", &rule.allow_services),
        ] {
            for (j, service) in list.iter().enumerate() {
                if catalogue
                    .and_then(|c| c.service(service.get_ref()))
                    .is_none()
                {
                    let names: Vec<String> = catalogue
                        .map(|c| c.services.iter().map(|s| s.name.clone()).collect())
                        .unwrap_or_default();
                    problems.at(
                        &service.span(),
                        format!("{}[{j}]", key(field)),
                        format!(
                            "no service named '{}' (services: {})",
                            service.get_ref(),
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

fn is_period_name(name: &str) -> bool {
    !name.is_empty()
        && name != OUT_OF_TERM
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
