//! A notice about the appliance itself (the block log was damaged and set
//! aside, the page's store was replaced): sent to the same people, over the
//! same channels and with the same retries as a safeguarding alert, but
//! about no child and no site.

use serde_json::{Value, json};

use super::message::{Alert, clean};
use super::time::{Civil, TimeZone};

/// Longest notice text kept: a paragraph, not a log.
const TEXT_MAX: usize = 2_000;

/// What the school is told, in words a head teacher uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// A short headline, e.g. "The block log was damaged and replaced".
    pub headline: String,
    /// What happened and what (if anything) to do.
    pub text: String,
    pub at_unix_ms: i64,
}

/// A notice ready to send: the school and time zone filled in.
#[derive(Debug, Clone)]
pub(crate) struct SystemNotice {
    pub id: u64,
    pub school: String,
    pub zone: TimeZone,
    pub notice: Notice,
}

impl SystemNotice {
    pub fn subject(&self) -> String {
        clean(&format!(
            "Lollipop notice for {}: {}",
            self.school, self.notice.headline
        ))
    }

    pub fn email_body(&self) -> String {
        let at = Civil::at(self.notice.at_unix_ms, self.zone);
        let mut text = clean_text(&self.notice.text);
        text.push_str(&format!(
            "\n\nSchool: {}\nWhen:   {}\n\nThis is a notice about the filtering appliance itself, not about a child.\n",
            self.school,
            at.long()
        ));
        text
    }

    /// The webhook body: `kind` says it is not a block alert, `text` lets
    /// chat webhooks show it unchanged.
    pub fn payload(&self) -> Value {
        let at = Civil::at(self.notice.at_unix_ms, self.zone);
        json!({
            "kind": "system",
            "alert_id": self.id,
            "school": self.school,
            "headline": clean(&self.notice.headline),
            "at_unix_ms": self.notice.at_unix_ms,
            "time_local": at.rfc3339(),
            "subject": self.subject(),
            "text": self.email_body(),
        })
    }
}

/// Keeps line breaks (the text is paragraphs) but no other control
/// characters, and caps the length.
fn clean_text(text: &str) -> String {
    text.lines()
        .map(clean)
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .take(TEXT_MAX)
        .collect()
}

/// One message to deliver: a safeguarding alert or a notice.
#[derive(Debug)]
pub(crate) enum Outgoing {
    // Boxed: an alert is several times the size of a notice.
    Block(Box<Alert>),
    Notice(SystemNotice),
}

impl Outgoing {
    pub fn id(&self) -> u64 {
        match self {
            Outgoing::Block(alert) => alert.id,
            Outgoing::Notice(notice) => notice.id,
        }
    }

    /// Who the delivery record names: the device, or the appliance.
    pub fn label(&self) -> String {
        match self {
            Outgoing::Block(alert) => alert.device.label.clone(),
            Outgoing::Notice(_) => "Lollipop".into(),
        }
    }

    pub fn category(&self) -> String {
        match self {
            Outgoing::Block(alert) => alert.category.clone(),
            Outgoing::Notice(_) => "system notice".into(),
        }
    }

    /// The first site a block alert names, unless withheld.
    pub fn first_name(&self) -> Option<String> {
        match self {
            Outgoing::Block(alert) => alert.attempts.first().and_then(|a| a.name.clone()),
            Outgoing::Notice(_) => None,
        }
    }

    pub fn events(&self) -> usize {
        match self {
            Outgoing::Block(alert) => alert.total_attempts(),
            Outgoing::Notice(_) => 0,
        }
    }

    pub fn subject(&self) -> String {
        match self {
            Outgoing::Block(alert) => alert.subject(),
            Outgoing::Notice(notice) => notice.subject(),
        }
    }

    pub fn email_body(&self) -> String {
        match self {
            Outgoing::Block(alert) => alert.email_body(),
            Outgoing::Notice(notice) => notice.email_body(),
        }
    }

    pub fn payload(&self) -> Value {
        match self {
            Outgoing::Block(alert) => super::json::payload(alert),
            Outgoing::Notice(notice) => notice.payload(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_says_it_is_about_the_appliance_and_keeps_no_control_characters() {
        let notice = SystemNotice {
            id: 7,
            school: "Oak Primary".into(),
            zone: TimeZone::Utc,
            notice: Notice {
                headline: "The block log was damaged\r\nBcc: x".into(),
                text: "It was set aside.\nA fresh log was started.\u{7}".into(),
                at_unix_ms: 1_749_895_200_000,
            },
        };
        let payload = notice.payload();
        assert_eq!(payload["kind"], "system");
        let subject = notice.subject();
        assert!(
            !subject.contains('\n') && !subject.contains('\r'),
            "{subject}"
        );
        let body = notice.email_body();
        assert!(
            body.contains("It was set aside.\nA fresh log was started."),
            "{body}"
        );
        assert!(!body.contains('\u{7}'));
        assert!(body.contains("not about a child"));
    }
}
