//! Results kept before teardown: sources stopped first, topologies drained, then the message
//! count of every topic the run created, and the service logs, saved under the run's artifact
//! directory and in the store. What cannot be read is reported as unavailable, never guessed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{progress, RunContext};
use crate::store::{InstanceRecord, InstanceState};

const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Collects results once; `drain` stops the sources and waits for the topologies first.
pub fn collect(context: &RunContext, kafka: Option<&str>, drain: bool) {
    if context.collected.swap(true, Ordering::SeqCst) {
        return;
    }
    if let Some(kube) = &context.kube {
        return super::kube_collect::collect(context, kube, kafka, drain);
    }
    let mut unavailable = BTreeMap::new();
    let Ok(runtime) = context.runtime() else {
        return;
    };
    let instances: Vec<InstanceRecord> = runtime
        .store()
        .instances()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let kafka_record = instances.iter().find(|r| {
        r.service == "kafka"
            && r.state == InstanceState::Running
            && match kafka {
                Some(name) => r.name == name,
                None => r.run_id.as_deref() == Some(&context.id),
            }
    });

    // A live source that could not reach its URL published nothing meanwhile; say so.
    for source in instances
        .iter()
        .filter(|r| r.run_id.as_deref() == Some(&context.id) && r.service == "http-source")
    {
        let log =
            weir_catalog::local::process::log_tail(std::path::Path::new(&source.log_path), 400);
        if let Some(problem) = unreachable_report(&log) {
            progress(format!(
                "  source `{}` could not reach its URL: {problem}",
                source.name
            ));
            unavailable.insert(format!("source:{}", source.name), problem.into());
        }
    }

    if drain {
        for source in instances.iter().filter(|r| {
            r.run_id.as_deref() == Some(&context.id)
                && matches!(r.service.as_str(), "http-source" | "replay-source")
        }) {
            progress(format!(
                "  stopping source `{}` before counting",
                source.name
            ));
            if let Err(error) = runtime.down(&source.name) {
                progress(format!("  cannot stop `{}`: {error}", source.name));
            }
        }
        let topologies = context.topologies.lock().expect("topologies lock").clone();
        for name in topologies {
            match instances.iter().find(|r| r.name == name) {
                Some(runner) => {
                    if let Err(reason) = drain_topology(&runner.endpoint) {
                        progress(format!("  topology `{name}` did not finish: {reason}"));
                        unavailable
                            .insert(format!("drain:{name}"), serde_json::Value::from(reason));
                    }
                }
                None => {
                    unavailable.insert(
                        format!("drain:{name}"),
                        "the topology runner is not running".into(),
                    );
                }
            }
        }
    }

    let topics = context.topic_list();
    let mut counts = serde_json::Map::new();
    match kafka_record {
        Some(record) => match weir_topology::kafka::count_messages(&record.endpoint, &topics) {
            Ok(found) => {
                for (topic, count) in found {
                    counts.insert(topic, count.into());
                }
            }
            Err(reason) => {
                unavailable.insert(
                    "topics".into(),
                    format!("cannot read topic offsets: {reason}").into(),
                );
            }
        },
        None if !topics.is_empty() => {
            unavailable.insert(
                "topics".into(),
                "no Kafka instance of this run is running".into(),
            );
        }
        None => {}
    }
    if !counts.is_empty() {
        let summary: Vec<String> = counts.iter().map(|(t, c)| format!("{t}={c}")).collect();
        progress(format!("  topic counts: {}", summary.join(" ")));
    }

    let artifacts = context.options.home.run_dir(&context.id);
    for chart_server in instances
        .iter()
        .filter(|r| r.run_id.as_deref() == Some(&context.id) && r.service == "chart-server")
    {
        let dir = artifacts.join("charts").join(&chart_server.name);
        match save_chart_snapshots(&chart_server.endpoint, &dir) {
            Ok(saved) => progress(format!(
                "  saved {saved} chart snapshots of `{}`",
                chart_server.name
            )),
            Err(reason) => {
                progress(format!(
                    "  cannot save the charts of `{}`: {reason}",
                    chart_server.name
                ));
                unavailable.insert(format!("charts:{}", chart_server.name), reason.into());
            }
        }
    }
    let logs = artifacts.join("logs");
    let _ = std::fs::create_dir_all(&logs);
    for record in instances
        .iter()
        .filter(|r| r.run_id.as_deref() == Some(&context.id))
    {
        if !record.log_path.is_empty() {
            let _ = std::fs::copy(&record.log_path, logs.join(format!("{}.log", record.name)));
        }
    }
    save_results(context, counts, unavailable);
}

