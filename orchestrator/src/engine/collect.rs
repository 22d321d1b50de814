//! Results kept before teardown, whatever the backend: the sources' logs, then the sources
//! stopped and the topologies drained, then the message count of every topic the run created,
//! the chart snapshots and the other services' logs, saved under the run's artifact directory
//! and in the store. What cannot be read is reported as unavailable, never guessed.

use crate::runtime::LogSpan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use weir_contracts::service_kind::ServiceKind;

use weir_contracts::status::{RunnerState, RunnerStatus, SourceState, SourceStatus};

use super::instance_status::{get_bytes, get_status, http_client, status_of, StatusError};
use super::{progress, RunContext};

use crate::runtime::{DataReport, DataStep, Instance, InstanceState, StepOutcome};

/// How long the runners may take to finish what they consumed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a drained runner must stay unchanged before it counts as done.
const DRAIN_SETTLE: Duration = Duration::from_secs(2);
/// How long counting the topics may take.
const COUNT_TIMEOUT: Duration = Duration::from_secs(120);

type Unavailable = BTreeMap<String, serde_json::Value>;

fn is_source(instance: &Instance) -> bool {
    instance.service.is_source()
}

/// Collects results once; `drain` stops the sources and waits for the topologies first.
/// `kafka` names the instance whose topics are counted (default: the run's own).
pub(super) async fn collect(context: &RunContext, kafka: Option<&str>, drain: bool) {
    if context.collected.swap(true, Ordering::SeqCst) {
        return;
    }
    let mut unavailable = Unavailable::new();
    let missing = |unavailable: &mut Unavailable, key: String, reason: String| {
        progress(format!("  UNAVAILABLE {key}: {reason}"));
        unavailable.insert(key, reason.into());
    };
    let instances = match context.runtime.instances(Some(&context.scope)).await {
        Ok(instances) => instances,
        Err(error) => {
            missing(
                &mut unavailable,
                "instances".into(),
                format!("cannot list the run's instances: {error}"),
            );
            Vec::new()
        }
    };
    let logs_dir = context.home.run_dir(&context.id).join("logs");
    if let Err(error) = std::fs::create_dir_all(&logs_dir) {
        progress(format!(
            "  WARNING: cannot create {}: {error}",
            logs_dir.display()
        ));
    }

    // Sources first: stopping a source removes its log and its status with it.
    for source in instances.iter().filter(|i| is_source(i)) {
        save_log(context, source, &logs_dir, &mut unavailable).await;
        let status = match http_client() {
            Ok(client) => status_of::<SourceStatus>(context, &client, &source.name).await,
            Err(error) => Err(error),
        };
        match status {
            // A live source that could not reach its URL published nothing meanwhile.
            Ok(status) => match source_health(&status) {
                SourceHealth::Published => {}
                SourceHealth::PublishedDespite(trouble) => context.event(&source.name, &trouble),
                SourceHealth::Failed(problem) => {
                    missing(&mut unavailable, format!("source:{}", source.name), problem)
                }
            },
            Err(reason) => missing(
                &mut unavailable,
                format!("source:{}", source.name),
                format!("its status could not be read: {reason}"),
            ),
        }
    }

    if drain {
        for source in instances.iter().filter(|i| is_source(i)) {
            progress(format!(
                "  stopping source `{}` before counting",
                source.name
            ));
            if let Err(error) = context.runtime.stop(&context.scope, &source.name).await {
                progress(format!("  cannot stop `{}`: {error}", source.name));
            }
        }
        for name in context.topology_list() {
            match drain_topology(context, &name).await {
                Ok(drained) if drained.steps.len() > 1 => {
                    progress(format!("  topology `{name}`: {}", step_counts(&drained)));
                }
                Ok(_) => {}
                Err(reason) => {
                    progress(format!("  topology `{name}` did not finish: {reason}"));
                    missing(
                        &mut unavailable,
                        format!("drain:{name}"),
                        reason.to_string(),
                    );
                }
            }
        }
    }

    let counts = count_topics(context, &instances, kafka, &mut unavailable).await;
    if !counts.is_empty() {
        let summary: Vec<String> = counts.iter().map(|(t, c)| format!("{t}={c}")).collect();
        progress(format!("  topic counts: {}", summary.join(" ")));
    }

    let charts_dir = context.home.run_dir(&context.id).join("charts");
    for chart_server in instances
        .iter()
        .filter(|i| i.service == ServiceKind::ChartServer)
    {
        let dir = charts_dir.join(&chart_server.name);
        let saved = match context
            .runtime
            .http(&context.scope, &chart_server.name)
            .await
        {
            Ok(access) => save_chart_snapshots(&access.url, &dir).await,
            Err(error) => Err(SnapshotError::Read(error.into())),
        };
        match saved {
            Ok(saved) => progress(format!(
                "  saved {saved} chart snapshots of `{}`",
                chart_server.name
            )),
            Err(reason) => missing(
                &mut unavailable,
                format!("charts:{}", chart_server.name),
                reason.to_string(),
            ),
        }
    }
    for instance in instances.iter().filter(|i| !is_source(i)) {
        save_log(context, instance, &logs_dir, &mut unavailable).await;
    }
    save_results(context, counts, unavailable);
}

