//! The REST API's handlers: plain functions from a request to a status and a JSON body, run on
//! blocking threads (each opens its own store connection).

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use warp::http::StatusCode;
use weir_contracts::template::value_text;

use super::launch::spawn_detached;
use crate::home::WeirHome;
use crate::offered::OfferedWorkflows;
use crate::runs::{Answer, Answered, RunState};
use crate::runtime::{self, inventory, Backend, Instance, LogSpan, Runtime, RuntimeConfig};
use crate::store::Store;
use crate::time::now_unix;
use crate::workflow;

/// What every handler needs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The workflows offered in the catalog.
    pub workflows: OfferedWorkflows,
    /// How to reach every backend: this machine's home and `weir`, and the cluster holding
    /// instances this machine started there. The web names no backend itself; an instance's
    /// own backend is chosen with [`RuntimeConfig::for_instance`].
    pub runtime: RuntimeConfig,
    /// Where launches from this server may run.
    pub backends: OfferedBackends,
}

/// Where launches from `weir serve` may run (`--backends`), the first being the launch
/// forms' default: a portal in a cluster offers only `kubernetes`, since its pod has no Java
/// for local Kafka processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedBackends(Vec<Backend>);

/// `--backends` named no backend.
#[derive(Debug, thiserror::Error)]
#[error("--backends names no backend: give local, kubernetes or both")]
pub struct NoBackend;

impl OfferedBackends {
    /// The backends in the order given, each once.
    pub fn new(backends: impl IntoIterator<Item = Backend>) -> Result<Self, NoBackend> {
        let mut offered = Vec::new();
        for backend in backends {
            if !offered.contains(&backend) {
                offered.push(backend);
            }
        }
        if offered.is_empty() {
            return Err(NoBackend);
        }
        Ok(Self(offered))
    }

    /// The backend a launch asked for, or the default when it named none; refused when this
    /// server does not offer it.
    fn choose(&self, asked: Option<Backend>) -> Result<Backend, Reply> {
        match asked {
            None => Ok(self.0[0]),
            Some(backend) if self.0.contains(&backend) => Ok(backend),
            Some(backend) => Err(error(
                StatusCode::BAD_REQUEST,
                format!(
                    "this server does not launch on `{}`: it offers {} (weir serve --backends)",
                    backend.as_str(),
                    self.names().join(", ")
                ),
            )),
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|b| b.as_str()).collect()
    }
}

impl Context {
    fn home(&self) -> &WeirHome {
        &self.runtime.home
    }

    fn weir_exe(&self) -> &Path {
        &self.runtime.weir_exe
    }
}

pub type Reply = (StatusCode, Value);

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    (status, json!({ "error": message.into() }))
}

pub(super) fn store(context: &Context) -> Result<Store, Reply> {
    Store::open(&context.home().database())
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

macro_rules! try_reply {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(reply) => return reply,
        }
    };
}

