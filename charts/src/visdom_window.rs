//! Windows in the format Visdom stores and returns them: what `get_window_data` gives a
//! Visdom user and what `set_window_data` (or a saved environment file) sends back. A plot
//! is `{"command": "window", "id", "title", "type": "plot", "content": {"data": [traces],
//! "layout"}, ...}`; a text window's `content` is its entries joined by `<br>` (as Visdom
//! appends them), a properties window's is its list of items.

use serde_json::{json, Map, Value};

use weir_contracts::window::WindowKind;

use crate::store::{Charts, WindowOptions, WindowView};

/// A series name and its points.
pub type NamedSeries = (String, Vec<(f64, f64)>);

/// How Visdom separates the entries appended to a text window.
const TEXT_SEPARATOR: &str = "<br>";

/// What a window holds, as read from Visdom's format.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Plot(Vec<NamedSeries>),
    Text(Vec<String>),
    Properties(Value),
}

/// Stores a window read from Visdom's format, replacing any window of that id.
pub fn store(charts: &Charts, env: &str, win: &str, options: WindowOptions, content: Content) {
    match content {
        Content::Plot(series) => charts.create(env, win, options, series),
        Content::Text(entries) => charts.create_text(env, win, options, entries),
        Content::Properties(items) => charts.create_properties(env, win, options, items),
    }
}

/// A window as Visdom stores it. `contentID` is a fingerprint of the content, so it changes
/// exactly when the content does (Visdom's own is a random id renewed on every change).
pub fn to_visdom(view: &WindowView) -> Value {
    let mut window = json!({
        "command": "window",
        "id": view.win,
        "title": view.title,
        "inflate": true,
        "width": null,
        "height": null,
    });
    match view.kind {
        WindowKind::Text => {
            let entries = view
                .text
                .as_ref()
                .map(|t| t.entries.as_slice())
                .unwrap_or_default();
            window["type"] = "text".into();
            window["content"] = entries.join(TEXT_SEPARATOR).into();
        }
        WindowKind::Properties => {
            window["type"] = "properties".into();
            window["content"] = view.properties.clone();
        }
        WindowKind::Line | WindowKind::Markers | WindowKind::Bar => {
            let legend: Vec<&str> = view.series.iter().map(|s| s.name.as_str()).collect();
            window["type"] = "plot".into();
            window["legend"] = json!(legend);
            window["content"] = json!({
                "data": view.series.iter().map(|series| trace(view, series)).collect::<Vec<_>>(),
                "layout": {
                    "title": view.title,
                    "xaxis": { "title": view.x_label },
                    "yaxis": { "title": view.y_label },
                    "showlegend": view.series.len() > 1,
                },
            });
        }
    }
    window["contentID"] = Value::String(fingerprint(&window["content"]));
    window
}

/// One series as a Plotly trace.
fn trace(view: &WindowView, series: &crate::store::SeriesView) -> Value {
    let (xs, ys): (Vec<f64>, Vec<f64>) = series.points.iter().copied().unzip();
    let named_x = |xs: &[f64]| -> Value {
        if view.categories.is_empty() {
            return json!(xs);
        }
        // Named bars sit at x = 1, 2, …: their names go back in their place.
        xs.iter()
            .map(
                |&x| match view.categories.get((x as usize).wrapping_sub(1)) {
                    Some(name) => Value::String(name.clone()),
                    None => json!(x),
                },
            )
            .collect()
    };
    match view.kind {
        WindowKind::Bar => {
            json!({ "x": named_x(&xs), "y": ys, "name": series.name, "type": "bar" })
        }
        WindowKind::Markers => {
            json!({ "x": xs, "y": ys, "name": series.name, "type": "scatter", "mode": "markers" })
        }
        _ => json!({ "x": xs, "y": ys, "name": series.name, "type": "scatter", "mode": "lines" }),
    }
}

/// The MD5 of a JSON value: of a whole window, Visdom's `win_hash`.
pub fn fingerprint(window: &Value) -> String {
    format!("{:x}", md5::compute(window.to_string()))
}

/// Why a window or plot in Visdom's format is not one Weir's chart server keeps. The
/// message goes back to the Visdom client that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedWindow {
    #[error("a window is a JSON object, as get_window_data returns it")]
    NotAnObject,
    #[error("a text window's `content` is a string")]
    TextNotAString,
    #[error("a properties window's `content` is a list of items")]
    PropertiesNotAList,
    #[error("Weir's chart server stores plots, text and properties; a window of type `{0}` is not supported")]
    WindowType(String),
    #[error("the window has no `content` object")]
    NoContent,
    #[error("missing `data`")]
    NoData,
    #[error("Weir's chart server draws line, scatter and bar plots; `{0}` is not supported")]
    TraceType(String),
    #[error("a window draws one kind of trace: `{this}` cannot join `{first}`")]
    MixedTraces { this: String, first: String },
    #[error("a trace lacks `{0}`")]
    MissingAxis(&'static str),
    #[error("`x` has {xs} values and `y` {ys}")]
    UnevenAxes { xs: usize, ys: usize },
    #[error("the bars of every trace must have the same names")]
    DifferentBars,
    #[error("without `win`, `data` maps window ids to windows")]
    NotAWindowMap,
}

