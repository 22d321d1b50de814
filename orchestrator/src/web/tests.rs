//! Property tests of the REST bodies: whatever a client posts, the server answers with a
//! status that names the problem (4xx with an `error`) or accepts it — never a 500, which is
//! also what a panicking handler turns into.

use std::net::SocketAddr;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::api::{Context, OfferedBackends};
use super::auth::Access;
use super::routes;
use crate::home::WeirHome;
use crate::offered::OfferedWorkflows;
use crate::runtime::kubernetes::KubeOptions;
use crate::runtime::{Backend, RuntimeConfig};

/// A server over an empty home whose launches start `/bin/true` instead of `weir`.
struct Server {
    _home: tempfile::TempDir,
    context: Context,
    access: Access,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn new() -> Self {
        Self::offering(&[Backend::Local, Backend::Kubernetes])
    }

    /// A server whose launches may run on `backends` (`weir serve --backends`).
    fn offering(backends: &[Backend]) -> Self {
        let home = tempfile::tempdir().expect("a temporary home");
        let addr: SocketAddr = "127.0.0.1:8080".parse().expect("an address");
        let access = Access::configure(home.path(), addr).expect("a page token");
        let context = Context {
            workflows: OfferedWorkflows::new(vec![
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")
            ]),
            runtime: RuntimeConfig {
                backend: Backend::Local,
                home: WeirHome::at(home.path()),
                weir_exe: "/bin/true".into(),
                kubernetes: KubeOptions {
                    weir_image: "weir:test".into(),
                    standalone_namespace: "weir".into(),
                },
            },
            backends: OfferedBackends::new(backends.iter().copied()).expect("a backend"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Self {
            _home: home,
            context,
            access,
            runtime,
        }
    }

    /// Posts `body` as the page would, and returns the status and the JSON answer.
    fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let token = self.access.page_token.clone().expect("a page token");
        let filter = routes(self.context.clone(), self.access.clone());
        let response = self.runtime.block_on(
            warp::test::request()
                .method("POST")
                .path(path)
                .header("host", "127.0.0.1:8080")
                .header("origin", "http://127.0.0.1:8080")
                .header("authorization", format!("Bearer {token}"))
                .body(body)
                .reply(&filter),
        );
        let answer = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status().as_u16(), answer)
    }
}

/// The answer is an acceptance, or a refusal that says why.
fn check(status: u16, answer: &Value) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(status, 202 | 400 | 404 | 409),
        "status {status}: {answer}"
    );
    if status != 202 {
        prop_assert!(answer["error"].is_string(), "status {status}: {answer}");
    }
    Ok(())
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,30}".prop_map(Value::from),
        "[0-9]{1,30}(ms|s|m|h)?".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Variables or parameters: names the workflows and services know, and others, with values
/// of every JSON type (durations among them, some too long for any clock).
fn variables() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(
            &[
                "execution_duration",
                "automatic_kill",
                "restarts",
                "threshold",
                "poll_interval",
                "source_kind",
                "port",
                "heap",
            ][..]
        )
        .prop_map(str::to_string),
        "\\PC{0,12}"
    ];
    prop::collection::btree_map(key, any_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Objects shaped like the real bodies: known field names and values, unknown ones, and
/// fields of the wrong type.
fn body_like(
    fields: &'static [&'static str],
    names: &'static [&'static str],
) -> BoxedStrategy<Vec<u8>> {
    let name = prop_oneof![
        prop::sample::select(names).prop_map(str::to_string),
        "\\PC{0,20}"
    ];
    let map = variables();
    let field_value = prop_oneof![
        3 => name.prop_map(Value::from),
        2 => map,
        1 => any_value(),
    ];
    let field = prop_oneof![
        4 => prop::sample::select(fields).prop_map(str::to_string),
        1 => "\\PC{0,10}"
    ];
    prop::collection::vec((field, field_value), 0..5)
        .prop_map(|pairs| {
            let object: Map<String, Value> = pairs.into_iter().collect();
            serde_json::to_vec(&Value::Object(object)).expect("JSON")
        })
        .boxed()
}

fn run_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => (prop::sample::select(&["ci-smoke", "bitcoin-yuan"][..]), variables(), prop::sample::select(&["local", "kubernetes"][..]))
            .prop_map(|(workflow, variables, backend)| {
                serde_json::to_vec(&json!({ "workflow": workflow, "variables": variables, "backend": backend })).expect("JSON")
            }),
        2 => body_like(&["workflow", "variables", "backend"], &["ci-smoke", "bitcoin-yuan", "local", "kubernetes"]),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
    .boxed()
}

fn service_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => (prop::sample::select(&["zookeeper", "kafka", "topology-runner", "chart-server"][..]), prop::option::of("[a-z0-9-]{1,12}|\\PC{0,12}"), variables())
            .prop_map(|(service, name, params)| {
                serde_json::to_vec(&json!({ "service": service, "name": name, "params": params })).expect("JSON")
            }),
        2 => body_like(&["service", "name", "params"], &["zookeeper", "kafka", "topology-runner", "chart-server", "kafka-1"]),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_run_launch_body_is_accepted_or_refused_with_a_reason(body in run_body()) {
        let server = Server::new();
        let (status, answer) = server.post("/api/runs", &body);
        check(status, &answer)?;
    }

    #[test]
    fn any_service_launch_body_is_accepted_or_refused_with_a_reason(body in service_body()) {
        let server = Server::new();
        let (status, answer) = server.post("/api/instances", &body);
        check(status, &answer)?;
    }
}

#[test]
fn a_valid_run_launch_is_accepted_and_a_huge_duration_is_refused() {
    let server = Server::new();
    let (status, answer) = server.post(
        "/api/runs",
        br#"{"workflow": "ci-smoke", "variables": {"execution_duration": "5s"}}"#,
    );
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = server.post(
        "/api/runs",
        br#"{"workflow": "ci-smoke", "variables": {"execution_duration": "99999999999999999999s"}}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["problems"]
            .to_string()
            .contains("execution_duration"),
        "{answer}"
    );
}

#[test]
fn a_server_offering_only_kubernetes_launches_there_and_refuses_local_with_the_reason() {
    let server = Server::offering(&[Backend::Kubernetes]);
    for (path, body) in [
        (
            "/api/runs",
            &br#"{"workflow": "ci-smoke", "backend": "local"}"#[..],
        ),
        (
            "/api/instances",
            br#"{"service": "zookeeper", "backend": "local"}"#,
        ),
    ] {
        let (status, answer) = server.post(path, body);
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("does not launch on `local`: it offers kubernetes")),
            "{path}: {answer}"
        );
    }
    let (status, answer) = server.post("/api/runs", br#"{"workflow": "ci-smoke"}"#);
    assert_eq!(status, 202, "{answer}");
    assert!(OfferedBackends::new([]).is_err());
}
