//! Reading the lines of a list file, in any supported format, into
//! normalised entries, each marked as a block, an exception or an important
//! block. Each format family lives in its own submodule.

mod adblock;
mod dnsmasq;
mod hosts;
mod rpz;

use serde::{Deserialize, Serialize};

use crate::config::ListFormat;
use crate::name::normalise_domain;

/// What an entry asks the resolver to do with its name and subdomains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    Block,
    /// An exception: the list itself says not to block this name.
    Allow,
    /// A block that the list's category's exceptions cannot lift.
    Important,
}

/// The set of kinds one source has at one key. A list can say both `||d^`
/// and `@@||d^`; keeping both lets the resolver apply its own precedence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryKinds(u8);

impl EntryKinds {
    const fn bit(kind: EntryKind) -> u8 {
        match kind {
            EntryKind::Block => 1,
            EntryKind::Allow => 2,
            EntryKind::Important => 4,
        }
    }

    pub const fn only(kind: EntryKind) -> Self {
        EntryKinds(Self::bit(kind))
    }

    #[must_use]
    pub const fn with(self, kind: EntryKind) -> Self {
        EntryKinds(self.0 | Self::bit(kind))
    }

    pub const fn contains(self, kind: EntryKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    /// Whether this set blocks in its category: a plain or important block.
    pub const fn blocks(self) -> bool {
        self.contains(EntryKind::Block) || self.contains(EntryKind::Important)
    }

    /// The set holds at least one kind and no bits this version doesn't know.
    pub(crate) const fn is_valid(self) -> bool {
        self.0 != 0 && self.0 & !7 == 0
    }
}

/// What one line, or one name on a multi-name line, produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineResult {
    /// A normalised domain; it covers its subdomains too.
    Entry { domain: String, kind: EntryKind },
    /// Blank, comment, header, or a record that carries no rule.
    Skip,
    /// Broken: the list is damaged or not in the format configured. The
    /// reason is written for a technician.
    Bad(String),
    /// A valid rule of a kind Lollipop cannot apply (a cosmetic rule, an
    /// adblock modifier, an RPZ IP trigger...). Expected in real lists, so
    /// counted apart from bad lines.
    Unsupported(String),
    /// A rule about particular web addresses (`example.com/ads/`), which a
    /// DNS resolver never sees and so cannot enforce.
    UrlLevel,
}

/// Normalises `name` into an entry of `kind`, or says why it can't be one.
fn entry(name: &str, kind: EntryKind) -> LineResult {
    match normalise_domain(name) {
        Ok(domain) => LineResult::Entry { domain, kind },
        // The report quotes the line beside the reason, so no need to repeat it.
        Err(e) => LineResult::Bad(e.to_string()),
    }
}

/// Reads a list line by line. RPZ zone files carry state between lines
/// (`$ORIGIN`, records continued in parentheses, an owner name left blank
/// to repeat the last), so a whole file must go through one parser.
#[derive(Debug)]
pub struct LineParser {
    format: ListFormat,
    rpz: rpz::ZoneState,
}

impl LineParser {
    pub fn new(format: ListFormat) -> Self {
        LineParser {
            format,
            rpz: rpz::ZoneState::default(),
        }
    }

    /// Parses the next line, without its line ending. A line can name
    /// several domains (hosts, dnsmasq), so results go to `emit`: one per
    /// name, or a single `Skip` when the line yields nothing at all.
    pub fn parse_line(&mut self, line: &str, mut emit: impl FnMut(LineResult)) {
        // A BOM only ever starts a file, but stripping it everywhere is
        // harmless and saves tracking line numbers here.
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return emit(LineResult::Skip);
        }
        match self.format {
            ListFormat::Domains => emit(hosts::parse_domains_line(trimmed)),
            ListFormat::Hosts => hosts::parse_hosts_line(trimmed, emit),
            ListFormat::Adblock => adblock::parse_line(trimmed, emit),
            ListFormat::Dnsmasq => dnsmasq::parse_line(trimmed, emit),
            // Untrimmed: a leading blank there means "same owner as the
            // previous record".
            ListFormat::Rpz => self.rpz.parse_line(line, emit),
        }
    }
}