/// Reads a window sent back by `set_window_data`: its options and content. Plots of line,
/// scatter and bar traces, text and properties are taken; anything else is refused with the
/// reason.
pub fn from_visdom(window: &Value) -> Result<(WindowOptions, Content), UnsupportedWindow> {
    let window = window.as_object().ok_or(UnsupportedWindow::NotAnObject)?;
    let title = window.get("title").and_then(Value::as_str);
    let titled = |kind| WindowOptions {
        title: title.unwrap_or_default().to_string(),
        kind,
        ..WindowOptions::default()
    };
    let content = window.get("content").unwrap_or(&Value::Null);
    match window.get("type").and_then(Value::as_str) {
        Some("text") => {
            let text = content.as_str().ok_or(UnsupportedWindow::TextNotAString)?;
            let entries = text.split(TEXT_SEPARATOR).map(str::to_string).collect();
            return Ok((titled(WindowKind::Text), Content::Text(entries)));
        }
        Some("properties") => {
            if !content.is_array() {
                return Err(UnsupportedWindow::PropertiesNotAList);
            }
            return Ok((
                titled(WindowKind::Properties),
                Content::Properties(content.clone()),
            ));
        }
        Some("plot") | None => {}
        Some(other) => return Err(UnsupportedWindow::WindowType(other.into())),
    }
    let content = content.as_object().ok_or(UnsupportedWindow::NoContent)?;
    let layout = content.get("layout").cloned().unwrap_or(Value::Null);
    let plot = plot(content.get("data").unwrap_or(&Value::Null))?;
    let options = WindowOptions {
        title: title
            .or_else(|| axis_title(&layout["title"]))
            .unwrap_or_default()
            .to_string(),
        x_label: axis_title(&layout["xaxis"]["title"])
            .unwrap_or_default()
            .into(),
        y_label: axis_title(&layout["yaxis"]["title"])
            .unwrap_or_default()
            .into(),
        kind: plot.kind,
        categories: plot.categories,
    };
    Ok((options, Content::Plot(plot.series)))
}

/// Plotly titles are a string or `{"text": ...}`.
fn axis_title(title: &Value) -> Option<&str> {
    title.as_str().or_else(|| title["text"].as_str())
}

/// The traces of a plot, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub kind: WindowKind,
    /// Names of the bars, when a bar chart's x values are names.
    pub categories: Vec<String>,
    pub series: Vec<NamedSeries>,
}

