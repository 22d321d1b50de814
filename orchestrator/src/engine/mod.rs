//! The engine: runs a loaded workflow's tasks as their dependencies finish, in parallel where
//! the graph allows, records every run and task in the store, collects results, and always
//! tears down what the run started — at the end, on failure, on timeout, on Ctrl-C and on
//! rejection.
//!
//! It holds an `Arc<dyn Runtime>` and never names a backend. Tasks are tokio tasks; one
//! cancellation token per run ([`RunContext::cancel`]) stops them all, whether the cause is an
//! interrupt, a failed task or the run's timeout.

mod approval;
mod collect;
mod first_publish;
mod instance_status;
mod preflight;
mod schedule;
mod supervise;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::home::WeirHome;
use crate::runs::{NewRun, RunState};
pub use crate::runtime::progress;
use crate::runtime::{Instance, Runtime, Scope};
use crate::store::{Store, StoreError};
use crate::workflow::{LoadedWorkflow, RestartPolicy};
pub use instance_status::{runner_replicas, StatusError};

/// Errors that keep a run from being recorded at all. Task failures are not errors here:
/// they end the run as `failed`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the run directory {path}: {source}")]
    Artifacts {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a task attempt ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    Failed(String),
    /// A person (or an expired approval) rejected; the run ends cancelled.
    Rejected(String),
    /// The run is stopping (Ctrl-C, timeout, another task's failure).
    Stopped,
}

/// What the caller of [`run`] provides.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub home: WeirHome,
    /// Cancelled by Ctrl-C / SIGTERM: the run stops, counts its results and tears down.
    pub interrupt: CancellationToken,
    /// Cancelled by a second Ctrl-C: results still being read are given up, so teardown
    /// starts at once.
    pub skip_results: CancellationToken,
    /// The run's id, when the caller chose it (the web UI does, to answer at once).
    pub id: Option<String>,
    /// The command line that asked for this run, to print lines that repeat it with other
    /// values; `None` names the workflow file.
    pub command_line: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunOutcome {
    pub id: String,
    pub state: RunState,
    pub error: Option<String>,
    /// Where its results and logs were kept (`run.json`, `topics.json`, `logs/`).
    pub artifacts: PathBuf,
}

/// State shared by the tasks of one run.
#[derive(Debug)]
pub struct RunContext {
    pub id: String,
    pub loaded: LoadedWorkflow,
    pub home: WeirHome,
    pub runtime: Arc<dyn Runtime>,
    /// The run's instances, as the runtime knows them.
    pub scope: Scope,
    /// The caller's interrupt (Ctrl-C).
    pub interrupt: CancellationToken,
    /// The caller's second interrupt: stop reading results. Reading them must not stop at
    /// the first, or an interrupted run would keep nothing of what it did.
    pub skip_results: CancellationToken,
    /// Cancelled when the run must stop: interrupt, timeout or a failed task.
    pub cancel: CancellationToken,
    /// Every topic the run created or wrote to, counted before teardown.
    topics: Mutex<BTreeSet<String>>,
    /// Topology runner instances of the run, drained before counting.
    topologies: Mutex<Vec<String>>,
    collected: AtomicBool,
    torn_down: AtomicBool,
    /// Results the run could not see, with the reason; stored with the topic counts.
    unavailable: Mutex<BTreeMap<String, serde_json::Value>>,
    /// Why the backend cannot show what workloads do (kwok nodes): only then may results be
    /// unavailable in a run that succeeds.
    pub simulation: Option<String>,
    /// Instances the run started and watches, with the policy for their death.
    supervised: Mutex<BTreeMap<String, supervise::Supervised>>,
    /// Why supervision failed the run, if it did.
    supervision_failure: Mutex<Option<String>>,
}

impl RunContext {
    pub fn stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// A fresh connection to the store.
    pub fn store(&self) -> Result<Store, TaskError> {
        Store::open(&self.home.database()).map_err(|e| TaskError::Failed(e.to_string()))
    }

    /// Says so when the store refused to record something; the run goes on.
    pub fn record<T>(&self, what: &str, result: Result<T, StoreError>) {
        if let Err(error) = result {
            progress(format!("  WARNING: cannot record {what}: {error}"));
        }
    }

    /// Remembers topics the run created or writes to, to be counted before teardown.
    pub fn note_topics(&self, topics: impl IntoIterator<Item = String>) {
        self.topics.lock().expect("topics lock").extend(topics);
    }

    /// The topics the run created or wrote to, sorted.
    pub fn topic_list(&self) -> Vec<String> {
        self.topics
            .lock()
            .expect("topics lock")
            .iter()
            .cloned()
            .collect()
    }

    pub fn note_topology(&self, instance: &str) {
        self.topologies
            .lock()
            .expect("topologies lock")
            .push(instance.into());
    }

