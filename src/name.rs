//! Domain names, the vocabulary every layer shares: normalising a name typed
//! by an admin or read from a list, and the reversed-label form that list
//! keys and per-query lookups share.

use std::fmt;

use thiserror::Error;

/// Longest domain in presentation form without the trailing dot (RFC 1035's
/// 255-byte wire limit minus the length octets).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest single label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string could not be used as a domain name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("the domain is empty")]
    Empty,
    #[error("the domain is {0} bytes long; the limit is 253")]
    TooLong(usize),
    #[error("the domain has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("the label '{0}' is longer than 63 bytes")]
    LabelTooLong(String),
    #[error("the character {0:?} is not allowed in a domain name")]
    BadChar(char),
    #[error("'*.' wildcards are not accepted here; write the domain without it")]
    Wildcard,
    #[error("'{0}' is an IP address, not a domain name")]
    IpAddress(String),
    #[error("the international domain name could not be converted to punycode")]
    Idna,
}

/// Turns user or list input into the canonical form keys are built from:
/// lower-case ASCII, punycode for IDNs, no trailing dot.
/// The site name in what a person typed or pasted: a bare name, or a web
/// address (`https://www.example.org:8443/path?q#top`, `user@host`), from
/// which the host is taken; then normalised as [`normalise_domain`] does.
pub fn domain_from_input(input: &str) -> Result<String, NameError> {
    let text = input.trim();
    let after_scheme = match text.find("://") {
        Some(at) => &text[at + 3..],
        None => text,
    };
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    // A port after the host (an IPv6 literal is not a site name anyway).
    let host = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    normalise_domain(host)
}

pub fn normalise_domain(input: &str) -> Result<String, NameError> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    if trimmed.starts_with("*.") {
        return Err(NameError::Wildcard);
    }
    let ascii = if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        // The empty deny list keeps `_` legal: real blocklists contain
        // underscore hostnames and STD3 rules would reject them.
        idna::domain_to_ascii_cow(trimmed.as_bytes(), idna::AsciiDenyList::EMPTY)
            .map_err(|_| NameError::Idna)?
            .into_owned()
    };
    validate_ascii(&ascii)?;
    Ok(ascii)
}

fn validate_ascii(domain: &str) -> Result<(), NameError> {
    if domain.is_empty() {
        return Err(NameError::Empty);
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(NameError::TooLong(domain.len()));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong(label.to_owned()));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
        {
            return Err(NameError::BadChar(bad));
        }
    }
    // An address in a domain list would become a meaningless key; saying so
    // tells the technician the list is not the format they think.
    if domain.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(NameError::IpAddress(domain.to_owned()));
    }
    Ok(())
}

/// `www.bbc.co.uk` -> `uk.co.bbc.www`: the key order that makes every suffix
/// of a name a prefix of its key.
pub fn reverse_domain(domain: &str) -> String {
    reverse_domain_owned(domain.to_owned())
}

