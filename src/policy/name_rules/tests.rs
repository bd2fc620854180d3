//! Tests of the name rules: folding, matching and exceptions on the shipped
//! rules, and their place in a policy's decision (help, locked, allow
//! entries, walled gardens).

use proptest::prelude::*;

use super::*;
use crate::policy::Policy;

fn all_languages() -> Vec<String> {
    LANGUAGES.iter().map(|(code, _)| code.to_string()).collect()
}

fn shipped() -> NameRules {
    NameRules::embedded(&all_languages()).expect("the shipped rules compile")
}

fn flagged(rules: &NameRules, domain: &str) -> Option<(String, String)> {
    let name = ReversedName::from_domain(domain).expect("name");
    rules.find(&name, u64::MAX).map(|hit| {
        (
            rules.category_name(hit.category).to_string(),
            rules.term(hit.term).to_string(),
        )
    })
}

mod reference;

fn folded(label: &str, variant: Variant) -> String {
    let mut out = [0u8; 64];
    let len = reference::fold_ascii(label.as_bytes(), variant, &mut out);
    String::from_utf8_lossy(&out[..len]).into_owned()
}

#[test]
fn folding_undoes_leetspeak_hyphens_and_doubled_letters() {
    assert_eq!(folded("K1ll-My-S3lf", Variant::OneIsI), "kilmyself");
    assert_eq!(folded("se1f-h4rm", Variant::OneIsL), "selfharm");
    assert_eq!(folded("p0rn", Variant::OneIsI), "porn");
    assert_eq!(folded("7h1n5p0", Variant::OneIsI), "thinspo");
    assert_eq!(folded("sui2cide", Variant::NoDigits), "suicide");
    assert_eq!(folded("essex", Variant::OneIsI), "esex");
    let mut out = Vec::new();
    fold_label("su$$icide@", Variant::OneIsI, &mut out);
    assert_eq!(out, b"susicidea");
}

#[test]
fn misspelt_and_leetspeak_self_harm_names_are_flagged() {
    let rules = shipped();
    for domain in [
        "suicide-methods.example",
        "su1c1de.example",
        "www.s3lf-h4rm.example",
        "se1fharm-pics.example",
        "kiill-myself.example",
        "thinspooo.example",
        "sui2cide.example",
    ] {
        assert_eq!(
            flagged(&rules, domain)
                .map(|(category, _)| category)
                .as_deref(),
            Some("self-harm"),
            "{domain}"
        );
    }
    assert_eq!(
        flagged(&rules, "x.su1c1de.example"),
        Some(("self-harm".into(), "suicide".into()))
    );
}

#[test]
fn ordinary_names_holding_a_term_are_not_flagged() {
    let rules = shipped();
    for domain in [
        "essex.ac.uk",
        "www.sussex.police.uk",
        "middlesex.ac.uk",
        "essexcountycouncil.gov.uk",
        "find-a-therapist.example",
        "therapists.example",
        "data-analysis.example",
        "www.google-analytics.com",
        "cocktail-bar.example",
        "scunthorpe.gov.uk",
        "assassinscreed.example",
        "unisex-fashion.example",
        "suicideprevention.example",
        "milford-school.sch.uk",
        "bbc.co.uk",
    ] {
        assert_eq!(flagged(&rules, domain), None, "{domain}");
    }
}

#[test]
fn an_exception_covers_only_the_term_inside_it() {
    let rules = shipped();
    assert!(flagged(&rules, "essexsex.example").is_some());
    assert!(flagged(&rules, "essex.sex.example").is_some());
    // Terms never match across a dot.
    assert_eq!(flagged(&rules, "self.harm.example"), None);
}

/// The one-pass scan finds what folding every reading into a buffer and
/// scanning that found, the same term first.
fn assert_as_reference(rules: &NameRules, domain: &str) {
    let name = ReversedName::from_domain(domain).expect("name");
    let automaton = reference::automaton(rules);
    for mask in [u64::MAX, 1, 2, 4, 5] {
        let expected = reference::find(rules, &automaton, name.as_bytes(), mask);
        // The scan itself with every label read afresh, then with the
        // thread's remembered labels (filled, then read), then the
        // remembered answer for the name, filled and read.
        memo::bypass_on_this_thread(true);
        labels::bypass_on_this_thread(true);
        let read = rules.find(&name, mask);
        labels::bypass_on_this_thread(false);
        assert_eq!(read, expected, "{domain} mask {mask}, labels read afresh");
        for round in ["filled", "read"] {
            let read = rules.find(&name, mask);
            assert_eq!(read, expected, "{domain} mask {mask}, labels {round}");
        }
        memo::bypass_on_this_thread(false);
        assert_eq!(
            rules.find(&name, mask),
            expected,
            "{domain} mask {mask}, remembered"
        );
        assert_eq!(
            rules.find(&name, mask),
            expected,
            "{domain} mask {mask}, remembered"
        );
    }
}

