//! dnsmasq configuration lines as blocklists publish them:
//! `address=/domain/[address]` and `local=/domain/`, each naming one or
//! more domains between slashes. Other directives are counted, not applied.

use super::{EntryKind, LineResult, entry};

/// `line` is trimmed and not blank.
pub(super) fn parse_line(line: &str, mut emit: impl FnMut(LineResult)) {
    // dnsmasq's own comment rule; `#` elsewhere is data (`address=/#/`).
    if line.starts_with('#') {
        return emit(LineResult::Skip);
    }
    let line = strip_trailing_comment(line);
    let (directive, value) = line.split_once('=').unwrap_or((line, ""));
    let directive = directive.trim();
    if directive.is_empty()
        || !directive
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return emit(LineResult::Bad(format!(
            "'{}' is not a dnsmasq setting; expected address=/domain/",
            line.chars().take(40).collect::<String>()
        )));
    }
    let directive = directive.to_ascii_lowercase();
    let value = value.trim();
    match directive.as_str() {
        // Whatever address follows, the list means "don't resolve this
        // name normally": a block.
        "address" | "local" => block_domains(value, &directive, emit),
        // dnsmasq treats `server=/d/` with no server as `local=/d/`.
        "server" if value.ends_with('/') => block_domains(value, &directive, emit),
        _ => emit(LineResult::Unsupported(format!(
            "the dnsmasq '{directive}' setting does not block a domain"
        ))),
    }
}

/// dnsmasq accepts `# comments` after a value only with a space before them.
fn strip_trailing_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = (1..bytes.len()).find(|&i| bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace());
    cut.map_or(line, |i| line[..i].trim_end())
}

/// `/a.com/b.com/[address]`: every name between the slashes.
fn block_domains(value: &str, directive: &str, mut emit: impl FnMut(LineResult)) {
    let Some(rest) = value.strip_prefix('/') else {
        return emit(LineResult::Bad(format!(
            "{directive}= must be followed by /domain/"
        )));
    };
    let Some((names, _address)) = rest.rsplit_once('/') else {
        return emit(LineResult::Bad(format!(
            "{directive}= is missing the '/' after the domain"
        )));
    };
    for name in names.split('/') {
        let name = name.trim();
        let result = match name {
            "" => LineResult::Unsupported(
                "an empty domain (//) means names without dots, which lists cannot block".into(),
            ),
            "#" => LineResult::Unsupported(
                "'#' means every domain; Lollipop will not block everything from a list".into(),
            ),
            _ => {
                // `*.example.com` and `.example.com`: the subdomains, which
                // every entry covers anyway.
                let name = name
                    .strip_prefix("*.")
                    .or_else(|| name.strip_prefix('.'))
                    .unwrap_or(name);
                match entry(name, EntryKind::Block) {
                    LineResult::Bad(e) => LineResult::Bad(format!("'{name}': {e}")),
                    ok => ok,
                }
            }
        };
        emit(result);
    }
}

#[cfg(test)]
mod tests {
    use super::super::ListFormat::Dnsmasq;
    use super::super::tests::{block, is_bad, is_unsupported, parse};
    use super::*;
    use LineResult::Skip;

    #[test]
    fn address_lines_block_whatever_the_address() {
        for line in [
            "address=/ads.example.com/",
            "address=/ads.example.com/0.0.0.0",
            "address=/ads.example.com/::",
            "address=/ads.example.com/#",
            "address=/ads.example.com/127.0.0.1",
            "address=/ADS.example.com./0.0.0.0",
            "address=/*.ads.example.com/",
            "address=/.ads.example.com/",
            "  address = /ads.example.com/0.0.0.0  # why\r",
            "local=/ads.example.com/",
            "server=/ads.example.com/",
        ] {
            assert_eq!(parse(Dnsmasq, line), [block("ads.example.com")], "{line:?}");
        }
    }

    #[test]
    fn several_domains_on_one_line_all_count() {
        assert_eq!(
            parse(Dnsmasq, "address=/a.example/b.example/c.example/0.0.0.0"),
            [block("a.example"), block("b.example"), block("c.example")]
        );
        assert_eq!(
            parse(Dnsmasq, "local=/a.example/b.example/"),
            [block("a.example"), block("b.example")]
        );
        let r = parse(Dnsmasq, "address=/good.example/bad..example/");
        assert_eq!(r[0], block("good.example"));
        assert!(matches!(&r[1], LineResult::Bad(m) if m.contains("bad..example")));
    }

    #[test]
    fn other_settings_are_unsupported() {
        for (line, name) in [
            ("server=/example.com/10.0.0.1", "server"),
            ("server=8.8.8.8", "server"),
            ("ipset=/example.com/blocked", "ipset"),
            ("nftset=/example.com/4#inet#fw#blocked", "nftset"),
            ("domain-needed", "domain-needed"),
            ("cname=a.example,b.example", "cname"),
        ] {
            assert!(is_unsupported(&parse(Dnsmasq, line), name), "{line}");
        }
        assert!(is_unsupported(
            &parse(Dnsmasq, "address=/#/0.0.0.0"),
            "every domain"
        ));
        assert!(is_unsupported(
            &parse(Dnsmasq, "address=//0.0.0.0"),
            "empty"
        ));
    }

    #[test]
    fn comments_and_broken_lines() {
        assert_eq!(parse(Dnsmasq, "# dnsmasq blocklist"), [Skip]);
        assert_eq!(parse(Dnsmasq, "   "), [Skip]);
        assert!(is_bad(
            &parse(Dnsmasq, "address=ads.example.com"),
            "/domain/"
        ));
        assert!(is_bad(
            &parse(Dnsmasq, "address=/ads.example.com"),
            "missing"
        ));
        assert!(is_bad(&parse(Dnsmasq, "ads.example.com"), "not a dnsmasq"));
        assert!(is_bad(
            &parse(Dnsmasq, "0.0.0.0 ads.example.com"),
            "not a dnsmasq"
        ));
        assert!(is_bad(&parse(Dnsmasq, "=/x/"), "not a dnsmasq"));
    }
}
