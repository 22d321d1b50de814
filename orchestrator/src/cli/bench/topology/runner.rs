//! The topology runner under test: `weir topology run` in its own process, watched through
//! its `/metrics`, its memory read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use weir_contracts::status::RunnerStatus;
use weir_supervisor::ports::free_port;

use super::super::{status_kb, MemoryField};
use super::progress::{self, Round};

/// A running `weir topology run` of the benchmark's topology.
pub struct RunnerProcess {
    child: Child,
    metrics_url: String,
    status_url: String,
    client: reqwest::blocking::Client,
    log: PathBuf,
    pub started: Instant,
    /// The topic whose messages answer the inputs: the variations, or the windows' results.
    pub output: String,
}

/// A topology the benchmark runs, and the parameters that point it at the benchmark's topics.
#[derive(Debug, Clone, Copy)]
pub enum Dataflow<'a> {
    /// The reference topology (or `--topology`): rates, variations and notifications, in
    /// topics named after the run ([`OutputTopics`]).
    Reference(&'a Path),
    /// A windowed topology taking the shipped candles' parameters: its results go to
    /// `NAME-candles`, its late records to `NAME-late`, its errors to `NAME-errors`.
    Windowed(&'a Path),
    /// The CDC pipeline (`workflows/topologies/cdc-sync.yaml`): its target goes to
    /// `NAME-target`, its errors to `NAME-errors`, its dead letters to `NAME-dead`.
    Cdc(&'a Path),
}

impl Dataflow<'_> {
    fn path(&self) -> &Path {
        match self {
            Dataflow::Reference(path) | Dataflow::Windowed(path) | Dataflow::Cdc(path) => path,
        }
    }

    /// The `--set` parameters of a run named `name` over `input`, and the topic whose
    /// messages answer the inputs.
    fn parameters(&self, input: &str, name: &str) -> (Vec<String>, String) {
        let mut parameters = vec![
            format!("message_topic={input}"),
            format!("dataflow_name={name}"),
        ];
        if let Dataflow::Cdc(_) = self {
            let target = format!("{name}-target");
            let parameters = vec![
                format!("cdc_topic={input}"),
                format!("dataflow_name={name}"),
                format!("target_topic={target}"),
                format!("error_topic={name}-errors"),
                format!("dead_letter_topic={name}-dead"),
            ];
            return (parameters, target);
        }
        let output = match self {
            Dataflow::Reference(_) => {
                let outputs = OutputTopics::named(name);
                parameters.extend([
                    format!("rate_topic={}", outputs.rates),
                    format!("variation_topic={}", outputs.variations),
                    format!("notification_topic={}", outputs.notifications),
                    format!("error_topic={}", outputs.errors),
                ]);
                outputs.variations
            }
            Dataflow::Windowed(_) => {
                let topics = WindowedTopics::named(name);
                parameters.extend([
                    format!("candle_topic={}", topics.results),
                    format!("late_topic={}", topics.late),
                    format!("error_topic={}", topics.errors),
                ]);
                topics.results
            }
            Dataflow::Cdc(_) => unreachable!("returned above"),
        };
        (parameters, output)
    }
}

/// Where a windowed topology writes.
#[derive(Debug, Clone)]
pub struct WindowedTopics {
    pub results: String,
    pub late: String,
    pub errors: String,
}

impl WindowedTopics {
    pub fn named(name: &str) -> Self {
        Self {
            results: format!("{name}-candles"),
            late: format!("{name}-late"),
            errors: format!("{name}-errors"),
        }
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.results, &self.late, &self.errors]
    }
}

/// Where the reference topology writes.
#[derive(Debug, Clone)]
pub struct OutputTopics {
    pub rates: String,
    pub variations: String,
    pub notifications: String,
    pub errors: String,
}

impl OutputTopics {
    pub fn named(name: &str) -> Self {
        Self {
            rates: format!("{name}-rates"),
            variations: format!("{name}-variations"),
            notifications: format!("{name}-notifications"),
            errors: format!("{name}-errors"),
        }
    }

    /// The three topics the topology writes records' results to (not the error topic).
    pub fn outputs(&self) -> Vec<String> {
        vec![
            self.rates.clone(),
            self.variations.clone(),
            self.notifications.clone(),
        ]
    }

    pub fn all(&self) -> [&str; 4] {
        [
            &self.rates,
            &self.variations,
            &self.notifications,
            &self.errors,
        ]
    }
}

