//! Renewing the DNSSEC root trust anchor with the lists (hickory has no
//! RFC 5011 rollover): IANA publishes the digests of the root's key-signing
//! keys and the dates each is valid (root-anchors.xml, RFC 7958), fetched
//! over HTTPS and so vouched for by the web PKI; a root server (or, failing
//! that, an upstream) is asked for the root's DNSKEY set, and the keys
//! whose digest IANA lists as valid now become the trust anchor. Nothing is
//! written unless at least one key matches; the file in force before stays
//! until then.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_resolver::proto::dnssec::{Algorithm, DigestType};
use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use crate::clock::tz::days_from_civil;
use crate::config::ListFormat;
use crate::config::{Config, DnssecMode, UpstreamProtocol, parse_upstream_address};
use crate::dns::resolve::root_files::{read_root_hints, read_trust_anchor, renewed_trust_anchor};
use crate::lists::acquire::fetch::download_small;
use crate::lists::acquire::update::{FetchSpec, UpdateOutcome};

/// The name the renewal's state is kept under, beside the lists'.
pub const STATE_NAME: &str = "root-trust-anchor";
/// What `lists status` and the log call it.
pub const LABEL: &str = "DNSSEC root trust anchor";
/// A root key changes every few years, announced a year ahead: weekly is
/// ample, and the backoff after a failure retries sooner.
const CADENCE: Duration = Duration::from_secs(7 * 24 * 3600);
/// root-anchors.xml is about 1 KiB.
const MAX_BYTES: u64 = 64 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Per server asked for the root's keys.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Root servers tried before the upstreams.
const ROOTS_TRIED: usize = 4;

/// The schedule's view of the renewal, as for a list.
pub fn spec(config: &Config) -> Option<FetchSpec> {
    let resolver = &config.resolver;
    let renews = resolver.dnssec_mode() == DnssecMode::Validate
        && resolver.trust_anchor.is_none()
        && !resolver.trust_anchor_url.trim().is_empty();
    renews.then(|| {
        let mut spec = FetchSpec::new(
            STATE_NAME,
            vec![resolver.trust_anchor_url.trim().to_string()],
            ListFormat::Domains,
        );
        spec.cadence = CADENCE;
        spec
    })
}

/// Renews the trust anchor if DNSSEC validation is on, the config does not
/// name its own file, and (with `only_due`) the weekly check is due.
/// Blocking. `None` when there was nothing to do.
pub fn update_trust_anchor(
    config: &Config,
    only_due: bool,
    now: u64,
) -> Option<(String, UpdateOutcome)> {
    let spec = spec(config)?;
    super::renew_file(config, &spec, LABEL, only_due, now, |url| {
        renew(config, url, now)
    })
}

/// Downloads the digests, asks for the keys, writes the matching ones.
/// The number of keys in force and whether the file changed.
fn renew(config: &Config, url: &str, now: u64) -> Result<(u64, bool), String> {
    let xml = download_small(url, MAX_BYTES, DOWNLOAD_TIMEOUT)?;
    let xml = String::from_utf8(xml).map_err(|_| format!("{url} is not UTF-8 text"))?;
    let digests = digests_valid_at(&xml, now)?;
    let keys = root_keys(config)?;
    let anchors = matching_keys(&keys, &digests);
    if anchors.is_empty() {
        return Err(format!(
            "none of the {} keys the root serves matches a digest {url} lists as valid now; \
             the trust anchor in force is kept",
            keys.len()
        ));
    }
    let text = anchor_file(&anchors, url);
    let path = renewed_trust_anchor(config);
    if std::fs::read_to_string(&path).is_ok_and(|old| same_keys(&old, &text)) {
        return Ok((anchors.len() as u64, false));
    }
    super::write_atomically(&path, &text)?;
    // Read back as the resolver will, so a file it cannot use never stays.
    if let Err(error) = read_trust_anchor(&path) {
        let _ = std::fs::remove_file(&path);
        return Err(format!(
            "the renewed trust anchor does not read back: {error:#}"
        ));
    }
    tracing::info!(
        "{LABEL} renewed from {url}: {} key(s) in {}",
        anchors.len(),
        path.display()
    );
    Ok((anchors.len() as u64, true))
}

