//! The block page's certificate authority: made on this box the first time
//! the HTTPS block page is on, its key kept in the data directory readable
//! only by the service, never shown or sent anywhere. It signs short-lived
//! certificates for blocked names only (the listener asks the pipeline
//! first), and its own certificate excludes names a school must never see
//! intercepted, so a device that trusts it trusts as little as it can.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// The CA's private key, in the data directory. Never copied off the box.
pub const KEY_FILE: &str = "block-ca-key.pem";
/// The CA's certificate (public), what managed devices install.
pub const CERT_FILE: &str = "block-ca.pem";

/// How long a certificate for a blocked name is good for: a week, so a
/// leaked one is soon worthless and a name unblocked is soon forgotten.
const LEAF_DAYS: i64 = 7;
/// A cached certificate is minted again after this, so none is served
/// with less than a day left.
const LEAF_REUSE_SECS: i64 = 6 * 24 * 3600;
/// Certificates kept for blocked names; a school's blocked lookups in a
/// week are mostly a few hundred names.
pub const LEAF_CACHE_SIZE: usize = 512;
/// The CA's own life: ten years, as a managed device's trust store keeps it
/// until it is replaced, and replacing it means redeploying to every device.
const CA_DAYS: i64 = 3653;

/// Names the CA may never sign for (RFC 5280 excluded subtrees, each with
/// its subdomains): government, health and police services, and the help
/// sites every profile allows. No policy blocks them, and a device must be
/// able to tell the real site from this box even if the key were stolen.
pub fn excluded_names() -> Vec<String> {
    let mut names: Vec<String> = ["gov.uk", "nhs.uk", "police.uk"]
        .into_iter()
        .map(String::from)
        .collect();
    names.extend(
        include_str!("../../lists/help.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.to_ascii_lowercase()),
    );
    names.sort();
    names.dedup();
    names
}

/// Whether `name` is in one of the excluded subtrees.
pub fn is_excluded(name: &str, excluded: &[String]) -> bool {
    excluded.iter().any(|suffix| {
        name == suffix
            || name
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

pub struct BlockCa {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// One key for every leaf, made at start and kept in memory only.
    leaf_key: KeyPair,
    leaf_signer: Arc<dyn rustls::sign::SigningKey>,
    excluded: Vec<String>,
    cache: Mutex<LeafCache>,
}

impl std::fmt::Debug for BlockCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key, not even in a debug line.
        f.debug_struct("BlockCa").finish_non_exhaustive()
    }
}

impl BlockCa {
    /// The CA in `data_dir`, made there if it has none yet. An existing key
    /// that cannot be read, or that others could read, is an error: the
    /// HTTPS block page then stays off (nothing else depends on it).
    pub fn load_or_create(data_dir: &Path, school: &str, now_unix: i64) -> Result<BlockCa> {
        let (key_path, cert_path) = (data_dir.join(KEY_FILE), data_dir.join(CERT_FILE));
        if !key_path.exists() {
            if cert_path.exists() {
                tracing::warn!(
                    "{} has no key beside it: a new block page CA is made, and managed devices need the new certificate",
                    cert_path.display()
                );
            }
            create(data_dir, school, now_unix)?;
            tracing::info!(
                "made the block page's certificate authority: {} (the key stays on this box)",
                cert_path.display()
            );
        }
        load(&key_path, &cert_path)
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        self.cert_der.as_ref()
    }

    /// Whether the CA may sign for `name` at all.
    pub fn may_sign(&self, name: &str) -> bool {
        !name.is_empty()
            && !name.contains('*')
            && name.parse::<std::net::IpAddr>().is_err()
            && !is_excluded(name, &self.excluded)
    }

    /// The TLS settings serving `name`: from the cache, or with a new
    /// certificate for it. The caller has already found `name` blocked for
    /// the device asking; this only signs.
    pub fn server_config(&self, name: &str, now_unix: i64) -> Result<Arc<rustls::ServerConfig>> {
        if !self.may_sign(name) {
            bail!("{name} is never signed by the block page CA");
        }
        if let Some(config) = self.cache().get(name, now_unix) {
            return Ok(config);
        }
        let config = self.mint(name, now_unix)?;
        self.cache().insert(name, config.clone(), now_unix);
        Ok(config)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LeafCache> {
        // The cache holds no invariant a panic could break: use it anyway.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn mint(&self, name: &str, now_unix: i64) -> Result<Arc<rustls::ServerConfig>> {
        let mut params = CertificateParams::new(vec![name.to_string()])
            .with_context(|| format!("cannot make a certificate for {name}"))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial()?);
        // An hour's slack for devices whose clocks run a little behind.
        params.not_before = at(now_unix - 3600)?;
        params.not_after = at(now_unix + LEAF_DAYS * 24 * 3600)?;
        let leaf = params
            .signed_by(&self.leaf_key, &self.issuer)
            .with_context(|| format!("cannot sign a certificate for {name}"))?;
        let certified = CertifiedKey::new(
            vec![leaf.der().clone(), self.cert_der.clone()],
            self.leaf_signer.clone(),
        );
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("no TLS versions available")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(One(Arc::new(certified))));
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(tls))
    }
}

/// Always the one certificate minted for the connection's name.
#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for One {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn at(unix: i64) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(|error| anyhow!("bad time: {error}"))
}

fn serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| anyhow!("no randomness: {error}"))?;
    // Positive, as DER integers for serials must be.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The CA's certificate settings. Permitted subtrees are impossible (it