/// What each step of a drained topology took and passed on: `cdc 12305 in, 12296 out; …`.
fn step_counts(drained: &RunnerStatus) -> String {
    let steps: Vec<String> = (drained.steps.iter())
        .map(|s| format!("{} {} in, {} out", s.name, s.records_in, s.records_out))
        .collect();
    format!("per step {}", steps.join("; "))
}

/// Counts the messages of every topic the run created, on `kafka` or the run's own Kafka.
async fn count_topics(
    context: &RunContext,
    instances: &[Instance],
    kafka: Option<&str>,
    unavailable: &mut Unavailable,
) -> serde_json::Map<String, serde_json::Value> {
    let topics = context.topic_list();
    if topics.is_empty() {
        return serde_json::Map::new();
    }
    let kafka = kafka.map(str::to_string).or_else(|| {
        instances
            .iter()
            .find(|i| i.service == ServiceKind::Kafka)
            .map(|i| i.name.clone())
    });
    let Some(kafka) = kafka else {
        unavailable.insert(
            "topics".into(),
            "no Kafka instance of this run is running".into(),
        );
        return serde_json::Map::new();
    };
    if let Err(state) = await_kafka_ready(context, instances, &kafka).await {
        let reason = format!(
            "Kafka `{kafka}` is {state}: a broker that is not ready may not know its topics yet, so none was counted"
        );
        progress(format!("  UNAVAILABLE topics: {reason}"));
        unavailable.insert("topics".into(), reason.into());
        return serde_json::Map::new();
    }
    let step = DataStep::Count { kafka, topics };
    let outcome = context
        .runtime
        .data_step(
            &context.scope,
            "results",
            &step,
            COUNT_TIMEOUT,
            &context.skip_results,
        )
        .await;
    let reason = match outcome {
        Ok(StepOutcome::Seen(DataReport::Counted(counted))) => {
            for topic in counted.missing {
                let reason = format!("the topic does not exist on `{}`", step.kafka());
                progress(format!("  UNAVAILABLE topic:{topic}: {reason}"));
                unavailable.insert(format!("topic:{topic}"), reason.into());
            }
            return counted
                .counts
                .into_iter()
                .map(|(topic, n)| (topic, n.into()))
                .collect();
        }
        Ok(StepOutcome::Seen(other)) => format!("counting reported {other:?}"),
        Ok(StepOutcome::Unseen(reason)) => format!("{reason}: no topic was counted"),
        Err(error) => format!("cannot read topic offsets: {error}"),
    };
    progress(format!("  UNAVAILABLE topics: {reason}"));
    unavailable.insert("topics".into(), reason.into());
    serde_json::Map::new()
}