/// The root key digests `xml` (IANA's root-anchors.xml) lists as valid at
/// `now`: `validFrom` passed and `validUntil`, if any, not yet.
pub fn digests_valid_at(xml: &str, now: u64) -> Result<Vec<DS>, String> {
    let document = roxmltree::Document::parse(xml)
        .map_err(|error| format!("the root anchors file is not XML: {error}"))?;
    let root = document.root_element();
    if root.tag_name().name() != "TrustAnchor" {
        return Err("the root anchors file has no TrustAnchor element".into());
    }
    let zone = child_text(root, "Zone").unwrap_or_default();
    if zone != "." {
        return Err(format!(
            "the root anchors file is for zone '{zone}', not the root"
        ));
    }
    let mut digests = Vec::new();
    for digest in root.children().filter(|n| n.has_tag_name("KeyDigest")) {
        let from = digest.attribute("validFrom").and_then(parse_time);
        let until = digest.attribute("validUntil").and_then(parse_time);
        let valid = from.is_some_and(|from| from <= now) && until.is_none_or(|until| now < until);
        if !valid {
            continue;
        }
        let field = |name| child_text(digest, name).and_then(|text| text.parse::<u16>().ok());
        let (Some(tag), Some(algorithm), Some(digest_type), Some(hex_digest)) = (
            field("KeyTag"),
            field("Algorithm"),
            field("DigestType"),
            child_text(digest, "Digest"),
        ) else {
            continue;
        };
        let (Ok(algorithm), Ok(digest_type), Ok(bytes)) = (
            u8::try_from(algorithm),
            u8::try_from(digest_type),
            hex::decode(hex_digest),
        ) else {
            continue;
        };
        digests.push(DS::new(
            tag,
            Algorithm::from_u8(algorithm),
            DigestType::from(digest_type),
            bytes,
        ));
    }
    Ok(digests)
}

fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|child| child.has_tag_name(name))
        .and_then(|child| child.text())
        .map(str::trim)
}

/// `2017-02-02T00:00:00+00:00` (or `...Z`) as unix seconds.
fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, rest) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let day: u32 = ymd.next()?.parse().ok()?;
    let clock = rest.get(..8)?;
    let mut hms = clock.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = hms.next()?.parse().ok()?;
    let zone = &rest[8..];
    let offset = match zone {
        "" | "Z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(seconds).ok()
}

/// The root's DNSKEY set, from a root server in the hints or else from a
/// plain-DNS upstream: the first that answers with keys.
fn root_keys(config: &Config) -> Result<Vec<DNSKEY>, String> {
    let lists_dir = config.resolve_path(&config.server.lists_dir);
    let hints = config.resolve_path(&config.resolver.root_hints_in(&lists_dir));
    let mut servers: Vec<SocketAddr> = read_root_hints(&hints)
        .map(|roots| {
            // IPv4 first: many school networks have no IPv6 out.
            let (v4, v6): (Vec<_>, Vec<_>) = roots.into_iter().partition(|ip| ip.is_ipv4());
            v4.into_iter()
                .chain(v6)
                .take(ROOTS_TRIED)
                .map(|ip| SocketAddr::new(ip, 53))
                .collect()
        })
        .unwrap_or_default();
    servers.extend(
        config
            .upstream
            .iter()
            .filter(|u| matches!(u.protocol, UpstreamProtocol::Udp | UpstreamProtocol::Tcp))
            .filter_map(|u| parse_upstream_address(u.address.get_ref(), 53).ok()),
    );
    let mut why = Vec::new();
    for server in servers {
        match ask_root_keys(server) {
            Ok(keys) if !keys.is_empty() => return Ok(keys),
            Ok(_) => why.push(format!("{server}: no DNSKEY records")),
            Err(error) => why.push(format!("{server}: {error}")),
        }
    }
    Err(format!(
        "could not get the root's keys ({})",
        if why.is_empty() {
            "no root server or plain-DNS upstream to ask".to_string()
        } else {
            why.join("; ")
        }
    ))
}

