//! Tests of the parent module.

use super::*;

const SEARCH: SafeSearchPolicy = SafeSearchPolicy {
    search: true,
    youtube: YouTubeMode::Off,
};
const NOTHING: SafeSearchPolicy = SafeSearchPolicy {
    search: false,
    youtube: YouTubeMode::Off,
};

fn youtube(mode: YouTubeMode) -> SafeSearchPolicy {
    SafeSearchPolicy {
        search: false,
        youtube: mode,
    }
}

fn embedded() -> SafeSearchMap {
    SafeSearchMap::embedded().expect("the embedded map parses")
}

fn parse_err(text: &str) -> (SafeSearchError, String) {
    let err = SafeSearchMap::parse(text, "test.toml").expect_err("the map is rejected");
    let message = err.to_string();
    (err, message)
}

fn problem(err: SafeSearchError) -> (usize, RewriteProblem) {
    match err {
        SafeSearchError::Rewrite {
            number, problem, ..
        } => (number, *problem),
        other => panic!("expected a rewrite error, got {other:?}"),
    }
}

const ONE: &str = r#"
[[rewrite]]
provider = "bing"
service = "search"
level = "strict"
target = "strict.bing.com"
names = ["www.bing.com"]
"#;

#[test]
fn embedded_map_parses_with_many_google_names() {
    let map = embedded();
    let google = map
        .search
        .values()
        .filter(|&&index| &*map.rewrites[index].provider == "google")
        .count();
    assert!(google >= 150, "only {google} Google names");
    assert!(!map.is_empty());
    assert!(map.len() > google);
    assert!(EMBEDDED_PATH.ends_with("lists/safesearch.toml"));
}

#[test]
fn google_country_domains_rewrite_only_when_search_is_enforced() {
    let map = embedded();
    for name in [
        "www.google.com",
        "google.com",
        "www.google.co.uk",
        "google.co.uk",
        "www.google.de",
        "google.com.au",
        "www.google.co.in",
        "www.google.ie",
        "google.cat",
    ] {
        let rewrite = map.rewrite(name, SEARCH);
        assert_eq!(
            rewrite,
            Some(Rewrite {
                provider: "google",
                target: "forcesafesearch.google.com"
            }),
            "{name}"
        );
        assert_eq!(map.rewrite(name, NOTHING), None, "{name}");
        assert_eq!(
            map.rewrite(name, youtube(YouTubeMode::Strict)),
            None,
            "{name}"
        );
    }
}

#[test]
fn other_search_engines_rewrite() {
    let map = embedded();
    let target = |name| map.rewrite(name, SEARCH).map(|r| r.target);
    assert_eq!(target("www.bing.com"), Some("strict.bing.com"));
    assert_eq!(target("duckduckgo.com"), Some("safe.duckduckgo.com"));
    assert_eq!(target("start.duckduckgo.com"), Some("safe.duckduckgo.com"));
    assert_eq!(map.rewrite("www.bing.com", NOTHING), None);
}

#[test]
fn youtube_strict_moderate_and_off() {
    let map = embedded();
    for name in [
        "www.youtube.com",
        "m.youtube.com",
        "youtubei.googleapis.com",
        "youtube.googleapis.com",
        "www.youtube-nocookie.com",
    ] {
        let strict = map.rewrite(name, youtube(YouTubeMode::Strict));
        assert_eq!(
            strict.map(|r| r.target),
            Some("restrict.youtube.com"),
            "{name}"
        );
        assert_eq!(strict.map(|r| r.provider), Some("youtube"), "{name}");
        let moderate = map.rewrite(name, youtube(YouTubeMode::Moderate));
        assert_eq!(
            moderate.map(|r| r.target),
            Some("restrictmoderate.youtube.com"),
            "{name}"
        );
        assert_eq!(map.rewrite(name, youtube(YouTubeMode::Off)), None, "{name}");
        // Search enforcement alone leaves YouTube alone.
        assert_eq!(map.rewrite(name, SEARCH), None, "{name}");
    }
    // Both at once: each name gets its own service's rewrite.
    let both = SafeSearchPolicy {
        search: true,
        youtube: YouTubeMode::Strict,
    };
    assert_eq!(
        map.rewrite("www.google.com", both).map(|r| r.target),
        Some("forcesafesearch.google.com")
    );
    assert_eq!(
        map.rewrite("www.youtube.com", both).map(|r| r.target),
        Some("restrict.youtube.com")
    );
}