/// must sign whatever name a list blocks), so the limits are: excluded
/// subtrees, no CA below it (pathLen 0), certificate signing only, and
/// server authentication only (honoured by Windows, Chrome and Apple).
fn ca_params(school: &str, now_unix: i64) -> Result<CertificateParams> {
    let mut id = [0u8; 4];
    getrandom::fill(&mut id).map_err(|error| anyhow!("no randomness: {error}"))?;
    let mut params = CertificateParams::default();
    let school = school.trim();
    let school = if school.is_empty() {
        "this school"
    } else {
        school
    };
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Lollipop block page CA {}", hex::encode(id)),
    );
    params.distinguished_name.push(
        DnType::OrganizationName,
        school.chars().take(60).collect::<String>(),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: Vec::new(),
        excluded_subtrees: excluded_names()
            .into_iter()
            .map(GeneralSubtree::DnsName)
            .collect(),
    });
    params.serial_number = Some(serial()?);
    params.not_before = at(now_unix - 24 * 3600)?;
    params.not_after = at(now_unix + CA_DAYS * 24 * 3600)?;
    Ok(params)
}

/// Makes the CA's key and certificate. The certificate is written first:
/// a key without its certificate would be taken for a damaged CA, while a
/// certificate without its key is simply replaced.
fn create(data_dir: &Path, school: &str, now_unix: i64) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("cannot make the block page CA's key")?;
    let certificate = ca_params(school, now_unix)?
        .self_signed(&key)
        .context("cannot make the block page CA's certificate")?;
    write_atomically(
        &data_dir.join(CERT_FILE),
        certificate.pem().as_bytes(),
        0o644,
    )?;
    write_atomically(
        &data_dir.join(KEY_FILE),
        key.serialize_pem().as_bytes(),
        0o600,
    )
}

/// Writes `path` by renaming a new file made with `mode` from the start,
/// so it is never readable by others even while being written, and is
/// never seen half-written.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temporary = temporary_beside(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = (|| -> Result<()> {
        let mut file = options
            .open(&temporary)
            .with_context(|| format!("cannot create {}", temporary.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot write {}", path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}", std::process::id()));
    path.with_file_name(name)
}

fn load(key_path: &Path, cert_path: &Path) -> Result<BlockCa> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} can be read by other users (mode {:o}), so it may have been copied: delete it and {} to make a new CA, and install the new certificate on managed devices",
                key_path.display(),
                mode & 0o777,
                cert_path.display()
            );
        }
    }
    let damaged = |what: &str| {
        format!(
            "the block page CA's {what} is damaged: delete {} and {} to make a new CA, and install the new certificate on managed devices",
            key_path.display(),
            cert_path.display()
        )
    };
    let key_pem = std::fs::read_to_string(key_path).with_context(|| damaged("key"))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|_| anyhow!(damaged("key")))?;
    let cert_der = CertificateDer::from_pem_file(cert_path)
        .map_err(|_| anyhow!(damaged("certificate")))?
        .into_owned();
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der.as_ref())
        .map_err(|_| anyhow!(damaged("certificate")))?;
    if parsed.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key) {
        bail!(
            "{} and {} do not go together: {}",
            key_path.display(),
            cert_path.display(),
            damaged("certificate")
        );
    }
    let cert_pem = pem_of(cert_der.as_ref());
    let issuer =
        Issuer::from_ca_cert_der(&cert_der, key).map_err(|_| anyhow!(damaged("certificate")))?;
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("cannot make a key for the block page's certificates")?;
    let leaf_signer = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            leaf_key.serialize_der(),
        )))
        .context("cannot use the block page's certificate key")?;
    Ok(BlockCa {
        cert_der,
        cert_pem,
        issuer,
        leaf_key,
        leaf_signer,
        excluded: excluded_names(),
        cache: Mutex::new(LeafCache::new(LEAF_CACHE_SIZE)),
    })
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Certificates minted for blocked names, at most `capacity`, each reused
/// for [`LEAF_REUSE_SECS`]. Generic over what is kept, for its tests.
pub struct LeafCache<T = Arc<rustls::ServerConfig>> {
    capacity: usize,
    entries: HashMap<String, (T, i64)>,
}

impl<T: Clone> LeafCache<T> {
    pub fn new(capacity: usize) -> LeafCache<T> {
        LeafCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `name` if it was minted recently enough to serve.
    pub fn get(&self, name: &str, now_unix: i64) -> Option<T> {
        self.entries
            .get(name)
            .filter(|(_, minted)| fresh(*minted, now_unix))
            .map(|(value, _)| value.clone())
    }

    /// Keeps `value` for `name`; when full, stale entries go first, then
    /// the oldest.
    pub fn insert(&mut self, name: &str, value: T, now_unix: i64) {
        if !self.entries.contains_key(name) && self.entries.len() >= self.capacity {
            self.entries
                .retain(|_, (_, minted)| fresh(*minted, now_unix));
            while self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, minted))| *minted)
                    .map(|(name, _)| name.clone());
                match oldest {
                    Some(oldest) => self.entries.remove(&oldest),
                    None => break,
                };
            }
        }
        self.entries.insert(name.to_string(), (value, now_unix));
    }
}

fn fresh(minted: i64, now_unix: i64) -> bool {
    (minted..minted + LEAF_REUSE_SECS).contains(&now_unix)
}

#[cfg(test)]
mod tests;
