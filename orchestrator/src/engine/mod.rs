//! The engine: runs a loaded workflow's tasks as their dependencies finish, in parallel where
//! the graph allows, records every run and task in the store, collects results, and always
//! tears down what the run started — at the end, on failure, on timeout, on Ctrl-C and on
//! rejection.

mod collect;
pub mod kube;
mod kube_collect;
mod tasks;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::home::WeirHome;
use crate::runs::{Answer, RunState};
use crate::runtime::local::LocalRuntime;
use crate::runtime::RuntimeError;
use crate::store::{Store, StoreError};
use crate::workflow::{parse_condition, LoadedWorkflow, OnFailure, Task};

/// Errors that keep a run from being recorded at all. Task failures are not errors here:
/// they end the run as `failed`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
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
    pub weir_exe: PathBuf,
    /// Set by Ctrl-C / SIGTERM: the run stops and tears down.
    pub interrupt: Arc<AtomicBool>,
    /// The run's id, when the caller chose it (the web UI does, to answer at once).
    pub id: Option<String>,
    pub backend: Backend,
}

/// Where a run's services go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// Processes on this machine.
    #[default]
    Local,
    /// A namespace of its own in the cluster the kubeconfig names.
    Kubernetes(kube::KubeOptions),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub id: String,
    pub state: RunState,
    pub error: Option<String>,
}

/// State shared by the tasks of one run.
#[derive(Debug)]
pub struct RunContext {
    pub id: String,
    pub loaded: LoadedWorkflow,
    pub options: RunOptions,
    /// Set when the run must stop: interrupt, timeout or a failed task.
    pub abort: AtomicBool,
    /// Every topic the run created or wrote to, counted before teardown.
    pub topics: Mutex<BTreeSet<String>>,
    /// Topology runner instances of the run, drained before counting.
    pub topologies: Mutex<Vec<String>>,
    pub collected: AtomicBool,
    pub torn_down: AtomicBool,
    /// Results the run could not see, with the reason; stored with the topic counts.
    pub unavailable: Mutex<BTreeMap<String, serde_json::Value>>,
    /// The run's namespace, when it runs on Kubernetes.
    pub kube: Option<kube::KubeRun>,
}

impl RunContext {
    pub fn stopping(&self) -> bool {
        self.abort.load(Ordering::SeqCst) || self.options.interrupt.load(Ordering::SeqCst)
    }

    /// A fresh connection to the store for the calling thread.
    pub fn store(&self) -> Result<Store, TaskError> {
        Store::open(&self.options.home.database()).map_err(|e| TaskError::Failed(e.to_string()))
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

    /// Records a result the run could not see, and says so.
    pub fn unavailable(&self, key: String, reason: String) {
        progress(format!("  UNAVAILABLE {key}: {reason}"));
        self.unavailable
            .lock()
            .expect("unavailable lock")
            .insert(key, reason.into());
    }

    pub fn runtime(&self) -> Result<LocalRuntime, TaskError> {
        LocalRuntime::new(self.options.home.clone(), self.options.weir_exe.clone())
            .map(|r| r.with_interrupt(self.options.interrupt.clone()))
            .map_err(|e| TaskError::Failed(e.to_string()))
    }

    /// Sleeps up to `duration` in small steps, returning early when the run stops.
    pub fn sleep(&self, duration: Duration) -> Result<(), TaskError> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            if self.stopping() {
                return Err(TaskError::Stopped);
            }
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
        Ok(())
    }
}

/// Progress lines, on standard error, with the time of day.
pub fn progress(message: impl AsRef<str>) {
    let now = crate::time::rfc3339(crate::time::now_unix());
    eprintln!("[{}] {}", &now[11..19], message.as_ref());
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Succeeded,
    /// Failed with `on-failure: continue`: dependants still run.
    FailedContinue,
    Failed,
    Skipped,
    Cancelled,
}

