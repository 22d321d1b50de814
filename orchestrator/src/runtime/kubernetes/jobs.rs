//! The data-path steps of a run (create topics, wait for messages, count them, compare a
//! target with change events) as Jobs of
//! the `weir` image, so that they run next to Kafka and need no network path from the
//! orchestrator. Each writes its JSON result to `/dev/termination-log`, which comes back in
//! the pod's status: no log access is needed either. A Job that finished without such a
//! result (on a control plane where no container runs, such as kwok) has shown nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, PodSpec, PodTemplateSpec, ResourceRequirements, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ownership_labels;

/// Why a finished Job's result is unavailable when it reported nothing.
pub const NO_REPORT: &str =
    "the Job finished on a kwok node without reporting: no container runs there";

/// Where the container writes its result.
pub const REPORT_PATH: &str = "/dev/termination-log";

/// One data-path step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateTopics {
        brokers: String,
        topics: Vec<String>,
        partitions: i32,
    },
    Wait {
        brokers: String,
        topic: String,
        messages: i64,
        timeout: Duration,
    },
    Count {
        brokers: String,
        topics: Vec<String>,
    },
    /// `weir cdc verify`, comparing again until the target matches or `wait` passes; the
    /// change events come from the ConfigMap `events_config_map` (key [`EVENTS_FILE`]).
    VerifyTable {
        brokers: String,
        topic: String,
        table: String,
        primary_keys: String,
        events_config_map: String,
        wait: Duration,
    },
}

/// Where a Job finds the files of its ConfigMap.
pub const FILES_DIR: &str = "/etc/weir";
/// The change events' key in a verify Job's ConfigMap, and their file name in [`FILES_DIR`].
pub const EVENTS_FILE: &str = "events.jsonl";

impl Step {
    /// What the step is called in Job names and messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::CreateTopics { .. } => "create-topics",
            Step::Wait { .. } => "wait",
            Step::Count { .. } => "count",
            Step::VerifyTable { .. } => "verify",
        }
    }

    /// A comparison holds the expected table and the target's rows in memory.
    fn memory_limit(&self) -> &'static str {
        match self {
            Step::VerifyTable { .. } => "512Mi",
            _ => "128Mi",
        }
    }

    /// The ConfigMap the Job mounts at [`FILES_DIR`], if it needs one.
    fn config_map(&self) -> Option<&str> {
        match self {
            Step::VerifyTable {
                events_config_map, ..
            } => Some(events_config_map),
            _ => None,
        }
    }

    /// The arguments after `weir`.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["topics".into()];
        let report = ["--report".to_string(), REPORT_PATH.to_string()];
        match self {
            Step::VerifyTable {
                brokers,
                topic,
                table,
                primary_keys,
                wait,
                ..
            } => {
                args = vec![
                    "cdc".into(),
                    "verify".into(),
                    "--brokers".into(),
                    brokers.clone(),
                ];
                args.extend(["--events".into(), format!("{FILES_DIR}/{EVENTS_FILE}")]);
                args.extend(["--table".into(), table.clone()]);
                args.extend(["--primary-keys".into(), primary_keys.clone()]);
                args.extend(["--wait".into(), format!("{}s", wait.as_secs().max(1))]);
                args.extend(report);
                args.push(topic.clone());
            }
            Step::CreateTopics {
                brokers,
                topics,
                partitions,
            } => {
                args.extend(["create".into(), "--brokers".into(), brokers.clone()]);
                args.extend(["--partitions".into(), partitions.to_string()]);
                args.extend(report);
                args.extend(topics.iter().cloned());
            }
            Step::Wait {
                brokers,
                topic,
                messages,
                timeout,
            } => {
                args.extend(["wait".into(), "--brokers".into(), brokers.clone()]);
                args.extend(["--topic".into(), topic.clone()]);
                args.extend(["--messages".into(), messages.to_string()]);
                args.extend(["--timeout".into(), format!("{}s", timeout.as_secs().max(1))]);
                args.extend(report);
            }
            Step::Count { brokers, topics } => {
                args.extend(["count".into(), "--brokers".into(), brokers.clone()]);
                // A topic the run never created is reported under `missing`, not a failed Job.
                args.push("--missing-ok".into());
                args.extend(report);
                args.extend(topics.iter().cloned());
            }
        }
        args
    }
}

