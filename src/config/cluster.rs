//! `[cluster]`: an HA pair of appliances. A primary is run as any box is;
//! a secondary follows the primary's policy (every key of its config but
//! this box's own: addresses, data directory, the page, `[cluster]`) and
//! keeps its own listeners. This file holds the section's keys, their
//! checks, and the split of a config into the policy a secondary follows
//! and the keys it keeps.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{Config, ConfigErrors, ConfigOrigin, Problems};

/// What this box is in the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterRole {
    /// Serves its policy to the secondary over its HTTPS page.
    Primary,
    /// Follows the primary's policy; its page is read-only for policy.
    Secondary,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub role: ClusterRole,
    /// The secondary's way to the primary's page: `https://host:port`.
    pub primary: Option<Spanned<String>>,
    /// The SHA-256 of the primary's page certificate (hex, colons allowed):
    /// the secondary talks to that certificate and no other.
    pub primary_certificate_sha256: Option<Spanned<String>>,
    /// A file holding the pair's shared secret (64 hex characters), the
    /// same on both boxes: it signs every snapshot and lets the secondary in.
    pub pair_key_file: Option<PathBuf>,
    /// How often the secondary asks the primary for changes.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// What the primary's page calls this box (default: its host name).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_poll_seconds() -> u64 {
    2
}

/// Top-level tables that belong to one box, never followed.
pub const LOCAL_TABLES: &[&str] = &["listen", "web", "cluster", "limits"];
/// Keys of followed tables that belong to one box (paths on its disk).
pub const LOCAL_KEYS: &[(&str, &str)] = &[
    ("server", "data_dir"),
    ("server", "lists_dir"),
    ("log", "database"),
    ("log", "leases"),
];

/// The primary's address as the secondary dials it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryAddress {
    pub host: String,
    pub port: u16,
}

impl PrimaryAddress {
    /// `https://host:port` (the port defaults to 443).
    pub fn parse(url: &str) -> Result<PrimaryAddress, String> {
        let wrong = || {
            format!(
                "'{url}' is not the primary's page: write it as \"https://10.0.10.1:443\" (the address and port of the primary's [web] listen)"
            )
        };
        let rest = url.trim().strip_prefix("https://").ok_or_else(wrong)?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(wrong());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') || host.starts_with('[') => {
                (host, port.parse::<u16>().map_err(|_| wrong())?)
            }
            _ => (rest, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(wrong());
        }
        Ok(PrimaryAddress {
            host: host.to_string(),
            port,
        })
    }

    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

/// A pin written as hex, with or without colons, as 32 bytes.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(digits.trim()).map_err(|_| {
        "is not a SHA-256 in hex: copy it from `lollipop cluster pair` on the primary".to_string()
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "is {} bytes, a SHA-256 is 32: copy it from `lollipop cluster pair` on the primary",
            bytes.len()
        )
    })
}

/// The pair's secret from `path`: 64 hex characters (surrounding space
/// ignored).
pub fn read_pair_key(path: &Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        format!(
            "cannot read the pair key {}: {error}; `lollipop cluster pair` on the primary makes one, then copy it to the secondary",
            path.display()
        )
    })?;
    let bytes = hex::decode(text.trim()).map_err(|_| {
        format!(
            "the pair key {} is not 64 hex characters: copy the primary's file as it is",
            path.display()
        )
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "the pair key {} holds {} bytes, not 32: copy the primary's file as it is",
            path.display(),
            bytes.len()
        )
    })
}

impl Config {
    /// This box's role in a pair, if it is in one.
    pub fn cluster_role(&self) -> Option<ClusterRole> {
        self.cluster.as_ref().map(|cluster| cluster.role)
    }

    /// The secondary's `[cluster]`, when this box is one.
    pub fn secondary_of(&self) -> Option<&ClusterConfig> {
        self.cluster
            .as_ref()
            .filter(|cluster| cluster.role == ClusterRole::Secondary)
    }

    /// Where the pair's key file is, made absolute.
    pub fn pair_key_path(&self) -> Option<PathBuf> {
        self.cluster
            .as_ref()
            .and_then(|cluster| cluster.pair_key_file.as_ref())
            .map(|path| self.resolve_path(path))
    }

