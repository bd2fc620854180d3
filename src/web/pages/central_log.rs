//! The status panel's line for the trust's central log (`crate::ship`):
//! whether the school's records are reaching the trust, how many wait here,
//! and how many were deleted here before the trust received them.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::metrics::ShipFigures;

use super::dashboard::StatusLine;

fn words(destination: &str) -> &'static str {
    match destination {
        "postgres" => "the trust's database",
        _ => "the trust's log server",
    }
}

/// `None` when the school sends nothing to a trust.
pub fn line(config: &Config, figures: &BTreeMap<String, ShipFigures>) -> Option<StatusLine> {
    if config.ship.postgres.is_none() && config.ship.syslog.is_none() {
        return None;
    }
    let what = "Trust's central log";
    if figures.is_empty() {
        return Some(StatusLine {
            what,
            state: "not sending: see the service log for why".into(),
            level: "bad",
        });
    }
    let waiting: u64 = figures.values().map(|f| f.backlog).max().unwrap_or(0);
    let dropped: u64 = figures.values().map(|f| f.dropped).max().unwrap_or(0);
    if let Some((destination, error)) = figures
        .iter()
        .find_map(|(d, f)| f.error.as_ref().map(|e| (d, e)))
    {
        return Some(StatusLine {
            what,
            state: format!(
                "{} cannot be reached ({error}); nothing is lost: {waiting} records wait here and are sent when it is back",
                words(destination)
            ),
            level: "warn",
        });
    }
    if dropped > 0 {
        return Some(StatusLine {
            what,
            state: format!(
                "sending; {dropped} records were deleted here at the end of the school's keeping period before the trust received them"
            ),
            level: "warn",
        });
    }
    let to: Vec<&str> = figures.keys().map(|d| words(d)).collect();
    Some(StatusLine {
        what,
        state: match waiting {
            0 => format!("sending to {}; all sent", to.join(" and ")),
            n => format!("sending to {}; {n} records on their way", to.join(" and ")),
        },
        level: "ok",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipping() -> Config {
        let mut config = Config::embedded_default().expect("default config");
        config.ship.postgres = Some(crate::config::ShipPostgresConfig {
            url: toml::Spanned::new(0..0, "postgres://lollipop@db/trust".into()),
            password_file: None,
            ca_file: None,
        });
        config
    }

    #[test]
    fn the_line_says_whether_the_trust_has_everything() {
        let config = Config::embedded_default().expect("default config");
        assert!(
            line(&config, &BTreeMap::new()).is_none(),
            "no [ship], no line"
        );
        let config = shipping();
        let mut figures = BTreeMap::new();
        figures.insert(
            "postgres".to_string(),
            ShipFigures {
                up: true,
                ..ShipFigures::default()
            },
        );
        let ok = line(&config, &figures).expect("a line");
        assert_eq!(
            (ok.level, ok.state.as_str()),
            ("ok", "sending to the trust's database; all sent")
        );

        let away = ShipFigures {
            backlog: 1200,
            error: Some("cannot connect: connection refused".into()),
            ..ShipFigures::default()
        };
        figures.insert("postgres".to_string(), away);
        let warn = line(&config, &figures).expect("a line");
        assert_eq!(warn.level, "warn");
        assert!(
            warn.state
                .contains("the trust's database cannot be reached"),
            "{}",
            warn.state
        );
        assert!(
            warn.state.contains("1200 records wait here"),
            "{}",
            warn.state
        );

        let lost = ShipFigures {
            up: true,
            dropped: 5,
            ..ShipFigures::default()
        };
        figures.insert("postgres".to_string(), lost);
        let warn = line(&config, &figures).expect("a line");
        assert_eq!(warn.level, "warn");
        assert!(
            warn.state.contains("5 records were deleted here"),
            "{}",
            warn.state
        );
    }
}