#[test]
fn a_remembered_answer_is_for_that_name_mask_and_rules_only() {
    let english = NameRules::embedded(&[]).expect("rules");
    let polish = NameRules::embedded(&["pl".into()]).expect("rules");
    let name = ReversedName::from_domain("samobojstwo.example").expect("name");
    // Read by the English rules first: the Polish rules (a reload adding a
    // language) must not be given that answer.
    assert_eq!(english.find(&name, u64::MAX), None);
    assert_eq!(english.find(&name, u64::MAX), None);
    assert!(polish.find(&name, u64::MAX).is_some());
    assert!(polish.find(&name, u64::MAX).is_some());
    // Another mask is another question.
    let self_harm = polish.mask_of(["self-harm"]);
    assert!(polish.find(&name, self_harm).is_some());
    assert_eq!(polish.find(&name, !self_harm), None);
    // Names that land in the same slot, or differ in one letter, each get
    // their own answer; so does a name too long to remember.
    let shipped = shipped();
    for round in 0..2 {
        for i in 0..3000 {
            let clean = ReversedName::from_domain(&format!("school{i}.example")).expect("name");
            assert_eq!(shipped.find(&clean, u64::MAX), None, "round {round}, {i}");
            let flagged = ReversedName::from_domain(&format!("suicide{i}.example")).expect("name");
            assert!(
                shipped.find(&flagged, u64::MAX).is_some(),
                "round {round}, {i}"
            );
        }
        let long = format!("{}.suicide.example", "a".repeat(60));
        let long = ReversedName::from_domain(&long).expect("name");
        assert!(shipped.find(&long, u64::MAX).is_some());
    }
}

#[test]
fn a_label_remembered_under_one_mask_answers_every_mask() {
    let rules = shipped();
    let self_harm = rules.mask_of(["self-harm"]);
    let pornography = rules.mask_of(["pornography"]);
    memo::bypass_on_this_thread(true);
    // "essexsex" holds an exception and a term of pornography: remembered
    // while a profile that acts only on self-harm asks, it must still flag
    // for one that acts on pornography, and "essex" must still pass.
    let name = ReversedName::from_domain("essexsex.example").expect("name");
    assert_eq!(rules.find(&name, self_harm), None);
    assert!(rules.find(&name, pornography).is_some());
    let essex = ReversedName::from_domain("www.essex.example").expect("name");
    assert_eq!(rules.find(&essex, self_harm), None);
    assert_eq!(rules.find(&essex, pornography), None);
    // The same label in another name, at another place.
    let again = ReversedName::from_domain("essexsex.co.uk").expect("name");
    assert!(rules.find(&again, pornography).is_some());
    let again = ReversedName::from_domain("essex.essexsex.example").expect("name");
    assert!(rules.find(&again, pornography).is_some());
    assert_eq!(rules.find(&again, self_harm), None);
    for clean in [
        "essex.ac.uk",
        "www.sussex.police.uk",
        "find-a-therapist.example",
    ] {
        let name = ReversedName::from_domain(clean).expect("name");
        for _ in 0..2 {
            assert_eq!(rules.find(&name, u64::MAX), None, "{clean}");
        }
    }
    memo::bypass_on_this_thread(false);
}

