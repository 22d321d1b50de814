//! `weir bench topology`: the reference topology against a plain rdkafka pass-through, on the
//! same broker, in the same run, alternating round by round. The headline is the ratio of
//! their median steady throughputs, the pass-through writing as many messages as the runner
//! did (see [`passthrough`]); against a pass-through writing one copy per record it is printed
//! too. Latency is measured at several steady paces; then what parallelism buys ([`scaling`])
//! and what keyed state costs ([`state`]).

mod latency;
pub(super) mod load;
pub(super) mod passthrough;
pub(super) mod progress;
pub(super) mod runner;
mod scaling;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use weir_topology::kafka::ensure_topics;

use super::round;
use crate::cli::runtime;
use latency::PaceLatency;
use passthrough::{FanOut, PassThrough};
pub(super) use progress::Spread;
use runner::{Dataflow, OutputTopics, RunnerProcess};
use scaling::{ScalingFigures, ScalingLoad};
use state::{KeyedStateFigures, StateLoad, WindowedFigures};

/// What `weir bench topology` measures and how.
#[derive(Debug, clap::Args)]
pub struct TopologyBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Records pre-loaded for the throughput rounds.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Distinct message keys the records go round-robin over.
    #[arg(long, default_value_t = 8)]
    keys: u64,
    /// Throughput rounds counted, after one warm-up round; each runs every contender once.
    /// Five, because on a shared machine a round's rate can move by a third: the median of
    /// five holds where that of three does not.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Paces of the latency phase, records per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,2000,10000,50000")]
    paces: Vec<u64>,
    /// Seconds each latency pace lasts.
    #[arg(long, default_value_t = 5)]
    pace_seconds: u64,
    /// Seconds the one-copy pass-through runs at the first pace before the latency phase,
    /// not counted, while the broker's collector works through what the throughput rounds
    /// left (see `LATENCY_PASSES`).
    #[arg(long, default_value_t = 30)]
    settle_seconds: u64,
    /// Replica counts of the scaling phase: for each N, N runner processes in one consumer
    /// group over an input of N partitions (one round each). Empty (`--replicas ''`) skips it.
    // `::std::vec::Vec` keeps clap from taking it as a repeated argument, so that the empty
    // list can be given.
    #[arg(long, value_parser = replica_counts, default_value = "1,2")]
    replicas: ::std::vec::Vec<u32>,
    /// Use this broker instead of starting a private ZooKeeper and Kafka.
    #[arg(long)]
    brokers: Option<String>,
    /// The topology to measure.
    #[arg(long, default_value = DEFAULT_TOPOLOGY)]
    topology: PathBuf,
    /// Distinct keys of the windowed phase: `--windowed-topology` over `--records` records
    /// whose event time moves on through ten one-minute windows, next to the one-copy
    /// pass-through, `--rounds` rounds. 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    windowed_keys: u64,
    /// The windowed phase's topology; it takes the shipped candles' parameters.
    #[arg(long, default_value = DEFAULT_WINDOWED_TOPOLOGY)]
    windowed_topology: PathBuf,
    /// Distinct keys of the keyed-state phase, one record each, whose previous values the
    /// `diff` of `--topology` holds; a fresh runner of its group then restores them from the
    /// changelog. 0 skips it.
    #[arg(long, default_value_t = 1_000_000)]
    state_keys: u64,
}

/// An entry of `--replicas` that is not a replica count.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a replica count (a whole number, 1 to 32)")]
struct NotAReplicaCount(String);

/// A comma-separated list of replica counts; the empty list is allowed.
fn replica_counts(list: &str) -> Result<Vec<u32>, NotAReplicaCount> {
    (list.split(',').map(str::trim).filter(|n| !n.is_empty()))
        .map(|n| n.parse().map_err(|_| NotAReplicaCount(n.to_string())))
        .collect()
}

const DEFAULT_TOPOLOGY: &str = "workflows/topologies/bitcoin-yuan.yaml";
const DEFAULT_WINDOWED_TOPOLOGY: &str = "workflows/topologies/candles.yaml";

/// Throughput of the runner relative to the pass-through's, median over median.
const TARGET_RATIO: f64 = 0.9;
/// Peak resident memory of the runner, MiB.
const TARGET_PEAK_RSS_MIB: f64 = 48.0;
/// Latency targets at 2,000 records/s, ms.
const TARGET_P50_MS: f64 = 3.0;
const TARGET_P99_MS: f64 = 10.0;
const TARGET_PACE: u64 = 2_000;
/// Longest a throughput round may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(900);

