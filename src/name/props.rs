//! Properties of name normalisation and the reversed form, over generated
//! input: what every list entry, admin entry and query key relies on.

use proptest::prelude::*;

use super::*;

/// Text shaped like what admins type and lists hold: letters of both cases,
/// digits, `-`, `_`, dots, the odd space, star and non-ASCII letter.
fn domainish() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ *]{0,1}[a-zA-Z0-9_.üßÉ-]{0,70}[. ]{0,1}")
        .unwrap_or_else(|error| panic!("the test's own pattern: {error}"))
}

/// A name that normalises: 1 to 5 labels of 1 to 12 characters.
fn valid_name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-zA-Z][a-zA-Z0-9_-]{0,11}", 1..=5).prop_map(|l| l.join("."))
}

/// Holds `domain` to the form every key is built from.
fn assert_canonical(domain: &str) {
    assert!(
        !domain.is_empty() && domain.len() <= MAX_DOMAIN_LEN,
        "{domain:?}"
    );
    assert!(!domain.ends_with('.'), "{domain:?}");
    for label in domain.split('.') {
        assert!(
            !label.is_empty() && label.len() <= MAX_LABEL_LEN,
            "{domain:?}"
        );
        assert!(
            label
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_')),
            "{domain:?}"
        );
    }
    assert!(domain.parse::<std::net::Ipv4Addr>().is_err(), "{domain:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalising_any_text_never_panics_and_gives_a_canonical_name(text in any::<String>()) {
        if let Ok(domain) = normalise_domain(&text) {
            assert_canonical(&domain);
        }
    }

    #[test]
    fn normalising_is_idempotent(text in domainish()) {
        if let Ok(domain) = normalise_domain(&text) {
            assert_canonical(&domain);
            prop_assert_eq!(normalise_domain(&domain), Ok(domain.clone()));
        }
    }

    #[test]
    fn normalising_ignores_ascii_case(text in domainish()) {
        prop_assert_eq!(
            normalise_domain(&text.to_ascii_uppercase()),
            normalise_domain(&text.to_ascii_lowercase())
        );
    }

    #[test]
    fn a_trailing_dot_and_surrounding_blanks_change_nothing(name in valid_name()) {
        let plain = normalise_domain(&name);
        prop_assert_eq!(normalise_domain(&format!(" {name}. ")), plain.clone());
        prop_assert_eq!(normalise_domain(&format!("{name}.")), plain);
    }

    #[test]
    fn the_reversed_form_round_trips(name in valid_name()) {
        let Ok(domain) = normalise_domain(&name) else {
            return Ok(());
        };
        let Some(reversed) = ReversedName::from_domain(&domain) else {
            panic!("a normalised name must make a key: {domain:?}");
        };
        prop_assert_eq!(reversed.to_domain(), domain.clone());
        let key = reverse_domain(&domain);
        prop_assert_eq!(reversed.as_bytes(), key.as_bytes());
        prop_assert_eq!(reverse_domain(&reverse_domain(&domain)), domain.clone());
        prop_assert_eq!(reversed.label_count(), domain.split('.').count());
        let mut buf = [0u8; 256];
        prop_assert_eq!(reversed.domain_in(&mut buf), Some(domain.as_str()));
        // The key of the name as any case on the wire is the same key.
        let upper = ReversedName::from_domain(&domain.to_ascii_uppercase());
        prop_assert_eq!(upper.map(|r| r.as_bytes().to_vec()), Some(reversed.as_bytes().to_vec()));
    }

    #[test]
    fn every_suffix_of_the_key_is_a_whole_label_suffix_of_the_name(name in valid_name()) {
        let Ok(domain) = normalise_domain(&name) else {
            return Ok(());
        };
        let Some(reversed) = ReversedName::from_domain(&domain) else {
            panic!("a normalised name must make a key: {domain:?}");
        };
        let key = reversed.as_bytes();
        for (at, _) in key.iter().enumerate().filter(|(_, b)| **b == b'.') {
            let suffix = reversed.suffix_domain(at);
            prop_assert!(domain.ends_with(&format!(".{suffix}")), "{} of {}", suffix, domain);
        }
        prop_assert_eq!(reversed.suffix_domain(key.len()), domain);
    }

    #[test]
    fn wire_labels_of_any_bytes_never_panic(
        labels in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..70), 0..8)
    ) {
        if let Some(reversed) = ReversedName::from_labels(labels.iter().map(Vec::as_slice)) {
            prop_assert_eq!(reversed.label_count(), labels.len());
            prop_assert!(reversed.as_bytes().len() <= MAX_DOMAIN_LEN);
            prop_assert!(!reversed.as_bytes().iter().any(u8::is_ascii_uppercase));
            let _ = reversed.to_domain();
            let _ = reversed.domain_in(&mut [0u8; 256]);
        }
    }
}
