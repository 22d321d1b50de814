//! Runtimes start catalog services somewhere. [`Runtime`] is the one seam between the rest of
//! Weir and a backend: the engine, the CLI and the web API hold an `Arc<dyn Runtime>` and never
//! name a backend. [`local`] runs services as processes on this machine, [`kubernetes`] as
//! objects in a cluster.

mod data_step;
pub mod inventory;
pub mod kubernetes;
pub mod local;
pub mod topics;

pub use data_step::{CreatedTopics, DataReport, DataStep, StepOutcome};

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use weir_catalog::local::render::RenderError;
use weir_catalog::service::{ParamError, ServiceDefinition};
use weir_contracts::service_kind::{ServiceKind, UnknownService};
use weir_supervisor::process::ProcessError;

use crate::store::StoreError;

/// Where services run.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case", try_from = "String")]
#[strum(serialize_all = "kebab-case")]
pub enum Backend {
    /// Processes on this machine.
    #[default]
    Local,
    /// Objects in the cluster the kubeconfig names (KUBECONFIG, ~/.kube/config or in-cluster).
    Kubernetes,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A backend name that is neither `local` nor `kubernetes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`backend` is `local` or `kubernetes`, not `{0}`")]
pub struct UnknownBackend(pub String);

impl TryFrom<String> for Backend {
    type Error = UnknownBackend;

    fn try_from(text: String) -> Result<Self, UnknownBackend> {
        match text.as_str() {
            "local" => Ok(Backend::Local),
            "kubernetes" => Ok(Backend::Kubernetes),
            _ => Err(UnknownBackend(text)),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSpan {
    /// All of it (kept with a run's artifacts).
    Whole,
    /// Its last lines: what a person looks at. Only these are read, however long the log.
    Last(usize),
}

/// The logs of an instance's processes or pods as one text: a single one as it is, several
/// each under a `==> NAME <==` line (as `tail` prints several files), so that the log of every
/// replica of a topology is kept and shown, not only the first one's.
pub fn combined_log(parts: Vec<(String, String)>) -> String {
    if parts.len() == 1 {
        return parts
            .into_iter()
            .next()
            .map(|(_, text)| text)
            .unwrap_or_default();
    }
    let mut combined = String::new();
    for (name, text) in parts {
        if !combined.is_empty() && !combined.ends_with('\n') {
            combined.push('\n');
        }
        combined.push_str(&format!("==> {name} <==\n"));
        combined.push_str(&text);
    }
    combined
}

/// Whom an instance belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Started with `weir up`: runs until `weir down`.
    Standalone,
    /// Belongs to a workflow run; torn down with it, or by `weir gc` if the run's process dies.
    Run(String),
}

/// A request to start one service instance and the dependencies it lacks.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub service: ServiceKind,
    /// Instance name; `<service>-N` when not given.
    pub name: Option<String>,
    pub params: Vec<(String, String)>,
    pub scope: Scope,
    /// How long to wait for each instance to become ready.
    pub ready_timeout: Duration,
    /// Waiting for readiness gives up when this is cancelled (what was started is removed).
    pub cancel: CancellationToken,
}

/// What [`Runtime::provision`] did.
#[derive(Debug, Clone)]
pub enum Provisioned {
    /// These instances were started, dependencies first.
    Started(Vec<Instance>),
    /// An instance of that name and service was already running in the scope and is used
    /// as it is (and left running by the run's teardown when it belongs to someone else).
    Reused(Box<Instance>),
}

/// How an instance is doing, as its runtime sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum InstanceState {
    Starting,
    Running,
    Stopping,
    /// Recorded as running, but its process or pod is gone.
    Dead,
    /// Its backend could not be asked (a cluster that does not answer).
    Unknown,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One service instance, whatever runs it.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub name: String,
    pub service: ServiceKind,
    pub state: InstanceState,
    /// `host:port` for TCP services, `http://host:port` for HTTP ones, empty when it has no
    /// port. On Kubernetes, the address pods of its namespace use.
    pub endpoint: String,
    pub backend: Backend,
    /// The run it belongs to, if any.
    pub run: Option<String>,
    /// The Kubernetes namespace it lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub pid: Option<i32>,
    /// The local log file (empty on Kubernetes: `weir` reads pod logs through the API).
    pub log: String,
    /// RFC 3339, when known.
    pub started: Option<String>,
    pub uses: Vec<String>,
    /// How its process last ended ("killed by SIGKILL"; on Kubernetes, how its last
    /// restarted container ended), when that is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// Times its backend restarted it by itself (kubelet restarting a container; locally, a
    /// cluster's supervisor starting a broker again). Weir's own supervision of a run is not
    /// counted here.
    #[serde(skip_serializing_if = "is_zero")]
    pub restarts: u32,
    /// The processes making a multi-process local instance (a Kafka cluster's brokers),
    /// each with its pid and restarts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<weir_catalog::local::members::MemberStatus>,
}

