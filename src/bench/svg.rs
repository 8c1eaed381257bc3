//! Grouped bar charts with confidence-interval whiskers, as plain SVG.

use std::fmt::Write;

/// One bar: the median and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

pub struct Chart<'a> {
    pub title: &'a str,
    /// A smaller line under the title (may be empty).
    pub subtitle: &'a str,
    pub y_label: &'a str,
    /// Category labels along the x axis.
    pub groups: Vec<String>,
    /// Series names (one bar per group each), in legend order.
    pub series: Vec<String>,
    /// values[group][series]
    pub values: Vec<Vec<Option<Bar>>>,
    /// Logarithmic y axis (for latency percentiles spanning decades).
    pub log: bool,
}

const PALETTE: [&str; 8] = [
    "#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Short tick labels: 1.2k, 35M, 0.05.
pub fn short_num(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.abs() >= 100.0 || x == x.trunc() {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 0.01 {
        format!("{x:.2}")
    } else {
        format!("{x:.1e}")
    };
    let s = if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Axis ticks: (value, label).
fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        return (a..=b).map(|e| 10f64.powi(e)).collect();
    }
    let span = hi - lo;
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let mut v = Vec::new();
    let mut t = (lo / step).floor() * step;
    loop {
        v.push(t);
        if t >= hi - step * 1e-9 || v.len() > 50 {
            break;
        }
        t += step;
    }
    v
}

impl Chart<'_> {
    pub fn render(&self) -> String {
        let (w, h) = (860.0, 440.0);
        let (ml, mr, mt, mb) = (80.0, 20.0, 60.0, 80.0);
        let (pw, ph) = (w - ml - mr, h - mt - mb);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            w / 2.0,
            esc(self.title)
        );
        if !self.subtitle.is_empty() {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="40" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
                w / 2.0,
                esc(self.subtitle)
            );
        }
        let all: Vec<&Bar> = self.values.iter().flatten().flatten().collect();
        if all.is_empty() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">no successful runs to plot</text></svg>"#,
                w / 2.0,
                h / 2.0
            );
            return s;
        }
        let log = self.log && all.iter().all(|b| b.low > 0.0 && b.median > 0.0);
        let max = all
            .iter()
            .map(|b| b.high.max(b.median))
            .fold(f64::MIN, f64::max);
        let (lo, hi) = if log {
            let min = all
                .iter()
                .map(|b| b.low.min(b.median))
                .fold(f64::MAX, f64::min);
            let lo = 10f64.powf(min.log10().floor());
            (lo, 10f64.powf(max.log10().ceil()).max(lo * 10.0))
        } else {
            (0.0, if max > 0.0 { max * 1.1 } else { 1.0 })
        };
        let ticks = ticks(lo, hi, log);
        let hi = if log {
            hi
        } else {
            *ticks.last().unwrap_or(&hi)
        };
        let y = |v: f64| {
            let f = if log {
                (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10())
            } else {
                (v - lo) / (hi - lo)
            };
            mt + ph - f.clamp(0.0, 1.0) * ph
        };
        for t in &ticks {
            let ty = y(*t);
            let _ = writeln!(
                s,
                "<line x1=\"{ml}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                ml + pw,
                ml - 6.0,
                ty + 4.0,
                short_num(*t)
            );
        }
        let _ = writeln!(
            s,
            r#"<line x1="{ml}" x2="{ml}" y1="{mt}" y2="{}" stroke="black"/><line x1="{ml}" x2="{}" y1="{}" y2="{}" stroke="black"/>"#,
            mt + ph,
            ml + pw,
            mt + ph,
            mt + ph
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}{}</text>"#,
            mt + ph / 2.0,
            esc(self.y_label),
            if log { " (log scale)" } else { "" }
        );
        let ng = self.groups.len().max(1) as f64;
        let ns = self.series.len().max(1) as f64;
        let gw = pw / ng;
        let bw = (gw * 0.8 / ns).min(60.0);
        for (gi, g) in self.groups.iter().enumerate() {
            let gx = ml + gw * gi as f64 + (gw - bw * ns) / 2.0;
            for (si, _) in self.series.iter().enumerate() {
                let Some(Some(b)) = self.values.get(gi).map(|v| v.get(si).copied().flatten())
                else {
                    continue;
                };
                let x = gx + bw * si as f64;
                let top = y(b.median);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                    bw * 0.92,
                    (mt + ph - top).max(0.0),
                    PALETTE[si % PALETTE.len()],
                    esc(&self.series[si]),
                    short_num(b.median)
                );
                let cx = x + bw * 0.46;
                let (yl, yh) = (y(b.low), y(b.high));
                let _ = writeln!(
                    s,
                    r#"<path d="M{cx:.1} {yl:.1}V{yh:.1}M{:.1} {yl:.1}H{:.1}M{:.1} {yh:.1}H{:.1}" stroke="black" fill="none"/>"#,
                    cx - bw * 0.2,
                    cx + bw * 0.2,
                    cx - bw * 0.2,
                    cx + bw * 0.2
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                    yh.min(top) - 4.0,
                    short_num(b.median)
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                ml + gw * (gi as f64 + 0.5),
                mt + ph + 18.0,
                esc(g)
            );
        }
        let mut lx = ml;
        let ly = h - 30.0;
        for (si, name) in self.series.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{}">{}</text>"#,
                ly - 10.0,
                PALETTE[si % PALETTE.len()],
                lx + 16.0,
                ly,
                esc(name)
            );
            lx += 30.0 + 7.0 * name.len() as f64;
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#555">bars: median; whiskers: confidence interval of the median</text>"##,
            w - mr,
            h - 8.0
        );
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(m: f64) -> Option<Bar> {
        Some(Bar {
            median: m,
            low: m * 0.9,
            high: m * 1.2,
        })
    }

    #[test]
    fn renders_bars_legend_and_escapes() {
        let c = Chart {
            title: "latency <p99> & more",
            subtitle: "sub",
            y_label: "µs",
            groups: vec!["p50".into(), "p99".into()],
            series: vec!["EEVDF".into(), "scx_storeland".into()],
            values: vec![vec![bar(100.0), bar(80.0)], vec![bar(20000.0), None]],
            log: true,
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<rect x=").count(),
            3 + 2,
            "3 bars + 2 legend boxes"
        );
        assert!(svg.contains("latency &lt;p99&gt; &amp; more"));
        assert!(svg.contains("(log scale)"));
        assert!(svg.contains("scx_storeland"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn empty_and_zero_charts_render() {
        let mut c = Chart {
            title: "t",
            subtitle: "",
            y_label: "y",
            groups: vec!["a".into()],
            series: vec!["s".into()],
            values: vec![vec![None]],
            log: false,
        };
        assert!(c.render().contains("no successful runs"));
        // All values one power of ten: the log axis still spans a decade.
        c.values = vec![vec![Some(Bar {
            median: 100.0,
            low: 100.0,
            high: 100.0,
        })]];
        c.log = true;
        let svg = c.render();
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        c.values = vec![vec![Some(Bar {
            median: 0.0,
            low: 0.0,
            high: 0.0,
        })]];
        c.log = true; // falls back to linear with a zero
        let svg = c.render();
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn tick_labels() {
        assert_eq!(short_num(1500.0), "1.5k");
        assert_eq!(short_num(2_000_000.0), "2M");
        assert_eq!(short_num(0.25), "0.25");
        assert_eq!(short_num(12.5), "12.5");
        assert_eq!(short_num(100.0), "100");
        assert_eq!(
            ticks(10.0, 10000.0, true),
            vec![10.0, 100.0, 1000.0, 10000.0]
        );
        let t = ticks(0.0, 11.0, false);
        assert_eq!(t.first(), Some(&0.0));
        assert!(*t.last().unwrap() >= 11.0);
    }
}
