//! Adblock / AdGuard DNS filter syntax: the subset a DNS resolver can
//! enforce (whole-domain blocks, `@@` exceptions, `$important`), with
//! everything else sorted into unsupported or URL-level rules so the report
//! can say how much of a browser list was usable.

use std::net::IpAddr;

use super::{EntryKind, LineResult, entry, hosts};

/// Characters that end the host part of a network rule. What follows one
/// (other than a bare `^` or `|`) is part of a web address.
const HOST_END: &[char] = &['^', '/', ':', '?', '|', '=', '&', '#', ';', ','];

/// `line` is trimmed and not blank.
pub(super) fn parse_line(line: &str, mut emit: impl FnMut(LineResult)) {
    // `[Adblock Plus 2.0]` and similar headers.
    if line.starts_with('!') || line.starts_with('[') {
        return emit(LineResult::Skip);
    }
    let first_word = line.split_whitespace().next().unwrap_or_default();
    if is_cosmetic(first_word) {
        return emit(LineResult::Unsupported(
            "element-hiding or scriptlet rule; these work inside a browser, not in DNS".into(),
        ));
    }
    if line.starts_with('#') {
        return emit(LineResult::Skip);
    }
    let line = strip_trailing_comment(line);
    if line.contains(char::is_whitespace) {
        // AdGuard DNS syntax accepts hosts-file lines among the rules.
        let bare = first_word.split_once('%').map_or(first_word, |(ip, _)| ip);
        if bare.parse::<IpAddr>().is_ok() {
            return hosts::parse_hosts_line(line, emit);
        }
        return emit(LineResult::Bad(
            "expected one rule per line, found several words".into(),
        ));
    }
    emit(parse_rule(line));
}

/// `##`, `#@#`, `#?#`, `#$#`, `#%#` and their `@` forms introduce cosmetic
/// and scriptlet rules; `$$` and `$@$` HTML filtering rules.
fn is_cosmetic(word: &str) -> bool {
    if word.contains("$$") || word.contains("$@$") {
        return true;
    }
    word.match_indices('#').any(|(i, _)| {
        let rest = &word[i + 1..];
        let rest = rest.strip_prefix('@').unwrap_or(rest);
        let rest = rest.strip_prefix(['?', '$', '%']).unwrap_or(rest);
        let rest = rest.strip_prefix('?').unwrap_or(rest);
        rest.starts_with('#')
    })
}

/// Hosts-style lines in adblock lists carry `# comments` after the names;
/// a `#` inside a rule (`||a.com/#x`) has no space before it.
fn strip_trailing_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = (1..bytes.len()).find(|&i| bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace());
    cut.map_or(line, |i| line[..i].trim_end())
}

/// One network rule with no whitespace in it.
fn parse_rule(line: &str) -> LineResult {
    let (exception, rule) = match line.strip_prefix("@@") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    if rule.starts_with('/') {
        // `/ads[0-9]+/` is a regular expression; `/ads/banner` a path.
        let regex = rule.len() > 1 && (rule.ends_with('/') || rule.contains("/$"));
        return if regex {
            LineResult::Unsupported("regular-expression rule".into())
        } else {
            LineResult::UrlLevel
        };
    }
    let (pattern, modifiers) = rule.split_once('$').unwrap_or((rule, ""));
    let mut important = false;
    for modifier in modifiers.split(',').map(str::trim) {
        let name = modifier.split_once('=').map_or(modifier, |(n, _)| n);
        if name.eq_ignore_ascii_case("important") {
            important = true;
        } else if !name.is_empty() {
            // Applying such a rule without its modifier would block more
            // (or, for `$badfilter`, less) than its author meant.
            return LineResult::Unsupported(format!(
                "the ${name} modifier limits the rule in ways DNS filtering cannot follow"
            ));
        }
    }
    let (anchored, rest) = if let Some(rest) = pattern.strip_prefix("||") {
        (true, rest)
    } else if let Some(rest) = pattern.strip_prefix('|') {
        (true, rest)
    } else {
        (false, pattern)
    };
    let (host, tail) = rest.split_at(rest.find(HOST_END).unwrap_or(rest.len()));
    if !matches!(tail, "" | "^" | "^|" | "|") {
        return LineResult::UrlLevel;
    }
    // `||*.example.com^` means example.com's subdomains, which every entry
    // covers anyway.
    let host = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('.'))
        .unwrap_or(host);
    if host.contains('*') {
        return LineResult::Unsupported(
            "a '*' wildcard inside a name; only whole names and their subdomains can be blocked"
                .into(),
        );
    }
    // Unanchored, a dotless word matches anywhere in any address, and as a
    // name it would mean a whole top-level domain.
    if !anchored && !host.contains('.') && !host.is_empty() {
        return LineResult::Unsupported(format!(
            "'{host}' matches part of any web address, not a domain name"
        ));
    }
    let kind = if exception {
        // `@@...$important` outranks important blocks in AdGuard; here it is
        // an ordinary exception, the nearest Lollipop has.
        EntryKind::Allow
    } else if important {
        EntryKind::Important
    } else {
        EntryKind::Block
    };
    entry(host, kind)
}

#[cfg(test)]
mod tests {
    use super::super::ListFormat::Adblock;
    use super::super::tests::{allow, block, important, is_bad, is_unsupported, parse};
    use super::*;
    use LineResult::{Skip, UrlLevel};