impl Instance {
    /// Whom it belongs to: its run, or nobody (`weir up`).
    pub fn scope(&self) -> Scope {
        match &self.run {
            Some(run) => Scope::Run(run.clone()),
            None => Scope::Standalone,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An HTTP base URL leading to an instance's first port, valid while this value lives (on
/// Kubernetes it holds a port-forward open).
pub struct HttpAccess {
    pub url: String,
    _guard: Option<Box<dyn std::any::Any + Send>>,
}

impl HttpAccess {
    pub fn direct(url: String) -> Self {
        Self { url, _guard: None }
    }

    pub fn guarded(url: String, guard: impl std::any::Any + Send) -> Self {
        Self {
            url,
            _guard: Some(Box::new(guard)),
        }
    }
}

impl fmt::Debug for HttpAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAccess")
            .field("url", &self.url)
            .finish()
    }
}

/// What `weir gc` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Instances whose owner died: their processes were stopped.
    pub orphans_stopped: Vec<String>,
    /// Instances whose process was already gone: only their records and files were left.
    pub stale_removed: Vec<String>,
    /// Instance directories with no record.
    pub directories_removed: Vec<String>,
    /// Runs whose `weir` process died, now marked failed.
    pub runs_failed: Vec<String>,
    /// Namespaces deleted, with the reason.
    pub namespaces_deleted: BTreeMap<String, String>,
    /// Namespaces left alone (another host's runs), with the reason.
    pub namespaces_kept: BTreeMap<String, String>,
}

impl GcReport {
    pub fn is_empty(&self) -> bool {
        *self == GcReport::default()
    }
}

