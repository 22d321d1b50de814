//! The runtime's request sequences on error paths a real control plane rarely produces
//! (refusals, races), against a mocked API server (`tower-test`).

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::json;
use tower_test::mock::Handle;
use weir_contracts::service_kind::ServiceKind;

use super::*;
use crate::runtime::kubernetes::plan::{plan, Request as PlanRequest};

type ApiServer = Handle<Request<Body>, Response<Body>>;

fn mocked(namespace: &str) -> (ClusterNamespace, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        ClusterNamespace::new(Client::new(service, "default"), namespace),
        handle,
    )
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

/// Answers the next request after checking its method and path.
async fn expect(
    server: &mut ApiServer,
    method: Method,
    path: &str,
    answer: Response<Body>,
) -> Request<Body> {
    let (request, send) = server.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().path(), path, "{}", request.uri());
    send.send_response(answer);
    request
}

#[tokio::test]
async fn a_refused_apply_reports_the_api_servers_words_and_stops() {
    let (kube, mut server) = mocked("weir-r1");
    let planned = plan(
        &PlanRequest {
            service: ServiceKind::ZooKeeper,
            name: "zk".into(),
            params: vec![],
            images: BTreeMap::new(),
        },
        &BTreeMap::new(),
    )
    .unwrap();
    let create = tokio::spawn(async move {
        kube.create(&planned[0], Some("r1"), Duration::from_secs(5))
            .await
    });
    let request = expect(
        &mut server,
        Method::PATCH,
        "/api/v1/namespaces/weir-r1/services/zk",
        respond(
            StatusCode::FORBIDDEN,
            status(
                403,
                "Forbidden",
                "services \"zk\" is forbidden: exceeded quota: services=1",
            ),
        ),
    )
    .await;
    let query = request.uri().query().unwrap_or_default();
    assert!(
        query.contains("fieldManager=weir") && query.contains("force=true"),
        "{query}"
    );
    assert_eq!(
        request.headers()["content-type"],
        "application/apply-patch+yaml"
    );
    let error = create.await.unwrap().unwrap_err().to_string();
    assert_eq!(
        error,
        "Kubernetes API: applying Service `zk` in `weir-r1`: services \"zk\" is forbidden: exceeded quota: services=1 (403 Forbidden)"
    );
}

#[tokio::test]
async fn deleting_a_namespace_that_is_already_gone_sends_no_delete() {
    let (kube, mut server) = mocked("weir-r2");
    let delete = tokio::spawn(async move { kube.delete_namespace(Duration::from_secs(5)).await });
    expect(
        &mut server,
        Method::GET,
        "/api/v1/namespaces/weir-r2",
        respond(
            StatusCode::NOT_FOUND,
            status(404, "NotFound", "namespaces \"weir-r2\" not found"),
        ),
    )
    .await;
    assert!(!delete.await.unwrap().unwrap());
    assert!(
        server.next_request().await.is_none(),
        "no request after the 404"
    );
}

#[tokio::test]
async fn a_namespace_deleted_by_someone_else_meanwhile_counts_as_deleted() {
    let (kube, mut server) = mocked("weir-r3");
    let delete = tokio::spawn(async move { kube.delete_namespace(Duration::from_secs(5)).await });
    expect(
        &mut server,
        Method::GET,
        "/api/v1/namespaces/weir-r3",
        respond(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "weir-r3", "uid": "u3"}}),
        ),
    )
    .await;
    expect(
        &mut server,
        Method::DELETE,
        "/api/v1/namespaces/weir-r3",
        respond(
            StatusCode::NOT_FOUND,
            status(404, "NotFound", "namespaces \"weir-r3\" not found"),
        ),
    )
    .await;
    assert!(delete.await.unwrap().unwrap());
}

