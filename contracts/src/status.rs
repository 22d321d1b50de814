//! What the runner and the sources answer on `GET /status`: their state, what they have done
//! and their last error, as typed JSON. The processes write these types and the orchestrator
//! reads them, so a field one side renames the other stops compiling; a count a process has
//! not seen is absent, never zero.

use serde::{Deserialize, Serialize};

/// Where a runner is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunnerState {
    /// Connecting and joining its consumer group.
    Starting,
    /// Consuming, processing and producing.
    Running,
    /// Kafka does not answer (a broker down or moving): the clients reconnect on their own
    /// and the runner goes on where it was once it answers; `last_error` says what was seen.
    WaitingForKafka,
    /// Asked to stop: finishing what is in flight and committing.
    Stopping,
    Stopped,
    /// Stopped by an error (`last_error` says which).
    Failed,
}

/// `GET /status` of a topology runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerStatus {
    pub state: RunnerState,
    pub topology: String,
    /// Records read from the input topic.
    pub consumed: u64,
    /// Records whose outputs are all acknowledged.
    pub processed: u64,
    /// Records sent to the error topic (counted in `processed`).
    pub failed_records: u64,
    /// Records later than a window's grace, written to its late topic or the error topic
    /// (counted in `processed`; the windows still open took them as well).
    #[serde(default)]
    pub late_records: u64,
    /// Messages written to output topics, error topic excluded.
    pub messages_out: u64,
    /// Records in the input topic not yet read by this runner, over its assigned partitions;
    /// absent while it has no assignment or does not know a partition's end yet.
    pub lag: Option<u64>,
    pub last_error: Option<String>,
    /// The stores of its stateful operators (none for a stateless topology). Runners older
    /// than this field answer without it.
    #[serde(default)]
    pub state_stores: Vec<StateStoreStatus>,
    /// How long records took, from their input message's timestamp to the acknowledgement of
    /// their outputs; absent before the first record finishes (and from older runners).
    #[serde(default)]
    pub latency: Option<LatencyStatus>,
    /// Each step of the topology with the records it took and passed on, in the order the
    /// topology names them (none from older runners).
    #[serde(default)]
    pub steps: Vec<StepStatus>,
}

/// One step's records since its runner started: those its first operator took, and those
/// its last operator passed on (filtered, refused and retried records are not passed on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStatus {
    pub name: String,
    pub records_in: u64,
    pub records_out: u64,
}

/// Percentiles of the latency of the records a runner finished since it started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStatus {
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Records measured.
    pub samples: u64,
}

impl LatencyStatus {
    /// Several replicas' latencies as one: the worst percentiles, since percentiles of
    /// separate histograms cannot be merged exactly, and every sample counted.
    fn worst(self, other: LatencyStatus) -> LatencyStatus {
        LatencyStatus {
            p50_ms: self.p50_ms.max(other.p50_ms),
            p99_ms: self.p99_ms.max(other.p99_ms),
            samples: self.samples + other.samples,
        }
    }
}

/// One stateful operator's store in a runner: what it holds of the partitions the runner owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateStoreStatus {
    /// The operator as `NAME-INDEX` (`diff-2`): its kind and place in the topology.
    pub operator: String,
    /// The compacted topic the store is backed by.
    pub changelog: String,
    /// Keys held.
    pub keys: u64,
    /// The bytes of the keys and values held (key text, partition and value), without the
    /// table's own overhead.
    pub bytes: u64,
    /// The latest restore of a partition's state into this runner, if there was one.
    pub last_restore: Option<StateRestore>,
}

/// A partition's state restored from the changelogs when it was assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRestore {
    pub partition: i32,
    /// Keys restored, over the topology's stores.
    pub keys: u64,
    /// How long reading the changelogs took.
    pub millis: u64,
    /// When it finished, in Unix milliseconds.
    pub at_unix_ms: u64,
}

impl RunnerStatus {
    pub fn new(topology: &str) -> Self {
        Self {
            state: RunnerState::Starting,
            topology: topology.into(),
            consumed: 0,
            processed: 0,
            failed_records: 0,
            late_records: 0,
            messages_out: 0,
            lag: None,
            last_error: None,
            state_stores: Vec::new(),
            latency: None,
            steps: Vec::new(),
        }
    }

