//! Bar charts drawn on the server as SVG: lookups and blocks per hour or
//! per day, readable without JavaScript and by a screen reader (each bar
//! carries its figures as a title, and the chart a summary).

use std::fmt::Write;

/// One bar: its label on the axis and its two figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub queries: i64,
    pub blocked: i64,
}

// Narrow, so on a 400 px phone a label is drawn near its own size.
const WIDTH: f64 = 400.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// An SVG of `bars`: lookups in grey with blocked ones in the brand colour
/// in front, a scale on the left, and every `label_every`-th label.
pub fn bars(title: &str, bars: &[Bar], label_every: usize) -> String {
    let peak = bars.iter().map(|b| b.queries.max(b.blocked)).max();
    let scale_top = nice_ceiling(peak.unwrap_or(0).max(1));
    let plot_width = WIDTH - LEFT - 4.0;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / bars.len().max(1) as f64;
    let bar_width = (slot * 0.8).max(1.0);
    let y = |value: i64| TOP + plot_height * (1.0 - value as f64 / scale_top as f64);

    let total_queries: i64 = bars.iter().map(|b| b.queries).sum();
    let total_blocked: i64 = bars.iter().map(|b| b.blocked).sum();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}: {} lookups, {} blocked"><title>{}</title>"#,
        escape(title),
        total_queries,
        total_blocked,
        escape(title)
    );
    for step in 0..=2 {
        let value = scale_top * step / 2;
        let at = y(value);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{at:.1}" y2="{at:.1}" stroke="#d8dce3" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 4.0,
            at + 4.0,
            short_count(value)
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_width) / 2.0;
        let _ = write!(
            svg,
            r#"<g><title>{}: {} lookups, {} blocked</title><rect class="bar queries" x="{x:.1}" y="{:.1}" width="{bar_width:.1}" height="{:.1}"/><rect class="bar" x="{x:.1}" y="{:.1}" width="{bar_width:.1}" height="{:.1}"/></g>"#,
            escape(&bar.label),
            bar.queries,
            bar.blocked,
            y(bar.queries),
            TOP + plot_height - y(bar.queries),
            y(bar.blocked),
            TOP + plot_height - y(bar.blocked),
        );
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar_width / 2.0,
                HEIGHT - 6.0,
                escape(&bar.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `value`, so the scale reads
/// in round numbers.
fn nice_ceiling(value: i64) -> i64 {
    let mut magnitude = 1i64;
    loop {
        for step in [1, 2, 5] {
            let candidate = step * magnitude;
            if candidate >= value {
                return candidate;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

fn short_count(value: i64) -> String {
    match value {
        1_000_000.. => format!("{}M", value / 1_000_000),
        10_000.. => format!("{}k", value / 1000),
        _ => value.to_string(),
    }
}

fn escape(text: &str) -> String {
    crate::report::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_to_round_numbers() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(480), 500);
        assert_eq!(nice_ceiling(5001), 10_000);
    }

    #[test]
    fn draws_one_bar_per_slot_and_escapes_labels() {
        let data = [
            Bar {
                label: "<09>".into(),
                queries: 100,
                blocked: 10,
            },
            Bar {
                label: "10".into(),
                queries: 0,
                blocked: 0,
            },
        ];
        let svg = bars("Last 24 hours", &data, 1);
        assert_eq!(svg.matches("class=\"bar queries\"").count(), 2);
        assert!(svg.contains("&lt;09&gt;: 100 lookups, 10 blocked"));
        assert!(svg.contains("aria-label=\"Last 24 hours: 100 lookups, 10 blocked\""));
        assert!(!svg.contains("<09>"));
    }
}
