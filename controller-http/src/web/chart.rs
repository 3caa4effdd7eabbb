//! Bar charts as inline SVG, drawn on the server so the dashboard needs no script and no
//! internet. Colours come from the stylesheet (`.chart .bar`), so print and dark themes
//! restyle them.

use std::fmt::Write;

/// One bar: its label under the axis, its value, and the value as people read it.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Short label under the bar (a day, a site name).
    pub label: String,
    /// Height of the bar.
    pub value: i64,
    /// The value as people read it, for the bar's tooltip (its SVG `<title>`).
    pub shown: String,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;
const LEFT: f64 = 8.0;

/// An `<svg>` bar chart titled `title`; every bar carries a `<title>` with its label and
/// value, and the whole chart is labelled for screen readers.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let mut svg = String::new();
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let slot = (WIDTH - LEFT) / n;
    let bar_w = (slot * 0.7).max(1.0);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}"/>"#,
        y = HEIGHT - BOTTOM
    );
    // Label every bar when they fit, otherwise about ten of them.
    let every = (bars.len() / 10).max(1);
    for (i, b) in bars.iter().enumerate() {
        let h = (b.value.max(0) as f64 / max) * plot_h;
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let y = HEIGHT - BOTTOM - h;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}"><title>{}: {}</title></rect>"#,
            esc(&b.label),
            esc(&b.shown)
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar_w / 2.0,
                HEIGHT - BOTTOM + 14.0,
                esc(&b.label)
            );
        }
    }
    if let Some(top) = bars.iter().max_by_key(|b| b.value).filter(|b| b.value > 0) {
        let _ = write!(
            svg,
            r#"<text class="tick" x="{LEFT}" y="{:.1}">{}</text>"#,
            TOP - 2.0,
            esc(&top.shown)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Escapes text for SVG content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars(
            "Revenue",
            &[
                Bar {
                    label: "<a>".into(),
                    value: 50,
                    shown: "Rp 50".into(),
                },
                Bar {
                    label: "b".into(),
                    value: 100,
                    shown: "Rp 100".into(),
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("&lt;a&gt;: Rp 50"));
        assert!(!svg.contains("<a>"));
        assert!(svg.contains(r#"height="172.0""#), "{svg}");
        assert!(svg.contains(r#"height="86.0""#), "{svg}");
        assert!(bars("empty", &[]).contains("<title>empty</title>"));
    }
}
