//! [`KubernetesRuntime`]: the [`Runtime`] seam on a cluster. A run's instances live in a
//! namespace of its own (`weir-<run id>`), standalone ones in one shared namespace; the
//! cluster's labels are the record of what exists. Data-path steps run as Jobs next to Kafka,
//! HTTP interfaces are reached through the API server's port-forward.

use crate::runtime::LogSpan;
use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;
use weir_catalog::catalog::{self, WEIR_IMAGE};
use weir_catalog::kubernetes::{in_cluster_endpoint, workload_kind};
use weir_contracts::service_kind::ServiceKind;

use super::cluster::ClusterNamespace;
use super::forward::forward;
use super::gc::{collect_namespaces, owner_annotations};
use super::jobs::{self, Step, NO_REPORT};
use super::plan::{plan, Request};
use super::{ownership_labels, run_namespace, KubeError};
use crate::home::WeirHome;
use crate::runtime::{
    combined_log, progress, Backend, DataReport, DataStep, GcReport, HttpAccess, Instance,
    InstanceState, ProvisionRequest, Provisioned, Runtime, RuntimeError, Scope, StepOutcome,
};
use crate::store::{ClusterInstanceRecord, Store};
use crate::time::now_unix;

/// How long deleting a namespace may take.
const NAMESPACE_DELETE_TIMEOUT: Duration = Duration::from_secs(180);
/// Scheduling and image start-up a Job may take on top of its own deadline.
const JOB_SLACK: Duration = Duration::from_secs(60);
/// What a verify Job leaves of its step's time for its own start and report.
const VERIFY_JOB_MARGIN: Duration = Duration::from_secs(15);
/// The most a ConfigMap of change events may hold (Kubernetes refuses more than 1 MiB with
/// its metadata).
const MAX_CONFIG_MAP_BYTES: usize = 1_000_000;

/// A node whose pods kwok only pretends to run.
fn is_simulated(node: &k8s_openapi::api::core::v1::Node) -> bool {
    let annotated = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kwok.x-k8s.io/node"))
        .is_some_and(|v| v == "fake");
    let fake_kubelet = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .is_some_and(|info| info.kubelet_version == "fake");
    annotated || fake_kubelet
}

/// What the Kubernetes backend needs besides the kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeOptions {
    /// The image carrying `weir`, for Jobs and for services that run `weir` and were not
    /// given an image of their own.
    pub weir_image: String,
    /// Where standalone instances (`weir up`) live.
    pub standalone_namespace: String,
}

/// A cluster, reached with the usual kubeconfig discovery.
#[derive(Clone)]
pub struct KubernetesRuntime {
    client: Client,
    options: KubeOptions,
    home: WeirHome,
    /// Read from the cluster once, at the first provision.
    image_defaults: tokio::sync::OnceCell<BTreeMap<ServiceKind, String>>,
}

impl std::fmt::Debug for KubernetesRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesRuntime")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Where a cluster names the images of its catalog services (`service: image`), such as
/// the local sandbox's own builds of Kafka and ZooKeeper; `kube-public` is readable by all.
pub const IMAGE_DEFAULTS: (&str, &str) = ("kube-public", "weir-images");

impl KubernetesRuntime {
    /// The image of each service not given one: the cluster's [`IMAGE_DEFAULTS`] where it
    /// has them, and the `weir` image for the services that run `weir`.
    async fn image_defaults(&self) -> BTreeMap<ServiceKind, String> {
        self.image_defaults
            .get_or_init(|| self.read_image_defaults())
            .await
            .clone()
    }

