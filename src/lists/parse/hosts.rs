//! The plain formats: one domain per line, and hosts files
//! (`0.0.0.0 name [name...]`). Both only ever block.

use std::net::IpAddr;

use super::{EntryKind, LineResult, entry};

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

/// `#` can't occur in a domain, so anything from it on is a comment whether
/// it starts the line or trails an entry.
fn strip_comment(line: &str) -> &str {
    line.split_once('#')
        .map_or(line, |(before, _)| before)
        .trim()
}

/// `line` is trimmed and not blank.
pub(super) fn parse_domains_line(line: &str) -> LineResult {
    let line = strip_comment(line);
    // `!` comments and `[Adblock Plus 2.0]` headers prefix many lists
    // published in both domain and adblock flavours.
    if line.is_empty() || line.starts_with('!') || line.starts_with('[') {
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
    if first.starts_with("||") || first.starts_with("@@") || first.ends_with('^') {
        return LineResult::Bad(format!(
            "'{first}' is adblock syntax; set this list's format to \"adblock\""
        ));
    }
    // `*.example.com` and `.example.com` are common ways of saying "and its
    // subdomains", which every entry already means.
    let domain = first
        .strip_prefix("*.")
        .or_else(|| first.strip_prefix('.'))
        .unwrap_or(first);
    entry(domain, EntryKind::Block)
}

/// `line` is trimmed and not blank.
pub(super) fn parse_hosts_line(line: &str, mut emit: impl FnMut(LineResult)) {
    let line = strip_comment(line);
    if line.is_empty() {
        return emit(LineResult::Skip);
    }
    let mut fields = line.split_whitespace();
    let address = fields.next().unwrap_or_default();
    // Link-local entries carry a zone (`fe80::1%lo0`) that IpAddr rejects.
    let bare = address.split_once('%').map_or(address, |(ip, _)| ip);
    if bare.parse::<IpAddr>().is_err() {
        return emit(LineResult::Bad(format!(
            "'{address}' is not an IP address; if this is a plain domain list, set its format to \"domains\""
        )));
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
        match entry(name, EntryKind::Block) {
            LineResult::Bad(e) => emit(LineResult::Bad(format!("'{name}': {e}"))),
            ok => emit(ok),
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
    use super::super::ListFormat::{Domains, Hosts};
    use super::super::tests::{block, is_bad, parse};
    use super::*;
    use LineResult::Skip;

    #[test]
    fn domains_basic_forms() {
        assert_eq!(parse(Domains, "example.com"), [block("example.com")]);
        assert_eq!(
            parse(Domains, "\u{feff}Example.COM.\r\n"),
            [block("example.com")]
        );
        assert_eq!(
            parse(Domains, "*.ads.example.com"),
            [block("ads.example.com")]
        );
        assert_eq!(
            parse(Domains, ".ads.example.com"),
            [block("ads.example.com")]
        );
        assert_eq!(parse(Domains, "bücher.de"), [block("xn--bcher-kva.de")]);
        assert_eq!(
            parse(Domains, "  tracker.net   # added 2024\r"),
            [block("tracker.net")]
        );
    }

    #[test]
    fn domains_comments_and_blanks() {
        for line in [
            "",
            "   ",
            "\r",
            "# comment",
            "  # indented",
            "! adblock comment",
            "\u{feff}# c",
            "[Adblock Plus 2.0]",
        ] {
            assert_eq!(parse(Domains, line), [Skip], "{line:?}");
        }
    }

    #[test]
    fn domains_bad_lines_explain_themselves() {
        assert!(is_bad(&parse(Domains, "0.0.0.0 example.com"), "hosts"));
        assert!(is_bad(&parse(Domains, "||example.com^"), "adblock"));
        assert!(is_bad(&parse(Domains, "@@example.com"), "adblock"));
        assert!(is_bad(&parse(Domains, "a..b.com"), "empty label"));
        assert!(is_bad(&parse(Domains, "two words"), "several words"));
        assert!(is_bad(&parse(Domains, "*."), "empty"));
        assert!(is_bad(&parse(Domains, "http://example.com/path"), ":"));
        assert!(is_bad(&parse(Domains, "a\0b.com"), "\\0"));
    }

    #[test]
    fn hosts_addresses_of_every_kind() {
        for addr in [
            "0.0.0.0",
            "127.0.0.1",
            "::",
            "::1",
            "203.0.113.7",
            "fe80::1%lo0",
        ] {
            assert_eq!(
                parse(Hosts, &format!("{addr}\tAds.Example.com")),
                [block("ads.example.com")]
            );
        }
    }

    #[test]
    fn hosts_several_names_per_line() {
        assert_eq!(
            parse(
                Hosts,
                "0.0.0.0 a.example b.example  c.example # trailing\r\n"
            ),
            [block("a.example"), block("b.example"), block("c.example")]
        );
    }

    #[test]
    fn hosts_skips_loopback_names() {
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
            assert_eq!(parse(Hosts, line), [Skip], "{line:?}");
        }
        // A real name on a loopback line still counts.
        assert_eq!(
            parse(Hosts, "127.0.0.1 localhost evil.example"),
            [block("evil.example")]
        );
    }

    #[test]
    fn hosts_bad_lines() {
        assert!(is_bad(&parse(Hosts, "example.com"), "domains"));
        assert!(is_bad(&parse(Hosts, "0.0.0.0"), "no host name"));
        // One bad name doesn't lose the good ones on the same line.
        let r = parse(Hosts, "0.0.0.0 good.example bad..example");
        assert_eq!(r[0], block("good.example"));
        assert!(matches!(&r[1], LineResult::Bad(m) if m.contains("bad..example")));
    }
}
