//! Figures, as SVG strings drawn with plotters, and the HTML report that
//! embeds them ([`html`]). Pure: callers decide where the text goes (files,
//! or the report), so figures can be tested and embedded without touching
//! the disk.

pub mod html;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const SIZE: (u32, u32) = (720, 450);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Draw a figure of `size` pixels on a white SVG canvas and return its text.
fn svg_figure(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult<()>,
) -> DrawResult<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Stationary spike-count distribution, one line per input value.
/// `dists[x][c] = P(count = c | x)`; `labels[x]` names each input.
pub fn count_distribution(title: &str, dists: &[Vec<f64>], labels: &[String]) -> DrawResult<String> {
    per_count(title, "P(count | input)", dists, labels)
}

/// One line per input of a quantity against the spike count (NaN entries
/// are skipped), e.g. an inferred reward per (input, count).
pub fn per_count(title: &str, y_desc: &str, dists: &[Vec<f64>], labels: &[String]) -> DrawResult<String> {
    per_count_with_intervals(title, y_desc, dists, None, labels)
}

/// [`per_count`] with an interval `(lo[c], hi[c])` per input drawn as a
/// vertical bar at each count (e.g. bootstrap 95 % intervals).
pub fn per_count_with_intervals(
    title: &str,
    y_desc: &str,
    dists: &[Vec<f64>],
    bands: Option<&[(Vec<f64>, Vec<f64>)]>,
    labels: &[String],
) -> DrawResult<String> {
    let n = dists.first().map_or(0, |d| d.len().saturating_sub(1));
    let band_values = bands.into_iter().flatten().flat_map(|(lo, hi)| lo.iter().chain(hi));
    let finite = || {
        dists
            .iter()
            .flatten()
            .chain(band_values.clone())
            .copied()
            .filter(|v| v.is_finite())
    };
    let hi = finite().fold(0.0f64, f64::max);
    let lo = finite().fold(0.0f64, f64::min);
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let (ymin, ymax) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    svg_figure(SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..n as f64 + 0.5, ymin..ymax)?;
        chart
            .configure_mesh()
            .x_desc("spike count (active neurons)")
            .y_desc(y_desc)
            .x_labels((n + 1).min(21))
            .x_label_formatter(&|v| format!("{:.0}", v))
            .draw()?;
        for (x, d) in dists.iter().enumerate() {
            let col = color(x);
            let pts: Vec<(f64, f64)> = d
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_finite())
                .map(|(c, &p)| (c as f64, p))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?
                .label(labels.get(x).cloned().unwrap_or_else(|| format!("input {x}")))
                .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], col.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, col.filled())))?;
            if let Some((lo, hi)) = bands.and_then(|b| b.get(x)) {
                // Offset each input's bars a little so overlapping ones stay visible.
                let dx = 0.08 * (x as f64 - (dists.len() as f64 - 1.0) / 2.0);
                chart.draw_series(
                    lo.iter()
                        .zip(hi)
                        .enumerate()
                        .filter(|(_, (a, b))| a.is_finite() && b.is_finite())
                        .map(|(c, (&a, &b))| {
                            PathElement::new(vec![(c as f64 + dx, a), (c as f64 + dx, b)], col.stroke_width(2))
                        }),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The reward–information trade-off: ⟨r⟩ against information (nats per
/// tick), one point per λ, joined in λ order.
pub fn tradeoff(title: &str, points: &[(f64, f64, f64)]) -> DrawResult<String> {
    // points: (lambda, info, mean_reward)
    let xmax = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.1;
    let ymin = points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min).min(0.0);
    let ymax = points
        .iter()
        .map(|p| p.2)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(ymin + 1e-3)
        * 1.1;
    svg_figure(SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, ymin..ymax)?;
        chart
            .configure_mesh()
            .x_desc("information ⟨Σ KL⟩ (nats per tick)")
            .y_desc("mean reward ⟨r⟩ per tick")
            .draw()?;
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let col = color(0);
        chart.draw_series(LineSeries::new(sorted.iter().map(|p| (p.1, p.2)), col.stroke_width(2)))?;
        chart.draw_series(sorted.iter().map(|p| Circle::new((p.1, p.2), 5, col.filled())))?;
        chart.draw_series(sorted.iter().enumerate().map(|(i, p)| {
            // Alternate above/below so neighbouring labels do not collide.
            let dy = if i % 2 == 0 { -22 } else { 8 };
            EmptyElement::at((p.1, p.2)) + Text::new(format!("λ={}", p.0), (6, dy), ("sans-serif", 13).into_font())
        }))?;
        Ok(())
    })
}

