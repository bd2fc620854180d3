//! The status page's HTTPS certificate: the configured one, or a
//! self-signed one made on first start and kept in the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// The certificate and key files in use, generating them when needed.
pub fn certificate_files(config: &Config) -> Result<(PathBuf, PathBuf)> {
    if let (Some(cert), Some(key)) = (&config.web.certificate, &config.web.key) {
        return Ok((config.resolve_path(cert), config.resolve_path(key)));
    }
    let dir = config.resolve_path(&config.server.data_dir);
    let (cert, key) = (dir.join("web-cert.pem"), dir.join("web-key.pem"));
    if !cert.exists() || !key.exists() {
        generate(&cert, &key)?;
        tracing::info!(
            "made a self-signed certificate for the status page: {}",
            cert.display()
        );
    }
    Ok((cert, key))
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<()> {
    let mut names = vec!["lollipop".to_string(), "localhost".to_string()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .context("could not make a self-signed certificate")?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The TLS settings for the status page.
pub fn server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>> {
    let (cert_path, key_path) = certificate_files(config)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .with_context(|| format!("cannot read the certificate {}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("cannot read the private key {}", key_path.display()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("no TLS versions available")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .with_context(|| {
        format!(
            "the certificate {} and key {} do not go together",
            cert_path.display(),
            key_path.display()
        )
    })?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}
