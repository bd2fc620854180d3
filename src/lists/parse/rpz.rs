//! DNS response policy zone (RPZ) files: the zone-file syntax, and the
//! QNAME-trigger policies a name filter can apply (`CNAME .`, `CNAME *.`,
//! `rpz-drop.`, `rpz-passthru.`). Local data and IP or name-server triggers
//! are counted as unsupported.
//!
//! In RPZ, `name` and `*.name` are separate triggers; Lollipop's entries
//! always cover their subdomains, so either becomes one entry for `name`.

use super::{EntryKind, LineResult, entry};

/// A record held open by `(` may not grow past this; a file that never
/// closes one must not swallow the rest of itself into memory.
const MAX_PENDING_BYTES: usize = 4096;
const MAX_PENDING_LINES: u32 = 64;

/// RPZ triggers that match answers, name servers or clients rather than the
/// query name.
const OTHER_TRIGGERS: &[&str] = &["rpz-ip", "rpz-nsip", "rpz-nsdname", "rpz-client-ip"];

/// What earlier lines of a zone file decide about later ones.
#[derive(Debug, Default)]
pub(super) struct ZoneState {
    /// `$ORIGIN`, which relative names are completed with: lower case, no
    /// trailing dot, empty for the root or none given.
    origin: String,
    origin_given: bool,
    /// The zone's own name (from the SOA, else the first `$ORIGIN`), which
    /// is stripped from every owner to give the name a policy is about.
    /// Kept apart from `origin` because a file may move `$ORIGIN` into the
    /// zone (`$ORIGIN example.com.rpz.local.`) and go on with short names.
    zone: Option<String>,
    /// Owner of the last record, for records that leave it blank.
    last_owner: Option<String>,
    /// Text of a record continued across lines in parentheses.
    pending: String,
    pending_lines: u32,
}

/// A line without its comment, and whether it opens or closes parentheses.
struct Stripped<'a> {
    text: &'a str,
    opens: bool,
    closes: bool,
}

fn strip_comment(line: &str) -> Stripped<'_> {
    let (mut quoted, mut escaped) = (false, false);
    let (mut opens, mut closes) = (false, false);
    for (i, b) in line.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                return Stripped {
                    text: &line[..i],
                    opens,
                    closes,
                };
            }
            b'(' if !quoted => opens = true,
            b')' if !quoted => closes = true,
            _ => {}
        }
    }
    Stripped {
        text: line,
        opens,
        closes,
    }
}

/// `300`, `1h`, `1h30m`: a TTL in BIND's notation.
fn is_ttl(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit())
        && token
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdwSMHDW".contains(c))
}

fn is_class(token: &str) -> bool {
    ["IN", "CH", "HS", "CS"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(token))
}

/// Makes a name absolute: lower case, no trailing dot.
fn absolute(name: &str, origin: &str) -> String {
    if name == "@" {
        return origin.to_owned();
    }
    if let Some(abs) = name.strip_suffix('.') {
        return abs.to_ascii_lowercase();
    }
    let mut out = name.to_ascii_lowercase();
    if !origin.is_empty() {
        out.push('.');
        out.push_str(origin);
    }
    out
}

impl ZoneState {
    pub(super) fn parse_line(&mut self, line: &str, mut emit: impl FnMut(LineResult)) {
        let stripped = strip_comment(line);
        if self.pending_lines > 0 {
            self.pending.push(' ');
            self.pending.push_str(stripped.text);
            self.pending_lines += 1;
            if stripped.closes {
                let record = std::mem::take(&mut self.pending);
                self.pending_lines = 0;
                return self.record(&record, emit);
            }
            if self.pending.len() > MAX_PENDING_BYTES || self.pending_lines > MAX_PENDING_LINES {
                let lines = self.pending_lines;
                self.pending = String::new();
                self.pending_lines = 0;
                return emit(LineResult::Bad(format!(
                    "a '(' opened {lines} lines earlier is never closed"
                )));
            }
            return emit(LineResult::Skip);
        }
        if stripped.opens && !stripped.closes {
            self.pending.push_str(stripped.text);
            self.pending_lines = 1;
            return emit(LineResult::Skip);
        }
        self.record(stripped.text, emit)
    }

