//! Golden files of the Kubernetes objects rendered for every catalog service.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test -p weir-catalog`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use weir_catalog::catalog::{find, services};
use weir_catalog::kubernetes::{render, KubeInstance, KubeObject};

fn sample_params(service: &str) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match service {
        "topology-runner" => &[("file", "bitcoin-yuan.yaml"), ("params", "{threshold: 50}")],
        "chart-server" => &[
            ("kafka", "kafka-server-1"),
            (
                "windows",
                "[{topic: rates, y: rate, title: 'BTC rate, CNY'}]",
            ),
        ],
        "http-source" => &[
            ("url", "https://api.coinbase.com/v2/prices/BTC-CNY/spot"),
            ("topic", "BitCoinExchangeTopic"),
        ],
        "replay-source" => &[
            ("file", "btcusd-monthly.csv"),
            ("topic", "raw"),
            ("interval", "500ms"),
        ],
        _ => &[],
    };
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sample_files(service: &str) -> BTreeMap<String, String> {
    match service {
        "topology-runner" => BTreeMap::from([("topology.yaml".into(), "name: t\n".into())]),
        "replay-source" => BTreeMap::from([(
            "btcusd-monthly.csv".into(),
            ",Close\n2012-01-31,5.55\n".into(),
        )]),
        _ => BTreeMap::new(),
    }
}

fn rendered(service_name: &str) -> Vec<KubeObject> {
    let service = find(service_name).unwrap();
    let params = service.validate(&sample_params(service_name)).unwrap();
    let dependencies = BTreeMap::from([
        (
            "zookeeper".to_string(),
            "zookeeper-server-1:2181".to_string(),
        ),
        ("kafka".to_string(), "kafka-server-1:9092".to_string()),
    ]);
    let name = format!("{service_name}-1");
    render(&KubeInstance {
        name: &name,
        service: &service,
        params: &params,
        dependencies,
        files: sample_files(service_name),
        run_id: Some("run-42"),
    })
}

#[test]
fn rendered_objects_match_golden_files() {
    // At run time: clones share the target directory (see tests/src/lib.rs `repo_root`).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let dir = manifest_dir.join("tests/golden");
    let mut mismatched = Vec::new();
    for service in services() {
        let objects = rendered(service.kind.name());
        let text = serde_json::to_string_pretty(&objects).unwrap() + "\n";
        let path = dir.join(format!("{}.json", service.kind.name()));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
        } else {
            let golden = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
            if golden != text {
                mismatched.push(path.display().to_string());
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "rendered objects differ from {mismatched:?}; review and regenerate with UPDATE_GOLDEN=1"
    );
}

#[test]
fn every_object_carries_the_standard_labels() {
    for service in services() {
        for object in rendered(service.kind.name()) {
            let value = serde_json::to_value(&object).unwrap();
            let labels = &value["metadata"]["labels"];
            assert_eq!(
                labels["app.kubernetes.io/name"],
                service.kind.name(),
                "{}",
                object.kind()
            );
            assert_eq!(
                labels["app.kubernetes.io/instance"],
                format!("{}-1", service.kind.name())
            );
            assert_eq!(labels["app.kubernetes.io/managed-by"], "weir");
            assert_eq!(labels["weir.dev/run"], "run-42");
        }
    }
}

#[test]
fn workloads_request_resources_and_servers_probe_readiness() {
    for service in services() {
        for object in rendered(service.kind.name()) {
            let value = serde_json::to_value(&object).unwrap();
            let Some(containers) = value["spec"]["template"]["spec"]["containers"].as_array()
            else {
                continue;
            };
            let container = &containers[0];
            assert!(
                container["resources"]["requests"]["memory"].is_string(),
                "{}",
                service.kind.name()
            );
            assert!(container["image"].is_string(), "{}", service.kind.name());
            if !service.ports.is_empty() {
                assert!(
                    container["readinessProbe"].is_object(),
                    "{} has a readiness probe",
                    service.kind.name()
                );
            }
        }
    }
}

#[test]
fn kraft_mode_has_no_zookeeper() {
    let service = find("kafka").unwrap();
    let params = service
        .validate(&[("mode".into(), "kraft".into())])
        .unwrap();
    let objects = render(&KubeInstance {
        name: "k",
        service: &service,
        params: &params,
        dependencies: BTreeMap::new(),
        files: BTreeMap::new(),
        run_id: None,
    });
    let text = serde_json::to_string(&objects).unwrap();
    assert!(text.contains("KAFKA_PROCESS_ROLES"));
    assert!(!text.contains("KAFKA_ZOOKEEPER_CONNECT"));
}

/// The variables of the Kafka container of a rendered cluster, and its StatefulSet.
fn kafka_cluster(params: &[(&str, &str)]) -> (Vec<(String, String)>, serde_json::Value) {
    let service = find("kafka").unwrap();
    let given: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let params = service.validate(&given).unwrap();
    let objects = render(&KubeInstance {
        name: "k",
        service: &service,
        params: &params,
        dependencies: BTreeMap::from([("zookeeper".to_string(), "zk:2181".to_string())]),
        files: BTreeMap::new(),
        run_id: Some("run-42"),
    });
    let set = objects
        .iter()
        .find(|o| o.kind() == "StatefulSet")
        .map(|o| serde_json::to_value(o).unwrap())
        .expect("a StatefulSet");
    let env = set["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| {
            let value = var["value"].as_str().map(str::to_string);
            let field = var["valueFrom"]["fieldRef"]["fieldPath"].as_str();
            let value = value.or_else(|| field.map(|f| format!("field {f}")));
            (var["name"].as_str().unwrap().to_string(), value.unwrap())
        })
        .collect();
    (env, set)
}