    async fn read_image_defaults(&self) -> BTreeMap<ServiceKind, String> {
        let (namespace, name) = IMAGE_DEFAULTS;
        let configured = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
            self.client.clone(),
            namespace,
        )
        .get_opt(name)
        .await;
        let mut images = match configured {
            Ok(map) => {
                let data = map.and_then(|map| map.data).unwrap_or_default();
                let mut images = BTreeMap::new();
                for (service, image) in data {
                    match ServiceKind::parse(&service) {
                        Ok(kind) => {
                            images.insert(kind, image);
                        }
                        Err(unknown) => progress(format!(
                            "  WARNING: ConfigMap {namespace}/{name} names an image for `{service}`, which is not used: {unknown}"
                        )),
                    }
                }
                images
            }
            Err(error) => {
                progress(format!(
                    "  WARNING: cannot read ConfigMap {namespace}/{name} ({error}); services not given an `image` use the catalog's public images"
                ));
                BTreeMap::new()
            }
        };
        for definition in catalog::services() {
            let carries_weir = definition
                .params
                .iter()
                .any(|p| p.name == "image" && p.default == Some(WEIR_IMAGE));
            if carries_weir {
                images.insert(definition.kind, self.options.weir_image.clone());
            }
        }
        images
    }

    /// Whether `node` is one whose pods kwok only pretends to run (a node that cannot be
    /// read counts as real, so a result is never excused by mistake).
    async fn ran_on_simulated_node(&self, node: Option<&str>) -> bool {
        let Some(node) = node else { return false };
        kube::Api::<k8s_openapi::api::core::v1::Node>::all(self.client.clone())
            .get(node)
            .await
            .is_ok_and(|node| is_simulated(&node))
    }

    /// Connects with `KUBECONFIG`, `~/.kube/config` or the in-cluster service account.
    pub async fn connect(options: KubeOptions, home: WeirHome) -> Result<Self, KubeError> {
        let client = Client::try_default()
            .await
            .map_err(|e| KubeError::NoCluster(e.to_string()))?;
        Ok(Self {
            client,
            options,
            home,
            image_defaults: tokio::sync::OnceCell::new(),
        })
    }

    fn namespace_of(&self, scope: &Scope) -> String {
        match scope {
            Scope::Standalone => self.options.standalone_namespace.clone(),
            Scope::Run(id) => run_namespace(id),
        }
    }

    fn cluster(&self, scope: &Scope) -> ClusterNamespace {
        ClusterNamespace::new(self.client.clone(), &self.namespace_of(scope))
    }

    /// The container port of an instance's HTTP interface (its service's first port).
    async fn http_port(&self, cluster: &ClusterNamespace, name: &str) -> Result<u16, RuntimeError> {
        let service = cluster
            .instances()
            .await?
            .remove(name)
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))?;
        (catalog::definition(service).ports.first())
            .map(|p| p.container_port)
            .ok_or(RuntimeError::NoHttp {
                name: name.into(),
                service,
            })
    }

    fn run_label(scope: &Scope) -> Option<&str> {
        match scope {
            Scope::Standalone => None,
            Scope::Run(id) => Some(id),
        }
    }

    /// Instances of the scope's namespace, from their labels.
    async fn existing(&self, scope: &Scope) -> Result<BTreeMap<String, ServiceKind>, KubeError> {
        self.cluster(scope).instances().await
    }

    /// The in-cluster `host:port` of a Kafka instance of the scope.
    async fn kafka_endpoint(&self, scope: &Scope, name: &str) -> Result<String, RuntimeError> {
        let existing = self.existing(scope).await?;
        match existing.get(name) {
            Some(ServiceKind::Kafka) => {
                in_cluster_endpoint(name, &catalog::definition(ServiceKind::Kafka))
                    .ok_or_else(|| RuntimeError::KafkaWithoutPort(name.into()))
            }
            Some(&other) => Err(RuntimeError::WrongDependency {
                name: name.into(),
                expected: ServiceKind::Kafka,
                actual: other,
            }),
            None => Err(RuntimeError::NoKafka(name.into())),
        }
    }

    fn instance(&self, scope: &Scope, name: &str, service: ServiceKind) -> Instance {
        Instance {
            name: name.into(),
            service,
            state: InstanceState::Running,
            endpoint: in_cluster_endpoint(name, &catalog::definition(service)).unwrap_or_default(),
            backend: Backend::Kubernetes,
            run: Self::run_label(scope).map(str::to_string),
            namespace: Some(self.namespace_of(scope)),
            pid: None,
            log: String::new(),
            started: None,
            uses: Vec::new(),
            exit: None,
            restarts: 0,
            members: Vec::new(),
        }
    }

    /// Instance name → service of the Weir instances in `namespace`.
    pub async fn instances_in(
        &self,
        namespace: &str,
    ) -> Result<BTreeMap<String, ServiceKind>, KubeError> {
        ClusterNamespace::new(self.client.clone(), namespace)
            .instances()
            .await
    }

    /// The store of this machine, where the instances it starts on the cluster are recorded.
    fn store(&self) -> Result<Store, RuntimeError> {
        Ok(Store::open(&self.home.database())?)
    }

    fn record(&self, instance: &Instance) -> Result<(), RuntimeError> {
        self.store()?
            .record_cluster_instance(&ClusterInstanceRecord {
                namespace: instance.namespace.clone().unwrap_or_default(),
                name: instance.name.clone(),
                service: instance.service,
                endpoint: instance.endpoint.clone(),
                run_id: instance.run.clone(),
                created_at: now_unix(),
            })
            .map_err(RuntimeError::from)
    }

    /// Runs `future` unless `cancel` fires first.
    /// Puts the change events a verify Job compares with in a ConfigMap of the run's
    /// namespace, named after the task, and returns its name.
    async fn events_config_map(
        &self,
        scope: &Scope,
        label: &str,
        events: &std::path::Path,
    ) -> Result<String, RuntimeError> {
        let text = std::fs::read_to_string(events).map_err(|source| RuntimeError::Io {
            path: events.to_path_buf(),
            source,
        })?;
        if text.len() > MAX_CONFIG_MAP_BYTES {
            return Err(RuntimeError::EventsTooBigForConfigMap {
                path: events.to_path_buf(),
                bytes: text.len(),
                limit: MAX_CONFIG_MAP_BYTES,
            });
        }
        let mut name = format!("weir-verify-{}", label.to_ascii_lowercase());
        name.retain(|c| c.is_ascii_alphanumeric() || c == '-');
        name.truncate(56);
        let name = format!("{}-events", name.trim_end_matches('-'));
        let config_map = k8s_openapi::api::core::v1::ConfigMap {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(ownership_labels(Self::run_label(scope))),
                ..Default::default()
            },
            data: Some([(jobs::EVENTS_FILE.to_string(), text)].into()),
            ..Default::default()
        };
        self.cluster(scope)
            .apply(&weir_catalog::kubernetes::KubeObject::ConfigMap(config_map))
            .await?;
        Ok(name)
    }

    async fn cancellable<T>(
        cancel: &CancellationToken,
        future: impl std::future::Future<Output = Result<T, KubeError>>,
    ) -> Result<T, KubeError> {
        tokio::select! {
            result = future => result,
            _ = cancel.cancelled() => Err(KubeError::Interrupted),
        }
    }
}

