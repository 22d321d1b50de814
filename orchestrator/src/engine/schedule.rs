//! The scheduler: starts each task as a tokio task once its dependencies are done, records
//! every state change, and turns failures, rejections and the run's timeout into one
//! cancellation of the run.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::JoinSet;

use super::{approval, progress, tasks, RunContext, TaskError};
use crate::runs::{Answer, TaskState};
use crate::workflow::{OnFailure, Task};

/// What ended the run badly, if anything.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub failure: Option<String>,
    pub rejected: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Succeeded,
    /// Failed with `on-failure: continue` (or a pause that was approved): dependants still run.
    FailedContinue,
    Failed,
    Skipped,
    Cancelled,
}

impl Status {
    /// Dependants may start after this.
    fn lets_dependants_run(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::FailedContinue | Status::Skipped
        )
    }

    /// Dependants will never run after this.
    fn blocks_dependants(self) -> bool {
        matches!(self, Status::Failed | Status::Cancelled)
    }
}

/// How one task ended, after its retries.
#[derive(Debug)]
enum Ending {
    Succeeded,
    /// Failed, and a person approved continuing (`on-failure: pause`).
    ContinuedAfterPause(String),
    Error(TaskError),
}

/// Runs the graph to its end; returns what ended it badly.
pub(super) async fn schedule(context: &Arc<RunContext>, timeout: Option<Duration>) -> Verdict {
    let tasks = &context.loaded.workflow.tasks;
    let mut status: BTreeMap<&str, Status> = tasks
        .iter()
        .map(|t| (t.name.as_str(), Status::Pending))
        .collect();
    let mut verdict = Verdict::default();
    let mut running: JoinSet<(String, u32, Ending)> = JoinSet::new();
    let deadline = timeout.map(|limit| tokio::time::Instant::now() + limit);
    let mut timed_out = false;
    loop {
        let stopping = context.stopping();
        for task in tasks {
            if status[task.name.as_str()] != Status::Pending {
                continue;
            }
            let deps: Vec<Status> = task.depends.iter().map(|d| status[d.as_str()]).collect();
            if stopping || deps.iter().any(|s| s.blocks_dependants()) {
                status.insert(&task.name, Status::Cancelled);
                set_task(context, &task.name, TaskState::Cancelled, 0, None);
                continue;
            }
            if !deps.iter().all(|s| s.lets_dependants_run()) {
                continue;
            }
            if task.when == Some(false) {
                status.insert(&task.name, Status::Skipped);
                set_task(context, &task.name, TaskState::Skipped, 0, None);
                progress(format!("- {} skipped (its `when` is false)", task.name));
                continue;
            }
            status.insert(&task.name, Status::Running);
            set_task(context, &task.name, TaskState::Running, 1, None);
            let (context, task) = (context.clone(), task.clone());
            running.spawn(async move {
                let (attempts, ending) = AssertUnwindSafe(run_task(&context, &task))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        (
                            1,
                            Ending::Error(TaskError::Failed("the task panicked".into())),
                        )
                    });
                (task.name, attempts, ending)
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(Ok((name, attempts, ending))) = joined else {
                    continue;
                };
                let task = tasks.iter().find(|t| t.name == name).expect("a task of the workflow");
                let new_status = finish(context, task, attempts, ending, &mut verdict);
                status.insert(&task.name, new_status);
            }
            // Wake up to cancel what has not started yet.
            _ = context.cancel.cancelled(), if !stopping => {}
            _ = sleep_until(deadline), if !timed_out => {
                timed_out = true;
                let limit = timeout.expect("a deadline comes from a timeout");
                progress(format!("✘ the run exceeded its timeout of {limit:?}; stopping"));
                verdict.failure.get_or_insert(format!("the run exceeded its timeout of {limit:?}"));
                context.cancel.cancel();
            }
        }
    }
    verdict
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Records how a task ended and decides what it means for the run.
fn finish(
    context: &RunContext,
    task: &Task,
    attempts: u32,
    ending: Ending,
    verdict: &mut Verdict,
) -> Status {
    let name = &task.name;
    match ending {
        Ending::Succeeded => {
            set_task(context, name, TaskState::Succeeded, attempts, None);
            Status::Succeeded
        }
        Ending::ContinuedAfterPause(error) => {
            set_task(context, name, TaskState::Failed, attempts, Some(&error));
            Status::FailedContinue
        }
        Ending::Error(TaskError::Stopped) => {
            set_task(
                context,
                name,
                TaskState::Cancelled,
                attempts,
                Some("the run stopped"),
            );
            Status::Cancelled
        }
        Ending::Error(TaskError::Rejected(reason)) => {
            set_task(context, name, TaskState::Failed, attempts, Some(&reason));
            verdict.rejected.get_or_insert(reason);
            context.cancel.cancel();
            Status::Failed
        }
        Ending::Error(TaskError::Failed(error)) => {
            set_task(context, name, TaskState::Failed, attempts, Some(&error));
            progress(format!(
                "✘ {name} failed after {attempts} attempt(s): {error}"
            ));
            if task.on_failure == OnFailure::Continue {
                return Status::FailedContinue;
            }
            verdict
                .failure
                .get_or_insert(format!("task `{name}` failed: {error}"));
            context.cancel.cancel();
            Status::Failed
        }
    }
}

