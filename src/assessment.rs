//! The filtering self-assessment: the DfE "Filtering and monitoring
//! standards" and the UK Safer Internet Centre's "appropriate filtering"
//! checklist, walked line by line against the running config, the lists'
//! health and the records, each line green, amber or red with the reason,
//! or marked as not possible at DNS level where that is the honest answer.
//! The page, its print view and the copy kept with each annual review all
//! render this one account.

use std::fmt::Write;

use crate::config::{Audience, Config, ProfileMode};
use crate::lists::acquire::health::ListHealth;
use crate::report::escape;

/// The editions followed, so a reader can check them.
pub const EDITIONS: &[&str] = &[
    "Department for Education, \"Filtering and monitoring standards for schools and colleges\" (March 2023, updated October 2024)",
    "UK Safer Internet Centre, \"Appropriate filtering for education settings\" (2024)",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Met,
    Partly,
    NotMet,
    /// Cannot be done by a DNS filter: another part of the school's
    /// provision must cover it.
    NotAtDnsLevel,
}

impl Status {
    /// The word the page shows, and its colour class.
    pub fn word(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Partly => "partly met",
            Status::NotMet => "not met",
            Status::NotAtDnsLevel => "not possible at DNS level",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Status::Met => "ok",
            Status::Partly => "warn",
            Status::NotMet => "bad",
            Status::NotAtDnsLevel => "info",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Line {
    pub requirement: &'static str,
    pub status: Status,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub title: &'static str,
    pub lines: Vec<Line>,
}

/// What the assessment reads besides the config.
pub struct Evidence<'a> {
    pub lists: &'a [ListHealth],
    /// The date of the last recorded annual review, `YYYY-MM-DD`.
    pub last_review: Option<String>,
    /// Today, `YYYY-MM-DD`.
    pub today: String,
}

/// The UKSIC checklist's inappropriate-content categories, with the
/// category that covers each here.
const CONTENT: &[(&str, &str)] = &[
    ("Discrimination", "discrimination"),
    ("Drugs and substance abuse", "drugs"),
    ("Extremism", "extremism"),
    ("Gambling", "gambling"),
    ("Malware and hacking", "malware"),
    ("Misinformation", "misinformation"),
    ("Piracy and copyright theft", "piracy"),
    ("Pornography", "pornography"),
    ("Self-harm", "self-harm"),
    ("Violence", "violence"),
];

pub fn assess(config: &Config, evidence: &Evidence<'_>) -> Vec<Section> {
    let entries = |category: &str| -> u64 {
        evidence
            .lists
            .iter()
            .filter(|list| list.category == category)
            .map(ListHealth::entries)
            .sum()
    };
    let locked = |category: &str| {
        config
            .blocking
            .locked_categories
            .iter()
            .any(|name| name.get_ref() == category)
    };
    let children: Vec<(&String, &crate::config::ProfileConfig)> = config
        .profiles
        .iter()
        .filter(|(_, profile)| profile.audience == Audience::Children)
        .collect();
    // A walled garden blocks everything not approved, whatever the category.
    let blocks = |profile: &crate::config::ProfileConfig, category: &str| {
        profile.mode == ProfileMode::Allowlist
            || profile
                .block_categories
                .iter()
                .any(|name| name.get_ref() == category)
    };

    let illegal = |name: &str, category: &str, feed: &str| -> Line {
        let held = entries(category);
        let (status, reason) = match (locked(category), held) {
            (true, n) if n > 0 => (
                Status::Met,
                format!(
                    "the {name} list is in force ({n} entries) for everyone and cannot be turned off"
                ),
            ),
            (true, _) => (
                Status::NotMet,
                format!("the {name} category is locked but has no list: {feed} must supply it"),
            ),
            (false, _) => (
                Status::NotMet,
                format!("the {name} category is not locked, so it could be turned off"),
            ),
        };
        Line {
            requirement: if category == "iwf" {
                "Child sexual abuse content blocked (IWF list), and it cannot be disabled"
            } else {
                "Unlawful terrorist content blocked (CTIRU list), and it cannot be disabled"
            },
            status,
            reason,
        }
    };

    let mut sections = vec![Section {
        title: "Illegal content",
        lines: vec![
            illegal(
                "IWF",
                "iwf",
                "the school's connectivity provider or a filtering supplier who is an IWF member",
            ),
            illegal(
                "CTIRU",
                "ctiru",
                "the school's connectivity provider or a filtering supplier who holds it",
            ),
            Line {
                requirement: "IWF entries for single pages (web addresses), not whole sites",
                status: Status::NotAtDnsLevel,
                reason: "a DNS filter sees only site names; page-level entries need a web filter or the provider's".into(),
            },
        ],
    }];

    let content = CONTENT
        .iter()
        .map(|&(label, category)| {
            let blocked_in = children.iter().filter(|(_, p)| blocks(p, category)).count();
            let held = entries(category);
            let (status, reason) = if children.is_empty() {
                (Status::NotMet, "no profile is for children".to_string())
            } else if blocked_in == children.len() && held > 0 {
                (
                    Status::Met,
                    format!("blocked for every children's profile ({held} sites listed)"),
                )
            } else if blocked_in == children.len() {
                (
                    Status::Partly,
                    "blocked for every children's profile, but no list supplies any sites for it"
                        .to_string(),
                )
            } else if blocked_in > 0 {
                (
                    Status::Partly,
                    format!(
                        "blocked for {blocked_in} of {} children's profiles",
                        children.len()
                    ),
                )
            } else {
                (
                    Status::NotMet,
                    "not blocked for any children's profile".to_string(),
                )
            };
            Line {
                requirement: label,
                status,
                reason,
            }
        })
        .collect();
    sections.push(Section {
        title: "Inappropriate content",
        lines: content,
    });

    let mut features = Vec::new();
    let staff = config.profiles.len() - children.len();
    features.push(Line {
        requirement: "Filtering suited to age and role",
        status: match (children.len(), staff) {
            (0, _) | (_, 0) => Status::Partly,
            _ if config.profiles.len() >= 3 => Status::Met,
            _ => Status::Partly,
        },
        reason: format!(
            "{} profiles: {} for children, {staff} for staff",
            config.profiles.len(),
            children.len()
        ),
    });
    let circumvention = &config.circumvention;
    let bypass_blocked = !children.is_empty() && children.iter().all(|(_, p)| blocks(p, "bypass"));
    let tricks_on = circumvention.doh_canary && circumvention.private_relay && circumvention.ddr;
    features.push(Line {
        requirement: "Circumvention (VPNs, proxies, encrypted DNS) prevented",
        status: match (tricks_on, bypass_blocked) {
            (true, true) => Status::Met,
            (false, false) => Status::NotMet,
            _ => Status::Partly,
        },
        reason: format!(
            "browsers' and Apple's encrypted DNS {}; VPN and proxy sites {}",
            if tricks_on {
                "kept on the school's DNS"
            } else {
                "not all prevented"
            },
            if bypass_blocked {
                "blocked for children"
            } else {
                "not blocked for every children's profile"
            }
        ),
    });
    let safe_search_everywhere =
        !children.is_empty() && children.iter().all(|(_, p)| p.safe_search);
    features.push(Line {
        requirement: "Safe search enforced",
        status: if safe_search_everywhere { Status::Met } else { Status::Partly },
        reason: if safe_search_everywhere {
            "Google, Bing, YouTube and the other search engines are forced to safe search for children".into()
        } else {
            "safe search is off for at least one children's profile".into()
        },
    });
    features.push(Line {
        requirement: "Search terms and page content filtered",
        status: Status::NotAtDnsLevel,
        reason: "a DNS filter never sees what is typed or shown on a page; monitoring software on devices covers this".into(),
    });
    let alerts = config.alerts.email.is_some() || config.alerts.webhook.is_some();
    features.push(Line {
        requirement: "The safeguarding lead is alerted to serious attempts",
        status: if alerts { Status::Met } else { Status::NotMet },
        reason: if alerts {
            format!(
                "alerts for {} go by {}",
                config.alerting_categories().join(", "),
                if config.alerts.email.is_some() {
                    "email"
                } else {
                    "webhook"
                }
            )
        } else {
            "no alert email or webhook is set up".into()
        },
    });
    let named = config.devices.len();
    features.push(Line {
        requirement: "Logs show device, address, time and the site tried",
        status: if named > 0 { Status::Met } else { Status::Partly },
        reason: if named > 0 {
            format!("every blocked attempt is kept with its time, address and site; {named} devices are named")
        } else {
            "every blocked attempt is kept with its time, address and site, but no devices are named, so logs show addresses only".into()
        },
    });
    features.push(Line {
        requirement: "Who was using a device",
        status: Status::NotAtDnsLevel,
        reason: "DNS sees devices, not people; name shared devices by room and use the school's sign-in records".into(),
    });
    features.push(Line {
        requirement: "Reports for the leadership team",
        status: if config.reports.weekly_email {
            Status::Met
        } else {
            Status::Partly
        },
        reason: if config.reports.weekly_email {
            "the weekly report is emailed".into()
        } else {
            "the weekly report is on the status page but not emailed".into()
        },
    });
    features.push(Line {
        requirement: "Changes to filtering are recorded",
        status: Status::Met,
        reason: "every change of settings, allow or deny entry and unlock is in the audit trail with who and why".into(),
    });
    let (status, reason) = match &evidence.last_review {
        Some(held) if *held >= year_before(&evidence.today) => {
            (Status::Met, format!("last reviewed on {held}"))
        }
        Some(held) => (
            Status::NotMet,
            format!("last reviewed on {held}, more than a year ago"),
        ),
        None => (Status::NotMet, "no review is recorded".into()),
    };
    features.push(Line {
        requirement: "Filtering reviewed at least once a year",
        status,
        reason,
    });
    sections.push(Section {
        title: "How filtering works and is run",
        lines: features,
    });
    sections
}

fn year_before(today: &str) -> String {
    match today
        .split_once('-')
        .and_then(|(y, rest)| Some((y.parse::<i32>().ok()?, rest)))
    {
        Some((year, rest)) => format!("{:04}-{rest}", year - 1),
        None => today.to_string(),
    }
}

/// The printable page's look: inline where it is saved or sent, and at
/// `/static/assessment.css` for the page, whose content policy refuses
/// inline styles.
pub const PRINT_CSS: &str = concat!(
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:1.5rem auto;padding:0 1rem;color:#111;line-height:1.4}",
    "table{border-collapse:collapse;width:100%}",
    "th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top;overflow-wrap:anywhere}",
    "@media print{body{margin:0;max-width:none;padding:0}",
    "h2{break-after:avoid}",
    "tr{break-inside:avoid}}",
    ".ok{color:#0b6b2b}",
    ".warn{color:#8a5a00}",
    ".bad{color:#a1001e;font-weight:600}",
    ".info{color:#444}",
);

/// The printable page: the editions, then each section's lines.
pub fn to_html(school: &str, today: &str, sections: &[Section]) -> String {
    let mut out = String::new();
    let title = format!(
        "{}: filtering self-assessment, {}",
        if school.is_empty() {
            "Lollipop"
        } else {
            school
        },
        crate::clock::people::date_text(today)
    );
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{PRINT_CSS}</style>\
         <link rel=\"stylesheet\" href=\"/static/assessment.css\">\
         </head><body><h1>{t}</h1><p>Drawn from the appliance's settings and records when printed. It follows:</p><ul>",
        t = escape(&title)
    );
    for edition in EDITIONS {
        let _ = write!(out, "<li>{}</li>", escape(edition));
    }
    out.push_str("</ul>");
    for section in sections {
        let _ = write!(
            out,
            "<h2>{}</h2><table><thead><tr><th>What is asked</th><th>Here</th><th>Why</th></tr></thead><tbody>",
            escape(section.title)
        );
        for line in &section.lines {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(line.requirement),
                line.status.class(),
                line.status.word(),
                escape(&line.reason)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOrigin;

    fn config(extra: &str) -> Config {
        let text = format!("{}\n{extra}", crate::config::EMBEDDED_DEFAULT);
        Config::parse(&text, ConfigOrigin::default()).unwrap_or_else(|errors| panic!("{errors}"))
    }

    fn line(sections: &[Section], requirement: &str) -> Line {
        sections
            .iter()
            .flat_map(|s| &s.lines)
            .find(|l| l.requirement.starts_with(requirement))
            .cloned()
            .unwrap_or_else(|| panic!("no line {requirement}"))
    }

    fn evidence<'a>(lists: &'a [ListHealth], last_review: Option<&str>) -> Evidence<'a> {
        Evidence {
            lists,
            last_review: last_review.map(str::to_string),
            today: "2026-12-07".into(),
        }
    }

    #[test]
    fn each_line_follows_the_config_and_the_records() {
        let plain = config("");
        let lists = crate::lists::acquire::health::health(&plain, None, 0);
        let sections = assess(&plain, &evidence(&lists, None));
        assert_eq!(line(&sections, "Child sexual abuse").status, Status::NotMet);
        assert_eq!(
            line(&sections, "The safeguarding lead").status,
            Status::NotMet
        );
        assert_eq!(line(&sections, "Filtering reviewed").status, Status::NotMet);
        assert_eq!(
            line(&sections, "Search terms").status,
            Status::NotAtDnsLevel
        );

        let alerting = config("[alerts.webhook]\nurl = \"https://hooks.example.org/x\"\n");
        let sections = assess(&alerting, &evidence(&lists, Some("2026-09-15")));
        assert_eq!(line(&sections, "The safeguarding lead").status, Status::Met);
        assert_eq!(line(&sections, "Filtering reviewed").status, Status::Met);
        let stale = assess(&alerting, &evidence(&lists, Some("2025-09-15")));
        assert_eq!(line(&stale, "Filtering reviewed").status, Status::NotMet);
    }
}