/// One throughput round of one contender.
struct RoundFigures {
    records_per_s: f64,
    startup_s: f64,
}

pub fn run(args: TopologyBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.records >= 1_000 && args.keys > 0 && args.rounds > 0 && args.pace_seconds > 0,
        "--records must be at least 1000, and --keys, --rounds and --pace-seconds positive"
    );
    anyhow::ensure!(
        !args.paces.is_empty() && args.paces.iter().all(|&p| p > 0),
        "--paces must list positive rates"
    );
    anyhow::ensure!(
        args.replicas.iter().all(|&n| (1..=32).contains(&n)),
        "--replicas must list counts from 1 to 32"
    );
    // A bad topology file is reported before minutes of loading, not after.
    weir_topology::spec::TopologySpec::load(&args.topology, &[]).with_context(|| {
        format!(
            "the benchmark needs a topology: pass --topology FILE (the default, {}, is relative \
             to the repository's root)",
            DEFAULT_TOPOLOGY
        )
    })?;
    if args.windowed_keys > 0 {
        weir_topology::spec::TopologySpec::load(&args.windowed_topology, &[]).with_context(
            || {
                format!(
                    "the windowed phase needs a windowed topology: pass --windowed-topology \
                     FILE (the default, {DEFAULT_WINDOWED_TOPOLOGY}, is relative to the \
                     repository's root), or --windowed-keys 0 to skip the phase"
                )
            },
        )?;
    }
    let workdir = tempfile::Builder::new().prefix("weir-bench-").tempdir()?;
    let (stack, bootstrap) =
        super::given_or_private_kafka(args.brokers.as_deref(), workdir.path())?;
    let id = std::process::id();
    let rt = runtime()?;

    let input = format!("bench-in-{id}");
    let passthrough_out = OutputTopics::named(&format!("bench-passthrough-{id}"));
    let single_copy_out = format!("bench-passthrough-{id}-single");
    rt.block_on(ensure_topics(&bootstrap, &[&input, &single_copy_out], 1))?;
    rt.block_on(ensure_topics(&bootstrap, &passthrough_out.all(), 1))?;
    eprintln!(
        "loading {} documents over {} keys into `{input}`...",
        args.records, args.keys
    );
    rt.block_on(load::fill(
        &bootstrap,
        &input,
        args.records,
        args.keys,
        load::EventTime::Written,
    ))?;

    let mut runner_rounds = Vec::new();
    let mut passthrough_rounds = Vec::new();
    let mut single_copy_rounds = Vec::new();
    let mut peak_rss_kb = 0;
    // The runner's messages per record, learnt in the warm-up round: the same input makes the
    // topology write the same messages in every round.
    let mut messages_per_record = None;
    // Round 0 warms the broker (JIT, page cache, group coordinator) and is not counted: on a
    // cold broker whichever contender goes first measures the warm-up instead of itself.
    for number in 0..=args.rounds {
        let label = match number {
            0 => "warm-up round (not counted)".to_string(),
            n => format!("round {n}/{}", args.rounds),
        };
        eprintln!("{label}: topology runner over {} records...", args.records);
        let name = format!("bench-{id}-r{number}");
        rt.block_on(ensure_topics(
            &bootstrap,
            &OutputTopics::named(&name).all(),
            1,
        ))?;
        let mut process = RunnerProcess::start(
            &bootstrap,
            Dataflow::Reference(&args.topology),
            &input,
            &name,
            workdir.path(),
        )?;
        let watched = process.watch(args.records, ROUND_TIMEOUT)?;
        peak_rss_kb = peak_rss_kb.max(process.peak_rss_kb()?);
        let written = process.messages_written()?;
        drop(process);
        let runner_figures = figures(&watched, args.records)?;
        let per_record = *messages_per_record.get_or_insert(written as f64 / args.records as f64);

        eprintln!(
            "{label}: pass-through over {} records, writing as many messages ({per_record:.3} per record)...",
            args.records
        );
        let fan_out = FanOut {
            topics: passthrough_out.outputs(),
            per_record,
        };
        let same_messages = pass_through_round(
            &rt,
            &bootstrap,
            &input,
            fan_out,
            &format!("bench-{id}-passthrough-{number}"),
            args.records,
        )?;
        eprintln!(
            "{label}: pass-through over {} records, one copy each...",
            args.records
        );
        let single_copy = pass_through_round(
            &rt,
            &bootstrap,
            &input,
            FanOut::one(&single_copy_out),
            &format!("bench-{id}-passthrough-single-{number}"),
            args.records,
        )?;
        if number > 0 {
            runner_rounds.push(runner_figures);
            passthrough_rounds.push(same_messages);
            single_copy_rounds.push(single_copy);
        }
    }
    let messages_per_record = messages_per_record.expect("the warm-up round ran");

    let latencies = measure_latencies(&rt, &bootstrap, &args, workdir.path(), messages_per_record)?;

    let scaling = scaling::measure(
        &rt,
        &ScalingLoad {
            bootstrap: &bootstrap,
            topology: &args.topology,
            records: args.records,
            keys: args.keys,
            workdir: workdir.path(),
            id,
            messages_per_record,
        },
        &args.replicas,
    )?;

    let state_load = StateLoad {
        rt: &rt,
        bootstrap: &bootstrap,
        workdir: workdir.path(),
        id,
    };
    let windowed = (args.windowed_keys > 0)
        .then(|| {
            state::windowed(
                &state_load,
                &args.windowed_topology,
                args.records,
                args.windowed_keys,
                args.rounds,
            )
        })
        .transpose()?;
    let keyed_state = (args.state_keys > 0)
        .then(|| state::keyed_state(&state_load, &args.topology, args.state_keys))
        .transpose()?;

    let report = Report {
        runner: Contender::of(&runner_rounds),
        passthrough: Contender::of(&passthrough_rounds),
        single_copy: Contender::of(&single_copy_rounds),
        messages_per_record,
        peak_rss_mib: peak_rss_kb as f64 / 1024.0,
        live_rss_mib: latencies.runner_rss_kb as f64 / 1024.0,
        latencies: latencies.runner,
        passthrough_latencies: latencies.passthrough,
        single_copy_latencies: latencies.single_copy,
        scaling,
        windowed,
        keyed_state,
    };
    if args.json {
        println!("{}", report.json(&args));
    } else {
        report.print(&args);
    }
    if let Some(stack) = stack {
        stack.stop();
    }
    Ok(ExitCode::SUCCESS)
}

