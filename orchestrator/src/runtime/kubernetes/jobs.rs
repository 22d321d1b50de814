//! The data-path steps of a run (create topics, wait for messages, count them) as Jobs of
//! the `weir` image, so that they run next to Kafka and need no network path from the
//! orchestrator. Each writes its JSON result to `/dev/termination-log`, which comes back in
//! the pod's status: no log access is needed either. A Job that finished without such a
//! result (on a control plane where no container runs, such as kwok) has shown nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, ResourceRequirements};
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
}

impl Step {
    /// What the step is called in Job names and messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::CreateTopics { .. } => "create-topics",
            Step::Wait { .. } => "wait",
            Step::Count { .. } => "count",
        }
    }

    /// The arguments after `weir`.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["topics".into()];
        let report = ["--report".to_string(), REPORT_PATH.to_string()];
        match self {
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
            Quantity("128Mi".into()),
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
                        ..Container::default()
                    }],
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
}
