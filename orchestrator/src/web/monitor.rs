//! `GET /api/runs/ID/topologies`: what each topology of a run is doing now, as its runners
//! report on `/status` — counts, lag, latency percentiles, errors and state stores — read
//! from every replica at the moment of the request. The page derives rates from two reads,
//! using the time each was taken. A topology whose runners could not be read says why,
//! and shows no figure: a runner that does not answer has not processed zero records.

use serde::Serialize;
use warp::http::StatusCode;
use weir_contracts::status::RunnerStatus;

use super::api::{error, internal, store, Context, Reply};
use crate::engine::runner_replicas;
use crate::runs::TaskState;
use crate::runtime::{self, inventory};

/// One topology of a run, read now.
#[derive(Debug, Serialize)]
pub struct TopologyReading {
    /// The task that submitted it.
    pub task: String,
    /// Its runner instance.
    pub instance: String,
    /// When it was read, in Unix milliseconds.
    pub read_at_unix_ms: u64,
    /// Replicas whose status was read.
    pub replicas: usize,
    /// Every replica's status as one runner ([`RunnerStatus::combined`]); absent when it
    /// could not be read.
    pub status: Option<RunnerStatus>,
    /// Why `status` is absent.
    pub unavailable: Option<String>,
}

/// Every topology of the run `id`, read now (called on a blocking thread).
pub fn run_topologies(context: &Context, id: &str) -> Reply {
    let store = match store(context) {
        Ok(store) => store,
        Err(reply) => return reply,
    };
    match store.run(id) {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
        Err(e) => return internal(e),
    }
    let tasks = match store.tasks(id) {
        Ok(tasks) => tasks,
        Err(e) => return internal(e),
    };
    let topologies = tasks
        .into_iter()
        .filter(|task| task.kind == "submit-topology" && task.state != TaskState::Skipped);
    let readings: Vec<TopologyReading> = tokio::runtime::Handle::current().block_on(async {
        let mut readings = Vec::new();
        for task in topologies {
            let Some(instance) = task.instance else {
                continue;
            };
            let reading = match task.state {
                TaskState::Pending => Err("not submitted yet".to_string()),
                _ => read_status(context, id, &instance).await,
            };
            readings.push(TopologyReading::new(task.name, instance, reading));
        }
        readings
    });
    (StatusCode::OK, serde_json::json!(readings))
}

impl TopologyReading {
    /// A reading taken now: each replica's status, or why there is none.
    fn new(task: String, instance: String, read: Result<Vec<RunnerStatus>, String>) -> Self {
        let (replicas, status, unavailable) = match read {
            Ok(statuses) => (statuses.len(), Some(RunnerStatus::combined(statuses)), None),
            Err(why) => (0, None, Some(why)),
        };
        TopologyReading {
            task,
            instance,
            read_at_unix_ms: crate::time::now_unix_ms(),
            replicas,
            status,
            unavailable,
        }
    }
}

/// The status of each replica of the run's runner `instance`, or why it cannot be read.
async fn read_status(
    context: &Context,
    run: &str,
    instance: &str,
) -> Result<Vec<RunnerStatus>, String> {
    let config = &context.runtime;
    let found = inventory::locate(config, instance)
        .await
        .map_err(|e| e.to_string())?;
    let found = match found {
        Some(found) if found.run.as_deref() == Some(run) => found,
        Some(_) => return Err(format!("`{instance}` now belongs to another run")),
        None => return Err(format!("`{instance}` is not running (torn down)")),
    };
    let runtime = runtime::connect(config.for_instance(&found))
        .await
        .map_err(|e| e.to_string())?;
    let statuses = runner_replicas(runtime.as_ref(), &found.scope(), instance)
        .await
        .map_err(|e| format!("its runner did not answer: {e}"))?;
    if statuses.is_empty() {
        return Err(format!("`{instance}` has no replica running"));
    }
    Ok(statuses)
}
