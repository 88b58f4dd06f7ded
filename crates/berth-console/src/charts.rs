//! Line charts as inline SVG: a pure function from time series to markup (axes, ticks, one polyline per series,
//! a legend, `role="img"` with an `aria-label` and a `<title>`), drawn on the server so the page needs no script.

use maud::{Markup, html};

/// One line: a label for the legend and its points (Unix seconds, value), in any order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

/// A chart of a time window `[start, end]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The chart's name, read out by screen readers (`aria-label`, `<title>`): "Requests", "Latency".
    pub title: String,
    /// The values' unit for the axis ("count", "ms", "%").
    pub unit: String,
    /// The seconds between two points of a series: points further apart than 1.5 periods are a gap (no line).
    pub period: i64,
    pub start: i64,
    pub end: i64,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const PLOT_BOTTOM: f64 = 170.0;
const LEGEND_Y: f64 = 210.0;
const Y_TICKS: usize = 4;
const X_TICKS: usize = 4;
/// Colours with at least 4.5:1 contrast on white.
const PALETTE: [&str; 6] = ["#1f5fbf", "#b3261e", "#1a7431", "#6f42c1", "#8a5300", "#0b6e79"];

/// The chart as an `<svg>` element. An empty chart (no series or no points) says "No data yet" inside the frame.
pub fn render(chart: &Chart) -> Markup {
    let (lo, hi) = value_range(&chart.series);
    let span_t = (chart.end - chart.start).max(1) as f64;
    let x = |t: i64| LEFT + (t - chart.start) as f64 / span_t * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| PLOT_BOTTOM - (v - lo) / (hi - lo) * (PLOT_BOTTOM - TOP);
    let empty = chart.series.iter().all(|s| s.points.is_empty());
    let label = format!("{} ({}){}", chart.title, chart.unit, if empty { ": no data yet" } else { "" });
    html! {
        svg class="chart" role="img" aria-label=(label) viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            xmlns="http://www.w3.org/2000/svg" data-points=(chart.series.iter().map(|s| s.points.len()).sum::<usize>())
            data-max=(fmt_coord(max_value(&chart.series))) {
            title { (label) }
            // The axes.
            line class="axis" x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(PLOT_BOTTOM) stroke="#555" {}
            line class="axis" x1=(LEFT) y1=(PLOT_BOTTOM) x2=(WIDTH - RIGHT) y2=(PLOT_BOTTOM) stroke="#555" {}
            @for i in 0..=Y_TICKS {
                @let v = lo + (hi - lo) * i as f64 / Y_TICKS as f64;
                @let py = fmt_coord(y(v));
                line class="grid" x1=(LEFT) y1=(py) x2=(WIDTH - RIGHT) y2=(py) stroke="#ddd" {}
                text class="tick" x=(LEFT - 4.0) y=(py) text-anchor="end" dominant-baseline="middle" font-size="11" fill="#333" {
                    (fmt_value(v))
                }
            }
            @for i in 0..=X_TICKS {
                @let t = chart.start + (chart.end - chart.start) * i as i64 / X_TICKS as i64;
                @let px = fmt_coord(x(t));
                line x1=(px) y1=(PLOT_BOTTOM) x2=(px) y2=(PLOT_BOTTOM + 4.0) stroke="#555" {}
                text class="tick" x=(px) y=(PLOT_BOTTOM + 16.0) font-size="11" fill="#333"
                    text-anchor=(match i { 0 => "start", X_TICKS => "end", _ => "middle" }) {
                    (fmt_time(t))
                }
            }
            text class="unit" x="4" y="12" font-size="11" fill="#333" { (chart.unit) }
            @if empty {
                text class="no-data" x=(fmt_coord((LEFT + WIDTH - RIGHT) / 2.0)) y=(fmt_coord((TOP + PLOT_BOTTOM) / 2.0))
                    text-anchor="middle" font-size="13" fill="#333" { "No data yet" }
            }
            @for (n, s) in chart.series.iter().enumerate() {
                @let colour = PALETTE[n % PALETTE.len()];
                @for run in runs(&s.points, chart.period) {
                    @if run.len() == 1 {
                        circle class="point" data-series=(s.label) cx=(fmt_coord(x(run[0].0))) cy=(fmt_coord(y(run[0].1))) r="2.5" fill=(colour) {}
                    } @else {
                        polyline class="line" data-series=(s.label) fill="none" stroke=(colour) stroke-width="1.75"
                            points=(run.iter().map(|&(t, v)| format!("{},{}", fmt_coord(x(t)), fmt_coord(y(v)))).collect::<Vec<_>>().join(" ")) {}
                    }
                }
                @let lx = LEFT + n as f64 * 130.0;
                rect x=(fmt_coord(lx)) y=(LEGEND_Y - 9.0) width="12" height="4" fill=(colour) {}
                text class="legend" x=(fmt_coord(lx + 16.0)) y=(LEGEND_Y - 5.0) dominant-baseline="middle" font-size="11" fill="#222" { (s.label) }
            }
        }
    }
}

