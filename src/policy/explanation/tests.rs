//! The prebuilt words of explanations against the words formatted afresh:
//! every profile and category of a test config, a list hit, the school's
//! own deny, the walled garden and a name rule.

use std::sync::Arc;

use crate::name::ReversedName;
use crate::policy::Policy;

struct Fixture {
    policy: Policy,
    _dir: tempfile::TempDir,
}

/// Each list category and a name on its list.
const LISTED: [(&str, &str); 3] = [
    ("gambling", "casino.example"),
    ("pornography", "pornsite.example"),
    ("social", "chat.example"),
];

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lists = String::new();
    for (category, domain) in LISTED {
        let path = dir.path().join(format!("{category}.txt"));
        std::fs::write(&path, format!("{domain}\n")).expect("list");
        lists.push_str(&format!(
            "[[lists]]\nname = \"school-{category}\"\npath = \"{}\"\ncategory = \"{category}\"\n",
            path.display()
        ));
    }
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
{lists}
[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling", "pornography", "social", "self-harm"]
deny_domains = ["homework-answers.example"]
[profiles.staff]
mode = "blocklist"
block_categories = ["pornography"]
[profiles.under5]
mode = "allowlist"
allow_categories = ["social"]
"#,
        data = dir.path().join("data").display(),
    );
    let policy = crate::policy::for_tests::policy_from_config(&text, dir.path());
    Fixture { policy, _dir: dir }
}

/// The explanation of `domain` in `profile`, whose EDE text must be the
/// one formatted afresh from its words; the text is returned.
fn ede_text(f: &Fixture, profile: &str, domain: &str) -> String {
    let id = f.policy.profile_id(profile).expect("profile");
    let name = ReversedName::from_domain(domain).expect("name");
    let decision = f.policy.decide(id, &name);
    let why = f.policy.explain(id, &name, &decision);
    assert_eq!(
        &*why.ede_text(),
        why.ede_text_formatted(),
        "{profile} {domain}"
    );
    why.ede_text().to_string()
}

#[test]
fn every_prebuilt_ede_text_is_the_formatted_one_for_every_profile_and_category() {
    let f = fixture();
    let policy = &f.policy;
    assert_eq!(policy.texts.profiles.len(), policy.profiles.len());
    for (p, profile) in policy.profiles.iter().enumerate() {
        let own = &policy.texts.profiles[p];
        assert_eq!(&*own.name, profile.name);
        for (c, category) in policy.lists.categories().iter().enumerate() {
            assert_eq!(
                &*own.list_blocked[c],
                format!(
                    "Lollipop: category {category} blocked for profile {}",
                    profile.name
                )
            );
        }
        for (c, category) in policy.name_rules.categories().iter().enumerate() {
            assert_eq!(
                &*own.rule_blocked[c],
                format!(
                    "Lollipop: category {category} blocked for profile {}",
                    profile.name
                )
            );
        }
        // Through the policy: a list hit of each category, blocked or not.
        for (_, domain) in LISTED {
            ede_text(&f, &profile.name, domain);
        }
    }
    assert_eq!(
        ede_text(&f, "ks2", "www.casino.example"),
        "Lollipop: category gambling blocked for profile ks2"
    );
    assert_eq!(
        ede_text(&f, "staff", "pornsite.example"),
        "Lollipop: category pornography blocked for profile staff"
    );
}

#[test]
fn the_schools_deny_the_walled_garden_and_a_name_rule_read_as_formatted() {
    let f = fixture();
    assert_eq!(
        ede_text(&f, "ks2", "homework-answers.example"),
        "Lollipop: blocked by the school for profile ks2"
    );
    assert_eq!(
        ede_text(&f, "under5", "www.school.example"),
        "Lollipop: not on the approved list for profile under5"
    );
    let rule = ede_text(&f, "ks2", "best-su1c1de-methods.example");
    assert!(
        rule.starts_with("Lollipop: category self-harm blocked for profile ks2 (name rule: '"),
        "{rule}"
    );
}

#[test]
fn an_explanations_words_are_shared_with_the_policy_not_copied() {
    let f = fixture();
    let id = f.policy.profile_id("ks2").expect("profile");
    let name = ReversedName::from_domain("casino.example").expect("name");
    let decision = f.policy.decide(id, &name);
    let first = f.policy.explain(id, &name, &decision);
    let second = f.policy.explain(id, &name, &decision);
    assert!(Arc::ptr_eq(&first.ede_text(), &second.ede_text()));
    assert!(Arc::ptr_eq(&first.profile, &second.profile));
    let (Some(a), Some(b)) = (&first.category, &second.category) else {
        panic!("a list hit has a category: {first:?}");
    };
    assert!(Arc::ptr_eq(a, b));
    assert_eq!(first.list.as_deref(), Some("school-gambling"));
    assert_eq!(first.rule.as_deref(), Some("casino.example"));
}