/// Passes of the latency phase. The first contender measured after the throughput rounds
/// meets the broker while its collector still works through what those rounds left (young
/// pauses of 12–27 ms, against 7–11 ms a minute later, in a GC log of one run): measured
/// first, the runner's p99 at 2,000/s was 11.1 ms and the pass-through's 3.5; measured
/// second, 3.4 and 11.0. So the broker is given `--settle-seconds` of light traffic first,
/// and each contender is then measured in two passes, in one order and then the other, its
/// passes merged.
const LATENCY_PASSES: usize = 2;

/// Every contender's latency, with the runner's RSS after its last pass.
struct Latencies {
    runner: Vec<PaceLatency>,
    passthrough: Vec<PaceLatency>,
    single_copy: Vec<PaceLatency>,
    runner_rss_kb: u64,
}

/// The latency phase: the runner and both pass-throughs, [`LATENCY_PASSES`] passes each,
/// every pass on topics of its own.
fn measure_latencies(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    args: &TopologyBenchArgs,
    workdir: &std::path::Path,
    messages_per_record: f64,
) -> anyhow::Result<Latencies> {
    /// Each contender's passes go to `passes[contender as usize]`.
    #[derive(Clone, Copy)]
    enum Forwarding {
        Runner = 0,
        PassThrough = 1,
        SingleCopy = 2,
    }
    let id = std::process::id();
    let mut passes: [Vec<Vec<latency::PaceHistogram>>; 3] = Default::default();
    let mut runner_rss_kb = 0;
    if let (Some(&pace), true) = (args.paces.first(), args.settle_seconds > 0) {
        eprintln!(
            "letting the broker settle: the one-copy pass-through at {pace} records/s for {} s, \
             not counted...",
            args.settle_seconds
        );
        let input = format!("bench-settle-{id}");
        let fan_out = FanOut::one(&format!("{input}-out"));
        pass_through_latencies(
            rt,
            bootstrap,
            &input,
            fan_out,
            args,
            &[pace],
            args.settle_seconds,
        )?;
    }
    let order = [
        Forwarding::Runner,
        Forwarding::PassThrough,
        Forwarding::SingleCopy,
    ];
    for pass in 0..LATENCY_PASSES {
        let mut contenders = order;
        if pass % 2 == 1 {
            contenders.reverse();
        }
        for contender in contenders {
            let measured = match contender {
                Forwarding::Runner => {
                    eprintln!(
                        "measuring the runner's end-to-end latency (pass {})...",
                        pass + 1
                    );
                    let live = format!("bench-live-{id}-{pass}");
                    rt.block_on(ensure_topics(bootstrap, &[&live], 1))?;
                    rt.block_on(ensure_topics(
                        bootstrap,
                        &OutputTopics::named(&live).all(),
                        1,
                    ))?;
                    let mut process = RunnerProcess::start(
                        bootstrap,
                        Dataflow::Reference(&args.topology),
                        &live,
                        &live,
                        workdir,
                    )?;
                    let measured = latency::measure(
                        bootstrap,
                        &live,
                        &mut process,
                        args.keys,
                        &args.paces,
                        args.pace_seconds,
                    )?;
                    runner_rss_kb = process.rss_kb()?;
                    measured
                }
                Forwarding::PassThrough => {
                    let input = format!("bench-live-passthrough-{id}-{pass}");
                    let fan_out = FanOut {
                        topics: OutputTopics::named(&input).outputs(),
                        per_record: messages_per_record,
                    };
                    eprintln!(
                        "measuring the end-to-end latency of the pass-through writing as many messages (pass {})...",
                        pass + 1
                    );
                    pass_through_latencies(
                        rt,
                        bootstrap,
                        &input,
                        fan_out,
                        args,
                        &args.paces,
                        args.pace_seconds,
                    )?
                }
                Forwarding::SingleCopy => {
                    let input = format!("bench-live-passthrough-single-{id}-{pass}");
                    let fan_out = FanOut::one(&format!("{input}-out"));
                    eprintln!(
                        "measuring the end-to-end latency of the one-copy pass-through (pass {})...",
                        pass + 1
                    );
                    pass_through_latencies(
                        rt,
                        bootstrap,
                        &input,
                        fan_out,
                        args,
                        &args.paces,
                        args.pace_seconds,
                    )?
                }
            };
            passes[contender as usize].push(measured);
        }
    }
    let [runner, passthrough, single_copy] = passes.map(|p| latency::summarize_passes(&p));
    Ok(Latencies {
        runner,
        passthrough,
        single_copy,
        runner_rss_kb,
    })
}