#[test]
fn one_pass_reads_every_reading_as_the_reference_does() {
    let rules = shipped();
    let arabic = idna::domain_to_ascii("انتحار.example").expect("idna");
    let arabic_digit = idna::domain_to_ascii("سكس1.example").expect("idna");
    for domain in [
        "www.su1c1de-methods.example",
        "cdn-07.assets-2024.static.school-website-1.sch.uk",
        "se1fharm.s3lf-h4rm.example",
        "sex1ton.example",
        "ess1ex.sex.example",
        "1111.0000.example",
        "kiill-myself1.example",
        "su1icide-prevention1.example",
        "m1lf0rd.m1lf.example",
        "p0rn1.example",
        "xn--sexx.example",
        "xn--p0rn-.example",
        "school-website-1.suicide1.sex.example",
        "sex.school-website-1.suicide1.example",
        "www.su1c1de-methodsx.su1c1de-methods.example",
        "su1c1de.sex.essex.sexsexsexsex.example",
        arabic.as_str(),
        arabic_digit.as_str(),
    ] {
        assert_as_reference(&rules, domain);
    }
}

/// Pieces of terms, exceptions and leetspeak, so random names hold them.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "su",
        "1",
        "ic",
        "i",
        "l",
        "de",
        "sex",
        "es",
        "s3x",
        "e5",
        "x",
        "0",
        "p0rn",
        "-",
        "ki",
        "myself",
        "7h1n5p0",
        "prevention",
        "uni",
        "milf",
        "ord",
        "2",
        "4",
        "naz",
        "neo",
        "ss",
        "ton",
        "self",
        "h4rm",
        "uk",
        "xn--",
        "a",
        "7",
        "3",
        "5",
        "@",
        "$",
    ])
}

fn label() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 1..6).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_pass_agrees_with_the_reference(labels in prop::collection::vec(label(), 1..5)) {
        let domain = labels.join(".");
        if ReversedName::from_domain(&domain).is_some() {
            assert_as_reference(shipped_once(), &domain);
        }
    }
}

fn shipped_once() -> &'static NameRules {
    static RULES: std::sync::OnceLock<NameRules> = std::sync::OnceLock::new();
    RULES.get_or_init(shipped)
}

#[test]
fn community_languages_follow_the_config() {
    let english = NameRules::embedded(&[]).expect("rules");
    assert_eq!(flagged(&english, "samobojstwo.example"), None);
    let polish = NameRules::embedded(&["pl".into()]).expect("rules");
    assert_eq!(
        flagged(&polish, "samobojstwo.example").map(|(c, _)| c),
        Some("self-harm".into())
    );
    // Arabic script arrives as punycode and is decoded before matching.
    let arabic = idna::domain_to_ascii("انتحار.example").expect("idna");
    assert!(arabic.starts_with("xn--"), "{arabic}");
    assert_eq!(flagged(&polish, &arabic), None);
    assert_eq!(
        flagged(&shipped(), &arabic),
        Some(("self-harm".into(), "انتحار".into()))
    );
}

#[test]
fn bad_rules_say_what_and_where() {
    let error = NameRules::compile("[categories.x.terms]\nen = [\"xx\"]\n", "test.toml", &[])
        .expect_err("too short");
    assert!(error.to_string().contains("test.toml"), "{error}");
    assert!(error.to_string().contains("categories.x"), "{error}");
    let error = NameRules::compile("[categories.x.terms]\nfr = [\"suicide\"]\n", "t", &[])
        .expect_err("unknown language");
    assert!(error.to_string().contains("unknown language"), "{error}");
}

/// A policy over real compiled lists: the shipped help list, a gambling
/// list, a locked list and a pornography list; profiles for each case.
struct Fixture {
    policy: Policy,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |file: &str, text: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("list");
        path.display().to_string()
    };
    let help = concat!(env!("CARGO_MANIFEST_DIR"), "/lists/help.txt");
    let porn = write("porn.txt", "pornsite.example\n");
    let iwf = write("iwf.txt", "bad.kooth.com\n");
    let text = format!(
        r#"
[server]
data_dir = "{data}"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
address = "127.0.0.1:53"
protocol = "udp"
[[lists]]
name = "help"
path = "{help}"
category = "help"
[[lists]]
name = "porn"
path = "{porn}"
category = "pornography"
[[lists]]
name = "iwf"
path = "{iwf}"
category = "iwf"
[name_rules]
languages = ["pl"]
[profiles.ks2]
mode = "blocklist"
block_categories = ["pornography", "self-harm", "extremism"]
allow_domains = ["suicide-stories.example"]
[profiles.staff]
mode = "blocklist"
block_categories = ["pornography"]
[profiles.off]
mode = "blocklist"
block_categories = ["self-harm"]
name_rules = false
[profiles.under5]
mode = "allowlist"
allow_categories = []
"#,
        data = dir.path().join("data").display(),
    );
    let policy = crate::policy::for_tests::policy_from_config(&text, dir.path());
    Fixture { policy, _dir: dir }
}

