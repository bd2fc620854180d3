use std::sync::Arc;

use crate::config::{Config, ConfigOrigin};
use crate::lists::store::CompiledLists;
use crate::name::ReversedName;
use crate::policy::Policy;
use crate::policy::for_tests::compiled_lists;
use crate::policy::safesearch::SafeSearchMap;

use super::*;

const HOLIDAYS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/lists/calendar/bank-holidays.json"
);
const ICS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/term-dates.ics");

fn config_text(dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
address = "127.0.0.1:53"
protocol = "udp"
[web]
enabled = false
[[lists]]
name = "video"
path = "{video}"
category = "video"
[[lists]]
name = "games"
path = "{games}"
category = "games"
[calendar]
nation = "england-and-wales"
bank_holidays = "{holidays}"
term_dates = "{ics}"
[[calendar.periods]]
name = "morning"
start = "08:45"
end = "12:15"
[[calendar.periods]]
name = "lunch"
start = "12:15"
end = "13:15"
[[calendar.periods]]
name = "club"
label = "After-school club"
start = "15:15"
end = "17:00"
[[calendar.periods]]
name = "evening"
start = "18:00"
end = "07:00"
school = false
[profiles.ks2]
mode = "blocklist"
block_categories = ["video", "games"]
[[profiles.ks2.time_rules]]
when = "lunch"
allow_categories = ["video"]
[[profiles.ks2.time_rules]]
when = "club"
allow_categories = ["games"]
[profiles.staff]
mode = "blocklist"
audience = "staff"
block_categories = ["games"]
[[profiles.staff.time_rules]]
when = "evening"
allow_categories = ["games"]
[[profiles.staff.time_rules]]
when = "out-of-term"
use_profile = "ks2"
{extra}
"#,
        data = dir.join("data").display(),
        video = dir.join("video.txt").display(),
        games = dir.join("games.txt").display(),
        holidays = HOLIDAYS,
        ics = ICS,
    )
}

struct Fixture {
    config: Config,
    lists: Arc<CompiledLists>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("video.txt"), "video.example\n").expect("list");
    std::fs::write(dir.path().join("games.txt"), "games.example\n").expect("list");
    let config = Config::parse(&config_text(dir.path(), ""), ConfigOrigin::default())
        .unwrap_or_else(|errors| panic!("{errors}"));
    let lists = compiled_lists(&config, dir.path());
    Fixture {
        config,
        lists,
        _dir: dir,
    }
}

/// Unix ms of a wall time in London (GMT in November, BST in September).
fn london(date: &str, h: i64, m: i64, bst: bool) -> i64 {
    let day = crate::calendar::parse_date(date).expect("date");
    (day * 86_400 + (h - i64::from(bst)) * 3600 + m * 60) * 1000
}

fn policy(f: &Fixture, at: i64, trusted: bool) -> Policy {
    let state = Arc::new(TimeState::compute(&f.config, at, trusted));
    let safe_search = Arc::new(SafeSearchMap::embedded().expect("map"));
    Policy::build_at(&f.config, f.lists.clone(), safe_search, &[], state).expect("policy")
}

fn blocked(policy: &Policy, profile: &str, name: &str) -> bool {
    let id = policy.profile_id(profile).expect("profile");
    let reversed = ReversedName::from_domain(name).expect("name");
    policy.decide(id, &reversed).is_blocked()
}

fn explain(policy: &Policy, profile: &str, name: &str) -> crate::policy::Explanation {
    let id = policy.profile_id(profile).expect("profile");
    let reversed = ReversedName::from_domain(name).expect("name");
    let decision = policy.decide(id, &reversed);
    let why = policy.explain(id, &reversed, &decision);
    // The words built with the policy read as those formatted afresh.
    assert_eq!(&*why.ede_text(), why.ede_text_formatted(), "{name}");
    why
}

#[test]
fn a_term_day_opens_video_at_lunch_and_games_for_the_club() {
    let f = fixture();
    // Wednesday 4 November 2026 (GMT), a term day.
    let steps = [
        (10, 0, true, true),
        (12, 15, false, true),
        (13, 14, false, true),
        (13, 15, true, true),
        (15, 30, true, false),
        (17, 0, true, true),
    ];
    for (h, m, video, games) in steps {
        let p = policy(&f, london("2026-11-04", h, m, false), true);
        assert_eq!(blocked(&p, "ks2", "video.example"), video, "{h}:{m}");
        assert_eq!(blocked(&p, "ks2", "games.example"), games, "{h}:{m}");
    }
    let lunch = policy(&f, london("2026-11-04", 12, 30, false), true);
    let why = explain(&lunch, "ks2", "www.video.example");
    assert_eq!(
        why.time_rule.as_deref(),
        Some("allowed at lunch (12:15-13:15)")
    );
    let morning = policy(&f, london("2026-11-04", 10, 0, false), true);
    let why = explain(&morning, "ks2", "video.example");
    assert!(why.blocked && why.time_rule.is_none(), "{why:?}");
    assert_eq!(
        why.other_times
            .iter()
            .map(|other| &**other)
            .collect::<Vec<_>>(),
        ["allowed 12:15-13:15 at lunch on school days"]
    );
    assert_eq!(
        &*why.ede_text(),
        "Lollipop: category video blocked for profile ks2"
    );
    let state = TimeState::compute(&f.config, london("2026-11-04", 10, 0, false), true);
    assert_eq!(state.next_change, Some(london("2026-11-04", 12, 15, false)));
}