    pub fn topology_list(&self) -> Vec<String> {
        self.topologies.lock().expect("topologies lock").clone()
    }

    /// Records a result the run could not see, and says so.
    pub fn unavailable(&self, key: String, reason: String) {
        progress(format!("  UNAVAILABLE {key}: {reason}"));
        self.unavailable
            .lock()
            .expect("unavailable lock")
            .insert(key, reason.into());
    }

    /// A result a step did not see: on a simulated backend it is listed as unavailable; on a
    /// real one nothing may pass unseen, so the task fails with the reason.
    pub fn unseen(&self, key: String, reason: String) -> Result<(), TaskError> {
        match &self.simulation {
            Some(_) => {
                self.unavailable(key, reason);
                Ok(())
            }
            None => Err(TaskError::Failed(format!(
                "{key} was not observed: {reason}"
            ))),
        }
    }

    /// Watches an instance the run started; its death is handled by `policy`.
    pub fn supervise(&self, instance: &Instance, task: &str, policy: Option<RestartPolicy>) {
        self.supervised.lock().expect("supervised lock").insert(
            instance.name.clone(),
            supervise::Supervised {
                task: task.into(),
                policy,
                restarts_when_ready: instance.restarts,
            },
        );
    }

    fn supervised(&self, instance: &str) -> Option<supervise::Supervised> {
        self.supervised
            .lock()
            .expect("supervised lock")
            .get(instance)
            .cloned()
    }

    /// Fails the run from outside its tasks (an instance died), and stops it.
    fn fail(&self, reason: String) {
        progress(format!("  RUN FAILS: {reason}"));
        self.supervision_failure
            .lock()
            .expect("supervision lock")
            .get_or_insert(reason);
        self.cancel.cancel();
    }

    /// Records what happened to an instance of the run, and says so.
    pub fn event(&self, instance: &str, what: &str) {
        progress(format!("  {instance}: {what}"));
        let recorded = Store::open(&self.home.database())
            .and_then(|store| store.add_run_event(&self.id, instance, what));
        self.record("a supervision event", recorded);
    }

    fn unavailable_list(&self) -> BTreeMap<String, serde_json::Value> {
        self.unavailable.lock().expect("unavailable lock").clone()
    }

    /// Sleeps up to `duration`, returning early when the run stops.
    pub async fn sleep(&self, duration: Duration) -> Result<(), TaskError> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.cancel.cancelled() => Err(TaskError::Stopped),
        }
    }
}

/// The run's page in the web UI, when `WEIR_WEB_UI` names the server showing it (`make demo`
/// sets it to the server it starts).
pub fn web_ui_page(id: &str) -> Option<String> {
    let base = std::env::var("WEIR_WEB_UI").ok()?;
    let base = base.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/#/runs/{id}"))
}

/// A short unique run id: `r`, the Unix time in hex, and 4 random hex digits.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!(
        "r{:x}{:04x}",
        crate::time::now_unix(),
        hasher.finish() & 0xffff
    )
}

