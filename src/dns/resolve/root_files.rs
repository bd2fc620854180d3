//! The files recursion starts from: the root hints (the root servers'
//! addresses, IANA's named.root) and the DNSSEC trust anchor (the root's
//! keys, an ldns `.key` file), read with errors that say which key and
//! file to fix; and which trust anchor is in force: the config's own file,
//! else the one the list updater renewed, else the one shipped.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use hickory_resolver::proto::dnssec::TrustAnchors;

use crate::config::Config;
use crate::lists::acquire::sources::downloads_dir;

/// The renewed trust anchor's file name in the downloads directory.
pub const RENEWED_TRUST_ANCHOR: &str = "root.key";

/// Where the list updater keeps the trust anchor it renewed.
pub fn renewed_trust_anchor(config: &Config) -> std::path::PathBuf {
    downloads_dir(config).join(RENEWED_TRUST_ANCHOR)
}

/// The trust anchor in force: `[resolver] trust_anchor` when the config
/// names one; otherwise the updater's renewed copy when there is one that
/// reads; otherwise the shipped `lists/dns/root.key`.
pub fn trust_anchor_path(config: &Config) -> std::path::PathBuf {
    let lists_dir = config.resolve_path(&config.server.lists_dir);
    let configured = config.resolve_path(&config.resolver.trust_anchor_in(&lists_dir));
    if config.resolver.trust_anchor.is_some() {
        return configured;
    }
    let renewed = renewed_trust_anchor(config);
    if renewed.exists() {
        match read_trust_anchor(&renewed) {
            Ok(_) => return renewed,
            Err(error) => tracing::warn!("{error:#}; using the shipped trust anchor instead"),
        }
    }
    configured
}

/// The root servers' addresses in a root hints file (IANA's named.root):
/// every A and AAAA line's address; comments (`;`) and other lines skipped.
pub fn read_root_hints(path: &Path) -> Result<Vec<IpAddr>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "[resolver] root_hints: cannot read {}: recursion starts from the root servers listed there \
             (Lollipop ships lists/dns/root.hints; set root_hints to a copy of IANA's named.root)",
            path.display()
        )
    })?;
    let roots = parse_root_hints(&text);
    if roots.is_empty() {
        bail!(
            "[resolver] root_hints: {} lists no root server address (no A or AAAA line); \
             use a copy of IANA's named.root",
            path.display()
        );
    }
    Ok(roots)
}

fn parse_root_hints(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(';').next().unwrap_or_default();
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|field| {
                field.eq_ignore_ascii_case("A") || field.eq_ignore_ascii_case("AAAA")
            })?;
            fields.get(at + 1)?.parse().ok()
        })
        .collect()
}

/// The DNSSEC trust anchor: the DNSKEY records of an ldns-style `.key` file.
pub fn read_trust_anchor(path: &Path) -> Result<TrustAnchors> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "[resolver] trust_anchor: cannot read {}: DNSSEC validation needs the root's keys \
             (Lollipop ships lists/dns/root.key; set trust_anchor, or dnssec = \"off\")",
            path.display()
        )
    })?;
    let anchors = TrustAnchors::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "[resolver] trust_anchor: {} is not a list of DNSKEY records ({error}); \
             write one `. IN DNSKEY 257 3 8 <key>` line per key",
            path.display()
        )
    })?;
    if anchors.is_empty() {
        bail!(
            "[resolver] trust_anchor: {} holds no DNSKEY record",
            path.display()
        );
    }
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_root_hints_list_the_thirteen_roots() {
        let text = std::fs::read_to_string("lists/dns/root.hints").expect("root hints");
        let roots = parse_root_hints(&text);
        assert_eq!(roots.len(), 26, "{roots:?}");
        assert_eq!(roots[0], "198.41.0.4".parse::<IpAddr>().expect("ip"));
        assert!(roots.contains(&"202.12.27.33".parse().expect("ip")));
        assert_eq!(roots.iter().filter(|ip| ip.is_ipv6()).count(), 13);
    }

    #[test]
    fn the_shipped_trust_anchor_holds_the_root_ksks() {
        let anchors = read_trust_anchor(Path::new("lists/dns/root.key")).expect("anchor");
        assert_eq!(anchors.len(), 2);
        // The same keys hickory builds in (KSK-2017 and KSK-2024).
        let builtin = TrustAnchors::default();
        for i in 0..builtin.len() {
            let key = builtin.get(i).expect("key");
            assert!(anchors.contains(key), "built-in key {i} missing");
        }
    }

    #[test]
    fn hints_lines_are_read_for_their_addresses_only() {
        let roots = parse_root_hints(
            "; comment A 1.2.3.4\n. 3600 NS a.root.\na.root. 3600 IN A 127.0.0.91 ; note\nb.root. AAAA ::1\nbad A nonsense\n",
        );
        assert_eq!(
            roots,
            [
                "127.0.0.91".parse::<IpAddr>().expect("ip"),
                "::1".parse().expect("ip")
            ]
        );
    }
}
