//! Reading one line of a list file in one of the supported formats into
//! normalised domains.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::name::normalise_domain;

/// How a list file is written. New formats (adblock, rpz, dnsmasq) slot in
/// as further variants handled by [`parse_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// One domain per line; `*.` or `.` prefixes allowed and ignored.
    Domains,
    /// `ADDRESS name [name...]`, as in `/etc/hosts`.
    Hosts,
}

/// What one line, or one name on a hosts line, produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineResult {
    /// A normalised domain; it covers its subdomains too.
    Entry(String),
    /// Blank, comment, or a name hosts files carry that isn't a real site.
    Skip,
    /// Not usable; the reason is written for a technician.
    Bad(String),
}

/// Names that appear in almost every hosts file to keep the machine's own
/// loopback working; blocking them would be meaningless.
const HOSTS_NON_DOMAINS: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "localhost4",
    "localhost4.localdomain4",
    "localhost6",
    "localhost6.localdomain6",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
];

/// Parses one line. Hosts lines may name several hosts, so results go to
/// `emit`: one `Entry` or `Bad` per name, or a single `Skip` when the line
/// yields nothing at all.
pub fn parse_line(format: ListFormat, line: &str, mut emit: impl FnMut(LineResult)) {
    // A BOM only ever starts a file, but stripping it everywhere is harmless
    // and saves callers tracking line numbers.
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    // `#` can't occur in a domain, so anything from it on is a comment
    // whether it starts the line or trails an entry.
    let line = line
        .split_once('#')
        .map_or(line, |(before, _)| before)
        .trim();
    if line.is_empty() {
        emit(LineResult::Skip);
        return;
    }
    match format {
        ListFormat::Domains => emit(parse_domains_line(line)),
        ListFormat::Hosts => parse_hosts_line(line, emit),
    }
}

fn parse_domains_line(line: &str) -> LineResult {
    if line.starts_with('!') || line.starts_with('[') {
        // `!` comments and `[Adblock Plus 2.0]` headers prefix many lists
        // published in both domain and adblock flavours.
        return LineResult::Skip;
    }
    let mut fields = line.split_whitespace();
    let first = fields.next().unwrap_or_default();
    if let Some(second) = fields.next() {
        if first.parse::<IpAddr>().is_ok() {
            return LineResult::Bad(format!(
                "'{first} {second}' looks like a hosts-format line; set this list's format to \"hosts\""
            ));
        }
        return LineResult::Bad("expected one domain per line, found several words".into());
    }
    if first.starts_with("||") || first.ends_with('^') {
        return LineResult::Bad(format!(
            "'{first}' is adblock syntax, which this list format does not read"
        ));
    }
    // `*.example.com` and `.example.com` are common ways of saying "and its
    // subdomains", which every entry already means.
    let domain = first
        .strip_prefix("*.")
        .or_else(|| first.strip_prefix('.'))
        .unwrap_or(first);
    match normalise_domain(domain) {
        Ok(d) => LineResult::Entry(d),
        // The report quotes the line beside the reason, so no need to repeat it.
        Err(e) => LineResult::Bad(e.to_string()),
    }
}

