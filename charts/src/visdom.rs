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

use crate::saved::SavedEnvs;
use weir_contracts::window::WindowKind;

use crate::store::{Charts, WindowOptions};
use crate::visdom_window::{fingerprint, from_visdom, plot, store, to_visdom, windows_of, Content};

/// Every Visdom endpoint, under the server root; environments are saved in `saved` (Visdom's
/// env path) when given.
pub fn routes(
    charts: Charts,
    saved: Option<SavedEnvs>,
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
    let endpoint = warp::path!(String)
        .and(body)
        .and(with_charts)
        .and(warp::any().map(move || saved.clone()))
        .map(
            |endpoint: String, body: bytes::Bytes, charts: Charts, saved: Option<SavedEnvs>| {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(message) => handle(&charts, saved.as_ref(), &endpoint, &message),
                    Err(e) => text(
                        StatusCode::BAD_REQUEST,
                        format!("the body is not JSON: {e}"),
                    ),
                }
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
pub fn handle(
    charts: &Charts,
    saved: Option<&SavedEnvs>,
    endpoint: &str,
    message: &Value,
) -> Response {
    let env = env_of(message);
    let win = message["win"].as_str();
    match endpoint {
        "events" => {
            let Some(win) = win else {
                return text(StatusCode::BAD_REQUEST, "missing `win`");
            };
            let opts = &message["opts"];
            let options = |kind, categories| WindowOptions {
                title: opts["title"]
                    .as_str()
                    .or_else(|| message["layout"]["title"].as_str())
                    .unwrap_or(win)
                    .to_string(),
                x_label: opts["xlabel"].as_str().unwrap_or_default().to_string(),
                y_label: opts["ylabel"].as_str().unwrap_or_default().to_string(),
                kind,
                categories,
            };
            let first = &message["data"][0];
            let content = match first["type"].as_str() {
                Some("text") => match first["content"].as_str() {
                    Some(entry) => {
                        charts.create_text(&env, win, options(WindowKind::Text, vec![]), vec![entry.into()]);
                        return text(StatusCode::OK, win);
                    }
                    None => return text(StatusCode::UNPROCESSABLE_ENTITY, "a text window's `content` is a string"),
                },
                Some("properties") if first["content"].is_array() => Content::Properties(first["content"].clone()),
                Some("properties") => {
                    return text(StatusCode::UNPROCESSABLE_ENTITY, "a properties window's `content` is a list of items")
                }
                _ => match plot(&message["data"]) {
                    Ok(plot) => {
                        store(charts, &env, win, options(plot.kind, plot.categories), Content::Plot(plot.series));
                        return text(StatusCode::OK, win);
                    }
                    Err(reason) => return text(StatusCode::UNPROCESSABLE_ENTITY, reason.to_string()),
                },
            };
            store(charts, &env, win, options(WindowKind::Properties, vec![]), content);
            text(StatusCode::OK, win)
        }
        "update" => {
            let Some(win) = win else {
                return text(StatusCode::BAD_REQUEST, "missing `win`");
            };
            let Some(kind) = charts.kind(&env, win) else {
                // As Visdom: appending creates the window, anything else needs it to exist.
                if message["append"].as_bool() == Some(true) {
                    return handle(charts, saved, "events", message);
                }
                return text(StatusCode::OK, "win does not exist");
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
            match kind {
                WindowKind::Text => {
                    let Some(entry) = message["data"][0]["content"].as_str() else {
                        return text(StatusCode::UNPROCESSABLE_ENTITY, "text is appended as `data[0].content`");
                    };
                    let _ = charts.append_text(&env, win, entry);
                    return text(StatusCode::OK, win);
                }
                WindowKind::Line | WindowKind::Markers => {}
                other => {
                    return text(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("window `{win}` is a {} window: only line, scatter and text windows take updates (as in Visdom); send the whole window again", other.as_str()),
                    )
                }
            }
            let traces = match plot(&message["data"]) {
                Ok(plot) => plot.series,
                Err(reason) => return text(StatusCode::UNPROCESSABLE_ENTITY, reason.to_string()),
            };
            let append = message["append"].as_bool().unwrap_or(true);
            for (trace_name, points) in traces {
                let series = named.map(str::to_string).unwrap_or(trace_name);
                let _ = charts.append(&env, win, &series, &points, !append);
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
            match saved.map(|saved| saved.delete(&env)) {
                Some(Err(e)) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("environment `{env}` closed, but its saved file stays: {e}"),
                ),
                _ => text(StatusCode::OK, ""),
            }
        }
        "save" => save(charts, saved, &message["data"]),
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
            format!("Weir's chart server does not implement Visdom's `{other}` endpoint (line, scatter and bar plots, text and properties windows are supported)"),
        ),
    }
}

/// `save`: writes the listed environments to the env path; answers the names saved.
fn save(charts: &Charts, saved: Option<&SavedEnvs>, envs: &Value) -> Response {
    let Some(saved) = saved else {
        return text(
            StatusCode::CONFLICT,
            "this chart server saves no environments: start it with --env-path DIR",
        );
    };
    let Some(envs) = envs.as_array() else {
        return text(
            StatusCode::BAD_REQUEST,
            "`data` lists the environments to save",
        );
    };
    let envs: Vec<String> = envs
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    match saved.save(charts, &envs) {
        Ok(names) => warp::reply::json(&names).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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
            Err(reason) => return text(StatusCode::UNPROCESSABLE_ENTITY, reason.to_string()),
        },
    };
    let mut taken = Vec::with_capacity(windows.len());
    for (win, window) in windows {
        match from_visdom(window) {
            Ok((options, content)) => taken.push((win, options, content)),
            Err(reason) => {
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("window `{win}`: {reason}"),
                )
            }
        }
    }
    for (win, options, content) in taken {
        store(charts, env, &win, options, content);
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
        assert_eq!(
            handle(&charts, None, "events", &create).status(),
            StatusCode::OK
        );
        let append = json!({"data": [{"x": [3, 4], "y": [7.0, null], "name": "1", "type": "scatter"}],
                            "win": "w", "eid": "main", "name": null, "append": true});
        assert_eq!(
            handle(&charts, None, "update", &append).status(),
            StatusCode::OK
        );
        let view = charts.view("main", "w", 0).unwrap();
        assert_eq!(view.title, "Rates");
        assert_eq!(
            view.series[0].points,
            vec![(1.0, 5.0), (2.0, 6.0), (3.0, 7.0)]
        );
        let heatmap = json!({"data": [{"z": [[1]], "type": "heatmap"}], "win": "h", "eid": "main"});
        assert_eq!(
            handle(&charts, None, "events", &heatmap).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(!charts.exists("main", "h"), "nothing half-created");
    }
}