impl RunnerProcess {
    /// Starts the runner over `input` with its own consumer group and output topics, both
    /// named after `name`. Its log goes to `workdir/NAME.log` (`NAME-2.log` and so on when a
    /// runner of that name ran before).
    pub fn start(
        bootstrap: &str,
        dataflow: Dataflow<'_>,
        input: &str,
        name: &str,
        workdir: &Path,
    ) -> anyhow::Result<Self> {
        let log = (1..)
            .map(|n| match n {
                1 => workdir.join(format!("{name}.log")),
                n => workdir.join(format!("{name}-{n}.log")),
            })
            .find(|log| !log.exists())
            .expect("a free log name");
        Self::start_with_log(bootstrap, dataflow, input, name, &log)
    }

    /// Starts replica `replica` of a group of runners that share the consumer group and
    /// output topics named after `name`. Its log goes to `workdir/NAME-REPLICA.log`.
    pub fn start_replica(
        bootstrap: &str,
        topology: &Path,
        input: &str,
        name: &str,
        replica: u32,
        workdir: &Path,
    ) -> anyhow::Result<Self> {
        let log = workdir.join(format!("{name}-{replica}.log"));
        Self::start_with_log(bootstrap, Dataflow::Reference(topology), input, name, &log)
    }

    fn start_with_log(
        bootstrap: &str,
        dataflow: Dataflow<'_>,
        input: &str,
        name: &str,
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let (parameters, output) = dataflow.parameters(input, name);
        let log_path = log_path.to_path_buf();
        let log = std::fs::File::create(&log_path)?;
        let started = Instant::now();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["topology", "run"])
            .arg(dataflow.path())
            .args(["--brokers", bootstrap])
            .args(["--addr", &format!("127.0.0.1:{port}")]);
        for parameter in &parameters {
            command.args(["--set", parameter]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start the topology runner")?;
        Ok(Self {
            child,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            status_url: format!("http://127.0.0.1:{port}/status"),
            client: reqwest::blocking::Client::new(),
            log: log_path,
            started,
            output,
        })
    }

    /// Watches the runner until `total` records are done.
    pub fn watch(&mut self, total: u64, timeout: Duration) -> anyhow::Result<Round> {
        let started = self.started;
        progress::watch(started, total, timeout, || self.counters())
    }

    /// `(records consumed, records done)` from `/metrics`, `None` while it does not answer.
    pub fn counters(&mut self) -> anyhow::Result<Option<(u64, u64)>> {
        let text = self.metrics()?;
        let read = |metric| sample(text.as_deref()?, metric).map(|v| v as u64);
        Ok(read("weir_records_in_total").zip(read("weir_records_done_total")))
    }

    /// Messages written whose delivery the broker acknowledged, from `/metrics`.
    pub fn messages_written(&mut self) -> anyhow::Result<u64> {
        let text = self.metrics()?;
        (text.as_deref())
            .and_then(|text| sample(text, "weir_messages_out_total"))
            .map(|v| v as u64)
            .context("the topology runner did not say how many messages it wrote")
    }

    /// Its `/status`, `None` while it does not answer; an error once it has exited.
    pub fn status(&mut self) -> anyhow::Result<Option<RunnerStatus>> {
        self.check_running()?;
        let answer = (self.client.get(&self.status_url))
            .timeout(Duration::from_secs(2))
            .send()
            .ok();
        Ok(answer.and_then(|answer| answer.json().ok()))
    }

    /// Its `/metrics` text, `None` while it does not answer; an error once it has exited.
    fn metrics(&mut self) -> anyhow::Result<Option<String>> {
        self.check_running()?;
        Ok(self
            .client
            .get(&self.metrics_url)
            .timeout(Duration::from_secs(2))
            .send()
            .ok()
            .and_then(|r| r.text().ok()))
    }

    /// An error, with the end of its log, once the runner has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "the topology runner exited early ({status}); the end of its log:\n{}",
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kb(&self) -> anyhow::Result<u64> {
        status_kb(self.child.id(), MemoryField::Peak)
    }

    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> anyhow::Result<u64> {
        status_kb(self.child.id(), MemoryField::Resident)
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// The value of the first sample of `metric` in Prometheus text (labels ignored).
fn sample(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_from_prometheus_text() {
        let text = "# HELP x\nweir_records_done_total{topology=\"t\"} 42\nweir_up 1\n";
        assert_eq!(sample(text, "weir_records_done_total"), Some(42.0));
        assert_eq!(sample(text, "weir_up"), Some(1.0));
        assert_eq!(sample(text, "weir_missing"), None);
    }
}