fn parse_hosts_line(line: &str, mut emit: impl FnMut(LineResult)) {
    let mut fields = line.split_whitespace();
    let address = fields.next().unwrap_or_default();
    // Link-local entries carry a zone (`fe80::1%lo0`) that IpAddr rejects.
    let bare = address.split_once('%').map_or(address, |(ip, _)| ip);
    if bare.parse::<IpAddr>().is_err() {
        emit(LineResult::Bad(format!(
            "'{address}' is not an IP address; if this is a plain domain list, set its format to \"domains\""
        )));
        return;
    }
    let mut produced = false;
    let mut any_name = false;
    for name in fields {
        any_name = true;
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if HOSTS_NON_DOMAINS
            .iter()
            .any(|skip| skip.eq_ignore_ascii_case(trimmed))
            || trimmed.parse::<IpAddr>().is_ok()
        {
            continue;
        }
        produced = true;
        match normalise_domain(name) {
            Ok(d) => emit(LineResult::Entry(d)),
            Err(e) => emit(LineResult::Bad(format!("'{name}': {e}"))),
        }
    }
    if !any_name {
        emit(LineResult::Bad(format!(
            "address '{address}' has no host name after it"
        )));
    } else if !produced {
        emit(LineResult::Skip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineResult::{Bad, Entry, Skip};

    fn parse(format: ListFormat, line: &str) -> Vec<LineResult> {
        let mut out = Vec::new();
        parse_line(format, line, |r| out.push(r));
        out
    }

    fn entry(d: &str) -> LineResult {
        Entry(d.to_owned())
    }

    fn is_bad(results: &[LineResult]) -> bool {
        results.iter().any(|r| matches!(r, Bad(_)))
    }

    #[test]
    fn domains_basic_forms() {
        let d = ListFormat::Domains;
        assert_eq!(parse(d, "example.com"), [entry("example.com")]);
        assert_eq!(parse(d, "\u{feff}Example.COM.\r\n"), [entry("example.com")]);
        assert_eq!(parse(d, "*.ads.example.com"), [entry("ads.example.com")]);
        assert_eq!(parse(d, ".ads.example.com"), [entry("ads.example.com")]);
        assert_eq!(parse(d, "bücher.de"), [entry("xn--bcher-kva.de")]);
        assert_eq!(
            parse(d, "  tracker.net   # added 2024\r"),
            [entry("tracker.net")]
        );
    }

    #[test]
    fn domains_comments_and_blanks() {
        let d = ListFormat::Domains;
        for line in [
            "",
            "   ",
            "\r",
            "# comment",
            "  # indented",
            "! adblock comment",
            "\u{feff}# c",
        ] {
            assert_eq!(parse(d, line), [Skip], "{line:?}");
        }
        assert_eq!(parse(d, "[Adblock Plus 2.0]"), [Skip]);
    }

    #[test]
    fn domains_bad_lines_explain_themselves() {
        let d = ListFormat::Domains;
        let r = parse(d, "0.0.0.0 example.com");
        assert!(matches!(&r[..], [Bad(m)] if m.contains("hosts")), "{r:?}");
        let r = parse(d, "||example.com^");
        assert!(matches!(&r[..], [Bad(m)] if m.contains("adblock")), "{r:?}");
        let r = parse(d, "a..b.com");
        assert!(matches!(&r[..], [Bad(m)] if m.contains("empty label")));
        assert!(is_bad(&parse(d, "two words")));
        assert!(is_bad(&parse(d, "*.")));
        assert!(is_bad(&parse(d, "http://example.com/path")));
    }

    #[test]
    fn hosts_addresses_of_every_kind() {
        let h = ListFormat::Hosts;
        for addr in [
            "0.0.0.0",
            "127.0.0.1",
            "::",
            "::1",
            "203.0.113.7",
            "fe80::1%lo0",
        ] {
            assert_eq!(
                parse(h, &format!("{addr}\tAds.Example.com")),
                [entry("ads.example.com")]
            );
        }
    }

    #[test]
    fn hosts_several_names_per_line() {
        let r = parse(
            ListFormat::Hosts,
            "0.0.0.0 a.example b.example  c.example # trailing\r\n",
        );
        assert_eq!(
            r,
            [entry("a.example"), entry("b.example"), entry("c.example")]
        );
    }

    #[test]
    fn hosts_skips_loopback_names() {
        let h = ListFormat::Hosts;
        for line in [
            "127.0.0.1 localhost",
            "127.0.0.1 localhost.localdomain LOCALHOST.",
            "255.255.255.255 broadcasthost",
            "::1 ip6-localhost ip6-loopback",
            "0.0.0.0 0.0.0.0",
            "fe00::0 ip6-localnet",
            "127.0.0.1 local",
            "# 0.0.0.0 commented.example",
        ] {
            assert_eq!(parse(h, line), [Skip], "{line:?}");
        }
        // A real name on a loopback line still counts.
        assert_eq!(
            parse(h, "127.0.0.1 localhost evil.example"),
            [entry("evil.example")]
        );
    }

    #[test]
    fn hosts_bad_lines() {
        let h = ListFormat::Hosts;
        let r = parse(h, "example.com");
        assert!(matches!(&r[..], [Bad(m)] if m.contains("domains")), "{r:?}");
        assert!(is_bad(&parse(h, "0.0.0.0")));
        // One bad name doesn't lose the good ones on the same line.
        let r = parse(h, "0.0.0.0 good.example bad..example");
        assert_eq!(r[0], entry("good.example"));
        assert!(matches!(&r[1], Bad(m) if m.contains("bad..example")));
    }

    #[test]
    fn format_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&ListFormat::Hosts).unwrap(),
            "\"hosts\""
        );
        let f: ListFormat = serde_json::from_str("\"domains\"").unwrap();
        assert_eq!(f, ListFormat::Domains);
    }
}