/// The latency of a pass-through writing `fan_out`, measured as the runner's is, reading
/// `input`, at `paces` for `seconds` each.
fn pass_through_latencies(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    input: &str,
    fan_out: FanOut,
    args: &TopologyBenchArgs,
    paces: &[u64],
    seconds: u64,
) -> anyhow::Result<Vec<latency::PaceHistogram>> {
    let topics: Vec<&str> = std::iter::once(input)
        .chain(fan_out.topics.iter().map(String::as_str))
        .collect();
    rt.block_on(ensure_topics(bootstrap, &topics, 1))?;
    let mut forwarder = PassThrough::start(rt, bootstrap, input, fan_out, input);
    let latencies = latency::measure(bootstrap, input, &mut forwarder, args.keys, paces, seconds)?;
    forwarder.stop_and_report()?;
    Ok(latencies)
}

/// One pass-through round over the whole input, with its own consumer group.
fn pass_through_round(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    input: &str,
    fan_out: FanOut,
    group: &str,
    records: u64,
) -> anyhow::Result<RoundFigures> {
    let mut forwarder = PassThrough::start(rt, bootstrap, input, fan_out, group);
    let watched = forwarder.watch(records, ROUND_TIMEOUT)?;
    forwarder.stop_and_report()?;
    figures(&watched, records)
}

fn figures(round: &progress::Round, records: u64) -> anyhow::Result<RoundFigures> {
    Ok(RoundFigures {
        records_per_s: round.steady_rate(records)?,
        startup_s: round
            .startup_seconds()
            .ok_or_else(|| anyhow::anyhow!("a round was watched without reading a record"))?,
    })
}

/// A contender's rounds, summed up.
struct Contender {
    rates: Vec<f64>,
    throughput: Spread,
    startup: Spread,
}

impl Contender {
    fn of(rounds: &[RoundFigures]) -> Self {
        let rates: Vec<f64> = rounds.iter().map(|r| r.records_per_s).collect();
        let startups: Vec<f64> = rounds.iter().map(|r| r.startup_s).collect();
        Self {
            throughput: Spread::of(&rates).expect("at least one round"),
            startup: Spread::of(&startups).expect("at least one round"),
            rates,
        }
    }

