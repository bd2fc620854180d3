//! One way in for the fuzz targets to every form and query the page reads:
//! each page module reads its own private form types through the same
//! deserialiser axum's `Form` and `Query` use, and runs the checks its
//! handler runs before anything is stored. Built only with the `testkit`
//! feature (and for the unit tests).

use std::sync::OnceLock;

use crate::config::{Config, ConfigOrigin, EMBEDDED_DEFAULT};

/// The config the forms are checked against: the embedded default, with a
/// named device and a room so every unlock scope can be chosen.
fn config() -> Option<&'static Config> {
    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let text = format!(
                "{EMBEDDED_DEFAULT}\n\
                 [[clients]]\nnetwork = \"10.0.20.0/24\"\nprofile = \"ks2\"\n\
                 [[devices]]\nip = \"10.0.20.31\"\nname = \"Y5-iPad-07\"\nroom = \"Oak class\"\n"
            );
            Config::parse(&text, ConfigOrigin::default()).ok()
        })
        .as_ref()
}

/// Reads `body` as every form and query of the status page, and checks each
/// that decodes. `now_secs` is "now" for the forms that depend on it
/// (an unlock's end, this week's report), in whole seconds since 1970 so it
/// stays within the years a real clock shows.
///
/// # Panics
///
/// When the embedded default config does not parse (the unit tests catch
/// that first).
pub fn read_forms(body: &[u8], now_secs: u32) {
    let Some(config) = config() else {
        panic!("the embedded default config with a device and a room must parse");
    };
    let now = i64::from(now_secs) * 1000;
    let tz = config.log.time_zone;
    super::unlock::read_posted(body, config, now);
    super::signin::read_posted(body);
    super::rules::read_posted(body);
    super::users::read_posted(body);
    super::reports::read_posted(body, tz, now);
    super::log::read_posted(body, tz);
    if let Ok(query) = serde_urlencoded::from_bytes::<super::check::CheckQuery>(body) {
        let listeners: Vec<std::sync::Arc<str>> = config
            .listen
            .iter()
            .map(|listen| listen.address.get_ref().as_str().into())
            .collect();
        let _ = query.who(&listeners);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_config_parses() {
        assert!(config().is_some());
    }

    #[test]
    fn a_far_year_in_a_date_field_is_refused_without_a_panic() {
        // The log's, the weekly report's, the audit trail's and the review's
        // date fields; the year's milliseconds used to overflow.
        for body in [
            &b"from=300000000-01-01"[..],
            b"to=9223372036854775807-1-1&page=1",
            b"held_on=300000000-01-01&participants=a&checked=b&decisions=c",
        ] {
            read_forms(body, 1_760_000_000);
        }
    }
}