/// A scatter of `(x, y)` points, one colour per series, with a diagonal
/// y = x for reference (e.g. inferred against true reward).
pub fn scatter(title: &str, x_desc: &str, y_desc: &str, series: &[(String, Vec<(f64, f64)>)]) -> DrawResult<String> {
    let all = || {
        series
            .iter()
            .flat_map(|s| s.1.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let lo = all().fold(f64::INFINITY, |a, p| a.min(p.0).min(p.1));
    let hi = all().fold(f64::NEG_INFINITY, |a, p| a.max(p.0).max(p.1));
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let pad = (hi - lo) * 0.05;
    let range = (lo - pad)..(hi + pad);
    svg_figure(SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(range.clone(), range.clone())?;
        chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw()?;
        chart.draw_series(LineSeries::new(
            [(range.start, range.start), (range.end, range.end)],
            BLACK.mix(0.4),
        ))?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = color(i);
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| p.0.is_finite() && p.1.is_finite())
                        .map(|&p| Circle::new(p, 3, col.mix(0.6).filled())),
                )?
                .label(name.clone())
                .legend(move |(a, b)| Circle::new((a + 10, b), 4, col.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Curves `(x, y)`, one colour per series (NaN points skipped), with an
/// optional dashed horizontal reference line (e.g. y = 1 for g/g*).
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    reference: Option<(f64, &str)>,
) -> DrawResult<String> {
    let x_hi = finite_points(series).fold(0.0f64, |a, p| a.max(p.0)).max(1.0);
    lines_on(
        title,
        x_desc,
        y_desc,
        series,
        reference,
        (0.0, x_hi * 1.02),
        0.0..x_hi * 1.02,
    )
}

/// [`lines`] with a logarithmic x axis (x > 0), e.g. against data size.
pub fn lines_log_x(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    reference: Option<(f64, &str)>,
) -> DrawResult<String> {
    let xs = || finite_points(series).map(|p| p.0).filter(|&x| x > 0.0);
    let lo = xs().fold(f64::INFINITY, f64::min);
    let hi = xs().fold(0.0f64, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo / 1.3, hi * 1.3)
    } else {
        (1.0, 10.0)
    };
    lines_on(title, x_desc, y_desc, series, reference, (lo, hi), (lo..hi).log_scale())
}

fn finite_points(series: &[(String, Vec<(f64, f64)>)]) -> impl Iterator<Item = &(f64, f64)> + Clone {
    series
        .iter()
        .flat_map(|s| s.1.iter())
        .filter(|p| p.0.is_finite() && p.1.is_finite())
}

/// An axis tick: whole numbers as such, moderate numbers with up to three
/// decimals, others in scientific notation.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == v.round() && a < 1e7 {
        format!("{v:.0}")
    } else if (1e-2..1e5).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.3e}")
    }
}