#[test]
fn unlisted_names_are_left_alone() {
    let map = embedded();
    let all = SafeSearchPolicy {
        search: true,
        youtube: YouTubeMode::Strict,
    };
    for name in [
        "example.com",
        "mail.google.com",
        "maps.google.co.uk",
        "youtube.com",
        "forcesafesearch.google.com",
        "restrict.youtube.com",
        "www.google.com.",
        "WWW.GOOGLE.COM",
        "",
    ] {
        assert_eq!(map.rewrite(name, all), None, "{name:?}");
    }
}

#[test]
fn parses_a_small_map() {
    let map = SafeSearchMap::parse(ONE, "test.toml").expect("valid");
    assert_eq!(map.len(), 1);
    assert_eq!(
        map.rewrite("www.bing.com", SEARCH),
        Some(Rewrite {
            provider: "bing",
            target: "strict.bing.com"
        })
    );
    let empty = SafeSearchMap::parse("", "empty.toml").expect("valid");
    assert!(empty.is_empty());
}

#[test]
fn bad_level_is_named() {
    let text = ONE.replace("level = \"strict\"", "level = \"moderate\"");
    let (err, message) = parse_err(&text);
    assert_eq!(
        message,
        "test.toml: [[rewrite]] number 1 (provider \"bing\"): level \"moderate\" is not \
         allowed for service \"search\" (allowed: \"strict\")"
    );
    assert!(matches!(problem(err), (1, RewriteProblem::BadLevel { .. })));

    let text = ONE
        .replace("\"search\"", "\"youtube\"")
        .replace("level = \"strict\"", "level = \"lax\"");
    let (err, message) = parse_err(&text);
    assert!(message.contains("level \"lax\""), "{message}");
    assert!(matches!(problem(err), (1, RewriteProblem::BadLevel { .. })));
}

#[test]
fn unknown_service_is_named() {
    let (err, message) = parse_err(&ONE.replace("\"search\"", "\"images\""));
    assert!(
        message.contains("service \"images\" is unknown"),
        "{message}"
    );
    assert!(matches!(
        problem(err),
        (1, RewriteProblem::UnknownService(_))
    ));
}

#[test]
fn empty_names_are_rejected() {
    let text = format!("{ONE}{}", ONE.replace("[\"www.bing.com\"]", "[]"));
    let (err, message) = parse_err(&text);
    assert_eq!(
        message,
        "test.toml: [[rewrite]] number 2 (provider \"bing\"): names is empty"
    );
    assert_eq!(problem(err), (2, RewriteProblem::EmptyNames));
}

#[test]
fn duplicate_name_with_another_target_is_rejected() {
    let second = ONE.replace("strict.bing.com", "safe.example.net");
    let (err, message) = parse_err(&format!("{ONE}{second}"));
    assert_eq!(
        message,
        "test.toml: [[rewrite]] number 2 (provider \"bing\"): name \"www.bing.com\" is also \
         listed under [[rewrite]] number 1 with target \"strict.bing.com\", not \
         \"safe.example.net\""
    );
    assert!(matches!(
        problem(err),
        (
            2,
            RewriteProblem::ConflictingTarget {
                other_number: 1,
                ..
            }
        )
    ));
}

#[test]
fn search_and_youtube_must_agree_but_youtube_levels_need_not() {
    // A search name reused under YouTube with another target: both can be
    // in force at once, so this is a conflict.
    let youtube_strict = ONE
        .replace("\"search\"", "\"youtube\"")
        .replace("strict.bing.com", "restrict.youtube.com");
    let (err, _) = parse_err(&format!("{ONE}{youtube_strict}"));
    assert!(matches!(
        problem(err),
        (2, RewriteProblem::ConflictingTarget { .. })
    ));

    // The same name under the two YouTube levels is how the map is meant to be.
    let youtube_moderate = youtube_strict
        .replace("level = \"strict\"", "level = \"moderate\"")
        .replace("restrict.youtube.com", "restrictmoderate.youtube.com");
    let map =
        SafeSearchMap::parse(&format!("{youtube_strict}{youtube_moderate}"), "t").expect("valid");
    assert_eq!(map.len(), 2);

    // A repeat with the same target is harmless.
    let map = SafeSearchMap::parse(&format!("{ONE}{ONE}"), "t").expect("valid");
    assert_eq!(map.len(), 1);
}

