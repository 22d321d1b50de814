//! PNG and SVG pictures of a window, drawn with `plotters`, for reports kept after teardown.

use plotters::coord::Shift;
use plotters::prelude::*;

use weir_contracts::window::WindowKind;

use crate::store::WindowView;

/// Errors drawing a snapshot.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw window `{win}`: {reason}")]
pub struct SnapshotError {
    pub win: String,
    pub reason: String,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The window as an SVG document.
pub fn svg(view: &WindowView, width: u32, height: u32) -> Result<String, SnapshotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(view, &root).map_err(|reason| SnapshotError {
            win: view.win.clone(),
            reason: reason.0,
        })?;
        root.present().map_err(|e| SnapshotError {
            win: view.win.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(out)
}

/// The window as a PNG image (plotters encodes to a file, read back and removed).
pub fn png(view: &WindowView, width: u32, height: u32) -> Result<Vec<u8>, SnapshotError> {
    let error = |reason: String| SnapshotError {
        win: view.win.clone(),
        reason,
    };
    let dir = tempfile::tempdir().map_err(|e| error(e.to_string()))?;
    let path = dir.path().join("snapshot.png");
    {
        let root = BitMapBackend::new(&path, (width, height)).into_drawing_area();
        draw(view, &root).map_err(|e| error(e.0))?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    std::fs::read(&path).map_err(|e| error(e.to_string()))
}

/// What plotters said when drawing failed. Its error type is generic over the drawing
/// backend (SVG or bitmap), so its message is what is kept.
#[derive(Debug)]
struct DrawError(String);

fn draw<DB: DrawingBackend>(
    view: &WindowView,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), DrawError> {
    let e = |error: DrawingAreaErrorKind<DB::ErrorType>| DrawError(error.to_string());
    root.fill(&WHITE).map_err(e)?;
    if !view.kind.is_plot() {
        return draw_lines(view, root);
    }
    let points = view.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if view.kind == WindowKind::Bar {
        // Bars stand on zero and are whole at both ends.
        let half = bar_width(view) / 2.0;
        (x0, x1, y0, y1) = (x0 - half, x1 + half, y0.min(0.0), y1.max(0.0));
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    if y0 == y1 {
        y1 = y0 + 1.0;
    }
    let margin = (y1 - y0) * 0.05;
    let mut chart = ChartBuilder::on(root)
        .caption(&view.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (y0 - margin)..(y1 + margin))
        .map_err(e)?;
    // Epoch milliseconds (as topic-fed windows use) read better as a time of day.
    let as_time = x0 > 1e12;
    let categories = &view.categories;
    let format_x = move |x: &f64| {
        if !categories.is_empty() {
            // Named bars sit at 1, 2, …; between them there is nothing to name.
            let index = x.round() as usize;
            return match categories.get(index.wrapping_sub(1)) {
                Some(name) if (x - x.round()).abs() < 1e-9 => name.clone(),
                _ => String::new(),
            };
        }
        if as_time {
            let seconds = (*x / 1000.0).rem_euclid(86_400.0) as u64;
            format!(
                "{:02}:{:02}:{:02}",
                seconds / 3600,
                seconds % 3600 / 60,
                seconds % 60
            )
        } else {
            format!("{x}")
        }
    };
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&format_x)
        .x_desc(if as_time {
            format!("{} (UTC)", view.x_label)
        } else {
            view.x_label.clone()
        })
        .y_desc(view.y_label.as_str())
        .draw()
        .map_err(e)?;
    for (index, series) in view.series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let points = series.points.iter().copied();
        let drawn = match view.kind {
            WindowKind::Markers => {
                chart.draw_series(points.map(|point| Circle::new(point, 3, color.filled())))
            }
            WindowKind::Bar => {
                // Bars of several series share each x, side by side.
                let width = bar_width(view) / view.series.len() as f64;
                let offset = (index as f64 - (view.series.len() as f64 - 1.0) / 2.0) * width;
                chart.draw_series(points.map(|(x, y)| {
                    let left = x + offset - width * 0.45;
                    Rectangle::new([(left, 0.0), (left + width * 0.9, y)], color.filled())
                }))
            }
            _ => chart.draw_series(LineSeries::new(points, color.stroke_width(2))),
        };
        drawn
            .map_err(e)?
            .label(series.legend())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    if view.series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// The x distance between neighbouring bars (1 when there is a single bar).
fn bar_width(view: &WindowView) -> f64 {
    let mut xs: Vec<f64> = view
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs.windows(2)
        .map(|pair| pair[1] - pair[0])
        .reduce(f64::min)
        .unwrap_or(1.0)
}

/// A text or properties window: its title and its latest lines, newest last.
fn draw_lines<DB: DrawingBackend>(
    view: &WindowView,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), DrawError> {
    let e = |error: DrawingAreaErrorKind<DB::ErrorType>| DrawError(error.to_string());
    let lines: Vec<String> = match view.kind {
        WindowKind::Text => view
            .text
            .iter()
            .flat_map(|t| t.entries.iter().map(|entry| without_tags(entry)))
            .collect(),
        _ => view
            .properties
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let value = &item["value"];
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                format!("{}: {value}", item["name"].as_str().unwrap_or_default())
            })
            .collect(),
    };
    let (_, height) = root.dim_in_pixel();
    let line_height = 18;
    root.draw(&Text::new(
        view.title.clone(),
        (10, 8),
        ("sans-serif", 20).into_font(),
    ))
    .map_err(e)?;
    let room = (height.saturating_sub(40) / line_height) as usize;
    let shown = &lines[lines.len().saturating_sub(room)..];
    for (row, line) in shown.iter().enumerate() {
        let y = 40 + row as i32 * line_height as i32;
        root.draw(&Text::new(
            line.clone(),
            (10, y),
            ("monospace", 14).into_font(),
        ))
        .map_err(e)?;
    }
    Ok(())
}

/// Visdom text is HTML; a picture shows its words.
fn without_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SeriesView, TextView};

