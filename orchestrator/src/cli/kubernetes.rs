//! `weir up|down|instances|gc --backend kubernetes`. Standalone instances live in one
//! namespace (`--namespace`, default `weir`) and are found again by their labels; runs get
//! namespaces of their own, which `gc` removes once their run is gone.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use weir::home::WeirHome;
use weir::runtime::kubernetes::gc::collect_namespaces;
use weir::runtime::kubernetes::plan::{plan, Request};
use weir::runtime::kubernetes::{ownership_labels, KubeRuntime};
use weir::store::Store;

use super::runtime;
use super::services::{DownArgs, GcArgs, InstancesArgs, UpArgs};

/// How long `weir gc` waits for each namespace to be gone.
const NAMESPACE_DELETE_TIMEOUT: Duration = Duration::from_secs(180);

pub fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let tokio = runtime()?;
    let kube = tokio.block_on(KubeRuntime::connect(&args.namespace))?;
    tokio.block_on(kube.ensure_namespace(ownership_labels(None), BTreeMap::new()))?;
    let existing = tokio.block_on(kube.instances())?;
    let name = args.name.clone().unwrap_or_else(|| {
        (1..)
            .map(|n| format!("{}-{n}", args.service))
            .find(|candidate| !existing.contains_key(candidate))
            .expect("an unused name")
    });
    if existing.contains_key(&name) {
        anyhow::bail!(
            "namespace `{}` already has an instance named `{name}`; choose another name or `weir down --backend kubernetes {name}`",
            args.namespace
        );
    }
    let planned = plan(
        &Request {
            service: args.service.clone(),
            name,
            params: args.set.clone(),
        },
        &existing,
    )?;
    let mut started = Vec::new();
    for instance in &planned {
        eprintln!(
            "applying {} `{}` in namespace `{}`; waiting up to {:?} until it is ready",
            instance.definition.name, instance.name, args.namespace, args.timeout
        );
        tokio.block_on(kube.create(instance, None, args.timeout))?;
        started.push(serde_json::json!({
            "name": instance.name,
            "service": instance.definition.name,
            "namespace": args.namespace,
            "endpoint": instance.endpoint(),
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&started)?);
    } else {
        for row in &started {
            println!(
                "{} {} ready in namespace {} ({})",
                row["name"].as_str().unwrap_or_default(),
                row["service"].as_str().unwrap_or_default(),
                args.namespace,
                row["endpoint"].as_str().unwrap_or("no port")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn down(args: DownArgs) -> anyhow::Result<ExitCode> {
    let tokio = runtime()?;
    let kube = tokio.block_on(KubeRuntime::connect(&args.namespace))?;
    let existing = tokio.block_on(kube.instances())?;
    let names: Vec<String> = match &args.name {
        Some(name) if existing.contains_key(name) => vec![name.clone()],
        Some(name) => anyhow::bail!(
            "namespace `{}` has no instance named `{name}`; `weir instances --backend kubernetes` lists them",
            args.namespace
        ),
        None => existing.keys().cloned().collect(),
    };
    if names.is_empty() {
        println!("no instances to stop in namespace {}", args.namespace);
    }
    for name in names {
        tokio.block_on(kube.delete_instance(&name))?;
        println!("deleted {name} from namespace {}", args.namespace);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn instances(args: InstancesArgs) -> anyhow::Result<ExitCode> {
    let tokio = runtime()?;
    let kube = tokio.block_on(KubeRuntime::connect(&args.namespace))?;
    let existing = tokio.block_on(kube.instances())?;
    if args.json {
        let rows: Vec<serde_json::Value> = existing
            .iter()
            .map(|(name, service)| {
                serde_json::json!({ "name": name, "service": service, "namespace": args.namespace, "backend": "kubernetes" })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if existing.is_empty() {
        println!(
            "no instances in namespace {} (start one with `weir up --backend kubernetes SERVICE`)",
            args.namespace
        );
    } else {
        println!("{:<24} SERVICE", "NAME");
        for (name, service) in &existing {
            println!("{name:<24} {service}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let tokio = runtime()?;
    let kube = tokio.block_on(KubeRuntime::connect("default"))?;
    let store = Store::open(&WeirHome::from_env().database())?;
    let report = tokio.block_on(collect_namespaces(
        kube.client(),
        &store,
        NAMESPACE_DELETE_TIMEOUT,
    ))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if report.deleted.is_empty() {
        println!("no run namespaces to delete");
    }
    for (namespace, reason) in &report.deleted {
        println!("deleted namespace {namespace} ({reason})");
    }
    for (namespace, reason) in &report.kept {
        println!("kept namespace {namespace} ({reason})");
    }
    for run in &report.runs_failed {
        println!("marked run {run} failed");
    }
    Ok(ExitCode::SUCCESS)
}
