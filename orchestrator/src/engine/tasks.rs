//! What each task kind does.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir_topology::duration::parse_duration;
use weir_topology::spec::TopologySpec;
use weir_topology::template::value_text;

use super::{collect, progress, RunContext, TaskError};
use crate::runs::Answer;
use crate::runtime::kubernetes::jobs::{Step, NO_REPORT};
use crate::runtime::kubernetes::KubeError;
use crate::runtime::local::{Ownership, UpRequest};
use crate::store::InstanceState;
use crate::workflow::{Decision, SourceKind, Task, Until};

/// How long a provisioned instance may take to become ready, unless the task says otherwise.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a data-path Job may take, unless the task says otherwise.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

fn failed(error: impl std::fmt::Display) -> TaskError {
    TaskError::Failed(error.to_string())
}

/// Runs one attempt of `task`.
pub fn execute(
    context: &RunContext,
    task: &Task,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    if let Some(p) = &task.provision {
        let params = p
            .params
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        return provision(context, &p.service, &p.instance, params, deadline);
    }
    if let Some(c) = &task.create_topics {
        if let Some(kube) = &context.kube {
            let step = Step::CreateTopics {
                brokers: kube.kafka_endpoint(&c.kafka).map_err(failed)?,
                topics: c.topics.clone(),
                partitions: c.partitions,
            };
            let report = kube
                .run_step(&task.name, &step, remaining(deadline, JOB_TIMEOUT))
                .map_err(|e| kube_failed(context, e))?;
            context.note_topics(c.topics.iter().cloned());
            match report {
                Some(_) => progress(format!(
                    "  created topics {} on {} (Job)",
                    c.topics.join(", "),
                    c.kafka
                )),
                None => context.unavailable(
                    format!("create-topics:{}", task.name),
                    format!("{NO_REPORT}: the topics were not seen to be created"),
                ),
            }
            return Ok(());
        }
        let endpoint = kafka_endpoint(context, &c.kafka)?;
        let topics: Vec<&str> = c.topics.iter().map(String::as_str).collect();
        block_on(weir_topology::kafka::ensure_topics(
            &endpoint,
            &topics,
            c.partitions,
        ))
        .map_err(failed)?;
        context.note_topics(c.topics.iter().cloned());
        progress(format!(
            "  created topics {} on {}",
            c.topics.join(", "),
            c.kafka
        ));
        return Ok(());
    }
    if let Some(s) = &task.start_source {
        let mut params = vec![
            ("kafka".to_string(), s.kafka.clone()),
            ("topic".to_string(), s.topic.clone()),
        ];
        if let Some(interval) = &s.interval {
            params.push(("interval".into(), interval.clone()));
        }
        let service = match s.kind {
            SourceKind::Http => {
                params.push(("url".into(), s.url.clone().unwrap_or_default()));
                "http-source"
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
                "replay-source"
            }
        };
        context.note_topics([s.topic.clone()]);
        return provision(context, service, &s.instance, params, deadline);
    }
    if let Some(t) = &task.submit_topology {
        let file = context.loaded.resolve_path(&t.file);
        let sets: Vec<(String, String)> = t
            .params
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        let spec = TopologySpec::load(&file, &sets).map_err(failed)?;
        context.note_topics(std::iter::once(spec.input.topic.clone()).chain(spec.output_topics()));
        let set = sets
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let mut params = vec![
            ("file".to_string(), file.display().to_string()),
            ("kafka".to_string(), t.kafka.clone()),
        ];
        if !set.is_empty() {
            params.push(("set".into(), set));
        }
        provision(context, "topology-runner", &t.instance, params, deadline)?;
        context
            .topologies
            .lock()
            .expect("topologies lock")
            .push(t.instance.clone());
        return Ok(());
    }
    if let Some(w) = &task.wait {
        return match (&w.duration, &w.until) {
            (Some(duration), _) => wait_for(context, task, duration, deadline),
            (None, Some(until)) => wait_until(context, task, until, deadline),
            (None, None) => Err(failed("`wait` needs `duration` or `until`")),
        };
    }
    if let Some(a) = &task.approval {
        let timeout = a
            .timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(failed)?;
        return match ask_person(context, &a.message, timeout.map(|t| (t, a.on_timeout)))? {
            Answer::Approved => Ok(()),
            Answer::Rejected => Err(TaskError::Rejected(format!(
                "approval `{}` was rejected",
                task.name
            ))),
        };
    }
    if let Some(c) = &task.collect {
        collect::collect(context, Some(&c.kafka), true);
        return Ok(());
    }
    if task.teardown.is_some() {
        if !context.collected.load(Ordering::SeqCst) {
            collect::collect(context, None, false);
        }
        teardown(context);
        return Ok(());
    }
    Err(failed(format!("task `{}` has no kind", task.name)))
}

