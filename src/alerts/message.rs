//! Composes one alert from one or more block events: decides what may be said
//! (withholding names from locked lists), and renders the plain-English email.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::Device;
use super::time::{Civil, TimeZone};
use crate::journal::BlockEvent;

/// Longest text taken from any one field. DNS names top out at 253; the rest
/// come from admin-entered device data, which should be short.
const FIELD_MAX: usize = 253;

/// The device as it will be described, already cleaned for display.
#[derive(Debug, Clone)]
pub(crate) struct DeviceView {
    /// The one phrase that names the device in a subject line.
    pub label: String,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub room: Option<String>,
    pub mac: Option<String>,
    pub ip: IpAddr,
}

/// One blocked lookup as it may be reported.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// `None` when the name came from a locked list and must not be repeated.
    pub name: Option<String>,
    pub list: Option<String>,
    /// The name rule that fired ("name rule: 'term'"), for a name-rule hit;
    /// a list entry is not repeated here.
    pub name_rule: Option<String>,
    pub query_type: String,
    pub at_unix_ms: i64,
}

/// Everything a channel needs to tell the safeguarding lead about one key's
/// events; immutable once composed so every channel says the same thing.
#[derive(Debug, Clone)]
pub(crate) struct Alert {
    pub id: u64,
    pub school: String,
    pub zone: TimeZone,
    pub device: DeviceView,
    pub profile: String,
    /// What people call the profile ("Key Stage 2"); the id when the
    /// alerter was told no name.
    pub profile_name: String,
    pub category: String,
    pub action: String,
    /// True when any attempt's name is withheld.
    pub locked: bool,
    pub attempts: Vec<Attempt>,
    /// Attempts counted but not itemised, so a flood cannot grow a message
    /// (or the memory holding it) without bound.
    pub unlisted: usize,
    /// True for the catch-up message sent when a rate window closes.
    pub folded: bool,
}

/// Strips control characters (no header or line injection from stored data)
/// and caps the length.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(FIELD_MAX)
        .collect::<String>()
        .trim()
        .to_string()
}

fn clean_opt(text: Option<&str>) -> Option<String> {
    text.map(clean).filter(|s| !s.is_empty())
}

/// The category an event alerts under. Locked events with no category still
/// alert, under a neutral word.
pub(crate) fn category_of(event: &BlockEvent) -> String {
    match event.category.as_deref().map(clean) {
        Some(c) if !c.is_empty() => c.to_lowercase(),
        _ => "restricted".to_string(),
    }
}

/// Names from a locked feed (IWF, CTIRU and the like) are safeguarding
/// material in their own right: repeating them in an email or a chat channel
/// would spread them. Withholding on `locked` alone covers licensed entries
/// (whose `rule` is None) and anything else the operator cannot unlock.
pub(crate) fn withheld(event: &BlockEvent) -> bool {
    event.locked
}

impl DeviceView {
    pub fn new(device: &Device, ip: IpAddr) -> DeviceView {
        let name = clean_opt(device.name.as_deref());
        let owner = clean_opt(device.owner.as_deref());
        let room = clean_opt(device.room.as_deref());
        let mac = clean_opt(device.mac.as_deref());
        let label = name
            .clone()
            .or_else(|| owner.as_ref().map(|o| format!("{o}'s device")))
            .or_else(|| mac.clone())
            .unwrap_or_else(|| ip.to_string());
        DeviceView {
            label,
            name,
            owner,
            room,
            mac,
            ip,
        }
    }
}

impl Attempt {
    pub fn new(event: &BlockEvent) -> Attempt {
        Attempt {
            name: (!withheld(event)).then(|| clean(&event.name)),
            list: clean_opt(event.list.as_deref()),
            name_rule: clean_opt(event.rule.as_deref())
                .filter(|_| event.list.as_deref() == Some(super::NAME_RULES_LIST)),
            query_type: clean(event.query_type),
            at_unix_ms: event.at_unix_ms,
        }
    }

    /// The site as it may be named: the real name, or which list it was on.
    pub fn site(&self, category: &str) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("a site on the {category} list"),
        }
    }
}

impl Alert {
    /// `events` is never empty: the task only composes for events it holds.
    /// The first event speaks for the device, profile and category, which are
    /// the same for every event under one rate-limit key.
    pub fn compose(
        id: u64,
        school: &str,
        zone: TimeZone,
        events: &[(BlockEvent, Device)],
        unlisted: usize,
        folded: bool,
    ) -> Option<Alert> {
        let (first, device) = events.first()?;
        Some(Alert {
            id,
            school: clean(school),
            zone,
            device: DeviceView::new(device, first.client),
            profile: clean(&first.profile),
            profile_name: clean(&first.profile),
            category: category_of(first),
            action: clean(first.action),
            locked: events.iter().any(|(e, _)| withheld(e)),
            attempts: events.iter().map(|(e, _)| Attempt::new(e)).collect(),
            unlisted,
            folded,
        })
    }

    pub fn total_attempts(&self) -> usize {
        self.attempts.len() + self.unlisted
    }

    pub fn local(&self, at_unix_ms: i64) -> Civil {
        Civil::at(at_unix_ms, self.zone)
    }

    pub fn utc(&self, at_unix_ms: i64) -> Civil {
        Civil::at(at_unix_ms, TimeZone::Utc)
    }

