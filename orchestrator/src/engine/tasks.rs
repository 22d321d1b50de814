//! What each task kind does, through the run's runtime.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use weir_contracts::service_kind::ServiceKind;

use weir_contracts::template::value_text;
use weir_topology::spec::TopologySpec;

use super::first_publish::await_first_publish;
use super::{approval, collect, progress, RunContext, TaskError};
use crate::runs::Answer;
use crate::runtime::{
    whole_seconds, DataReport, DataStep, ProvisionRequest, Provisioned, RuntimeError, StepOutcome,
};
use crate::workflow::{Action, SourceKind, StartSource, Task, Until, VerifyTable};

/// How long a provisioned instance may take to become ready, unless the task says otherwise.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a data-path step may take, unless the task says otherwise.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a long wait says how far it got.
const WAIT_PROGRESS: Duration = Duration::from_secs(10);

fn failed(error: impl std::fmt::Display) -> TaskError {
    TaskError::Failed(error.to_string())
}

/// A runtime error as a task error: a wait given up because the run stops is not a failure.
fn runtime_failed(context: &RunContext, error: RuntimeError) -> TaskError {
    if context.stopping() || error.is_interrupted() {
        TaskError::Stopped
    } else {
        failed(error)
    }
}

/// Runs one attempt of `task`.
pub(super) async fn execute(
    context: &RunContext,
    task: &Task,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    match &task.action {
        Action::Provision(p) => {
            let params = p
                .params
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect();
            // The workflow was checked against the catalog when it was loaded.
            let service = ServiceKind::parse(&p.service).map_err(failed)?;
            provision(context, task, service, &p.instance, params, deadline).await
        }
        Action::CreateTopics(c) => {
            let step = DataStep::CreateTopics {
                kafka: c.kafka.clone(),
                topics: c.topics.clone(),
                partitions: c.partitions,
            };
            let outcome = data_step(context, task, &step, deadline).await?;
            context.note_topics(c.topics.iter().cloned());
            match outcome {
                StepOutcome::Seen(_) => progress(format!(
                    "  created topics {} on {}",
                    c.topics.join(", "),
                    c.kafka
                )),
                StepOutcome::Unseen(reason) => context.unseen(
                    format!("create-topics:{}", task.name),
                    format!("{reason}: the topics were not seen to be created"),
                )?,
            }
            Ok(())
        }
        Action::StartSource(s) => {
            let mut params = vec![
                ("kafka".to_string(), s.kafka.clone()),
                ("topic".to_string(), s.topic.clone()),
            ];
            if let Some(interval) = &s.interval {
                params.push(("interval".into(), interval.clone()));
            }
            if let Some(key) = &s.key {
                params.push(("key".into(), key.clone()));
            }
            if let Some(pointer) = &s.key_pointer {
                params.push(("key_pointer".into(), pointer.clone()));
            }
            if let Some(keys) = &s.change_events {
                params.push(("change_events".into(), keys.clone()));
            }
            let service = match s.kind {
                SourceKind::Http => {
                    params.push(("url".into(), s.url.clone().unwrap_or_default()));
                    ServiceKind::HttpSource
                }
                SourceKind::Replay => {
                    let file = context
                        .loaded
                        .resolve_path(s.file.as_deref().unwrap_or_default());
                    if !file.is_file() {
                        return Err(failed(format!(
                            "recording {} does not exist",
                            file.display()
                        )));
                    }
                    params.push(("file".into(), file.display().to_string()));
                    params.push(("repeat".into(), s.repeat.to_string()));
                    progress(format!(
                        "  REPLAY: publishing recorded documents from {} (not live data)",
                        file.display()
                    ));
                    ServiceKind::ReplaySource
                }
            };
            context.note_topics([s.topic.clone()]);
            provision(context, task, service, &s.instance, params, deadline).await?;
            let within = s
                .first_publish_within
                .unwrap_or(StartSource::DEFAULT_FIRST_PUBLISH_WITHIN);
            await_first_publish(
                context,
                &s.instance,
                remaining(deadline, within).min(within),
            )
            .await
        }
        Action::SubmitTopology(t) => {
            let file = context.loaded.resolve_path(&t.file);
            let sets: Vec<(String, String)> = t
                .params
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect();
            let spec = TopologySpec::load(&file, &sets).map_err(failed)?;
            context.note_topics(
                spec.input
                    .topics
                    .iter()
                    .cloned()
                    .chain(spec.output_topics()),
            );
            let mut params = vec![
                ("file".to_string(), file.display().to_string()),
                ("kafka".to_string(), t.kafka.clone()),
            ];
            if let Some(replicas) = t.replicas {
                params.push(("replicas".into(), replicas.to_string()));
            }
            if !sets.is_empty() {
                let mapping: BTreeMap<&str, &str> =
                    sets.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let text = serde_json::to_string(&mapping).expect("strings serialize");
                params.push(("params".into(), text));
            }
            provision(
                context,
                task,
                ServiceKind::TopologyRunner,
                &t.instance,
                params,
                deadline,
            )
            .await?;
            context.note_topology(&t.instance);
            Ok(())
        }
        Action::Wait(w) => match (&w.duration, &w.until) {
            (Some(duration), _) => wait_for(context, task, *duration, deadline).await,
            (None, Some(until)) => wait_until(context, task, until, deadline).await,
            (None, None) => Err(failed("`wait` needs `duration` or `until`")),
        },
        Action::Approval(a) => {
            let timeout = a.timeout.map(|t| (t, a.on_timeout));
            match approval::ask_person(context, &task.name, &a.message, timeout).await? {
                Answer::Approved => Ok(()),
                Answer::Rejected => Err(TaskError::Rejected(format!(
                    "approval `{}` was rejected",
                    task.name
                ))),
            }
        }
        Action::VerifyTable(v) => verify_table(context, task, v, deadline).await,
        Action::Collect(c) => {
            collect::collect(context, Some(&c.kafka), true).await;
            Ok(())
        }
        Action::Teardown(_) => {
            if !context.collected.load(Ordering::SeqCst) {
                collect::collect(context, None, false).await;
            }
            teardown(context).await;
            Ok(())
        }
    }
}