    fn view() -> WindowView {
        WindowView {
            env: "main".into(),
            win: "rates".into(),
            title: "BTC rate".into(),
            x_label: "time".into(),
            y_label: "CNY".into(),
            kind: WindowKind::Line,
            categories: vec![],
            series: vec![SeriesView {
                name: "rate".into(),
                appended: 3,
                retained: 3,
                retention: 100,
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
            }],
            text: None,
            properties: serde_json::Value::Null,
        }
    }

    #[test]
    fn svg_has_title_and_a_line() {
        let svg = svg(&view(), 400, 300).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("BTC rate"));
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn markers_are_drawn_apart() {
        let markers = WindowView {
            kind: WindowKind::Markers,
            ..view()
        };
        let drawn = svg(&markers, 400, 300).unwrap();
        let line = svg(&view(), 400, 300).unwrap();
        assert_eq!(drawn.matches("<circle").count(), 3, "one marker per point");
        assert_eq!(line.matches("<circle").count(), 0);
        assert_eq!(
            drawn.matches("<polyline").count() + 1,
            line.matches("<polyline").count(),
            "markers are not joined by a line"
        );
    }

    #[test]
    fn png_is_a_valid_image_of_the_right_size() {
        let png = png(&view(), 320, 200).unwrap();
        assert_eq!(&png[..8], &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        // IHDR: width 320, height 200.
        assert_eq!(&png[16..24], &[0, 0, 1, 64, 0, 0, 0, 200]);
    }

    #[test]
    fn named_bars_are_rectangles_labelled_by_name() {
        let bars = WindowView {
            kind: WindowKind::Bar,
            categories: vec!["rates".into(), "variations".into(), "notifications".into()],
            series: vec![SeriesView {
                name: "records".into(),
                appended: 3,
                retained: 3,
                retention: 100,
                points: vec![(1.0, 10.0), (2.0, 9.0), (3.0, 2.0)],
            }],
            ..view()
        };
        let drawn = svg(&bars, 400, 300).unwrap();
        let filled_rects = drawn.matches("<rect").count();
        assert!(filled_rects >= 3, "{drawn}");
        for name in ["rates", "variations", "notifications"] {
            assert!(
                drawn.lines().any(|line| line.trim() == name),
                "{name} missing: {drawn}"
            );
        }
    }

    #[test]
    fn text_windows_show_their_latest_entries_without_markup() {
        let log = WindowView {
            kind: WindowKind::Text,
            series: vec![],
            text: Some(TextView {
                appended: 2,
                entries: vec![
                    "<b>12:00:01</b> variation -61.5".into(),
                    "12:00:07 variation 80".into(),
                ],
            }),
            ..view()
        };
        let drawn = svg(&log, 400, 300).unwrap();
        assert!(drawn.contains("12:00:01 variation -61.5"), "{drawn}");
        assert!(drawn.contains("12:00:07 variation 80"));
        assert!(!drawn.contains("&lt;b&gt;"));
    }
}
