//! The local runtime: catalog services as processes on this machine, on free loopback ports,
//! recorded in the store ([`processes`]) so that any later `weir` command — or `weir gc`
//! after a crash — can find and stop them. The data-path steps talk to the brokers directly.

mod log_file;
pub mod processes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_contracts::service_kind::ServiceKind;

use self::processes::{LocalProcesses, UpRequest};
use super::topics::{wait_for_messages, WaitError};
use super::{
    combined_log, progress, Backend, CreatedTopics, DataReport, DataStep, GcReport, HttpAccess,
    Instance, InstanceState, LogSpan, ProvisionRequest, Provisioned, Runtime, RuntimeError, Scope,
    StepOutcome,
};
use crate::home::WeirHome;
use crate::store::{self, InstanceRecord};
use crate::time::rfc3339;

/// Processes on this machine.
#[derive(Debug, Clone)]
pub struct LocalRuntime {
    home: WeirHome,
    weir_exe: PathBuf,
}

impl LocalRuntime {
    pub fn new(home: WeirHome, weir_exe: PathBuf) -> Self {
        Self { home, weir_exe }
    }

    /// The store-backed process manager, opened for the calling thread.
    pub fn processes(&self) -> Result<LocalProcesses, RuntimeError> {
        LocalProcesses::new(self.home.clone(), self.weir_exe.clone())
    }

    /// Runs blocking process management on a thread of its own.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(LocalProcesses) -> Result<T, RuntimeError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let processes = self.processes()?;
        tokio::task::spawn_blocking(move || work(processes))
            .await
            .expect("process management does not panic")
    }

    /// Runs process management that waits (for readiness) on a thread of its own, and makes
    /// it give up when `cancel` fires: it then stops what it started, and the answer is
    /// [`RuntimeError::Interrupted`].
    async fn interruptible<T: Send + 'static>(
        &self,
        cancel: &CancellationToken,
        work: impl FnOnce(LocalProcesses) -> Result<T, RuntimeError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let token = cancel.clone();
        let outcome = self
            .blocking(move |processes| work(processes.with_cancel(token)))
            .await;
        match outcome {
            Err(_) if cancel.is_cancelled() => Err(RuntimeError::Interrupted),
            other => other,
        }
    }

    async fn record(&self, name: &str) -> Result<InstanceRecord, RuntimeError> {
        let store = store::Store::open(&self.home.database())?;
        store
            .instance(name)?
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))
    }

    /// The endpoint of a running Kafka instance.
    async fn kafka_endpoint(&self, name: &str) -> Result<String, RuntimeError> {
        let instance = self
            .instances(None)
            .await?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| RuntimeError::NoKafka(name.into()))?;
        if instance.service != ServiceKind::Kafka {
            return Err(RuntimeError::WrongDependency {
                name: name.into(),
                expected: ServiceKind::Kafka,
                actual: instance.service,
            });
        }
        if instance.state != InstanceState::Running {
            return Err(RuntimeError::DependencyDown(name.into()));
        }
        Ok(instance.endpoint)
    }
}

fn instance_of(record: InstanceRecord, alive: bool) -> Instance {
    // A dead child of this process is reaped here, which tells how it ended.
    let exit = match (alive, record.pid) {
        (false, Some(pid)) => weir_supervisor::process::reap(pid),
        _ => None,
    };
    let state = match record.state {
        _ if !alive && record.pid.is_some() => InstanceState::Dead,
        store::InstanceState::Starting => InstanceState::Starting,
        store::InstanceState::Running => InstanceState::Running,
        store::InstanceState::Stopping => InstanceState::Stopping,
    };
    // A multi-process instance's supervisor says how its members are doing.
    let members = weir_supervisor::members::read_status(Path::new(&record.dir)).unwrap_or_default();
    Instance {
        restarts: members.iter().map(|m| m.restarts).sum(),
        members,
        name: record.name,
        service: record.service,
        state,
        endpoint: record.endpoint,
        backend: Backend::Local,
        run: record.run_id,
        namespace: None,
        pid: record.pid,
        log: record.log_path,
        started: Some(rfc3339(record.created_at)),
        uses: record.uses,
        exit,
    }
}

fn in_scope(instance: &Instance, scope: &Scope) -> bool {
    match scope {
        Scope::Standalone => instance.run.is_none(),
        Scope::Run(id) => instance.run.as_deref() == Some(id),
    }
}

#[async_trait::async_trait]
impl Runtime for LocalRuntime {
    fn backend(&self) -> Backend {
        Backend::Local
    }

