//! A school under a trust's policy: the `[trust]` table (where the signed
//! bundle comes from and the key it must be signed with) and the merge of
//! the bundle in force into the school's config when the file is read, so
//! the school's own file cannot loosen what the bundle sets: the bundle's
//! profiles win, its locked and alerting categories are added, and a school
//! setting that conflicts is an error naming the bundle.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::bundle::{self, Bundle, LocalRights, UnlockRight};
use super::{Config, ConfigError};

/// The bundle in force, as the downloads directory keeps it.
pub const BUNDLE_FILE: &str = "trust-bundle.toml";

/// `[trust]`: the school follows a trust's policy bundle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Where the trust publishes its signed bundle (HTTPS, or HTTP: the
    /// signature is what is trusted).
    pub bundle_url: Spanned<String>,
    /// The trust's Ed25519 public key, base64 (`lollipop trust keygen`).
    pub public_key: Spanned<String>,
    /// How often the bundle is looked for.
    #[serde(default = "default_cadence_hours")]
    pub cadence_hours: u64,
}

fn default_cadence_hours() -> u64 {
    1
}

/// What the pages and the policy need to know of the bundle in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInForce {
    pub trust: String,
    pub serial: u64,
    pub local: LocalRights,
    /// The profiles it sets.
    pub profiles: Vec<String>,
    /// The school's own profiles of the same names, not used.
    pub replaced: Vec<String>,
    /// The file it was read from.
    pub path: PathBuf,
}

impl BundleInForce {
    /// "Oak Learning Trust's policy bundle (serial 7)".
    pub fn describe(&self) -> String {
        bundle::describe(&self.trust, self.serial)
    }
}

impl Config {
    /// Where the bundle in force is kept (written only once verified).
    pub fn trust_bundle_path(&self) -> PathBuf {
        self.downloads_dir().join(BUNDLE_FILE)
    }

    /// The bundle in force, verified with the configured key; `None` with
    /// no `[trust]` or before the first bundle arrived.
    pub fn read_trust_bundle(&self) -> Result<Option<Bundle>, String> {
        let Some(trust) = &self.trust else {
            return Ok(None);
        };
        let path = self.trust_bundle_path();
        let signed = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        bundle::verify(&signed, trust.public_key.get_ref())
            .map(Some)
            .map_err(|why| {
                format!(
                    "the trust's policy bundle in force, {}, does not check out: {why}. \
                 If the trust changed its key, delete that file and run `lollipop lists update`",
                    path.display()
                )
            })
    }

