//! `weir bench charts`: Weir's chart server and the real Visdom server, each in its own
//! process, under the same append load (Visdom's own `/update` requests) at increasing
//! concurrency; appends/s and resident memory after each step.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use weir_catalog::local::distribution::cache_dir;
use weir_supervisor::ports::free_port;

use super::{round, status_kb, MemoryField};
use crate::cli::runtime;

/// One server under test, killed when dropped.
struct Server {
    name: &'static str,
    url: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    clients: usize,
    appends_per_s: f64,
    rss_mb: f64,
}

pub fn run(
    json: bool,
    step_seconds: u64,
    clients: Vec<usize>,
    visdom_python: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        step_seconds > 0 && !clients.is_empty(),
        "need at least one step of at least a second"
    );
    let python = visdom_python.unwrap_or_else(|| cache_dir().join("visdom-0.2.4/bin/python"));
    if !python.is_file() {
        bail!(
            "{} is missing: run `make setup` (or pass --visdom-python)",
            python.display()
        );
    }
    let workdir = tempfile::Builder::new()
        .prefix("weir-bench-charts-")
        .tempdir()?;
    let rt = runtime()?;

    let weir_port = free_port()?;
    let weir = Server {
        name: "weir",
        url: format!("http://127.0.0.1:{weir_port}"),
        child: Command::new(std::env::current_exe()?)
            .args([
                "charts",
                "serve",
                "--addr",
                &format!("127.0.0.1:{weir_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start weir charts serve")?,
    };
    let visdom_port = free_port()?;
    // `python -m visdom.server` first downloads its web assets from a CDN; the server itself
    // does not need them, so it is started directly.
    let launcher = format!(
        "import sys; from visdom.server.run_server import main; \
         sys.argv = ['visdom', '-port', '{visdom_port}', '-bind_local', '-env_path', '{}']; main()",
        workdir.path().display()
    );
    let visdom = Server {
        name: "visdom",
        url: format!("http://127.0.0.1:{visdom_port}"),
        child: Command::new(&python)
            .args(["-c", &launcher])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the Visdom server")?,
    };

    let mut results = Vec::new();
    for server in [&weir, &visdom] {
        eprintln!(
            "measuring {} at {:?} concurrent clients, {step_seconds}s each...",
            server.name, clients
        );
        let steps = rt.block_on(measure(server, &clients, Duration::from_secs(step_seconds)))?;
        results.push((server.name, steps));
    }
    let best = |steps: &[Step]| steps.iter().map(|s| s.appends_per_s).fold(0.0, f64::max);
    let growth = |steps: &[Step]| {
        steps.last().map(|s| s.rss_mb).unwrap_or(0.0)
            - steps.first().map(|s| s.rss_mb).unwrap_or(0.0)
    };
    let (weir_steps, visdom_steps) = (&results[0].1, &results[1].1);
    let ratio = best(weir_steps) / best(visdom_steps).max(1e-9);
    let report = json!({
        "benchmark": "charts",
        "weir": { "steps": weir_steps, "best_appends_per_s": round(best(weir_steps)), "rss_growth_mb": round(growth(weir_steps)) },
        "visdom": { "steps": visdom_steps, "best_appends_per_s": round(best(visdom_steps)), "rss_growth_mb": round(growth(visdom_steps)) },
        "ratio": round(ratio),
        "target_ratio": 10.0,
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "{:<8} {:>8} {:>14} {:>10}",
            "server", "clients", "appends/s", "RSS MiB"
        );
        for (name, steps) in &results {
            for step in steps {
                println!(
                    "{name:<8} {:>8} {:>14.0} {:>10.1}",
                    step.clients, step.appends_per_s, step.rss_mb
                );
            }
        }
        println!("ratio (best weir ÷ best visdom): {ratio:.1} (target ≥ 10)");
        println!(
            "memory growth over the run: weir {:+.1} MiB, visdom {:+.1} MiB",
            growth(weir_steps),
            growth(visdom_steps)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(server: &Server, levels: &[usize], step: Duration) -> anyhow::Result<Vec<Step>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    wait_until_up(&client, server).await?;
    let create = json!({"eid": "main", "win": "bench", "opts": {"title": "bench"}, "layout": {},
        "data": [{"x": [0], "y": [0], "type": "scatter", "name": "1"}]});
    client
        .post(format!("{}/events", server.url))
        .body(create.to_string())
        .send()
        .await?
        .error_for_status()?;
    let next_x = Arc::new(AtomicU64::new(1));
    let mut steps = Vec::new();
    for &clients in levels {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + step;
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, url, done, next_x) = (
                client.clone(),
                format!("{}/update", server.url),
                done.clone(),
                next_x.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let x = next_x.fetch_add(1, Ordering::Relaxed);
                    let body = json!({"eid": "main", "win": "bench", "name": null, "append": true, "opts": {},
                        "data": [{"x": [x], "y": [(x % 100) as f64], "type": "scatter", "name": "1"}]});
                    if let Ok(response) = client.post(&url).body(body.to_string()).send().await {
                        if response.status().is_success() && response.bytes().await.is_ok() {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        let started = Instant::now();
        for task in tasks {
            task.await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        steps.push(Step {
            clients,
            appends_per_s: round(done.load(Ordering::Relaxed) as f64 / seconds),
            rss_mb: round(status_kb(server.child.id(), MemoryField::Resident)? as f64 / 1024.0),
        });
    }
    Ok(steps)
}

async fn wait_until_up(client: &reqwest::Client, server: &Server) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let probe = client
            .post(format!("{}/env/main", server.url))
            .body(r#"{"eid": "main"}"#)
            .send()
            .await;
        if probe.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "the {} server did not come up at {}",
        server.name,
        server.url
    )
}
