//! `weir bench topology`: the reference topology against a plain rdkafka pass-through, on the
//! same broker, in the same run. The headline is the ratio of their throughputs.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::json;
use weir_catalog::local::ports::free_port;
use weir_catalog::local::process::Lifetime;
use weir_catalog::local::stack::KafkaStack;
use weir_topology::kafka::{consumer_config, ensure_topics, producer_config};

use super::{round, status_kb};
use crate::cli::runtime;

#[allow(clippy::too_many_arguments)]
pub fn run(
    json: bool,
    records: u64,
    live_records: u64,
    live_rate: u64,
    brokers: Option<String>,
    topology: PathBuf,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        records > 0 && live_records > 0 && live_rate > 0,
        "counts and rates must be positive"
    );
    let workdir = tempfile::Builder::new().prefix("weir-bench-").tempdir()?;
    let stack = match &brokers {
        Some(_) => None,
        None => {
            eprintln!("starting a private ZooKeeper and Kafka for the benchmark...");
            Some(KafkaStack::start(
                workdir.path(),
                Lifetime::DiesWithParent,
                Duration::from_secs(120),
            )?)
        }
    };
    let bootstrap = brokers.unwrap_or_else(|| {
        stack
            .as_ref()
            .expect("stack started")
            .bootstrap()
            .to_string()
    });
    let run_id = std::process::id();
    let rt = runtime()?;

    let input = format!("bench-in-{run_id}");
    let passthrough_out = format!("bench-passthrough-{run_id}");
    rt.block_on(ensure_topics(&bootstrap, &[&input, &passthrough_out], 1))?;
    eprintln!("loading {records} documents into `{input}`...");
    rt.block_on(fill(&bootstrap, &input, records, None))?;

    eprintln!("measuring the plain rdkafka pass-through...");
    let passthrough_rate =
        rt.block_on(passthrough(&bootstrap, &input, &passthrough_out, records))?;

    eprintln!("measuring the topology runner on the same {records} documents...");
    let throughput = measure_runner(
        &bootstrap,
        &topology,
        &input,
        &format!("bench-{run_id}"),
        records,
        workdir.path(),
        None,
    )?;

    let live = format!("bench-live-{run_id}");
    rt.block_on(ensure_topics(&bootstrap, &[&live], 1))?;
    eprintln!("measuring end-to-end latency at {live_rate} records/s...");
    let latency = measure_runner(
        &bootstrap,
        &topology,
        &live,
        &format!("bench-live-{run_id}"),
        live_records,
        workdir.path(),
        Some((&rt, live_rate)),
    )?;

    let ratio = throughput.records_per_s / passthrough_rate;
    let report = json!({
        "benchmark": "topology",
        "topology": topology.display().to_string(),
        "records": records,
        "runner": {
            "records_per_s": round(throughput.records_per_s),
            "peak_rss_mb": round(throughput.peak_rss_kb as f64 / 1024.0),
            "latency_records": live_records,
            "latency_rate_per_s": live_rate,
            "latency_p50_ms": round(latency.p50_ms),
            "latency_p99_ms": round(latency.p99_ms),
        },
        "passthrough": { "records_per_s": round(passthrough_rate) },
        "ratio": round(ratio),
        "target_ratio": 0.5,
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "topology runner : {:>10.0} records/s, peak RSS {:.1} MiB",
            throughput.records_per_s,
            throughput.peak_rss_kb as f64 / 1024.0
        );
        println!(
            "pass-through    : {passthrough_rate:>10.0} records/s (plain rdkafka consume→produce)"
        );
        println!("ratio           : {ratio:.2} (target ≥ 0.50)");
        println!(
            "latency at {live_rate}/s: p50 {:.1} ms, p99 {:.1} ms over {live_records} records",
            latency.p50_ms, latency.p99_ms
        );
    }
    if let Some(stack) = stack {
        stack.stop();
    }
    Ok(ExitCode::SUCCESS)
}

