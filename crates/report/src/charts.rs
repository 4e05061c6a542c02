//! The report's figures as SVG, drawn with plotters: the map (sensors, shots
//! and their 95 % circles, in metres on a local frame, so it needs no map tiles
//! and reads the same offline and in ten years), the shot sequence (time and
//! shooter), and each sensor's waveform with its arrivals marked.

use plotters::prelude::*;

use crate::{Report, Waveform};

/// The font figures are labelled in: the monospace face the PDF embeds, so
/// figures in HTML and PDF read alike.
const FONT: &str = "DejaVu Sans Mono";

/// A figure that could not be drawn (a plotters error).
#[derive(Debug, thiserror::Error)]
#[error("drawing the {figure}: {message}")]
pub struct ChartError {
    figure: &'static str,
    message: String,
}

fn err<E: std::fmt::Debug>(figure: &'static str) -> impl Fn(E) -> ChartError {
    move |e| ChartError {
        figure,
        message: format!("{e:?}"),
    }
}

/// Shooter colours, by shooter number (1-based); more shooters reuse them.
const SHOOTER_COLOURS: [RGBColor; 4] = [
    RGBColor(200, 30, 30),
    RGBColor(20, 90, 200),
    RGBColor(20, 140, 60),
    RGBColor(160, 60, 170),
];

fn shooter_colour(shooter: usize) -> RGBColor {
    SHOOTER_COLOURS[(shooter.max(1) - 1) % SHOOTER_COLOURS.len()]
}

/// Layout of a cartesian figure, pixels.
const MARGIN: u32 = 10;
const Y_LABELS: u32 = 64;
const X_LABELS: u32 = 40;

/// The map, `width` × `height` pixels: equal scale east and north.
pub fn map_svg(report: &Report, width: u32, height: u32) -> Result<String, ChartError> {
    let e = err("map");
    let mut points: Vec<(f64, f64)> = report.sensors.iter().map(|s| (s.x, s.y)).collect();
    for s in &report.shots {
        points.push((s.x - s.err95_m, s.y - s.err95_m));
        points.push((s.x + s.err95_m, s.y + s.err95_m));
    }
    let (mut x0, mut x1, mut y0, mut y1) = points.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if points.is_empty() {
        (x0, x1, y0, y1) = (-100.0, 100.0, -100.0, 100.0);
    }
    // Pad by 8 %, then widen the shorter side so a metre is as long east as north.
    let pad = 0.08 * (x1 - x0).max(y1 - y0).max(50.0);
    (x0, x1, y0, y1) = (x0 - pad, x1 + pad, y0 - pad, y1 + pad);
    let plot_w = f64::from(width - 2 * MARGIN - Y_LABELS);
    let plot_h = f64::from(height - 2 * MARGIN - X_LABELS);
    let m_per_px = ((x1 - x0) / plot_w).max((y1 - y0) / plot_h);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let (hw, hh) = (m_per_px * plot_w / 2.0, m_per_px * plot_h / 2.0);
    let (x0, x1, y0, y1) = (cx - hw, cx + hw, cy - hh, cy + hh);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(MARGIN)
            .x_label_area_size(X_LABELS)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc("metres east")
            .y_desc("metres north")
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(&e)?;
        let grey = RGBColor(120, 120, 120);
        for s in &report.sensors {
            let style = if s.used {
                BLACK.filled()
            } else {
                grey.stroke_width(1)
            };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((s.x, s.y))
                        + TriangleMarker::new((0, 0), 6, style)
                        + Text::new(s.id.clone(), (8, -4), (FONT, 10).into_font().color(&grey)),
                ))
                .map_err(&e)?;
        }
        for s in &report.shots {
            let colour = shooter_colour(s.shooter);
            let circle: Vec<(f64, f64)> = (0..=72)
                .map(|k| {
                    let a = f64::from(k) * std::f64::consts::TAU / 72.0;
                    (s.x + s.err95_m * a.cos(), s.y + s.err95_m * a.sin())
                })
                .collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    circle,
                    colour.stroke_width(1),
                )))
                .map_err(&e)?;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((s.x, s.y))
                        + Cross::new((0, 0), 4, colour.stroke_width(2))
                        + Text::new(
                            format!("{}", s.n),
                            (6, 4),
                            (FONT, 11).into_font().color(&colour),
                        ),
                ))
                .map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// The shot sequence: each shot at its time since the first, on its shooter's