    #[test]
    fn domain_rule_forms_block_the_domain() {
        for line in [
            "||ads.example.com^",
            "|ads.example.com^",
            "||ads.example.com",
            "ads.example.com^",
            "ads.example.com",
            "||*.ads.example.com^",
            "*.ads.example.com^",
            "||ads.example.com^|",
            "||ADS.Example.COM.^",
            "  ||ads.example.com^  \r",
            "||ads.example.com^$",
        ] {
            assert_eq!(parse(Adblock, line), [block("ads.example.com")], "{line:?}");
        }
        assert_eq!(parse(Adblock, "||com^"), [block("com")]);
        assert_eq!(parse(Adblock, "||bücher.de^"), [block("xn--bcher-kva.de")]);
    }

    #[test]
    fn exceptions_and_important() {
        assert_eq!(
            parse(Adblock, "@@||cdn.example.com^"),
            [allow("cdn.example.com")]
        );
        assert_eq!(
            parse(Adblock, "@@cdn.example.com"),
            [allow("cdn.example.com")]
        );
        assert_eq!(
            parse(Adblock, "||evil.example^$important"),
            [important("evil.example")]
        );
        assert_eq!(
            parse(Adblock, "||evil.example^$IMPORTANT"),
            [important("evil.example")]
        );
        assert_eq!(
            parse(Adblock, "@@||good.example^$important"),
            [allow("good.example")]
        );
    }

    #[test]
    fn modifiers_other_than_important_are_unsupported() {
        for (line, name) in [
            ("||ads.example.com^$third-party", "$third-party"),
            ("||ads.example.com^$script", "$script"),
            ("||ads.example.com^$domain=a.com|b.com", "$domain"),
            ("||ads.example.com^$denyallow=x.com", "$denyallow"),
            ("||ads.example.com^$badfilter", "$badfilter"),
            ("||ads.example.com^$client=10.0.0.1", "$client"),
            ("||ads.example.com^$dnstype=AAAA", "$dnstype"),
            ("||ads.example.com^$dnsrewrite=1.2.3.4", "$dnsrewrite"),
            ("||ads.example.com^$important,third-party", "$third-party"),
            ("@@||ads.example.com^$ctag=kids", "$ctag"),
        ] {
            assert!(is_unsupported(&parse(Adblock, line), name), "{line}");
        }
    }

    #[test]
    fn wildcards_inside_names_are_unsupported() {
        for line in [
            "||ads*.example.com^",
            "||ads.*.example.com^",
            "||example.*^",
            "||*example.com^",
            "*",
            "||example.com*",
        ] {
            assert!(is_unsupported(&parse(Adblock, line), "wildcard"), "{line}");
        }
    }

    #[test]
    fn url_level_rules_are_counted_apart() {
        for line in [
            "||example.com/ads/banner.js",
            "||example.com/",
            "example.com/ads/",
            "|https://example.com^",
            "||example.com:8080^",
            "||example.com^*/ads",
            "/ads/banner",
            "&ad_type=",
            "@@||example.com/allowed/path",
            "||example.com/#anchor",
        ] {
            assert_eq!(parse(Adblock, line), [UrlLevel], "{line}");
        }
    }

    #[test]
    fn comments_headers_and_cosmetic_rules() {
        for line in [
            "! Title: EasyList",
            "!",
            "[Adblock Plus 2.0]",
            "# hosts-style comment",
            "#comment",
        ] {
            assert_eq!(parse(Adblock, line), [Skip], "{line}");
        }
        for line in [
            "##.ad-banner",
            "example.com##.ad-banner",
            "example.com#@#.ad-banner",
            "example.com#?#div:has(> .ad)",
            "example.com#$#body { padding: 0; }",
            "example.com#%#//scriptlet('abort-on-property-read', 'ads')",
            "example.com#@$?#.x { display: none }",
            "example.com$$script[tag-content=\"ads\"]",
            "###ad_slot",
        ] {
            assert!(is_unsupported(&parse(Adblock, line), "browser"), "{line}");
        }
        assert!(is_unsupported(
            &parse(Adblock, "/ads[0-9]+\\.js/"),
            "regular"
        ));
        assert!(is_unsupported(
            &parse(Adblock, "/^ad\\./$third-party"),
            "regular"
        ));
        assert!(is_unsupported(
            &parse(Adblock, "-banner-ad-"),
            "part of any"
        ));
    }

    #[test]
    fn hosts_lines_and_plain_domains_are_accepted() {
        assert_eq!(
            parse(Adblock, "0.0.0.0 a.example b.example # why"),
            [block("a.example"), block("b.example")]
        );
        assert_eq!(parse(Adblock, "127.0.0.1 localhost"), [Skip]);
        assert_eq!(parse(Adblock, "||a.example^ # note"), [block("a.example")]);
        assert_eq!(
            parse(Adblock, "plain.example.org"),
            [block("plain.example.org")]
        );
    }

    #[test]
    fn broken_rules_are_bad() {
        assert!(is_bad(&parse(Adblock, "||a..example^"), "empty label"));
        assert!(is_bad(&parse(Adblock, "||^"), "empty"));
        assert!(is_bad(&parse(Adblock, "@@"), "empty"));
        assert!(is_bad(
            &parse(Adblock, "two words.example"),
            "several words"
        ));
        assert!(is_bad(&parse(Adblock, "||a\0b.example^"), "\\0"));
    }
}
