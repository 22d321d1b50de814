//! Waiting for a topic to fill: the one loop behind the local runtime's `wait` step and
//! `weir topics wait` (which Kubernetes Jobs run next to the brokers).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// How often a wait for messages reads the topic's offsets.
const WAIT_POLL: Duration = Duration::from_millis(500);
/// How often a long wait says how far it got.
const WAIT_PROGRESS: Duration = Duration::from_secs(10);

/// What a wait for messages saw last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitReport {
    pub topic: String,
    /// Messages the topic held; `None` while the cluster does not have the topic.
    pub count: Option<i64>,
    pub wanted: i64,
    pub reached: bool,
}

impl WaitReport {
    /// What the topic held, in words.
    pub fn held(&self) -> String {
        match self.count {
            Some(count) => format!("`{}` held {count} of {} messages", self.topic, self.wanted),
            None => format!("`{}` did not exist", self.topic),
        }
    }
}

/// Why a wait ended without a report.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("counting `{topic}`: {source}")]
    Count {
        topic: String,
        source: weir_topology::kafka::CountError,
    },
    #[error("interrupted")]
    Interrupted,
}

/// Reads the topic's offsets until it holds `wanted` messages or `timeout` passes (the
/// report then says `reached: false`), calling `on_progress` every 10 s meanwhile.
pub async fn wait_for_messages(
    brokers: &str,
    topic: &str,
    wanted: i64,
    timeout: Duration,
    cancel: &CancellationToken,
    mut on_progress: impl FnMut(&WaitReport),
) -> Result<WaitReport, WaitError> {
    let started = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        let (b, t) = (brokers.to_string(), topic.to_string());
        let count = tokio::task::spawn_blocking(move || weir_topology::kafka::count_topic(&b, &t))
            .await
            .expect("counting does not panic")
            .map_err(|source| WaitError::Count {
                topic: topic.into(),
                source,
            })?;
        let report = WaitReport {
            topic: topic.into(),
            count,
            wanted,
            reached: count.is_some_and(|n| n >= wanted),
        };
        if report.reached || started.elapsed() >= timeout {
            return Ok(report);
        }
        if last_progress.elapsed() >= WAIT_PROGRESS {
            on_progress(&report);
            last_progress = Instant::now();
        }
        // Kafka has no notification for "a topic grew": its offsets are read.
        tokio::select! {
            _ = tokio::time::sleep(WAIT_POLL) => {}
            _ = cancel.cancelled() => return Err(WaitError::Interrupted),
        }
    }
}
