//! The scaling phase of `weir bench topology`: for each replica count N, N runner processes
//! in one consumer group over an input of N partitions, next to the pass-through over the
//! same input. It says what parallelism buys on this machine; on two cores shared with the
//! broker, little.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use weir_topology::kafka::ensure_topics;

use super::passthrough::{FanOut, PassThrough};
use super::runner::{OutputTopics, RunnerProcess};
use super::{load, progress, ROUND_TIMEOUT};

/// One replica count, measured once.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingFigures {
    pub replicas: u32,
    /// The runners' steady rate together.
    pub runner_records_per_s: f64,
    pub passthrough_records_per_s: f64,
}

/// What one scaling measurement works on.
pub struct ScalingLoad<'a> {
    pub bootstrap: &'a str,
    pub topology: &'a Path,
    pub records: u64,
    pub keys: u64,
    pub workdir: &'a Path,
    /// Makes topic and group names unique to this benchmark.
    pub id: u32,
    /// Messages the runner writes per record: the pass-through writes as many.
    pub messages_per_record: f64,
}

/// Measures each replica count in `counts`, in order.
pub fn measure(
    rt: &tokio::runtime::Runtime,
    load: &ScalingLoad<'_>,
    counts: &[u32],
) -> anyhow::Result<Vec<ScalingFigures>> {
    let mut figures = Vec::with_capacity(counts.len());
    for &replicas in counts {
        let partitions = i32::try_from(replicas)?;
        let input = format!("bench-scale-{}-p{replicas}", load.id);
        let name = format!("bench-{}-scale{replicas}", load.id);
        let passthrough_out = OutputTopics::named(&format!("{input}-passthrough"));
        rt.block_on(ensure_topics(load.bootstrap, &[&input], partitions))?;
        rt.block_on(ensure_topics(
            load.bootstrap,
            &OutputTopics::named(&name).all(),
            partitions,
        ))?;
        rt.block_on(ensure_topics(
            load.bootstrap,
            &passthrough_out.all(),
            partitions,
        ))?;
        eprintln!(
            "scaling, {replicas} replica(s): loading {} documents into {partitions} partition(s)...",
            load.records
        );
        rt.block_on(load::fill(
            load.bootstrap,
            &input,
            load.records,
            load.keys,
            load::EventTime::Written,
        ))?;

        eprintln!("scaling, {replicas} replica(s): {replicas} runner process(es) in one group...");
        let started = Instant::now();
        let mut group = (0..replicas)
            .map(|replica| {
                RunnerProcess::start_replica(
                    load.bootstrap,
                    load.topology,
                    &input,
                    &name,
                    replica,
                    load.workdir,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let round = progress::watch(started, load.records, ROUND_TIMEOUT, || {
            together(&mut group)
        })?;
        drop(group);
        let runner_records_per_s = round.steady_rate(load.records)?;

        eprintln!("scaling, {replicas} replica(s): the pass-through over the same input...");
        let fan_out = FanOut {
            topics: passthrough_out.outputs(),
            per_record: load.messages_per_record,
        };
        let mut forwarder = PassThrough::start(
            rt,
            load.bootstrap,
            &input,
            fan_out,
            &format!("{name}-passthrough"),
        );
        let round = forwarder.watch(load.records, ROUND_TIMEOUT)?;
        forwarder.stop_and_report()?;
        figures.push(ScalingFigures {
            replicas,
            runner_records_per_s,
            passthrough_records_per_s: round.steady_rate(load.records)?,
        });
    }
    Ok(figures)
}

/// The counters of every runner of a group, summed; `None` until each of them answers.
fn together(group: &mut [RunnerProcess]) -> anyhow::Result<Option<(u64, u64)>> {
    let mut sum = (0, 0);
    for runner in group {
        let Some((consumed, done)) = runner.counters()? else {
            return Ok(None);
        };
        sum = (sum.0 + consumed, sum.1 + done);
    }
    Ok(Some(sum))
}