fn set_task(
    context: &RunContext,
    name: &str,
    state: TaskState,
    attempts: u32,
    error: Option<&str>,
) {
    let result = context
        .store()
        .map_err(|e| match e {
            TaskError::Failed(text) | TaskError::Rejected(text) => text,
            TaskError::Stopped => "stopped".into(),
        })
        .and_then(|store| {
            store
                .update_task(&context.id, name, state, attempts, error)
                .map_err(|e| e.to_string())
        });
    if let Err(error) = result {
        progress(format!(
            "  WARNING: cannot record task `{name}` as {}: {error}",
            state.as_str()
        ));
    }
}

/// Runs one task, retrying failures with exponential backoff; a task whose last attempt
/// failed with `on-failure: pause` waits for a person.
async fn run_task(context: &RunContext, task: &Task) -> (u32, Ending) {
    let mut delay = task.retry_delay.unwrap_or(Duration::from_secs(1));
    let mut attempt = 0;
    loop {
        attempt += 1;
        progress(format!(
            "▶ {} ({}){}",
            task.name,
            task.action.kind(),
            if attempt > 1 {
                format!(", attempt {attempt}")
            } else {
                String::new()
            }
        ));
        let started = Instant::now();
        let deadline = task.timeout.map(|limit| started + limit);
        match tasks::execute(context, task, deadline).await {
            Ok(()) => {
                progress(format!(
                    "✔ {} ({:.1}s)",
                    task.name,
                    started.elapsed().as_secs_f64()
                ));
                return (attempt, Ending::Succeeded);
            }
            Err(TaskError::Failed(error)) if attempt <= task.retries && !context.stopping() => {
                progress(format!(
                    "  {} failed: {error}; retrying in {delay:?}",
                    task.name
                ));
                if context.sleep(delay).await.is_err() {
                    return (attempt, Ending::Error(TaskError::Stopped));
                }
                delay *= 2;
            }
            Err(TaskError::Failed(error))
                if task.on_failure == OnFailure::Pause && !context.stopping() =>
            {
                progress(format!(
                    "✘ {} failed after {attempt} attempt(s): {error}",
                    task.name
                ));
                let question = format!(
                    "task `{}` failed: {error}. Approve to continue the run, reject to fail it.",
                    task.name
                );
                return match approval::ask_person(context, &task.name, &question, None).await {
                    Ok(Answer::Approved) => (attempt, Ending::ContinuedAfterPause(error)),
                    Ok(Answer::Rejected) => (attempt, Ending::Error(TaskError::Failed(error))),
                    Err(stopped) => (attempt, Ending::Error(stopped)),
                };
            }
            Err(error) => return (attempt, Ending::Error(error)),
        }
    }
}