    async fn open_run(&self, _run_id: &str, _workflow: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn provision(&self, request: ProvisionRequest) -> Result<Provisioned, RuntimeError> {
        if let (Scope::Run(run), Some(name)) = (&request.scope, &request.name) {
            if let Some(existing) = self
                .instances(None)
                .await?
                .into_iter()
                .find(|i| &i.name == name)
            {
                // Another run tears down what it started, whoever uses it by then.
                if let Some(owner) = existing.run.as_deref().filter(|owner| owner != run) {
                    return Err(RuntimeError::OwnedByAnotherRun {
                        name: name.clone(),
                        run: owner.into(),
                    });
                }
                if existing.service == request.service && existing.state == InstanceState::Running {
                    progress(format!(
                        "  reusing running {} instance `{name}`",
                        request.service
                    ));
                    return Ok(Provisioned::Reused(Box::new(existing)));
                }
                return Err(RuntimeError::NameInUse {
                    name: name.clone(),
                    what: format!("a {} {}", existing.state.as_str(), existing.service),
                });
            }
        }
        let up = UpRequest {
            service: request.service,
            name: request.name,
            params: request.params,
            scope: request.scope,
            ready_timeout: request.ready_timeout,
        };
        let records = self
            .interruptible(&request.cancel, move |processes| processes.up(&up))
            .await?;
        Ok(Provisioned::Started(
            records.into_iter().map(|r| instance_of(r, true)).collect(),
        ))
    }

    async fn restart(
        &self,
        _scope: &Scope,
        name: &str,
        ready_timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        let name = name.to_string();
        let record = self
            .interruptible(cancel, move |processes| {
                processes.restart(&name, ready_timeout)
            })
            .await?;
        Ok(instance_of(record, true))
    }

    async fn scale(
        &self,
        _scope: &Scope,
        name: &str,
        replicas: u32,
        ready_timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        let name = name.to_string();
        let record = self
            .interruptible(cancel, move |processes| {
                processes.scale(&name, replicas, ready_timeout)
            })
            .await?;
        Ok(instance_of(record, true))
    }

    async fn stop(&self, _scope: &Scope, name: &str) -> Result<Vec<String>, RuntimeError> {
        let name = name.to_string();
        self.blocking(move |processes| processes.down(&name)).await
    }

    async fn teardown(&self, scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        let run = match scope {
            Scope::Run(id) => Some(id.clone()),
            Scope::Standalone => None,
        };
        self.blocking(move |processes| processes.down_all(run.as_deref()))
            .await
    }

    async fn instances(&self, scope: Option<&Scope>) -> Result<Vec<Instance>, RuntimeError> {
        let all = self
            .blocking(|processes| processes.instances())
            .await?
            .into_iter()
            .map(|(record, alive)| instance_of(record, alive));
        Ok(match scope {
            Some(scope) => all.filter(|i| in_scope(i, scope)).collect(),
            None => all.collect(),
        })
    }

    async fn gc(&self) -> Result<GcReport, RuntimeError> {
        self.blocking(|processes| processes.gc()).await
    }

    async fn logs(
        &self,
        _scope: &Scope,
        name: &str,
        span: LogSpan,
    ) -> Result<String, RuntimeError> {
        let record = self.record(name).await?;
        let path = PathBuf::from(&record.log_path);
        let read = path.clone();
        tokio::task::spawn_blocking(move || log_file::read_instance(&read, span))
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))
            .and_then(|read| read)
            .map(combined_log)
            .map_err(|source| RuntimeError::Io { path, source })
    }

    async fn data_step(
        &self,
        _scope: &Scope,
        label: &str,
        step: &DataStep,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<StepOutcome, RuntimeError> {
        let brokers = self.kafka_endpoint(step.kafka()).await?;
        match step.clone() {
            DataStep::CreateTopics {
                topics, partitions, ..
            } => {
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                tokio::time::timeout(
                    timeout,
                    weir_topology::kafka::ensure_topics(&brokers, &names, partitions),
                )
                .await
                .map_err(|_| RuntimeError::CreateTopicsTimedOut {
                    brokers: brokers.clone(),
                    timeout,
                })?
                .map_err(|source| RuntimeError::CreateTopics {
                    brokers: brokers.clone(),
                    source,
                })?;
                Ok(StepOutcome::Seen(DataReport::Created(CreatedTopics {
                    created: topics,
                })))
            }
            DataStep::Count { topics, .. } => {
                let counts = tokio::task::spawn_blocking(move || {
                    weir_topology::kafka::count_messages(&brokers, &topics)
                })
                .await
                .expect("counting does not panic")
                .map_err(|error| RuntimeError::Count(Box::new(error)))?;
                Ok(StepOutcome::Seen(DataReport::Counted(counts)))
            }
            DataStep::VerifyTable {
                topic,
                events,
                table,
                primary_keys,
                ..
            } => {
                let compared = tokio::task::spawn_blocking(move || {
                    crate::topics::table::verify(&brokers, &topic, &events, &table, &primary_keys)
                        .map_err(Box::new)
                })
                .await
                .expect("comparing does not panic")
                .map_err(RuntimeError::VerifyTable)?;
                Ok(StepOutcome::Seen(DataReport::Verified(compared)))
            }
            DataStep::Wait {
                topic, messages, ..
            } => {
                let report =
                    wait_for_messages(&brokers, &topic, messages, timeout, cancel, |now| {
                        progress(format!("  {label}: {}", now.held()))
                    })
                    .await
                    .map_err(|error| match error {
                        WaitError::Interrupted => RuntimeError::Interrupted,
                        other => RuntimeError::Wait(Box::new(other)),
                    })?;
                if !report.reached {
                    return Err(RuntimeError::WaitTimedOut(report));
                }
                Ok(StepOutcome::Seen(DataReport::Waited(report)))
            }
        }
    }

    async fn http(&self, _scope: &Scope, name: &str) -> Result<HttpAccess, RuntimeError> {
        let record = self.record(name).await?;
        if !record.endpoint.starts_with("http://") {
            return Err(RuntimeError::NoHttp {
                name: name.into(),
                service: record.service,
            });
        }
        Ok(HttpAccess::direct(record.endpoint))
    }

    async fn http_replicas(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<HttpAccess>, RuntimeError> {
        let record = self.record(name).await?;
        let members =
            weir_supervisor::members::read_status(Path::new(&record.dir)).unwrap_or_default();
        let replicas: Vec<HttpAccess> = members
            .into_iter()
            .filter_map(|member| member.endpoint)
            .filter(|endpoint| endpoint.starts_with("http://"))
            .map(HttpAccess::direct)
            .collect();
        if replicas.is_empty() {
            return Ok(vec![self.http(scope, name).await?]);
        }
        Ok(replicas)
    }
}
