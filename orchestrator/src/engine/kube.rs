//! A run on Kubernetes: its namespace, the instances it created there, and blocking wrappers
//! around the async runtime for the engine's task threads. Waits give up on Ctrl-C; teardown
//! does not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_catalog::catalog::WEIR_IMAGE;
use weir_catalog::service::PortDef;

use super::progress;
use crate::runtime::kubernetes::forward::{forward, Forward};
use crate::runtime::kubernetes::gc::owner_annotations;
use crate::runtime::kubernetes::jobs::{self, Step};
use crate::runtime::kubernetes::plan::{plan, PlannedInstance, Request};
use crate::runtime::kubernetes::{ownership_labels, run_namespace, KubeError, KubeRuntime};

/// How long deleting the run's namespace may take.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(180);

/// What the Kubernetes backend of a run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeOptions {
    /// The image carrying `weir`, for Jobs and for services that run `weir` and were not
    /// given an image of their own.
    pub weir_image: String,
}

/// One run's namespace and the instances created in it.
#[derive(Debug)]
pub struct KubeRun {
    tokio: tokio::runtime::Runtime,
    kube: KubeRuntime,
    run_id: String,
    options: KubeOptions,
    interrupt: Arc<AtomicBool>,
    /// Instance name → what was created.
    instances: Mutex<BTreeMap<String, PlannedInstance>>,
}

impl KubeRun {
    /// Connects and creates the run's namespace, labelled with the run id and annotated with
    /// this process as its owner (for `weir gc`).
    pub fn start(
        run_id: &str,
        workflow: &str,
        options: KubeOptions,
        interrupt: Arc<AtomicBool>,
    ) -> Result<Self, KubeError> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| KubeError::Io {
                what: "starting the async runtime".into(),
                source,
            })?;
        let namespace = run_namespace(run_id);
        let kube = tokio.block_on(KubeRuntime::connect(&namespace))?;
        let labels = ownership_labels(Some(run_id));
        let mut annotations = owner_annotations();
        annotations.insert("weir.dev/workflow".into(), workflow.into());
        tokio.block_on(kube.ensure_namespace(labels, annotations))?;
        progress(format!("  namespace `{namespace}` created"));
        Ok(Self {
            tokio,
            kube,
            run_id: run_id.into(),
            options,
            interrupt,
            instances: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn namespace(&self) -> &str {
        self.kube.namespace()
    }

    /// Runs `future`, giving up when the run is interrupted.
    fn block<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, KubeError>>,
    ) -> Result<T, KubeError> {
        let interrupt = self.interrupt.clone();
        self.tokio.block_on(async move {
            tokio::select! {
                result = future => result,
                _ = async {
                    while !interrupt.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                } => Err(KubeError::Interrupted),
            }
        })
    }

    /// Creates an instance (and the dependencies it lacks) and waits until each is ready.
    pub fn provision(
        &self,
        service: &str,
        instance: &str,
        mut params: Vec<(String, String)>,
        ready_timeout: Duration,
    ) -> Result<(), KubeError> {
        let existing: BTreeMap<String, String> = self
            .instances
            .lock()
            .expect("instances lock")
            .iter()
            .map(|(name, planned)| (name.clone(), planned.definition.name.to_string()))
            .collect();
        if existing.contains_key(instance) {
            progress(format!("  reusing `{instance}` of this run"));
            return Ok(());
        }
        let carries_weir = weir_catalog::catalog::find(service).and_then(|d| {
            d.params
                .iter()
                .find(|p| p.name == "image")
                .and_then(|p| p.default)
        }) == Some(WEIR_IMAGE);
        if carries_weir && !params.iter().any(|(k, _)| k == "image") {
            params.push(("image".into(), self.options.weir_image.clone()));
        }
        let planned = plan(
            &Request {
                service: service.into(),
                name: instance.into(),
                params,
            },
            &existing,
        )?;
        for item in planned {
            progress(format!(
                "  applying {} `{}` in `{}` and waiting until it is ready",
                item.definition.name,
                item.name,
                self.namespace()
            ));
            self.block(self.kube.create(&item, Some(&self.run_id), ready_timeout))?;
            progress(format!(
                "  {} `{}` is ready",
                item.definition.name, item.name
            ));
            self.instances
                .lock()
                .expect("instances lock")
                .insert(item.name.clone(), item);
        }
        Ok(())
    }

    /// The in-cluster `host:port` of a Kafka instance of this run.
    pub fn kafka_endpoint(&self, name: &str) -> Result<String, String> {
        let instances = self.instances.lock().expect("instances lock");
        match instances.get(name) {
            Some(planned) if planned.definition.name == "kafka" => planned
                .endpoint()
                .ok_or_else(|| format!("Kafka `{name}` has no port")),
            Some(planned) => Err(format!(
                "instance `{name}` is a {}, not a kafka",
                planned.definition.name
            )),
            None => Err(format!(
                "no Kafka instance named `{name}` in namespace `{}`; provision it in an earlier task",
                self.namespace()
            )),
        }
    }

    /// Instances of this run with their service.
    pub fn instances(&self) -> Vec<(String, String)> {
        self.instances
            .lock()
            .expect("instances lock")
            .values()
            .map(|p| (p.name.clone(), p.definition.name.to_string()))
            .collect()
    }

    /// Runs a data-path step as a Job and returns what it reported (`None`: nothing came back).
    pub fn run_step(
        &self,
        task: &str,
        step: &Step,
        timeout: Duration,
    ) -> Result<Option<serde_json::Value>, KubeError> {
        let job = jobs::render(
            step,
            task,
            &self.options.weir_image,
            Some(&self.run_id),
            timeout,
        );
        // The Job's own deadline ends it; the wait allows for scheduling on top.
        let outcome = self.block(self.kube.run_job(&job, timeout + Duration::from_secs(60)))?;
        Ok(outcome
            .report
            .map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))))
    }

    /// Deletes one instance's objects (sources are stopped this way before counting).
    pub fn stop(&self, instance: &str) -> Result<(), KubeError> {
        self.block(self.kube.delete_instance(instance))
    }

    /// A loopback URL leading to the instance's first port, while the returned guard lives.
    pub fn http_endpoint(
        &self,
        instance: &str,
        port: &PortDef,
    ) -> Result<(String, Forward), KubeError> {
        let pod = self.block(self.kube.pod_of(instance))?;
        let forwarded = self.block(forward(self.kube.pods(), &pod, port.container_port))?;
        Ok((format!("http://{}", forwarded.local), forwarded))
    }

    /// The log of an instance's pod.
    pub fn logs(&self, instance: &str) -> Result<String, KubeError> {
        self.block(self.kube.logs(instance))
    }

    /// Deletes the namespace and waits until it is gone, even after Ctrl-C.
    pub fn teardown(&self) -> Result<(), KubeError> {
        progress(format!(
            "  deleting namespace `{}` and waiting until it is gone",
            self.namespace()
        ));
        self.tokio
            .block_on(self.kube.delete_namespace(TEARDOWN_TIMEOUT))
            .map(|_| ())
    }
}