    pub(super) fn validate_cluster(&self, problems: &mut Problems<'_>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        match self.pair_key_path() {
            None => problems.at(
                &(0..0),
                "cluster.pair_key_file".into(),
                "a pair needs a shared key: run `lollipop cluster pair` on the primary and set pair_key_file on both boxes".into(),
            ),
            Some(path) => {
                if let Err(message) = read_pair_key(&path) {
                    problems.at(&(0..0), "cluster.pair_key_file".into(), message);
                }
            }
        }
        if !(1..=300).contains(&cluster.poll_seconds) {
            problems.at(
                &(0..0),
                "cluster.poll_seconds".into(),
                "must be between 1 and 300 seconds".into(),
            );
        }
        match cluster.role {
            ClusterRole::Primary => {
                if !self.web.enabled || !self.web.tls {
                    problems.at(
                        &(0..0),
                        "cluster.role".into(),
                        "the primary serves its policy over its HTTPS page: set [web] enabled = true and tls = true".into(),
                    );
                }
                for (key, value) in [
                    ("cluster.primary", &cluster.primary),
                    (
                        "cluster.primary_certificate_sha256",
                        &cluster.primary_certificate_sha256,
                    ),
                ] {
                    if let Some(value) = value {
                        problems.at(
                            &value.span(),
                            key.into(),
                            "is for a secondary: on the primary, leave it out".into(),
                        );
                    }
                }
            }
            ClusterRole::Secondary => {
                match &cluster.primary {
                    None => problems.at(
                        &(0..0),
                        "cluster.primary".into(),
                        "a secondary needs the primary's page, e.g. primary = \"https://10.0.10.1:443\"".into(),
                    ),
                    Some(url) => {
                        if let Err(message) = PrimaryAddress::parse(url.get_ref()) {
                            problems.at(&url.span(), "cluster.primary".into(), message);
                        }
                    }
                }
                match &cluster.primary_certificate_sha256 {
                    None => problems.at(
                        &(0..0),
                        "cluster.primary_certificate_sha256".into(),
                        "a secondary needs the primary's certificate pin: `lollipop cluster pair` on the primary prints it".into(),
                    ),
                    Some(pin) => {
                        if let Err(message) = parse_pin(pin.get_ref()) {
                            problems.at(
                                &pin.span(),
                                "cluster.primary_certificate_sha256".into(),
                                format!("'{}' {message}", pin.get_ref()),
                            );
                        }
                    }
                }
            }
        }
    }

    /// This config as a secondary runs it: `policy` (the primary's, from
    /// [`policy_part`]) with this file's own keys. Checked as any file is;
    /// the file name in messages says the primary's settings are in it.
    pub fn following(&self, policy: &toml::Table) -> Result<Config, ConfigErrors> {
        let text = followed_text(&self.origin.text, policy).map_err(|message| {
            ConfigErrors(vec![super::ConfigError {
                file: self.origin.display_name.clone(),
                position: None,
                key: String::new(),
                message,
            }])
        })?;
        Config::parse(
            &text,
            ConfigOrigin {
                display_name: format!("{} (with the primary's settings)", self.own_file_name()),
                base_dir: self.origin.base_dir.clone(),
                path: self.origin.path.clone(),
                text: String::new(),
            },
        )
    }

    /// The file's own name, without a note that the primary's settings
    /// are merged in.
    fn own_file_name(&self) -> String {
        match &self.origin.path {
            Some(path) => path.display().to_string(),
            None => self.origin.display_name.clone(),
        }
    }

    /// The `[[listen]]` addresses in order: a room's unlock made on the
    /// primary reaches the secondary's listener at the same position.
    pub fn listen_addresses(&self) -> Vec<String> {
        self.listen
            .iter()
            .map(|listen| listen.address.get_ref().clone())
            .collect()
    }
}

/// The policy a secondary follows from a config's text: every key but the
/// box's own ([`LOCAL_TABLES`], [`LOCAL_KEYS`]).
pub fn policy_part(text: &str) -> Result<toml::Table, String> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|error| format!("the config does not parse: {error}"))?;
    for name in LOCAL_TABLES {
        table.remove(*name);
    }
    for (name, key) in LOCAL_KEYS {
        if let Some(toml::Value::Table(inner)) = table.get_mut(*name) {
            inner.remove(*key);
        }
    }
    Ok(table)
}

