//! `weir catalog`, `weir up`, `weir down`, `weir instances`, `weir gc`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use weir::home::WeirHome;
use weir::runtime::local::{LocalRuntime, Ownership, UpRequest};
use weir::time::rfc3339;
use weir_catalog::catalog;
use weir_catalog::service::ParamKind;

use super::{parse_assignment, parse_duration};

#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The catalog service, e.g. `kafka`.
    pub(super) service: String,
    /// Instance name (default `<service>-N`).
    #[arg(long)]
    pub(super) name: Option<String>,
    /// A service parameter; `weir catalog` lists them.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub(super) set: Vec<(String, String)>,
    /// Where: `local` processes, or `kubernetes` (the cluster the kubeconfig names).
    #[arg(long, default_value = "local", value_parser = ["local", "kubernetes"])]
    pub(super) backend: String,
    /// The namespace of standalone instances on Kubernetes.
    #[arg(long, default_value = "weir")]
    pub(super) namespace: String,
    /// How long to wait for each instance to become ready.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub(super) timeout: Duration,
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The instance to stop.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub(super) name: Option<String>,
    /// Stop every instance.
    #[arg(long)]
    pub(super) all: bool,
    /// Where: `local` processes, or `kubernetes` (the cluster the kubeconfig names).
    #[arg(long, default_value = "local", value_parser = ["local", "kubernetes"])]
    pub(super) backend: String,
    /// The namespace of standalone instances on Kubernetes.
    #[arg(long, default_value = "weir")]
    pub(super) namespace: String,
}

#[derive(Debug, Args)]
pub struct InstancesArgs {
    #[arg(long)]
    pub(super) json: bool,
    /// Where: `local` processes, or `kubernetes` (the cluster the kubeconfig names).
    #[arg(long, default_value = "local", value_parser = ["local", "kubernetes"])]
    pub(super) backend: String,
    /// The namespace of standalone instances on Kubernetes.
    #[arg(long, default_value = "weir")]
    pub(super) namespace: String,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[arg(long)]
    pub(super) json: bool,
    /// `kubernetes`: delete the namespaces of runs that no longer exist.
    #[arg(long, default_value = "local", value_parser = ["local", "kubernetes"])]
    pub(super) backend: String,
}

fn runtime() -> anyhow::Result<LocalRuntime> {
    Ok(LocalRuntime::new(
        WeirHome::from_env(),
        std::env::current_exe()?,
    )?)
}

pub fn catalog(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    let services = catalog::services();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&services)?);
        return Ok(ExitCode::SUCCESS);
    }
    for service in services {
        println!("{}  —  {}", service.name, service.description);
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
    if args.backend == "kubernetes" {
        return super::kubernetes::up(args);
    }
    let runtime = runtime()?;
    let started = runtime.up(&UpRequest {
        service: args.service,
        name: args.name,
        params: args.set,
        ownership: Ownership::Standalone,
        ready_timeout: args.timeout,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&started)?);
    } else {
        for record in &started {
            println!(
                "{} {} running {}",
                record.name,
                record.service,
                display_endpoint(&record.endpoint)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    if args.backend == "kubernetes" {
        return super::kubernetes::down(args);
    }
    let runtime = runtime()?;
    let stopped = match args.name {
        Some(name) => runtime.down(&name)?,
        None => runtime.down_all(None)?,
    };
    if stopped.is_empty() {
        println!("no instances to stop");
    }
    for name in stopped {
        println!("stopped {name}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn instances(args: InstancesArgs) -> anyhow::Result<ExitCode> {
    if args.backend == "kubernetes" {
        return super::kubernetes::instances(args);
    }
    let runtime = runtime()?;
    let rows: Vec<serde_json::Value> = runtime
        .instances()?
        .into_iter()
        .map(|(record, alive)| {
            let state = if alive || record.pid.is_none() {
                record.state.as_str()
            } else {
                "dead"
            };
            serde_json::json!({
                "name": record.name,
                "service": record.service,
                "state": state,
                "endpoint": record.endpoint,
                "pid": record.pid,
                "log": record.log_path,
                "started": rfc3339(record.created_at),
                "run": record.run_id,
                "backend": record.backend,
                "uses": record.uses,
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no service instances (start one with `weir up SERVICE`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<16} {:<9} {:<28} STARTED",
        "NAME", "SERVICE", "STATE", "ENDPOINT"
    );
    for row in rows {
        let text = |key: &str| row[key].as_str().unwrap_or("").to_string();
        println!(
            "{:<24} {:<16} {:<9} {:<28} {}",
            text("name"),
            text("service"),
            text("state"),
            display_endpoint(&text("endpoint")),
            text("started")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    if args.backend == "kubernetes" {
        return super::kubernetes::gc(args);
    }
    let report = runtime()?.gc()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report == Default::default() {
        println!("nothing to clean up");
    } else {
        for name in &report.orphans_stopped {
            println!("stopped orphaned instance {name} (its owner is gone)");
        }
        for name in &report.stale_removed {
            println!("removed record of dead instance {name}");
        }
        for name in &report.directories_removed {
            println!("removed leftover directory of {name}");
        }
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