    pub fn subject(&self) -> String {
        if self.folded {
            let n = self.total_attempts();
            let noun = if n == 1 { "attempt" } else { "attempts" };
            format!(
                "Lollipop alert: {n} more {} {noun} blocked on {}",
                self.category, self.device.label
            )
        } else {
            format!(
                "Lollipop alert: {} site blocked on {}",
                self.category, self.device.label
            )
        }
    }

    /// The plain-text email body. Written for a busy DSL reading on a phone:
    /// what happened first, then who, then what to do.
    pub fn email_body(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = self.write_body(&mut out);
        out
    }

    fn write_body(&self, out: &mut String) -> std::fmt::Result {
        let Some(first) = self.attempts.first() else {
            return Ok(());
        };
        let d = &self.device;
        if self.folded {
            let n = self.total_attempts();
            // Lines stay short so the mail goes as plain 7-bit text that
            // every client shows as written.
            writeln!(
                out,
                "Lollipop blocked {n} more {} to reach {} sites",
                if n == 1 { "attempt" } else { "attempts" },
                self.category
            )?;
            writeln!(out, "from {} since the last alert:", d.label)?;
            writeln!(out)?;
            for a in &self.attempts {
                writeln!(
                    out,
                    "  {} ({})  {}",
                    self.local(a.at_unix_ms).clock(),
                    self.utc(a.at_unix_ms).clock(),
                    a.site(&self.category)
                )?;
            }
            if self.unlisted > 0 {
                writeln!(out, "  ...and {} more not listed here.", self.unlisted)?;
            }
            writeln!(
                out,
                "  (times are {}, then UTC)",
                self.local(first.at_unix_ms).abbrev
            )?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "Lollipop blocked a {} site on {}.",
                self.category, d.label
            )?;
            writeln!(out)?;
            writeln!(out, "Site:        {}", first.site(&self.category))?;
            if first.name.is_none() {
                writeln!(
                    out,
                    "             (name withheld: entries on this list are never sent on)"
                )?;
            }
            writeln!(out, "Lookup type: {}", first.query_type)?;
        }
        writeln!(out, "Category:    {}", self.category)?;
        if let Some(list) = &first.list {
            writeln!(out, "List:        {list}")?;
        }
        if let Some(rule) = &first.name_rule {
            writeln!(out, "Rule:        {rule} (a word in the site's name)")?;
        }
        writeln!(out, "Action:      {}", self.action)?;
        let when = if self.folded {
            self.attempts.last().unwrap_or(first).at_unix_ms
        } else {
            first.at_unix_ms
        };
        let label = if self.folded {
            "Latest:     "
        } else {
            "Time:       "
        };
        writeln!(out, "{label} {}", self.local(when).long())?;
        writeln!(out, "UTC:         {}", self.utc(when).short())?;
        writeln!(out)?;
        writeln!(
            out,
            "Device:      {}",
            d.name.as_deref().unwrap_or("(not named)")
        )?;
        if let Some(owner) = &d.owner {
            writeln!(out, "Owner:       {owner}")?;
        }
        if let Some(room) = &d.room {
            writeln!(out, "Room:        {room}")?;
        }
        if let Some(mac) = &d.mac {
            writeln!(out, "MAC:         {mac}")?;
        }
        writeln!(out, "IP address:  {}", d.ip)?;
        writeln!(out, "Profile:     {}", self.profile_name)?;
        writeln!(out)?;
        writeln!(out, "School:      {}", self.school)?;
        writeln!(out)?;
        writeln!(
            out,
            "Lollipop stopped the site loading; nothing else was done."
        )?;
        writeln!(out, "Please follow your school's safeguarding procedure.")?;
        writeln!(out)?;
        writeln!(
            out,
            "More attempts from this device in this category within the"
        )?;
        writeln!(out, "alert window are gathered into one follow-up message.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, locked: bool) -> BlockEvent {
        BlockEvent {
            at_unix_ms: 1_743_998_587_000, // 2025-04-07 04:03:07 UTC
            client: IpAddr::from([10, 0, 0, 7]),
            listener: None,
            profile: "pupils".into(),
            name: name.into(),
            query_type: "A",
            category: Some(if locked { "csam" } else { "self-harm" }.into()),
            list: Some(if locked { "iwf" } else { "curated" }.into()),
            rule: (!locked).then(|| name.to_string()),
            action: "blocked",
            locked,
        }
    }

    #[test]
    fn locked_names_never_reach_the_text() {
        let dev = Device {
            name: Some("Y5-iPad-07".into()),
            ..Device::default()
        };
        let events = vec![(event("bad.example", true), dev)];
        let alert = Alert::compose(1, "Oak School", TimeZone::EuropeLondon, &events, 0, false)
            .expect("one event composes one alert");
        let body = alert.email_body();
        assert!(!body.contains("bad.example"), "{body}");
        assert!(!alert.subject().contains("bad.example"));
        assert!(body.contains("a site on the csam list"));
        assert!(body.contains("05:03:07 BST"), "{body}");
    }

    #[test]
    fn control_characters_cannot_inject_lines() {
        let dev = Device {
            name: Some("iPad\r\nBcc: evil@example.org".into()),
            ..Device::default()
        };
        let events = vec![(event("x.example", false), dev)];
        let alert = Alert::compose(1, "Oak", TimeZone::Utc, &events, 0, false)
            .expect("one event composes one alert");
        assert!(!alert.subject().contains('\n'));
        assert!(!alert.subject().contains('\r'));
    }
}