    /// The replicas of one topology seen as one runner: counts and lag summed (the lag is
    /// known only when every replica's is), running only when every replica runs, the
    /// latency the worst replica's.
    pub fn combined(replicas: Vec<RunnerStatus>) -> RunnerStatus {
        let mut replicas = replicas.into_iter();
        let Some(mut all) = replicas.next() else {
            return RunnerStatus::new("");
        };
        for replica in replicas {
            all.consumed += replica.consumed;
            all.processed += replica.processed;
            all.failed_records += replica.failed_records;
            all.late_records += replica.late_records;
            all.messages_out += replica.messages_out;
            all.lag = all.lag.zip(replica.lag).map(|(a, b)| a + b);
            if all.state == RunnerState::Running {
                all.state = replica.state;
            }
            all.last_error = all.last_error.or(replica.last_error);
            all.latency = match (all.latency, replica.latency) {
                (Some(mine), Some(theirs)) => Some(mine.worst(theirs)),
                (mine, theirs) => mine.or(theirs),
            };
            for step in replica.steps {
                match all.steps.iter_mut().find(|s| s.name == step.name) {
                    Some(mine) => {
                        mine.records_in += step.records_in;
                        mine.records_out += step.records_out;
                    }
                    None => all.steps.push(step),
                }
            }
            for store in replica.state_stores {
                match all
                    .state_stores
                    .iter_mut()
                    .find(|s| s.operator == store.operator)
                {
                    Some(mine) => {
                        mine.keys += store.keys;
                        mine.bytes += store.bytes;
                        mine.last_restore = mine
                            .last_restore
                            .into_iter()
                            .chain(store.last_restore)
                            .max_by_key(|restore| restore.at_unix_ms);
                    }
                    None => all.state_stores.push(store),
                }
            }
        }
        all
    }

    /// Everything read has been processed and nothing is left to read.
    pub fn is_drained(&self) -> bool {
        self.state == RunnerState::Running && self.consumed == self.processed && self.lag == Some(0)
    }
}

/// Where a source is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceState {
    /// Publishing documents at its pace.
    Publishing,
    /// Its live endpoint failed on the last attempt; retrying with backoff, publishing
    /// nothing meanwhile.
    Retrying,
    /// Kafka has not acknowledged the last document for a while (a broker down or moving);
    /// the document is kept and sent again, nothing is skipped.
    WaitingForKafka,
    /// Published all it was asked to (a count, or a recording without repeat).
    Finished,
    /// Stopped by an error (`last_error` says which).
    Failed,
}

/// `GET /status` of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub state: SourceState,
    /// `true` for live data, `false` for a replay of recorded documents.
    pub live: bool,
    /// The URL polled or the recording replayed.
    pub origin: String,
    pub topic: String,
    /// Documents acknowledged by Kafka.
    pub published: u64,
    /// Attempts that published nothing (the live endpoint failed).
    pub failed_attempts: u64,
    pub last_error: Option<String>,
}

impl SourceStatus {
    pub fn new(live: bool, origin: &str, topic: &str) -> Self {
        Self {
            state: SourceState::Publishing,
            live,
            origin: origin.into(),
            topic: topic.into(),
            published: 0,
            failed_attempts: 0,
            last_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_is_drained_only_when_its_lag_is_known_to_be_zero() {
        let mut status = RunnerStatus::new("t");
        status.state = RunnerState::Running;
        (status.consumed, status.processed) = (10, 10);
        assert!(!status.is_drained(), "unknown lag is not zero");
        status.lag = Some(0);
        assert!(status.is_drained());
        status.processed = 9;
        assert!(!status.is_drained());
    }

    #[test]
    fn replicas_combine_to_the_worst_latency_over_every_sample() {
        let with = |p50_ms, p99_ms, samples| {
            let mut status = RunnerStatus::new("t");
            status.latency = Some(LatencyStatus {
                p50_ms,
                p99_ms,
                samples,
            });
            status
        };
        let combined = RunnerStatus::combined(vec![
            with(2.0, 40.0, 10),
            RunnerStatus::new("t"),
            with(5.0, 9.0, 30),
        ]);
        let expected = LatencyStatus {
            p50_ms: 5.0,
            p99_ms: 40.0,
            samples: 40,
        };
        assert_eq!(combined.latency, Some(expected));
        let none = RunnerStatus::combined(vec![RunnerStatus::new("t"), RunnerStatus::new("t")]);
        assert_eq!(none.latency, None, "no sample is no latency, not zero");
    }

    #[test]
    fn replicas_combine_each_steps_counts_by_name() {
        let with = |steps: &[(&str, u64, u64)]| {
            let mut status = RunnerStatus::new("t");
            status.steps = (steps.iter())
                .map(|&(name, records_in, records_out)| StepStatus {
                    name: name.into(),
                    records_in,
                    records_out,
                })
                .collect();
            status
        };
        let combined = RunnerStatus::combined(vec![
            with(&[("cdc", 10, 9), ("claims", 4, 4)]),
            with(&[("cdc", 5, 5), ("claims", 2, 1)]),
            // A runner older than per-step counts tells none.
            RunnerStatus::new("t"),
        ]);
        let counts: Vec<_> = (combined.steps.iter())
            .map(|s| (s.name.as_str(), s.records_in, s.records_out))
            .collect();
        assert_eq!(counts, [("cdc", 15, 14), ("claims", 6, 5)]);
    }
}