#[async_trait::async_trait]
impl Runtime for KubernetesRuntime {
    fn how_to_open(&self, instance: &Instance) -> String {
        let namespace = instance.namespace.as_deref().unwrap_or("default");
        let port = instance
            .endpoint
            .rsplit_once(':')
            .map_or("80", |(_, port)| port.trim_end_matches('/'));
        format!(
            "`kubectl port-forward -n {namespace} deploy/{} {port}`, then open \
             http://127.0.0.1:{port}/",
            instance.name
        )
    }

    fn backend(&self) -> Backend {
        Backend::Kubernetes
    }

    fn namespace(&self, scope: &Scope) -> Option<String> {
        Some(self.namespace_of(scope))
    }

    async fn simulation(&self) -> Result<Option<String>, RuntimeError> {
        let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(self.client.clone())
            .list(&Default::default())
            .await
            .map_err(KubeError::api("listing nodes"))?;
        let (simulated, real): (Vec<_>, Vec<_>) =
            nodes.items.iter().partition(|node| is_simulated(node));
        Ok(match (simulated.len(), real.len()) {
            (_, 0) => Some(format!(
                "every node of the cluster ({}) is simulated by kwok: no container runs, so \
                 what the workloads do cannot be seen",
                simulated.len()
            )),
            _ => None,
        })
    }

    async fn open_run(&self, run_id: &str, workflow: &str) -> Result<(), RuntimeError> {
        let scope = Scope::Run(run_id.into());
        let mut annotations = owner_annotations();
        annotations.insert("weir.dev/workflow".into(), workflow.into());
        self.cluster(&scope)
            .ensure_namespace(ownership_labels(Some(run_id)), annotations)
            .await?;
        progress(format!(
            "  namespace `{}` created",
            self.namespace_of(&scope)
        ));
        Ok(())
    }