/// Runs a workflow to its end. Returns once everything it started is torn down.
pub fn run(loaded: LoadedWorkflow, options: RunOptions) -> Result<RunOutcome, EngineError> {
    let id = options.id.clone().unwrap_or_else(new_run_id);
    let store = Store::open(&options.home.database())?;
    let artifacts = options.home.run_dir(&id);
    std::fs::create_dir_all(&artifacts).map_err(|source| EngineError::Artifacts {
        path: artifacts.clone(),
        source,
    })?;
    let pid = std::process::id() as i32;
    let task_rows: Vec<(String, String, Vec<String>)> = loaded
        .workflow
        .tasks
        .iter()
        .map(|t| {
            let kind = serde_json::to_value(t.kind())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            (t.name.clone(), kind, t.depends.clone())
        })
        .collect();
    store.insert_run(
        &id,
        &loaded.workflow.name,
        &loaded.path.display().to_string(),
        &serde_json::to_value(&loaded.values).unwrap_or_default(),
        &artifacts.display().to_string(),
        (pid, weir_catalog::local::process::start_time(pid)),
        &task_rows,
    )?;
    store.set_run_state(&id, RunState::Running, None)?;
    progress(format!(
        "run {id} of workflow `{}` started (weir runs show {id})",
        loaded.workflow.name
    ));

    let timeout = loaded
        .workflow
        .timeout
        .as_deref()
        .and_then(|t| weir_topology::duration::parse_duration(t).ok());
    let kube = match &options.backend {
        Backend::Local => None,
        Backend::Kubernetes(kube_options) => match kube::KubeRun::start(
            &id,
            &loaded.workflow.name,
            kube_options.clone(),
            options.interrupt.clone(),
        ) {
            Ok(kube) => Some(kube),
            Err(error) => {
                let error = format!("cannot start on Kubernetes: {error}");
                store.set_run_state(&id, RunState::Failed, Some(&error))?;
                write_summary(&store, &id, &artifacts);
                progress(format!("run {id} failed: {error}"));
                return Ok(RunOutcome {
                    id,
                    state: RunState::Failed,
                    error: Some(error),
                });
            }
        },
    };
    let context = Arc::new(RunContext {
        id: id.clone(),
        loaded,
        options,
        abort: AtomicBool::new(false),
        topics: Mutex::new(BTreeSet::new()),
        topologies: Mutex::new(Vec::new()),
        collected: AtomicBool::new(false),
        torn_down: AtomicBool::new(false),
        unavailable: Mutex::new(BTreeMap::new()),
        kube,
    });
    let (failure, rejected) = schedule(&context, &store, timeout);

    // Results first, then teardown — whatever happened above.
    if !context.collected.load(Ordering::SeqCst) {
        collect::collect(&context, None, false);
    }
    tasks::teardown(&context);

    let interrupted = context.options.interrupt.load(Ordering::SeqCst);
    let (state, error) = match (failure, rejected, interrupted) {
        (_, Some(reason), _) => (RunState::Cancelled, Some(reason)),
        (Some(error), _, _) => (RunState::Failed, Some(error)),
        (None, None, true) => (
            RunState::Cancelled,
            Some("interrupted (SIGINT/SIGTERM)".to_string()),
        ),
        (None, None, false) => (RunState::Succeeded, None),
    };
    store.set_run_state(&id, state, error.as_deref())?;
    write_summary(&store, &id, &artifacts);
    let unavailable = store
        .run(&id)?
        .and_then(|r| r.unavailable.as_object().map(|u| u.len()))
        .unwrap_or(0);
    progress(format!(
        "run {id} {}{}{}",
        state.as_str(),
        error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        if unavailable > 0 {
            format!(" — {unavailable} results unavailable (weir runs show {id})")
        } else {
            String::new()
        }
    ));
    Ok(RunOutcome { id, state, error })
}

