//! Tests of the parent module.

use super::*;

#[test]
fn embedded_files_parse_with_the_config_categories() {
    let cat = embedded().unwrap();
    assert!(cat.categories.len() >= 20 && cat.sources.len() >= 30);
    // Every category name the project's default config uses.
    let config = "pornography gambling malware bypass social chat webmail games video \
                  child-safe under5-allow iwf ctiru";
    for name in config.split_whitespace() {
        assert!(cat.category(name).is_some(), "{name} missing");
    }
    assert!(
        cat.category("under5-allow")
            .is_some_and(|c| c.kind == CategoryKind::Allow)
    );
    let locked: Vec<_> = cat.locked_categories().collect();
    assert_eq!(locked, ["iwf", "ctiru"]);
    let mut alerts: Vec<_> = cat.alert_categories().collect();
    alerts.sort();
    assert_eq!(alerts, ["extremism", "pornography", "self-harm"]);
    let ut1 = cat.source("ut1-adult").unwrap();
    assert_eq!(ut1.member.as_deref(), Some("adult/domains"));
    assert_eq!(cat.service("youtube").unwrap().category, "video");
    assert_eq!(cat.service("fortnite").unwrap().label(), "Fortnite (game)");
    assert_eq!(
        category_label("service-fortnite", Some(&cat)),
        "Fortnite (game)"
    );
    assert_eq!(category_label("service-gone-away", Some(&cat)), "gone away");
    assert_eq!(category_label("self-harm", Some(&cat)), "self-harm");
    for locked in ["iwf", "ctiru"] {
        let feeds: Vec<_> = cat.sources_for(locked).collect();
        assert_eq!(feeds.len(), 1);
        assert_eq!(feeds[0].kind, SourceKind::Licensed);
        assert!(feeds[0].urls.is_empty() && !feeds[0].redistribute);
    }
}

/// Each service file: a two-line header, then 3 to 20 distinct domains.
#[test]
fn service_files_hold_domain_lists() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lists");
    let cat = embedded().unwrap();
    assert!(cat.services.len() >= 15);
    for svc in &cat.services {
        let text = std::fs::read_to_string(dir.join(&svc.file)).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(lines[0].starts_with("# Service: ") && lines[1].starts_with("# "));
        let domains: Vec<&str> = lines
            .into_iter()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let unique: HashSet<&&str> = domains.iter().collect();
        let sized = (3..=20).contains(&domains.len()) && unique.len() == domains.len();
        assert!(sized, "{}", svc.file);
        for d in domains {
            let labels_ok = d.split('.').all(|l| is_name(l) && !l.starts_with('-'));
            assert!(d.contains('.') && labels_ok, "{}: {d}", svc.file);
        }
    }
}

const CATEGORIES: &str = r#"
[[category]]
name = "porn"
kind = "block"
description = "d"

[[category]]
name = "sealed"
kind = "block"
description = "d"
locked = true
"#;

const SOURCE: &str = r#"
[[source]]
name = "src-a"
category = "porn"
urls = ["https://example.org/a.txt"]
format = "domains"
licence = "MIT"
redistribute = true
cadence_hours = 24
"#;

const LICENSED: &str = r#"
[[source]]
name = "feed"
category = "sealed"
kind = "licensed"
licence = "member licence"
redistribute = false
cadence_hours = 6
"#;

const SERVICE: &str = r#"
[[service]]
name = "tube"
display_name = "Tube"
kind = "video"
file = "services/tube.txt"
category = "porn"
"#;

fn parse_with(catalogue: &str, services: &str) -> Result<Catalogue, CatalogueError> {
    parse(&format!("{CATEGORIES}{catalogue}"), services, "test")
}

/// The fixtures plus `catalogue` and `services` must fail in the file
/// being checked, naming `name` and saying `words`.
fn fails(catalogue: &str, services: &str, name: &str, words: &str) {
    let file = ["catalogue", "services"][usize::from(!services.is_empty())];
    let message = parse_with(catalogue, services).unwrap_err().to_string();
    let right_file = message.starts_with(&format!("test/{file}.toml: "));
    let named = message.contains(&format!(" \"{name}\": "));
    assert!(right_file && named && message.contains(words), "{message}");
}