pub(super) fn internal(e: impl std::fmt::Display) -> Reply {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The five counters of the seed's portal, and the recent runs.
pub fn dashboard(context: &Context) -> Reply {
    let store = try_reply!(store(context));
    let instances = try_reply!(store.instances().map_err(internal)).len()
        + try_reply!(store.cluster_instances().map_err(internal)).len();
    let runs = try_reply!(store.runs().map_err(internal));
    let today = now_unix() - now_unix().rem_euclid(86_400);
    let today_prefix = crate::time::rfc3339(today)[..10].to_string();
    let recent: Vec<&crate::runs::RunRecord> = runs.iter().take(10).collect();
    (
        StatusCode::OK,
        json!({
            "service_instances": instances,
            "running_processes": runs.iter().filter(|r| matches!(r.state, RunState::Running | RunState::Pending)).count(),
            "pending_requests": runs.iter().filter(|r| r.state == RunState::AwaitingApproval).count(),
            "services_in_catalog": weir_catalog::catalog::services().len(),
            "processes_today": runs.iter().filter(|r| r.created.starts_with(&today_prefix)).count(),
            "recent_runs": recent,
        }),
    )
}

/// Catalog services and shipped workflows with their typed variables.
pub fn catalog(context: &Context) -> Reply {
    let mut workflows = Vec::new();
    for path in context.workflows.files() {
        match workflow::load(&path, &[]) {
            Ok(loaded) => workflows.push(json!({
                "id": path.file_stem().map(|s| s.to_string_lossy().into_owned()),
                "name": loaded.workflow.name,
                "description": loaded.workflow.description,
                "variables": loaded.workflow.variables,
            })),
            Err(e) => tracing::warn!("workflow {} is not offered: {e}", path.display()),
        }
    }
    (
        StatusCode::OK,
        json!({
            "services": weir_catalog::catalog::services(),
            "workflows": workflows,
            "backends": context.backends.names(),
        }),
    )
}

/// Every instance this machine started, on every backend (called on a blocking thread).
pub fn instances(context: &Context) -> Reply {
    let listed =
        tokio::runtime::Handle::current().block_on(inventory::instances(&context.runtime, None));
    let inventory = try_reply!(listed.map_err(internal));
    let rows: Vec<Value> = inventory
        .instances
        .into_iter()
        .map(|instance| {
            json!({
                "name": instance.name,
                "service": instance.service,
                "state": instance.state.as_str(),
                "backend": instance.backend,
                "namespace": instance.namespace,
                "endpoint": instance.endpoint,
                "started": instance.started,
                "run": instance.run,
            })
        })
        .collect();
    (StatusCode::OK, Value::Array(rows))
}

/// Lines of an instance's log the web UI shows.
const LOG_LINES: usize = 200;
/// The most lines `GET /api/instances/NAME/log?tail=N` shows.
const MAX_LOG_LINES: usize = 10_000;

/// The instance of this name on whichever backend runs it, and that backend's runtime.
async fn located(context: &Context, name: &str) -> Result<(Instance, Arc<dyn Runtime>), Reply> {
    let config = &context.runtime;
    let instance = inventory::locate(config, name)
        .await
        .map_err(internal)?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no instance `{name}`")))?;
    let runtime = runtime::connect(config.for_instance(&instance))
        .await
        .map_err(internal)?;
    Ok((instance, runtime))
}

/// The end of an instance's log, through its runtime (a local log file or a pod's log): its
/// last `tail` lines, [`LOG_LINES`] when not given, at most [`MAX_LOG_LINES`].
pub fn instance_log(context: &Context, name: &str, tail: Option<usize>) -> Result<String, Reply> {
    let lines = tail.unwrap_or(LOG_LINES);
    if lines > MAX_LOG_LINES {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("tail={lines}: at most {MAX_LOG_LINES} lines are shown; the whole log is kept with the run's artifacts"),
        ));
    }
    tokio::runtime::Handle::current().block_on(async {
        let (instance, runtime) = located(context, name).await?;
        runtime
            .logs(&instance.scope(), name, LogSpan::Last(lines))
            .await
            .map_err(internal)
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchService {
    pub service: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, Value>,
    /// Where it runs; the server's default when absent (see [`OfferedBackends`]).
    #[serde(default)]
    pub backend: Option<Backend>,
}

/// Validates, then starts `weir up` in the background.
pub fn launch_service(context: &Context, request: LaunchService) -> Reply {
    let backend = try_reply!(context.backends.choose(request.backend));
    let definition = match weir_catalog::catalog::find(&request.service) {
        Ok(definition) => definition,
        Err(unknown) => return error(StatusCode::BAD_REQUEST, unknown.to_string()),
    };
    let params: Vec<(String, String)> = request
        .params
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    if let Err(problems) = definition.validate(&params) {
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return (
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid parameters", "problems": reasons }),
        );
    }
    if let Some(name) = &request.name {
        if !weir_catalog::service::is_valid_name(name) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`{name}` is not a valid instance name"),
            );
        }
        if try_reply!(store(context))
            .instance(name)
            .ok()
            .flatten()
            .is_some()
        {
            return error(
                StatusCode::CONFLICT,
                format!("an instance named `{name}` already exists"),
            );
        }
    }
    let mut args = vec![
        "up".to_string(),
        request.service.clone(),
        "--backend".into(),
        backend.as_str().into(),
    ];
    if let Some(name) = &request.name {
        args.extend(["--name".into(), name.clone()]);
    }
    for (k, v) in params {
        args.extend(["--set".into(), format!("{k}={v}")]);
    }
    let log = context.home().root().join("logs").join(format!(
        "up-{}-{}.log",
        request.service,
        now_unix()
    ));
    match spawn_detached(context.weir_exe(), context.home().root(), &args, &log) {
        Ok(_) => (
            StatusCode::ACCEPTED,
            json!({ "service": request.service, "name": request.name, "log": log }),
        ),
        Err(e) => internal(e),
    }
}

/// Stops an instance through its runtime, in the background: the answer says it was asked.
pub fn stop_instance(context: &Context, name: &str) -> Reply {
    let handle = tokio::runtime::Handle::current();
    let (instance, runtime) = try_reply!(handle.block_on(located(context, name)));
    let backend = instance.backend;
    let name = name.to_string();
    handle.spawn({
        let name = name.clone();
        async move {
            match runtime.stop(&instance.scope(), &name).await {
                Ok(stopped) => tracing::info!("stopped {}", stopped.join(", ")),
                Err(error) => tracing::warn!("stopping `{name}` failed: {error}"),
            }
        }
    });
    (
        StatusCode::ACCEPTED,
        json!({ "name": name, "backend": backend }),
    )
}

pub fn runs(context: &Context) -> Reply {
    let store = try_reply!(store(context));
    (
        StatusCode::OK,
        json!(try_reply!(store.runs().map_err(internal))),
    )
}

