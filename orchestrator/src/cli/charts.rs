//! `weir charts serve`: the chart server.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use weir_charts::feed;
use weir_charts::saved::SavedEnvs;
use weir_charts::server;
use weir_charts::store::Charts;
use weir_contracts::chart_args::ChartServerArgs;

use super::{runtime, signals};

#[derive(Debug, Subcommand)]
pub enum ChartsCommand {
    /// Serve live charts: a page, a JSON API, PNG/SVG snapshots and Visdom's HTTP protocol.
    Serve(ChartServerArgs),
}

pub fn run(command: ChartsCommand) -> anyhow::Result<ExitCode> {
    let ChartsCommand::Serve(ChartServerArgs {
        addr,
        brokers,
        windows,
        retention,
        env_path,
    }) = command;
    if !windows.is_empty() && brokers.is_none() {
        anyhow::bail!("--window needs --brokers (or WEIR_BROKERS) to read its topic");
    }
    let charts = Charts::new(retention);
    let saved = env_path.map(SavedEnvs::new);
    if let Some(saved) = &saved {
        let (loaded, problems) = saved.load(&charts);
        if !loaded.is_empty() {
            println!(
                "charts: loaded environments {} from {}",
                loaded.join(", "),
                saved.dir().display()
            );
        }
        for problem in problems {
            eprintln!("warning: {problem} (skipped)");
        }
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!("charts: http://{}/", listener.local_addr()?);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.changed().await;
        };
        let http = tokio::spawn(server::serve(
            listener,
            charts.clone(),
            saved,
            stopped(stop_rx.clone()),
        ));
        let kafka = brokers.map(|brokers| {
            let charts = charts.clone();
            let stop = stopped(stop_rx.clone());
            tokio::spawn(async move { feed::feed(&brokers, windows, charts, stop).await })
        });
        signals::shutdown_requested().await;
        let _ = stop_tx.send(true);
        if let Some(kafka) = kafka {
            kafka.await??;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), http).await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