#[test]
fn inset_and_holidays_follow_out_of_term_rules_for_pupils_only() {
    let f = fixture();
    // Monday 2 November 2026 is an INSET day in the fixture: no lunch
    // rule for pupils; staff are in term (no move to ks2's rules).
    let inset_lunch = policy(&f, london("2026-11-02", 12, 30, false), true);
    assert!(blocked(&inset_lunch, "ks2", "video.example"));
    assert!(!blocked(&inset_lunch, "staff", "video.example"));
    // Saturday: staff devices get ks2's rules, and say so.
    let saturday = policy(&f, london("2026-11-07", 11, 0, false), true);
    assert!(blocked(&saturday, "staff", "video.example"));
    let why = explain(&saturday, "staff", "video.example");
    assert_eq!(&*why.profile, "staff");
    assert_eq!(
        why.time_rule.as_deref(),
        Some("out of term: the rules of profile ks2")
    );
    assert!(
        why.ede_text()
            .ends_with("(out of term: the rules of profile ks2)")
    );
    // Saturday evening: staff's evening rule allows games over ks2's.
    let evening = policy(&f, london("2026-11-07", 19, 0, false), true);
    assert!(!blocked(&evening, "staff", "games.example"));
    // Half term (26-30 October) is out of term too.
    let half_term = TimeState::compute(&f.config, london("2026-10-27", 12, 30, false), true);
    assert!(
        half_term
            .profile("ks2")
            .is_some_and(|p| !p.in_term && p.rules.is_empty())
    );
}

#[test]
fn an_untrusted_clock_gives_every_profile_its_strictest_rules() {
    let f = fixture();
    // 1970, or any time: allows wait, moves wait, blocks hold.
    for at in [0, london("2026-11-04", 12, 30, false)] {
        let p = policy(&f, at, false);
        assert!(blocked(&p, "ks2", "video.example"));
        assert!(blocked(&p, "ks2", "games.example"));
        assert!(!blocked(&p, "staff", "video.example"));
        assert!(!p.time.trusted);
    }
}

#[test]
fn a_block_in_force_beats_an_allow_in_force() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("video.txt"), "video.example\n").expect("list");
    std::fs::write(dir.path().join("games.txt"), "games.example\n").expect("list");
    let text = config_text(
        dir.path(),
        r#"[profiles.club]
mode = "blocklist"
allow_categories = ["games"]
[[profiles.club.time_rules]]
when = "lunch"
allow_categories = ["video"]
[[profiles.club.time_rules]]
when = "lunch"
block_categories = ["video", "games"]"#,
    );
    let config = Config::parse(&text, ConfigOrigin::default()).unwrap_or_else(|e| panic!("{e}"));
    let state = TimeState::compute(&config, london("2026-11-04", 12, 30, false), true);
    let effective = effective_config(&config, &state);
    let club = &effective.profiles["club"];
    let names = |list: &[toml::Spanned<String>]| -> Vec<String> {
        list.iter().map(|s| s.get_ref().clone()).collect()
    };
    assert_eq!(names(&club.block_categories), ["video", "games"]);
    assert!(names(&club.allow_categories).is_empty());
}

#[test]
fn calendar_mistakes_are_named_with_their_line() {
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        (
            "[[profiles.ks2.time_rules]]\nwhen = \"playtime\"\nallow_categories = [\"video\"]",
            "profiles.ks2.time_rules[2].when: no period named 'playtime'",
        ),
        (
            "[[profiles.ks2.time_rules]]\nwhen = \"lunch\"",
            "changes nothing",
        ),
        (
            "[[profiles.ks2.time_rules]]\nwhen = \"lunch\"\nallow_categories = [\"iwf\"]",
            "'iwf' is locked",
        ),
        (
            "[[profiles.ks2.time_rules]]\nwhen = \"lunch\"\nallow_services = [\"youtub\"]",
            "no service named 'youtub'",
        ),
        (
            "[[calendar.periods]]\nname = \"break\"\nstart = \"10:30\"\nend = \"10.45\"",
            "calendar.periods[4].end: '10.45' is not a time of day",
        ),
        (
            "[[calendar.terms]]\nstart = \"2026-09-03\"\nend = \"2026-07-22\"",
            "ends (2026-07-22) before it starts",
        ),
    ];
    for (extra, expected) in cases {
        let text = config_text(dir.path(), extra);
        let errors = Config::parse(&text, ConfigOrigin::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        // Said with its place in the file: ":LINE:COLUMN: key: message".
        let placed = errors.lines().any(|line| {
            line.contains(expected)
                && line
                    .split(':')
                    .nth(1)
                    .is_some_and(|n| n.parse::<usize>().is_ok())
        });
        assert!(placed, "{extra}\n---\n{errors}");
    }
    let bad_nation = config_text(dir.path(), "").replace("england-and-wales", "wales");
    let errors = Config::parse(&bad_nation, ConfigOrigin::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        errors.contains("calendar.nation: 'wales' is not a nation"),
        "{errors}"
    );
    let no_calendar = "[server]\ndata_dir = \"d\"\ndefault_profile = \"a\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n[[upstream]]\naddress = \"127.0.0.1:53\"\nprotocol = \"udp\"\n[profiles.a]\nmode = \"blocklist\"\n[[profiles.a.time_rules]]\nwhen = \"lunch\"\nblock_categories = [\"iwf\"]\n";
    let errors = Config::parse(no_calendar, ConfigOrigin::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        errors.contains(":12:8: profiles.a.time_rules[0].when: time rules need a [calendar]"),
        "{errors}"
    );
}