/// The body of [`lines`] and [`lines_log_x`]: any x coordinate over f64.
fn lines_on<X>(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    reference: Option<(f64, &str)>,
    (x_lo, x_hi): (f64, f64),
    x_range: X,
) -> DrawResult<String>
where
    X: AsRangedCoord<Value = f64> + Clone,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut y_lo = finite_points(series).fold(f64::INFINITY, |a, p| a.min(p.1));
    let mut y_hi = finite_points(series).fold(f64::NEG_INFINITY, |a, p| a.max(p.1));
    if let Some((r, _)) = reference {
        y_lo = y_lo.min(r);
        y_hi = y_hi.max(r);
    }
    if !(y_lo.is_finite() && y_hi.is_finite()) {
        (y_lo, y_hi) = (0.0, 1.0);
    } else if y_hi <= y_lo {
        (y_lo, y_hi) = (y_lo - 0.5, y_hi + 0.5);
    }
    let pad = (y_hi - y_lo) * 0.08;
    svg_figure(SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.clone(), (y_lo - pad)..(y_hi + pad))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| tick_label(*v))
            .draw()?;
        if let Some((r, name)) = reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_lo, r), (x_hi, r)],
                    6,
                    4,
                    BLACK.mix(0.5).into(),
                ))?
                .label(name)
                .legend(|(a, b)| PathElement::new([(a, b), (a + 20, b)], BLACK.mix(0.5)));
        }
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = color(i);
            let pts: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(a, b)| PathElement::new([(a, b), (a + 20, b)], col.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, col.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The heat-map colour of `v` on the scale ±`scale`: blue for negative,
/// white for zero, red for positive; NaN grey.
fn heat(v: f64, scale: f64) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(200, 200, 200);
    }
    let a = (v.abs() / scale).min(1.0);
    let fade = (255.0 * (1.0 - a)) as u8;
    if v >= 0.0 {
        RGBColor(255, fade, fade)
    } else {
        RGBColor(fade, fade, 255)
    }
}

/// Steps of a colour bar's gradient.
const BAR_STEPS: usize = 64;

