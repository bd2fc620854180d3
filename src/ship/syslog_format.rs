//! Block events, alerts and audit entries as RFC 5424 syslog messages, each
//! framed by octet counting (RFC 6587 3.4.1) for TCP. The message ID is the
//! kind ("blocked", "alert", "audit") and the structured data element
//! `lollipop@32473` carries `box`, `kind` and `event`: together they name the
//! event uniquely, so a receiver can drop a message sent twice (shipping
//! over syslog is at least once). 32473 is the enterprise number RFC 5612
//! sets aside for examples; a trust routes on the SD-ID as written.

use std::fmt::Write;

use crate::clock::format_utc;
use crate::journal::{BlockedRow, ShipAlert, ShipAudit};

/// The SD-ID of Lollipop's structured data.
pub const SD_ID: &str = "lollipop@32473";
/// local0: the facility a trust's rsyslog can route on.
const FACILITY: u8 = 16;
const NOTICE: u8 = 5;
const WARNING: u8 = 4;
const INFO: u8 = 6;

/// What every message from this box shares.
#[derive(Clone, Debug)]
pub struct Origin {
    /// RFC 5424 HOSTNAME: printable ASCII, no spaces.
    pub hostname: String,
    pub box_id: String,
    pub school: String,
}

impl Origin {
    pub fn new(hostname: &str, box_id: &str, school: &str) -> Origin {
        let hostname: String = hostname
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        Origin {
            hostname: if hostname.is_empty() {
                "-".into()
            } else {
                hostname
            },
            box_id: box_id.into(),
            school: school.into(),
        }
    }
}

