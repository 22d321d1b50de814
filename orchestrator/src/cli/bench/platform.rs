//! `weir bench platform`: how long a workflow's platform takes to come up and to go away
//! through Weir, next to the bare start and stop of a ZooKeeper + Kafka pair on the same
//! machine, so that the orchestration's own cost is a ratio.
//!
//! Each round first starts and stops the bare pair (the processes alone, waited for until the
//! broker answers metadata), then runs the workflow through the engine on the chosen backend
//! with every runtime call timed: ZooKeeper and Kafka through Weir are the provision calls of
//! those two services, "all ready" is when the last provision call returned, measured from the
//! start of the run, and teardown is the run's teardown call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir::runtime::LogSpan;
use weir_contracts::service_kind::ServiceKind;

use anyhow::Context;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use weir::engine::{self, RunOptions};
use weir::home::WeirHome;
use weir::runs::RunState;
use weir::runtime::{
    self, Backend, DataStep, GcReport, HttpAccess, Instance, ProvisionRequest, Provisioned,
    Runtime, RuntimeError, Scope, StepOutcome,
};
use weir::workflow;
use weir_supervisor::process::Lifetime;
use weir_supervisor::stack::KafkaStack;

use super::round;
use super::topology::Spread;
use crate::cli::backend::BackendArgs;
use crate::cli::{parse_assignment, runtime as tokio_runtime};