    /// One whole record or directive, comments removed.
    fn record(&mut self, text: &str, mut emit: impl FnMut(LineResult)) {
        if text.trim().is_empty() {
            return emit(LineResult::Skip);
        }
        if text.starts_with('$') {
            return emit(self.directive(text));
        }
        let mut tokens = text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|t| !t.is_empty());
        let owner = if text.starts_with(char::is_whitespace) {
            match &self.last_owner {
                Some(owner) => owner.clone(),
                None => {
                    return emit(LineResult::Bad(
                        "the record has no owner name and none came before it".into(),
                    ));
                }
            }
        } else {
            let token = tokens.next().unwrap_or_default();
            absolute(token, &self.origin)
        };
        self.last_owner = Some(owner.clone());
        let mut rtype = tokens.next().unwrap_or_default();
        for _ in 0..2 {
            if is_ttl(rtype) || is_class(rtype) {
                rtype = tokens.next().unwrap_or_default();
            }
        }
        if rtype.is_empty() {
            return emit(LineResult::Bad(
                "expected a record such as 'example.com CNAME .'".into(),
            ));
        }
        if !rtype.starts_with(|c: char| c.is_ascii_alphabetic())
            || !rtype.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return emit(LineResult::Bad(format!(
                "'{rtype}' is not a record type; is this list really an RPZ zone file?"
            )));
        }
        let rtype = rtype.to_ascii_uppercase();
        if rtype == "SOA" {
            // The SOA's owner is the zone apex; with no `$ORIGIN`, BIND
            // would complete relative names with the zone name too.
            if !self.origin_given {
                self.origin.clone_from(&owner);
            }
            self.zone = Some(owner);
            return emit(LineResult::Skip);
        }
        let trigger = match self.zone.as_deref() {
            None | Some("") => owner.as_str(),
            Some(zone) if owner == zone => "",
            Some(zone) => match owner.strip_suffix(zone).and_then(|t| t.strip_suffix('.')) {
                Some(trigger) => trigger,
                None => {
                    return emit(LineResult::Bad(format!(
                        "'{owner}' is outside the zone '{zone}'"
                    )));
                }
            },
        };
        // Records for the zone itself (its NS, TXT notes) are not policies.
        if trigger.is_empty() {
            return emit(LineResult::Skip);
        }
        emit(policy(trigger, &rtype, tokens.next()));
    }

    fn directive(&mut self, text: &str) -> LineResult {
        let mut tokens = text.split_whitespace();
        let name = tokens.next().unwrap_or_default().to_ascii_uppercase();
        match name.as_str() {
            "$ORIGIN" => {
                let Some(origin) = tokens.next() else {
                    return LineResult::Bad("$ORIGIN needs a domain after it".into());
                };
                self.origin = absolute(origin, &self.origin);
                self.origin_given = true;
                if self.zone.is_none() {
                    self.zone = Some(self.origin.clone());
                }
                LineResult::Skip
            }
            "$TTL" => LineResult::Skip,
            "$INCLUDE" => LineResult::Unsupported(
                "$INCLUDE is not followed; add the included file as its own list".into(),
            ),
            _ => LineResult::Unsupported(format!("the {name} directive is not supported")),
        }
    }
}

/// The entry a QNAME trigger and its record make, if Lollipop can apply it.
fn policy(trigger: &str, rtype: &str, target: Option<&str>) -> LineResult {
    let last_label = trigger.rsplit('.').next().unwrap_or_default();
    if let Some(kind) = OTHER_TRIGGERS
        .iter()
        .find(|t| t.eq_ignore_ascii_case(last_label))
    {
        return LineResult::Unsupported(format!(
            "an {kind} trigger; Lollipop matches query names only"
        ));
    }
    // `*.example.com` is RPZ's way to cover example.com's subdomains.
    // Lollipop's entries always cover their subdomains, so the wildcard
    // becomes an entry for example.com itself, which blocks the parent too.
    let name = trigger.strip_prefix("*.").unwrap_or(trigger);
    if name == "*" {
        return LineResult::Unsupported("a wildcard for every name in the zone".into());
    }
    if rtype != "CNAME" {
        return LineResult::Unsupported(format!(
            "local data ({rtype} record): Lollipop blocks or passes names, it does not answer with its own records"
        ));
    }
    let Some(target) = target else {
        return LineResult::Bad("the CNAME has no target".into());
    };
    let target = target.to_ascii_lowercase();
    let kind = match target.strip_suffix('.').unwrap_or(&target) {
        // NXDOMAIN, NODATA and drop all keep the name from resolving.
        "" | "*" | "rpz-drop" => EntryKind::Block,
        "rpz-passthru" => EntryKind::Allow,
        "rpz-tcp-only" => {
            return LineResult::Unsupported("rpz-tcp-only has no meaning for a filter".into());
        }
        _ => {
            return LineResult::Unsupported(format!(
                "local data (CNAME to {target}): Lollipop blocks or passes names, it does not redirect them"
            ));
        }
    };
    match entry(name, kind) {
        LineResult::Bad(e) => LineResult::Bad(format!("'{name}': {e}")),
        ok => ok,
    }
}

#[cfg(test)]
mod tests {
    use super::super::ListFormat::Rpz;
    use super::super::tests::{allow, block, is_bad, is_unsupported, parse, parse_lines};
    use super::*;
    use LineResult::Skip;

