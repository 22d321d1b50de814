//! Catalog services as Kubernetes objects: pure functions from an instance description to
//! `k8s-openapi` types, tested without a cluster. Applying them is the orchestrator's job.
//!
//! Every object carries `app.kubernetes.io/name` (the service), `app.kubernetes.io/instance`
//! (the instance name) and `app.kubernetes.io/managed-by: weir`, plus `weir.dev/run` when the
//! instance belongs to a workflow run.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::command::{Placement, WeirCommand};
use crate::kafka_settings::{self, env_name, replication_settings, ZOOKEEPER_SESSION_TIMEOUT_MS};
use crate::service::{Params, Readiness, ServiceDefinition};
use weir_contracts::service_kind::ServiceKind;

/// What the Kubernetes realization of one instance is made from.
#[derive(Debug, Clone)]
pub struct KubeInstance<'a> {
    pub name: &'a str,
    pub service: &'a ServiceDefinition,
    pub params: &'a Params,
    /// Need parameter (e.g. `kafka`) → in-cluster `host:port` of the instance satisfying it.
    pub dependencies: BTreeMap<String, String>,
    /// Files the container reads (topology, recording), mounted from a ConfigMap at
    /// [`FILES_DIR`]: file name → contents.
    pub files: BTreeMap<String, String>,
    pub run_id: Option<&'a str>,
}

/// Where files of a [`KubeInstance`] appear inside its container.
pub const FILES_DIR: &str = "/etc/weir";

/// One rendered object.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum KubeObject {
    ConfigMap(ConfigMap),
    Service(Service),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
}

impl KubeObject {
    pub fn name(&self) -> &str {
        let metadata = match self {
            KubeObject::ConfigMap(o) => &o.metadata,
            KubeObject::Service(o) => &o.metadata,
            KubeObject::StatefulSet(o) => &o.metadata,
            KubeObject::Deployment(o) => &o.metadata,
        };
        metadata.name.as_deref().unwrap_or_default()
    }

    pub fn kind(&self) -> &'static str {
        match self {
            KubeObject::ConfigMap(_) => "ConfigMap",
            KubeObject::Service(_) => "Service",
            KubeObject::StatefulSet(_) => "StatefulSet",
            KubeObject::Deployment(_) => "Deployment",
        }
    }
}

/// The label naming the workflow run an object belongs to.
pub const RUN_LABEL: &str = "weir.dev/run";

/// The labels saying Weir manages an object (namespace, workload, Job), and for which run.
pub fn ownership_labels(run_id: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "weir".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "weir-sandbox".to_string(),
        ),
    ]);
    if let Some(run) = run_id {
        labels.insert(RUN_LABEL.into(), run.into());
    }
    labels
}

/// The labels every object of the instance carries.
pub fn labels(instance: &KubeInstance<'_>) -> BTreeMap<String, String> {
    let mut labels = selector_labels(instance);
    labels.extend(ownership_labels(instance.run_id));
    labels
}

fn selector_labels(instance: &KubeInstance<'_>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".into(),
            instance.service.kind.to_string(),
        ),
        ("app.kubernetes.io/instance".into(), instance.name.into()),
    ])
}

/// `host:port` by which other pods of the namespace reach the instance's first port.
pub fn in_cluster_endpoint(instance: &str, service: &ServiceDefinition) -> Option<String> {
    service
        .ports
        .first()
        .map(|p| format!("{instance}:{}", p.container_port))
}

/// The kind of the workload running the service: brokers and ZooKeeper get stable network
/// identities (StatefulSet); stateless roles do not need them (Deployment).
pub fn workload_kind(service: &ServiceDefinition) -> &'static str {
    if service.kind.is_stateful() {
        "StatefulSet"
    } else {
        "Deployment"
    }
}

/// Every object of the instance, in the order they should be applied.
pub fn render(instance: &KubeInstance<'_>) -> Vec<KubeObject> {
    let mut objects = Vec::new();
    if !instance.files.is_empty() {
        objects.push(KubeObject::ConfigMap(ConfigMap {
            metadata: metadata(instance, &format!("{}-files", instance.name)),
            data: Some(instance.files.clone()),
            ..ConfigMap::default()
        }));
    }
    let stateful = workload_kind(instance.service) == "StatefulSet";
    if !instance.service.ports.is_empty() {
        objects.push(KubeObject::Service(service(instance)));
        if stateful {
            objects.push(KubeObject::Service(headless_service(instance)));
        }
    }
    let pod = pod_template(instance);
    let selector = LabelSelector {
        match_labels: Some(selector_labels(instance)),
        ..LabelSelector::default()
    };
    if stateful {
        objects.push(KubeObject::StatefulSet(StatefulSet {
            metadata: metadata(instance, instance.name),
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas(instance.params)),
                service_name: Some(headless_name(instance.name)),
                // The members of a KRaft quorum need each other to become ready: started one
                // after another, the first would wait forever for the second.
                pod_management_policy: Some("Parallel".into()),
                selector,
                template: pod,
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }));
    } else {
        objects.push(KubeObject::Deployment(Deployment {
            metadata: metadata(instance, instance.name),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas(instance.params)),
                selector,
                template: pod,
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }));
    }
    objects
}

