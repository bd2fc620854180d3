//! A trust's policy bundle as a file: the TOML a multi-academy trust or
//! local authority publishes (its profiles, lists, locked and alerting
//! categories, name rules, and what its schools may change locally), signed
//! with the trust's Ed25519 key. The signed file is the bundle's text after
//! one comment line that carries the signature, so it still reads as TOML.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::Deserialize;

use super::name_rules::NameRulesConfig;
use super::schema::{ListConfig, ProfileConfig};

/// The first line of a signed bundle, before the base64 signature.
const SIGNATURE_PREFIX: &str = "# lollipop trust bundle signature: ed25519 ";

/// What a school may still change on its own page and in its own file
/// while a trust's bundle is in force (`[local]` in the bundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRights {
    /// The page's allow entries (an allow entry for a name in an alerting
    /// category also needs `unlock = "any"`).
    #[serde(default = "yes")]
    pub allow_entries: bool,
    /// The page's deny entries.
    #[serde(default = "yes")]
    pub deny_entries: bool,
    /// Staff unlocks and override codes.
    #[serde(default)]
    pub unlock: UnlockRight,
    /// Profiles of the school's own beside the bundle's (a bundle's profile
    /// can never be redefined by a school).
    #[serde(default = "yes")]
    pub own_profiles: bool,
}

impl Default for LocalRights {
    fn default() -> Self {
        LocalRights {
            allow_entries: true,
            deny_entries: true,
            unlock: UnlockRight::default(),
            own_profiles: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// How far a school's staff may unlock sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnlockRight {
    /// As without a bundle: the school's safeguarding lead may release an
    /// alerting category for one device or a staff room.
    Any,
    /// Unlocks of sites outside the alerting categories only: nobody at the
    /// school, the safeguarding lead included, releases an alerting one.
    #[default]
    NotAlerting,
    /// No unlocks at all.
    None,
}

impl UnlockRight {
    pub fn as_str(self) -> &'static str {
        match self {
            UnlockRight::Any => "any",
            UnlockRight::NotAlerting => "not-alerting",
            UnlockRight::None => "none",
        }
    }
}

/// The bundle's TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    /// Raised with every new bundle; a school never goes back to a lower one.
    pub serial: u64,
    /// The trust's name, as its schools' pages show it.
    pub trust: String,
    #[serde(default)]
    pub local: LocalRights,
    /// Categories nobody at a school may unlock, added to the school's.
    #[serde(default)]
    pub locked_categories: Vec<String>,
    /// Categories whose blocks alert the safeguarding lead, added to the
    /// school's.
    #[serde(default)]
    pub alert_categories: Vec<String>,
    /// Lists the trust adds (downloads or catalogue sources only).
    #[serde(default)]
    pub lists: Vec<ListConfig>,
    /// The name rules for every school (a school's own `[name_rules]` is
    /// then refused).
    pub name_rules: Option<NameRulesConfig>,
    /// The trust's profiles: a school cannot redefine them.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
}

/// A bundle whose signature checked out, with its text.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The signed file as received.
    pub signed: Vec<u8>,
    pub file: BundleFile,
}

impl Bundle {
    /// "Oak Learning Trust's policy bundle (serial 7)".
    pub fn describe(&self) -> String {
        describe(&self.file.trust, self.file.serial)
    }
}

/// How messages name a bundle.
pub fn describe(trust: &str, serial: u64) -> String {
    format!("{trust}'s policy bundle (serial {serial})")
}

/// A new key pair for a trust: the private key (PKCS#8, base64) to keep
/// secret, and the public key (base64 of the 32 bytes) for the schools'
/// `[trust] public_key`.
pub fn generate_key() -> Result<(String, String), String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| "the system's random source failed".to_string())?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| "the new key does not read back".to_string())?;
    Ok((
        BASE64.encode(pkcs8.as_ref()),
        BASE64.encode(pair.public_key().as_ref()),
    ))
}

/// The public key of a private key made by [`generate_key`].
pub fn public_key_of(private_key: &str) -> Result<String, String> {
    Ok(BASE64.encode(key_pair(private_key)?.public_key().as_ref()))
}

fn key_pair(private_key: &str) -> Result<Ed25519KeyPair, String> {
    let pkcs8 = BASE64
        .decode(private_key.trim())
        .map_err(|_| "the private key is not base64 (make one with `lollipop trust keygen`)")?;
    Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| "the private key is not an Ed25519 key made by `lollipop trust keygen`".into())
}

/// Signs a bundle's text after checking that it reads as a bundle: the
/// signed file to publish.
pub fn sign(private_key: &str, text: &str) -> Result<Vec<u8>, String> {
    let pair = key_pair(private_key)?;
    parse_text(text)?;
    let body = text.as_bytes();
    let signature = pair.sign(body);
    let mut signed =
        format!("{SIGNATURE_PREFIX}{}\n", BASE64.encode(signature.as_ref())).into_bytes();
    signed.extend_from_slice(body);
    Ok(signed)
}

