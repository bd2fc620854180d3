//! The dashboard's "School time" card: what the calendar says now ("Now:
//! Lunch until 13:15 (term day)"), each rule of time in force in words
//! ("YouTube open for Key stage 2 until 13:15"), the clock's trust, and
//! the term dates, INSET days and where they came from (the imported
//! iCalendar file among them).

use crate::calendar::{self, Calendar, DayKind};
use crate::config::Config;
use crate::config::calendar::TimeRuleConfig;
use crate::policy::time_rules::{TimeState, until_words};

pub struct Panel {
    pub now: String,
    pub rules: Vec<String>,
    pub warning: Option<String>,
    /// Terms, closures and INSET days from today on, as words.
    pub dates: Vec<String>,
    pub sources: Vec<String>,
}

/// The card, or None when the config has no `[calendar]`.
pub fn build(config: &Config, state: &TimeState) -> Option<Panel> {
    let calendar = config.school_calendar.as_deref()?;
    let periods = state.periods_now();
    let day = state.day_words().unwrap_or_default();
    let now = if periods.is_empty() {
        format!("Now: no period ({day})")
    } else {
        let words: Vec<String> = periods
            .iter()
            .map(|(label, ends)| format!("{label} {}", until_words(calendar, *ends)))
            .collect();
        format!("Now: {} ({day})", words.join(", "))
    };
    let mut rules = Vec::new();
    for time in &state.profiles {
        let Some(profile) = config.profiles.get(&time.name) else {
            continue;
        };
        let who = config.profile_name(&time.name);
        for in_force in &time.rules {
            let Some(rule) = profile.time_rules.get(in_force.index) else {
                continue;
            };
            let until = in_force
                .until
                .map(|at| format!(" {}", until_words(calendar, at)))
                .unwrap_or_default();
            rules.push(format!(
                "{} for {who}{until} ({})",
                changes(config, rule, state.trusted),
                in_force.label
            ));
        }
    }
    let warning = (!state.trusted).then(|| {
        "The clock is not set yet: every profile has its strictest rules of time and staff unlocks wait.".to_string()
    });
    Some(Panel {
        now,
        rules,
        warning: warning.or_else(|| dates_run_out(calendar, state.at)),
        dates: upcoming(calendar, calendar.day_of(state.at)),
        sources: calendar.sources.clone(),
    })
}

/// "YouTube and video open; chat closed", in the words a head teacher uses.
fn changes(config: &Config, rule: &TimeRuleConfig, trusted: bool) -> String {
    let catalogue = crate::config::embedded_catalogue().ok();
    let service = |name: &str| {
        catalogue
            .and_then(|c| c.service(name))
            .map(|s| s.display_name.clone())
            .unwrap_or_else(|| name.to_string())
    };
    let names = |categories: &[toml::Spanned<String>], services: &[toml::Spanned<String>]| {
        let mut all: Vec<String> = services.iter().map(|s| service(s.get_ref())).collect();
        all.extend(categories.iter().map(|c| c.get_ref().clone()));
        all.join(", ")
    };
    let mut parts = Vec::new();
    if let (true, Some(other)) = (trusted, &rule.use_profile) {
        parts.push(format!(
            "the rules of {}",
            config.profile_name(other.get_ref())
        ));
    }
    let opened = names(&rule.allow_categories, &rule.allow_services);
    if trusted && !opened.is_empty() {
        parts.push(format!("{opened} open"));
    }
    let closed = names(&rule.block_categories, &rule.block_services);
    if !closed.is_empty() {
        parts.push(format!("{closed} closed"));
    }
    let text = parts.join("; ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A warning when no term is left: every day would be out of term.
fn dates_run_out(calendar: &Calendar, at: i64) -> Option<String> {
    let today = calendar.day_of(at);
    match calendar.last_term_day() {
        Some(last) if last >= today => None,
        Some(last) => Some(format!(
            "The term dates end on {}: every day since is out of term. Add next year's dates (or import the local authority's .ics).",
            calendar::date_words(last)
        )),
        None => Some(
            "No term dates: every day is out of term. Add [[calendar.terms]] or term_dates (an .ics file).".into(),
        ),
    }
}

/// The terms, closures and INSET days that have not ended, first ten.
fn upcoming(calendar: &Calendar, today: i64) -> Vec<String> {
    let mut dated: Vec<(i64, String)> = Vec::new();
    for term in calendar.terms.iter().filter(|t| t.last >= today) {
        dated.push((
            term.first,
            format!(
                "{}: {} to {}",
                term.name,
                calendar::date_words(term.first),
                calendar::date_words(term.last)
            ),
        ));
    }
    for closure in calendar.closures.iter().filter(|c| c.last >= today) {
        dated.push((
            closure.first,
            format!(
                "{} (closed): {} to {}",
                closure.name,
                calendar::date_words(closure.first),
                calendar::date_words(closure.last)
            ),
        ));
    }
    for (day, name) in calendar.inset_days.range(today..) {
        let kind = DayKind::Inset.describe();
        dated.push((
            *day,
            format!("{}: {name} ({kind})", calendar::date_words(*day)),
        ));
    }
    dated.sort();
    dated.into_iter().take(12).map(|(_, text)| text).collect()
}