    /// Merges `bundle` into this config (read from the school's `school`
    /// table). Conflicts are returned, each naming the bundle; the keys of
    /// the settings the bundle brought are returned too, so problems found
    /// in them later are put down to the bundle, not the school's file.
    pub(super) fn merge_bundle(
        &mut self,
        bundle: &Bundle,
        school: &toml::Table,
    ) -> (Vec<ConfigError>, Vec<String>) {
        let file = &bundle.file;
        let describe = bundle.describe();
        let mut conflicts = Vec::new();
        let mut conflict = |key: String, message: String| {
            conflicts.push(ConfigError {
                file: self.origin.display_name.clone(),
                position: None,
                key,
                message,
            })
        };
        let mut from_bundle = Vec::new();
        // A school's profile of a bundle profile's name is its own until the
        // first bundle arrives (so the box answers at first boot); from then
        // on the trust's is used and the school's is only noted.
        let mut replaced = Vec::new();
        for name in self.profiles.keys() {
            if file.profiles.contains_key(name) {
                replaced.push(name.clone());
            } else if !file.local.own_profiles {
                conflict(
                    format!("profiles.{name}"),
                    format!(
                        "{describe} lets schools have no profiles of their own: remove [profiles.{name}] or ask the trust to add it"
                    ),
                );
            }
        }
        for (name, profile) in &file.profiles {
            self.profiles.insert(name.clone(), profile.clone());
            from_bundle.push(format!("profiles.{name}"));
        }
        for category in &file.locked_categories {
            if !self
                .blocking
                .locked_categories
                .iter()
                .any(|c| c.get_ref() == category)
            {
                self.blocking
                    .locked_categories
                    .push(Spanned::new(0..0, category.clone()));
            }
        }
        if !file.alert_categories.is_empty() {
            let mut alerting = self.alerting_categories();
            for category in &file.alert_categories {
                if !alerting.contains(category) {
                    alerting.push(category.clone());
                }
            }
            self.alerts.categories = Some(
                alerting
                    .into_iter()
                    .map(|name| Spanned::new(0..0, name))
                    .collect(),
            );
        }
        for list in &file.lists {
            let name = list.name.get_ref();
            if self.lists.iter().any(|l| l.name.get_ref() == name) {
                conflict(
                    "lists".into(),
                    format!(
                        "{describe} has a list named '{name}': rename the school's own list of that name"
                    ),
                );
                continue;
            }
            from_bundle.push(format!("lists[{}]", self.lists.len()));
            self.lists.push(list.clone());
        }
        if let Some(rules) = &file.name_rules {
            if school.contains_key("name_rules") {
                conflict(
                    "name_rules".into(),
                    format!("{describe} sets the name rules: remove [name_rules] from this file"),
                );
            }
            self.name_rules = rules.clone();
            from_bundle.push("name_rules".into());
        }
        if file.local.unlock != UnlockRight::Any {
            let alerting = self.alerting_categories();
            for (name, profile) in &self.profiles {
                if file.profiles.contains_key(name) {
                    continue;
                }
                for category in &profile.allow_categories {
                    if alerting.contains(category.get_ref()) {
                        conflict(
                            format!("profiles.{name}.allow_categories"),
                            format!(
                                "'{}' alerts the safeguarding lead, and {describe} lets no school release such a category: remove it",
                                category.get_ref()
                            ),
                        );
                    }
                }
            }
        }
        self.bundle = Some(Arc::new(BundleInForce {
            trust: file.trust.clone(),
            serial: file.serial,
            local: file.local,
            profiles: file.profiles.keys().cloned().collect(),
            replaced,
            path: self.trust_bundle_path(),
        }));
        (conflicts, from_bundle)
    }

    /// Problems in the `[trust]` table itself.
    pub(super) fn validate_trust(&self, problems: &mut super::Problems<'_>) {
        let Some(trust) = &self.trust else { return };
        if let Err(message) = bundle::check_public_key(trust.public_key.get_ref()) {
            problems.at(&trust.public_key.span(), "trust.public_key".into(), message);
        }
        let url = trust.bundle_url.get_ref();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problems.at(
                &trust.bundle_url.span(),
                "trust.bundle_url".into(),
                format!("'{url}' is not a web address: write e.g. \"https://trust.example/lollipop/bundle.toml\""),
            );
        }
        if trust.cadence_hours == 0 || trust.cadence_hours > 24 * 7 {
            problems.at(
                &(0..0),
                "trust.cadence_hours".into(),
                "must be between 1 and 168 hours".into(),
            );
        }
    }
}