/// Waits a duration, reporting progress every 10 s.
async fn wait_for(
    context: &RunContext,
    task: &Task,
    total: Duration,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    let started = Instant::now();
    while started.elapsed() < total {
        let step = (total - started.elapsed()).min(WAIT_PROGRESS);
        context.sleep(step).await?;
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(failed("the task's time limit passed"));
        }
        progress(format!(
            "  {}: {:.0}s of {:.0}s",
            task.name,
            started.elapsed().as_secs_f64(),
            total.as_secs_f64()
        ));
    }
    Ok(())
}

/// Waits until a topic holds enough messages, or the task's time limit passes.
async fn wait_until(
    context: &RunContext,
    task: &Task,
    until: &Until,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    let step = DataStep::Wait {
        kafka: until.kafka.clone(),
        topic: until.topic.clone(),
        messages: until.messages,
    };
    progress(format!(
        "  {}: waiting up to {:?} for `{}` to hold {} messages",
        task.name,
        whole_seconds(remaining(deadline, STEP_TIMEOUT)),
        until.topic,
        until.messages
    ));
    match data_step(context, task, &step, deadline).await? {
        StepOutcome::Seen(DataReport::Waited(report)) if report.reached => {
            progress(format!("  {}: {}", task.name, report.held()))
        }
        StepOutcome::Seen(DataReport::Waited(report)) => return Err(failed(report.held())),
        StepOutcome::Seen(other) => return Err(failed(format!("the wait reported {other:?}"))),
        StepOutcome::Unseen(reason) => context.unseen(
            format!("wait:{}", task.name),
            format!(
                "{reason}: `{}` was not seen to hold {} messages",
                until.topic, until.messages
            ),
        )?,
    }
    Ok(())
}

/// How often a `verify-table` compares again while the target differs.
const VERIFY_AGAIN: Duration = Duration::from_secs(3);