/// The Job running `step` from `image`, named `weir-<verb>-<task>-` plus a suffix the API
/// server chooses (a retried task gets a new Job), given up after `deadline`.
pub fn render(
    step: &Step,
    task: &str,
    image: &str,
    run_id: Option<&str>,
    deadline: Duration,
) -> Job {
    let mut labels = ownership_labels(run_id);
    labels.extend([
        ("app.kubernetes.io/name".to_string(), "weir-job".to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            step.verb().to_string(),
        ),
    ]);
    let mut prefix = format!("weir-{}-{}", step.verb(), task.to_ascii_lowercase());
    prefix.truncate(50);
    let prefix = format!("{}-", prefix.trim_end_matches('-'));
    let resources = ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("50m".into())),
            ("memory".to_string(), Quantity("32Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity(step.memory_limit().into()),
        )])),
        ..ResourceRequirements::default()
    };
    Job {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline.as_secs().max(1) as i64),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "weir".into(),
                        image: Some(image.into()),
                        args: Some(step.args()),
                        termination_message_path: Some(REPORT_PATH.into()),
                        resources: Some(resources),
                        volume_mounts: step.config_map().map(|_| {
                            vec![VolumeMount {
                                name: "files".into(),
                                mount_path: FILES_DIR.into(),
                                read_only: Some(true),
                                ..VolumeMount::default()
                            }]
                        }),
                        ..Container::default()
                    }],
                    volumes: step.config_map().map(|config_map| {
                        vec![Volume {
                            name: "files".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: config_map.to_string(),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        }]
                    }),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::kubernetes::RUN_LABEL;

    #[test]
    fn a_count_job_runs_weir_topics_count_and_reports_to_the_termination_log() {
        let step = Step::Count {
            brokers: "kafka-1:9092".into(),
            topics: vec!["rates".into(), "errors".into()],
        };
        let job = render(
            &step,
            "Results",
            "weir:test",
            Some("r1"),
            Duration::from_secs(60),
        );
        let spec = job.spec.unwrap();
        let container = &spec.template.spec.unwrap().containers[0];
        assert_eq!(
            container.args.as_deref().unwrap(),
            [
                "topics",
                "count",
                "--brokers",
                "kafka-1:9092",
                "--missing-ok",
                "--report",
                "/dev/termination-log",
                "rates",
                "errors"
            ]
        );
        assert_eq!(container.image.as_deref(), Some("weir:test"));
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(60));
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels[RUN_LABEL], "r1");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "weir");
        assert_eq!(
            job.metadata.generate_name.as_deref(),
            Some("weir-count-results-")
        );
    }

    #[test]
    fn long_task_names_still_make_valid_job_names() {
        let step = Step::Wait {
            brokers: "k:9092".into(),
            topic: "t".into(),
            messages: 10,
            timeout: Duration::from_millis(10),
        };
        let job = render(&step, &"x".repeat(80), "i", None, Duration::from_secs(5));
        let prefix = job.metadata.generate_name.unwrap();
        assert!(prefix.len() <= 51, "{prefix}");
        assert!(step.args().contains(&"1s".to_string()));
    }

    #[test]
    fn a_verify_job_reads_the_change_events_from_its_config_map_and_waits_for_a_match() {
        let step = Step::VerifyTable {
            brokers: "kafka:9092".into(),
            topic: "claims-target".into(),
            table: "claims".into(),
            primary_keys: "claims=claim_id".into(),
            events_config_map: "weir-verify-verify-events".into(),
            wait: Duration::from_secs(150),
        };
        let job = render(
            &step,
            "verify",
            "weir:test",
            Some("r1"),
            Duration::from_secs(180),
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        let args = container.args.as_deref().unwrap();
        assert_eq!(&args[..4], ["cdc", "verify", "--brokers", "kafka:9092"]);
        let after = |flag: &str| {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1].as_str()
        };
        assert_eq!(after("--events"), "/etc/weir/events.jsonl");
        assert_eq!(after("--wait"), "150s");
        assert_eq!(after("--report"), REPORT_PATH);
        assert_eq!(args.last().map(String::as_str), Some("claims-target"));
        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert_eq!(
            volume.config_map.as_ref().unwrap().name,
            "weir-verify-verify-events"
        );
        let mount = &container.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            ("files", FILES_DIR)
        );
    }
}
