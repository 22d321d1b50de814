//! Results of a run on Kubernetes, gathered before its namespace goes: sources stopped,
//! topologies drained through a port-forward to their metrics, topic counts from a Job next
//! to Kafka, chart snapshots through a port-forward, pod logs through the API. Whatever
//! cannot be reached is listed as unavailable with the reason — never estimated.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_catalog::catalog;

use super::collect::{drain_topology, save_chart_snapshots, save_results, unreachable_report};
use super::kube::KubeRun;
use super::{progress, RunContext};
use crate::runtime::kubernetes::jobs::{Step, NO_REPORT};

const COUNT_TIMEOUT: Duration = Duration::from_secs(120);

pub fn collect(context: &RunContext, kube: &KubeRun, kafka: Option<&str>, drain: bool) {
    let mut unavailable: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut missing = |key: String, reason: String| {
        progress(format!("  UNAVAILABLE {key}: {reason}"));
        unavailable.insert(key, reason.into());
    };
    let instances = kube.instances();
    let artifacts = context.options.home.run_dir(&context.id);
    let logs_dir = artifacts.join("logs");
    let _ = std::fs::create_dir_all(&logs_dir);

    // Logs first: stopping the sources deletes their pods.
    let mut logs = BTreeMap::new();
    for (name, _) in &instances {
        match kube.logs(name) {
            Ok(text) => {
                let _ = std::fs::write(logs_dir.join(format!("{name}.log")), &text);
                logs.insert(name.clone(), text);
            }
            Err(error) => missing(format!("logs:{name}"), error.to_string()),
        }
    }
    for (name, service) in &instances {
        if service == "http-source" {
            if let Some(problem) = logs.get(name).and_then(|log| unreachable_report(log)) {
                missing(format!("source:{name}"), problem);
            }
        }
    }

    if drain {
        for (name, _) in instances.iter().filter(|(_, s)| s.ends_with("-source")) {
            progress(format!("  stopping source `{name}` before counting"));
            if let Err(error) = kube.stop(name) {
                progress(format!("  cannot stop `{name}`: {error}"));
            }
        }
        let topologies = context.topologies.lock().expect("topologies lock").clone();
        let metrics_port = catalog::find("topology-runner").and_then(|d| d.ports.first().cloned());
        for name in topologies {
            let drained = metrics_port
                .as_ref()
                .ok_or_else(|| "the runner has no metrics port".to_string())
                .and_then(|port| kube.http_endpoint(&name, port).map_err(|e| e.to_string()))
                .and_then(|(url, _forward)| {
                    drain_topology(&url).map_err(|e| format!("through a port-forward: {e}"))
                });
            if let Err(reason) = drained {
                missing(format!("drain:{name}"), reason);
            }
        }
    }

    let topics = context.topic_list();
    let kafka_name = kafka.map(str::to_string).or_else(|| {
        instances
            .iter()
            .find(|(_, service)| service == "kafka")
            .map(|(name, _)| name.clone())
    });
    let mut counts = serde_json::Map::new();
    match kafka_name.map(|name| kube.kafka_endpoint(&name)) {
        Some(Ok(brokers)) if !topics.is_empty() => {
            let step = Step::Count {
                brokers,
                topics: topics.clone(),
            };
            match kube.run_step("results", &step, COUNT_TIMEOUT) {
                Ok(Some(report)) => match report.get("counts").and_then(|c| c.as_object()) {
                    Some(found) => counts = found.clone(),
                    None => missing("topics".into(), format!("the count Job reported {report}")),
                },
                Ok(None) => missing(
                    "topics".into(),
                    format!("{NO_REPORT}: no topic was counted"),
                ),
                Err(error) => missing("topics".into(), format!("the count Job failed: {error}")),
            }
        }
        Some(Err(reason)) if !topics.is_empty() => missing("topics".into(), reason),
        None if !topics.is_empty() => {
            missing("topics".into(), "the run has no Kafka instance".into())
        }
        _ => {}
    }
    if !counts.is_empty() {
        let summary: Vec<String> = counts.iter().map(|(t, c)| format!("{t}={c}")).collect();
        progress(format!("  topic counts: {}", summary.join(" ")));
    }

    let http_port = catalog::find("chart-server").and_then(|d| d.ports.first().cloned());
    for (name, _) in instances.iter().filter(|(_, s)| s == "chart-server") {
        let dir = artifacts.join("charts").join(name);
        let saved = http_port
            .as_ref()
            .ok_or_else(|| "the chart server has no port".to_string())
            .and_then(|port| kube.http_endpoint(name, port).map_err(|e| e.to_string()))
            .and_then(|(url, _forward)| {
                save_chart_snapshots(&url, &dir).map_err(|e| format!("through a port-forward: {e}"))
            });
        match saved {
            Ok(saved) => progress(format!("  saved {saved} chart snapshots of `{name}`")),
            Err(reason) => missing(format!("charts:{name}"), reason),
        }
    }
    save_results(context, counts, unavailable);
}