/// Appends one framed message: "LEN SP SYSLOG-MSG".
fn frame(out: &mut Vec<u8>, message: &str) {
    let _ = write!(ByteWriter(out), "{} {message}", message.len());
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped (RFC 5424 6.3.3) and control
/// characters replaced, so stored text cannot break the frame.
fn escape(value: &str, out: &mut String) {
    for c in value.chars().take(1024) {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, origin: &Origin, severity: u8, at_unix_ms: i64, kind: &str) {
    let stamp = format_utc(at_unix_ms);
    let stamp = stamp.trim_end_matches('Z');
    let millis = at_unix_ms.rem_euclid(1000);
    let _ = write!(
        out,
        "<{}>1 {stamp}.{millis:03}Z {} lollipop - {kind} [{SD_ID}",
        FACILITY * 8 + severity,
        origin.hostname
    );
}

fn param(out: &mut String, name: &str, value: Option<&str>) {
    let Some(value) = value else { return };
    let _ = write!(out, " {name}=\"");
    escape(value, out);
    out.push('"');
}

fn common(out: &mut String, origin: &Origin, kind: &str, event_id: i64) {
    param(out, "box", Some(&origin.box_id));
    param(out, "school", Some(&origin.school));
    param(out, "kind", Some(kind));
    param(out, "event", Some(&event_id.to_string()));
}

/// The text after the structured data, led by the UTF-8 BOM RFC 5424 asks
/// for, with control characters replaced.
fn text(out: &mut String, words: &str) {
    out.push_str("] \u{feff}");
    out.extend(words.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

pub fn blocked(out: &mut Vec<u8>, origin: &Origin, row: &BlockedRow) {
    let mut m = String::with_capacity(512);
    header(&mut m, origin, NOTICE, row.at_unix_ms, "blocked");
    common(&mut m, origin, "blocked", row.id);
    param(&mut m, "client", Some(&row.client_ip));
    param(&mut m, "device", row.device_name.as_deref());
    param(&mut m, "owner", row.owner.as_deref());
    param(&mut m, "room", row.room.as_deref());
    param(&mut m, "profile", Some(&row.profile));
    param(&mut m, "name", Some(&row.name));
    param(&mut m, "type", Some(&row.query_type));
    param(&mut m, "category", row.category.as_deref());
    param(&mut m, "list", row.list.as_deref());
    param(&mut m, "rule", row.rule.as_deref());
    param(&mut m, "count", Some(&row.count.to_string()));
    let who = row.device_name.as_deref().unwrap_or(&row.client_ip);
    let category = row.category.as_deref().unwrap_or("school list");
    text(
        &mut m,
        &format!(
            "{}: {who} was blocked from {} ({category})",
            origin.school, row.name
        ),
    );
    frame(out, &m);
}

pub fn alert(out: &mut Vec<u8>, origin: &Origin, row: &ShipAlert) {
    let mut m = String::with_capacity(384);
    header(&mut m, origin, WARNING, row.at_unix_ms, "alert");
    common(&mut m, origin, "alert", row.id);
    param(&mut m, "category", Some(&row.category));
    param(&mut m, "device", Some(&row.device));
    param(&mut m, "name", row.name.as_deref());
    param(&mut m, "channel", Some(&row.channel));
    param(&mut m, "outcome", Some(&row.outcome));
    text(
        &mut m,
        &format!(
            "{}: safeguarding alert ({}) about {} by {}: {}",
            origin.school, row.category, row.device, row.channel, row.outcome
        ),
    );
    frame(out, &m);
}

pub fn audit(out: &mut Vec<u8>, origin: &Origin, row: &ShipAudit) {
    let mut m = String::with_capacity(384);
    header(&mut m, origin, INFO, row.at_unix_ms, "audit");
    common(&mut m, origin, "audit", row.id);
    param(&mut m, "who", Some(&row.who));
    param(&mut m, "action", Some(&row.action));
    param(&mut m, "reason", row.reason.as_deref());
    text(
        &mut m,
        &format!(
            "{}: {} {}: {}",
            origin.school, row.who, row.action, row.detail
        ),
    );
    frame(out, &m);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> BlockedRow {
        BlockedRow {
            id: 42,
            at_unix_ms: 1_765_000_000_123,
            last_at_unix_ms: 1_765_000_000_123,
            count: 1,
            client_ip: "10.0.0.5".into(),
            device_name: Some("Year 6 \"iPad\" ]".into()),
            mac: None,
            owner: None,
            room: None,
            profile: "ks2".into(),
            listener: None,
            name: "bad.example".into(),
            query_type: "A".into(),
            category: Some("gambling".into()),
            list: None,
            rule: None,
            action: "null".into(),
            locked: false,
        }
    }

    #[test]
    fn a_block_is_one_octet_counted_rfc5424_message() {
        let origin = Origin::new("box one", "ab12", "Oak Primary");
        let mut out = Vec::new();
        blocked(&mut out, &origin, &row());
        let text = String::from_utf8(out).unwrap();
        let (length, message) = text.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), message.len());
        assert!(
            message.starts_with("<133>1 2025-12-06T05:46:40.123Z boxone lollipop - blocked [lollipop@32473 box=\"ab12\" school=\"Oak Primary\" kind=\"blocked\" event=\"42\""),
            "{message}"
        );
        assert!(
            message.contains(r#"device="Year 6 \"iPad\" \]""#),
            "{message}"
        );
        assert!(
            message.contains("] \u{feff}Oak Primary: Year 6"),
            "{message}"
        );
    }

    #[test]
    fn alerts_and_audit_entries_carry_their_own_kind_and_key() {
        let origin = Origin::new("", "ab12", "Oak Primary");
        let mut out = Vec::new();
        alert(
            &mut out,
            &origin,
            &ShipAlert {
                id: 7,
                at_unix_ms: 0,
                alert_id: 3,
                channel: "email".into(),
                outcome: "sent".into(),
                category: "self-harm".into(),
                device: "Y5-iPad-07".into(),
                name: None,
                events: 2,
            },
        );
        audit(
            &mut out,
            &origin,
            &ShipAudit {
                id: 9,
                at_unix_ms: 0,
                who: "head".into(),
                action: "allow".into(),
                detail: "line one\nline two".into(),
                reason: Some("lesson".into()),
            },
        );
        let text = String::from_utf8(out).unwrap();
        let (first_length, rest) = text.split_once(' ').unwrap();
        let length: usize = first_length.parse().unwrap();
        let (first, second) = rest.split_at(length);
        assert!(
            first.starts_with("<132>1 1970-01-01T00:00:00.000Z - lollipop - alert [lollipop@32473 box=\"ab12\" school=\"Oak Primary\" kind=\"alert\" event=\"7\""),
            "{first}"
        );
        assert!(
            !first.contains("name="),
            "a withheld name is left out: {first}"
        );
        let (second_length, second) = second.split_once(' ').unwrap();
        assert_eq!(second_length.parse::<usize>().unwrap(), second.len());
        assert!(second.starts_with("<134>1 "), "{second}");
        assert!(second.contains(" audit [lollipop@32473 box=\"ab12\" school=\"Oak Primary\" kind=\"audit\" event=\"9\""), "{second}");
        assert!(
            second.ends_with("head allow: line one line two"),
            "no line break inside a message: {second}"
        );
    }
}