/// Starts tasks as their dependencies finish. Returns the failure and rejection, if any.
fn schedule(
    context: &Arc<RunContext>,
    store: &Store,
    timeout: Option<Duration>,
) -> (Option<String>, Option<String>) {
    let tasks = &context.loaded.workflow.tasks;
    let mut status: BTreeMap<&str, Status> = tasks
        .iter()
        .map(|t| (t.name.as_str(), Status::Pending))
        .collect();
    let mut failure: Option<String> = None;
    let mut rejected: Option<String> = None;
    let started = Instant::now();
    let (done_tx, done_rx) = mpsc::channel::<(String, u32, Result<(), TaskError>)>();
    let mut running = 0usize;
    loop {
        if context.options.interrupt.load(Ordering::SeqCst) {
            context.abort.store(true, Ordering::SeqCst);
        }
        if let Some(limit) = timeout {
            if started.elapsed() > limit && failure.is_none() {
                failure = Some(format!("the run exceeded its timeout of {limit:?}"));
                context.abort.store(true, Ordering::SeqCst);
            }
        }
        let stopping = context.stopping();
        for task in tasks {
            if status[task.name.as_str()] != Status::Pending {
                continue;
            }
            let deps: Vec<Status> = task.depends.iter().map(|d| status[d.as_str()]).collect();
            if stopping
                || deps
                    .iter()
                    .any(|s| matches!(s, Status::Failed | Status::Cancelled))
            {
                status.insert(&task.name, Status::Cancelled);
                let _ = store.update_task(&context.id, &task.name, "cancelled", 0, None);
                continue;
            }
            if !deps.iter().all(|s| {
                matches!(
                    s,
                    Status::Succeeded | Status::FailedContinue | Status::Skipped
                )
            }) {
                continue;
            }
            if task.when.as_deref().and_then(parse_condition) == Some(false) {
                status.insert(&task.name, Status::Skipped);
                let _ = store.update_task(&context.id, &task.name, "skipped", 0, None);
                progress(format!(
                    "- {} skipped (when: {})",
                    task.name,
                    task.when.as_deref().unwrap_or_default()
                ));
                continue;
            }
            status.insert(&task.name, Status::Running);
            let _ = store.update_task(&context.id, &task.name, "running", 1, None);
            running += 1;
            let context = context.clone();
            let task = task.clone();
            let done = done_tx.clone();
            std::thread::spawn(move || {
                let (attempts, result) = run_with_retries(&context, &task);
                let _ = done.send((task.name.clone(), attempts, result));
            });
        }
        if running == 0 {
            break;
        }
        let Ok((name, attempts, result)) = done_rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        running -= 1;
        let task = tasks
            .iter()
            .find(|t| t.name == name)
            .expect("finished task is in the workflow");
        let new_status = match result {
            Ok(()) => {
                let _ = store.update_task(&context.id, &name, "succeeded", attempts, None);
                Status::Succeeded
            }
            Err(TaskError::Stopped) => {
                let _ = store.update_task(
                    &context.id,
                    &name,
                    "cancelled",
                    attempts,
                    Some("the run stopped"),
                );
                Status::Cancelled
            }
            Err(TaskError::Rejected(reason)) => {
                let _ = store.update_task(&context.id, &name, "failed", attempts, Some(&reason));
                rejected.get_or_insert(reason);
                context.abort.store(true, Ordering::SeqCst);
                Status::Failed
            }
            Err(TaskError::Failed(error)) => {
                let _ = store.update_task(&context.id, &name, "failed", attempts, Some(&error));
                progress(format!(
                    "✘ {name} failed after {attempts} attempt(s): {error}"
                ));
                match task.on_failure {
                    OnFailure::Continue => Status::FailedContinue,
                    OnFailure::Fail => {
                        failure.get_or_insert(format!("task `{name}` failed: {error}"));
                        context.abort.store(true, Ordering::SeqCst);
                        Status::Failed
                    }
                    OnFailure::Pause => match tasks::ask_person(
                        &context.clone(),
                        &format!("task `{name}` failed: {error}. Approve to continue the run, reject to fail it."),
                        None,
                    ) {
                        Ok(Answer::Approved) => Status::FailedContinue,
                        Ok(Answer::Rejected) | Err(_) => {
                            failure.get_or_insert(format!("task `{name}` failed: {error}"));
                            context.abort.store(true, Ordering::SeqCst);
                            Status::Failed
                        }
                    },
                }
            }
        };
        status.insert(
            tasks
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.name.as_str())
                .unwrap_or_default(),
            new_status,
        );
    }
    (failure, rejected)
}

/// Runs one task, retrying failures with exponential backoff.
fn run_with_retries(context: &RunContext, task: &Task) -> (u32, Result<(), TaskError>) {
    let parse = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| weir_topology::duration::parse_duration(d).ok())
    };
    let mut delay = parse(&task.retry_delay).unwrap_or(Duration::from_secs(1));
    let limit = parse(&task.timeout);
    let mut attempt = 0;
    loop {
        attempt += 1;
        progress(format!(
            "▶ {} ({:?}){}",
            task.name,
            task.kind(),
            if attempt > 1 {
                format!(", attempt {attempt}")
            } else {
                String::new()
            }
        ));
        let started = Instant::now();
        let deadline = limit.map(|l| started + l);
        let result = tasks::execute(context, task, deadline);
        match &result {
            Ok(()) => progress(format!(
                "✔ {} ({:.1}s)",
                task.name,
                started.elapsed().as_secs_f64()
            )),
            Err(TaskError::Failed(error)) if attempt <= task.retries && !context.stopping() => {
                progress(format!(
                    "  {} failed: {error}; retrying in {delay:?}",
                    task.name
                ));
                if context.sleep(delay).is_err() {
                    return (attempt, Err(TaskError::Stopped));
                }
                delay *= 2;
                continue;
            }
            Err(_) => {}
        }
        return (attempt, result);
    }
}

fn write_summary(store: &Store, id: &str, artifacts: &std::path::Path) {
    let run = store.run(id).ok().flatten();
    let tasks = store.tasks(id).unwrap_or_default();
    let summary = serde_json::json!({ "run": run, "tasks": tasks });
    let _ = std::fs::write(
        artifacts.join("run.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );
}