/// Compares the target with the change events until they match or the task's time is up.
async fn verify_table(
    context: &RunContext,
    task: &Task,
    verify: &VerifyTable,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    let events = context.loaded.resolve_path(&verify.events);
    if !events.is_file() {
        return Err(failed(format!(
            "the change events {} do not exist",
            events.display()
        )));
    }
    let step = DataStep::VerifyTable {
        kafka: verify.kafka.clone(),
        topic: verify.topic.clone(),
        events,
        table: verify.table.clone(),
        primary_keys: verify.primary_keys.clone(),
    };
    let deadline = deadline.unwrap_or_else(|| Instant::now() + STEP_TIMEOUT);
    loop {
        let outcome = context
            .runtime
            .data_step(
                &context.scope,
                &task.name,
                &step,
                remaining(Some(deadline), STEP_TIMEOUT),
                &context.cancel,
            )
            .await;
        let outcome = match outcome {
            // A broker down or a partition between leaders: the target is compared again
            // once Kafka answers, within the task's time.
            Err(RuntimeError::VerifyTable(error))
                if error.is_transient() && Instant::now() + VERIFY_AGAIN < deadline =>
            {
                progress(format!(
                    "  {}: Kafka did not answer the comparison ({error}); trying again",
                    task.name
                ));
                context.sleep(VERIFY_AGAIN).await?;
                continue;
            }
            other => other.map_err(|error| runtime_failed(context, error))?,
        };
        match outcome {
            StepOutcome::Seen(DataReport::Verified(comparison)) => {
                let last_try = Instant::now() + VERIFY_AGAIN >= deadline;
                if comparison.matches() || last_try {
                    keep_comparison(context, task, &comparison);
                }
                if comparison.matches() {
                    progress(format!("  {}: {}", task.name, comparison.summary()));
                    if !comparison.poison.is_empty() {
                        progress(format!(
                            "  {}: {} lines of the events are no change event (poison)",
                            task.name,
                            comparison.poison_count()
                        ));
                    }
                    return Ok(());
                }
                if last_try {
                    return Err(failed(comparison.summary()));
                }
                progress(format!(
                    "  {}: not yet: {}",
                    task.name,
                    comparison.summary()
                ));
            }
            StepOutcome::Seen(other) => {
                return Err(failed(format!("the comparison reported {other:?}")))
            }
            StepOutcome::Unseen(reason) => {
                return context.unseen(format!("verify-table:{}", task.name), reason)
            }
        }
        context.sleep(VERIFY_AGAIN).await?;
    }
}

/// Keeps the comparison a `verify-table` task ended on in the run's artifacts,
/// `verified/TASK.json`: the verdict, the counts and the keys that differ.
fn keep_comparison(
    context: &RunContext,
    task: &Task,
    comparison: &crate::topics::table::TableComparison,
) {
    let dir = context.home.run_dir(&context.id).join("verified");
    let path = dir.join(format!("{}.json", task.name));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let text = serde_json::to_string_pretty(comparison).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)
    });
    if let Err(error) = written {
        progress(format!(
            "  WARNING: cannot keep the comparison in {}: {error}",
            path.display()
        ));
    }
}

async fn data_step(
    context: &RunContext,
    task: &Task,
    step: &DataStep,
    deadline: Option<Instant>,
) -> Result<StepOutcome, TaskError> {
    context
        .runtime
        .data_step(
            &context.scope,
            &task.name,
            step,
            remaining(deadline, STEP_TIMEOUT),
            &context.cancel,
        )
        .await
        .map_err(|e| runtime_failed(context, e))
}

/// Starts an instance for the run, or reuses a running one of the same name and service.
async fn provision(
    context: &RunContext,
    task: &Task,
    service: ServiceKind,
    instance: &str,
    params: Vec<(String, String)>,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    let provisioned = context
        .runtime
        .provision(ProvisionRequest {
            service,
            name: Some(instance.into()),
            params,
            scope: context.scope.clone(),
            ready_timeout: remaining(deadline, READY_TIMEOUT),
            cancel: context.cancel.clone(),
        })
        .await
        .map_err(|e| runtime_failed(context, e))?;
    let instances = match &provisioned {
        Provisioned::Started(started) => {
            for instance in started {
                context.supervise(instance, &task.name, task.restart);
            }
            started.clone()
        }
        Provisioned::Reused(instance) => vec![(**instance).clone()],
    };
    for charts in instances
        .iter()
        .filter(|i| i.service == ServiceKind::ChartServer)
    {
        progress(format!(
            "  LIVE CHARTS: {} while the run lasts",
            context.runtime.how_to_open(charts)
        ));
    }
    Ok(())
}

/// Time left before the task's deadline, or `default` when it has none.
fn remaining(deadline: Option<Instant>, default: Duration) -> Duration {
    deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(default)
}

/// Stops everything the run started, users before what they use, even after an interrupt.
/// Instances the run reused belong to someone else and stay.
pub(super) async fn teardown(context: &RunContext) {
    if context.torn_down.swap(true, Ordering::SeqCst) {
        return;
    }
    progress("tearing down");
    match context.runtime.teardown(&context.scope).await {
        Ok(stopped) => progress(format!(
            "  stopped {}",
            if stopped.is_empty() {
                "nothing".into()
            } else {
                stopped.join(", ")
            }
        )),
        Err(error) => progress(format!(
            "  teardown error: {error} (run `weir gc --backend {}`)",
            context.runtime.backend()
        )),
    }
}
