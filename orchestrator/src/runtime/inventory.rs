//! Every instance this machine started, whatever runs it: what `weir instances` and the web
//! UI list. Local instances are checked against their processes; instances on a cluster are
//! the ones recorded in the store, checked against the cluster when it answers — and marked
//! `unknown` when it does not, never assumed running.

use std::collections::BTreeMap;
use std::time::Duration;
use weir_contracts::service_kind::ServiceKind;

use super::kubernetes::KubernetesRuntime;
use super::local::LocalRuntime;
use super::{Backend, Instance, InstanceState, Runtime, RuntimeConfig, RuntimeError};
use crate::store::{ClusterInstanceRecord, Store};

/// How long asking the cluster may take before its instances are listed as `unknown`.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);

/// The instances of every backend, and what could not be checked.
#[derive(Debug, Default)]
pub struct Inventory {
    pub instances: Vec<Instance>,
    /// Why some states are `unknown` (e.g. the cluster could not be reached).
    pub warnings: Vec<String>,
}

/// Lists the instances of `backend`, or of every backend.
pub async fn instances(
    config: &RuntimeConfig,
    backend: Option<Backend>,
) -> Result<Inventory, RuntimeError> {
    let mut inventory = Inventory::default();
    if backend.is_none_or(|b| b == Backend::Local) {
        let local = LocalRuntime::new(config.home.clone(), config.weir_exe.clone());
        inventory.instances = local.instances(None).await?;
    }
    if backend.is_none_or(|b| b == Backend::Kubernetes) {
        let recorded = Store::open(&config.home.database())?.cluster_instances()?;
        if !recorded.is_empty() {
            let live = tokio::time::timeout(CLUSTER_TIMEOUT, live_in_cluster(config, &recorded))
                .await
                .unwrap_or(Err(ClusterUnknown::NoAnswer(CLUSTER_TIMEOUT)));
            if let Err(reason) = &live {
                inventory.warnings.push(format!(
                    "the cluster could not be asked ({reason}); the state of its instances is unknown"
                ));
            }
            inventory.instances.extend(
                recorded
                    .into_iter()
                    .map(|record| cluster_instance(record, live.as_ref().ok())),
            );
        }
    }
    Ok(inventory)
}

/// The instance of this name, on whichever backend runs it (a local one first when both
/// hold the name), or `None` when no backend this machine started instances on has it. A
/// cluster instance is found in the store's records without asking the cluster (its state is
/// `unknown` here): callers want to know where it runs, not how it is.
pub async fn locate(config: &RuntimeConfig, name: &str) -> Result<Option<Instance>, RuntimeError> {
    let local = LocalRuntime::new(config.home.clone(), config.weir_exe.clone());
    if let Some(found) = (local.instances(None).await?.into_iter()).find(|i| i.name == name) {
        return Ok(Some(found));
    }
    let recorded = Store::open(&config.home.database())?.cluster_instances()?;
    Ok(recorded
        .into_iter()
        .find(|record| record.name == name)
        .map(|record| cluster_instance(record, None)))
}

/// Namespace → instance name → service, for the namespaces holding recorded instances.
type Live = BTreeMap<String, BTreeMap<String, ServiceKind>>;

/// Why the cluster could not say which of its recorded instances live.
#[derive(Debug, thiserror::Error)]
enum ClusterUnknown {
    #[error("no answer within {0:?}")]
    NoAnswer(std::time::Duration),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Kubernetes(#[from] crate::runtime::kubernetes::KubeError),
}

async fn live_in_cluster(
    config: &RuntimeConfig,
    recorded: &[ClusterInstanceRecord],
) -> Result<Live, ClusterUnknown> {
    let cluster =
        KubernetesRuntime::connect(config.kubernetes.clone(), config.home.clone()).await?;
    let mut live = Live::new();
    for record in recorded {
        if !live.contains_key(&record.namespace) {
            let found = cluster.instances_in(&record.namespace).await?;
            live.insert(record.namespace.clone(), found);
        }
    }
    Ok(live)
}

fn cluster_instance(record: ClusterInstanceRecord, live: Option<&Live>) -> Instance {
    let state = match live {
        None => InstanceState::Unknown,
        Some(live) => {
            let found = live
                .get(&record.namespace)
                .and_then(|names| names.get(&record.name));
            if found == Some(&record.service) {
                InstanceState::Running
            } else {
                InstanceState::Dead
            }
        }
    };
    Instance {
        name: record.name,
        service: record.service,
        state,
        endpoint: record.endpoint,
        backend: Backend::Kubernetes,
        run: record.run_id,
        namespace: Some(record.namespace),
        pid: None,
        log: String::new(),
        started: Some(crate::time::rfc3339(record.created_at)),
        uses: Vec::new(),
        exit: None,
        restarts: 0,
        members: Vec::new(),
    }
}