/// The points sorted by time and cut where two neighbours are more than 1.5 periods apart (a gap in the data).
fn runs(points: &[(i64, f64)], period: i64) -> Vec<Vec<(i64, f64)>> {
    let mut sorted: Vec<(i64, f64)> = points.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    sorted.sort_by_key(|&(t, _)| t);
    let limit = period.max(1) * 3 / 2;
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    for p in sorted {
        match out.last_mut() {
            Some(run) if run.last().is_some_and(|&(t, _)| p.0 - t <= limit) => run.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}

/// The value axis: from 0 (or the lowest value, when negative) to a round number at or above the highest.
fn value_range(series: &[Series]) -> (f64, f64) {
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite());
    let (min, max) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if max <= 0.0 { if min < 0.0 { 0.0 } else { 1.0 } } else { nice_ceiling(max) };
    let lo = if min < 0.0 { -nice_ceiling(-min) } else { 0.0 };
    (lo, hi)
}

/// The largest finite value of any series (0 without one).
fn max_value(series: &[Series]) -> f64 {
    series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0, f64::max)
}

/// The smallest 1, 2, 2.5, 5 × 10ⁿ at or above `v` (v > 0).
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= v * (1.0 - 1e-9) {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

/// A coordinate with at most one decimal.
fn fmt_coord(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 { format!("{}", r as i64) } else { format!("{r:.1}") }
}

/// An axis value: `1.5k`, `2M`, `0.25`, `12`.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.2}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

/// `HH:MM` in UTC.
fn fmt_time(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        Chart { title: "Requests".into(), unit: "count".into(), period: 60, start: 0, end: 3600, series }
    }

    fn one(points: Vec<(i64, f64)>) -> Vec<Series> {
        vec![Series { label: "RequestCount".into(), points }]
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn an_empty_chart_says_so_and_is_still_labelled() {
        for series in [vec![], one(vec![])] {
            let svg = render(&chart(series)).into_string();
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.contains(r#"role="img""#));
            assert!(svg.contains(r#"aria-label="Requests (count): no data yet""#), "{svg}");
            assert!(svg.contains("<title>Requests (count): no data yet</title>"));
            assert!(svg.contains("No data yet"));
            assert_eq!(count(&svg, "<polyline"), 0);
            assert_eq!(count(&svg, "<circle"), 0);
            assert!(svg.contains(r#"data-points="0""#));
        }
    }

    #[test]
    fn one_point_is_a_dot_not_an_invisible_line() {
        let svg = render(&chart(one(vec![(1800, 5.0)]))).into_string();
        assert_eq!(count(&svg, "<polyline"), 0);
        assert_eq!(count(&svg, "<circle"), 1);
        // Half-way along the time axis, at the top of a 0–5 axis.
        let cx = fmt_coord(LEFT + (WIDTH - LEFT - RIGHT) / 2.0);
        assert!(svg.contains(&format!(r#"cx="{cx}" cy="24""#)), "{svg}");
        assert!(!svg.contains("No data yet"));
        assert!(svg.contains(r#"aria-label="Requests (count)""#));
    }

    #[test]
    fn gaps_break_the_line() {
        // 0, 60, 120, then nothing until 600, 660: two lines.
        let points = vec![(660, 1.0), (0, 1.0), (60, 2.0), (120, 3.0), (600, 4.0)];
        let svg = render(&chart(one(points.clone()))).into_string();
        assert_eq!(count(&svg, "<polyline"), 2, "{svg}");
        let r = runs(&points, 60);
        assert_eq!(r, vec![vec![(0, 1.0), (60, 2.0), (120, 3.0)], vec![(600, 4.0), (660, 1.0)]]);
        // A point alone between two gaps is a dot.
        let r = runs(&[(0, 1.0), (60, 1.0), (300, 2.0), (900, 3.0), (960, 3.0)], 60);
        assert_eq!(r.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1, 2]);
        // Not-a-number is no point at all.
        assert_eq!(runs(&[(0, f64::NAN), (60, 1.0)], 60), vec![vec![(60, 1.0)]]);
    }

    #[test]
    fn values_scale_to_a_round_axis_and_time_to_the_window() {
        assert_eq!(value_range(&one(vec![(0, 37.0)])), (0.0, 50.0));
        assert_eq!(value_range(&one(vec![(0, 100.0)])), (0.0, 100.0));
        assert_eq!(value_range(&one(vec![(0, 0.0)])), (0.0, 1.0));
        assert_eq!(value_range(&one(vec![(0, 0.0021)])), (0.0, 0.0025));
        assert_eq!(value_range(&one(vec![(0, -3.0), (60, 7.0)])), (-5.0, 10.0));
        assert_eq!(value_range(&[]), (0.0, 1.0));
        // 0 at the bottom, 50 (the axis top) at the top, the window's ends at the axis ends.
        let svg =
            render(&Chart { period: 1800, ..chart(one(vec![(0, 0.0), (1800, 37.0), (3600, 50.0)])) }).into_string();
        let line = svg.split("<polyline").nth(1).expect("the test input");
        let points: Vec<&str> = line
            .split(r#" points=""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the test input")
            .split(' ')
            .collect();
        assert_eq!(points.len(), 3);
        assert_eq!(points.first(), Some(&"56,170"));
        assert_eq!(points.last(), Some(&"588,24"));
        assert!(svg.contains(">50<"), "the top tick is 50: {svg}");
        assert!(svg.contains(">00:00<") && svg.contains(">01:00<"), "time ticks: {svg}");
    }

    #[test]
    fn every_series_has_its_own_line_colour_and_legend_entry() {
        let series = vec![
            Series { label: "p50".into(), points: vec![(0, 0.01), (60, 0.02)] },
            Series { label: "p99".into(), points: vec![(0, 0.1), (60, 0.2)] },
        ];
        let svg = render(&Chart { title: "Latency".into(), unit: "s".into(), ..chart(series) }).into_string();
        assert_eq!(count(&svg, "<polyline"), 2);
        assert!(svg.contains(r#"data-series="p50""#) && svg.contains(r#"data-series="p99""#));
        assert!(svg.contains(PALETTE[0]) && svg.contains(PALETTE[1]));
        assert_eq!(count(&svg, r#"class="legend""#), 2);
        assert!(svg.contains(r#"data-points="4""#));
        assert!(svg.contains(r#"data-max="0.2""#), "{svg}");
    }

    #[test]
    fn labels_are_escaped() {
        let svg = render(&Chart { title: "a<b>&\"c".into(), ..chart(vec![]) }).into_string();
        assert!(!svg.contains("a<b>"), "{svg}");
        assert!(svg.contains("a&lt;b&gt;&amp;&quot;c"), "{svg}");
    }

    #[test]
    fn values_and_times_read_shortly() {
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(12.0), "12");
        assert_eq!(fmt_value(12.5), "12.5");
        assert_eq!(fmt_value(0.25), "0.25");
        assert_eq!(fmt_value(1500.0), "1.5k");
        assert_eq!(fmt_value(2_000_000.0), "2M");
        assert_eq!(fmt_time(3600 * 25 + 61), "01:01");
    }
}