pub fn run(context: &Context, id: &str) -> Reply {
    let store = try_reply!(store(context));
    match try_reply!(store.run(id).map_err(internal)) {
        Some(run) => {
            let mut value = json!(run);
            value["tasks"] = json!(try_reply!(store.tasks(id).map_err(internal)));
            value["charts"] = json!(chart_snapshots(&context.home().run_dir(id)));
            (StatusCode::OK, value)
        }
        None => error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRun {
    /// A shipped workflow's id (its file name without `.yaml`).
    pub workflow: String,
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, Value>,
    /// `local` or `kubernetes` (the cluster of `weir serve`'s kubeconfig, or the one it runs
    /// in); the server's default when absent (see [`OfferedBackends`]).
    #[serde(default)]
    pub backend: Option<Backend>,
}

/// Validates the workflow with the variables, then starts `weir run` in the background.
pub fn launch_run(context: &Context, request: LaunchRun) -> Reply {
    let backend = try_reply!(context.backends.choose(request.backend));
    if !request
        .workflow
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return error(
            StatusCode::BAD_REQUEST,
            "`workflow` names a shipped workflow, e.g. `ci-smoke`",
        );
    }
    let Some(file) = context.workflows.find(&request.workflow) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no shipped workflow `{}`", request.workflow),
        );
    };
    let overrides: Vec<(String, String)> = request
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    if let Err(problems) = workflow::load(&file, &overrides) {
        let reasons: Vec<String> = problems
            .problems
            .iter()
            .map(|p| p.message.clone())
            .collect();
        return (
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid variables", "problems": reasons }),
        );
    }
    let id = crate::engine::new_run_id();
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "--run-id".into(),
        id.clone(),
        "--backend".into(),
        backend.as_str().into(),
    ];
    for (k, v) in overrides {
        args.extend(["--set".into(), format!("{k}={v}")]);
    }
    let log = context.home().run_dir(&id).join("weir-run.log");
    match spawn_detached(context.weir_exe(), context.home().root(), &args, &log) {
        Ok(_) => (StatusCode::ACCEPTED, json!({ "id": id })),
        Err(e) => internal(e),
    }
}

/// Answers `task`'s approval, or the run's only pending one when no task is named.
pub fn answer(context: &Context, id: &str, task: Option<&str>, answer: Answer) -> Reply {
    let store = try_reply!(store(context));
    let Some(run) = try_reply!(store.run(id).map_err(internal)) else {
        return error(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    match store.answer_approval(id, task, answer) {
        Ok(Answered::Recorded(task)) => (
            StatusCode::OK,
            json!({ "id": id, "task": task, "answer": answer.as_str() }),
        ),
        Ok(Answered::Ambiguous(pending)) => error(
            StatusCode::CONFLICT,
            format!(
                "run {id} awaits several approvals; name one with ?task= ({})",
                pending.join(", ")
            ),
        ),
        Ok(Answered::NotAwaiting(pending)) if pending.is_empty() => error(
            StatusCode::CONFLICT,
            format!("run {id} is {}, not awaiting approval", run.state.as_str()),
        ),
        Ok(Answered::NotAwaiting(pending)) => error(
            StatusCode::CONFLICT,
            format!(
                "task `{}` of run {id} awaits no approval; these do: {}",
                task.unwrap_or_default(),
                pending.join(", ")
            ),
        ),
        Err(e) => internal(e),
    }
}

/// Chart snapshots kept in a run's artifacts, as paths relative to the run directory.
fn chart_snapshots(run_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(servers) = std::fs::read_dir(run_dir.join("charts")) else {
        return found;
    };
    for server in servers.flatten() {
        let Ok(files) = std::fs::read_dir(server.path()) else {
            continue;
        };
        for file in files.flatten() {
            if file.path().extension().is_some_and(|e| e == "png") {
                found.push(format!(
                    "charts/{}/{}",
                    server.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                ));
            }
        }
    }
    found.sort();
    found
}

/// A file of a run's artifacts. Only plain names below `charts/` and `logs/` are served.
pub fn artifact(
    context: &Context,
    id: &str,
    relative: &str,
) -> Result<(Vec<u8>, &'static str), Reply> {
    let parts: Vec<&str> = relative.split('/').collect();
    let safe = matches!(parts.first(), Some(&"charts") | Some(&"logs"))
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'))
        && id.chars().all(|c| c.is_ascii_alphanumeric());
    if !safe {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "artifacts are served from charts/ and logs/ only",
        ));
    }
    let path = context.home().run_dir(id).join(relative);
    let bytes = std::fs::read(&path).map_err(|_| {
        error(
            StatusCode::NOT_FOUND,
            format!("no artifact `{relative}` in run {id}"),
        )
    })?;
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    Ok((bytes, kind))
}
