//! `weir catalog`, `weir up`, `weir down`, `weir instances`, `weir gc`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use weir::runtime::{inventory, Backend, ProvisionRequest, Provisioned, Scope};
use weir_catalog::catalog;
use weir_catalog::service::ParamKind;
use weir_contracts::service_kind::ServiceKind;

use super::backend::BackendArgs;
use super::{parse_assignment, parse_duration, runtime, signals};

#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The catalog service, e.g. `kafka`.
    #[arg(value_parser = ServiceKind::parse)]
    service: ServiceKind,
    /// Instance name (default `<service>-N`).
    #[arg(long)]
    name: Option<String>,
    /// A service parameter; `weir catalog` lists them.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    set: Vec<(String, String)>,
    #[command(flatten)]
    backend: BackendArgs,
    /// How long to wait for each instance to become ready.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The instance to stop.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,
    /// Stop every instance.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Replicas that stay keep running; a runner that goes commits what it acknowledged, and
/// the consumer group moves its partitions (their `diff` state with them).
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The instance, e.g. a workflow's topology runner.
    name: String,
    /// How many replicas it should have.
    #[arg(long)]
    replicas: u32,
    /// The instance belongs to this run (on Kubernetes it lives in the run's namespace);
    /// without it, a standalone instance (`weir up`).
    #[arg(long, value_name = "RUN_ID")]
    run: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
    /// How long to wait for the replicas to become ready.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct InstancesArgs {
    #[arg(long)]
    json: bool,
    /// Only the instances of this backend (default: every backend this machine started
    /// instances on).
    #[arg(long, value_enum)]
    backend: Option<Backend>,
}

/// On `kubernetes`, gc deletes the namespaces of runs that ended or lost their process.
#[derive(Debug, Args)]
pub struct GcArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn catalog(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    let services = catalog::services();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&services)?);
        return Ok(ExitCode::SUCCESS);
    }
    for service in services {
        println!("{}  —  {}", service.kind, service.description);
        for param in &service.params {
            let kind = match &param.kind {
                ParamKind::String => "string".to_string(),
                ParamKind::Int { min, max } => format!("int {min}..{max}"),
                ParamKind::Bool => "bool".into(),
                ParamKind::Duration => "duration".into(),
                ParamKind::Url => "url".into(),
                ParamKind::Path => "path".into(),
                ParamKind::Enum { values } => values.join("|"),
                ParamKind::Instance { service } => format!("{service} instance"),
                ParamKind::Mapping => "mapping".into(),
                ParamKind::Windows => "windows".into(),
            };
            let default = match (param.default, param.required) {
                (Some(d), _) => format!(" = {d}"),
                (None, true) => " (required)".into(),
                (None, false) => String::new(),
            };
            println!(
                "    {:<20} {:<18} {}{default}",
                param.name, kind, param.description
            );
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

pub fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let started = runtime()?.block_on(async {
        let cancel = signals::cancelled_on_shutdown();
        let runtime = args.backend.connect().await?;
        let provisioned = runtime
            .provision(ProvisionRequest {
                service: args.service,
                name: args.name.clone(),
                params: args.set.clone(),
                scope: Scope::Standalone,
                ready_timeout: args.timeout,
                cancel,
            })
            .await?;
        anyhow::Ok(match provisioned {
            Provisioned::Started(instances) => instances,
            Provisioned::Reused(instance) => vec![*instance],
        })
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&started)?);
    } else {
        for instance in &started {
            let endpoint = display_endpoint(&instance.endpoint);
            match &instance.namespace {
                Some(namespace) => println!(
                    "{} {} ready in namespace {namespace} ({endpoint})",
                    instance.name, instance.service
                ),
                None => println!("{} {} running {endpoint}", instance.name, instance.service),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let stopped = runtime()?.block_on(async {
        let runtime = args.backend.connect().await?;
        anyhow::Ok(match &args.name {
            Some(name) => runtime.stop(&Scope::Standalone, name).await?,
            None => runtime.teardown(&Scope::Standalone).await?,
        })
    })?;
    if stopped.is_empty() {
        println!("no instances to stop");
    }
    for name in stopped {
        println!("stopped {name}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn scale(args: ScaleArgs) -> anyhow::Result<ExitCode> {
    let scope = match args.run.clone() {
        Some(run) => Scope::Run(run),
        None => Scope::Standalone,
    };
    let instance = runtime()?.block_on(async {
        let cancel = signals::cancelled_on_shutdown();
        let runtime = args.backend.connect().await?;
        anyhow::Ok(
            runtime
                .scale(&scope, &args.name, args.replicas, args.timeout, &cancel)
                .await?,
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&instance)?);
    } else {
        println!(
            "{} {} scaled to {} replicas",
            instance.name, instance.service, args.replicas
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn instances(args: InstancesArgs) -> anyhow::Result<ExitCode> {
    let config = BackendArgs::default().config()?;
    let inventory =
        runtime()?.block_on(async { inventory::instances(&config, args.backend).await })?;
    for warning in &inventory.warnings {
        eprintln!("warning: {warning}");
    }
    let instances = inventory.instances;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&instances)?);
        return Ok(ExitCode::SUCCESS);
    }
    if instances.is_empty() {
        println!(
            "no service instances (start one with `weir up SERVICE{}`)",
            match args.backend {
                Some(Backend::Kubernetes) => " --backend kubernetes",
                _ => "",
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<16} {:<9} {:<11} {:<28} STARTED",
        "NAME", "SERVICE", "STATE", "BACKEND", "ENDPOINT"
    );
    for instance in instances {
        let backend = match &instance.namespace {
            Some(namespace) => format!("{}/{namespace}", instance.backend.as_str()),
            None => instance.backend.as_str().to_string(),
        };
        println!(
            "{:<24} {:<16} {:<9} {:<11} {:<28} {}",
            instance.name,
            instance.service,
            instance.state.as_str(),
            backend,
            display_endpoint(&instance.endpoint),
            instance.started.as_deref().unwrap_or("-")
        );
        // The processes of a cluster or of a topology's replicas, one line each.
        for member in &instance.members {
            let process = match member.pid {
                Some(pid) => format!("pid {pid}"),
                None => "restarting".into(),
            };
            let last_exit = match &member.last_exit {
                Some(how) => format!(", last {how}"),
                None => String::new(),
            };
            println!(
                "  {:<22} {:<16} {:<9} {:<11} {:<28} {} restarts{last_exit}",
                member.name,
                "",
                process,
                "",
                member.endpoint.as_deref().unwrap_or("-"),
                member.restarts
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let report = runtime()?.block_on(async {
        let runtime = args.backend.connect().await?;
        anyhow::Ok(runtime.gc().await?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if report.is_empty() {
        println!("nothing to clean up");
    }
    for name in &report.orphans_stopped {
        println!("stopped orphaned instance {name} (its owner is gone)");
    }
    for name in &report.stale_removed {
        println!("removed record of dead instance {name}");
    }
    for name in &report.directories_removed {
        println!("removed leftover directory of {name}");
    }
    for (namespace, reason) in &report.namespaces_deleted {
        println!("deleted namespace {namespace} ({reason})");
    }
    for (namespace, reason) in &report.namespaces_kept {
        println!("kept namespace {namespace} ({reason})");
    }
    for run in &report.runs_failed {
        println!("marked run {run} failed");
    }
    Ok(ExitCode::SUCCESS)
}

fn display_endpoint(endpoint: &str) -> &str {
    if endpoint.is_empty() {
        "-"
    } else {
        endpoint
    }
}
