//! The chart server's HTTP side: the page, the JSON API, snapshots, the live stream, and the
//! Visdom protocol, on a listener the caller has bound.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use warp::http::StatusCode;
use warp::reply::Reply;
use warp::Filter;

use crate::saved::SavedEnvs;
use crate::snapshot;
use crate::store::{Charts, Event};
use crate::visdom;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");

/// Updates sent to a browser are merged over this long (10 frames per second).
const FRAME: Duration = Duration::from_millis(100);

#[derive(Debug, Deserialize)]
struct ViewQuery {
    /// Points per series after decimation (about twice the plot's pixel width).
    points: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct SnapshotQuery {
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct StreamQuery {
    since: Option<u64>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    charts: Charts,
    saved: Option<SavedEnvs>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    warp::serve(routes(charts, saved))
        .serve_incoming_with_graceful_shutdown(incoming, shutdown)
        .await;
}

/// Every route of the chart server; Visdom environments are saved in `saved` when given.
pub fn routes(
    charts: Charts,
    saved: Option<SavedEnvs>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with = {
        let charts = charts.clone();
        warp::any().map(move || charts.clone())
    };
    let index = warp::get()
        .and(warp::path::end())
        .map(|| warp::reply::html(INDEX_HTML).into_response());
    let app = warp::get().and(warp::path!("assets" / "app.js")).map(|| {
        warp::reply::with_header(APP_JS, "content-type", "text/javascript").into_response()
    });
    let health = warp::get()
        .and(warp::path!("api" / "health"))
        .map(|| "ok".into_response());
    let list = warp::get()
        .and(warp::path!("api" / "windows"))
        .and(with.clone())
        .map(|charts: Charts| {
            let windows: Vec<serde_json::Value> = charts
                .windows()
                .into_iter()
                .map(
                    |(env, win, title)| serde_json::json!({"env": env, "win": win, "title": title}),
                )
                .collect();
            warp::reply::json(&windows).into_response()
        });
    let view = warp::get()
        .and(warp::path!("api" / "windows" / String / String))
        .and(warp::query::<ViewQuery>())
        .and(with.clone())
        .map(
            |env: String, win: String, query: ViewQuery, charts: Charts| match charts.view(
                &env,
                &win,
                query.points.unwrap_or(2000),
            ) {
                Some(view) => warp::reply::json(&view).into_response(),
                None => not_found(&env, &win),
            },
        );
    let picture = warp::get()
        .and(warp::path!("api" / "windows" / String / String / String))
        .and(warp::query::<SnapshotQuery>())
        .and(with.clone())
        .map(
            |env: String, win: String, file: String, query: SnapshotQuery, charts: Charts| {
                let width = query.width.unwrap_or(800).clamp(100, 4000);
                let height = query.height.unwrap_or(400).clamp(100, 4000);
                let Some(view) = charts.view(&env, &win, width as usize * 2) else {
                    return not_found(&env, &win);
                };
                let drawn = match file.as_str() {
                    "snapshot.svg" => snapshot::svg(&view, width, height).map(|svg| {
                        warp::reply::with_header(svg, "content-type", "image/svg+xml")
                            .into_response()
                    }),
                    "snapshot.png" => snapshot::png(&view, width, height).map(|png| {
                        warp::reply::with_header(png, "content-type", "image/png").into_response()
                    }),
                    _ => {
                        return warp::reply::with_status(
                            "use snapshot.png or snapshot.svg",
                            StatusCode::NOT_FOUND,
                        )
                        .into_response()
                    }
                };
                drawn.unwrap_or_else(|e| {
                    warp::reply::with_status(e.to_string(), StatusCode::INTERNAL_SERVER_ERROR)
                        .into_response()
                })
            },
        );
    let stream = warp::get()
        .and(warp::path!("api" / "stream"))
        .and(warp::header::optional::<u64>("last-event-id"))
        .and(warp::query::<StreamQuery>())
        .and(with.clone())
        .map(|last: Option<u64>, query: StreamQuery, charts: Charts| {
            let since = last.or(query.since);
            warp::sse::reply(warp::sse::keep_alive().stream(client_stream(charts, since)))
                .into_response()
        });
    let visdom = visdom::routes(charts, saved);
    index
        .or(app)
        .unify()
        .or(health)
        .unify()
        .or(list)
        .unify()
        .or(picture)
        .unify()
        .or(view)
        .unify()
        .or(stream)
        .unify()
        .or(visdom)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let status = if rejection.is_not_found() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok::<_, Infallible>(
                warp::reply::with_status(format!("{rejection:?}"), status).into_response(),
            )
        })
        .unify()
}

