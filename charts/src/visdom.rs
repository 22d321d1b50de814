//! The part of Visdom's HTTP protocol its Python client uses for line plots: a Visdom user
//! points `visdom.Visdom(server=..., port=...)` at Weir and keeps their code.
//!
//! The client POSTs a JSON body (with no content type) to `/env/<eid>`, `/events`, `/update`,
//! `/win_exists`, `/close`, `/delete_env`, `/env_state` and `/win_data`.

use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

use crate::store::{Charts, WindowKind, WindowOptions};

/// Every Visdom endpoint, under the server root.
pub fn routes(
    charts: Charts,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let body = warp::post()
        .and(warp::body::content_length_limit(64 * 1024 * 1024))
        .and(warp::body::bytes());
    let with_charts = warp::any().map(move || charts.clone());
    let env = warp::path!("env" / String)
        .and(body)
        .and(with_charts.clone())
        .map(|eid: String, _body: bytes::Bytes, charts: Charts| {
            charts.ensure_env(&eid);
            text(StatusCode::OK, eid)
        });
    let endpoint =
        warp::path!(String).and(body).and(with_charts).map(
            |endpoint: String, body: bytes::Bytes, charts: Charts| match serde_json::from_slice::<
                Value,
            >(&body)
            {
                Ok(message) => handle(&charts, &endpoint, &message),
                Err(e) => text(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not JSON: {e}"),
                ),
            },
        );
    env.or(endpoint).unify()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    warp::reply::with_status(body.into(), status).into_response()
}

fn env_of(message: &Value) -> String {
    message["eid"].as_str().unwrap_or("main").to_string()
}

/// Handles one Visdom request.
pub fn handle(charts: &Charts, endpoint: &str, message: &Value) -> Response {
    let env = env_of(message);
    let win = message["win"].as_str();
    match endpoint {
        "events" => {
            let Some(win) = win else {
                return text(StatusCode::BAD_REQUEST, "missing `win`");
            };
            let traces = match traces(message) {
                Ok(traces) => traces,
                Err(reason) => return text(StatusCode::UNPROCESSABLE_ENTITY, reason),
            };
            let opts = &message["opts"];
            let title = opts["title"]
                .as_str()
                .or_else(|| message["layout"]["title"].as_str())
                .unwrap_or(win)
                .to_string();
            let options = WindowOptions {
                title,
                x_label: opts["xlabel"].as_str().unwrap_or_default().to_string(),
                y_label: opts["ylabel"].as_str().unwrap_or_default().to_string(),
                // Visdom's scatter plots draw markers; its line plots, lines.
                kind: match message["data"][0]["mode"].as_str() {
                    Some("markers") => WindowKind::Markers,
                    _ => WindowKind::Line,
                },
            };
            charts.create(&env, win, options, traces);
            text(StatusCode::OK, win)
        }
        "update" => {
            let Some(win) = win else {
                return text(StatusCode::BAD_REQUEST, "missing `win`");
            };
            let named = message["name"].as_str();
            if message["delete"].as_bool() == Some(true) {
                return match named {
                    Some(name) if charts.remove_series(&env, win, name) => text(StatusCode::OK, win),
                    Some(name) => text(StatusCode::NOT_FOUND, format!("no series `{name}` in `{win}`")),
                    None => {
                        charts.close(&env, Some(win));
                        text(StatusCode::OK, win)
                    }
                };
            }
            let traces = match traces(message) {
                Ok(traces) => traces,
                Err(reason) => return text(StatusCode::UNPROCESSABLE_ENTITY, reason),
            };
            let append = message["append"].as_bool().unwrap_or(true);
            for (trace_name, points) in traces {
                let series = named.map(str::to_string).unwrap_or(trace_name);
                charts.append(&env, win, &series, &points, !append);
            }
            text(StatusCode::OK, win)
        }
        "win_exists" => {
            let exists = win.is_some_and(|w| charts.exists(&env, w));
            text(StatusCode::OK, if exists { "true" } else { "false" })
        }
        "close" => {
            charts.close(&env, win);
            text(StatusCode::OK, "")
        }
        "delete_env" => {
            charts.delete_env(&env);
            text(StatusCode::OK, "")
        }
        "env_state" => warp::reply::json(&charts.envs()).into_response(),
        "win_data" => match win.and_then(|w| charts.view(&env, w, 0)) {
            Some(view) => warp::reply::json(&view).into_response(),
            None => text(StatusCode::NOT_FOUND, "no such window"),
        },
        other => text(
            StatusCode::NOT_IMPLEMENTED,
            format!("Weir's chart server does not implement Visdom's `{other}` endpoint (line and scatter plots are supported)"),
        ),
    }
}

/// A series name and its points.
type NamedSeries = (String, Vec<(f64, f64)>);

/// The line/scatter traces of a message as (name, points); NaN (`null`) points are skipped.
fn traces(message: &Value) -> Result<Vec<NamedSeries>, String> {
    let data = message["data"].as_array().ok_or("missing `data`")?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn create_append_and_delete_like_the_python_client() {
        let charts = Charts::new(100);
        let create = json!({"data": [{"x": [1, 2], "y": [5.0, 6.0], "name": "1", "type": "scatter"}],
                            "win": "w", "eid": "main", "opts": {"title": "Rates"}, "layout": {}});
        assert_eq!(handle(&charts, "events", &create).status(), StatusCode::OK);
        let append = json!({"data": [{"x": [3, 4], "y": [7.0, null], "name": "1", "type": "scatter"}],
                            "win": "w", "eid": "main", "name": null, "append": true});
        assert_eq!(handle(&charts, "update", &append).status(), StatusCode::OK);
        let view = charts.view("main", "w", 0).unwrap();
        assert_eq!(view.title, "Rates");
        assert_eq!(
            view.series[0].points,
            vec![(1.0, 5.0), (2.0, 6.0), (3.0, 7.0)]
        );
        let heatmap = json!({"data": [{"z": [[1]], "type": "heatmap"}], "win": "h", "eid": "main"});
        assert_eq!(
            handle(&charts, "events", &heatmap).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(!charts.exists("main", "h"), "nothing half-created");
    }
}
