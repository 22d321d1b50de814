//! The data path: what a workflow asks of Kafka (create topics, wait for messages, count
//! them) and the typed report each step gives back, whether it ran in this process or in a Job
//! next to the brokers (which writes the same report as JSON).

use serde::{Deserialize, Serialize};
use weir_topology::kafka::TopicCounts;

use super::topics::WaitReport;

/// A data-path step: what a workflow asks of Kafka. A runtime runs it where it can reach the
/// brokers (directly, or as a Job next to them) and says what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataStep {
    CreateTopics {
        kafka: String,
        topics: Vec<String>,
        partitions: i32,
    },
    /// Until `topic` holds at least `messages` messages, within the step's timeout.
    Wait {
        kafka: String,
        topic: String,
        messages: i64,
    },
    Count {
        kafka: String,
        topics: Vec<String>,
    },
    /// Compare `topic` once with the final state of `table` the change events of `events`
    /// leave (the engine repeats it until they match or its time is up).
    VerifyTable {
        kafka: String,
        topic: String,
        events: std::path::PathBuf,
        table: String,
        primary_keys: String,
    },
}

impl DataStep {
    pub fn kafka(&self) -> &str {
        match self {
            DataStep::CreateTopics { kafka, .. }
            | DataStep::Wait { kafka, .. }
            | DataStep::Count { kafka, .. }
            | DataStep::VerifyTable { kafka, .. } => kafka,
        }
    }
}

/// What a data-path step showed.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The step ran and reported this.
    Seen(DataReport),
    /// The step finished but nothing was seen, with the reason (e.g. a Job on a simulated
    /// node that ran no container). Never to be read as success of what it checks.
    Unseen(String),
}

/// What `weir topics create --report` writes: the topics that exist now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopics {
    pub created: Vec<String>,
}

/// What a data step saw, one kind per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataReport {
    Created(CreatedTopics),
    Waited(WaitReport),
    Counted(TopicCounts),
    Verified(crate::topics::table::TableComparison),
}

impl DataReport {
    /// Reads the JSON report a Job wrote for `step`.
    pub fn read(step: &DataStep, text: &str) -> Result<DataReport, serde_json::Error> {
        Ok(match step {
            DataStep::CreateTopics { .. } => DataReport::Created(serde_json::from_str(text)?),
            DataStep::Wait { .. } => DataReport::Waited(serde_json::from_str(text)?),
            DataStep::Count { .. } => DataReport::Counted(serde_json::from_str(text)?),
            DataStep::VerifyTable { .. } => DataReport::Verified(serde_json::from_str(text)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_report_is_read_as_the_report_of_its_step() {
        let wait = DataStep::Wait {
            kafka: "kafka".into(),
            topic: "raw".into(),
            messages: 5,
        };
        let text = r#"{"topic":"raw","count":7,"wanted":5,"reached":true}"#;
        match DataReport::read(&wait, text).unwrap() {
            DataReport::Waited(report) => {
                assert_eq!((report.count, report.reached), (Some(7), true))
            }
            other => panic!("a wait reported {other:?}"),
        }
        let count = DataStep::Count {
            kafka: "kafka".into(),
            topics: vec!["raw".into()],
        };
        assert!(DataReport::read(&count, "{oops").is_err());
        match DataReport::read(&count, r#"{"counts":{"raw":3},"missing":["gone"]}"#).unwrap() {
            DataReport::Counted(counts) => {
                assert_eq!(counts.counts["raw"], 3);
                assert_eq!(counts.missing, ["gone"]);
            }
            other => panic!("a count reported {other:?}"),
        }
    }
}