fn not_found(env: &str, win: &str) -> warp::reply::Response {
    warp::reply::with_status(
        format!("no window `{win}` in environment `{env}`"),
        StatusCode::NOT_FOUND,
    )
    .into_response()
}

/// One browser's stream. Events are merged per frame; a client that falls behind the
/// bounded channel, or resumes from further back than the server remembers, is told to
/// `resync` (refetch everything) instead of being queued without bound.
fn client_stream(
    charts: Charts,
    since: Option<u64>,
) -> impl Stream<Item = Result<warp::sse::Event, Infallible>> {
    // Subscribe before reading the backlog, so that nothing falls between the two.
    let receiver = charts.subscribe();
    let mut first = Vec::new();
    let mut last_sent = charts.last_seq();
    match since {
        Some(seq) => match charts.events_since(seq) {
            Some(backlog) => {
                last_sent = seq;
                first.push(batch(&merge(backlog), &mut last_sent));
            }
            None => first.push(resync(last_sent)),
        },
        None => first.push(hello(last_sent)),
    }
    futures::stream::unfold(
        (receiver, first, last_sent),
        move |(mut receiver, mut pending, mut last_sent)| {
            let charts = charts.clone();
            async move {
                if let Some(event) = pending.pop() {
                    return Some((Ok(event), (receiver, pending, last_sent)));
                }
                let mut events = match receiver.recv().await {
                    Ok(event) => vec![event],
                    Err(RecvError::Lagged(_)) => {
                        return Some((Ok(resync(last_sent)), (receiver, pending, last_sent)))
                    }
                    Err(RecvError::Closed) => return None,
                };
                tokio::time::sleep(FRAME).await;
                loop {
                    match receiver.try_recv() {
                        Ok(event) => events.push(event),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Lagged(_)) => {
                            last_sent = charts.last_seq();
                            return Some((Ok(resync(last_sent)), (receiver, pending, last_sent)));
                        }
                        Err(TryRecvError::Closed) => return None,
                    }
                }
                events.retain(|e| e.seq() > last_sent);
                let message = batch(&merge(events), &mut last_sent);
                Some((Ok(message), (receiver, pending, last_sent)))
            }
        },
    )
}

fn hello(seq: u64) -> warp::sse::Event {
    warp::sse::Event::default()
        .id(seq.to_string())
        .event("hello")
        .data("{}")
}

fn resync(seq: u64) -> warp::sse::Event {
    warp::sse::Event::default()
        .id(seq.to_string())
        .event("resync")
        .data("{}")
}

fn batch(events: &[Event], last_sent: &mut u64) -> warp::sse::Event {
    if let Some(last) = events.iter().map(Event::seq).max() {
        *last_sent = (*last_sent).max(last);
    }
    warp::sse::Event::default()
        .id(last_sent.to_string())
        .event("batch")
        .json_data(events)
        .unwrap_or_else(|_| resync(*last_sent))
}

/// Joins consecutive appends to the same series into one.
fn merge(events: Vec<Arc<Event>>) -> Vec<Event> {
    let mut merged: Vec<Event> = Vec::with_capacity(events.len());
    let mut index: HashMap<(String, String, String), usize> = HashMap::new();
    for event in events {
        match &*event {
            Event::Points {
                seq,
                env,
                win,
                series,
                points,
            } => {
                let key = (env.clone(), win.clone(), series.clone());
                match index.get(&key).and_then(|&i| merged.get_mut(i)) {
                    Some(Event::Points {
                        seq: last,
                        points: existing,
                        ..
                    }) => {
                        existing.extend_from_slice(points);
                        *last = *seq;
                    }
                    _ => {
                        index.insert(key, merged.len());
                        merged.push((*event).clone());
                    }
                }
            }
            Event::Text { .. } => merged.push((*event).clone()),
            Event::Window { env, win, .. } => {
                // Points before a window change are superseded by the refetch it causes.
                index.retain(|(e, w, _), _| !(e == env && w == win));
                merged.push((*event).clone());
            }
        }
    }
    merged
}
