//! `weir topology run|check|test`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tokio::sync::watch;
use warp::Filter;
use weir_contracts::status::RunnerStatus;
use weir_topology::metrics::{self, Metrics};
use weir_topology::runner::{self, RunnerConfig};
use weir_topology::spec::{Reads, SpecError, Step, TopologySpec};
use weir_topology::status;
use weir_topology::test_driver::{TestDriver, TestRecord};

use weir_contracts::args::{parse_assignment, RunTopologyArgs};

use super::{runtime, signals};

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Run a topology until SIGINT/SIGTERM.
    Run(RunTopologyArgs),
    /// Check a topology file without connecting to Kafka.
    Check {
        file: PathBuf,
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
        set: Vec<(String, String)>,
        /// Print the result as JSON: `valid`, the `problems` (line, column, message) or the
        /// steps with each operator and the fields after it.
        #[arg(long)]
        json: bool,
    },
    /// Run a topology on records from a file, without Kafka, and print every message it
    /// writes as one JSON line `{"topic", "key", "value", "timestamp"}`.
    ///
    /// Each input line is `{"key", "value", "timestamp"}`: `value` is the message (a string
    /// is taken as its text, any other JSON is written as JSON), `timestamp` its time in epoch
    /// milliseconds; `"topic"` names the input topic it comes from when the topology reads
    /// several (the first otherwise). The records go through the runner's own operators, as
    /// one partition.
    Test {
        file: PathBuf,
        /// JSON lines of input records (`-` reads standard input).
        #[arg(long, value_name = "RECORDS.jsonl")]
        input: PathBuf,
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
        set: Vec<(String, String)>,
    },
}