/// Synthetic ticker documents shaped like a real spot-price API answer. They only feed the
/// benchmark; nothing here is shown as market data.
fn document(index: u64) -> String {
    let wobble = ((index.wrapping_mul(2654435761) >> 7) % 20_000) as f64 / 100.0 - 100.0;
    let rate = 480_000.0 + wobble;
    format!(r#"{{"data":{{"amount":"{rate:.2}","base":"BTC","currency":"CNY"}}}}"#)
}

/// Writes `count` documents; with a pace, spreads them evenly at that many per second.
async fn fill(bootstrap: &str, topic: &str, count: u64, pace: Option<u64>) -> anyhow::Result<()> {
    let producer: FutureProducer = producer_config(bootstrap).create()?;
    let started = Instant::now();
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    for index in 0..count {
        if let Some(rate) = pace {
            let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let payload = document(index);
        loop {
            match producer.send_result(FutureRecord::<str, str>::to(topic).payload(&payload)) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err(_) => {
                    for delivery in pending.drain(..) {
                        delivery.await?.map_err(|(e, _)| e)?;
                    }
                }
            }
        }
        if pending.len() >= 10_000 {
            for delivery in pending.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// Plain consume→produce of `count` records, timed from the first record to the last ack.
async fn passthrough(
    bootstrap: &str,
    input: &str,
    output: &str,
    count: u64,
) -> anyhow::Result<f64> {
    let consumer: BaseConsumer =
        consumer_config(bootstrap, &format!("{input}-passthrough")).create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(input, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let producer: FutureProducer = producer_config(bootstrap).create()?;
    let mut first: Option<Instant> = None;
    let mut pending = Vec::with_capacity(20_000);
    let mut received = 0u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while received < count {
        if Instant::now() > deadline {
            bail!("pass-through saw only {received} of {count} records in 10 minutes");
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        first.get_or_insert_with(Instant::now);
        received += 1;
        let payload = message.payload().unwrap_or_default();
        loop {
            match producer.send_result(FutureRecord::<str, [u8]>::to(output).payload(payload)) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        if pending.len() >= 20_000 {
            for delivery in pending.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    let seconds = first.map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::MAX);
    Ok(count as f64 / seconds)
}

#[derive(Debug, Default)]
struct RunnerFigures {
    records_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_kb: u64,
}

/// Runs `weir topology run` as its own process over `input` and reads its `/metrics`.
/// With `live`, the input is produced at a steady pace once the runner consumes.
fn measure_runner(
    bootstrap: &str,
    topology: &PathBuf,
    input: &str,
    name: &str,
    count: u64,
    workdir: &std::path::Path,
    live: Option<(&tokio::runtime::Runtime, u64)>,
) -> anyhow::Result<RunnerFigures> {
    let port = free_port()?;
    let log = std::fs::File::create(workdir.join(format!("{name}.log")))?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["topology", "run"])
        .arg(topology)
        .args([
            "--brokers",
            bootstrap,
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--set", &format!("message_topic={input}")])
        .args(["--set", &format!("dataflow_name={name}")])
        .args(["--set", &format!("rate_topic={name}-rates")])
        .args(["--set", &format!("variation_topic={name}-variations")])
        .args(["--set", &format!("notification_topic={name}-notifications")])
        .args(["--set", &format!("error_topic={name}-errors")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start the topology runner")?;
    let result = (|| {
        let url = format!("http://127.0.0.1:{port}/metrics");
        let client = reqwest::blocking::Client::new();
        let expected = match live {
            Some((rt, rate)) => {
                // One warm-up record proves the runner has joined its group before timing.
                rt.block_on(fill(bootstrap, input, 1, None))?;
                wait_for_done(&client, &url, &mut child, 1, Duration::from_secs(60))?;
                rt.block_on(fill(bootstrap, input, count, Some(rate)))?;
                count + 1
            }
            None => count,
        };
        let started = wait_for_first(&client, &url, &mut child)?;
        let figures = wait_for_done(
            &client,
            &url,
            &mut child,
            expected,
            Duration::from_secs(600),
        )?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(RunnerFigures {
            records_per_s: expected as f64 / seconds,
            peak_rss_kb: status_kb(child.id(), "VmHWM")?,
            ..figures
        })
    })();
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    result
}

fn scrape(client: &reqwest::blocking::Client, url: &str) -> Option<String> {
    client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .ok()?
        .text()
        .ok()
}

/// The value of the first sample of `metric` (labels ignored, `quantile` matched if given).
fn sample(text: &str, metric: &str, quantile: Option<&str>) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(&format!("{metric}{{"))
                && quantile.is_none_or(|q| l.contains(&format!("quantile=\"{q}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn ensure_alive(child: &mut Child) -> anyhow::Result<()> {
    if let Some(status) = child.try_wait()? {
        bail!(
            "the topology runner exited early ({status}); see its log in the benchmark directory"
        );
    }
    Ok(())
}

fn wait_for_first(
    client: &reqwest::blocking::Client,
    url: &str,
    child: &mut Child,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        ensure_alive(child)?;
        if scrape(client, url)
            .and_then(|t| sample(&t, "weir_records_in_total", None))
            .is_some_and(|n| n > 0.0)
        {
            return Ok(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("the topology runner consumed nothing within a minute")
}

fn wait_for_done(
    client: &reqwest::blocking::Client,
    url: &str,
    child: &mut Child,
    count: u64,
    timeout: Duration,
) -> anyhow::Result<RunnerFigures> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        ensure_alive(child)?;
        if let Some(text) = scrape(client, url) {
            let done = sample(&text, "weir_records_done_total", None);
            if done.is_some_and(|done| done >= count as f64) {
                let quantile_ms = |q: &str| {
                    sample(&text, "weir_latency_seconds", Some(q))
                        .map(|seconds| seconds * 1000.0)
                        .with_context(|| {
                            format!("the runner's /metrics has no latency quantile {q}")
                        })
                };
                return Ok(RunnerFigures {
                    p50_ms: quantile_ms("0.5")?,
                    p99_ms: quantile_ms("0.99")?,
                    ..RunnerFigures::default()
                });
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("the topology runner did not finish {count} records within {timeout:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_from_prometheus_text() {
        let text = "# HELP x\nweir_records_done_total{topology=\"t\"} 42\n\
                    weir_latency_seconds{topology=\"t\",quantile=\"0.5\"} 0.004\n\
                    weir_latency_seconds{topology=\"t\",quantile=\"0.99\"} 0.02\n";
        assert_eq!(sample(text, "weir_records_done_total", None), Some(42.0));
        assert_eq!(
            sample(text, "weir_latency_seconds", Some("0.99")),
            Some(0.02)
        );
        assert_eq!(sample(text, "weir_missing", None), None);
    }

    #[test]
    fn documents_look_like_spot_prices() {
        let doc: serde_json::Value = serde_json::from_str(&document(7)).unwrap();
        let amount: f64 = doc["data"]["amount"].as_str().unwrap().parse().unwrap();
        assert!((479_900.0..=480_100.0).contains(&amount));
    }
}