/// `policy` with the box's own keys taken from `own_text`, as TOML text.
pub fn followed_text(own_text: &str, policy: &toml::Table) -> Result<String, String> {
    let own: toml::Table = own_text
        .parse()
        .map_err(|error| format!("the config does not parse: {error}"))?;
    let mut merged = policy.clone();
    for name in LOCAL_TABLES {
        merged.remove(*name);
        if let Some(value) = own.get(*name) {
            merged.insert((*name).to_string(), value.clone());
        }
    }
    for (name, key) in LOCAL_KEYS {
        let own_value = own
            .get(*name)
            .and_then(|table| table.as_table())
            .and_then(|table| table.get(*key));
        match merged.get_mut(*name) {
            Some(toml::Value::Table(inner)) => {
                inner.remove(*key);
                if let Some(value) = own_value {
                    inner.insert((*key).to_string(), value.clone());
                }
            }
            Some(_) => return Err(format!("the primary's [{name}] is not a table")),
            None => {
                if let Some(value) = own_value {
                    let mut inner = toml::Table::new();
                    inner.insert((*key).to_string(), value.clone());
                    merged.insert((*name).to_string(), toml::Value::Table(inner));
                }
            }
        }
    }
    toml::to_string(&merged)
        .map_err(|error| format!("the merged config cannot be written: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"
[server]
data_dir = "/var/lib/primary"
default_profile = "ks2"

[[listen]]
address = "10.0.10.1:53"

[web]
tls = true

[[upstream]]
address = "9.9.9.9"
protocol = "udp"

[profiles.ks2]
mode = "blocklist"
block_categories = ["gambling"]
"#;

    const SECONDARY: &str = r#"
[server]
data_dir = "/var/lib/secondary"
default_profile = "staff"

[[listen]]
address = "10.0.10.2:53"

[cluster]
role = "secondary"

[profiles.staff]
mode = "blocklist"
"#;

    #[test]
    fn the_secondary_keeps_its_own_keys_and_follows_the_rest() {
        let policy = policy_part(PRIMARY).unwrap();
        assert!(policy.get("listen").is_none());
        assert!(policy.get("web").is_none());
        assert!(policy["server"].get("data_dir").is_none());
        let merged: toml::Table = followed_text(SECONDARY, &policy).unwrap().parse().unwrap();
        assert_eq!(
            merged["server"]["data_dir"].as_str(),
            Some("/var/lib/secondary")
        );
        assert_eq!(merged["server"]["default_profile"].as_str(), Some("ks2"));
        assert_eq!(
            merged["listen"][0]["address"].as_str(),
            Some("10.0.10.2:53")
        );
        assert_eq!(merged["cluster"]["role"].as_str(), Some("secondary"));
        // The primary's profiles replace the file's own.
        assert!(merged["profiles"].get("staff").is_none());
        assert!(merged["profiles"].get("ks2").is_some());
        assert!(merged.get("web").is_none());
    }

    fn checked(cluster: &str, web: &str, key: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        if let Some(key) = key {
            std::fs::write(dir.path().join("pair.key"), key).unwrap();
        }
        let text = format!(
            "[server]\ndata_dir = \"data\"\ndefault_profile = \"ks2\"\n[[listen]]\naddress = \"127.0.0.1:5300\"\n[[upstream]]\naddress = \"9.9.9.9\"\nprotocol = \"udp\"\n[web]\n{web}\n[cluster]\npair_key_file = \"pair.key\"\n{cluster}\n[profiles.ks2]\nmode = \"blocklist\"\n"
        );
        let origin = ConfigOrigin {
            display_name: "lollipop.toml".into(),
            base_dir: dir.path().to_path_buf(),
            path: None,
            text: String::new(),
        };
        match Config::parse(&text, origin) {
            Ok(_) => String::new(),
            Err(errors) => errors.to_string(),
        }
    }

    #[test]
    fn config_check_names_what_a_pair_is_missing() {
        let key = "ab".repeat(32);
        let pin = "cd".repeat(32);
        let secondary = format!(
            "role = \"secondary\"\nprimary = \"https://10.0.10.1:443\"\nprimary_certificate_sha256 = \"{pin}\""
        );
        assert_eq!(checked(&secondary, "", Some(&key)), "");
        assert_eq!(checked("role = \"primary\"", "tls = true", Some(&key)), "");
        let errors = checked("role = \"primary\"", "", Some(&key));
        assert!(
            errors.contains("cluster.role") && errors.contains("tls = true"),
            "{errors}"
        );
        let errors = checked("role = \"secondary\"", "", Some(&key));
        assert!(errors.contains("cluster.primary:"), "{errors}");
        assert!(
            errors.contains("cluster.primary_certificate_sha256"),
            "{errors}"
        );
        let errors = checked(&secondary, "", None);
        assert!(errors.contains("cannot read the pair key"), "{errors}");
        let errors = checked(&secondary, "", Some("not hex"));
        assert!(errors.contains("not 64 hex characters"), "{errors}");
        let errors = checked(
            &secondary.replace("https://10.0.10.1:443", "10.0.10.1"),
            "",
            Some(&key),
        );
        assert!(
            errors.contains("lollipop.toml:") && errors.contains("https://"),
            "{errors}"
        );
    }

    #[test]
    fn the_primary_address_and_pin_are_read_or_refused_with_the_way_to_write_them() {
        assert_eq!(
            PrimaryAddress::parse("https://10.0.10.1:8443/").unwrap(),
            PrimaryAddress {
                host: "10.0.10.1".into(),
                port: 8443
            }
        );
        assert_eq!(
            PrimaryAddress::parse("https://lollipop.school")
                .unwrap()
                .port,
            443
        );
        assert_eq!(
            PrimaryAddress::parse("https://[fd00::1]:443").unwrap().host,
            "fd00::1"
        );
        assert!(
            PrimaryAddress::parse("http://10.0.10.1")
                .unwrap_err()
                .contains("https://")
        );
        assert!(PrimaryAddress::parse("https://10.0.10.1/x").is_err());
        let pin = "ab".repeat(32);
        assert_eq!(parse_pin(&pin).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
        assert!(parse_pin("abcd").unwrap_err().contains("2 bytes"));
    }
}
