//! Exports blocked-attempt rows as an RFC 4180 CSV file that is safe to open
//! in a spreadsheet.
//!
//! Device names come from DHCP hostnames, which pupils can set, so every
//! cell that a spreadsheet would treat as a formula (= + - @ tab CR) gets a
//! leading single quote.

use super::read::BlockedRow;
use crate::clock::{TimeZone, format_utc};
use std::io::{self, Write};

/// Writes `rows` with a header line, CRLF line endings, times shown in both
/// `tz` and UTC.
pub fn write_csv<'a, W: Write>(
    rows: impl IntoIterator<Item = &'a BlockedRow>,
    tz: TimeZone,
    out: W,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let local = format!("Time ({tz})");
    let last_local = format!("Last attempt ({tz})");
    let header = [
        "Ref",
        local.as_str(),
        "Time (UTC)",
        last_local.as_str(),
        "Last attempt (UTC)",
        "Attempts",
        "Device",
        "IP address",
        "MAC address",
        "Person",
        "Room",
        "Profile",
        "Network",
        "Blocked name",
        "Query type",
        "Category",
        "List",
        "Rule",
        "Action",
        "Locked",
    ];
    write_record(&mut out, header.iter().copied())?;
    for row in rows {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let cells = [
            row.id.to_string(),
            tz.format_local(row.at_unix_ms),
            format_utc(row.at_unix_ms),
            tz.format_local(row.last_at_unix_ms),
            format_utc(row.last_at_unix_ms),
            row.count.to_string(),
            opt(&row.device_name),
            row.client_ip.clone(),
            opt(&row.mac),
            opt(&row.owner),
            opt(&row.room),
            row.profile.clone(),
            opt(&row.listener),
            row.name.clone(),
            row.query_type.clone(),
            opt(&row.category),
            opt(&row.list),
            opt(&row.rule),
            row.action.clone(),
            if row.locked { "yes" } else { "no" }.to_string(),
        ];
        write_record(&mut out, cells.iter().map(String::as_str))?;
    }
    out.flush()
}

fn write_record<'a, W: Write>(out: &mut W, cells: impl Iterator<Item = &'a str>) -> io::Result<()> {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_cell(out, cell)?;
    }
    out.write_all(b"\r\n")
}

fn write_cell<W: Write>(out: &mut W, cell: &str) -> io::Result<()> {
    let defused = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = cell.contains([',', '"', '\r', '\n']);
    if needs_quotes {
        out.write_all(b"\"")?;
    }
    if defused {
        out.write_all(b"'")?;
    }
    if needs_quotes {
        out.write_all(cell.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(cell.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut v = Vec::new();
        let _ = write_cell(&mut v, s);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn quoting_follows_rfc_4180() {
        assert_eq!(cell("plain.example"), "plain.example");
        assert_eq!(cell("Smith, J"), "\"Smith, J\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("cr\rlf"), "\"cr\rlf\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(
            cell("=HYPERLINK(\"a\",\"b\")"),
            "\"'=HYPERLINK(\"\"a\"\",\"\"b\"\")\""
        );
        assert_eq!(cell("a=b"), "a=b");
    }
}