    #[test]
    fn policies_by_cname_target() {
        assert_eq!(
            parse(Rpz, "bad.example.com CNAME ."),
            [block("bad.example.com")]
        );
        assert_eq!(
            parse(Rpz, "bad.example.com CNAME *."),
            [block("bad.example.com")]
        );
        assert_eq!(
            parse(Rpz, "bad.example.com CNAME rpz-drop."),
            [block("bad.example.com")]
        );
        assert_eq!(
            parse(Rpz, "ok.example.com CNAME rpz-passthru."),
            [allow("ok.example.com")]
        );
        assert_eq!(
            parse(Rpz, "*.bad.example.com CNAME ."),
            [block("bad.example.com")]
        );
        assert_eq!(
            parse(Rpz, "Bad.Example.COM. 300 IN CNAME . ; malware"),
            [block("bad.example.com")]
        );
        assert_eq!(
            parse(Rpz, "bad.example.com IN 1h30m cname ."),
            [block("bad.example.com")]
        );
    }

    #[test]
    fn names_are_relative_to_the_zone() {
        let lines = [
            "$TTL 300",
            "$ORIGIN rpz.local.",
            "bad.example.com.rpz.local. CNAME .",
            "worse.example.com CNAME .",
            "@ NS localhost.",
            "other.zone. CNAME .",
            "$ORIGIN example.org.rpz.local.",
            "www CNAME rpz-passthru.",
            "@ CNAME .",
        ];
        let r = parse_lines(Rpz, &lines);
        assert_eq!(r[0], [Skip]);
        assert_eq!(r[1], [Skip]);
        assert_eq!(r[2], [block("bad.example.com")]);
        assert_eq!(r[3], [block("worse.example.com")]);
        assert_eq!(r[4], [Skip]);
        assert!(is_bad(&r[5], "outside the zone"));
        assert_eq!(r[6], [Skip]);
        assert_eq!(r[7], [allow("www.example.org")]);
        assert_eq!(r[8], [block("example.org")]);
    }

    #[test]
    fn multi_line_soa_sets_the_zone_and_does_not_break_parsing() {
        let lines = [
            "; Response policy zone",
            "rpz.example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. (",
            "        2024010101 ; serial",
            "        3600       ; refresh (with a ) in a comment",
            "        600 1209600",
            "        300 )",
            "        IN NS ns.example.net.",
            "ads.example.com CNAME .",
            "tracker.example.com.rpz.example.net. CNAME .",
            "  IN TXT \"listed; see report (ref 7\"",
            "",
            "safe.example.com CNAME rpz-passthru.",
        ];
        let r = parse_lines(Rpz, &lines);
        for (i, line) in r.iter().enumerate().take(7) {
            assert_eq!(line, &[Skip], "line {i}");
        }
        assert_eq!(r[7], [block("ads.example.com")]);
        assert_eq!(r[8], [block("tracker.example.com")]);
        // A blank owner repeats the last; TXT is local data.
        assert!(is_unsupported(&r[9], "TXT"));
        assert_eq!(r[11], [allow("safe.example.com")]);
    }

    #[test]
    fn unclosed_parenthesis_is_bounded() {
        let mut lines = vec!["@ SOA a. b. ( 1 2 3"];
        lines.extend(std::iter::repeat_n("4", 70));
        lines.push("after.example CNAME .");
        let r = parse_lines(Rpz, &lines);
        let bad_at = r.iter().position(|l| is_bad(l, "never closed")).unwrap();
        assert_eq!(bad_at, MAX_PENDING_LINES as usize);
        assert_eq!(r.last().unwrap(), &[block("after.example")]);
    }

    #[test]
    fn local_data_and_other_triggers_are_unsupported() {
        for (line, why) in [
            ("bad.example.com A 10.0.0.1", "A record"),
            ("bad.example.com AAAA ::1", "AAAA record"),
            ("bad.example.com TXT \"blocked\"", "TXT record"),
            ("bad.example.com CNAME walled.garden.example.", "CNAME to"),
            ("32.1.2.0.192.rpz-ip CNAME .", "rpz-ip"),
            ("ns.evil.example.rpz-nsdname CNAME .", "rpz-nsdname"),
            (
                "24.0.0.0.10.rpz-client-ip CNAME rpz-passthru.",
                "rpz-client-ip",
            ),
            ("32.1.0.0.127.rpz-nsip CNAME .", "rpz-nsip"),
            ("bad.example.com CNAME rpz-tcp-only.", "rpz-tcp-only"),
            ("* CNAME .", "every name"),
            ("$INCLUDE other.zone", "$INCLUDE"),
            ("$GENERATE 1-9 host$ CNAME .", "$GENERATE"),
        ] {
            assert!(is_unsupported(&parse(Rpz, line), why), "{line}");
        }
    }

    #[test]
    fn broken_records_are_bad() {
        assert!(is_bad(&parse(Rpz, "bad.example.com"), "expected a record"));
        assert!(is_bad(
            &parse(Rpz, "0.0.0.0 bad.example.com"),
            "not a record type"
        ));
        assert!(is_bad(&parse(Rpz, "bad.example.com CNAME"), "no target"));
        assert!(is_bad(&parse(Rpz, "  CNAME ."), "no owner"));
        assert!(is_bad(&parse(Rpz, "bad..example CNAME ."), "empty label"));
        assert!(is_bad(&parse(Rpz, "$ORIGIN"), "needs a domain"));
        assert_eq!(parse(Rpz, "; only a comment"), [Skip]);
    }
}
