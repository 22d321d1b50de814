//! The Kubernetes runtime: catalog services as the objects `weir_catalog::kubernetes` renders,
//! applied with server-side apply into a namespace of their own (one per run), awaited with
//! watches, reached through the API server's port-forward, and removed by deleting the
//! namespace. The cluster is the record: every object carries the `app.kubernetes.io/*`
//! labels and, for runs, `weir.dev/run`, so `weir gc` can find what a dead run left.
//!
//! [`KubernetesRuntime`] is the [`crate::runtime::Runtime`] seam on a cluster. IO lives in
//! [`cluster`]; what to create ([`plan`]), the data-path Jobs ([`jobs`]) and
//! the reading of pod state ([`diagnose`], [`health`]) are pure and tested without a cluster.

pub mod cluster;
pub mod diagnose;
pub mod forward;
pub mod gc;
pub mod health;
pub mod jobs;
pub mod plan;
mod runtime;

use std::time::Duration;

use weir_catalog::service::ParamError;
use weir_contracts::service_kind::{ServiceKind, UnknownService};

pub use cluster::ClusterNamespace;
pub use runtime::{KubeOptions, KubernetesRuntime};

pub use weir_catalog::kubernetes::{ownership_labels, RUN_LABEL};
/// The field manager of Weir's server-side applies.
pub const FIELD_MANAGER: &str = "weir";

/// Errors of the Kubernetes runtime.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No kubeconfig could be loaded and the process is not in a pod.
    #[error("cannot find a Kubernetes cluster ({0}); set KUBECONFIG or create ~/.kube/config (`scripts/kube-sandbox up` prints a kubeconfig for a local control plane)")]
    NoCluster(String),
    /// A request was refused or could not be sent.
    #[error("Kubernetes API: {action}: {reason}")]
    Api { action: String, reason: String },
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error("invalid parameters of `{instance}`:\n  {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    InvalidParams {
        instance: String,
        errors: Vec<ParamError>,
    },
    #[error("`{name}` is a {actual} in this namespace, not a {expected}")]
    WrongDependency {
        name: String,
        expected: ServiceKind,
        actual: ServiceKind,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    /// A workload did not become ready in time; the message names the pods and why.
    #[error("{kind} `{name}` in namespace `{namespace}` is not ready after {timeout:?}: {why}")]
    NotReady {
        kind: &'static str,
        name: String,
        namespace: String,
        timeout: Duration,
        why: String,
    },
    /// A pod of the workload is stuck (its image cannot be had, or it keeps crashing), so
    /// waiting longer would not help; the message says why, with the crash's last log lines.
    #[error("{kind} `{name}` in namespace `{namespace}` cannot become ready: {why}")]
    CannotStart {
        kind: &'static str,
        name: String,
        namespace: String,
        why: String,
    },
    #[error("Job `{job}` failed: {why}")]
    JobFailed { job: String, why: String },
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    #[error("interrupted")]
    Interrupted,
}

impl KubeError {
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let action = action.into();
        move |error| KubeError::Api {
            action,
            reason: match error {
                // The API server's own words, without the Debug dump of its Status.
                kube::Error::Api(status) => {
                    format!("{} ({} {})", status.message, status.code, status.reason)
                }
                other => other.to_string(),
            },
        }
    }
}

/// The namespace of a run: `weir-` and the run id, which is already DNS-safe.
pub fn run_namespace(run_id: &str) -> String {
    format!("weir-{}", run_id.to_ascii_lowercase())
}