/// Runs a workflow to its end. Returns once everything it started is torn down.
pub async fn run(
    loaded: LoadedWorkflow,
    runtime: Arc<dyn Runtime>,
    options: RunOptions,
) -> Result<RunOutcome, EngineError> {
    let id = options.id.clone().unwrap_or_else(new_run_id);
    let store = Store::open(&options.home.database())?;
    let artifacts = options.home.run_dir(&id);
    std::fs::create_dir_all(&artifacts).map_err(|source| EngineError::Artifacts {
        path: artifacts.clone(),
        source,
    })?;
    let pid = std::process::id() as i32;
    let namespace = runtime.namespace(&Scope::Run(id.clone()));
    store.insert_run(&NewRun {
        id: &id,
        workflow: &loaded.workflow.name,
        file: &loaded.path.display().to_string(),
        variables: &serde_json::to_value(&loaded.values).unwrap_or_default(),
        artifacts: &artifacts.display().to_string(),
        owner: (pid, weir_supervisor::process::start_time(pid)),
        backend: runtime.backend().as_str(),
        namespace: namespace.as_deref(),
        tasks: &loaded.workflow.tasks,
    })?;
    store.set_run_state(&id, RunState::Running, None)?;
    progress(format!(
        "run {id} of workflow `{}` started on {} (weir runs show {id})",
        loaded.workflow.name,
        runtime.backend()
    ));
    if let Some(page) = web_ui_page(&id) {
        progress(format!("  WEB UI: follow this run at {page}"));
    }

    let rerun = (options.command_line.clone())
        .unwrap_or_else(|| format!("weir run {}", loaded.path.display()));
    // Sources in pods resolve names with the cluster's DNS, which this machine cannot speak for.
    let local = runtime.backend() == crate::runtime::Backend::Local;
    let refusal = match local {
        true => preflight::unresolvable_source(&loaded.workflow, &rerun).await,
        false => None,
    };
    let opened = match refusal {
        Some(refusal) => Err(refusal),
        None => (runtime.open_run(&id, &loaded.workflow.name).await)
            .map_err(|error| format!("cannot start on {}: {error}", runtime.backend())),
    };
    if let Err(error) = opened {
        store.set_run_state(&id, RunState::Failed, Some(&error))?;
        write_summary(&store, &id, &artifacts);
        progress(format!(
            "run {id} failed: {error}\nkept in {} (weir runs show {id})",
            artifacts.display()
        ));
        return Ok(RunOutcome {
            id,
            state: RunState::Failed,
            error: Some(error),
            artifacts,
        });
    }

    let simulation = match runtime.simulation().await {
        Ok(simulation) => simulation,
        Err(error) => {
            progress(format!(
                "  WARNING: cannot tell whether {} only simulates workloads ({error}); every \
                 result must be observed",
                runtime.backend()
            ));
            None
        }
    };
    if let Some(reason) = &simulation {
        progress(format!(
            "  SIMULATED: {reason}; results that cannot be seen are listed as unavailable"
        ));
        store.set_run_simulated(&id, reason)?;
    }

    let timeout = loaded.workflow.timeout;
    let context = Arc::new(RunContext {
        scope: Scope::Run(id.clone()),
        id: id.clone(),
        loaded,
        home: options.home,
        runtime,
        cancel: options.interrupt.child_token(),
        interrupt: options.interrupt,
        skip_results: options.skip_results,
        topics: Mutex::new(BTreeSet::new()),
        topologies: Mutex::new(Vec::new()),
        collected: AtomicBool::new(false),
        torn_down: AtomicBool::new(false),
        unavailable: Mutex::new(BTreeMap::new()),
        simulation,
        supervised: Mutex::new(BTreeMap::new()),
        supervision_failure: Mutex::new(None),
    });
    let supervisor = tokio::spawn(supervise::supervise(context.clone()));
    let verdict = schedule::schedule(&context, timeout).await;
    supervisor.abort();
    let supervision_failure = context
        .supervision_failure
        .lock()
        .expect("supervision lock")
        .clone();

    // Results first, then teardown — whatever happened above.
    if !context.collected.load(Ordering::SeqCst) {
        collect::collect(&context, None, false).await;
    }
    tasks::teardown(&context).await;

    // Results are kept by now; what could not be seen fails the run unless the backend
    // only simulates workloads.
    let unavailable: Vec<String> = store
        .run(&id)?
        .and_then(|r| {
            r.unavailable
                .as_object()
                .map(|u| u.keys().cloned().collect())
        })
        .unwrap_or_default();
    let (state, error) = match (supervision_failure.or(verdict.failure), verdict.rejected) {
        (_, Some(reason)) => (RunState::Cancelled, Some(reason)),
        (Some(error), _) => (RunState::Failed, Some(error)),
        (None, None) if context.interrupt.is_cancelled() => (
            RunState::Cancelled,
            Some("interrupted (SIGINT/SIGTERM)".to_string()),
        ),
        (None, None) if !unavailable.is_empty() && context.simulation.is_none() => (
            RunState::Failed,
            Some(format!(
                "{} results were not observed: {}",
                unavailable.len(),
                unavailable.join(", ")
            )),
        ),
        (None, None) => (RunState::Succeeded, None),
    };
    store.set_run_state(&id, state, error.as_deref())?;
    write_summary(&store, &id, &artifacts);
    let simulated = match (&context.simulation, unavailable.len()) {
        (Some(reason), 0) => format!(" — SIMULATED ({reason})"),
        (Some(reason), n) => format!(" — SIMULATED ({reason}): {n} results unavailable"),
        (None, _) => String::new(),
    };
    progress(format!(
        "run {id} {}{}{simulated}; kept in {} (weir runs show {id})",
        state.as_str(),
        error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        artifacts.display(),
    ));
    Ok(RunOutcome {
        id,
        state,
        error,
        artifacts,
    })
}

fn write_summary(store: &Store, id: &str, artifacts: &std::path::Path) {
    let summary = match (store.run(id), store.tasks(id)) {
        (Ok(run), Ok(tasks)) => serde_json::json!({ "run": run, "tasks": tasks }),
        (Err(error), _) | (_, Err(error)) => {
            progress(format!("  WARNING: cannot read run {id} back: {error}"));
            return;
        }
    };
    let text = serde_json::to_string_pretty(&summary).expect("JSON values serialize");
    if let Err(error) = std::fs::write(artifacts.join("run.json"), text) {
        progress(format!(
            "  WARNING: cannot write {}: {error}",
            artifacts.join("run.json").display()
        ));
    }
}