/// The seam between Weir and a backend. Everything the engine, the CLI and the web API do
/// with services goes through it.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;

    /// The Kubernetes namespace a scope's instances live in; `None` where there are none.
    fn namespace(&self, _scope: &Scope) -> Option<String> {
        None
    }

    /// How a person opens an HTTP instance in a browser while it runs (a chart server's
    /// page), said in one line: the engine prints it and names no backend itself.
    fn how_to_open(&self, instance: &Instance) -> String {
        format!("open {}/ in a browser", instance.endpoint)
    }

    /// Why this backend cannot show what its workloads do (nodes that run no container,
    /// such as kwok's), or `None` where every result comes from something that really ran.
    /// A run on a simulated backend may end with results unavailable, and says so.
    async fn simulation(&self) -> Result<Option<String>, RuntimeError> {
        Ok(None)
    }

    /// Prepares the place a run's instances go (a namespace on Kubernetes, labelled with the
    /// run and annotated with this process as its owner). Called once before the first task.
    async fn open_run(&self, run_id: &str, workflow: &str) -> Result<(), RuntimeError>;

    /// Starts an instance and, first, the dependencies it lacks, and waits until each is
    /// ready; or reuses a running instance of the same name and service in the scope. On
    /// failure everything this call started is removed again.
    async fn provision(&self, request: ProvisionRequest) -> Result<Provisioned, RuntimeError>;

    /// Starts a dead instance again as it was (same ports and data), and waits until it is
    /// ready. Backends that restart their workloads themselves refuse.
    async fn restart(
        &self,
        _scope: &Scope,
        name: &str,
        _ready_timeout: Duration,
        _cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        Err(RuntimeError::CannotRestart {
            name: name.into(),
            backend: self.backend(),
        })
    }

    /// Changes how many replicas of a running instance run (a topology's runners), and
    /// waits until that many are ready. Replicas that stay keep running as they are.
    async fn scale(
        &self,
        scope: &Scope,
        name: &str,
        replicas: u32,
        ready_timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError>;

    /// Stops one instance (and the dependencies it started itself). Returns the names stopped.
    async fn stop(&self, scope: &Scope, name: &str) -> Result<Vec<String>, RuntimeError>;

    /// Stops everything of the scope, users before what they use, and waits until it is
    /// gone — even after an interrupt. For a run this is its teardown.
    async fn teardown(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError>;

    /// The instances of a scope, or every instance this runtime can see.
    async fn instances(&self, scope: Option<&Scope>) -> Result<Vec<Instance>, RuntimeError>;

    /// Removes what crashed `weir` processes left behind.
    async fn gc(&self) -> Result<GcReport, RuntimeError>;

    /// The log of an instance, whole or its last lines.
    async fn logs(&self, scope: &Scope, name: &str, span: LogSpan) -> Result<String, RuntimeError>;

    /// Runs a data-path step against a Kafka instance of the scope, within `timeout`.
    async fn data_step(
        &self,
        scope: &Scope,
        label: &str,
        step: &DataStep,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<StepOutcome, RuntimeError>;

    /// Reaches an instance's HTTP interface (chart snapshots, runner status).
    async fn http(&self, scope: &Scope, name: &str) -> Result<HttpAccess, RuntimeError>;

    /// Reaches the HTTP interface of each replica of an instance (its processes locally, its
    /// pods on Kubernetes): one access for an instance that runs once.
    async fn http_replicas(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<HttpAccess>, RuntimeError>;
}

/// Errors starting, stopping or reaching service instances.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error("invalid parameters:\n  {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    InvalidParams(Vec<ParamError>),
    #[error("`{0}` is not a valid instance name: use lowercase letters, digits and dashes, starting with a letter (at most 40 characters)")]
    InvalidName(String),
    #[error("no instance named `{name}`; start a {service} first (`weir up {service} --name {name}`) or leave the parameter out to have one started")]
    MissingDependency { name: String, service: ServiceKind },
    #[error("instance `{name}` is a {actual}, not a {expected}")]
    WrongDependency {
        name: String,
        expected: ServiceKind,
        actual: ServiceKind,
    },
    #[error("instance `{0}` is not running; `weir instances` shows its state, `weir gc` clears dead ones")]
    DependencyDown(String),
    #[error("no instance named `{0}`; `weir instances` lists them")]
    NoSuchInstance(String),
    /// A data-path step names a Kafka instance the scope does not have.
    #[error("no Kafka instance named `{0}`; provision it in an earlier task")]
    NoKafka(String),
    #[error("an instance named `{name}` exists but is {what}; choose another name or `weir down {name}`")]
    NameInUse { name: String, what: String },
    #[error("instance `{name}` belongs to run {run}, which stops it when it ends; a run reuses only instances started with `weir up` and its own. Choose another instance name (e.g. `--set kafka_instance_name=...`), or `weir gc` if run {run} is gone")]
    OwnedByAnotherRun { name: String, run: String },
    #[error("`{name}` cannot be restarted by Weir on {backend}: the backend restarts its workloads itself")]
    CannotRestart { name: String, backend: Backend },
    #[error("`{name}` cannot be scaled: {why}")]
    CannotScale {
        name: String,
        why: weir_catalog::service::NotScalable,
    },
    #[error("`{name}` is used by {users}; stop those first, or use `weir down --all`")]
    InUse { name: String, users: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("preparing `{instance}` failed: {command}\n--- last lines of its log ---\n{tail}")]
    PrepareFailed {
        instance: String,
        command: String,
        tail: String,
    },
    #[error(transparent)]
    NotReady(Box<NotReady>),
    /// Creating topics failed.
    #[error("cannot create topics on {brokers}: {source}")]
    CreateTopics {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("creating topics on {brokers} took over {timeout:?}")]
    CreateTopicsTimedOut { brokers: String, timeout: Duration },
    #[error(transparent)]
    Count(Box<weir_topology::kafka::CountError>),
    #[error("cannot compare the target with the change events: {0}")]
    VerifyTable(Box<crate::topics::table::VerifyError>),
    /// The change events are too big for a ConfigMap, which a verify Job reads them from.
    #[error(
        "the change events {path} are {bytes} bytes: a ConfigMap holds at most {limit} bytes, \
         so verify-table compares them on the local backend only (`--backend local`), or run \
         `weir cdc verify` where the file is"
    )]
    EventsTooBigForConfigMap {
        path: PathBuf,
        bytes: usize,
        limit: usize,
    },
    #[error(transparent)]
    Wait(Box<topics::WaitError>),
    #[error("{} when the time limit passed", .0.held())]
    WaitTimedOut(topics::WaitReport),
    /// A Job ran a data step but its report does not read as that step's.
    #[error("the report of data step `{label}` cannot be read ({source}): {text}")]
    UnreadableReport {
        label: String,
        text: String,
        source: serde_json::Error,
    },
    #[error("Kafka instance `{0}` has no port to reach it by")]
    KafkaWithoutPort(String),
    #[error("instance `{name}` ({service}) has no HTTP interface")]
    NoHttp { name: String, service: ServiceKind },
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::KubeError),
    #[error("interrupted")]
    Interrupted,
}

