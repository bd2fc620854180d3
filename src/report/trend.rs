//! The report's trend: blocked tries and the share of lookups blocked in
//! each of the last weeks, drawn as an SVG on the server (no script), sized
//! so its labels stay readable on a phone and it prints in black and one
//! colour.

use std::fmt::Write;

use crate::clock::TimeZone;
use crate::journal::{JournalError, JournalReader, LogFilter};

/// Weeks the chart shows, the report's own week last.
pub const WEEKS: i64 = 6;

/// One week: where it starts, its lookups, and its blocked tries (as the
/// log counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekPoint {
    pub from_ms: i64,
    pub queries: i64,
    pub blocked: i64,
}

impl WeekPoint {
    pub fn percent(&self) -> Option<f64> {
        (self.queries > 0).then(|| 100.0 * self.blocked as f64 / self.queries as f64)
    }
}

/// The [`WEEKS`] weeks of seven local days ending with the one that starts
/// at `from_ms`, oldest first.
pub fn weeks(
    reader: &JournalReader,
    tz: TimeZone,
    from_ms: i64,
) -> Result<Vec<WeekPoint>, JournalError> {
    let first_day = tz.local_day(from_ms);
    let mut out = Vec::new();
    for back in (0..WEEKS).rev() {
        let start = tz.start_of_local_day(first_day - 7 * back);
        let end = tz.start_of_local_day(first_day - 7 * back + 7);
        let queries = reader.hourly(start, end)?.iter().map(|h| h.queries).sum();
        let (_, blocked) = reader.tally_blocked(&LogFilter {
            from_unix_ms: Some(start),
            to_unix_ms: Some(end),
            ..LogFilter::default()
        })?;
        out.push(WeekPoint {
            from_ms: start,
            queries,
            blocked: i64::try_from(blocked).unwrap_or(i64::MAX),
        });
    }
    Ok(out)
}

// A narrow drawing: on a 400 px phone it is shown near its own size, so a
// 13-unit label is about a 13 px label.
const WIDTH: f64 = 330.0;
const HEIGHT: f64 = 200.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 44.0;
const SIDE: f64 = 4.0;

/// "16 Nov" for the week starting at `ms`.
fn week_label(tz: TimeZone, ms: i64) -> String {
    let day = crate::clock::people::day_name(tz.local_day(ms));
    // "Mon 16 Nov" -> "16 Nov": every bar is a Monday-or-so, the day adds nothing.
    day.split_once(' ')
        .map_or(day.clone(), |(_, rest)| rest.to_string())
}

fn percent_text(point: &WeekPoint) -> String {
    match point.percent() {
        Some(p) if p > 0.0 && p < 0.1 => "<0.1%".into(),
        Some(p) => format!("{p:.1}%"),
        None => "–".into(),
    }
}

/// The chart: one bar per week of blocked tries with its count above it,
/// the week and the share blocked below. The last bar is the report's week.
pub fn svg(points: &[WeekPoint], tz: TimeZone) -> String {
    let peak = points.iter().map(|p| p.blocked).max().unwrap_or(0).max(1);
    let plot = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - 2.0 * SIDE) / points.len().max(1) as f64;
    let bar = (slot * 0.62).max(1.0);
    let summary: Vec<String> = points
        .iter()
        .map(|p| {
            format!(
                "week of {}: {} blocked tries, {} of look-ups",
                week_label(tz, p.from_ms),
                p.blocked,
                percent_text(p)
            )
        })
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Blocked tries per week, the last {} weeks: {}" font-family="system-ui, sans-serif" font-size="13"><title>Blocked tries per week</title>"#,
        points.len(),
        escape(&summary.join("; "))
    );
    let base = TOP + plot;
    let _ = write!(
        out,
        r##"<line x1="{SIDE}" x2="{:.1}" y1="{base:.1}" y2="{base:.1}" stroke="#555" stroke-width="1"/>"##,
        WIDTH - SIDE
    );
    for (i, point) in points.iter().enumerate() {
        let height = plot * point.blocked as f64 / peak as f64;
        let x = SIDE + slot * i as f64 + (slot - bar) / 2.0;
        let middle = x + bar / 2.0;
        let last = i + 1 == points.len();
        let fill = if last { "#b3261e" } else { "#e8a09b" };
        let _ = write!(
            out,
            r##"<g><title>{}</title><rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{height:.1}" fill="{fill}"/><text x="{middle:.1}" y="{:.1}" text-anchor="middle"{}>{}</text><text x="{middle:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text><text x="{middle:.1}" y="{:.1}" text-anchor="middle" fill="#444" font-size="12">{}</text></g>"##,
            escape(&summary[i]),
            base - height,
            base - height - 5.0,
            if last { r#" font-weight="700""# } else { "" },
            point.blocked,
            base + 16.0,
            escape(&week_label(tz, point.from_ms)),
            base + 32.0,
            escape(&percent_text(point)),
        );
    }
    out.push_str("</svg>");
    out
}

fn escape(text: &str) -> String {
    super::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_a_week_with_readable_labels() {
        let week = 7 * 86_400_000;
        let start = crate::clock::days_from_civil(2026, 11, 30) * 86_400_000;
        let points: Vec<WeekPoint> = (0..WEEKS)
            .map(|i| WeekPoint {
                from_ms: start - (WEEKS - 1 - i) * week,
                queries: 1000 * i,
                blocked: 7 * i,
            })
            .collect();
        let svg = svg(&points, TimeZone::EuropeLondon);
        assert_eq!(svg.matches("<rect").count(), WEEKS as usize);
        assert!(svg.contains(">30 Nov<"), "{svg}");
        assert!(svg.contains(">0.7%<"), "{svg}");
        assert!(svg.contains(">–<"), "a week without look-ups: {svg}");
        assert!(svg.contains("week of 30 Nov: 35 blocked tries, 0.7% of look-ups"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