#[test]
fn valid_fixtures_parse_and_any_block_category_may_be_locked() {
    let cat = parse_with(&format!("{SOURCE}{LICENSED}"), SERVICE).unwrap();
    assert_eq!(cat.locked_categories().collect::<Vec<_>>(), ["sealed"]);
    assert_eq!(cat.sources[0].archive, "none");
    assert_eq!(cat.sources[0].kind, SourceKind::Public);
    assert_eq!(cat.sources[1].format, None);
}

#[test]
#[rustfmt::skip]
fn each_rule_names_the_entry() {
    let src = |from: &str, to: &str| SOURCE.replacen(from, to, 1);
    let svc = |from: &str, to: &str| SERVICE.replacen(from, to, 1);
    let with = |line: &str| src("format", &format!("{line}\nformat"));
    let allow = |extra: &str| format!("[[category]]\nkind = \"allow\"\ndescription = \"d\"\n{extra}");
    let licensed_urls = LICENSED.replace("cadence", "urls = [\"https://x.org/\"]\ncadence");
    // (catalogue after the fixture categories, services, entry named, words in the problem)
    let cases = [
        (src("\"porn\"", "\"nope\""), String::new(), "src-a", "\"nope\" is not in"),
        (String::new(), svc("\"porn\"", "\"nope\""), "tube", "\"nope\" is not in"),
        (allow("name = \"kids\""), svc("\"porn\"", "\"kids\""), "tube", "allow category"),
        (SOURCE.repeat(2), String::new(), "src-a", "used twice"),
        (String::new(), SERVICE.repeat(2), "tube", "used twice"),
        (CATEGORIES.to_owned(), String::new(), "porn", "used twice"),
        (allow("name = \"Bad\""), String::new(), "Bad", "lower-case"),
        (src("\"src-a\"", "\"src a\""), String::new(), "src a", "lower-case"),
        (String::new(), svc("\"tube\"", "\"you_tube\""), "you_tube", "lower-case"),
        (allow("name = \"x\"\nlocked = true"), String::new(), "x", "neither locked nor alerting"),
        (with("archive = \"tar_gz\""), String::new(), "src-a", "needs member"),
        (with("member = \"a/domains\""), String::new(), "src-a", "only for tar_gz"),
        (with("archive = \"zip\""), String::new(), "src-a", "archive \"zip\""),
        (src("\"domains\"", "\"csv\""), String::new(), "src-a", "format \"csv\""),
        (src("[\"https://example.org/a.txt\"]", "[]"), String::new(), "src-a", "one URL"),
        (src("https://", "http://"), String::new(), "src-a", "not an https:// address"),
        (licensed_urls, String::new(), "feed", "lists no URLs"),
        (LICENSED.replace("\"sealed\"", "\"porn\""), String::new(), "feed", "must be locked"),
        (String::new(), svc("services/tube.txt", "../up.txt"), "tube", "inside lists/"),
        (String::new(), svc("\"video\"", "\"telly\""), "tube", "kind \"telly\""),
    ];
    for (catalogue, services, name, words) in cases {
        fails(&catalogue, &services, name, words);
    }
}

#[test]
fn shape_errors_name_the_file_and_line() {
    let message = |catalogue: &str, services: &str| {
        let err = parse(&format!("{CATEGORIES}{catalogue}"), services, "test").unwrap_err();
        assert!(matches!(err, CatalogueError::Syntax { .. }), "{err}");
        err.to_string()
    };
    assert!(message("[[category]\n", "").starts_with("test/catalogue.toml: "));
    let colour = message(&SOURCE.replace("licence", "colour = 1\nlicence"), "");
    assert!(
        colour.contains("colour") && colour.contains("line 18"),
        "{colour}"
    );
    let private = message(&SOURCE.replace("format", "kind = \"private\"\nformat"), "");
    assert!(private.contains("private"), "{private}");
    let service = message("", "[[service]]\nname = 1\n");
    assert!(service.starts_with("test/services.toml: "), "{service}");
}
