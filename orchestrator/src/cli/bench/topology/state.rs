//! The keyed-state phases of `weir bench topology`: what state costs the runner.
//!
//! - **Windowed**: a windowed topology (the shipped candles) over the benchmark's records and
//!   many keys, their event time moving on through ten one-minute windows so that windows
//!   close and their results are written while it runs, next to the one-copy pass-through over
//!   the same input, round by round.
//! - **Keyed state**: the reference topology's `diff` holding a previous value for each of many
//!   distinct keys (one record each): the runner's peak memory, then the time a fresh runner of
//!   the same group takes to restore every key from the changelog (a runner restores a
//!   partition when its first record arrives: the benchmark writes one more).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use weir_contracts::status::{RunnerStatus, StateRestore};
use weir_topology::kafka::ensure_topics;

use super::load::{self, EventTime};
use super::passthrough::{FanOut, PassThrough};
use super::runner::{Dataflow, OutputTopics, RunnerProcess, WindowedTopics};
use super::{Spread, ROUND_TIMEOUT};

/// Event time the windowed phase's records span: ten one-minute windows.
const WINDOWED_SPAN_MS: i64 = 10 * 60 * 1000;

/// Longest a fresh runner may take to restore the keyed state.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(600);

/// What the state phases work on.
pub struct StateLoad<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub bootstrap: &'a str,
    pub workdir: &'a Path,
    /// Makes topic and group names unique to this benchmark.
    pub id: u32,
}

/// The windowed phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WindowedFigures {
    pub topology: String,
    pub records: u64,
    pub keys: u64,
    /// The runner's steady rate: median, min and max over the rounds.
    pub runner_records_per_s: Spread,
    /// The one-copy pass-through's over the same input.
    pub passthrough_records_per_s: Spread,
    /// Ratio of the medians.
    pub ratio: f64,
    /// Window results the runner wrote in one round (the windows that closed).
    pub results_written: u64,
    /// Records later than the grace in one round.
    pub late_records: u64,
    /// The runner's peak resident memory over the rounds.
    pub peak_rss_mb: f64,
}

/// The keyed-state phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct KeyedStateFigures {
    /// Distinct keys loaded, one record each.
    pub keys: u64,
    /// Keys the runner's stores held once every record was done, from its `/status`.
    pub keys_held: u64,
    /// The bytes of those keys and values, without the table's own overhead.
    pub bytes_held: u64,
    /// The runner's steady rate over the distinct keys.
    pub records_per_s: f64,
    /// The runner's peak resident memory.
    pub peak_rss_mb: f64,
    /// Keys a fresh runner of the same group restored from the changelog.
    pub restored_keys: u64,
    /// How long reading the changelog took it, as its `/status` says.
    pub restore_ms: u64,
    /// From starting the fresh runner to its state restored, as the benchmark saw it.
    pub start_to_restored_ms: u64,
    /// The fresh runner's peak resident memory once restored.
    pub restored_peak_rss_mb: f64,
}

/// The windowed phase: `rounds` rounds, each the runner over `records` records and `keys`
/// keys, then the one-copy pass-through over the same input.
pub fn windowed(
    load: &StateLoad<'_>,
    topology: &Path,
    records: u64,
    keys: u64,
    rounds: u32,
) -> anyhow::Result<WindowedFigures> {
    let input = format!("bench-windowed-{}", load.id);
    let passthrough_out = format!("{input}-passthrough");
    load.rt.block_on(ensure_topics(
        load.bootstrap,
        &[&input, &passthrough_out],
        1,
    ))?;
    eprintln!(
        "windowed: loading {records} documents over {keys} keys into `{input}`, their event time \
         spread over ten minutes..."
    );
    let start_ms = i64::try_from(weir::time::now_unix_ms())? - WINDOWED_SPAN_MS;
    let event_time = EventTime::Spread {
        start_ms,
        span_ms: WINDOWED_SPAN_MS,
    };
    (load.rt).block_on(load::fill(
        load.bootstrap,
        &input,
        records,
        keys,
        event_time,
    ))?;

    let mut runner_rates = Vec::new();
    let mut passthrough_rates = Vec::new();
    let mut peak_rss_kb = 0;
    let mut last_status = None;
    for round in 1..=rounds {
        eprintln!(
            "windowed, round {round}/{rounds}: the windowed topology over {records} records..."
        );
        let name = format!("bench-{}-windowed-{round}", load.id);
        let topics = WindowedTopics::named(&name);
        load.rt
            .block_on(ensure_topics(load.bootstrap, &topics.all(), 1))?;
        let measured = run_through(load, Dataflow::Windowed(topology), &input, &name, records)?;
        runner_rates.push(measured.records_per_s);
        peak_rss_kb = peak_rss_kb.max(measured.peak_rss_kb);
        last_status = Some(measured.status);

        eprintln!(
            "windowed, round {round}/{rounds}: the one-copy pass-through over the same input..."
        );
        let mut forwarder = PassThrough::start(
            load.rt,
            load.bootstrap,
            &input,
            FanOut::one(&passthrough_out),
            &format!("{name}-passthrough"),
        );
        let watched = forwarder.watch(records, ROUND_TIMEOUT)?;
        forwarder.stop_and_report()?;
        passthrough_rates.push(watched.steady_rate(records)?);
    }
    let status = last_status.context("no windowed round ran")?;
    if status.messages_out == 0 {
        bail!(
            "the windowed topology wrote no result over ten minutes of event time: no window \
             closed, so its figures would not measure windows"
        );
    }
    let runner_records_per_s = Spread::of(&runner_rates).context("no windowed round ran")?;
    let passthrough_records_per_s =
        Spread::of(&passthrough_rates).context("no windowed round ran")?;
    Ok(WindowedFigures {
        topology: topology.display().to_string(),
        records,
        keys,
        ratio: runner_records_per_s.median / passthrough_records_per_s.median,
        runner_records_per_s,
        passthrough_records_per_s,
        results_written: status.messages_out,
        late_records: status.late_records,
        peak_rss_mb: peak_rss_kb as f64 / 1024.0,
    })
}