/// Parses one line on its own, e.g. to check a line a technician pasted. An
/// RPZ line is read as if it were the first in its file.
pub fn parse_line(format: ListFormat, line: &str, emit: impl FnMut(LineResult)) {
    LineParser::new(format).parse_line(line, emit);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every result of each line, fed through one parser in order.
    pub(crate) fn parse_lines(format: ListFormat, lines: &[&str]) -> Vec<Vec<LineResult>> {
        let mut parser = LineParser::new(format);
        lines
            .iter()
            .map(|line| {
                let mut out = Vec::new();
                parser.parse_line(line, |r| out.push(r));
                out
            })
            .collect()
    }

    pub(crate) fn parse(format: ListFormat, line: &str) -> Vec<LineResult> {
        let mut out = Vec::new();
        parse_line(format, line, |r| out.push(r));
        out
    }

    pub(crate) fn block(d: &str) -> LineResult {
        LineResult::Entry {
            domain: d.to_owned(),
            kind: EntryKind::Block,
        }
    }

    pub(crate) fn allow(d: &str) -> LineResult {
        LineResult::Entry {
            domain: d.to_owned(),
            kind: EntryKind::Allow,
        }
    }

    pub(crate) fn important(d: &str) -> LineResult {
        LineResult::Entry {
            domain: d.to_owned(),
            kind: EntryKind::Important,
        }
    }

    /// A single `Bad` whose reason mentions `needle`.
    pub(crate) fn is_bad(results: &[LineResult], needle: &str) -> bool {
        matches!(results, [LineResult::Bad(m)] if m.contains(needle))
    }

    /// A single `Unsupported` whose reason mentions `needle`.
    pub(crate) fn is_unsupported(results: &[LineResult], needle: &str) -> bool {
        matches!(results, [LineResult::Unsupported(m)] if m.contains(needle))
    }

    #[test]
    fn formats_serialise_lowercase() {
        for (format, name) in [
            (ListFormat::Domains, "domains"),
            (ListFormat::Hosts, "hosts"),
            (ListFormat::Adblock, "adblock"),
            (ListFormat::Rpz, "rpz"),
            (ListFormat::Dnsmasq, "dnsmasq"),
        ] {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&format).unwrap(), json);
            assert_eq!(serde_json::from_str::<ListFormat>(&json).unwrap(), format);
        }
        assert!(serde_json::from_str::<ListFormat>("\"Adblock\"").is_err());
    }

    #[test]
    fn every_format_normalises_names_the_same_way() {
        let cases = [
            (ListFormat::Domains, "\u{feff}Bücher.EXAMPLE.\r"),
            (ListFormat::Hosts, "\u{feff}0.0.0.0 Bücher.EXAMPLE.\r"),
            (ListFormat::Adblock, "\u{feff}||Bücher.EXAMPLE.^\r"),
            (ListFormat::Rpz, "\u{feff}Bücher.EXAMPLE. CNAME .\r"),
            (ListFormat::Dnsmasq, "\u{feff}address=/Bücher.EXAMPLE./\r"),
        ];
        for (format, line) in cases {
            assert_eq!(
                parse(format, line),
                [block("xn--bcher-kva.example")],
                "{format:?}"
            );
        }
    }

    #[test]
    fn entry_kinds_combine() {
        let k = EntryKinds::only(EntryKind::Allow);
        assert!(k.contains(EntryKind::Allow) && !k.blocks());
        let k = k.with(EntryKind::Important);
        assert!(k.contains(EntryKind::Allow) && k.blocks());
        assert!(!k.contains(EntryKind::Block));
        assert!(k.is_valid());
        assert!(!EntryKinds::default().is_valid());
        assert!(!EntryKinds(8).is_valid());
        assert_eq!(serde_json::to_string(&k).unwrap(), "6");
    }
}