#[test]
fn target_inside_names_is_rejected() {
    let text = ONE.replace(
        "[\"www.bing.com\"]",
        "[\"www.bing.com\", \"strict.bing.com\"]",
    );
    let (err, message) = parse_err(&text);
    assert_eq!(
        message,
        "test.toml: [[rewrite]] number 1 (provider \"bing\"): target \"strict.bing.com\" is \
         itself listed under names (in [[rewrite]] number 1), so the rewrite would loop"
    );
    assert!(matches!(
        problem(err),
        (1, RewriteProblem::TargetInNames { listed_in: 1, .. })
    ));

    // Also when another rewrite lists it.
    let other = ONE
        .replace("strict.bing.com", "safe.example.net")
        .replace("www.bing.com", "strict.bing.com");
    let (err, _) = parse_err(&format!("{ONE}{other}"));
    assert!(matches!(
        problem(err),
        (1, RewriteProblem::TargetInNames { listed_in: 2, .. })
    ));
}

#[test]
fn malformed_names_and_targets_are_rejected() {
    for (bad, why) in [
        ("WWW.bing.com", "upper-case"),
        ("www.bing.com.", "trailing dot"),
        ("bing", "single label"),
        ("www..bing.com", "empty label"),
        ("www.bing.com/search", "character other than"),
        ("", "empty"),
    ] {
        let text = ONE.replace("[\"www.bing.com\"]", &format!("[{bad:?}]"));
        let (err, message) = parse_err(&text);
        assert!(message.contains(why), "{bad:?}: {message}");
        assert!(matches!(problem(err), (1, RewriteProblem::BadName { .. })));
    }
    let (err, _) = parse_err(&ONE.replace("target = \"strict.bing.com\"", "target = \"\""));
    assert!(matches!(
        problem(err),
        (1, RewriteProblem::BadTarget { .. })
    ));
    let (err, _) = parse_err(&ONE.replace("provider = \"bing\"", "provider = \" \""));
    assert_eq!(problem(err), (1, RewriteProblem::EmptyProvider));
}

#[test]
fn syntax_errors_name_the_origin() {
    for text in [
        "[[rewrite]]\nprovider = ",
        &ONE.replace("names =", "hosts ="),
        &format!("{ONE}extra = 1\n"),
        "[[rewrites]]\n",
    ] {
        let (err, message) = parse_err(text);
        assert!(matches!(err, SafeSearchError::Syntax { .. }), "{message}");
        assert!(message.starts_with("test.toml: "), "{message}");
    }
}

#[test]
fn youtube_mode_deserializes_lower_case() {
    #[derive(Deserialize)]
    struct Holder {
        youtube: YouTubeMode,
    }
    for (text, mode) in [
        ("youtube = \"strict\"", YouTubeMode::Strict),
        ("youtube = \"moderate\"", YouTubeMode::Moderate),
        ("youtube = \"off\"", YouTubeMode::Off),
    ] {
        let holder: Holder = toml::from_str(text).expect("valid");
        assert_eq!(holder.youtube, mode);
    }
    assert!(toml::from_str::<Holder>("youtube = \"Strict\"").is_err());
}

#[test]
fn the_sketch_passes_every_listed_name_and_turns_most_others_away() {
    let map = embedded();
    let strict = SafeSearchPolicy {
        search: true,
        youtube: YouTubeMode::Strict,
    };
    let moderate = SafeSearchPolicy {
        search: true,
        youtube: YouTubeMode::Moderate,
    };
    for (name, &index) in map.search.iter().chain(&map.youtube_strict) {
        let rewrite = map
            .rewrite(name, strict)
            .expect("a listed name is rewritten");
        assert_eq!(rewrite.target, &*map.rewrites[index].target, "{name}");
    }
    for name in map.youtube_moderate.keys() {
        assert!(map.rewrite(name, moderate).is_some(), "{name}");
    }
    // Names of the bench's shape: the sketch alone answers most of them.
    let turned_away = (0..1000)
        .map(|i| format!("host{i}.example-{}.co.uk", i * 7))
        .filter(|name| {
            let bit = sketch(name);
            map.sketches[bit / 64] & (1 << (bit % 64)) == 0
        })
        .count();
    assert!(turned_away > 700, "only {turned_away} of 1000 turned away");
}
