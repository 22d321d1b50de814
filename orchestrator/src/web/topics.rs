//! The topics of a Kafka instance over HTTP, as `weir topics` shows them:
//!
//! - `GET /api/instances/NAME/topics` — topics and consumer groups with their lag;
//! - `GET /api/instances/NAME/topics/TOPIC/messages?…` — a browse; every option is a query
//!   parameter, so a link reproduces the view (`format=jsonl` downloads it as JSON lines);
//! - `GET /api/instances/NAME/topics/TOPIC/tail?…` — new messages as Server-Sent Events;
//! - `POST /api/instances/NAME/topics/TOPIC/messages` — writes one message (operator role).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply as _, Response};
use warp::Filter;

use super::api::Context;
use super::auth::{Access, Role};
use super::{any_of, caller, guarded, json_reply, parse_body, refuse, Caller};
use crate::topics::browse::{self, BrowseRequest, Filter as MessageFilter, Start};
use crate::topics::produce::{self, NewMessage};
use crate::topics::{overview, KafkaTarget, TopicsError};

/// Messages one browse returns at most.
const MAX_LIMIT: usize = 1_000;
/// Messages shown when the link does not say.
const DEFAULT_LIMIT: usize = 50;
/// Live tails served at once: each holds a Kafka consumer and a thread.
const MAX_TAILS: usize = 32;
/// Messages a slow browser may be behind on a tail before the tail waits for it.
const TAIL_BUFFER: usize = 256;

/// The query of a browse or a tail.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// RFC 3339 or epoch milliseconds.
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub key: Option<String>,
    pub contains: Option<String>,
    #[serde(rename = "where")]
    pub expression: Option<String>,
    pub scan_limit: Option<u64>,
    /// `json` (default) or `jsonl`.
    pub format: Option<String>,
    /// For links and `EventSource`, which cannot send an Authorization header.
    pub access_token: Option<String>,
}

impl MessagesQuery {
    fn filter(&self) -> Result<MessageFilter, TopicsError> {
        let expression = match &self.expression {
            Some(text) => Some(
                weir_topology::expression::Expression::compile(text)
                    .map_err(|e| TopicsError::BadRequest(e.to_string()))?,
            ),
            None => None,
        };
        Ok(MessageFilter {
            key: self.key.clone(),
            contains: self.contains.clone(),
            expression,
        })
    }