/// Keeps the topic counts and everything unavailable (this collection's and the tasks') in
/// the run's artifacts and the store.
pub(super) fn save_results(
    context: &RunContext,
    counts: serde_json::Map<String, serde_json::Value>,
    mut unavailable: BTreeMap<String, serde_json::Value>,
) {
    unavailable.extend(
        context
            .unavailable
            .lock()
            .expect("unavailable lock")
            .clone(),
    );
    let artifacts = context.options.home.run_dir(&context.id);
    let counts = serde_json::Value::Object(counts);
    let unavailable = serde_json::Value::Object(unavailable.into_iter().collect());
    let _ = std::fs::write(
        artifacts.join("topics.json"),
        serde_json::to_string_pretty(&counts).unwrap_or_default(),
    );
    if let Ok(store) = context.store() {
        let _ = store.set_run_results(&context.id, &counts, &unavailable);
    }
}

/// Saves every window of a chart server as JSON, PNG and SVG; returns how many windows.
pub(super) fn save_chart_snapshots(endpoint: &str, dir: &std::path::Path) -> Result<usize, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let get = |path: &str| {
        client
            .get(format!("{endpoint}{path}"))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .map_err(|e| format!("GET {path}: {e}"))
    };
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&get("/api/windows")?).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for window in &list {
        let (env, win) = (
            window["env"].as_str().unwrap_or_default(),
            window["win"].as_str().unwrap_or_default(),
        );
        let base = format!("/api/windows/{env}/{win}");
        let name = format!("{env}-{win}");
        for (suffix, path) in [
            ("json", format!("{base}?points=0")),
            ("png", format!("{base}/snapshot.png")),
            ("svg", format!("{base}/snapshot.svg")),
        ] {
            std::fs::write(dir.join(format!("{name}.{suffix}")), get(&path)?)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(list.len())
}

/// The last "source unreachable" report in a source's log, if it failed since it started.
pub(super) fn unreachable_report(tail: &str) -> Option<String> {
    let failures = tail
        .lines()
        .filter(|l| l.contains("source unreachable"))
        .count();
    let last = tail
        .lines()
        .rev()
        .find(|l| l.contains("source unreachable"))?;
    let reason = last.split("source unreachable: ").nth(1).unwrap_or(last);
    Some(format!(
        "source unreachable ({failures} failed attempts); last: {reason}"
    ))
}

/// Waits until the runner has finished every record it consumed and its input has nothing
/// left for it (the sources are stopped by then).
pub(super) fn drain_topology(endpoint: &str) -> Result<(), String> {
    let url = format!("{endpoint}/metrics");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut last = (f64::NAN, f64::NAN);
    let mut stable_since = Instant::now();
    while started.elapsed() < DRAIN_TIMEOUT {
        let text = client
            .get(&url)
            .send()
            .and_then(|r| r.text())
            .map_err(|e| e.to_string())?;
        let read = |metric: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{metric}{{")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let now = (
            read("weir_records_in_total"),
            read("weir_records_done_total"),
        );
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if now.0 == now.1 && stable_since.elapsed() >= Duration::from_secs(2) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!(
        "still busy after {DRAIN_TIMEOUT:?} ({} in, {} done)",
        last.0, last.1
    ))
}
