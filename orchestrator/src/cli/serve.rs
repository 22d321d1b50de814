//! `weir serve`: the web UI and REST API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use weir::home::WeirHome;
use weir::runtime::local::processes::LocalProcesses;
use weir::web::{self, api::Context, auth::Access};

use super::backend::BackendArgs;
use super::{runtime, signals};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(
        long = "addr",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8080"
    )]
    addr: SocketAddr,
    /// Directory of the workflows offered in the catalog (the repository's `workflows/`).
    #[arg(long, env = "WEIR_WORKFLOWS", default_value = "workflows")]
    workflows: PathBuf,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let home = WeirHome::from_env();
    let access = Access::configure(home.root(), args.addr)?;
    let weir_exe = std::env::current_exe()?;
    // Runs whose process died while no server watched are torn down now, never left orphaned.
    let report = LocalProcesses::new(home.clone(), weir_exe.clone())?.gc()?;
    for id in &report.runs_failed {
        eprintln!("run {id} had lost its process; marked failed and cleaned up");
    }
    let workflows = std::path::absolute(&args.workflows)?;
    let offered = std::fs::read_dir(&workflows)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
                .count()
        })
        .unwrap_or(0);
    if offered == 0 {
        eprintln!(
            "warning: no workflows in {}: the catalog offers services only; pass --workflows DIR \
             (or set WEIR_WORKFLOWS) to the repository's workflows/ directory",
            workflows.display()
        );
    }
    let context = Context {
        home,
        weir_exe,
        workflows,
        kubernetes: BackendArgs::default().config()?.kubernetes,
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let bound = listener.local_addr()?;
        match &access.page_token {
            Some(_) => {
                println!("weir: http://{bound}/ (loopback; the page carries its own admin token)")
            }
            None => println!(
                "weir: http://{bound}/ (tokens required for launching, stopping and approving)"
            ),
        }
        web::serve(listener, context, access, signals::shutdown_requested()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