#[test]
fn a_kraft_cluster_of_three_is_three_voters_sharing_one_cluster_id() {
    let (env, set) = kafka_cluster(&[("replicas", "3"), ("mode", "kraft")]);
    let env: BTreeMap<_, _> = env.into_iter().collect();
    assert_eq!(set["spec"]["replicas"], 3);
    assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");
    assert_eq!(set["spec"]["serviceName"], "k-headless");
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        "0@k-0.k-headless:9093,1@k-1.k-headless:9093,2@k-2.k-headless:9093"
    );
    assert_eq!(env["KAFKA_NODE_ID"], "$(WEIR_POD_INDEX)");
    assert_eq!(
        env["WEIR_POD_INDEX"],
        "field metadata.labels['apps.kubernetes.io/pod-index']"
    );
    assert_eq!(env["CLUSTER_ID"].len(), 22);
    assert_eq!(env["KAFKA_DEFAULT_REPLICATION_FACTOR"], "3");
    assert_eq!(env["KAFKA_MIN_INSYNC_REPLICAS"], "2");
    assert_eq!(env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"], "false");
    assert!(!env.contains_key("KAFKA_ZOOKEEPER_CONNECT"));
}

#[test]
fn a_zookeeper_mode_cluster_takes_broker_ids_from_pod_ordinals() {
    let (ordered, set) = kafka_cluster(&[("replicas", "3")]);
    // Kubernetes expands `$(VAR)` only for variables defined before the one using it.
    let position = |name: &str| ordered.iter().position(|(n, _)| n == name).unwrap();
    assert!(position("WEIR_POD_INDEX") < position("KAFKA_BROKER_ID"));
    assert!(position("WEIR_POD_IP") < position("KAFKA_ADVERTISED_LISTENERS"));
    let env: BTreeMap<_, _> = ordered.into_iter().collect();
    assert_eq!(set["spec"]["replicas"], 3);
    assert_eq!(env["KAFKA_BROKER_ID"], "$(WEIR_POD_INDEX)");
    assert_eq!(env["KAFKA_ZOOKEEPER_CONNECT"], "zk:2181");
    assert_eq!(
        env["KAFKA_ADVERTISED_LISTENERS"],
        "PLAINTEXT://$(WEIR_POD_IP):9092"
    );
    let (single, _) = kafka_cluster(&[]);
    let single: BTreeMap<_, _> = single.into_iter().collect();
    assert_eq!(single["KAFKA_DEFAULT_REPLICATION_FACTOR"], "1");
    assert_eq!(single["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"], "1");
}
