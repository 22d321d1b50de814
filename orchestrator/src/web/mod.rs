//! `weir serve`: the web UI and REST API — dashboard, catalog with one-click launch forms,
//! service instances, runs with their task graph, approvals — and the OpenAPI document.

pub mod api;
pub mod auth;
mod changes;
mod launch;
mod monitor;
mod openapi;
mod topics;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

use self::api::Context;
use self::auth::{same_origin, Access, Denied, Role};
use self::changes::ChangeFeed;
use crate::runs::Answer;

const INDEX_HTML: &str = include_str!("assets/index.html");
const UI_JS: &str = include_str!("assets/ui.js");

/// Headers the access rules look at.
#[derive(Debug, Clone, Default)]
struct Caller {
    authorization: Option<String>,
    origin: Option<String>,
    host: Option<String>,
}

fn caller() -> impl Filter<Extract = (Caller,), Error = Infallible> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .map(|authorization, origin, host| Caller {
            authorization,
            origin,
            host,
        })
        .or(warp::any().map(Caller::default))
        .unify()
}

fn json_reply((status, body): api::Reply) -> Response {
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

fn refuse(denied: Denied) -> Response {
    let (status, message) = match denied {
        Denied::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "a bearer token is needed: Authorization: Bearer TOKEN",
        ),
        Denied::Forbidden => (
            StatusCode::FORBIDDEN,
            "this token's role may not do that (operator or admin needed)",
        ),
    };
    json_reply((status, serde_json::json!({ "error": message })))
}

/// Runs a blocking handler after the access check.
async fn guarded(
    access: Arc<Access>,
    caller: Caller,
    needed: Role,
    handler: impl FnOnce() -> Response + Send + 'static,
) -> Result<Response, Infallible> {
    if let Err(denied) = access.check(caller.authorization.as_deref(), needed) {
        return Ok(refuse(denied));
    }
    if needed > Role::Viewer && !same_origin(caller.origin.as_deref(), caller.host.as_deref()) {
        return Ok(json_reply((
            StatusCode::FORBIDDEN,
            serde_json::json!({ "error": "cross-site request refused" }),
        )));
    }
    Ok(tokio::task::spawn_blocking(handler)
        .await
        .unwrap_or_else(|e| {
            json_reply((
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({ "error": e.to_string() }),
            ))
        }))
}

/// Parses a JSON body, or says why it is malformed (answered with 400 by the caller).
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, api::Reply> {
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": format!("malformed request body: {e}") }),
        )
    })
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    context: Context,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    warp::serve(routes(context, access))
        .serve_incoming_with_graceful_shutdown(incoming, shutdown)
        .await;
}