    fn json(&self) -> serde_json::Value {
        let spread = |s: &Spread| json!({"median": round(s.median), "min": round(s.min), "max": round(s.max)});
        json!({
            "records_per_s": spread(&self.throughput),
            "rounds_records_per_s": self.rates.iter().map(|r| round(*r)).collect::<Vec<_>>(),
            "startup_s": spread(&self.startup),
        })
    }
}

struct Report {
    runner: Contender,
    /// The pass-through writing as many messages as the runner: the headline's reference.
    passthrough: Contender,
    /// The pass-through writing one copy of each record.
    single_copy: Contender,
    messages_per_record: f64,
    peak_rss_mib: f64,
    live_rss_mib: f64,
    latencies: Vec<PaceLatency>,
    /// The latency of the pass-through writing as many messages as the runner.
    passthrough_latencies: Vec<PaceLatency>,
    /// The latency of the one-copy pass-through: the floor the broker and clients set.
    single_copy_latencies: Vec<PaceLatency>,
    scaling: Vec<ScalingFigures>,
    windowed: Option<WindowedFigures>,
    keyed_state: Option<KeyedStateFigures>,
}

impl Report {
    fn ratio(&self) -> f64 {
        self.runner.throughput.median / self.passthrough.throughput.median
    }

    fn single_copy_ratio(&self) -> f64 {
        self.runner.throughput.median / self.single_copy.throughput.median
    }

    fn at_target_pace(&self) -> Option<&PaceLatency> {
        self.latencies.iter().find(|l| l.rate_per_s == TARGET_PACE)
    }

    fn json(&self, args: &TopologyBenchArgs) -> serde_json::Value {
        let at_target = self.at_target_pace();
        json!({
            "benchmark": "topology",
            "topology": args.topology.display().to_string(),
            "records": args.records,
            "keys": args.keys,
            "rounds": args.rounds,
            "window": "steady rate between 10% and 90% of the records done",
            "runner": self.runner.json(),
            "messages_per_record": round(self.messages_per_record),
            "passthrough": self.passthrough.json(),
            "passthrough_single_copy": self.single_copy.json(),
            "ratio": round(self.ratio()),
            "ratio_to_single_copy": round(self.single_copy_ratio()),
            "peak_rss_mb": round(self.peak_rss_mib),
            "rss_after_latency_mb": round(self.live_rss_mib),
            "latency": self.latencies,
            "passthrough_latency": self.passthrough_latencies,
            "passthrough_single_copy_latency": self.single_copy_latencies,
            "scaling": self.scaling,
            "windowed": self.windowed,
            "keyed_state": self.keyed_state,
            "targets": {
                "ratio": {"target": TARGET_RATIO, "met": self.ratio() >= TARGET_RATIO},
                "peak_rss_mb": {"target": TARGET_PEAK_RSS_MIB, "met": self.peak_rss_mib <= TARGET_PEAK_RSS_MIB},
                "latency_p50_ms_at_2000": {"target": TARGET_P50_MS, "met": at_target.map(|l| l.p50_ms <= TARGET_P50_MS)},
                "latency_p99_ms_at_2000": {"target": TARGET_P99_MS, "met": at_target.map(|l| l.p99_ms <= TARGET_P99_MS)},
            },
        })
    }