#[tokio::test]
async fn a_job_the_api_server_refuses_fails_with_its_reason() {
    let (kube, mut server) = mocked("weir-r4");
    let step = crate::runtime::kubernetes::jobs::Step::Count {
        brokers: "k:9092".into(),
        topics: vec!["t".into()],
    };
    let job = crate::runtime::kubernetes::jobs::render(
        &step,
        "results",
        "weir:test",
        Some("r4"),
        Duration::from_secs(30),
    );
    let run = tokio::spawn(async move { kube.run_job(&job, Duration::from_secs(5)).await });
    let request = expect(
        &mut server,
        Method::POST,
        "/apis/batch/v1/namespaces/weir-r4/jobs",
        respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            status(422, "Invalid", "Job.batch \"weir-count-results-x\" is invalid: spec.template.spec.containers[0].image: Required value"),
        ),
    )
    .await;
    let body = request.into_body().collect_bytes().await.unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["metadata"]["generateName"], "weir-count-results-");
    let error = run.await.unwrap().unwrap_err().to_string();
    assert!(
        error.starts_with("Kubernetes API: creating a Job: Job.batch"),
        "{error}"
    );
    assert!(error.ends_with("(422 Invalid)"), "{error}");
}

#[tokio::test]
async fn the_diagnosis_lists_the_instances_pods_and_their_events() {
    let (kube, mut server) = mocked("weir-r5");
    let why = tokio::spawn(async move { kube.why_not_ready("StatefulSet", "zk").await });
    let pods = expect(
        &mut server,
        Method::GET,
        "/api/v1/namespaces/weir-r5/pods",
        respond(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
                "metadata": {"name": "zk-0"},
                "status": {"phase": "Pending", "containerStatuses": [{
                    "name": "zookeeper", "ready": false, "restartCount": 3, "image": "zookeeper:3.8", "imageID": "",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}
                }]}
            }]}),
        ),
    )
    .await;
    assert_eq!(
        pods.uri().query(),
        Some("&labelSelector=app.kubernetes.io%2Finstance%3Dzk")
    );
    let events = expect(
        &mut server,
        Method::GET,
        "/api/v1/namespaces/weir-r5/events",
        respond(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [{
                "metadata": {"name": "zk-0.1"}, "involvedObject": {"kind": "Pod", "name": "zk-0"},
                "reason": "BackOff", "message": "Back-off restarting failed container zookeeper"
            }]}),
        ),
    )
    .await;
    assert!(events
        .uri()
        .query()
        .unwrap_or_default()
        .contains("fieldSelector=involvedObject.kind%3DPod%2CinvolvedObject.name%3Dzk-0"));
    assert_eq!(
        why.await.unwrap(),
        "pod `zk-0` is not ready: container `zookeeper` waiting: CrashLoopBackOff (back-off 40s restarting failed container) [events: BackOff: Back-off restarting failed container zookeeper]"
    );
}

#[tokio::test]
async fn without_pods_the_diagnosis_gives_the_controllers_events() {
    let (kube, mut server) = mocked("weir-r6");
    let why = tokio::spawn(async move { kube.why_not_ready("StatefulSet", "big-zk").await });
    expect(
        &mut server,
        Method::GET,
        "/api/v1/namespaces/weir-r6/pods",
        respond(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
        ),
    )
    .await;
    let events = expect(
        &mut server,
        Method::GET,
        "/api/v1/namespaces/weir-r6/events",
        respond(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [{
                "metadata": {"name": "big-zk.1"}, "involvedObject": {"kind": "StatefulSet", "name": "big-zk"},
                "reason": "FailedCreate",
                "message": "create Pod big-zk-0 in StatefulSet big-zk failed error: pods \"big-zk-0\" is forbidden: exceeded quota"
            }]}),
        ),
    )
    .await;
    assert!(events.uri().query().unwrap_or_default().contains(
        "fieldSelector=involvedObject.kind%3DStatefulSet%2CinvolvedObject.name%3Dbig-zk"
    ));
    assert_eq!(
        why.await.unwrap(),
        "no pod of it exists (its controller could not create one) [events: FailedCreate: create Pod big-zk-0 in StatefulSet big-zk failed error: pods \"big-zk-0\" is forbidden: exceeded quota]"
    );
}