/// What `weir bench platform` measures and how.
#[derive(Debug, clap::Args)]
pub struct PlatformBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Rounds; each starts and stops the bare pair, then runs the workflow once.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The workflow to launch (default: the demo, replaying its recording so that it needs no
    /// network; see --set).
    #[arg(long, default_value = "workflows/bitcoin-yuan.yaml")]
    workflow: PathBuf,
    /// A workflow variable, on top of the benchmark's own: a replayed source, a 1 s dataflow
    /// and automatic teardown.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    set: Vec<(String, String)>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// The demo, offline and short: what every round of the default workflow runs.
const DEMO_SETTINGS: [(&str, &str); 6] = [
    ("source_kind", "replay"),
    ("rate_pointer", "/Close"),
    ("rate_unit", "USD"),
    ("poll_interval", "100ms"),
    ("execution_duration", "1s"),
    ("automatic_kill", "true"),
];

/// One round's figures, in seconds.
#[derive(Debug, Clone, Copy)]
struct RoundFigures {
    bare_start: f64,
    bare_stop: f64,
    /// The provision calls of the run's ZooKeeper and Kafka, together.
    pair_through_weir: f64,
    /// From the start of the run until the last provision call returned.
    all_ready: f64,
    teardown: f64,
}

pub fn run(args: PlatformBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be positive");
    let demo = args.workflow.ends_with("bitcoin-yuan.yaml");
    let mut settings: Vec<(String, String)> = if demo {
        (DEMO_SETTINGS.iter())
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    settings.extend(args.set.iter().cloned());
    // A workflow that does not load is reported before anything starts.
    workflow::load(&args.workflow, &settings).with_context(|| {
        format!(
            "the benchmark launches {}: run it from the repository's root or pass --workflow",
            args.workflow.display()
        )
    })?;
    let rt = tokio_runtime()?;
    let mut rounds = Vec::new();
    for number in 1..=args.rounds {
        let label = format!("round {number}/{}", args.rounds);
        rounds.push(one_round(&rt, &args, &settings, &label)?);
    }
    let report = Report::of(&rounds, args.backend.backend);
    if args.json {
        println!("{}", report.json(&args));
    } else {
        report.print(&args);
    }
    Ok(ExitCode::SUCCESS)
}

fn one_round(
    rt: &tokio::runtime::Runtime,
    args: &PlatformBenchArgs,
    settings: &[(String, String)],
    label: &str,
) -> anyhow::Result<RoundFigures> {
    let workdir = tempfile::Builder::new()
        .prefix("weir-bench-platform-")
        .tempdir()?;
    eprintln!("{label}: starting a bare ZooKeeper and Kafka...");
    let started = Instant::now();
    let stack = KafkaStack::start(
        &workdir.path().join("bare"),
        Lifetime::DiesWithParent,
        Duration::from_secs(120),
    )?;
    let bare_start = started.elapsed().as_secs_f64();
    let stopping = Instant::now();
    stack.stop();
    let bare_stop = stopping.elapsed().as_secs_f64();
    eprintln!("{label}: bare pair ready in {bare_start:.1}s, stopped in {bare_stop:.1}s");

    eprintln!(
        "{label}: running {} through Weir on {}...",
        args.workflow.display(),
        args.backend.backend.as_str()
    );
    let loaded = workflow::load(&args.workflow, settings)?;
    let home = WeirHome::at(workdir.path().join("weir-home"));
    let mut config = args.backend.config()?;
    config.home = home.clone();
    let timings = Arc::new(Mutex::new(Timings::default()));
    let outcome = rt.block_on(async {
        let inner = runtime::connect(config).await?;
        let timed: Arc<dyn Runtime> = Arc::new(TimedRuntime {
            inner,
            timings: timings.clone(),
        });
        let options = RunOptions {
            home,
            interrupt: CancellationToken::new(),
            skip_results: CancellationToken::new(),
            id: None,
            command_line: None,
        };
        anyhow::Ok(engine::run(loaded, timed, options).await?)
    })?;
    let run_started = timings.lock().expect("timings").run_started;
    anyhow::ensure!(
        outcome.state == RunState::Succeeded,
        "run {} ended {}: {}; a run that did not succeed is not measured",
        outcome.id,
        outcome.state.as_str(),
        outcome.error.as_deref().unwrap_or("(no error recorded)")
    );
    let timings = timings.lock().expect("timings");
    let run_started = run_started.context("the run opened no namespace or scope")?;
    // A workflow without a ZooKeeper task has its Kafka start one, within that call.
    let kafka = (timings.provisioned.get(&ServiceKind::Kafka).copied())
        .context("the workflow provisioned no Kafka: there is nothing to compare")?;
    let zookeeper = timings
        .provisioned
        .get(&ServiceKind::ZooKeeper)
        .copied()
        .unwrap_or(0.0);
    let last_ready = timings
        .last_ready
        .context("the workflow provisioned nothing")?;
    let teardown = timings.teardown.context("the run was not torn down")?;
    let figures = RoundFigures {
        bare_start,
        bare_stop,
        pair_through_weir: zookeeper + kafka,
        all_ready: (last_ready - run_started).as_secs_f64(),
        teardown,
    };
    eprintln!(
        "{label}: through Weir ZooKeeper + Kafka {:.1}s, all ready {:.1}s after the start, \
         torn down in {:.1}s",
        figures.pair_through_weir, figures.all_ready, figures.teardown
    );
    Ok(figures)
}

/// What the timed runtime saw.
#[derive(Debug, Default)]
struct Timings {
    run_started: Option<Instant>,
    /// Service → seconds its provision calls took.
    provisioned: BTreeMap<ServiceKind, f64>,
    last_ready: Option<Instant>,
    teardown: Option<f64>,
}

/// A runtime that times the calls that make and remove the platform and passes every call on.
#[derive(Debug)]
struct TimedRuntime {
    inner: Arc<dyn Runtime>,
    timings: Arc<Mutex<Timings>>,
}

impl TimedRuntime {
    fn timings(&self) -> std::sync::MutexGuard<'_, Timings> {
        self.timings.lock().expect("timings")
    }
}

#[async_trait::async_trait]
impl Runtime for TimedRuntime {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    fn namespace(&self, scope: &Scope) -> Option<String> {
        self.inner.namespace(scope)
    }

    async fn simulation(&self) -> Result<Option<String>, RuntimeError> {
        self.inner.simulation().await
    }

    async fn open_run(&self, run_id: &str, workflow: &str) -> Result<(), RuntimeError> {
        self.timings().run_started = Some(Instant::now());
        self.inner.open_run(run_id, workflow).await
    }

    async fn provision(&self, request: ProvisionRequest) -> Result<Provisioned, RuntimeError> {
        let service = request.service;
        let started = Instant::now();
        let provisioned = self.inner.provision(request).await?;
        let mut timings = self.timings();
        *timings.provisioned.entry(service).or_default() += started.elapsed().as_secs_f64();
        timings.last_ready = Some(Instant::now());
        Ok(provisioned)
    }

    async fn restart(
        &self,
        scope: &Scope,
        name: &str,
        ready_timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        self.inner.restart(scope, name, ready_timeout, cancel).await
    }

    async fn scale(
        &self,
        scope: &Scope,
        name: &str,
        replicas: u32,
        ready_timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        (self.inner)
            .scale(scope, name, replicas, ready_timeout, cancel)
            .await
    }

    async fn stop(&self, scope: &Scope, name: &str) -> Result<Vec<String>, RuntimeError> {
        self.inner.stop(scope, name).await
    }

    async fn teardown(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        let started = Instant::now();
        let stopped = self.inner.teardown(scope).await?;
        self.timings().teardown = Some(started.elapsed().as_secs_f64());
        Ok(stopped)
    }

    async fn instances(&self, scope: Option<&Scope>) -> Result<Vec<Instance>, RuntimeError> {
        self.inner.instances(scope).await
    }

    async fn gc(&self) -> Result<GcReport, RuntimeError> {
        self.inner.gc().await
    }

    async fn logs(&self, scope: &Scope, name: &str, span: LogSpan) -> Result<String, RuntimeError> {
        self.inner.logs(scope, name, span).await
    }

    async fn data_step(
        &self,
        scope: &Scope,
        label: &str,
        step: &DataStep,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<StepOutcome, RuntimeError> {
        (self.inner)
            .data_step(scope, label, step, timeout, cancel)
            .await
    }

    async fn http(&self, scope: &Scope, name: &str) -> Result<HttpAccess, RuntimeError> {
        self.inner.http(scope, name).await
    }

    async fn http_replicas(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<HttpAccess>, RuntimeError> {
        self.inner.http_replicas(scope, name).await
    }
}

/// The rounds summed up.
struct Report {
    backend: Backend,
    rounds: Vec<RoundFigures>,
    bare_start: Spread,
    bare_stop: Spread,
    pair_through_weir: Spread,
    all_ready: Spread,
    teardown: Spread,
}

impl Report {
    fn of(rounds: &[RoundFigures], backend: Backend) -> Self {
        let spread = |figure: fn(&RoundFigures) -> f64| {
            let figures: Vec<f64> = rounds.iter().map(figure).collect();
            Spread::of(&figures).expect("at least one round")
        };
        Self {
            backend,
            rounds: rounds.to_vec(),
            bare_start: spread(|r| r.bare_start),
            bare_stop: spread(|r| r.bare_stop),
            pair_through_weir: spread(|r| r.pair_through_weir),
            all_ready: spread(|r| r.all_ready),
            teardown: spread(|r| r.teardown),
        }
    }

    /// ZooKeeper + Kafka through Weir over the bare pair's start, median over median.
    fn start_ratio(&self) -> f64 {
        self.pair_through_weir.median / self.bare_start.median
    }

    fn json(&self, args: &PlatformBenchArgs) -> serde_json::Value {
        let spread = |s: &Spread| json!({"median": round(s.median), "min": round(s.min), "max": round(s.max)});
        json!({
            "benchmark": "platform",
            "workflow": args.workflow.display().to_string(),
            "backend": self.backend.as_str(),
            "rounds": self.rounds.len(),
            "bare_pair_start_s": spread(&self.bare_start),
            "bare_pair_stop_s": spread(&self.bare_stop),
            "pair_through_weir_s": spread(&self.pair_through_weir),
            "all_ready_s": spread(&self.all_ready),
            "teardown_s": spread(&self.teardown),
            "start_ratio": round(self.start_ratio()),
            "rounds_s": self.rounds.iter().map(|r| json!({
                "bare_pair_start": round(r.bare_start),
                "bare_pair_stop": round(r.bare_stop),
                "pair_through_weir": round(r.pair_through_weir),
                "all_ready": round(r.all_ready),
                "teardown": round(r.teardown),
            })).collect::<Vec<_>>(),
        })
    }

    fn print(&self, args: &PlatformBenchArgs) {
        println!(
            "{} on {}, {} rounds (median, min–max, seconds):",
            args.workflow.display(),
            self.backend.as_str(),
            self.rounds.len()
        );
        for (name, s) in [
            ("bare ZooKeeper + Kafka start", &self.bare_start),
            ("bare ZooKeeper + Kafka stop", &self.bare_stop),
            ("ZooKeeper + Kafka through Weir", &self.pair_through_weir),
            ("launch to every service ready", &self.all_ready),
            ("teardown", &self.teardown),
        ] {
            println!(
                "  {name:<31} {:>6.1}  ({:.1}–{:.1})",
                s.median, s.min, s.max
            );
        }
        println!(
            "  ZooKeeper + Kafka through Weir / bare start: {:.2}",
            self.start_ratio()
        );
    }
}
