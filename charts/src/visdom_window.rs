//! Windows in the format Visdom stores and returns them: what `get_window_data` gives a
//! Visdom user (`{"command": "window", "id", "title", "content": {"data": [traces],
//! "layout"}, ...}`) and what `set_window_data` sends back.

use serde_json::{json, Map, Value};

use crate::store::{WindowKind, WindowOptions, WindowView};

/// A series name and its points.
pub type NamedSeries = (String, Vec<(f64, f64)>);

/// A window as Visdom stores it. `contentID` is a fingerprint of the content (data and
/// layout), so it changes exactly when they do (Visdom's own is a random id renewed on every
/// change).
pub fn to_visdom(view: &WindowView) -> Value {
    let mode = match view.kind {
        WindowKind::Line => "lines",
        WindowKind::Markers => "markers",
    };
    let data: Vec<Value> = view
        .series
        .iter()
        .map(|series| {
            let (xs, ys): (Vec<f64>, Vec<f64>) = series.points.iter().copied().unzip();
            json!({ "x": xs, "y": ys, "name": series.name, "type": "scatter", "mode": mode })
        })
        .collect();
    let legend: Vec<&str> = view.series.iter().map(|s| s.name.as_str()).collect();
    let mut window = json!({
        "command": "window",
        "id": view.win,
        "title": view.title,
        "inflate": true,
        "width": null,
        "height": null,
        "type": "plot",
        "legend": legend,
        "content": {
            "data": data,
            "layout": {
                "title": view.title,
                "xaxis": { "title": view.x_label },
                "yaxis": { "title": view.y_label },
                "showlegend": view.series.len() > 1,
            },
        },
    });
    window["contentID"] = Value::String(fingerprint(&window["content"]));
    window
}

/// The MD5 of a JSON value: of a whole window, Visdom's `win_hash`.
pub fn fingerprint(window: &Value) -> String {
    format!("{:x}", md5::compute(window.to_string()))
}

/// Reads a window sent back by `set_window_data`: its options and series. Only plots of
/// line and scatter traces are taken; anything else is refused with the reason.
pub fn from_visdom(window: &Value) -> Result<(WindowOptions, Vec<NamedSeries>), String> {
    let window = window
        .as_object()
        .ok_or("a window is a JSON object, as get_window_data returns it")?;
    match window.get("type").and_then(Value::as_str) {
        Some("plot") | None => {}
        Some(other) => {
            return Err(format!(
                "Weir's chart server stores plots; a window of type `{other}` is not supported"
            ))
        }
    }
    let content = window
        .get("content")
        .and_then(Value::as_object)
        .ok_or("the window has no `content` object")?;
    let layout = content.get("layout").cloned().unwrap_or(Value::Null);
    let series = traces(content.get("data").unwrap_or(&Value::Null))?;
    let kind = match content["data"][0]["mode"].as_str() {
        Some("markers") => WindowKind::Markers,
        _ => WindowKind::Line,
    };
    let title = window
        .get("title")
        .and_then(Value::as_str)
        .or_else(|| axis_title(&layout["title"]))
        .unwrap_or_default()
        .to_string();
    let options = WindowOptions {
        title,
        x_label: axis_title(&layout["xaxis"]["title"])
            .unwrap_or_default()
            .into(),
        y_label: axis_title(&layout["yaxis"]["title"])
            .unwrap_or_default()
            .into(),
        kind,
    };
    Ok((options, series))
}

/// Plotly titles are a string or `{"text": ...}`.
fn axis_title(title: &Value) -> Option<&str> {
    title.as_str().or_else(|| title["text"].as_str())
}

/// The line/scatter traces of a `data` array as (name, points); NaN (`null`) points are
/// skipped. Other trace types are refused, naming the type.
pub fn traces(data: &Value) -> Result<Vec<NamedSeries>, String> {
    let data = data.as_array().ok_or("missing `data`")?;
    data.iter()
        .enumerate()
        .map(|(index, trace)| {
            let kind = trace["type"].as_str().unwrap_or("scatter");
            if !matches!(kind, "scatter" | "scattergl") {
                return Err(format!(
                    "Weir's chart server draws line and scatter plots; `{kind}` is not supported"
                ));
            }
            let xs = trace["x"].as_array().ok_or("a trace lacks `x`")?;
            let ys = trace["y"].as_array().ok_or("a trace lacks `y`")?;
            if xs.len() != ys.len() {
                return Err(format!("`x` has {} values and `y` {}", xs.len(), ys.len()));
            }
            let points = xs
                .iter()
                .zip(ys)
                .filter_map(|(x, y)| Some((x.as_f64()?, y.as_f64()?)))
                .collect();
            let name = trace["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| (index + 1).to_string());
            Ok((name, points))
        })
        .collect()
}

/// The windows of a `set_window_data` for a whole environment: id → window.
pub fn windows_of(data: &Value) -> Result<&Map<String, Value>, String> {
    data.as_object()
        .ok_or_else(|| "without `win`, `data` maps window ids to windows".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Charts;

    #[test]
    fn a_window_read_back_in_visdoms_format_is_the_same_window() {
        let charts = Charts::new(100);
        let options = WindowOptions {
            title: "Rates".into(),
            x_label: "tick".into(),
            y_label: "CNY".into(),
            kind: WindowKind::Markers,
        };
        let series = vec![("rate".to_string(), vec![(1.0, 478000.0), (2.0, 478060.5)])];
        charts.create("main", "w", options, series.clone());
        let window = to_visdom(&charts.view("main", "w", 0).unwrap());
        assert_eq!(window["content"]["data"][0]["x"], json!([1.0, 2.0]));
        assert_eq!(window["content"]["data"][0]["mode"], "markers");
        assert_eq!(window["content"]["layout"]["yaxis"]["title"], "CNY");

        let (options, read) = from_visdom(&window).unwrap();
        assert_eq!(read, series);
        assert_eq!(
            (
                options.title.as_str(),
                options.x_label.as_str(),
                options.kind
            ),
            ("Rates", "tick", WindowKind::Markers)
        );
        charts.create("main", "copy", options, read);
        let copy = to_visdom(&charts.view("main", "copy", 0).unwrap());
        assert_eq!(copy["content"], window["content"]);
        assert_eq!(
            copy["contentID"], window["contentID"],
            "same content, same id"
        );

        charts.append("main", "copy", "rate", &[(3.0, 1.0)], false);
        let changed = to_visdom(&charts.view("main", "copy", 0).unwrap());
        assert_ne!(fingerprint(&changed), fingerprint(&copy));
    }

    #[test]
    fn other_window_types_and_traces_are_refused_naming_them() {
        let text = json!({"type": "text", "content": "hello"});
        assert!(from_visdom(&text).unwrap_err().contains("`text`"));
        let heatmap =
            json!({"type": "plot", "content": {"data": [{"type": "heatmap", "z": [[1]]}]}});
        assert!(from_visdom(&heatmap).unwrap_err().contains("`heatmap`"));
        assert!(from_visdom(&json!("not a window")).is_err());
    }
}