/// The keyed-state phase: `keys` records of distinct keys through `topology` (whose `diff`
/// keeps each key's previous value), then a fresh runner of the same group restoring them.
pub fn keyed_state(
    load: &StateLoad<'_>,
    topology: &Path,
    keys: u64,
) -> anyhow::Result<KeyedStateFigures> {
    let input = format!("bench-keys-{}", load.id);
    let name = format!("bench-{}-keys", load.id);
    load.rt
        .block_on(ensure_topics(load.bootstrap, &[&input], 1))?;
    (load.rt).block_on(ensure_topics(
        load.bootstrap,
        &OutputTopics::named(&name).all(),
        1,
    ))?;
    eprintln!("keyed state: loading {keys} documents of {keys} distinct keys into `{input}`...");
    (load.rt).block_on(load::fill(
        load.bootstrap,
        &input,
        keys,
        keys,
        EventTime::Written,
    ))?;

    eprintln!("keyed state: the topology over {keys} distinct keys...");
    let RunnerRound {
        records_per_s,
        peak_rss_kb,
        status,
    } = run_through(load, Dataflow::Reference(topology), &input, &name, keys)?;
    let (keys_held, bytes_held) = held(&status);
    if keys_held == 0 {
        bail!(
            "the topology's stores hold no key after {keys} records: it keeps no keyed state \
             to measure (the default topology's `diff` does)"
        );
    }

    eprintln!("keyed state: a fresh runner of the same group restoring {keys_held} keys...");
    let mut fresh = RunnerProcess::start(
        load.bootstrap,
        Dataflow::Reference(topology),
        &input,
        &name,
        load.workdir,
    )?;
    // A runner restores a partition's state when its first record arrives: one more record,
    // of a key seen before, whose variation needs the restored previous value.
    (load.rt).block_on(load::fill(
        load.bootstrap,
        &input,
        1,
        keys,
        EventTime::Written,
    ))?;
    let restore = wait_for_restore(&mut fresh)?;
    let start_to_restored_ms = fresh.started.elapsed().as_millis() as u64;
    let restored_peak_rss_kb = fresh.peak_rss_kb()?;
    drop(fresh);
    if restore.keys < keys_held {
        bail!(
            "a fresh runner restored {} keys of the {keys_held} its group held: state was lost",
            restore.keys
        );
    }
    Ok(KeyedStateFigures {
        keys,
        keys_held,
        bytes_held,
        records_per_s,
        peak_rss_mb: peak_rss_kb as f64 / 1024.0,
        restored_keys: restore.keys,
        restore_ms: restore.millis,
        start_to_restored_ms,
        restored_peak_rss_mb: restored_peak_rss_kb as f64 / 1024.0,
    })
}

/// What one runner did over a whole input.
struct RunnerRound {
    records_per_s: f64,
    peak_rss_kb: u64,
    /// Its `/status` once every record was done.
    status: RunnerStatus,
}

/// Runs `dataflow` as runner `name` over the `records` records of `input`, then stops it
/// (SIGTERM: it writes its stores to the changelog and commits before it exits).
fn run_through(
    load: &StateLoad<'_>,
    dataflow: Dataflow<'_>,
    input: &str,
    name: &str,
    records: u64,
) -> anyhow::Result<RunnerRound> {
    let mut runner = RunnerProcess::start(load.bootstrap, dataflow, input, name, load.workdir)?;
    let watched = runner.watch(records, ROUND_TIMEOUT)?;
    Ok(RunnerRound {
        records_per_s: watched.steady_rate(records)?,
        peak_rss_kb: runner.peak_rss_kb()?,
        status: status_once_done(&mut runner, records)?,
    })
}

/// Keys and bytes over a runner's stores.
fn held(status: &RunnerStatus) -> (u64, u64) {
    (status.state_stores.iter()).fold((0, 0), |(keys, bytes), store| {
        (keys + store.keys, bytes + store.bytes)
    })
}

/// The runner's `/status` once it counts `records` done: it is brought up to date every
/// half second, so the first answer after the benchmark saw them done may be older.
fn status_once_done(runner: &mut RunnerProcess, records: u64) -> anyhow::Result<RunnerStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = runner.status()?;
        match status {
            Some(status) if status.processed >= records => return Ok(status),
            _ if Instant::now() >= deadline => {
                bail!("the runner's /status did not count its {records} records done within 30 s")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Polls a fresh runner's `/status` until one of its stores says its partition was restored.
fn wait_for_restore(runner: &mut RunnerProcess) -> anyhow::Result<StateRestore> {
    let deadline = Instant::now() + RESTORE_TIMEOUT;
    while Instant::now() < deadline {
        let restored = (runner.status()?)
            .into_iter()
            .flat_map(|status| status.state_stores)
            .find_map(|store| store.last_restore);
        if let Some(restore) = restored {
            return Ok(restore);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "a fresh runner did not restore its state within {} s",
        RESTORE_TIMEOUT.as_secs()
    )
}