/// A matrix as a heat map: `rows[i][j]` drawn at row i (top to bottom),
/// column j, blue for negative, white for zero, red for positive (scaled by
/// the largest magnitude, stated in the caption); NaN cells grey. A colour
/// bar on the right reads colours back as values (ticks at ±scale, ±scale/2
/// and 0).
pub fn matrix(title: &str, x_desc: &str, y_desc: &str, rows: &[Vec<f64>]) -> DrawResult<String> {
    let h = rows.len().max(1);
    let w = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let scale = rows
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    let scale = if scale > 0.0 { scale } else { 1.0 };
    svg_figure((720, 560), |root| {
        let (left, right) = root.split_horizontally(620);
        let mut chart = ChartBuilder::on(&left)
            .caption(format!("{title} (colour scale ±{scale:.3})"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..w as f64, h as f64..0.0)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{:.0}", v))
            .y_label_formatter(&|v| format!("{:.0}", v))
            .draw()?;
        chart.draw_series(rows.iter().enumerate().flat_map(|(i, r)| {
            r.iter().enumerate().map(move |(j, &v)| {
                Rectangle::new(
                    [(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)],
                    heat(v, scale).filled(),
                )
            })
        }))?;
        // The colour bar, level with the plot: a gradient from −scale to
        // +scale (colours at step midpoints), its outline, and ticks.
        let mut bar = ChartBuilder::on(&right)
            .margin_top(45)
            .margin_bottom(57)
            .margin_left(6)
            .margin_right(4)
            .build_cartesian_2d(0.0..4.0, -scale..scale)?;
        let step = 2.0 * scale / BAR_STEPS as f64;
        bar.draw_series((0..BAR_STEPS).map(|i| {
            let lo = -scale + i as f64 * step;
            Rectangle::new([(0.0, lo), (1.0, lo + step)], heat(lo + step / 2.0, scale).filled())
        }))?;
        bar.draw_series(std::iter::once(Rectangle::new(
            [(0.0, -scale), (1.0, scale)],
            BLACK.stroke_width(1),
        )))?;
        let label = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for v in [-scale, -scale / 2.0, 0.0, scale / 2.0, scale] {
            bar.draw_series(std::iter::once(PathElement::new([(1.0, v), (1.4, v)], BLACK)))?;
            bar.draw_series(std::iter::once(Text::new(tick_label(v), (1.6, v), label.clone())))?;
        }
        Ok(())
    })
}

/// A spike raster: `spikes[i·n + k]` (0/1) for `n` neurons over the ticks
/// `first_tick + i` shown, neuron k on row k, with the input index `x[i]`
/// drawn as a coloured band above (one colour per input, named by `labels`).
pub fn raster(
    title: &str,
    first_tick: u64,
    spikes: &[u8],
    n: usize,
    x: &[i64],
    labels: &[String],
) -> DrawResult<String> {
    let ticks = x.len();
    let t0 = first_tick as f64;
    svg_figure((SIZE.0, 300 + 12 * n.min(40) as u32), |root| {
        let top = n as f64 + 3.2; // room for the input band and the legend
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(t0..t0 + ticks.max(1) as f64, -0.5..top)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("tick")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("neuron")
            .y_labels(n.min(20) + 1)
            .y_label_formatter(&|v| {
                if *v < n as f64 - 0.01 && *v > -0.01 {
                    format!("{:.0}", v)
                } else {
                    String::new()
                }
            })
            .draw()?;
        for (i, label) in labels.iter().enumerate() {
            let col = color(i);
            chart
                .draw_series(x.iter().enumerate().filter(|(_, v)| **v as usize == i).map(|(t, _)| {
                    let t = t0 + t as f64;
                    Rectangle::new([(t, n as f64 + 0.3), (t + 1.0, n as f64 + 1.1)], col.mix(0.8).filled())
                }))?
                .label(format!("input {label}"))
                .legend(move |(a, b)| Rectangle::new([(a, b - 4), (a + 14, b + 4)], col.filled()));
        }
        chart.draw_series((0..ticks).flat_map(|t| {
            (0..n).filter(move |&k| spikes[t * n + k] == 1).map(move |k| {
                let t = t0 + t as f64;
                Rectangle::new([(t, k as f64 - 0.4), (t + 1.0, k as f64 + 0.4)], BLACK.filled())
            })
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_figure_has_one_line_per_input_and_labels() {
        let svg = count_distribution(
            "t",
            &[vec![0.1, 0.9], vec![0.5, 0.5]],
            &["x = -1".into(), "x = +1".into()],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"));
        for colour in ["#1F77B4", "#D62728"] {
            let lines = svg
                .lines()
                .filter(|l| l.contains("<polyline") && l.contains(colour))
                .count();
            assert_eq!(lines, 2, "{colour}: one data line and one legend mark");
        }
        assert!(svg.contains("x = -1") && svg.contains("x = +1"));
        assert!(svg.contains("spike count"));
    }

    #[test]
    fn scatter_draws_every_finite_point() {
        let pts = vec![(0.0, 0.1), (1.0, 0.9), (f64::NAN, 1.0)];
        let svg = scatter("t", "true", "inferred", &[("x = -1".into(), pts)]).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2 + 1, "two points and one legend mark");
        assert!(svg.contains("inferred") && svg.contains("x = -1"));
    }

    #[test]
    fn lines_draw_each_series_and_the_reference() {
        let a = vec![(0.0, 0.1), (1.0, 0.5), (2.0, f64::NAN), (3.0, 0.9)];
        let svg = lines(
            "t",
            "ticks",
            "g / g*",
            &[("actor_critic".into(), a)],
            Some((1.0, "optimum")),
        )
        .unwrap();
        assert_eq!(svg.matches("<circle").count(), 3, "the finite points");
        assert!(svg.contains("actor_critic") && svg.contains("optimum") && svg.contains("g / g*"));
    }

    #[test]
    fn matrix_draws_one_cell_per_entry_with_sign_colours() {
        let svg = matrix("W", "pre", "post", &[vec![1.0, -1.0], vec![0.0, f64::NAN]]).unwrap();
        assert!(svg.contains("#FF0000") && svg.contains("#0000FF") && svg.contains("#C8C8C8"));
        assert!(svg.contains("±1.000"));
    }

    #[test]
    fn raster_marks_every_active_neuron_tick_and_the_input() {
        // 3 ticks × 2 neurons: active (t=0,k=1), (t=2,k=0), (t=2,k=1).
        let svg = raster(
            "r",
            100,
            &[0, 1, 0, 0, 1, 1],
            2,
            &[0, 0, 1],
            &["-1".into(), "+1".into()],
        )
        .unwrap();
        let black = svg.matches("fill=\"#000000\"").count();
        assert!(black >= 3, "{black} black cells");
        assert!(svg.contains("input -1") && svg.contains("input +1") && svg.contains("tick"));
    }

    #[test]
    fn tradeoff_figure_labels_every_lambda() {
        let svg = tradeoff("t", &[(0.1, 1.0, 0.9), (1.0, 0.2, 0.5)]).unwrap();
        assert!(svg.contains("λ=0.1") && svg.contains("λ=1"));
    }
}

/// How [`maze_map`] colours cell values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapScale {
    /// Non-negative values (visit densities): white to dark blue, scaled by the maximum.
    Sequential,
    /// Signed values (rewards): blue below the mean, red above, scaled by the
    /// largest deviation.
    Diverging,
}

/// A maze as a grid of cells: `grid[row][col]` is a value (NaN: a wall,
/// drawn dark grey), coloured by `scale`; `marks` outlines cells (goals in
/// gold, starts in green, given as (row, col, is_goal)); `path` (cell
/// centres, row/col) is drawn as a line with its start marked.
pub fn maze_map(
    title: &str,
    grid: &[Vec<f64>],
    scale: MapScale,
    marks: &[(usize, usize, bool)],
    path: Option<&[(usize, usize)]>,
) -> DrawResult<String> {
    let h = grid.len().max(1);
    let w = grid.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let finite: Vec<f64> = grid.iter().flatten().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mean = if finite.is_empty() {
        0.0
    } else {
        finite.iter().sum::<f64>() / finite.len() as f64
    };
    let span = match scale {
        MapScale::Sequential => hi.max(1e-300),
        MapScale::Diverging => (hi - mean).abs().max((lo - mean).abs()).max(1e-300),
    };
    let caption = match scale {
        MapScale::Sequential => format!("{title} (max {hi:.3})"),
        MapScale::Diverging => format!("{title} (range {lo:.3} to {hi:.3})"),
    };
    let cell = (560.0 / w.max(h) as f64).clamp(8.0, 60.0);
    let size = ((w as f64 * cell) as u32 + 60, (h as f64 * cell) as u32 + 70);
    svg_figure(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .build_cartesian_2d(0.0..w as f64, h as f64..0.0)?;
        chart.draw_series(grid.iter().enumerate().flat_map(|(i, r)| {
            r.iter().enumerate().map(move |(j, &v)| {
                let c = if !v.is_finite() {
                    RGBColor(60, 60, 60)
                } else {
                    match scale {
                        MapScale::Sequential => {
                            let a = (v / span).clamp(0.0, 1.0);
                            let f = |x: f64| (255.0 - a * (255.0 - x)) as u8;
                            RGBColor(f(8.0), f(48.0), f(107.0))
                        }
                        MapScale::Diverging => {
                            let a = ((v - mean).abs() / span).min(1.0);
                            let fade = (255.0 * (1.0 - a)) as u8;
                            if v >= mean {
                                RGBColor(255, fade, fade)
                            } else {
                                RGBColor(fade, fade, 255)
                            }
                        }
                    }
                };
                Rectangle::new([(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)], c.filled())
            })
        }))?;
        chart.draw_series(marks.iter().map(|&(r, c, goal)| {
            let colour = if goal {
                RGBColor(230, 170, 0)
            } else {
                RGBColor(30, 160, 60)
            };
            Rectangle::new(
                [(c as f64 + 0.06, r as f64 + 0.06), (c as f64 + 0.94, r as f64 + 0.94)],
                colour.stroke_width(3),
            )
        }))?;
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            let pts: Vec<(f64, f64)> = p.iter().map(|&(r, c)| (c as f64 + 0.5, r as f64 + 0.5)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), RGBColor(214, 39, 40).stroke_width(2)))?;
            chart.draw_series(std::iter::once(Circle::new(pts[0], 5, RGBColor(214, 39, 40).filled())))?;
        }
        Ok(())
    })
}