/// Waits a duration, reporting progress every 10 s.
fn wait_for(
    context: &RunContext,
    task: &Task,
    duration: &str,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    let total = parse_duration(duration).map_err(failed)?;
    let started = Instant::now();
    while started.elapsed() < total {
        let step = (total - started.elapsed()).min(Duration::from_secs(10));
        context.sleep(step)?;
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
fn wait_until(
    context: &RunContext,
    task: &Task,
    until: &Until,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    if let Some(kube) = &context.kube {
        let timeout = remaining(deadline, JOB_TIMEOUT);
        let step = Step::Wait {
            brokers: kube.kafka_endpoint(&until.kafka).map_err(failed)?,
            topic: until.topic.clone(),
            messages: until.messages,
            timeout,
        };
        progress(format!(
            "  {}: a Job waits up to {timeout:?} for `{}` to hold {} messages",
            task.name, until.topic, until.messages
        ));
        match kube
            .run_step(&task.name, &step, timeout)
            .map_err(|e| kube_failed(context, e))?
        {
            Some(report) => progress(format!(
                "  {}: `{}` holds {} messages",
                task.name, until.topic, report["count"]
            )),
            None => context.unavailable(
                format!("wait:{}", task.name),
                format!(
                    "{NO_REPORT}: `{}` was not seen to hold {} messages",
                    until.topic, until.messages
                ),
            ),
        }
        return Ok(());
    }
    let endpoint = kafka_endpoint(context, &until.kafka)?;
    let mut last_report = Instant::now();
    loop {
        let count = weir_topology::kafka::count_topic(&endpoint, &until.topic).map_err(failed)?;
        if count >= until.messages {
            progress(format!(
                "  {}: `{}` holds {count} messages",
                task.name, until.topic
            ));
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(failed(format!(
                "`{}` held {count} of the {} messages waited for when the time limit passed",
                until.topic, until.messages
            )));
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            progress(format!(
                "  {}: `{}` holds {count} of {} messages",
                task.name, until.topic, until.messages
            ));
            last_report = Instant::now();
        }
        context.sleep(Duration::from_millis(500))?;
    }
}

/// Starts an instance for the run, or reuses a running one of the same name and service.
fn provision(
    context: &RunContext,
    service: &str,
    instance: &str,
    params: Vec<(String, String)>,
    deadline: Option<Instant>,
) -> Result<(), TaskError> {
    let ready_timeout = remaining(deadline, READY_TIMEOUT);
    if let Some(kube) = &context.kube {
        return kube
            .provision(service, instance, params, ready_timeout)
            .map_err(|e| kube_failed(context, e));
    }
    let runtime = context.runtime()?;
    if let Some(existing) = runtime.store().instance(instance).map_err(failed)? {
        let alive = runtime
            .instances()
            .map_err(failed)?
            .into_iter()
            .any(|(r, alive)| r.name == instance && alive);
        if existing.service == service && existing.state == InstanceState::Running && alive {
            progress(format!("  reusing running {service} instance `{instance}`"));
            return Ok(());
        }
        return Err(failed(format!(
            "an instance named `{instance}` exists but is {} {} ({}); choose another name or `weir down {instance}`",
            if alive { "a running" } else { "a dead" },
            existing.service,
            existing.state.as_str()
        )));
    }
    runtime
        .up(&UpRequest {
            service: service.into(),
            name: Some(instance.into()),
            params,
            ownership: Ownership::Run(context.id.clone()),
            ready_timeout,
        })
        .map_err(|e| {
            if context.stopping() {
                TaskError::Stopped
            } else {
                failed(e)
            }
        })?;
    Ok(())
}

/// Time left before the task's deadline, or `default` when it has none.
fn remaining(deadline: Option<Instant>, default: Duration) -> Duration {
    deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(default)
}

fn kube_failed(context: &RunContext, error: KubeError) -> TaskError {
    if context.stopping() || matches!(error, KubeError::Interrupted) {
        TaskError::Stopped
    } else {
        failed(error)
    }
}

/// The endpoint of a running Kafka instance.
pub fn kafka_endpoint(context: &RunContext, name: &str) -> Result<String, TaskError> {
    let store = context.store()?;
    match store.instance(name).map_err(failed)? {
        Some(record) if record.service == "kafka" && record.state == InstanceState::Running => {
            Ok(record.endpoint)
        }
        Some(record) => Err(failed(format!(
            "instance `{name}` is a {} in state {}, not a running kafka",
            record.service,
            record.state.as_str()
        ))),
        None => Err(failed(format!(
            "no Kafka instance named `{name}`; provision it in an earlier task"
        ))),
    }
}

/// Puts the run in `awaiting-approval` and waits for `weir approve` / `weir reject` (or the
/// web UI), or for the timeout and its declared outcome.
pub fn ask_person(
    context: &RunContext,
    message: &str,
    timeout: Option<(Duration, Decision)>,
) -> Result<Answer, TaskError> {
    let store = context.store()?;
    store
        .request_approval(&context.id, message)
        .map_err(failed)?;
    progress(format!(
        "⏸ awaiting approval: {message}\n           approve: weir approve {id}   reject: weir reject {id}",
        id = context.id
    ));
    let started = Instant::now();
    let answer = loop {
        if context.stopping() {
            let _ = store.clear_approval(&context.id);
            return Err(TaskError::Stopped);
        }
        if let Some(answer) = store.approval_answer(&context.id).map_err(failed)? {
            break answer;
        }
        if let Some((limit, outcome)) = timeout {
            if started.elapsed() >= limit {
                progress(format!(
                    "  approval expired after {limit:?}; declared outcome: {outcome:?}"
                ));
                break match outcome {
                    Decision::Approve => Answer::Approved,
                    Decision::Reject => Answer::Rejected,
                };
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    store.clear_approval(&context.id).map_err(failed)?;
    progress(format!(
        "  {}",
        if answer == Answer::Approved {
            "approved"
        } else {
            "rejected"
        }
    ));
    Ok(answer)
}

/// Stops everything the run started, users before what they use. Instances the run reused
/// belong to someone else and stay.
pub fn teardown(context: &RunContext) {
    if context.torn_down.swap(true, Ordering::SeqCst) {
        return;
    }
    progress("tearing down");
    if let Some(kube) = &context.kube {
        match kube.teardown() {
            Ok(()) => progress(format!("  namespace `{}` is gone", kube.namespace())),
            Err(error) => progress(format!(
                "  teardown error: {error} (run `weir gc --backend kubernetes`)"
            )),
        }
        return;
    }
    // Teardown must complete even when the run was interrupted.
    match LocalRuntime::new(
        context.options.home.clone(),
        context.options.weir_exe.clone(),
    ) {
        Ok(runtime) => match runtime.down_all(Some(&context.id)) {
            Ok(stopped) => progress(format!(
                "  stopped {}",
                if stopped.is_empty() {
                    "nothing".into()
                } else {
                    stopped.join(", ")
                }
            )),
            Err(error) => progress(format!("  teardown error: {error} (run `weir gc`)")),
        },
        Err(error) => progress(format!("  teardown error: {error} (run `weir gc`)")),
    }
}

use crate::runtime::local::LocalRuntime;

/// Runs a future on a small runtime of its own (tasks run on plain threads).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}
