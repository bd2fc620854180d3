//! The UK's bank holidays, read from `lists/calendar/bank-holidays.json`,
//! which is GOV.UK's own format (https://www.gov.uk/bank-holidays.json):
//! one division per nation, each with dated, titled events. Shipped with
//! the lists, so a school's appliance knows them without the internet.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::parse_date;

/// The nations whose bank holidays differ, by GOV.UK's division names.
pub const NATIONS: [&str; 3] = ["england-and-wales", "scotland", "northern-ireland"];

#[derive(Deserialize)]
struct Division {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    title: String,
    date: String,
}

/// The bank holidays of `nation` in `text` (the file's contents), by local
/// day, and the last day the file covers.
pub fn parse(text: &str, nation: &str) -> Result<BTreeMap<i64, String>, String> {
    let divisions: BTreeMap<String, Division> = serde_json::from_str(text)
        .map_err(|error| format!("not a GOV.UK bank holidays file: {error}"))?;
    let Some(division) = divisions.get(nation) else {
        let known: Vec<&str> = divisions.keys().map(String::as_str).collect();
        return Err(format!(
            "it has no bank holidays for '{nation}' (it has: {})",
            known.join(", ")
        ));
    };
    let mut days = BTreeMap::new();
    for event in &division.events {
        let day = parse_date(&event.date)
            .map_err(|error| format!("the holiday '{}': {error}", event.title))?;
        days.insert(day, event.title.clone());
    }
    if days.is_empty() {
        return Err(format!("it lists no bank holidays for '{nation}'"));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../lists/calendar/bank-holidays.json");

    #[test]
    fn the_shipped_file_knows_each_nations_own_days() {
        let day = |text| parse_date(text).expect("date");
        let england = parse(SHIPPED, "england-and-wales").expect("england");
        let scotland = parse(SHIPPED, "scotland").expect("scotland");
        let ireland = parse(SHIPPED, "northern-ireland").expect("ni");
        // Easter Monday is not a Scottish bank holiday; 2 January is.
        assert!(england.contains_key(&day("2026-04-06")));
        assert!(!scotland.contains_key(&day("2026-04-06")));
        assert!(scotland.contains_key(&day("2026-01-02")));
        assert!(ireland.contains_key(&day("2026-03-17")));
        assert!(!england.contains_key(&day("2026-03-17")));
        // Boxing Day 2026 is a Saturday: the substitute is Monday 28th.
        assert_eq!(
            england.get(&day("2026-12-28")).map(String::as_str),
            Some("Boxing Day")
        );
    }

    #[test]
    fn a_wrong_file_or_nation_is_an_error_in_words() {
        assert!(
            parse("[]", "scotland")
                .unwrap_err()
                .contains("not a GOV.UK")
        );
        let error = parse(SHIPPED, "wales").unwrap_err();
        assert!(error.contains("england-and-wales"), "{error}");
        let bad = r#"{"scotland": {"division": "scotland", "events": [{"title": "x", "date": "2026-02-30", "notes": "", "bunting": true}]}}"#;
        assert!(parse(bad, "scotland").unwrap_err().contains("'x'"));
    }
}