    fn request(&self, topic: &str) -> Result<BrowseRequest, TopicsError> {
        let start = match (self.offset, &self.since) {
            (Some(_), Some(_)) => {
                return Err(TopicsError::BadRequest(
                    "give offset or since, not both".into(),
                ))
            }
            (Some(offset), None) => Start::Offset(offset),
            (None, Some(since)) => Start::Timestamp(browse::parse_time(since)?),
            (None, None) => Start::Newest,
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit > MAX_LIMIT {
            return Err(TopicsError::BadRequest(format!(
                "limit={limit}: at most {MAX_LIMIT} messages are shown at once; page with offset"
            )));
        }
        Ok(BrowseRequest {
            topic: topic.to_string(),
            partition: self.partition,
            start,
            limit,
            filter: self.filter()?,
            scan_limit: self.scan_limit.unwrap_or(browse::DEFAULT_SCAN_LIMIT),
        })
    }
}

/// The routes of this module.
pub fn routes(context: Context, access: Arc<Access>) -> BoxedFilter<(Response,)> {
    let state = warp::any().map(move || (context.clone(), access.clone()));
    let tails = Arc::new(AtomicUsize::new(0));

    let overview = warp::get()
        .and(warp::path!("api" / "instances" / String / "topics"))
        .and(state.clone())
        .and(caller())
        .and_then(
            |name: String, (context, access): (Context, Arc<Access>), caller: Caller| {
                guarded(access, caller, Role::Viewer, move || {
                    reply(brokers(&context, &name).and_then(|brokers| {
                        overview::overview(&brokers, &[], false).map(|found| json(&found))
                    }))
                })
            },
        );
    let messages = warp::get()
        .and(warp::path!(
            "api" / "instances" / String / "topics" / String / "messages"
        ))
        .and(warp::query::<MessagesQuery>())
        .and(state.clone())
        .and(caller())
        .and_then(
            |name: String,
             topic: String,
             query: MessagesQuery,
             (context, access): (Context, Arc<Access>),
             caller: Caller| {
                let caller = with_query_token(caller, &query);
                guarded(access, caller, Role::Viewer, move || {
                    reply(browse_reply(&context, &name, &topic, &query))
                })
            },
        );
    let produce = warp::post()
        .and(warp::path!(
            "api" / "instances" / String / "topics" / String / "messages"
        ))
        .and(warp::body::content_length_limit(1024 * 1024).and(warp::body::bytes()))
        .and(state.clone())
        .and(caller())
        .and_then(
            |name: String,
             topic: String,
             body: bytes::Bytes,
             (context, access): (Context, Arc<Access>),
             caller: Caller| {
                guarded(access, caller, Role::Operator, move || {
                    let message: NewMessage = match parse_body(&body) {
                        Ok(message) => message,
                        Err(reply) => return json_reply(reply),
                    };
                    reply(brokers(&context, &name).and_then(|brokers| {
                        let produced = tokio::runtime::Handle::current()
                            .block_on(produce::produce(&brokers, &topic, &[message]))?;
                        Ok(json(&produced[0]))
                    }))
                })
            },
        );
    let tail = warp::get()
        .and(warp::path!(
            "api" / "instances" / String / "topics" / String / "tail"
        ))
        .and(warp::query::<MessagesQuery>())
        .and(state)
        .and(caller())
        .and_then(
            move |name: String,
                  topic: String,
                  query: MessagesQuery,
                  (context, access): (Context, Arc<Access>),
                  caller: Caller| {
                let tails = tails.clone();
                let caller = with_query_token(caller, &query);
                async move {
                    if let Err(denied) = access.check(caller.authorization.as_deref(), Role::Viewer)
                    {
                        return Ok::<_, Infallible>(refuse(denied));
                    }
                    Ok(tail_reply(context, name, topic, query, tails).await)
                }
            },
        );
    any_of([
        overview.boxed(),
        messages.boxed(),
        produce.boxed(),
        tail.boxed(),
    ])
}

/// The bootstrap servers of the Kafka instance `name`.
fn brokers(context: &Context, name: &str) -> Result<String, TopicsError> {
    tokio::runtime::Handle::current()
        .block_on(KafkaTarget::Instance(name.to_string()).resolve(&context.runtime))
        .map_err(|e| TopicsError::BadRequest(e.to_string()))
}

fn browse_reply(
    context: &Context,
    name: &str,
    topic: &str,
    query: &MessagesQuery,
) -> Result<Response, TopicsError> {
    let request = query.request(topic)?;
    let brokers = brokers(context, name)?;
    let browsed = browse::browse(&brokers, &request)?;
    match query.format.as_deref() {
        None | Some("json") => Ok(json(&browsed)),
        Some("jsonl") => {
            let lines: String = (browsed.messages.iter())
                .map(|m| serde_json::to_string(m).unwrap_or_default() + "\n")
                .collect();
            let file = format!("attachment; filename=\"{topic}.jsonl\"");
            Ok(warp::reply::with_header(
                warp::reply::with_header(lines, "content-type", "application/x-ndjson"),
                "content-disposition",
                file,
            )
            .into_response())
        }
        Some(other) => Err(TopicsError::BadRequest(format!(
            "format={other}: use json or jsonl"
        ))),
    }
}

async fn tail_reply(
    context: Context,
    name: String,
    topic: String,
    query: MessagesQuery,
    tails: Arc<AtomicUsize>,
) -> Response {
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(error) => return error_reply(error),
    };
    let resolved = KafkaTarget::Instance(name).resolve(&context.runtime).await;
    let brokers = match resolved {
        Ok(brokers) => brokers,
        Err(error) => return error_reply(TopicsError::BadRequest(error.to_string())),
    };
    if tails.fetch_add(1, Ordering::SeqCst) >= MAX_TAILS {
        tails.fetch_sub(1, Ordering::SeqCst);
        return json_reply((
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": format!("{MAX_TAILS} live tails are open already; close one") }),
        ));
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<warp::sse::Event>(TAIL_BUFFER);
    // The stream opens once the tail is positioned: what is written after the browser saw
    // it open is shown. A tail that fails before that is an error answer, not a stream.
    let (positioned, ready) = tokio::sync::oneshot::channel::<Result<(), TopicsError>>();
    let partition = query.partition;
    tokio::task::spawn_blocking(move || {
        let mut positioned = Some(positioned);
        let closed = || sender.is_closed();
        let result = browse::tail(
            &brokers,
            &topic,
            partition,
            &filter,
            &closed,
            &mut || {
                if let Some(positioned) = positioned.take() {
                    let _ = positioned.send(Ok(()));
                }
            },
            &mut |m| {
                let event = warp::sse::Event::default()
                    .event("message")
                    .json_data(&m)
                    .unwrap_or_else(|_| warp::sse::Event::default().event("message"));
                sender.blocking_send(event).is_ok()
            },
        );
        match (result, positioned.take()) {
            (Err(error), Some(positioned)) => {
                let _ = positioned.send(Err(error));
            }
            (Err(error), None) => {
                let _ = sender.blocking_send(
                    warp::sse::Event::default()
                        .event("failed")
                        .data(error.to_string()),
                );
            }
            (Ok(_), _) => {}
        }
        tails.fetch_sub(1, Ordering::SeqCst);
    });
    match ready.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return error_reply(error),
        Err(_) => {
            return error_reply(TopicsError::BadRequest(
                "the tail ended before it started".into(),
            ))
        }
    }
    let stream = futures::StreamExt::map(
        tokio_stream::wrappers::ReceiverStream::new(receiver),
        Ok::<_, Infallible>,
    );
    warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response()
}

fn with_query_token(mut caller: Caller, query: &MessagesQuery) -> Caller {
    if caller.authorization.is_none() {
        caller.authorization = query.access_token.as_ref().map(|t| format!("Bearer {t}"));
    }
    caller
}

fn json(value: &impl serde::Serialize) -> Response {
    warp::reply::json(value).into_response()
}

fn reply(result: Result<Response, TopicsError>) -> Response {
    result.unwrap_or_else(error_reply)
}

/// 404 for what does not exist, 400 for what was asked wrong, 502 when Kafka fails.
fn error_reply(error: TopicsError) -> Response {
    let status = match &error {
        TopicsError::NoTopic { .. } | TopicsError::NoPartition { .. } => StatusCode::NOT_FOUND,
        TopicsError::BadRequest(_) => StatusCode::BAD_REQUEST,
        TopicsError::Unreachable { .. }
        | TopicsError::Client { .. }
        | TopicsError::Kafka { .. }
        | TopicsError::Group { .. } => StatusCode::BAD_GATEWAY,
    };
    json_reply((status, serde_json::json!({ "error": error.to_string() })))
}
