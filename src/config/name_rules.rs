//! The `[name_rules]` table: whether names are flagged by the words in them
//! (src/policy/name_rules.rs) and in which languages besides English.

use serde::Deserialize;
use toml::Spanned;

/// The languages the shipped name rules hold terms in, by config code.
/// English is always on; the rest are chosen in `[name_rules] languages`.
pub const NAME_RULE_LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("pl", "Polish"),
    ("ur", "Urdu (romanised)"),
    ("pa", "Punjabi (romanised)"),
    ("bn", "Bengali (romanised)"),
    ("ar", "Arabic (romanised and Arabic script)"),
    ("ro", "Romanian"),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRulesConfig {
    /// Off: names are judged by the lists alone.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Community languages whose terms are used besides English.
    #[serde(default = "default_languages")]
    pub languages: Vec<Spanned<String>>,
}

impl Default for NameRulesConfig {
    fn default() -> Self {
        NameRulesConfig {
            enabled: true,
            languages: default_languages(),
        }
    }
}

impl NameRulesConfig {
    /// The chosen language codes, as written.
    pub fn language_codes(&self) -> Vec<String> {
        self.languages.iter().map(|l| l.get_ref().clone()).collect()
    }

    /// The language codes Lollipop does not know, with their place.
    pub fn unknown_languages(&self) -> impl Iterator<Item = (usize, &Spanned<String>)> {
        self.languages.iter().enumerate().filter(|(_, language)| {
            !NAME_RULE_LANGUAGES
                .iter()
                .any(|(code, _)| code == language.get_ref())
        })
    }
}

/// Every shipped community language.
fn default_languages() -> Vec<Spanned<String>> {
    NAME_RULE_LANGUAGES
        .iter()
        .filter(|(code, _)| *code != "en")
        .map(|(code, _)| Spanned::new(0..0, code.to_string()))
        .collect()
}

fn yes() -> bool {
    true
}