/// How long counting waits for the run's Kafka to be ready again (e.g. restarted after a
/// crash near the end of the run).
const KAFKA_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Waits until the run's Kafka instance `kafka` is running and ready: a restarted broker
/// answers metadata before it has loaded its topics, and would have them counted as missing.
/// A Kafka the run did not start (a standalone one) is not waited for.
async fn await_kafka_ready(
    context: &RunContext,
    instances: &[Instance],
    kafka: &str,
) -> Result<(), &'static str> {
    if !instances.iter().any(|i| i.name == kafka) {
        return Ok(());
    }
    let deadline = Instant::now() + KAFKA_READY_TIMEOUT;
    let mut announced = false;
    loop {
        let state = match context.runtime.instances(Some(&context.scope)).await {
            Ok(now) => now
                .into_iter()
                .find(|i| i.name == kafka)
                .map_or(InstanceState::Dead, |i| i.state),
            Err(_) => InstanceState::Unknown,
        };
        if state == InstanceState::Running {
            return Ok(());
        }
        let hopeless = state == InstanceState::Dead;
        if hopeless || Instant::now() >= deadline || context.skip_results.is_cancelled() {
            return Err(state.as_str());
        }
        if !announced {
            progress(format!(
                "  waiting up to {KAFKA_READY_TIMEOUT:?} for Kafka `{kafka}` ({}) to be ready before counting",
                state.as_str()
            ));
            announced = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = context.skip_results.cancelled() => {}
        }
    }
}

/// Saves an instance's log under the run's artifacts; returns its text.
async fn save_log(
    context: &RunContext,
    instance: &Instance,
    dir: &Path,
    unavailable: &mut Unavailable,
) -> Option<String> {
    match (context.runtime)
        .logs(&context.scope, &instance.name, LogSpan::Whole)
        .await
    {
        Ok(text) => {
            let path = dir.join(format!("{}.log", instance.name));
            if let Err(error) = std::fs::write(&path, &text) {
                progress(format!(
                    "  WARNING: cannot write {}: {error}",
                    path.display()
                ));
            }
            Some(text)
        }
        Err(error) => {
            let key = format!("logs:{}", instance.name);
            progress(format!("  UNAVAILABLE {key}: {error}"));
            unavailable.insert(key, error.to_string().into());
            None
        }
    }
}

/// Keeps the topic counts and everything unavailable (this collection's and the tasks') in
/// the run's artifacts and the store.
fn save_results(
    context: &RunContext,
    counts: serde_json::Map<String, serde_json::Value>,
    mut unavailable: Unavailable,
) {
    unavailable.extend(context.unavailable_list());
    let artifacts = context.home.run_dir(&context.id);
    let counts = serde_json::Value::Object(counts);
    let unavailable = serde_json::Value::Object(unavailable.into_iter().collect());
    let path = artifacts.join("topics.json");
    let text = serde_json::to_string_pretty(&counts).expect("JSON values serialize");
    if let Err(error) = std::fs::write(&path, text) {
        progress(format!(
            "  WARNING: cannot write {}: {error}",
            path.display()
        ));
    }
    match context.store() {
        Ok(store) => context.record(
            "the run's results",
            store.set_run_results(&context.id, &counts, &unavailable),
        ),
        Err(error) => progress(format!(
            "  WARNING: cannot record the run's results: {error:?}"
        )),
    }
}