fn metadata(instance: &KubeInstance<'_>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(labels(instance)),
        ..ObjectMeta::default()
    }
}

fn service(instance: &KubeInstance<'_>) -> Service {
    Service {
        metadata: metadata(instance, instance.name),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(instance)),
            ports: Some(
                instance
                    .service
                    .ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.into()),
                        port: i32::from(p.container_port),
                        target_port: Some(IntOrString::Int(i32::from(p.container_port))),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            // A broker reaches itself at its advertised name (ZooKeeper-mode controller,
            // metadata answers) before it is ready: the name must resolve to it by then.
            publish_not_ready_addresses: (workload_kind(instance.service) == "StatefulSet")
                .then_some(true),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Pods of the instance (brokers, runner replicas): its `replicas` parameter, 1 when it has
/// none.
fn replicas(params: &Params) -> i32 {
    params.int("replicas").unwrap_or(1).max(1) as i32
}

/// The headless Service that gives each pod of a StatefulSet its own DNS name,
/// `<instance>-<ordinal>.<instance>-headless`.
pub fn headless_name(instance: &str) -> String {
    format!("{instance}-headless")
}

fn headless_service(instance: &KubeInstance<'_>) -> Service {
    let mut service = service(instance);
    service.metadata.name = Some(headless_name(instance.name));
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some("None".into());
    }
    service
}

fn pod_template(instance: &KubeInstance<'_>) -> PodTemplateSpec {
    let mut container = container(instance);
    let mut volumes = vec![Volume {
        name: "data".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "data".into(),
        mount_path: "/var/lib/weir".into(),
        ..VolumeMount::default()
    }];
    if !instance.files.is_empty() {
        volumes.push(Volume {
            name: "files".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{}-files", instance.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "files".into(),
            mount_path: FILES_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    container.volume_mounts = Some(mounts);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(instance)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

fn env(pairs: &[(&str, String)]) -> Option<Vec<EnvVar>> {
    Some(env_pairs(
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone())),
    ))
}

fn env_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<EnvVar> {
    pairs
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            ..EnvVar::default()
        })
        .collect()
}

/// What a pod knows of itself, from the downward API: its address and, in a StatefulSet, its
/// ordinal (the `apps.kubernetes.io/pod-index` label, Kubernetes 1.28 on). Variables listed
/// after these can use them as `$(WEIR_POD_INDEX)`.
fn pod_identity() -> Vec<EnvVar> {
    [
        ("WEIR_POD_IP", "status.podIP"),
        (
            "WEIR_POD_INDEX",
            "metadata.labels['apps.kubernetes.io/pod-index']",
        ),
    ]
    .into_iter()
    .map(|(name, field)| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    })
    .collect()
}

fn resources(cpu: &str, memory_mb: i64) -> ResourceRequirements {
    let requests = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.into())),
        ("memory".to_string(), Quantity(format!("{memory_mb}Mi"))),
    ]);
    let limits = BTreeMap::from([(
        "memory".to_string(),
        Quantity(format!("{}Mi", memory_mb * 2)),
    )]);
    ResourceRequirements {
        requests: Some(requests),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

fn exec_probe(command: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        initial_delay_seconds: Some(5),
        period_seconds: Some(10),
        timeout_seconds: Some(10),
        failure_threshold: Some(30),
        ..Probe::default()
    }
}

fn container_ports(instance: &KubeInstance<'_>) -> Option<Vec<ContainerPort>> {
    Some(
        instance
            .service
            .ports
            .iter()
            .map(|p| ContainerPort {
                name: Some(p.name.into()),
                container_port: i32::from(p.container_port),
                ..ContainerPort::default()
            })
            .collect(),
    )
}

fn dependency(instance: &KubeInstance<'_>, param: &str) -> String {
    instance
        .dependencies
        .get(param)
        .cloned()
        .unwrap_or_else(|| format!("{param}:0"))
}