/// Same as [`reverse_domain`] but reuses the allocation; the compiler calls
/// this millions of times.
pub(crate) fn reverse_domain_owned(domain: String) -> String {
    let mut bytes = domain.into_bytes();
    bytes.reverse();
    for label in bytes.split_mut(|b| *b == b'.') {
        label.reverse();
    }
    // Each label comes back in its original byte order and `.` never occurs
    // inside a multi-byte character, so this is always valid UTF-8; the
    // lossy fallback only spares an unwrap.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A query name in reversed-label form, on the stack so the per-query path
/// never allocates.
#[derive(Clone)]
pub struct ReversedName {
    buf: [u8; 256],
    len: usize,
    labels: u8,
}

impl ReversedName {
    /// Builds from labels given left to right (as they come off the wire).
    /// `None` if a label is empty, longer than 63 bytes or contains a `.`
    /// (which would forge a label boundary), or the name exceeds 253 bytes.
    pub fn from_labels<'a>(
        labels_left_to_right: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> Option<Self> {
        let mut name = ReversedName {
            buf: [0; 256],
            len: 0,
            labels: 0,
        };
        for label in labels_left_to_right.rev() {
            if label.is_empty() || label.len() > MAX_LABEL_LEN || label.contains(&b'.') {
                return None;
            }
            let sep = usize::from(name.labels > 0);
            let end = name.len + sep + label.len();
            if end > MAX_DOMAIN_LEN {
                return None;
            }
            if sep == 1 {
                name.buf[name.len] = b'.';
            }
            for (dst, src) in name.buf[name.len + sep..end].iter_mut().zip(label) {
                *dst = src.to_ascii_lowercase();
            }
            name.len = end;
            name.labels += 1;
        }
        Some(name)
    }

    /// Builds from presentation form (`www.BBC.co.uk.`). ASCII only: callers
    /// holding user input should run [`normalise_domain`] first. `""` and
    /// `"."` give the root, which matches nothing.
    pub fn from_domain(domain: &str) -> Option<Self> {
        if !domain.is_ascii() {
            return None;
        }
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() {
            return Self::from_labels(std::iter::empty());
        }
        Self::from_labels(domain.split('.').map(str::as_bytes))
    }

    /// The key bytes, e.g. `uk.co.bbc.www`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The name's bytes followed by zeros to 256: a reader may load a
    /// fixed number of bytes at any label without running off the end.
    pub fn as_padded_bytes(&self) -> &[u8; 256] {
        &self.buf
    }

    pub fn label_count(&self) -> usize {
        usize::from(self.labels)
    }

    /// The whole name in presentation form, without the trailing dot.
    pub fn to_domain(&self) -> String {
        self.suffix_domain(self.len)
    }

    /// The whole name in presentation form, written into `buf` instead of
    /// the heap (for per-query lookups). None if a label is not UTF-8.
    pub fn domain_in<'b>(&self, buf: &'b mut [u8; 256]) -> Option<&'b str> {
        let key = &self.buf[..self.len];
        let mut at = 0;
        for (i, label) in key.rsplit(|b| *b == b'.').enumerate() {
            if i > 0 {
                buf[at] = b'.';
                at += 1;
            }
            buf[at..at + label.len()].copy_from_slice(label);
            at += label.len();
        }
        std::str::from_utf8(&buf[..at]).ok()
    }

    /// Turns a matched key prefix back into the domain it stands for, to
    /// report which rule fired: key length 9 of `uk.co.bbc.www` -> `bbc.co.uk`.
    pub fn suffix_domain(&self, key_len: usize) -> String {
        let key = &self.buf[..key_len.min(self.len)];
        // Labels copied as bytes and checked once: every blocked answer
        // reports its rule, and nearly every name is plain ASCII.
        let mut bytes = Vec::with_capacity(key.len());
        for (i, label) in key.rsplit(|b| *b == b'.').enumerate() {
            if i > 0 {
                bytes.push(b'.');
            }
            bytes.extend_from_slice(label);
        }
        String::from_utf8(bytes).unwrap_or_else(|_| lossy_suffix_domain(key))
    }
}

/// [`ReversedName::suffix_domain`] of a key with bytes that are not UTF-8:
/// each label made readable on its own (a dot is never inside a character,
/// so a key is UTF-8 exactly when each of its labels is).
fn lossy_suffix_domain(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, label) in key.rsplit(|b| *b == b'.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        // Wire labels may carry any byte; lossy keeps the report readable.
        out.push_str(&String::from_utf8_lossy(label));
    }
    out
}