/// Puts a problem found in a setting the bundle brought down to the bundle.
pub(super) fn blame_bundle(error: &mut ConfigError, from_bundle: &[String], bundle: &Bundle) {
    let ours = from_bundle.iter().any(|key| {
        error
            .key
            .strip_prefix(key.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    });
    if ours {
        error.file = bundle.describe();
        error.position = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOrigin;

    const BUNDLE: &str = "serial = 7\ntrust = \"Oak Learning Trust\"\n\
        locked_categories = [\"gambling\"]\nalert_categories = [\"drugs\"]\n\
        [local]\nunlock = \"not-alerting\"\n\
        [profiles.ks2]\nmode = \"blocklist\"\nblock_categories = [\"gambling\", \"self-harm\"]\n";

    fn school(dir: &std::path::Path, public_key: &str, own: &str) -> String {
        format!(
            "[server]\ndata_dir = \"{}\"\ndefault_profile = \"ks2\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n\
             [[upstream]]\naddress = \"127.0.0.1:9\"\nprotocol = \"udp\"\n\
             [trust]\nbundle_url = \"https://trust.example/bundle.toml\"\npublic_key = \"{public_key}\"\n{own}",
            dir.display()
        )
    }

    fn parse(text: &str) -> Result<Config, crate::config::ConfigErrors> {
        Config::parse(text, ConfigOrigin::default())
    }

    #[test]
    fn the_bundle_in_force_is_merged_and_a_conflict_names_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (private, public) = bundle::generate_key().expect("key");
        // No bundle yet: the school's own file, and no profile, is an error.
        let error = parse(&school(dir.path(), &public, ""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no profiles defined"), "{error}");

        let sources = dir.path().join("sources");
        std::fs::create_dir_all(&sources).expect("sources");
        let signed = bundle::sign(&private, BUNDLE).expect("signed");
        std::fs::write(sources.join(BUNDLE_FILE), &signed).expect("write");
        let config = parse(&school(
            dir.path(),
            &public,
            "[alerts]\ncategories = [\"self-harm\"]\n",
        ))
        .expect("merged");
        let bundle = config.bundle.as_ref().expect("in force");
        assert_eq!(bundle.serial, 7);
        assert_eq!(bundle.local.unlock, UnlockRight::NotAlerting);
        assert!(
            config.profiles["ks2"]
                .block_categories
                .iter()
                .any(|c| c.get_ref() == "self-harm")
        );
        let locked: Vec<&str> = config
            .blocking
            .locked_categories
            .iter()
            .map(|c| c.get_ref().as_str())
            .collect();
        assert_eq!(locked, ["iwf", "ctiru", "gambling"]);
        assert_eq!(config.alerting_categories(), ["self-harm", "drugs"]);

        // The school's own ks2 gives way (and is noted); its own staff
        // profile may not release an alerting category.
        let own = "[profiles.ks2]\nmode = \"blocklist\"\n";
        let config = parse(&school(dir.path(), &public, own)).expect("bundle wins");
        assert_eq!(config.profiles["ks2"].block_categories.len(), 2);
        assert_eq!(
            config.bundle.as_ref().map(|b| b.replaced.clone()),
            Some(vec!["ks2".to_string()])
        );
        let own = "[profiles.staff]\nmode = \"blocklist\"\naudience = \"staff\"\nallow_categories = [\"drugs\"]\n\
                   [name_rules]\nenabled = false\n";
        let with_rules = BUNDLE.replace("[local]", "[name_rules]\nenabled = true\n[local]");
        let signed_rules = bundle::sign(&private, &with_rules).expect("signed");
        std::fs::write(sources.join(BUNDLE_FILE), &signed_rules).expect("write");
        let error = parse(&school(dir.path(), &public, own))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "name_rules: Oak Learning Trust's policy bundle (serial 7) sets the name rules"
            ),
            "{error}"
        );
        assert!(
            error.contains("profiles.staff.allow_categories: 'drugs' alerts the safeguarding lead"),
            "{error}"
        );

        // A bundle changed on disk is not believed.
        let mut tampered = signed.clone();
        let at = tampered.len() - 3;
        tampered[at] ^= 1;
        std::fs::write(sources.join(BUNDLE_FILE), &tampered).expect("write");
        let error = parse(&school(dir.path(), &public, ""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not check out"), "{error}");
    }

    #[test]
    fn a_bundles_own_mistake_is_put_down_to_the_bundle() {
        let dir = tempfile::tempdir().expect("dir");
        let (private, public) = bundle::generate_key().expect("key");
        let own = "[profiles.ks2]\nmode = \"blocklist\"\n";
        let config = parse(&school(dir.path(), &public, own)).expect("no bundle yet");
        let wrong = "serial = 1\ntrust = \"Oak\"\n[profiles.ks2]\nmode = \"blocklist\"\nblock_categories = [\"no-such\"]\n";
        let signed = bundle::sign(&private, wrong).expect("signed");
        let candidate = bundle::verify(&signed, &public).expect("verifies");
        let error = config
            .with_candidate_bundle(&candidate)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("Oak's policy bundle (serial 1): profiles.ks2.block_categories[0]"),
            "{error}"
        );
    }
}