/// Checks a public key as written in `[trust] public_key`.
pub fn check_public_key(public_key: &str) -> Result<Vec<u8>, String> {
    let bytes = BASE64.decode(public_key.trim()).map_err(|_| {
        "the public key is not base64: copy the line `lollipop trust keygen` printed".to_string()
    })?;
    if bytes.len() != 32 {
        return Err(format!(
            "an Ed25519 public key is 32 bytes, this one is {}: copy the line `lollipop trust keygen` printed",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Checks a signed bundle against the trust's public key and reads it.
/// Nothing in it is believed until the signature checks out.
pub fn verify(signed: &[u8], public_key: &str) -> Result<Bundle, String> {
    let key = check_public_key(public_key)?;
    let newline = signed
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("it is not a signed bundle (no signature line)")?;
    let first = std::str::from_utf8(&signed[..newline])
        .map_err(|_| "its signature line is not text")?
        .trim_end_matches('\r');
    let encoded = first
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or("it is not a signed bundle: the first line is not the signature (sign it with `lollipop trust sign`)")?;
    let signature = BASE64
        .decode(encoded.trim())
        .map_err(|_| "its signature is not base64")?;
    let body = &signed[newline + 1..];
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(body, &signature)
        .map_err(|_| {
            "its signature does not match the trust's public key: it was changed after signing, or signed with another key"
                .to_string()
        })?;
    let text = std::str::from_utf8(body).map_err(|_| "the signed bundle is not UTF-8 text")?;
    Ok(Bundle {
        signed: signed.to_vec(),
        file: parse_text(text)?,
    })
}

/// Reads a bundle's TOML, refusing what a school could not use safely.
fn parse_text(text: &str) -> Result<BundleFile, String> {
    let file: BundleFile =
        toml::from_str(text).map_err(|error| format!("the bundle does not read: {error}"))?;
    if file.trust.trim().is_empty() {
        return Err("the bundle has no trust name (`trust = \"...\"`)".into());
    }
    for list in &file.lists {
        if list.path.is_some() || list.credential_file.is_some() {
            return Err(format!(
                "the bundle's list '{}' names a file on the school's box (path or credential_file): a trust's lists are downloads or catalogue sources",
                list.name.get_ref()
            ));
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "serial = 3\ntrust = \"Oak Learning Trust\"\n\
        locked_categories = [\"extremism\"]\n[local]\nunlock = \"none\"\n\
        [profiles.ks2]\nmode = \"blocklist\"\nblock_categories = [\"gambling\"]\n";

    #[test]
    fn a_signed_bundle_verifies_and_reads() {
        let (private, public) = generate_key().expect("key");
        assert_eq!(public_key_of(&private).expect("public"), public);
        let signed = sign(&private, TEXT).expect("signed");
        let bundle = verify(&signed, &public).expect("verifies");
        assert_eq!(bundle.file.serial, 3);
        assert_eq!(bundle.file.local.unlock, UnlockRight::None);
        assert!(bundle.file.local.allow_entries);
        assert_eq!(bundle.file.locked_categories, ["extremism"]);
        assert!(bundle.file.profiles.contains_key("ks2"));
        assert_eq!(
            bundle.describe(),
            "Oak Learning Trust's policy bundle (serial 3)"
        );
    }

    #[test]
    fn a_changed_byte_or_another_key_is_refused() {
        let (private, public) = generate_key().expect("key");
        let signed = sign(&private, TEXT).expect("signed");
        let mut tampered = signed.clone();
        let at = tampered.len() - 5;
        tampered[at] ^= 1;
        let error = verify(&tampered, &public).unwrap_err();
        assert!(
            error.contains("does not match the trust's public key"),
            "{error}"
        );
        let (_, other) = generate_key().expect("key");
        assert!(verify(&signed, &other).is_err());
        let error = verify(TEXT.as_bytes(), &public).unwrap_err();
        assert!(error.contains("not a signed bundle"), "{error}");
        assert!(verify(b"", &public).is_err());
        let error = verify(&signed, "c2hvcnQ=").unwrap_err();
        assert!(error.contains("32 bytes"), "{error}");
    }

    #[test]
    fn a_signed_bundle_that_does_not_read_is_refused() {
        // Signed properly, but not a bundle: what a trust's broken build
        // could publish. Believed only once it also reads.
        let (private, public) = generate_key().expect("key");
        let pair = key_pair(&private).expect("pair");
        let body = b"serial = \"seven\"\n";
        let mut signed = format!(
            "{SIGNATURE_PREFIX}{}\n",
            BASE64.encode(pair.sign(body).as_ref())
        )
        .into_bytes();
        signed.extend_from_slice(body);
        let error = verify(&signed, &public).unwrap_err();
        assert!(error.contains("the bundle does not read"), "{error}");
    }

    #[test]
    fn a_bundle_that_does_not_read_is_not_signed() {
        let (private, _) = generate_key().expect("key");
        assert!(sign(&private, "serial = \"x\"").is_err());
        assert!(sign(&private, "serial = 1\ntrust = \"\"").is_err());
        let with_path = "serial = 1\ntrust = \"T\"\n[[lists]]\nname = \"a\"\npath = \"/etc/passwd\"\ncategory = \"x\"\n";
        let error = sign(&private, with_path).unwrap_err();
        assert!(error.contains("names a file"), "{error}");
        assert!(sign("not a key", TEXT).is_err());
    }
}
