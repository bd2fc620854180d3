//! `lollipop cluster pair`: on the primary of an HA pair, makes the pair
//! key if there is none and prints what the secondary's config needs (the
//! primary's address, its certificate's pin, the key file).

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::cluster::PairKey;
use crate::cluster::follow::certificate_pin;
use crate::config::Config;
use crate::config::cluster::ClusterRole;

/// Where the key goes when the config names no file yet.
const DEFAULT_KEY_FILE: &str = "cluster-pair.key";

pub fn pair(config: &Config) -> Result<String> {
    if config.cluster_role() == Some(ClusterRole::Secondary) {
        bail!("this box is a secondary: run `lollipop cluster pair` on the primary");
    }
    if !config.web.enabled || !config.web.tls {
        bail!(
            "the secondary reaches the primary over its HTTPS page: set [web] enabled = true and tls = true here first, then run this again"
        );
    }
    let key_path = config.pair_key_path().unwrap_or_else(|| {
        config
            .resolve_path(&config.server.data_dir)
            .join(DEFAULT_KEY_FILE)
    });
    let mut made = false;
    if !key_path.exists() {
        if let Some(dir) = key_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_secret(&key_path, PairKey::generate_hex().as_bytes())?;
        made = true;
    }
    crate::config::cluster::read_pair_key(&key_path).map_err(anyhow::Error::msg)?;
    let (cert_path, _) = crate::web::tls::certificate_files(config)?;
    let cert = CertificateDer::from_pem_file(&cert_path)
        .with_context(|| format!("cannot read the page's certificate {}", cert_path.display()))?;
    let pin = certificate_pin(cert.as_ref());
    let page = config
        .web
        .public_url
        .clone()
        .or_else(|| {
            config
                .web_addresses()
                .first()
                .map(|address| format!("https://{address}"))
        })
        .unwrap_or_else(|| "https://<this box's address>:<its page's port>".into());
    let mut out = String::new();
    if made {
        out.push_str(&format!("Made the pair key {}.\n", key_path.display()));
    } else {
        out.push_str(&format!("The pair key is {}.\n", key_path.display()));
    }
    if config.cluster_role() != Some(ClusterRole::Primary) {
        out.push_str(&format!(
            "\nAdd to this box's config (the primary):\n\n[cluster]\nrole = \"primary\"\npair_key_file = \"{}\"\n",
            key_path.display()
        ));
    }
    out.push_str(&format!(
        "\nCopy {} to the secondary (readable by the lollipop user only), and add to its config:\n\n[cluster]\nrole = \"secondary\"\nprimary = \"{page}\"\nprimary_certificate_sha256 = \"{pin}\"\npair_key_file = \"/etc/lollipop/cluster-pair.key\"\n\nList the secondary's own [[listen]] addresses in the same order as here, so a room's unlock reaches the same room.\n",
        key_path.display()
    ));
    Ok(out)
}

/// Writes a file only its owner can read.
fn write_secret(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