/// line, with the interval to the previous shot written above it.
pub fn sequence_svg(report: &Report, width: u32, height: u32) -> Result<String, ChartError> {
    let e = err("shot sequence");
    let shooters = report
        .shots
        .iter()
        .map(|s| s.shooter)
        .max()
        .unwrap_or(1)
        .max(1);
    let span = report.shots.last().map_or(1.0, |s| s.t_rel_s).max(0.5);
    let pad = span * 0.06;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(MARGIN)
            .x_label_area_size(X_LABELS)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(-pad..span + pad, 0.4..shooters as f64 + 0.6)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first shot")
            .y_desc("shooter")
            .y_labels(shooters)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(&e)?;
        let intervals = report.intervals();
        for (s, gap) in report.shots.iter().zip(intervals) {
            let colour = shooter_colour(s.shooter);
            let y = s.shooter as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(s.t_rel_s, y - 0.25), (s.t_rel_s, y + 0.25)],
                    colour.stroke_width(2),
                )))
                .map_err(&e)?;
            let label = match gap {
                Some(g) => format!("{} (+{:.0} ms)", s.n, g * 1e3),
                None => format!("{}", s.n),
            };
            // Alternate labels above and below so close shots stay legible.
            let dy = if s.n % 2 == 0 { -22 } else { 12 };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((s.t_rel_s, y))
                        + Text::new(label, (-4, dy), (FONT, 10).into_font().color(&colour)),
                ))
                .map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// One sensor's waveform (normalised to its peak), arrivals marked.
pub fn waveform_svg(w: &Waveform, width: u32, height: u32) -> Result<String, ChartError> {
    let e = err("waveform");
    let rate = f64::from(w.sample_rate_hz.max(1));
    let t_end = w.t0_rel_s + w.samples.len() as f64 / rate;
    let peak = w
        .samples
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    // At most two points per horizontal pixel: the min and max of each column.
    let columns = (width as usize).max(1);
    let per = w.samples.len().div_ceil(columns).max(1);
    let mut trace: Vec<(f64, f64)> = Vec::with_capacity(2 * columns);
    for (k, chunk) in w.samples.chunks(per).enumerate() {
        let t = w.t0_rel_s + (k * per) as f64 / rate;
        let (lo, hi) = chunk
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        trace.push((t, f64::from(lo / peak)));
        trace.push((t, f64::from(hi / peak)));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(4)
            .x_label_area_size(24)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(w.t0_rel_s..t_end.max(w.t0_rel_s + 1e-3), -1.05..1.05)
            .map_err(&e)?;
        chart
            .configure_mesh()
            .y_desc(w.sensor.clone())
            .y_labels(3)
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.2} s"))
            .label_style((FONT, 10))
            .axis_desc_style((FONT, 11))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .draw()
            .map_err(&e)?;
        for &m in &w.marks_rel_s {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(m, -1.05), (m, 1.05)],
                    RGBColor(200, 30, 30).stroke_width(1),
                )))
                .map_err(&e)?;
        }
        chart
            .draw_series(LineSeries::new(trace, RGBColor(30, 30, 30).stroke_width(1)))
            .map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_draw_what_they_show() {
        let r = crate::tests::sample();
        let map = map_svg(&r, 640, 480).unwrap();
        assert!(map.starts_with("<svg"));
        // Every sensor is named on the map (escaped for SVG).
        assert!(map.contains("S01") && map.contains("S&lt;2&gt;") && map.contains("S03"));
        let seq = sequence_svg(&r, 640, 200).unwrap();
        assert!(
            seq.contains("(+800 ms)"),
            "the interval to shot 2 is written"
        );
        let wave = waveform_svg(&r.waveforms[0], 640, 110).unwrap();
        assert!(wave.contains("<polyline") || wave.contains("<path"));
    }
}