impl fmt::Debug for ReversedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ReversedName({:?})",
            String::from_utf8_lossy(self.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_web_address_gives_its_host() {
        for (typed, domain) in [
            ("https://www.Bet365.com/en/sports?x=1#top", "www.bet365.com"),
            (
                "http://user:pw@games.example.org:8080/",
                "games.example.org",
            ),
            ("www.example.org/path", "www.example.org"),
            (" www.example.org. ", "www.example.org"),
            ("example.org:443", "example.org"),
        ] {
            assert_eq!(domain_from_input(typed).unwrap(), domain, "{typed}");
        }
        assert!(domain_from_input("https://").is_err());
        assert!(domain_from_input("not a name").is_err());
    }

    #[test]
    fn normalises_case_trailing_dot_and_whitespace() {
        assert_eq!(
            normalise_domain("  WWW.BBC.Co.UK. \r").unwrap(),
            "www.bbc.co.uk"
        );
        assert_eq!(
            normalise_domain("under_score.example").unwrap(),
            "under_score.example"
        );
    }

    #[test]
    fn converts_idn_to_punycode() {
        assert_eq!(normalise_domain("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(normalise_domain("BÜCHER.de").unwrap(), "xn--bcher-kva.de");
    }

    #[test]
    fn rejects_malformed_names() {
        assert_eq!(normalise_domain(" . "), Err(NameError::Empty));
        assert_eq!(normalise_domain("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(normalise_domain(".a.b"), Err(NameError::EmptyLabel));
        assert_eq!(normalise_domain("*.a.b"), Err(NameError::Wildcard));
        assert_eq!(normalise_domain("a b.com"), Err(NameError::BadChar(' ')));
        assert_eq!(normalise_domain("a/b.com"), Err(NameError::BadChar('/')));
        assert!(matches!(
            normalise_domain("10.0.0.1"),
            Err(NameError::IpAddress(_))
        ));
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(matches!(
            normalise_domain(&long_label),
            Err(NameError::LabelTooLong(_))
        ));
        let ok_label = format!("{}.com", "a".repeat(63));
        assert!(normalise_domain(&ok_label).is_ok());
        let long = vec!["abcdefghi"; 26].join("."); // 259 bytes
        assert_eq!(normalise_domain(&long), Err(NameError::TooLong(259)));
    }

    #[test]
    fn error_messages_are_plain_english() {
        let msg = normalise_domain("a..b").unwrap_err().to_string();
        assert!(msg.contains("empty label"), "{msg}");
    }

    #[test]
    fn domain_in_matches_to_domain_without_allocating() {
        let mut buf = [0u8; 256];
        for name in ["www.bbc.co.uk", "uk", "a.b", ""] {
            let reversed = ReversedName::from_domain(name).expect("name");
            assert_eq!(
                reversed.domain_in(&mut buf),
                Some(reversed.to_domain().as_str())
            );
        }
    }

    #[test]
    fn reverses_domains() {
        assert_eq!(reverse_domain("www.bbc.co.uk"), "uk.co.bbc.www");
        assert_eq!(reverse_domain("com"), "com");
        assert_eq!(reverse_domain("ab.cde"), "cde.ab");
    }

    #[test]
    fn reversed_name_from_domain() {
        let n = ReversedName::from_domain("WWW.bbc.co.uk.").unwrap();
        assert_eq!(n.as_bytes(), b"uk.co.bbc.www");
        assert_eq!(n.label_count(), 4);
        assert_eq!(n.suffix_domain(9), "bbc.co.uk");
        assert_eq!(n.suffix_domain(2), "uk");
        assert_eq!(n.suffix_domain(999), "www.bbc.co.uk");
        // A byte that is not UTF-8 is shown as U+FFFD in its own label.
        let odd = ReversedName::from_labels([&b"www"[..], b"b\xffc", b"uk"].into_iter())
            .expect("short enough");
        assert_eq!(odd.suffix_domain(999), "www.b\u{fffd}c.uk");
        assert_eq!(odd.suffix_domain(2), "uk");
        let root = ReversedName::from_domain(".").unwrap();
        assert_eq!(root.as_bytes(), b"");
        assert_eq!(root.label_count(), 0);
        assert!(ReversedName::from_domain("a..b").is_none());
        assert!(ReversedName::from_domain("bücher.de").is_none());
    }

    #[test]
    fn reversed_name_from_labels_matches_from_domain() {
        let labels: [&[u8]; 3] = [b"Mail", b"Example", b"ORG"];
        let n = ReversedName::from_labels(labels.into_iter()).unwrap();
        assert_eq!(n.as_bytes(), b"org.example.mail");
        let dotted: [&[u8]; 2] = [b"a.b", b"com"];
        assert!(ReversedName::from_labels(dotted.into_iter()).is_none());
        let empty: [&[u8]; 2] = [b"", b"com"];
        assert!(ReversedName::from_labels(empty.into_iter()).is_none());
    }

    #[test]
    fn reversed_name_length_limit() {
        let label = [b'a'; 63];
        // 4 x 63 + 3 dots = 255 > 253
        assert!(ReversedName::from_labels([&label[..]; 4].into_iter()).is_none());
        let short = [b'a'; 61];
        // 4 x 61 + 3 = 247 and 3 more labels of 1 = 253 exactly
        let parts: [&[u8]; 7] = [&short, &short, &short, &short, b"b", b"c", b"d"];
        let n = ReversedName::from_labels(parts.into_iter()).unwrap();
        assert_eq!(n.as_bytes().len(), 253);
        let parts: [&[u8]; 8] = [&short, &short, &short, &short, b"b", b"c", b"d", b"e"];
        assert!(ReversedName::from_labels(parts.into_iter()).is_none());
    }
}

#[cfg(test)]
mod props;