pub fn run(command: TopologyCommand) -> anyhow::Result<ExitCode> {
    match command {
        TopologyCommand::Check {
            file,
            set,
            json: true,
        } => check_json(&file, &set),
        TopologyCommand::Check { file, set, .. } => {
            let spec = TopologySpec::load(&file, &set)?;
            println!(
                "{}: topology `{}` is valid ({} operators in {} step{}, reads `{}`, writes {})",
                file.display(),
                spec.name,
                spec.operators.len(),
                spec.steps.len(),
                if spec.steps.len() == 1 { "" } else { "s" },
                spec.input.topics_text(),
                spec.output_topics().join(", ")
            );
            print!("{}", graph_text(&spec));
            Ok(ExitCode::SUCCESS)
        }
        TopologyCommand::Test { file, input, set } => {
            let spec = TopologySpec::load(&file, &set)?;
            test_topology(&spec, &input)
        }
        TopologyCommand::Run(RunTopologyArgs {
            file,
            brokers,
            set,
            addr,
            log_interval,
        }) => {
            let spec = TopologySpec::load(&file, &set)?;
            let mut config = RunnerConfig::new(brokers);
            config.log_interval = log_interval;
            runtime()?.block_on(run_topology(spec, config, addr))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The graph as `weir topology check` prints it: each step with what it reads and what reads
/// it, each operator with the fields set after it.
/// `weir topology check --json`: what the text shows, for scripts and editors.
fn check_json(file: &Path, set: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let spec = match TopologySpec::load(file, set) {
        Ok(spec) => spec,
        Err(error) => {
            let problems: Vec<serde_json::Value> = match &error {
                SpecError::Problems { problems, .. } => (problems.iter())
                    .map(|p| json!({"line": p.line, "column": p.column, "message": p.message}))
                    .collect(),
                SpecError::Invalid {
                    line,
                    column,
                    message,
                    ..
                } => vec![json!({"line": line, "column": column, "message": message})],
                other => vec![json!({"line": null, "column": null, "message": other.to_string()})],
            };
            let refused = json!({"file": file, "valid": false, "problems": problems});
            println!("{}", serde_json::to_string_pretty(&refused)?);
            return Ok(ExitCode::FAILURE);
        }
    };
    let (checked, _) = weir_topology::flow::check(&spec);
    let steps: Vec<serde_json::Value> = (spec.steps.iter())
        .map(|step| {
            let reads: Vec<String> = match &step.reads {
                Reads::Input(topics) => (topics.iter())
                    .map(|&topic| format!("topic {}", spec.input.topics[topic]))
                    .collect(),
                Reads::Steps(sources) => (sources.iter())
                    .map(|&source| spec.steps[source].name.clone())
                    .collect(),
            };
            let operators: Vec<serde_json::Value> = (step.operators.clone())
                .map(|operator| {
                    let fields: serde_json::Map<String, serde_json::Value> =
                        (checked[operator].fields.iter())
                            .map(|(name, kind)| (name.clone(), kind.to_string().into()))
                            .collect();
                    json!({"summary": checked[operator].summary, "fields": fields})
                })
                .collect();
            let retry = step.retry.as_ref().map(|retry| {
                json!({
                    "attempts": retry.attempts,
                    "backoff_ms": retry.backoff_ms,
                    "topics": retry.topics,
                    "dead_letter_topic": retry.dead_letter_topic,
                })
            });
            json!({"name": step.name, "reads": reads, "operators": operators, "retry": retry})
        })
        .collect();
    let valid = json!({
        "file": file,
        "valid": true,
        "name": spec.name,
        // `topic` as before for a topology of one input topic; `topics` always.
        "input": {
            "topic": (spec.input.topics.len() == 1).then(|| &spec.input.topics[0]),
            "topics": spec.input.topics,
            "group": spec.input.group,
        },
        "steps": steps,
        "outputs": spec.output_topics(),
        "repartitions": (spec.repartitions.iter()).map(|r| &r.topic).collect::<Vec<_>>(),
        "error_topic": spec.error_topic,
    });
    println!("{}", serde_json::to_string_pretty(&valid)?);
    Ok(ExitCode::SUCCESS)
}

fn graph_text(spec: &TopologySpec) -> String {
    use std::fmt::Write as _;
    let (checked, _) = weir_topology::flow::check(spec);
    let mut text = format!(
        "\n{} {} (group {})\n",
        if spec.input.topics.len() == 1 {
            "topic"
        } else {
            "topics"
        },
        spec.input.topics_text(),
        spec.input.group
    );
    let one_chain = spec.steps.len() == 1 && spec.steps[0].name == Step::CHAIN;
    for (index, step) in spec.steps.iter().enumerate() {
        if !one_chain {
            let reads = match &step.reads {
                Reads::Input(topics) => (topics.iter())
                    .map(|&topic| format!("topic {}", spec.input.topics[topic]))
                    .collect::<Vec<_>>()
                    .join(", "),
                Reads::Steps(sources) => (sources.iter())
                    .map(|&source| spec.steps[source].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let _ = writeln!(text, "step {} ← {reads}", step.name);
            if let Some(retry) = &step.retry {
                let _ = writeln!(
                    text,
                    "  refused records tried again {} times, after {} ms doubling each time \
                     ({} …), then → topic {}",
                    retry.attempts,
                    retry.backoff_ms,
                    retry.topics.first().map_or("", String::as_str),
                    retry.dead_letter_topic
                );
            }
        }
        for operator in step.operators.clone() {
            let fields: Vec<String> = (checked[operator].fields.iter())
                .map(|(name, kind)| format!("{name}: {kind}"))
                .collect();
            let fields = if fields.is_empty() {
                "none".to_string()
            } else {
                fields.join(", ")
            };
            let _ = writeln!(text, "  {:>2}. {}", operator + 1, checked[operator].summary);
            let _ = writeln!(text, "      fields: {fields}");
        }
        let readers: Vec<&str> = (spec.steps.iter())
            .filter(|reader| matches!(&reader.reads, Reads::Steps(s) if s.contains(&index)))
            .map(|reader| reader.name.as_str())
            .collect();
        if !one_chain && !readers.is_empty() {
            let _ = writeln!(text, "  → {}", readers.join(", "));
        }
    }
    let _ = writeln!(text, "  refused records → topic {}", spec.error_topic);
    text
}

/// `weir topology test`: pipes each input line through the topology and prints its outputs.
fn test_topology(spec: &TopologySpec, input: &Path) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead> = if input == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(input)
            .with_context(|| format!("cannot read the input records {}", input.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut driver = TestDriver::new(spec);
    let mut stdout = std::io::stdout().lock();
    let (mut records, mut outputs, mut failed, mut late) = (0u64, 0u64, 0u64, 0u64);
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("{}:{number}: cannot read", input.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: TestRecord = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{number}: not an input record; write one JSON object per line, \
                 {{\"key\": \"BTC-CNY\", \"value\": {{...}}, \"timestamp\": 1700000000000}}",
                input.display()
            )
        })?;
        let piped = driver
            .pipe(&record)
            .with_context(|| format!("{}:{number}", input.display()))?;
        records += 1;
        failed += u64::from(piped.failed);
        late += u64::from(piped.late);
        for output in &piped.outputs {
            outputs += 1;
            serde_json::to_writer(&mut stdout, output)?;
            writeln!(stdout)?;
        }
    }
    stdout.flush()?;
    eprintln!(
        "{records} records in, {outputs} messages out ({failed} to the error topic `{}`, \
         {late} late)",
        spec.error_topic
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_topology(
    spec: TopologySpec,
    config: RunnerConfig,
    addr: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(&spec.name));
    let (status_tx, status_rx) = watch::channel(RunnerStatus::new(&spec.name));
    let server = match addr {
        Some(addr) => {
            let routes = status::route(status_rx)
                .or(metrics::route(metrics.clone()))
                .unify()
                .boxed();
            let server = status::Server::start(addr, routes)
                .await
                .with_context(|| format!("cannot listen on {addr} for status and metrics"))?;
            // Printed on stdout so that a supervisor can find a port chosen with :0.
            println!("status: http://{}/status", server.addr);
            println!("metrics: http://{}/metrics", server.addr);
            Some(server)
        }
        None => None,
    };
    let result = runner::run(
        &spec,
        &config,
        metrics,
        &status_tx,
        signals::shutdown_requested(),
    )
    .await;
    if let Some(server) = server {
        server.stop().await;
    }
    result.with_context(|| format!("topology `{}` stopped with an error", spec.name))
}