impl RuntimeError {
    /// Whether instance `name` of `definition` may be given `replicas` replicas while it
    /// runs, on any backend (see [`ServiceDefinition::check_scale`]).
    pub fn check_scale(
        definition: &ServiceDefinition,
        name: &str,
        replicas: u32,
    ) -> Result<(), RuntimeError> {
        definition
            .check_scale(replicas)
            .map_err(|why| RuntimeError::CannotScale {
                name: name.into(),
                why,
            })
    }

    /// The wait was given up because the caller cancelled it.
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            RuntimeError::Interrupted
                | RuntimeError::Kubernetes(kubernetes::KubeError::Interrupted)
        )
    }
}

/// A service that did not become ready, with the end of its log to say why.
#[derive(Debug, thiserror::Error)]
#[error("{service} `{instance}` is not ready ({reason}; waited up to {timeout:?})\n--- last lines of {log} ---\n{tail}")]
pub struct NotReady {
    pub instance: String,
    pub service: ServiceKind,
    pub timeout: Duration,
    pub reason: weir_supervisor::readiness::NeverReady,
    pub log: String,
    pub tail: String,
}

/// Progress lines, on standard error (so `--json` output stays clean), with the time of day.
pub fn progress(message: impl AsRef<str>) {
    let now = crate::time::rfc3339(crate::time::now_unix());
    eprintln!("[{}] {}", &now[11..19], message.as_ref());
}

/// What it takes to reach either backend; [`connect`] picks one.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub backend: Backend,
    pub home: crate::home::WeirHome,
    /// The `weir` executable local services run.
    pub weir_exe: PathBuf,
    pub kubernetes: kubernetes::KubeOptions,
}

impl RuntimeConfig {
    /// The configuration of the runtime that runs `instance`: its backend, and on a cluster
    /// the namespace a standalone instance was started in.
    pub fn for_instance(&self, instance: &Instance) -> RuntimeConfig {
        let mut config = self.clone();
        config.backend = instance.backend;
        if let (None, Some(namespace)) = (&instance.run, &instance.namespace) {
            config.kubernetes.standalone_namespace = namespace.clone();
        }
        config
    }
}

/// The runtime of the configured backend: the only place that chooses one.
pub async fn connect(config: RuntimeConfig) -> Result<std::sync::Arc<dyn Runtime>, RuntimeError> {
    Ok(match config.backend {
        Backend::Local => {
            std::sync::Arc::new(local::LocalRuntime::new(config.home, config.weir_exe))
        }
        Backend::Kubernetes => std::sync::Arc::new(
            kubernetes::KubernetesRuntime::connect(config.kubernetes, config.home).await?,
        ),
    })
}

/// A duration rounded to whole seconds, for messages (`120s`, not `119.999998787s`).
pub(crate) fn whole_seconds(duration: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(duration.as_secs_f64().round() as u64)
}
