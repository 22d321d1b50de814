//! The requests the Kubernetes runtime makes, in one namespace: server-side apply, readiness
//! awaited with watches (`await_condition`), Jobs, logs and namespace deletion.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_catalog::kubernetes::KubeObject;
use weir_contracts::service_kind::ServiceKind;

use super::health::PodHealth;
use super::plan::PlannedInstance;
use super::{diagnose, KubeError, FIELD_MANAGER};
use crate::runtime::whole_seconds;

const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
const SERVICE_LABEL: &str = "app.kubernetes.io/name";
/// How many lines of a crashed container's log an error quotes.
const CRASH_LOG_LINES: i64 = 15;
/// How long a new namespace may take to get its `default` ServiceAccount.
const SERVICE_ACCOUNT_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the cluster, working in one namespace.
#[derive(Clone)]
pub struct ClusterNamespace {
    client: Client,
    namespace: String,
}

impl std::fmt::Debug for ClusterNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNamespace")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub job: String,
    /// What the container wrote to its termination log; `None` when nothing came back.
    pub report: Option<String>,
    /// The node its pod was scheduled on, when one was.
    pub node: Option<String>,
}

impl ClusterNamespace {
    /// Connects with the usual discovery: `KUBECONFIG`, `~/.kube/config`, in-cluster.
    pub async fn connect(namespace: &str) -> Result<Self, KubeError> {
        let client = Client::try_default()
            .await
            .map_err(|e| KubeError::NoCluster(e.to_string()))?;
        Ok(Self::new(client, namespace))
    }

    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates (or updates) the namespace with these labels and annotations.
    pub async fn ensure_namespace(
        &self,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), KubeError> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let api: Api<Namespace> = Api::all(self.client.clone());
        server_side_apply(&api, &self.namespace, &namespace)
            .await
            .map_err(KubeError::api(format!(
                "creating namespace `{}`",
                self.namespace
            )))?;
        self.await_default_service_account().await
    }

    /// Pods are refused until the namespace's `default` ServiceAccount exists; the
    /// controller manager creates it shortly after the namespace. Waiting here keeps a
    /// workload's controller from backing off on refused pods.
    async fn await_default_service_account(&self) -> Result<(), KubeError> {
        let exists = await_condition(
            self.api::<ServiceAccount>(),
            "default",
            |account: Option<&ServiceAccount>| account.is_some(),
        );
        match tokio::time::timeout(SERVICE_ACCOUNT_TIMEOUT, exists).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(KubeError::Timeout {
                what: format!(
                    "the `default` ServiceAccount of `{}` (watch failed: {error})",
                    self.namespace
                ),
                timeout: SERVICE_ACCOUNT_TIMEOUT,
            }),
            Err(_) => Err(KubeError::Timeout {
                what: format!(
                    "the `default` ServiceAccount of `{}` (is kube-controller-manager running?)",
                    self.namespace
                ),
                timeout: SERVICE_ACCOUNT_TIMEOUT,
            }),
        }
    }

    /// Applies one rendered object with server-side apply.
    pub async fn apply(&self, object: &KubeObject) -> Result<(), KubeError> {
        let name = object.name();
        let result = match object {
            KubeObject::ConfigMap(o) => server_side_apply(&self.api::<ConfigMap>(), name, o).await,
            KubeObject::Service(o) => server_side_apply(&self.api::<Service>(), name, o).await,
            KubeObject::StatefulSet(o) => {
                server_side_apply(&self.api::<StatefulSet>(), name, o).await
            }
            KubeObject::Deployment(o) => {
                server_side_apply(&self.api::<Deployment>(), name, o).await
            }
        };
        result.map_err(KubeError::api(format!(
            "applying {} `{name}` in `{}`",
            object.kind(),
            self.namespace
        )))
    }

    /// Applies every object of a planned instance, then waits until its workload is ready.
    pub async fn create(
        &self,
        instance: &PlannedInstance,
        run_id: Option<&str>,
        ready_timeout: Duration,
    ) -> Result<(), KubeError> {
        for object in instance.objects(run_id) {
            self.apply(&object).await?;
        }
        let (kind, name) = instance.workload();
        self.await_ready(kind, name, ready_timeout).await
    }

    /// Waits (with a watch) until the workload has as many ready replicas as it wants. On
    /// timeout the error names each pod that is not ready and why.
    pub async fn await_ready(
        &self,
        kind: &'static str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let ready = async {
            match kind {
                "StatefulSet" => await_condition(
                    self.api::<StatefulSet>(),
                    name,
                    |s: Option<&StatefulSet>| {
                        s.is_some_and(|s| {
                            all_ready(
                                s.spec.as_ref().and_then(|spec| spec.replicas),
                                s.status.as_ref().and_then(|status| status.ready_replicas),
                            )
                        })
                    },
                )
                .await
                .map(|_| ()),
                _ => await_condition(self.api::<Deployment>(), name, |d: Option<&Deployment>| {
                    d.is_some_and(|d| {
                        all_ready(
                            d.spec.as_ref().and_then(|spec| spec.replicas),
                            d.status.as_ref().and_then(|status| status.ready_replicas),
                        )
                    })
                })
                .await
                .map(|_| ()),
            }
        };
        let selector = format!("{INSTANCE_LABEL}={name}");
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, ready) => outcome,
            why = self.first_stuck_pod(&selector) => {
                return Err(KubeError::CannotStart {
                    kind,
                    name: name.into(),
                    namespace: self.namespace.clone(),
                    why,
                })
            }
        };
        let timeout = whole_seconds(timeout);
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(KubeError::Timeout {
                what: format!("{kind} `{name}` (watch failed: {error})"),
                timeout,
            }),
            Err(_) => Err(KubeError::NotReady {
                kind,
                name: name.into(),
                namespace: self.namespace.clone(),
                timeout,
                why: self.why_not_ready(kind, name).await,
            }),
        }
    }

    /// Each pod of the instance that is not ready, with its conditions, containers and events.
    /// With no pod at all, the workload's own events say why its controller made none.
    pub async fn why_not_ready(&self, kind: &str, instance: &str) -> String {
        let why = self
            .describe_pods(&format!("{INSTANCE_LABEL}={instance}"))
            .await;
        if !why.starts_with(diagnose::NO_POD) {
            return why;
        }
        let events = diagnose::summarize_events(&self.events_of(kind, instance).await, 3);
        if events.is_empty() {
            why
        } else {
            format!("{why} [events: {}]", events.join(" | "))
        }
    }

    /// Watches the pods matching `selector` and resolves once one of them is stuck (see
    /// [`diagnose::stuck`]), saying why; with a crashed container, its last log lines. Never
    /// resolves while the pods are fine, so it is raced against the wait for readiness.
    async fn first_stuck_pod(&self, selector: &str) -> String {
        let pods = watcher(
            self.api::<Pod>(),
            watcher::Config::default().labels(selector),
        )
        .default_backoff()
        .applied_objects();
        let mut stuck = pods
            .filter_map(|pod| async move { diagnose::stuck(&pod.ok()?) })
            .boxed();
        let Some(stuck) = stuck.next().await else {
            return std::future::pending().await;
        };
        let mut why = format!("pod `{}`: {}", stuck.pod, stuck.problem);
        if stuck.crashed {
            why.push_str(&self.crash_log(&stuck.pod, &stuck.container).await);
        }
        why
    }

    /// The last lines the crashed container wrote before its latest restart, for an error.
    async fn crash_log(&self, pod: &str, container: &str) -> String {
        let params = LogParams {
            container: Some(container.into()),
            previous: true,
            tail_lines: Some(CRASH_LOG_LINES),
            ..LogParams::default()
        };
        match self.api::<Pod>().logs(pod, &params).await {
            Ok(log) if log.trim().is_empty() => "; it wrote nothing before crashing".into(),
            Ok(log) => format!(
                "; its last log lines before crashing:\n    {}",
                log.trim_end().lines().collect::<Vec<_>>().join("\n    ")
            ),
            Err(error) => format!("; its log cannot be read: {error}"),
        }
    }

    async fn describe_pods(&self, selector: &str) -> String {
        let pods = match self
            .api::<Pod>()
            .list(&ListParams::default().labels(selector))
            .await
        {
            Ok(pods) => pods.items,
            Err(error) => return format!("cannot list its pods: {error}"),
        };
        let mut described = Vec::new();
        for pod in pods {
            let events = self.events_of("Pod", name(&pod.metadata)).await;
            described.push((pod, events));
        }
        diagnose::describe(&described)
    }

    async fn events_of(&self, kind: &str, object: &str) -> Vec<Event> {
        self.api::<Event>()
            .list(&ListParams::default().fields(&format!(
                "involvedObject.kind={kind},involvedObject.name={object}"
            )))
            .await
            .map(|list| list.items)
            .unwrap_or_default()
    }

    /// Creates the Job, waits until it completes or fails (or `timeout`), and returns what
    /// its container reported.
    pub async fn run_job(&self, job: &Job, timeout: Duration) -> Result<JobOutcome, KubeError> {
        let jobs = self.api::<Job>();
        let created = jobs
            .create(&PostParams::default(), job)
            .await
            .map_err(KubeError::api("creating a Job"))?;
        let job_name = name(&created.metadata).to_string();
        let finished =
            |job: Option<&Job>| job_condition(job, "Complete") || job_condition(job, "Failed");
        let selector = job_selector(&job_name);
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, await_condition(jobs, &job_name, finished)) => outcome,
            why = self.first_stuck_pod(&selector) => {
                return Err(KubeError::JobFailed { job: job_name, why })
            }
        };
        let job = match outcome {
            Ok(Ok(job)) => job,
            Ok(Err(error)) => {
                return Err(KubeError::Timeout {
                    what: format!("Job `{job_name}` (watch failed: {error})"),
                    timeout,
                })
            }
            Err(_) => {
                return Err(KubeError::JobFailed {
                    job: job_name.clone(),
                    why: format!(
                        "still running after {timeout:?}: {}",
                        self.describe_pods(&job_selector(&job_name)).await
                    ),
                })
            }
        };
        let pods = self.job_pods(&job_name).await;
        let report = termination_message(&pods);
        let node = pods
            .iter()
            .find_map(|pod| pod.spec.as_ref()?.node_name.clone());
        if job_condition(job.as_ref(), "Failed") {
            let condition = job.as_ref().and_then(|j| {
                j.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "Failed")
                    .cloned()
            });
            let why = condition
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.reason.unwrap_or_default(),
                        c.message.unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "failed".into());
            return Err(KubeError::JobFailed {
                job: job_name,
                why: match report {
                    Some(report) => format!("{why}; it reported {report}"),
                    None => why,
                },
            });
        }
        Ok(JobOutcome {
            job: job_name,
            report,
            node,
        })
    }

    async fn job_pods(&self, job: &str) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default().labels(&job_selector(job)))
            .await
            .map(|list| list.items)
            .unwrap_or_default()
    }

    /// The instance's workloads: name → service, from their labels.
    pub async fn instances(&self) -> Result<BTreeMap<String, ServiceKind>, KubeError> {
        let selector = ListParams::default().labels("app.kubernetes.io/managed-by=weir");
        let mut found = BTreeMap::new();
        // An object whose service label names no service of this catalog (made by another
        // version of Weir) is refused out loud rather than left out of the namespace's view.
        let labels_of = |meta: &ObjectMeta| -> Result<Option<(String, ServiceKind)>, KubeError> {
            let labels = meta.labels.clone().unwrap_or_default();
            let (Some(instance), Some(service)) =
                (labels.get(INSTANCE_LABEL), labels.get(SERVICE_LABEL))
            else {
                return Ok(None);
            };
            Ok(Some((instance.clone(), ServiceKind::parse(service)?)))
        };
        for deployment in self
            .api::<Deployment>()
            .list(&selector)
            .await
            .map_err(KubeError::api("listing Deployments"))?
        {
            found.extend(labels_of(&deployment.metadata)?);
        }
        for set in self
            .api::<StatefulSet>()
            .list(&selector)
            .await
            .map_err(KubeError::api("listing StatefulSets"))?
        {
            found.extend(labels_of(&set.metadata)?);
        }
        Ok(found)
    }

    /// Each instance's pods, summed up: readiness, restarts, how the last container ended.
    pub async fn pod_health(&self) -> Result<BTreeMap<String, PodHealth>, KubeError> {
        let pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(INSTANCE_LABEL))
            .await
            .map_err(KubeError::api("listing the instances' pods"))?;
        let mut health: BTreeMap<String, PodHealth> = BTreeMap::new();
        for pod in &pods.items {
            let labels = pod.metadata.labels.as_ref();
            if let Some(instance) = labels.and_then(|l| l.get(INSTANCE_LABEL)) {
                health.entry(instance.clone()).or_default().add(pod);
            }
        }
        Ok(health)
    }

    /// Sets how many replicas the workload `kind` `name` wants, through its scale
    /// subresource (what `kubectl scale` does).
    pub async fn scale(
        &self,
        kind: &'static str,
        name: &str,
        replicas: u32,
    ) -> Result<(), KubeError> {
        let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } }));
        let params = PatchParams::default();
        let scaled = match kind {
            "StatefulSet" => {
                self.api::<StatefulSet>()
                    .patch_scale(name, &params, &patch)
                    .await
            }
            _ => {
                self.api::<Deployment>()
                    .patch_scale(name, &params, &patch)
                    .await
            }
        };
        scaled.map(|_| ()).map_err(KubeError::api(format!(
            "scaling {kind} `{name}` to {replicas}"
        )))
    }

    /// Waits until the instance has exactly `count` pods: once scaled down, until the pods
    /// of the replicas it dropped are gone.
    pub async fn await_pod_count(
        &self,
        instance: &str,
        count: u32,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pods = self.pods_of(instance).await?;
            if pods.len() == count as usize {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(KubeError::Timeout {
                    what: format!("`{instance}` to have {count} pods (it has {})", pods.len()),
                    timeout: whole_seconds(timeout),
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Deletes every object of one instance (its workload stops at once; pods follow).
    pub async fn delete_instance(&self, instance: &str) -> Result<(), KubeError> {
        let selector = ListParams::default().labels(&format!("{INSTANCE_LABEL}={instance}"));
        let params = DeleteParams::background();
        let context = |kind: &str| format!("deleting the {kind} of `{instance}`");
        self.api::<Deployment>()
            .delete_collection(&params, &selector)
            .await
            .map_err(KubeError::api(context("Deployments")))?;
        self.api::<StatefulSet>()
            .delete_collection(&params, &selector)
            .await
            .map_err(KubeError::api(context("StatefulSets")))?;
        self.api::<ConfigMap>()
            .delete_collection(&params, &selector)
            .await
            .map_err(KubeError::api(context("ConfigMaps")))?;
        // Services have no deletecollection verb.
        for service in self
            .api::<Service>()
            .list(&selector)
            .await
            .map_err(KubeError::api(context("Services")))?
        {
            self.api::<Service>()
                .delete(name(&service.metadata), &params)
                .await
                .map_err(KubeError::api(context("Service")))?;
        }
        Ok(())
    }

    /// The pods of an instance, by name.
    pub async fn pods_of(&self, instance: &str) -> Result<Vec<String>, KubeError> {
        let pods = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!("{INSTANCE_LABEL}={instance}")))
            .await
            .map_err(KubeError::api(format!("listing the pods of `{instance}`")))?;
        Ok(pods
            .items
            .iter()
            .map(|p| name(&p.metadata).to_string())
            .collect())
    }

    /// The first pod of an instance, for logs and port-forwarding.
    pub async fn pod_of(&self, instance: &str) -> Result<String, KubeError> {
        self.pods_of(instance)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| KubeError::NotReady {
                kind: "instance",
                name: instance.into(),
                namespace: self.namespace.clone(),
                timeout: Duration::ZERO,
                why: "it has no pod".into(),
            })
    }

    /// The logs of every pod of an instance (a topology's replicas, a Kafka cluster's
    /// brokers), each whole or its last `tail_lines` lines, by pod name. A pod whose log
    /// cannot be read says why in its place; only when no pod's can is it an error.
    pub async fn logs(
        &self,
        instance: &str,
        tail_lines: Option<i64>,
    ) -> Result<Vec<(String, String)>, KubeError> {
        let mut pods = self.pods_of(instance).await?;
        if pods.is_empty() {
            // Says that the instance has no pod, as the first pod's lookup does.
            self.pod_of(instance).await?;
        }
        pods.sort();
        let params = LogParams {
            tail_lines,
            ..LogParams::default()
        };
        let mut logs = Vec::with_capacity(pods.len());
        let mut first_error = None;
        for pod in pods {
            match self.api::<Pod>().logs(&pod, &params).await {
                Ok(text) => logs.push((pod, text)),
                Err(error) => {
                    let error = KubeError::api(format!("reading the log of pod `{pod}`"))(error);
                    logs.push((pod, format!("(its log could not be read: {error})\n")));
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if logs.len() == 1 => Err(error),
            _ => Ok(logs),
        }
    }

    pub fn pods(&self) -> Api<Pod> {
        self.api::<Pod>()
    }

    /// Deletes the namespace and waits until it is gone. Returns whether it existed.
    pub async fn delete_namespace(&self, timeout: Duration) -> Result<bool, KubeError> {
        delete_namespace(&self.client, &self.namespace, timeout).await
    }
}

/// How long a pod of a namespace being deleted may take to stop after SIGTERM. Everything the
/// pods held goes with the namespace, so a longer graceful stop saves nothing, and all of them
/// stop at once: a Kafka broker whose ZooKeeper went first, or a runner whose broker went
/// first, would otherwise wait out its whole 30 s before being killed.
const TEARDOWN_GRACE_SECONDS: u32 = 5;

/// Deletes a namespace and waits (with a watch) until it is gone; `false` if it was not there.
/// Its pods get [`TEARDOWN_GRACE_SECONDS`] to stop.
pub async fn delete_namespace(
    client: &Client,
    namespace: &str,
    timeout: Duration,
) -> Result<bool, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let existing = match api
        .get_opt(namespace)
        .await
        .map_err(KubeError::api(format!("reading namespace `{namespace}`")))?
    {
        Some(existing) => existing,
        None => return Ok(false),
    };
    let uid = existing.metadata.uid.clone().unwrap_or_default();
    if existing.metadata.deletion_timestamp.is_none() {
        match api.delete(namespace, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(true),
            Err(error) => {
                return Err(KubeError::api(format!("deleting namespace `{namespace}`"))(
                    error,
                ))
            }
        }
    }
    // The namespace is terminating, so no controller can replace the pods deleted here.
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let shortened = DeleteParams::background().grace_period(TEARDOWN_GRACE_SECONDS);
    if let Err(error) = pods
        .delete_collection(&shortened, &ListParams::default())
        .await
    {
        // The namespace still goes, only at the pods' own pace.
        tracing::warn!("shortening the grace period of the pods in `{namespace}`: {error}");
    }
    match tokio::time::timeout(timeout, await_condition(api, namespace, conditions::is_deleted(&uid))).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(error)) => Err(KubeError::Timeout {
            what: format!("namespace `{namespace}` to be deleted (watch failed: {error})"),
            timeout,
        }),
        Err(_) => Err(KubeError::Timeout {
            what: format!("namespace `{namespace}` to be deleted (`kubectl get all -n {namespace}` shows what remains)"),
            timeout,
        }),
    }
}

fn job_selector(job: &str) -> String {
    format!("batch.kubernetes.io/job-name={job}")
}

/// Whether as many replicas are ready as wanted (one when unset).
fn all_ready(wanted: Option<i32>, ready: Option<i32>) -> bool {
    ready.unwrap_or(0) >= wanted.unwrap_or(1)
}

fn job_condition(job: Option<&Job>, type_: &str) -> bool {
    job.and_then(|j| j.status.as_ref()?.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True")
        })
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

async fn server_side_apply<K>(api: &Api<K>, name: &str, object: &K) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + Serialize + std::fmt::Debug + kube::Resource,
{
    // k8s-openapi objects serialize with their apiVersion and kind, as apply needs.
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map(|_| ())
}

/// The termination message of a Job's container, if any of its pods wrote one.
fn termination_message(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
        .find(|m| !m.trim().is_empty())
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