/// One DNS-over-TCP exchange for `. DNSKEY` (blocking: the updater runs
/// off the async runtime, or in the CLI without one).
fn ask_root_keys(server: SocketAddr) -> Result<Vec<DNSKEY>, String> {
    let mut id = [0u8; 2];
    let _ = getrandom::fill(&mut id);
    let mut query = Message::new(u16::from_be_bytes(id), MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::root(), RecordType::DNSKEY));
    let bytes = query.to_vec().map_err(|error| error.to_string())?;
    let length = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
    let mut stream =
        TcpStream::connect_timeout(&server, ASK_TIMEOUT).map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(ASK_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ASK_TIMEOUT)))
        .map_err(|error| error.to_string())?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream
        .write_all(&framed)
        .map_err(|error| error.to_string())?;
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .map_err(|error| error.to_string())?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut body)
        .map_err(|error| error.to_string())?;
    let reply = Message::from_vec(&body).map_err(|error| format!("bad reply: {error}"))?;
    if reply.metadata.id != query.metadata.id {
        return Err("the reply does not match the question".into());
    }
    Ok(reply
        .answers
        .into_iter()
        .filter(|record| record.name.is_root())
        .filter_map(|record| match record.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
            _ => None,
        })
        .collect())
}

/// The key-signing keys (SEP flag, not revoked) one of `digests` covers.
pub fn matching_keys(keys: &[DNSKEY], digests: &[DS]) -> Vec<DNSKEY> {
    keys.iter()
        .filter(|key| key.secure_entry_point() && !key.revoke())
        .filter(|key| {
            digests
                .iter()
                .any(|ds| ds.covers(&Name::root(), key).unwrap_or(false))
        })
        .cloned()
        .collect()
}

fn anchor_file(keys: &[DNSKEY], url: &str) -> String {
    let mut text = format!(
        "; The DNS root's key-signing keys, renewed by Lollipop's list updater:\n\
         ; the keys the root serves whose digest {url} lists as valid now.\n"
    );
    for key in keys {
        let tag = key
            .calculate_key_tag()
            .map(|tag| tag.to_string())
            .unwrap_or_else(|_| "?".into());
        text.push_str(&format!("; key tag {tag}\n. 172800 IN DNSKEY {key}\n"));
    }
    text
}