    fn print(&self, args: &TopologyBenchArgs) {
        let verdict = |met: bool| if met { "met" } else { "MISSED" };
        println!(
            "steady throughput over {} records, {} keys, {} rounds (10%–90% window):",
            args.records, args.keys, args.rounds
        );
        println!(
            "  the runner wrote {:.3} messages per record; the pass-through writes as many, and \
             one copy each in a third contender",
            self.messages_per_record
        );
        for (name, c) in [
            ("topology runner", &self.runner),
            ("pass-through", &self.passthrough),
            ("one copy each", &self.single_copy),
        ] {
            println!(
                "  {name:<16} median {:>9.0} records/s  (min {:.0}, max {:.0}, spread {:.1}%)  start-up {:.2} s",
                c.throughput.median,
                c.throughput.min,
                c.throughput.max,
                c.throughput.relative_range() * 100.0,
                c.startup.median
            );
        }
        println!(
            "  ratio of medians {:.2}  (target ≥ {TARGET_RATIO}: {}); {:.2} of the one-copy pass-through",
            self.ratio(),
            verdict(self.ratio() >= TARGET_RATIO),
            self.single_copy_ratio()
        );
        println!(
            "runner peak RSS {:.1} MiB (target ≤ {TARGET_PEAK_RSS_MIB}: {}); {:.1} MiB after the latency phase",
            self.peak_rss_mib,
            verdict(self.peak_rss_mib <= TARGET_PEAK_RSS_MIB),
            self.live_rss_mib
        );
        println!("end-to-end latency (produce → output consumed):");
        for (name, latencies) in [
            ("runner", &self.latencies),
            ("pass-through", &self.passthrough_latencies),
            ("one copy each", &self.single_copy_latencies),
        ] {
            for l in latencies {
                println!(
                    "  {name:<13} {:>6}/s × {:>6}: p50 {:>6.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  max {:>7.2} ms{}",
                    l.rate_per_s,
                    l.records,
                    l.p50_ms,
                    l.p99_ms,
                    l.p999_ms,
                    l.max_ms,
                    if l.duplicates > 0 {
                        format!("  ({} duplicates)", l.duplicates)
                    } else {
                        String::new()
                    }
                );
            }
        }
        if let Some(l) = self.at_target_pace() {
            println!(
                "  at {TARGET_PACE}/s: p50 target ≤ {TARGET_P50_MS} ms {}, p99 target ≤ {TARGET_P99_MS} ms {}",
                verdict(l.p50_ms <= TARGET_P50_MS),
                verdict(l.p99_ms <= TARGET_P99_MS)
            );
        }
        if !self.scaling.is_empty() {
            println!(
                "scaling (N runners in one group over N partitions, one round each, {} keys):",
                args.keys
            );
        }
        let single = (self.scaling.iter())
            .find(|f| f.replicas == 1)
            .map(|f| f.runner_records_per_s);
        for f in &self.scaling {
            let speedup = match single {
                Some(one) if f.replicas > 1 => {
                    format!(" ({:.2}× one replica)", f.runner_records_per_s / one)
                }
                _ => String::new(),
            };
            println!(
                "  {:>2} replica(s): runners {:>9.0} records/s{speedup}, pass-through {:>9.0} records/s",
                f.replicas, f.runner_records_per_s, f.passthrough_records_per_s
            );
        }
        if let Some(w) = &self.windowed {
            println!(
                "windowed ({}, {} records, {} keys, ten one-minute windows of event time, {} rounds):",
                w.topology, w.records, w.keys, args.rounds
            );
            for (name, rate) in [
                ("topology runner", &w.runner_records_per_s),
                ("one copy each", &w.passthrough_records_per_s),
            ] {
                println!(
                    "  {name:<16} median {:>9.0} records/s  (min {:.0}, max {:.0})",
                    rate.median, rate.min, rate.max
                );
            }
            println!(
                "  ratio of medians {:.2}; {} window results and {} late records in a round; runner peak RSS {:.1} MiB",
                w.ratio, w.results_written, w.late_records, w.peak_rss_mb
            );
        }
        if let Some(k) = &self.keyed_state {
            println!("keyed state ({} distinct keys, one record each):", k.keys);
            println!(
                "  held {} keys, {:.1} MiB of keys and values; {:.0} records/s; runner peak RSS {:.1} MiB",
                k.keys_held,
                k.bytes_held as f64 / (1024.0 * 1024.0),
                k.records_per_s,
                k.peak_rss_mb
            );
            println!(
                "  a fresh runner restored {} keys from the changelog in {} ms ({} ms from its start); its peak RSS {:.1} MiB",
                k.restored_keys, k.restore_ms, k.start_to_restored_ms, k.restored_peak_rss_mb
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::TopologyBenchArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: TopologyBenchArgs,
    }

    fn replicas(args: &[&str]) -> Result<Vec<u32>, String> {
        let argv = std::iter::once("bench").chain(args.iter().copied());
        (Cli::try_parse_from(argv).map(|cli| cli.bench.replicas)).map_err(|e| e.to_string())
    }

    #[test]
    fn replica_counts_default_list_and_empty_list() {
        assert_eq!(replicas(&[]).unwrap(), [1, 2]);
        assert_eq!(replicas(&["--replicas", "1,2,4"]).unwrap(), [1, 2, 4]);
        assert_eq!(replicas(&["--replicas", ""]).unwrap(), Vec::<u32>::new());
        let refused = replicas(&["--replicas", "1,two"]).unwrap_err();
        assert!(
            refused.contains("`two` is not a replica count"),
            "{refused}"
        );
    }
}