/// Every route.
pub fn routes(
    context: Context,
    access: Access,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let page_token = access.page_token.clone();
    let access = Arc::new(access);
    let state = {
        let (context, access) = (context.clone(), access.clone());
        warp::any().map(move || (context.clone(), access.clone()))
    };
    let body = warp::body::content_length_limit(1024 * 1024).and(warp::body::bytes());

    let index = warp::get().and(warp::path::end()).map(move || {
        // The page carries the token the server made for itself (loopback, no tokens
        // configured); other origins cannot read it.
        let token = page_token.clone().unwrap_or_default();
        warp::reply::html(INDEX_HTML.replace("{{PAGE_TOKEN}}", &token)).into_response()
    });
    let script = warp::get()
        .and(warp::path!("ui.js"))
        .map(|| warp::reply::with_header(UI_JS, "content-type", "text/javascript").into_response());
    let openapi = warp::get()
        .and(warp::path!("api" / "openapi.json"))
        .map(|| warp::reply::json(&openapi::document()).into_response());

    macro_rules! read {
        ($path:expr, $handler:expr) => {
            warp::get()
                .and($path)
                .and(state.clone())
                .and(caller())
                .and_then(
                    |(context, access): (Context, Arc<Access>), caller: Caller| {
                        guarded(access, caller, Role::Viewer, move || {
                            json_reply($handler(&context))
                        })
                    },
                )
        };
    }
    let dashboard = read!(warp::path!("api" / "dashboard"), api::dashboard);
    let catalog = read!(warp::path!("api" / "catalog"), api::catalog);
    let instances = read!(warp::path!("api" / "instances"), api::instances);
    let runs = read!(warp::path!("api" / "runs"), api::runs);
    let run = warp::get()
        .and(warp::path!("api" / "runs" / String))
        .and(state.clone())
        .and(caller())
        .and_then(
            |id: String, (context, access): (Context, Arc<Access>), caller: Caller| {
                guarded(access, caller, Role::Viewer, move || {
                    json_reply(api::run(&context, &id))
                })
            },
        );
    let topologies = warp::get()
        .and(warp::path!("api" / "runs" / String / "topologies"))
        .and(state.clone())
        .and(caller())
        .and_then(
            |id: String, (context, access): (Context, Arc<Access>), caller: Caller| {
                guarded(access, caller, Role::Viewer, move || {
                    json_reply(monitor::run_topologies(&context, &id))
                })
            },
        );
    let artifact = warp::get()
        .and(warp::path("api"))
        .and(warp::path("runs"))
        .and(warp::path::param::<String>())
        .and(warp::path("artifacts"))
        .and(warp::path::tail())
        .and(state.clone())
        .and(caller())
        .and_then(
            |id: String,
             tail: warp::path::Tail,
             (context, access): (Context, Arc<Access>),
             caller: Caller| {
                let relative = tail.as_str().to_string();
                guarded(access, caller, Role::Viewer, move || {
                    match api::artifact(&context, &id, &relative) {
                        Ok((bytes, kind)) => {
                            warp::reply::with_header(bytes, "content-type", kind).into_response()
                        }
                        Err(reply) => json_reply(reply),
                    }
                })
            },
        );
    let log = warp::get()
        .and(warp::path!("api" / "instances" / String / "log"))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(state.clone())
        .and(caller())
        .and_then(
            |name: String,
             query: std::collections::HashMap<String, String>,
             (context, access): (Context, Arc<Access>),
             caller: Caller| {
                let tail = query.get("tail").map(|text| text.parse::<usize>().map_err(|_| text.clone()));
                guarded(
                    access,
                    caller,
                    Role::Viewer,
                    move || match tail.transpose().map(|tail| api::instance_log(&context, &name, tail)) {
                        Err(text) => json_reply((
                            StatusCode::BAD_REQUEST,
                            serde_json::json!({ "error": format!("tail=`{text}`: expected a number of lines") }),
                        )),
                        Ok(Err(reply)) => json_reply(reply),
                        Ok(Ok(text)) => warp::reply::with_header(
                            text,
                            "content-type",
                            "text/plain; charset=utf-8",
                        )
                        .into_response(),
                    },
                )
            },
        );
    let launch_service = warp::post()
        .and(warp::path!("api" / "instances"))
        .and(body)
        .and(state.clone())
        .and(caller())
        .and_then(
            |body: bytes::Bytes, (context, access): (Context, Arc<Access>), caller: Caller| {
                guarded(access, caller, Role::Operator, move || {
                    match parse_body(&body) {
                        Ok(request) => json_reply(api::launch_service(&context, request)),
                        Err(reply) => json_reply(reply),
                    }
                })
            },
        );
    let stop_instance = warp::delete()
        .and(warp::path!("api" / "instances" / String))
        .and(state.clone())
        .and(caller())
        .and_then(
            |name: String, (context, access): (Context, Arc<Access>), caller: Caller| {
                guarded(access, caller, Role::Operator, move || {
                    json_reply(api::stop_instance(&context, &name))
                })
            },
        );
    let launch_run = warp::post()
        .and(warp::path!("api" / "runs"))
        .and(body)
        .and(state.clone())
        .and(caller())
        .and_then(
            |body: bytes::Bytes, (context, access): (Context, Arc<Access>), caller: Caller| {
                guarded(access, caller, Role::Operator, move || {
                    match parse_body(&body) {
                        Ok(request) => json_reply(api::launch_run(&context, request)),
                        Err(reply) => json_reply(reply),
                    }
                })
            },
        );
    let answer = warp::post()
        .and(warp::path!("api" / "runs" / String / String))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(state.clone())
        .and(caller())
        .and_then(|id: String, verb: String, query: std::collections::HashMap<String, String>, (context, access): (Context, Arc<Access>), caller: Caller| {
            let task = query.get("task").cloned();
            guarded(access, caller, Role::Operator, move || match verb.as_str() {
                "approve" => json_reply(api::answer(&context, &id, task.as_deref(), Answer::Approved)),
                "reject" => json_reply(api::answer(&context, &id, task.as_deref(), Answer::Rejected)),
                other => json_reply((StatusCode::NOT_FOUND, serde_json::json!({ "error": format!("no action `{other}`; use approve or reject") }))),
            })
        });
    let topics = topics::routes(context.clone(), access.clone());
    // Browsers' EventSource cannot send headers, so the stream also takes `?access_token=`.
    let feed = ChangeFeed::new(context.clone());
    let events = warp::get()
        .and(warp::path!("api" / "events"))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(state)
        .and(caller())
        .map(
            move |query: std::collections::HashMap<String, String>,
                  (_, access): (Context, Arc<Access>),
                  caller: Caller| {
                let authorization = caller
                    .authorization
                    .or_else(|| query.get("access_token").map(|t| format!("Bearer {t}")));
                if let Err(denied) = access.check(authorization.as_deref(), Role::Viewer) {
                    return refuse(denied);
                }
                warp::sse::reply(warp::sse::keep_alive().stream(changes(&feed))).into_response()
            },
        );

    // A page on another site whose name resolves to 127.0.0.1 (DNS rebinding) reaches a
    // loopback server with its own name in `Host`: such requests get nothing, not even the page
    // that carries the admin token.
    let host_check = {
        let access = access.clone();
        warp::header::optional::<String>("host").and_then(move |host: Option<String>| {
            let access = access.clone();
            async move {
                match access.host_allowed(host.as_deref()) {
                    Ok(()) => Err(warp::reject::not_found()),
                    Err(refused) => Ok::<_, warp::Rejection>(json_reply((
                        StatusCode::MISDIRECTED_REQUEST,
                        serde_json::json!({ "error": refused.to_string() }),
                    ))),
                }
            }
        })
    };
    // Each route is boxed and the routes are tried in turn. Chained unboxed, the routes made
    // one `Or` type nested 18 deep: on 2 cores the library's release build took about 20
    // minutes and clippy over 14; boxed, 62 s and 8 s.
    any_of([
        host_check.boxed(),
        index.boxed(),
        script.boxed(),
        openapi.boxed(),
        dashboard.boxed(),
        catalog.boxed(),
        log.boxed(),
        topics,
        instances.boxed(),
        launch_service.boxed(),
        stop_instance.boxed(),
        runs.boxed(),
        artifact.boxed(),
        topologies.boxed(),
        run.boxed(),
        launch_run.boxed(),
        answer.boxed(),
        events.boxed(),
    ])
        .recover(|rejection: warp::Rejection| async move {
            if let Some(invalid) = rejection.find::<warp::reject::InvalidQuery>() {
                return Ok::<_, Infallible>(json_reply((
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": format!("{invalid}: a parameter is unknown or its value has the wrong type") }),
                )));
            }
            let status = if rejection.is_not_found() {
                StatusCode::NOT_FOUND
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                StatusCode::METHOD_NOT_ALLOWED
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok::<_, Infallible>(json_reply((
                status,
                serde_json::json!({ "error": format!("{rejection:?}") }),
            )))
        })
        .unify()
}

/// The first of `routes` that matches a request, in order.
fn any_of<const N: usize>(routes: [BoxedFilter<(Response,)>; N]) -> BoxedFilter<(Response,)> {
    routes
        .into_iter()
        .reduce(|first, second| first.or(second).unify().boxed())
        .expect("at least one route")
}

/// A `changed` event when a browser connects and whenever the instances, runs or tasks
/// change, from the one [`ChangeFeed`] every browser shares.
fn changes(feed: &ChangeFeed) -> impl futures::Stream<Item = Result<warp::sse::Event, Infallible>> {
    use futures::StreamExt;
    tokio_stream::wrappers::WatchStream::new(feed.subscribe())
        .map(|_| Ok(warp::sse::Event::default().event("changed").data("{}")))
}

#[cfg(test)]
mod tests;
