//! `weir serve`: the web UI and REST API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use weir::offered::{unpack_shipped, yaml_files, OfferedWorkflows};
use weir::runtime::local::processes::LocalProcesses;
use weir::runtime::Backend;
use weir::web::{self, api::Context, api::OfferedBackends, auth::Access};

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
    /// A directory of workflows offered in the catalog besides the shipped ones (which are
    /// built into weir); one of its workflows hides a shipped one of the same name.
    #[arg(long, env = "WEIR_WORKFLOWS", value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// Where launches from the web may run, the first being the forms' default. A server in a
    /// cluster (the Helm chart) offers only `kubernetes`.
    #[arg(
        long,
        env = "WEIR_BACKENDS",
        value_enum,
        value_delimiter = ',',
        default_value = "local,kubernetes"
    )]
    backends: Vec<Backend>,
}

/// Has each backend's own `gc` remove what runs that lost their process left there (a run in
/// pods: its namespace), saying what it did; a backend that cannot be reached is said too, and
/// the server starts all the same.
fn clean_up_after_dead_runs(config: &weir::runtime::RuntimeConfig, backends: &[Backend]) {
    for &backend in backends {
        let mut config = config.clone();
        config.backend = backend;
        let collected = runtime().and_then(|runtime| {
            runtime.block_on(async {
                let runtime = weir::runtime::connect(config).await?;
                anyhow::Ok(runtime.gc().await?)
            })
        });
        match collected {
            Ok(report) => {
                for name in &report.orphans_stopped {
                    eprintln!("stopped orphaned instance {name} (its owner is gone)");
                }
                for (namespace, reason) in &report.namespaces_deleted {
                    eprintln!("deleted namespace {namespace} ({reason})");
                }
            }
            Err(error) => eprintln!(
                "cannot clean up after runs that lost their process on {backend}: {error:#}; \
                 `weir gc --backend {backend}` does it once it answers"
            ),
        }
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // How to reach every backend; the web picks each instance's own.
    let runtime_config = BackendArgs::default().config()?;
    let home = runtime_config.home.clone();
    let access = Access::configure(home.root(), args.addr)?;
    let weir_exe = runtime_config.weir_exe.clone();
    // Runs whose process died while no server watched are torn down now, never left orphaned.
    let report = LocalProcesses::new(home.clone(), weir_exe.clone())?.gc()?;
    for id in &report.runs_failed {
        eprintln!("run {id} had lost its process; marked failed and cleaned up");
    }
    // A run whose `weir run` died with this server (the portal's pod restarted, say) is not
    // picked up again: it was just marked failed, and what it left in its backend goes now,
    // so that nothing of it keeps running unwatched.
    let store = weir::store::Store::open(&home.database())?;
    let mut backends: Vec<Backend> = Vec::new();
    for run in (report.runs_failed.iter()).filter_map(|id| store.run(id).ok().flatten()) {
        match Backend::try_from(run.backend) {
            Ok(backend) if !backends.contains(&backend) => backends.push(backend),
            _ => {}
        }
    }
    drop(store);
    clean_up_after_dead_runs(&runtime_config, &backends);
    let mut dirs = Vec::new();
    if let Some(dir) = &args.workflows {
        let dir = std::path::absolute(dir)?;
        if yaml_files(&dir).is_empty() {
            eprintln!(
                "warning: no workflows (*.yaml) in {}: only the shipped workflows are offered",
                dir.display()
            );
        }
        dirs.push(dir);
    }
    let shipped = unpack_shipped(home.root()).with_context(|| {
        format!(
            "cannot unpack the shipped workflows under {}",
            home.root().display()
        )
    })?;
    dirs.push(shipped);
    let workflows = OfferedWorkflows::new(dirs);
    let context = Context {
        workflows,
        runtime: runtime_config,
        backends: OfferedBackends::new(args.backends)?,
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
