//! Supervision: while a run goes on, the instances its tasks started are watched. A death is
//! noticed within about a second, recorded with how the process ended and the end of its log,
//! and handled by the policy of the task that started it: started again (bounded, with
//! backoff), or the run fails naming it. A backend that restarts by itself (kubelet) has its
//! restarts counted against the same policy. Watching ends when results are being kept, since
//! sources are then stopped on purpose.

use crate::runtime::LogSpan;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{RunContext, TaskError};
use crate::runtime::{Instance, InstanceState};
use crate::workflow::RestartPolicy;

/// How often the run's instances are looked at.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a restarted instance may take to be ready again.
const RESTART_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Log lines kept with a death.
const TAIL_LINES: usize = 15;

/// An instance the run started, with the policy of the task that started it.
#[derive(Debug, Clone)]
pub struct Supervised {
    pub task: String,
    pub policy: Option<RestartPolicy>,
    /// The backend's own restart count when it was ready: restarts after it are counted.
    pub restarts_when_ready: u32,
}

/// Watches until the run stops or its results are being kept. A death that its policy does
/// not cover (or whose restarts fail) fails the run and cancels it.
pub(super) async fn supervise(context: Arc<RunContext>) {
    // Restarts counted against each instance's policy, whoever made them.
    let mut restarts: BTreeMap<String, u32> = BTreeMap::new();
    // The backend's own restart count of each instance when last looked at.
    let mut backend_restarts: BTreeMap<String, u32> = BTreeMap::new();
    loop {
        if context.sleep(WATCH_INTERVAL).await.is_err() || context.collected.load(Ordering::SeqCst)
        {
            return;
        }
        let Ok(instances) = context.runtime.instances(Some(&context.scope)).await else {
            continue;
        };
        for instance in &instances {
            let Some(watched) = context.supervised(&instance.name) else {
                continue;
            };
            let seen = backend_restarts
                .entry(instance.name.clone())
                .or_insert(watched.restarts_when_ready);
            if instance.restarts > *seen {
                let new = instance.restarts - *seen;
                *seen = instance.restarts;
                let done = restarts.entry(instance.name.clone()).or_default();
                if let Err(failure) =
                    backend_restarted(&context, instance, &watched, done, new).await
                {
                    if let TaskError::Failed(reason) = failure {
                        context.fail(reason);
                    }
                    return;
                }
            }
        }
        for dead in instances.iter().filter(|i| i.state == InstanceState::Dead) {
            let Some(watched) = context.supervised(&dead.name) else {
                continue;
            };
            if context.collected.load(Ordering::SeqCst) {
                return;
            }
            let done = restarts.entry(dead.name.clone()).or_default();
            if let Err(failure) = handle_death(&context, dead, &watched, done).await {
                if let TaskError::Failed(reason) = failure {
                    context.fail(reason);
                }
                return;
            }
        }
    }
}

/// Records a death and restarts the instance if its policy allows another restart.
async fn handle_death(
    context: &RunContext,
    dead: &Instance,
    watched: &Supervised,
    restarts: &mut u32,
) -> Result<(), TaskError> {
    let how = dead.exit.as_deref().unwrap_or("its process is gone");
    context.event(&dead.name, &format!("died ({how})"));
    let tail = log_tail(context, &dead.name).await;
    let died = format!(
        "{} `{}` (started by task `{}`) died ({how})",
        dead.service, dead.name, watched.task
    );
    let Some(policy) = watched.policy else {
        return Err(TaskError::Failed(format!(
            "{died}; its task declares no `restart`\n--- last lines of its log ---\n{tail}"
        )));
    };
    // A restart that does not come up (a broker whose old registration has not expired yet)
    // counts as one of the allowed restarts; the next waits longer.
    let mut last_failure = None;
    while *restarts < policy.limit {
        let pause = policy.pause(*restarts);
        *restarts += 1;
        context.sleep(pause).await?;
        let started = Instant::now();
        match context
            .runtime
            .restart(
                &context.scope,
                &dead.name,
                RESTART_READY_TIMEOUT,
                &context.cancel,
            )
            .await
        {
            Ok(_) => {
                context.event(
                    &dead.name,
                    &format!(
                        "restarted ({} of {} allowed; waited {pause:?}, ready in {:.1}s)",
                        restarts,
                        policy.limit,
                        started.elapsed().as_secs_f64()
                    ),
                );
                return Ok(());
            }
            Err(error) if error.is_interrupted() || context.stopping() => {
                return Err(TaskError::Stopped)
            }
            Err(error) => {
                let reason = error.to_string();
                let first_line = reason.lines().next().unwrap_or_default().to_string();
                context.event(
                    &dead.name,
                    &format!(
                        "restart {restarts} of {} failed: {first_line}",
                        policy.limit
                    ),
                );
                last_failure = Some(reason);
            }
        }
    }
    Err(TaskError::Failed(match last_failure {
        Some(reason) => format!(
            "{died} and could not be restarted in {} attempts; the last: {reason}",
            policy.limit
        ),
        None => format!(
            "{died} after {} restarts, its limit\n--- last lines of its log ---\n{tail}",
            policy.limit
        ),
    }))
}

/// Counts restarts the backend made by itself (kubelet restarts a dead container, with its
/// own backoff) against the policy: within it they are recorded, beyond it, or with no
/// policy, they fail the run.
async fn backend_restarted(
    context: &RunContext,
    instance: &Instance,
    watched: &Supervised,
    restarts: &mut u32,
    new: u32,
) -> Result<(), TaskError> {
    let how = instance
        .exit
        .as_deref()
        .unwrap_or("how it ended is not known");
    *restarts = restarts.saturating_add(new);
    let allowed = watched.policy.map_or(0, |policy| policy.limit);
    context.event(
        &instance.name,
        &format!(
            "ended ({how}) and was restarted by its backend ({restarts} of {allowed} allowed)"
        ),
    );
    if *restarts <= allowed {
        return Ok(());
    }
    let why = match watched.policy {
        None => "its task declares no `restart`".to_string(),
        Some(policy) => format!(
            "{restarts} restarts, more than its limit of {}",
            policy.limit
        ),
    };
    let tail = log_tail(context, &instance.name).await;
    Err(TaskError::Failed(format!(
        "{} `{}` (started by task `{}`) ended ({how}) and was restarted by its backend; {why}\n\
         --- last lines of its log ---\n{tail}",
        instance.service, instance.name, watched.task
    )))
}

async fn log_tail(context: &RunContext, name: &str) -> String {
    match (context.runtime)
        .logs(&context.scope, name, LogSpan::Last(TAIL_LINES))
        .await
    {
        Ok(text) => text.trim_end_matches('\n').to_string(),
        Err(error) => format!("(its log cannot be read: {error})"),
    }
}