/// Why a chart server's windows could not be saved.
#[derive(Debug, thiserror::Error)]
enum SnapshotError {
    #[error(transparent)]
    Read(#[from] StatusError),
    #[error("the chart server's window list is not JSON: {0}")]
    NotAList(#[source] serde_json::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Saves every window of a chart server as JSON, PNG and SVG; returns how many windows.
async fn save_chart_snapshots(endpoint: &str, dir: &Path) -> Result<usize, SnapshotError> {
    let client = http_client()?;
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&get_bytes(&client, &format!("{endpoint}/api/windows")).await?)
            .map_err(SnapshotError::NotAList)?;
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|source| SnapshotError::Write { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| SnapshotError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for window in &list {
        let (env, win) = (
            window["env"].as_str().unwrap_or_default(),
            window["win"].as_str().unwrap_or_default(),
        );
        let base = format!("{endpoint}/api/windows/{env}/{win}");
        let name = format!("{env}-{win}");
        for (suffix, url) in [
            ("json", format!("{base}?points=0")),
            ("png", format!("{base}/snapshot.png")),
            ("svg", format!("{base}/snapshot.svg")),
        ] {
            let bytes = get_bytes(&client, &url).await?;
            write(dir.join(format!("{name}.{suffix}")), &bytes)?;
        }
    }
    Ok(list.len())
}

/// What a source's status says about the data it was to publish.
#[derive(Debug, PartialEq, Eq)]
enum SourceHealth {
    Published,
    /// It published, with failed attempts along the way (a live URL that did not always
    /// answer): worth recording, yet what it published was seen.
    PublishedDespite(String),
    /// It failed, or published nothing: what it was to bring was not seen.
    Failed(String),
}

fn source_health(status: &SourceStatus) -> SourceHealth {
    let last = || status.last_error.as_deref().unwrap_or("no reason given");
    match (status.state, status.published, status.failed_attempts) {
        (SourceState::Failed, _, _) => SourceHealth::Failed(format!("failed: {}", last())),
        (_, 0, 0) => SourceHealth::Failed("published nothing".into()),
        (_, 0, failures) => SourceHealth::Failed(format!(
            "published nothing: source unreachable ({failures} failed attempts); last: {}",
            last()
        )),
        (_, _, 0) => SourceHealth::Published,
        (_, published, failures) => SourceHealth::PublishedDespite(format!(
            "published {published} documents; {failures} attempts failed, last: {}",
            last()
        )),
    }
}

/// Why a topology's runners were not seen to finish what they consumed.
#[derive(Debug, thiserror::Error)]
enum DrainError {
    #[error("`{0}` has no running replica to ask")]
    NoReplica(String),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("the runner failed: {0}")]
    RunnerFailed(String),
    #[error("interrupted")]
    Interrupted,
    #[error("still busy after {timeout:?} ({consumed} consumed, {processed} processed, lag {lag})", lag = .lag.map_or("unknown".into(), |lag| lag.to_string()))]
    StillBusy {
        timeout: Duration,
        consumed: u64,
        processed: u64,
        lag: Option<u64>,
    },
    #[error("no status within {0:?}")]
    NoStatus(Duration),
}

/// Waits until the runner has finished every record it consumed and its input has nothing
/// left for it (the sources are stopped by then), as its `/status` says — every replica's,
/// when it runs several.
async fn drain_topology(context: &RunContext, instance: &str) -> Result<RunnerStatus, DrainError> {
    let client = http_client()?;
    // Held until the drain ends: on Kubernetes each is a port-forward to one replica's pod.
    let access = context
        .runtime
        .http_replicas(&context.scope, instance)
        .await
        .map_err(StatusError::from)?;
    let replicas: Vec<String> = access.iter().map(|a| format!("{}/status", a.url)).collect();
    if replicas.is_empty() {
        return Err(DrainError::NoReplica(instance.to_string()));
    }
    let started = Instant::now();
    let mut last: Option<RunnerStatus> = None;
    let mut stable_since = Instant::now();
    while started.elapsed() < DRAIN_TIMEOUT {
        let mut now: Vec<RunnerStatus> = Vec::new();
        for replica in &replicas {
            now.push(get_status(&client, replica).await?);
        }
        if let Some(failed) = now.iter().find(|s| s.state == RunnerState::Failed) {
            return Err(DrainError::RunnerFailed(
                failed
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no reason given".into()),
            ));
        }
        let now = RunnerStatus::combined(now);
        let changed = last.as_ref().is_none_or(|l| {
            (l.consumed, l.processed, l.lag) != (now.consumed, now.processed, now.lag)
        });
        if changed {
            stable_since = Instant::now();
        } else if now.is_drained() && stable_since.elapsed() >= DRAIN_SETTLE {
            return Ok(now);
        }
        last = Some(now);
        context
            .sleep(Duration::from_millis(250))
            .await
            .map_err(|_| DrainError::Interrupted)?;
    }
    Err(match last {
        Some(l) => DrainError::StillBusy {
            timeout: DRAIN_TIMEOUT,
            consumed: l.consumed,
            processed: l.processed,
            lag: l.lag,
        },
        None => DrainError::NoStatus(DRAIN_TIMEOUT),
    })
}