    async fn provision(&self, request: ProvisionRequest) -> Result<Provisioned, RuntimeError> {
        let scope = &request.scope;
        let cluster = self.cluster(scope);
        if scope == &Scope::Standalone {
            // The standalone namespace is created on first use.
            cluster
                .ensure_namespace(ownership_labels(None), BTreeMap::new())
                .await?;
        }
        let existing = self.existing(scope).await?;
        let name = request.name.clone().unwrap_or_else(|| {
            (1..)
                .map(|n| format!("{}-{n}", request.service))
                .find(|candidate| !existing.contains_key(candidate))
                .expect("an unused name")
        });
        if let Some(&service) = existing.get(&name) {
            if scope != &Scope::Standalone && service == request.service {
                progress(format!("  reusing `{name}` of this run"));
                return Ok(Provisioned::Reused(Box::new(
                    self.instance(scope, &name, service),
                )));
            }
            return Err(RuntimeError::NameInUse {
                what: format!("a {service} in namespace `{}`", self.namespace_of(scope)),
                name,
            });
        }
        let planned = plan(
            &Request {
                service: request.service,
                name,
                params: request.params.clone(),
                images: self.image_defaults().await,
            },
            &existing,
        )?;
        let mut started = Vec::new();
        for item in planned {
            progress(format!(
                "  applying {} `{}` in `{}` and waiting up to {:?} until it is ready",
                item.definition.kind,
                item.name,
                cluster.namespace(),
                crate::runtime::whole_seconds(request.ready_timeout)
            ));
            Self::cancellable(
                &request.cancel,
                cluster.create(&item, Self::run_label(scope), request.ready_timeout),
            )
            .await?;
            progress(format!(
                "  {} `{}` is ready",
                item.definition.kind, item.name
            ));
            let mut instance = self.instance(scope, &item.name, item.definition.kind);
            // Restarts kubelet made while it came up are not the run's to count.
            instance.restarts = cluster
                .pod_health()
                .await?
                .remove(&item.name)
                .map_or(0, |pods| pods.restarts);
            self.record(&instance)?;
            started.push(instance);
        }
        Ok(Provisioned::Started(started))
    }

