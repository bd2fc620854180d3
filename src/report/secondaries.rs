//! The report's part for an HA pair: what each secondary answered and
//! blocked over the same period, from the counts it sends the primary
//! (`cluster::blocks`), so one report covers the school's lookups on both
//! boxes. The secondary's own log keeps its entries.

use std::fmt::Write;

use super::{Report, escape};

/// The HTML section (empty without secondaries).
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    for secondary in &report.secondaries {
        let _ = write!(
            out,
            "<h2>Also answered by the secondary {}</h2><p>{} look-ups, {} blocked tries (its figures as sent at {}; its log keeps the entries).</p>",
            escape(&secondary.name),
            secondary.queries,
            secondary.blocked,
            escape(&crate::clock::people::when(
                report.tz,
                secondary.sent_at_unix_ms
            )),
        );
        if secondary.by_category.is_empty() {
            continue;
        }
        out.push_str("<table><thead><tr><th scope=\"col\">Category</th><th scope=\"col\" class=\"n\">Tries</th></tr></thead><tbody>");
        for (category, tries) in &secondary.by_category {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{tries}</td></tr>",
                escape(&report.category_name(category))
            );
        }
        out.push_str("</tbody></table>");
    }
    out
}

/// The plain-text section (empty without secondaries).
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for secondary in &report.secondaries {
        let _ = writeln!(
            out,
            "\nAlso answered by the secondary {}: {} look-ups, {} blocked tries (as sent at {})",
            secondary.name,
            secondary.queries,
            secondary.blocked,
            crate::clock::people::when(report.tz, secondary.sent_at_unix_ms),
        );
        for (category, tries) in &secondary.by_category {
            let _ = writeln!(out, "  {tries:>7}  {}", report.category_name(category));
        }
    }
    out
}