fn container(instance: &KubeInstance<'_>) -> Container {
    let p = instance.params;
    let heap = p.int("heap_mb").unwrap_or(512);
    let image = p.str("image").map(str::to_string);
    let cpu = |default: &'static str| p.str("cpu").unwrap_or(default).to_string();
    let base = Container {
        name: instance.service.kind.to_string(),
        image,
        ports: container_ports(instance),
        ..Container::default()
    };
    match instance.service.kind {
        ServiceKind::ZooKeeper => Container {
            env: env(&[
                ("ZOO_4LW_COMMANDS_WHITELIST", "ruok,srvr,stat".into()),
                ("ZOO_ADMINSERVER_ENABLED", "false".into()),
                ("JVMFLAGS", format!("-Xmx{heap}m")),
            ]),
            readiness_probe: Some(exec_probe(&["sh", "-c", "zkServer.sh status"])),
            resources: Some(resources(&cpu("100m"), heap + 128)),
            ..base
        },
        ServiceKind::Kafka => {
            let brokers = replicas(p);
            // Clients are sent to each broker's pod address: reachable from every pod, and
            // from the machine of a cluster whose pod network it routes (the local sandbox).
            let mut vars = vec![
                (
                    "KAFKA_ADVERTISED_LISTENERS".to_string(),
                    "PLAINTEXT://$(WEIR_POD_IP):9092".to_string(),
                ),
                ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS".into(), "0".into()),
                (
                    "KAFKA_NUM_PARTITIONS".into(),
                    p.int("partitions").unwrap_or(1).to_string(),
                ),
                (
                    "KAFKA_AUTO_CREATE_TOPICS_ENABLE".into(),
                    p.bool("auto_create_topics").unwrap_or(true).to_string(),
                ),
                ("KAFKA_LOG_DIRS".into(), "/var/lib/weir/kafka".into()),
                (
                    "KAFKA_HEAP_OPTS".into(),
                    format!("-Xmx{heap}m -Xms{}m", (heap / 4).max(64)),
                ),
            ];
            vars.extend(
                replication_settings(brokers as u32)
                    .into_iter()
                    .map(|(property, value)| (env_name(property), value)),
            );
            if p.str("mode") == Some("kraft") {
                // Every broker is also a voter of the quorum, reached at its own DNS name.
                let voters = (0..brokers)
                    .map(|i| {
                        format!(
                            "{i}@{}-{i}.{}:9093",
                            instance.name,
                            headless_name(instance.name)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                vars.extend([
                    ("KAFKA_NODE_ID".into(), "$(WEIR_POD_INDEX)".into()),
                    ("KAFKA_PROCESS_ROLES".into(), "broker,controller".into()),
                    (
                        "KAFKA_LISTENERS".into(),
                        "PLAINTEXT://:9092,CONTROLLER://:9093".into(),
                    ),
                    (
                        "KAFKA_CONTROLLER_LISTENER_NAMES".into(),
                        "CONTROLLER".into(),
                    ),
                    ("KAFKA_CONTROLLER_QUORUM_VOTERS".into(), voters),
                    (
                        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP".into(),
                        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into(),
                    ),
                    // One id for every member of the cluster, the same for every render.
                    (
                        "CLUSTER_ID".into(),
                        kafka_settings::cluster_id(&(instance.run_id, instance.name)),
                    ),
                ]);
            } else {
                vars.extend([
                    ("KAFKA_BROKER_ID".into(), "$(WEIR_POD_INDEX)".into()),
                    ("KAFKA_LISTENERS".into(), "PLAINTEXT://:9092".into()),
                    (
                        "KAFKA_ZOOKEEPER_CONNECT".into(),
                        dependency(instance, "zookeeper"),
                    ),
                    (
                        "KAFKA_ZOOKEEPER_SESSION_TIMEOUT_MS".into(),
                        ZOOKEEPER_SESSION_TIMEOUT_MS.to_string(),
                    ),
                ]);
            }
            let mut env = pod_identity();
            env.extend(env_pairs(vars));
            Container {
                env: Some(env),
                readiness_probe: Some(exec_probe(&[
                    "sh",
                    "-c",
                    "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092",
                ])),
                resources: Some(resources(&cpu("250m"), heap + 256)),
                ..base
            }
        }
        weir_service => {
            // The runner reads its topology, the replay source its recording, from the
            // ConfigMap mounted at FILES_DIR; the recording keeps its file name (and format).
            let file = match weir_service {
                ServiceKind::TopologyRunner => Some(format!("{FILES_DIR}/topology.yaml")),
                ServiceKind::ReplaySource => Some(format!(
                    "{FILES_DIR}/{}",
                    instance
                        .files
                        .keys()
                        .next()
                        .map(String::as_str)
                        .unwrap_or("recording.jsonl")
                )),
                _ => None,
            };
            let port = instance.service.ports.first();
            let needs_kafka = instance
                .service
                .needs
                .iter()
                .any(|n| n.service == ServiceKind::Kafka && n.applies(p));
            let placement = Placement {
                listen: port.map(|p| {
                    std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, p.container_port))
                }),
                kafka: needs_kafka.then(|| dependency(instance, "kafka")),
                file,
            };
            let Some(command) = WeirCommand::of(weir_service, p, &placement) else {
                return base;
            };
            let args = command.args();
            let readiness_probe = match (instance.service.readiness, port) {
                (Readiness::Http { path }, Some(port)) => Some(Probe {
                    http_get: Some(HTTPGetAction {
                        path: Some(path.into()),
                        port: IntOrString::Int(i32::from(port.container_port)),
                        ..HTTPGetAction::default()
                    }),
                    period_seconds: Some(5),
                    ..Probe::default()
                }),
                _ => None,
            };
            let memory = if port.is_some() { 64 } else { 32 };
            Container {
                args: Some(args),
                readiness_probe,
                resources: Some(resources(
                    &cpu(if port.is_some() { "100m" } else { "50m" }),
                    memory,
                )),
                ..base
            }
        }
    }
}