/// Whether two anchor files hold the same keys (comments aside).
fn same_keys(old: &str, new: &str) -> bool {
    let keys = |text: &str| {
        let mut lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with(';'))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    keys(old) == keys(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::dnssec::PublicKey;
    use std::str::FromStr;

    /// IANA's file as published (the KSK-2017 and KSK-2024 entries), with
    /// an expired entry for the 2010 key.
    const IANA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<TrustAnchor id="E9724F53-1851-4F86-85E5-F1392102940B" source="http://data.iana.org/root-anchors/root-anchors.xml">
<Zone>.</Zone>
<KeyDigest id="Kjqmt7v" validFrom="2010-07-15T00:00:00+00:00" validUntil="2019-01-11T00:00:00+00:00">
<KeyTag>19036</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>49AAC11D7B6F6446702E54A1607371607A1A41855200FD2CE1CDDE32F24E8FB5</Digest>
</KeyDigest>
<KeyDigest id="Klajeyz" validFrom="2017-02-02T00:00:00+00:00">
<KeyTag>20326</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D</Digest>
</KeyDigest>
<KeyDigest id="Kmyv6jo" validFrom="2024-07-18T00:00:00+00:00">
<KeyTag>38696</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16</Digest>
</KeyDigest>
</TrustAnchor>
"#;

    fn shipped_keys() -> Vec<DNSKEY> {
        let text = std::fs::read_to_string("lists/dns/root.key").expect("shipped anchor");
        text.lines()
            .filter(|line| line.starts_with(". "))
            .map(|line| {
                let rdata = line.splitn(5, ' ').nth(4).expect("rdata");
                let rdata = rdata.trim_start_matches("DNSKEY ");
                let fields: Vec<&str> = rdata.split_whitespace().collect();
                let key = data_encoding_decode(fields[3]);
                DNSKEY::with_flags(
                    fields[0].parse().expect("flags"),
                    hickory_resolver::proto::dnssec::PublicKeyBuf::new(
                        key,
                        Algorithm::from_u8(fields[2].parse().expect("alg")),
                    ),
                )
            })
            .collect()
    }

    fn data_encoding_decode(text: &str) -> Vec<u8> {
        // Standard base64, through the anchor parser hickory ships: the
        // key bytes are what TrustAnchors reads.
        let anchors = hickory_resolver::proto::dnssec::TrustAnchors::from_str(&format!(
            ". 1 IN DNSKEY 257 3 8 {text}\n"
        ))
        .expect("parses");
        anchors.get(0).expect("one key").public_bytes().to_vec()
    }

    #[test]
    fn only_digests_valid_now_are_kept() {
        let in_2018 = parse_time("2018-06-01T00:00:00+00:00").expect("time");
        let tags = |now| -> Vec<u16> {
            digests_valid_at(IANA, now)
                .expect("parses")
                .iter()
                .map(DS::key_tag)
                .collect()
        };
        assert_eq!(tags(in_2018), [19036, 20326]);
        let in_2026 = parse_time("2026-12-07T00:00:00Z").expect("time");
        assert_eq!(tags(in_2026), [20326, 38696]);
        let in_2009 = parse_time("2009-01-01T00:00:00Z").expect("time");
        assert!(tags(in_2009).is_empty());
    }

    #[test]
    fn the_shipped_keys_match_ianas_digests_and_a_changed_key_does_not() {
        let now = parse_time("2026-12-07T00:00:00Z").expect("time");
        let digests = digests_valid_at(IANA, now).expect("parses");
        let keys = shipped_keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(matching_keys(&keys, &digests).len(), 2);
        // One bit changed in a key: its digest no longer matches.
        let mut bytes = keys[0].public_key().public_bytes().to_vec();
        bytes[10] ^= 1;
        let forged = DNSKEY::with_flags(
            257,
            hickory_resolver::proto::dnssec::PublicKeyBuf::new(bytes, Algorithm::RSASHA256),
        );
        assert!(matching_keys(&[forged], &digests).is_empty());
        // The file written from them reads back as the same two keys.
        let text = anchor_file(
            &matching_keys(&keys, &digests),
            "https://example.test/a.xml",
        );
        let anchors =
            hickory_resolver::proto::dnssec::TrustAnchors::from_str(&text).expect("reads");
        assert_eq!(anchors.len(), 2);
        assert!(same_keys(
            &text,
            &text.replace("example.test", "other.test")
        ));
    }

    #[test]
    fn a_file_that_is_not_the_roots_is_refused() {
        assert!(digests_valid_at("not xml", 0).is_err());
        assert!(digests_valid_at("<TrustAnchor><Zone>uk.</Zone></TrustAnchor>", 0).is_err());
        assert!(digests_valid_at("<Other/>", 0).is_err());
    }

    #[test]
    fn times_read_with_their_offsets() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("2017-02-02T00:00:00+00:00"), Some(1_485_993_600));
        assert_eq!(parse_time("2017-13-02T00:00:00Z"), None);
        assert_eq!(parse_time("garbage"), None);
    }
}