fn decide(f: &Fixture, profile: &str, domain: &str) -> (Decision, crate::policy::Explanation) {
    let id = f.policy.profile_id(profile).expect("profile");
    let name = ReversedName::from_domain(domain).expect("name");
    let decision = f.policy.decide(id, &name);
    let explanation = f.policy.explain(id, &name, &decision);
    (decision, explanation)
}

#[test]
fn a_rule_hit_blocks_and_is_explained_like_a_list_hit() {
    let f = fixture();
    let (decision, why) = decide(&f, "ks2", "best-su1c1de-methods.example");
    assert!(matches!(
        decision,
        Decision::Blocked {
            by: Hit {
                source: HitSource::NameRule { .. },
                ..
            }
        }
    ));
    assert_eq!(why.category.as_deref(), Some("self-harm"));
    assert_eq!(why.rule.as_deref(), Some("name rule: 'suicide'"));
    assert!(why.name_rule);
    assert_eq!(
        &*why.ede_text(),
        "Lollipop: category self-harm blocked for profile ks2 (name rule: 'suicide')"
    );
    assert!(why.to_string().contains("a word in the name"), "{why}");
    // Community language terms from the config.
    assert!(decide(&f, "ks2", "samobojstwo.example").0.is_blocked());
}

#[test]
fn a_list_hit_is_reported_as_before() {
    let f = fixture();
    let (decision, why) = decide(&f, "ks2", "pornsite.example");
    assert!(matches!(
        decision,
        Decision::Blocked {
            by: Hit {
                source: HitSource::List { .. },
                ..
            }
        }
    ));
    assert_eq!(why.list.as_deref(), Some("porn"));
    assert!(!why.name_rule);
}

#[test]
fn help_and_allow_entries_beat_rules_and_locked_beats_everything() {
    let f = fixture();
    // selfharm.co.uk holds the term "selfharm" and is on the help list.
    let (decision, _) = decide(&f, "ks2", "www.selfharm.co.uk");
    assert!(matches!(decision, Decision::Allowed { by: Some(_) }));
    // Help is on even in a walled garden that lists nothing else.
    assert!(!decide(&f, "under5", "www.childline.org.uk").0.is_blocked());
    // The profile's own allow entry.
    assert!(!decide(&f, "ks2", "suicide-stories.example").0.is_blocked());
    // A locked list wins over the help list's parent entry.
    assert!(matches!(
        decide(&f, "ks2", "bad.kooth.com").0,
        Decision::Locked { .. }
    ));
    // Ordinary names are untouched.
    assert!(!decide(&f, "ks2", "essex.ac.uk").0.is_blocked());
    assert!(!decide(&f, "ks2", "www.sussex.police.uk").0.is_blocked());
}

#[test]
fn rules_act_only_where_the_profile_blocks_their_category() {
    let f = fixture();
    assert!(!decide(&f, "staff", "suicide-forum.example").0.is_blocked());
    assert!(decide(&f, "staff", "p0rn-tube.example").0.is_blocked());
    assert!(!decide(&f, "off", "suicide-forum.example").0.is_blocked());
}

#[test]
fn a_walled_garden_only_records_the_rule_for_the_alert() {
    let f = fixture();
    let (decision, why) = decide(&f, "under5", "thinspo-daily.example");
    assert!(matches!(
        decision,
        Decision::NotInWalledGarden { rule: Some(_) }
    ));
    assert!(why.walled_garden);
    assert_eq!(why.category.as_deref(), Some("self-harm"));
    assert_eq!(
        &*why.ede_text(),
        "Lollipop: not on the approved list for profile under5"
    );
    let (decision, why) = decide(&f, "under5", "cbeebies.example");
    assert_eq!(decision, Decision::NotInWalledGarden { rule: None });
    assert_eq!(why.category, None);
}

#[test]
fn releasing_a_rule_hit_needs_the_safeguarding_role() {
    let f = fixture();
    let name = ReversedName::from_domain("suicide-forum.example").expect("name");
    assert_eq!(
        f.policy.alerting_categories_of(&name),
        vec!["self-harm".to_string()]
    );
}
