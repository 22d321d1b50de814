//! `weir gc --backend kubernetes`: namespaces left by runs that no longer exist. A run's
//! namespace names its run (label) and the `weir` process that owns it (annotations); it is
//! deleted when the run has ended, or when its owner on this host is gone. Namespaces of runs
//! this store does not know, owned by another host, are left alone and reported.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::Client;
use serde::Serialize;
use weir_supervisor::process::{is_same_process, start_time};

use super::cluster::delete_namespace;
use super::{KubeError, RUN_LABEL};
use crate::runs::{RunRecord, RunState};
use crate::runtime::RuntimeError;
use crate::store::Store;

pub const HOST_ANNOTATION: &str = "weir.dev/host";
pub const PID_ANNOTATION: &str = "weir.dev/owner-pid";
pub const START_ANNOTATION: &str = "weir.dev/owner-start-time";

/// The annotations naming this process as a namespace's owner.
pub fn owner_annotations() -> BTreeMap<String, String> {
    let pid = std::process::id() as i32;
    let mut annotations = BTreeMap::from([
        (HOST_ANNOTATION.to_string(), host_name()),
        (PID_ANNOTATION.to_string(), pid.to_string()),
    ]);
    if let Some(start) = start_time(pid) {
        annotations.insert(START_ANNOTATION.into(), start.to_string());
    }
    annotations
}

/// This machine's name, as the kernel reports it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// What to do with one run namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delete(String),
    Keep(String),
}

/// Decides from the namespace's run label and owner annotations and what the store says.
pub fn verdict(
    run_id: &str,
    annotations: &BTreeMap<String, String>,
    run: Option<&RunRecord>,
    this_host: &str,
    owner_alive: impl Fn(i32, Option<u64>) -> bool,
) -> Verdict {
    let owner = annotations
        .get(PID_ANNOTATION)
        .and_then(|p| p.parse::<i32>().ok());
    let owner_start = annotations
        .get(START_ANNOTATION)
        .and_then(|s| s.parse::<u64>().ok());
    let host = annotations.get(HOST_ANNOTATION).map(String::as_str);
    let owner_gone =
        host == Some(this_host) && owner.is_some_and(|pid| !owner_alive(pid, owner_start));
    match run {
        Some(run) if run.state.is_final() => {
            Verdict::Delete(format!("run {run_id} is {}", run.state.as_str()))
        }
        Some(_) if owner_gone => {
            Verdict::Delete(format!("the weir process of run {run_id} is gone"))
        }
        Some(run) => Verdict::Keep(format!("run {run_id} is still {}", run.state.as_str())),
        None if owner_gone => Verdict::Delete(format!(
            "run {run_id} is unknown here and its weir process is gone"
        )),
        None if host == Some(this_host) => Verdict::Keep(format!(
            "run {run_id} is unknown here but its weir process still runs"
        )),
        None => Verdict::Keep(format!(
            "run {run_id} belongs to host `{}`",
            host.unwrap_or("unknown")
        )),
    }
}

/// What the namespace collection did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceReport {
    /// Namespace → why it was deleted.
    pub deleted: BTreeMap<String, String>,
    /// Namespace → why it was kept.
    pub kept: BTreeMap<String, String>,
    /// Runs marked failed because their owner is gone.
    pub runs_failed: Vec<String>,
}

/// Deletes the namespaces of runs that no longer exist and waits until they are gone.
/// The store is opened for each read and write: a SQLite connection cannot be held across
/// the waits.
pub async fn collect_namespaces(
    client: &Client,
    database: &Path,
    timeout: Duration,
) -> Result<NamespaceReport, RuntimeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespaces = api
        .list(
            &ListParams::default()
                .labels(&format!("app.kubernetes.io/managed-by=weir,{RUN_LABEL}")),
        )
        .await
        .map_err(KubeError::api("listing Weir's namespaces"))?;
    let this_host = host_name();
    let mut report = NamespaceReport::default();
    for namespace in namespaces {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let labels = namespace.metadata.labels.clone().unwrap_or_default();
        let annotations = namespace.metadata.annotations.clone().unwrap_or_default();
        let Some(run_id) = labels.get(RUN_LABEL) else {
            continue;
        };
        let run = Store::open(database)?.run(run_id)?;
        match verdict(
            run_id,
            &annotations,
            run.as_ref(),
            &this_host,
            is_same_process,
        ) {
            Verdict::Delete(reason) => {
                delete_namespace(client, &name, timeout).await?;
                if run.as_ref().is_some_and(|r| !r.state.is_final()) {
                    Store::open(database)?.set_run_state(
                        run_id,
                        RunState::Failed,
                        Some("the weir process running it died; `weir gc` deleted its namespace"),
                    )?;
                    report.runs_failed.push(run_id.clone());
                }
                report.deleted.insert(name, reason);
            }
            Verdict::Keep(reason) => {
                report.kept.insert(name, reason);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: RunState) -> RunRecord {
        RunRecord {
            id: "r1".into(),
            workflow: "w".into(),
            file: "w.yaml".into(),
            state,
            variables: serde_json::json!({}),
            created: String::new(),
            finished: None,
            error: None,
            topics: serde_json::json!({}),
            unavailable: serde_json::json!({}),
            approval_message: None,
            approvals: Vec::new(),
            simulated: None,
            events: Vec::new(),
            backend: "kubernetes".into(),
            namespace: Some("weir-r1".into()),
            artifacts: String::new(),
            owner_pid: None,
            owner_start_time: None,
        }
    }

    fn owned_by(host: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (HOST_ANNOTATION.to_string(), host.to_string()),
            (PID_ANNOTATION.to_string(), "42".to_string()),
        ])
    }

    #[test]
    fn a_finished_run_loses_its_namespace() {
        let verdict = verdict(
            "r1",
            &owned_by("a"),
            Some(&run(RunState::Succeeded)),
            "a",
            |_, _| true,
        );
        assert!(matches!(verdict, Verdict::Delete(reason) if reason.contains("succeeded")));
    }

    #[test]
    fn a_running_run_whose_owner_lives_keeps_it() {
        let verdict = verdict(
            "r1",
            &owned_by("a"),
            Some(&run(RunState::Running)),
            "a",
            |_, _| true,
        );
        assert!(matches!(verdict, Verdict::Keep(_)));
    }

    #[test]
    fn a_run_whose_owner_died_on_this_host_loses_it() {
        let verdict = verdict(
            "r1",
            &owned_by("a"),
            Some(&run(RunState::Running)),
            "a",
            |_, _| false,
        );
        assert!(matches!(verdict, Verdict::Delete(_)));
        let unknown = super::verdict("r9", &owned_by("a"), None, "a", |_, _| false);
        assert!(matches!(unknown, Verdict::Delete(_)));
    }

    #[test]
    fn another_hosts_unknown_run_is_left_alone() {
        let verdict = verdict("r9", &owned_by("b"), None, "a", |_, _| false);
        assert_eq!(verdict, Verdict::Keep("run r9 belongs to host `b`".into()));
    }
}