    async fn scale(
        &self,
        scope: &Scope,
        name: &str,
        replicas: u32,
        ready_timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        let cluster = self.cluster(scope);
        let service = (cluster.instances().await?.remove(name))
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))?;
        let definition = catalog::definition(service);
        RuntimeError::check_scale(&definition, name, replicas)?;
        let kind = workload_kind(&definition);
        progress(format!(
            "  scaling {service} `{name}` in `{}` to {replicas} replicas and waiting up to {:?} \
             until they are ready",
            cluster.namespace(),
            crate::runtime::whole_seconds(ready_timeout)
        ));
        let started = std::time::Instant::now();
        cluster.scale(kind, name, replicas).await?;
        Self::cancellable(cancel, async {
            cluster.await_ready(kind, name, ready_timeout).await?;
            cluster.await_pod_count(name, replicas, ready_timeout).await
        })
        .await?;
        progress(format!(
            "  {service} `{name}`: {replicas} of {replicas} replicas ready ({:.1}s)",
            started.elapsed().as_secs_f64()
        ));
        (self.instances(Some(scope)).await?.into_iter())
            .find(|instance| instance.name == name)
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))
    }

    async fn stop(&self, scope: &Scope, name: &str) -> Result<Vec<String>, RuntimeError> {
        let cluster = self.cluster(scope);
        if !cluster.instances().await?.contains_key(name) {
            return Err(RuntimeError::NoSuchInstance(name.into()));
        }
        cluster.delete_instance(name).await?;
        self.store()?
            .forget_cluster_instances(cluster.namespace(), Some(name))?;
        Ok(vec![name.into()])
    }

    async fn teardown(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        let cluster = self.cluster(scope);
        match scope {
            Scope::Run(_) => {
                progress(format!(
                    "  deleting namespace `{}` and waiting until it is gone",
                    cluster.namespace()
                ));
                cluster.delete_namespace(NAMESPACE_DELETE_TIMEOUT).await?;
                progress(format!("  namespace `{}` is gone", cluster.namespace()));
                self.store()?
                    .forget_cluster_instances(cluster.namespace(), None)?;
                Ok(vec![cluster.namespace().to_string()])
            }
            Scope::Standalone => {
                let names: Vec<String> = cluster.instances().await?.into_keys().collect();
                let store = self.store()?;
                for name in &names {
                    cluster.delete_instance(name).await?;
                    store.forget_cluster_instances(cluster.namespace(), Some(name))?;
                }
                Ok(names)
            }
        }
    }

    async fn instances(&self, scope: Option<&Scope>) -> Result<Vec<Instance>, RuntimeError> {
        let scope = scope.cloned().unwrap_or(Scope::Standalone);
        let cluster = self.cluster(&scope);
        let mut health = cluster.pod_health().await?;
        Ok(cluster
            .instances()
            .await?
            .iter()
            .map(|(name, service)| {
                let pods = health.remove(name).unwrap_or_default();
                Instance {
                    state: pods.state(),
                    exit: pods.exit().or(pods.last_exit),
                    restarts: pods.restarts,
                    members: Vec::new(),
                    ..self.instance(&scope, name, *service)
                }
            })
            .collect())
    }

    async fn gc(&self) -> Result<GcReport, RuntimeError> {
        let found = collect_namespaces(
            &self.client,
            &self.home.database(),
            NAMESPACE_DELETE_TIMEOUT,
        )
        .await?;
        let store = self.store()?;
        for namespace in found.deleted.keys() {
            store.forget_cluster_instances(namespace, None)?;
        }
        Ok(GcReport {
            namespaces_deleted: found.deleted,
            namespaces_kept: found.kept,
            runs_failed: found.runs_failed,
            ..GcReport::default()
        })
    }

    async fn logs(&self, scope: &Scope, name: &str, span: LogSpan) -> Result<String, RuntimeError> {
        let tail_lines = match span {
            LogSpan::Whole => None,
            LogSpan::Last(lines) => Some(i64::try_from(lines).unwrap_or(i64::MAX)),
        };
        Ok(combined_log(
            self.cluster(scope).logs(name, tail_lines).await?,
        ))
    }

    async fn data_step(
        &self,
        scope: &Scope,
        label: &str,
        step: &DataStep,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<StepOutcome, RuntimeError> {
        let brokers = self.kafka_endpoint(scope, step.kafka()).await?;
        let job_step = match step.clone() {
            DataStep::CreateTopics {
                topics, partitions, ..
            } => Step::CreateTopics {
                brokers,
                topics,
                partitions,
            },
            DataStep::Wait {
                topic, messages, ..
            } => Step::Wait {
                brokers,
                topic,
                messages,
                timeout,
            },
            DataStep::Count { topics, .. } => Step::Count { brokers, topics },
            DataStep::VerifyTable {
                topic,
                events,
                table,
                primary_keys,
                ..
            } => Step::VerifyTable {
                brokers,
                topic,
                table,
                primary_keys,
                events_config_map: self.events_config_map(scope, label, &events).await?,
                // The Job compares until the target matches, within the step's time.
                wait: timeout.saturating_sub(VERIFY_JOB_MARGIN),
            },
        };
        let job = jobs::render(
            &job_step,
            label,
            &self.options.weir_image,
            Self::run_label(scope),
            timeout,
        );
        // The Job's own deadline ends it; the wait allows for scheduling on top.
        let outcome = Self::cancellable(
            cancel,
            self.cluster(scope).run_job(&job, timeout + JOB_SLACK),
        )
        .await?;
        match outcome.report {
            Some(text) => match DataReport::read(step, &text) {
                Ok(report) => Ok(StepOutcome::Seen(report)),
                Err(source) => Err(RuntimeError::UnreadableReport {
                    label: label.into(),
                    text,
                    source,
                }),
            },
            // Only a simulated node may finish a Job without running it.
            None if self.ran_on_simulated_node(outcome.node.as_deref()).await => {
                Ok(StepOutcome::Unseen(NO_REPORT.into()))
            }
            None => Err(KubeError::JobFailed {
                job: outcome.job,
                why: format!(
                    "it completed on node `{}` without writing its report to {}: its result \
                     was not seen",
                    outcome.node.as_deref().unwrap_or("(none)"),
                    jobs::REPORT_PATH
                ),
            }
            .into()),
        }
    }

    async fn http(&self, scope: &Scope, name: &str) -> Result<HttpAccess, RuntimeError> {
        let cluster = self.cluster(scope);
        let port = self.http_port(&cluster, name).await?;
        let pod = cluster.pod_of(name).await?;
        forwarded_access(&cluster, &pod, port).await
    }

    async fn http_replicas(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<HttpAccess>, RuntimeError> {
        let cluster = self.cluster(scope);
        let port = self.http_port(&cluster, name).await?;
        let mut replicas = Vec::new();
        for pod in cluster.pods_of(name).await? {
            replicas.push(forwarded_access(&cluster, &pod, port).await?);
        }
        Ok(replicas)
    }
}

/// HTTP access to `port` of `pod`, through a port-forward held as long as the access lives.
async fn forwarded_access(
    cluster: &ClusterNamespace,
    pod: &str,
    port: u16,
) -> Result<HttpAccess, RuntimeError> {
    let forwarded = forward(cluster.pods(), pod, port).await?;
    Ok(HttpAccess::guarded(
        format!("http://{}", forwarded.local),
        forwarded,
    ))
}
