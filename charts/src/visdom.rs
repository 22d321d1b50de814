//! The part of Visdom's HTTP protocol its Python client uses for line plots: a Visdom user
//! points `visdom.Visdom(server=..., port=...)` at Weir and keeps their code.
//!
//! The client POSTs a JSON body (with no content type) to `/env/<eid>`, `/events`, `/update`,
//! `/win_exists`, `/win_hash`, `/close`, `/delete_env`, `/env_state` and `/win_data` (windows
//! in Visdom's own format, [`crate::visdom_window`]).

use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

use crate::store::{Charts, WindowKind, WindowOptions};
use crate::visdom_window::{fingerprint, from_visdom, to_visdom, traces, windows_of};

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

/// The environment a message is for: `eid`, or `env` (which `win_hash` sends), else `main`.
fn env_of(message: &Value) -> String {
    message["eid"]
        .as_str()
        .or_else(|| message["env"].as_str())
        .unwrap_or("main")
        .to_string()
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
            let traces = match traces(&message["data"]) {
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
            let traces = match traces(&message["data"]) {
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
        "win_data" if message.get("data").is_some() => set_window_data(charts, &env, win, &message["data"]),
        "win_data" => match win {
            Some(win) => match charts.view(&env, win, 0) {
                Some(view) => warp::reply::json(&to_visdom(&view)).into_response(),
                None => text(StatusCode::NOT_FOUND, format!("no window `{win}` in env `{env}`")),
            },
            None => {
                let windows: serde_json::Map<String, Value> = charts
                    .windows()
                    .into_iter()
                    .filter(|(e, _, _)| *e == env)
                    .filter_map(|(_, win, _)| Some((win.clone(), to_visdom(&charts.view(&env, &win, 0)?))))
                    .collect();
                warp::reply::json(&windows).into_response()
            }
        },
        "win_hash" => match win.and_then(|w| charts.view(&env, w, 0)) {
            Some(view) => text(StatusCode::OK, fingerprint(&to_visdom(&view))),
            None => text(StatusCode::OK, "false"),
        },
        other => text(
            StatusCode::NOT_IMPLEMENTED,
            format!("Weir's chart server does not implement Visdom's `{other}` endpoint (line and scatter plots are supported)"),
        ),
    }
}

/// `set_window_data`: `data` is what `get_window_data` returned (its JSON text, as the
/// client sends it, or the object) for one window, or for every window of the environment
/// when `win` is null. Nothing is changed unless every window is taken.
fn set_window_data(charts: &Charts, env: &str, win: Option<&str>, data: &Value) -> Response {
    let parsed;
    let data = match data.as_str() {
        Some(json) => match serde_json::from_str::<Value>(json) {
            Ok(value) => {
                parsed = value;
                &parsed
            }
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("`data` is not JSON: {e}")),
        },
        None => data,
    };
    let windows: Vec<(String, &Value)> = match win {
        Some(win) => vec![(win.to_string(), data)],
        None => match windows_of(data) {
            Ok(map) => map
                .iter()
                .map(|(win, window)| (win.clone(), window))
                .collect(),
            Err(reason) => return text(StatusCode::UNPROCESSABLE_ENTITY, reason),
        },
    };
    let mut taken = Vec::with_capacity(windows.len());
    for (win, window) in windows {
        match from_visdom(window) {
            Ok((options, series)) => taken.push((win, options, series)),
            Err(reason) => {
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("window `{win}`: {reason}"),
                )
            }
        }
    }
    for (win, options, series) in taken {
        charts.create(env, &win, options, series);
    }
    text(StatusCode::OK, "")
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