/// The traces of a `data` array: line and scatter traces (drawn as lines, or as markers when
/// their mode is `markers`), or bar traces whose x are numbers or names. NaN (`null`) points
/// are skipped. Other trace types, and bars mixed with lines, are refused naming them.
pub fn plot(data: &Value) -> Result<Plot, UnsupportedWindow> {
    let data = data.as_array().ok_or(UnsupportedWindow::NoData)?;
    let trace_type = |trace: &Value| trace["type"].as_str().unwrap_or("scatter").to_string();
    let first = data
        .first()
        .map(trace_type)
        .unwrap_or_else(|| "scatter".into());
    let kind = match first.as_str() {
        "bar" => WindowKind::Bar,
        "scatter" | "scattergl" if data[0]["mode"].as_str() == Some("markers") => {
            WindowKind::Markers
        }
        "scatter" | "scattergl" => WindowKind::Line,
        other => return Err(UnsupportedWindow::TraceType(other.into())),
    };
    let mut categories = Vec::new();
    let series = data
        .iter()
        .enumerate()
        .map(|(index, trace)| {
            let this = trace_type(trace);
            if (this == "bar") != (kind == WindowKind::Bar) {
                return Err(UnsupportedWindow::MixedTraces {
                    this,
                    first: first.clone(),
                });
            }
            let xs = trace["x"]
                .as_array()
                .ok_or(UnsupportedWindow::MissingAxis("x"))?;
            let ys = trace["y"]
                .as_array()
                .ok_or(UnsupportedWindow::MissingAxis("y"))?;
            if xs.len() != ys.len() {
                return Err(UnsupportedWindow::UnevenAxes {
                    xs: xs.len(),
                    ys: ys.len(),
                });
            }
            let named = kind == WindowKind::Bar && xs.iter().any(Value::is_string);
            if named {
                let names: Vec<String> = xs
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect();
                if categories.is_empty() {
                    categories = names;
                } else if categories != names {
                    return Err(UnsupportedWindow::DifferentBars);
                }
            }
            let points = xs
                .iter()
                .zip(ys)
                .enumerate()
                .filter_map(|(i, (x, y))| {
                    let x = if named { (i + 1) as f64 } else { x.as_f64()? };
                    Some((x, y.as_f64()?))
                })
                .collect();
            let name = trace["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| (index + 1).to_string());
            Ok((name, points))
        })
        .collect::<Result<Vec<_>, UnsupportedWindow>>()?;
    Ok(Plot {
        kind,
        categories,
        series,
    })
}

/// The windows of a `set_window_data` for a whole environment: id → window.
pub fn windows_of(data: &Value) -> Result<&Map<String, Value>, UnsupportedWindow> {
    data.as_object().ok_or(UnsupportedWindow::NotAWindowMap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_read_back_in_visdoms_format_is_the_same_window() {
        let charts = Charts::new(100);
        let options = WindowOptions {
            title: "Rates".into(),
            x_label: "tick".into(),
            y_label: "CNY".into(),
            kind: WindowKind::Markers,
            categories: Vec::new(),
        };
        let series = vec![("rate".to_string(), vec![(1.0, 478000.0), (2.0, 478060.5)])];
        charts.create("main", "w", options, series.clone());
        let window = to_visdom(&charts.view("main", "w", 0).unwrap());
        assert_eq!(window["content"]["data"][0]["x"], json!([1.0, 2.0]));
        assert_eq!(window["content"]["data"][0]["mode"], "markers");
        assert_eq!(window["content"]["layout"]["yaxis"]["title"], "CNY");

        let (options, read) = from_visdom(&window).unwrap();
        assert_eq!(read, Content::Plot(series));
        assert_eq!(
            (
                options.title.as_str(),
                options.x_label.as_str(),
                options.kind
            ),
            ("Rates", "tick", WindowKind::Markers)
        );
        store(&charts, "main", "copy", options, read);
        let copy = to_visdom(&charts.view("main", "copy", 0).unwrap());
        assert_eq!(copy["content"], window["content"]);
        assert_eq!(
            copy["contentID"], window["contentID"],
            "same content, same id"
        );

        assert!(charts.append("main", "copy", "rate", &[(3.0, 1.0)], false));
        let changed = to_visdom(&charts.view("main", "copy", 0).unwrap());
        assert_ne!(fingerprint(&changed), fingerprint(&copy));
    }

    #[test]
    fn text_properties_and_named_bars_round_trip() {
        let charts = Charts::new(100);
        let windows = [
            json!({"type": "text", "title": "Notifications", "content": "first<br>second"}),
            json!({"type": "properties", "title": "Run",
                   "content": [{"type": "text", "name": "state", "value": "running"}]}),
            json!({"type": "plot", "title": "Counts", "content": {"data": [
                {"type": "bar", "x": ["rates", "variations"], "y": [10, 9], "name": "records"}
            ], "layout": {}}}),
        ];
        for (index, window) in windows.iter().enumerate() {
            let (options, content) = from_visdom(window).unwrap();
            let win = index.to_string();
            store(&charts, "main", &win, options, content);
            let back = to_visdom(&charts.view("main", &win, 0).unwrap());
            assert_eq!(back["type"], window["type"]);
            assert_eq!(back["title"], window["title"]);
            match window["type"].as_str() {
                Some("plot") => {
                    assert_eq!(
                        back["content"]["data"][0]["x"],
                        json!(["rates", "variations"])
                    );
                    assert_eq!(back["content"]["data"][0]["y"], json!([10.0, 9.0]));
                    assert_eq!(back["content"]["data"][0]["type"], "bar");
                }
                _ => assert_eq!(back["content"], window["content"]),
            }
        }
        assert!(charts.append_text("main", "0", "third"));
        let text = to_visdom(&charts.view("main", "0", 0).unwrap());
        assert_eq!(text["content"], "first<br>second<br>third");
    }

    #[test]
    fn other_window_types_and_traces_are_refused_naming_them() {
        let image = json!({"type": "image", "content": {}});
        assert_eq!(
            from_visdom(&image).unwrap_err(),
            UnsupportedWindow::WindowType("image".into())
        );
        let heatmap =
            json!({"type": "plot", "content": {"data": [{"type": "heatmap", "z": [[1]]}]}});
        assert!(from_visdom(&heatmap)
            .unwrap_err()
            .to_string()
            .contains("`heatmap` is not supported"));
        let mixed =
            json!([{"type": "bar", "x": [1], "y": [1]}, {"type": "scatter", "x": [1], "y": [1]}]);
        assert!(plot(&mixed)
            .unwrap_err()
            .to_string()
            .contains("`scatter` cannot join `bar`"));
        assert!(from_visdom(&json!("not a window")).is_err());
    }
}
