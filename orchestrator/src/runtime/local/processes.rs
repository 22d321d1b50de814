//! Catalog services as processes on this machine, on free loopback ports,
//! recorded in the store so that any later `weir` command — or `weir gc` after a crash — can
//! find and stop them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_catalog::catalog;
use weir_catalog::local::render::{self, extra_local_ports, LocalContext};
use weir_catalog::local::ProcessSpec;
use weir_catalog::service::{is_valid_name, Protocol, ServiceDefinition};
use weir_contracts::service_kind::ServiceKind;
use weir_supervisor::ports::free_port;
use weir_supervisor::process::{
    self, is_same_process, log_tail, start_time, Lifetime, ManagedProcess,
};
use weir_supervisor::readiness::{self, NeverReady};

use crate::home::WeirHome;
use crate::runtime::{GcReport, NotReady, RuntimeError, Scope};
use crate::store::{InstanceRecord, InstanceState, Store};
use crate::time::now_unix;

/// The file in an instance's directory holding how its process was started.
const PROCESS_SPEC_FILE: &str = "process.json";

/// How many times a service is started when each start fails for a passing reason.
const PORT_TAKEN_ATTEMPTS: usize = 3;

/// What a service's log says when its port was taken: the operating system's message, which
/// Java's `BindException`, Rust's `io::Error` and Python all repeat.
const PORT_TAKEN: &str = "Address already in use";

/// Start failures that say nothing about the service, only about the machine at that moment,
/// each with what its log says and why it happened: such a start is made again.
const PASSING_START_FAILURES: [(&str, &str); 2] = [
    (
        PORT_TAKEN,
        "another process took one of its ports as it started",
    ),
    (
        // A Kafka broker whose JVM was starved (ten brokers starting at once on two cores)
        // answers ZooKeeper too late: its session expires and it exits during startup.
        "SessionExpiredException",
        "its ZooKeeper session expired as it started (the machine was too busy for it to \
         answer in time)",
    ),
];

// `weir scale`: changing a running instance's replicas.
#[path = "scaling.rs"]
mod scaling;

/// A request to start one service instance.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub service: ServiceKind,
    /// Instance name; `<service>-N` when not given.
    pub name: Option<String>,
    pub params: Vec<(String, String)>,
    pub scope: Scope,
    /// How long to wait for each instance to become ready.
    pub ready_timeout: Duration,
}

/// Processes on this machine, recorded in the store: the synchronous core of [`LocalRuntime`].
#[derive(Debug)]
pub struct LocalProcesses {
    home: WeirHome,
    store: Store,
    weir_exe: PathBuf,
    /// When set (Ctrl-C), waiting for readiness gives up at once.
    cancel: CancellationToken,
}

/// Progress lines go to standard error so that `--json` output stays clean.
fn progress(message: impl AsRef<str>) {
    eprintln!("{}", message.as_ref());
}

impl LocalProcesses {
    pub fn new(home: WeirHome, weir_exe: PathBuf) -> Result<Self, RuntimeError> {
        let store = Store::open(&home.database())?;
        Ok(Self {
            home,
            store,
            weir_exe,
            cancel: CancellationToken::new(),
        })
    }

    /// Gives up waiting for readiness as soon as `cancel` fires.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts an instance and, first, the dependencies it lacks. Returns the instances
    /// started, dependencies first. On failure everything this call started is stopped again.
    pub fn up(&self, request: &UpRequest) -> Result<Vec<InstanceRecord>, RuntimeError> {
        let mut started = Vec::new();
        match self.up_inner(request, None, &mut started) {
            Ok(_) => {
                // Until the whole request succeeded, every instance it started belonged to
                // this process (so a crash leaves orphans `weir gc` removes). A standalone
                // instance then lives on its own until `weir down`.
                if request.scope == Scope::Standalone {
                    for record in &mut started {
                        record.owner_pid = None;
                        record.owner_start_time = None;
                        self.store.update_instance(record)?;
                    }
                }
                Ok(started)
            }
            Err(error) => {
                for record in started.iter().rev() {
                    let _ = self.stop_instance(record);
                }
                Err(error)
            }
        }
    }

    fn up_inner(
        &self,
        request: &UpRequest,
        auto_started_by: Option<&str>,
        started: &mut Vec<InstanceRecord>,
    ) -> Result<InstanceRecord, RuntimeError> {
        let definition = catalog::definition(request.service);
        let params = definition
            .validate(&request.params)
            .map_err(RuntimeError::InvalidParams)?;
        let name = match &request.name {
            Some(name) => {
                if !is_valid_name(name) {
                    return Err(RuntimeError::InvalidName(name.clone()));
                }
                if self.store.instance(name)?.is_some() {
                    return Err(crate::store::StoreError::NameTaken(name.clone()).into());
                }
                name.clone()
            }
            None => self.free_name(definition.kind)?,
        };

        // Dependencies: a named instance must exist and run; a missing one is started.
        let mut dependencies = BTreeMap::new();
        let mut uses = Vec::new();
        for need in definition.needs.iter().filter(|n| n.applies(&params)) {
            let dependency = match params.str(need.param) {
                Some(existing) => self.require_running(existing, need.service)?,
                None => {
                    let auto_name = auto_dependency_name(&name, need.service);
                    match self.store.instance(&auto_name)? {
                        Some(record) if record.service == need.service => {
                            self.require_running(&auto_name, need.service)?
                        }
                        _ => {
                            progress(format!(
                                "{name} needs a {} instance; starting `{auto_name}`",
                                need.service
                            ));
                            let dependency_request = UpRequest {
                                service: need.service,
                                name: Some(auto_name.clone()),
                                params: vec![],
                                scope: request.scope.clone(),
                                ready_timeout: request.ready_timeout,
                            };
                            self.up_inner(&dependency_request, Some(&name), started)?
                        }
                    }
                }
            };
            dependencies.insert(need.param.to_string(), dependency.endpoint.clone());
            uses.push(dependency.name.clone());
        }

        let dir = self.home.instance_dir(&name);
        let (owner_pid, owner_start_time) = current_process();
        let mut record = InstanceRecord {
            name: name.clone(),
            service: definition.kind,
            state: InstanceState::Starting,
            endpoint: String::new(),
            pid: None,
            pid_start_time: None,
            log_path: String::new(),
            dir: dir.display().to_string(),
            params: serde_json::to_value(&params).unwrap_or_default(),
            uses,
            auto_started_by: auto_started_by.map(str::to_string),
            owner_pid: Some(owner_pid),
            owner_start_time,
            run_id: match &request.scope {
                Scope::Run(id) => Some(id.clone()),
                Scope::Standalone => None,
            },
            backend: "local".into(),
            created_at: now_unix(),
        };
        // The record exists before anything else, so that a crash from here on leaves
        // something `weir gc` can find.
        self.store.insert_instance(&record)?;
        match self.start_process(
            &definition,
            &mut record,
            params,
            dependencies,
            request.ready_timeout,
        ) {
            Ok(()) => {
                self.store.update_instance(&record)?;
                started.push(record.clone());
                Ok(record)
            }
            Err(error) => {
                let _ = self.stop_instance(&record);
                Err(error)
            }
        }
    }

    /// Starts the instance's process on free ports and waits until it is ready. Another
    /// process can take a port between its choice and the service binding it; the service
    /// then starts again from an empty directory on other ports.
    fn start_process(
        &self,
        definition: &ServiceDefinition,
        record: &mut InstanceRecord,
        params: weir_catalog::service::Params,
        dependencies: BTreeMap<String, String>,
        ready_timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let mut attempt = 1;
        loop {
            let outcome = self.start_on_free_ports(
                definition,
                record,
                params.clone(),
                dependencies.clone(),
                ready_timeout,
            );
            match outcome {
                Err(RuntimeError::NotReady(not_ready))
                    if attempt < PORT_TAKEN_ATTEMPTS
                        && passing_start_failure(Path::new(&not_ready.log)).is_some() =>
                {
                    let (said, why) = passing_start_failure(Path::new(&not_ready.log))
                        .expect("matched just above");
                    progress(format!(
                        "{} `{}`: {why} (its log says `{said}`); starting it again on other \
                         ports",
                        definition.kind, record.name
                    ));
                    std::fs::remove_dir_all(&record.dir).map_err(|source| RuntimeError::Io {
                        path: PathBuf::from(&record.dir),
                        source,
                    })?;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn start_on_free_ports(
        &self,
        definition: &ServiceDefinition,
        record: &mut InstanceRecord,
        params: weir_catalog::service::Params,
        dependencies: BTreeMap<String, String>,
        ready_timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let dir = PathBuf::from(&record.dir);
        std::fs::create_dir_all(&dir).map_err(|source| RuntimeError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut ports = BTreeMap::new();
        for port in definition
            .ports
            .iter()
            .map(|p| p.name.to_string())
            .chain(extra_local_ports(definition, &params))
        {
            let number = free_port().map_err(|source| RuntimeError::Io {
                path: dir.clone(),
                source,
            })?;
            ports.insert(port, number);
        }
        let main_port = definition
            .ports
            .first()
            .and_then(|p| ports.get(p.name).copied());
        record.endpoint = match (definition.ports.first(), main_port) {
            (Some(p), Some(port)) if p.protocol == Protocol::Http => {
                format!("http://127.0.0.1:{port}")
            }
            (Some(_), Some(port)) => format!("127.0.0.1:{port}"),
            _ => String::new(),
        };
        let context = LocalContext {
            instance: record.name.clone(),
            dir: dir.clone(),
            ports,
            params,
            dependencies,
            weir_exe: self.weir_exe.clone(),
        };
        let readiness = Readiness {
            ports: render::member_ports(definition, &context.params, &context.ports),
        };
        let service = render::render(definition.kind, &context)?;
        if let Some(endpoint) = &service.endpoint {
            record.endpoint = endpoint.clone();
        }
        service.write_files().map_err(|source| RuntimeError::Io {
            path: dir.clone(),
            source,
        })?;
        for step in &service.pre_start {
            run_to_completion(&record.name, step)?;
        }
        write_process_spec(&dir, &service.process)?;
        progress(format!("starting {} `{}`...", definition.kind, record.name));
        self.spawn_until_ready(
            definition,
            record,
            &service.process,
            readiness,
            ready_timeout,
        )
    }

    /// Starts the instance's process and waits until it is ready; the record follows (pid,
    /// log, state). A process that does not become ready is stopped again.
    fn spawn_until_ready(
        &self,
        definition: &ServiceDefinition,
        record: &mut InstanceRecord,
        spec: &ProcessSpec,
        readiness: Readiness,
        ready_timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let started_at = Instant::now();
        let mut process = ManagedProcess::spawn(&record.name, spec, Lifetime::Detached)?;
        record.pid = Some(process.pid() as i32);
        record.pid_start_time = start_time(process.pid() as i32);
        record.log_path = spec.log_path.display().to_string();
        self.store.update_instance(record)?;
        let outcome = wait_ready(
            definition,
            &mut process,
            readiness,
            ready_timeout,
            &self.cancel,
        );
        match outcome {
            Ok(()) => {
                record.state = InstanceState::Running;
                process.detach();
                progress(format!(
                    "{} `{}` ready in {:.1}s{}",
                    definition.kind,
                    record.name,
                    started_at.elapsed().as_secs_f64(),
                    if record.endpoint.is_empty() {
                        String::new()
                    } else {
                        format!(" at {}", record.endpoint)
                    }
                ));
                Ok(())
            }
            Err(reason) => {
                process.stop(Duration::from_secs(5));
                Err(RuntimeError::NotReady(Box::new(NotReady {
                    instance: record.name.clone(),
                    service: definition.kind,
                    timeout: ready_timeout,
                    reason,
                    log: record.log_path.clone(),
                    tail: process.log_tail(20),
                })))
            }
        }
    }

    /// Starts a dead instance's process again, as it was first started: same command, ports
    /// and data directory. Returns the record once it is ready again.
    pub fn restart(
        &self,
        name: &str,
        ready_timeout: Duration,
    ) -> Result<InstanceRecord, RuntimeError> {
        let (mut record, definition) = self.recorded(name)?;
        if let Some(pid) = record.pid {
            // What is left of the old process group goes first: it may hold the ports.
            process::stop_group(pid, Duration::from_secs(5));
        }
        let spec_path = Path::new(&record.dir).join(PROCESS_SPEC_FILE);
        let spec: ProcessSpec = std::fs::read_to_string(&spec_path)
            .map_err(|source| RuntimeError::Io {
                path: spec_path.clone(),
                source,
            })
            .and_then(|text| {
                serde_json::from_str(&text).map_err(|e| RuntimeError::Io {
                    path: spec_path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })
            })?;
        // The endpoint's ports (a Kafka cluster's endpoint lists every broker).
        let readiness = Readiness {
            ports: (record.endpoint.split(','))
                .filter_map(|address| address.rsplit_once(':')?.1.parse().ok())
                .collect(),
        };
        record.state = InstanceState::Starting;
        progress(format!("restarting {} `{}`...", record.service, name));
        self.spawn_until_ready(&definition, &mut record, &spec, readiness, ready_timeout)?;
        self.store.update_instance(&record)?;
        Ok(record)
    }

    /// The record of instance `name` and the definition of its service.
    fn recorded(&self, name: &str) -> Result<(InstanceRecord, ServiceDefinition), RuntimeError> {
        let record = self
            .store
            .instance(name)?
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))?;
        let definition = catalog::definition(record.service);
        Ok((record, definition))
    }

    fn free_name(&self, service: ServiceKind) -> Result<String, RuntimeError> {
        for n in 1.. {
            let candidate = format!("{service}-{n}");
            if self.store.instance(&candidate)?.is_none() {
                return Ok(candidate);
            }
        }
        unreachable!("some instance number is free")
    }

    fn require_running(
        &self,
        name: &str,
        service: ServiceKind,
    ) -> Result<InstanceRecord, RuntimeError> {
        let record = self
            .store
            .instance(name)?
            .ok_or_else(|| RuntimeError::MissingDependency {
                name: name.into(),
                service,
            })?;
        if record.service != service {
            return Err(RuntimeError::WrongDependency {
                name: name.into(),
                expected: service,
                actual: record.service,
            });
        }
        if record.state != InstanceState::Running || !self.process_alive(&record) {
            return Err(RuntimeError::DependencyDown(name.into()));
        }
        Ok(record)
    }

    fn process_alive(&self, record: &InstanceRecord) -> bool {
        record
            .pid
            .is_some_and(|pid| is_same_process(pid, record.pid_start_time))
    }

    /// The instances with their liveness checked: a recorded instance whose process is gone
    /// is reported as `dead` (until `weir gc` or `weir down` removes it).
    pub fn instances(&self) -> Result<Vec<(InstanceRecord, bool)>, RuntimeError> {
        Ok(self
            .store
            .instances()?
            .into_iter()
            .map(|record| {
                let alive = self.process_alive(&record);
                (record, alive)
            })
            .collect())
    }

    /// Stops an instance and then the dependencies it started itself (if nothing else uses
    /// them), in reverse dependency order. Returns the names stopped.
    pub fn down(&self, name: &str) -> Result<Vec<String>, RuntimeError> {
        let record = self
            .store
            .instance(name)?
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))?;
        let all = self.store.instances()?;
        let users: Vec<&str> = all
            .iter()
            .filter(|other| other.uses.iter().any(|u| u == name))
            .map(|other| other.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(RuntimeError::InUse {
                name: name.into(),
                users: users.join(", "),
            });
        }
        let mut stopped = vec![];
        self.stop_instance(&record)?;
        stopped.push(record.name.clone());
        for dependency in &record.uses {
            let Some(dep) = self.store.instance(dependency)? else {
                continue;
            };
            if dep.auto_started_by.as_deref() == Some(name) {
                let still_used = self
                    .store
                    .instances()?
                    .iter()
                    .any(|other| other.uses.iter().any(|u| u == dependency));
                if !still_used {
                    stopped.extend(self.down(dependency)?);
                }
            }
        }
        Ok(stopped)
    }

    /// Stops every instance (or every instance of one run), users before what they use.
    pub fn down_all(&self, run: Option<&str>) -> Result<Vec<String>, RuntimeError> {
        let mut stopped = Vec::new();
        loop {
            let all = self.store.instances()?;
            let remaining: Vec<&InstanceRecord> = all
                .iter()
                .filter(|r| run.is_none() || r.run_id.as_deref() == run)
                .collect();
            if remaining.is_empty() {
                return Ok(stopped);
            }
            // An instance nobody uses can go now; a cycle cannot happen (dependencies are
            // created before their users), but stop everything left if it ever did.
            let leaves: Vec<&InstanceRecord> = remaining
                .iter()
                .copied()
                .filter(|r| !all.iter().any(|other| other.uses.contains(&r.name)))
                .collect();
            let batch = if leaves.is_empty() { remaining } else { leaves };
            for record in batch {
                self.stop_instance(record)?;
                stopped.push(record.name.clone());
            }
        }
    }

    /// Stops the process (if it is still the one recorded), removes the instance directory,
    /// then the record.
    fn stop_instance(&self, record: &InstanceRecord) -> Result<(), RuntimeError> {
        let mut stopping = record.clone();
        stopping.state = InstanceState::Stopping;
        self.store.update_instance(&stopping)?;
        if let Some(pid) = record.pid {
            if is_same_process(pid, record.pid_start_time)
                || !process::group_members(pid).is_empty()
            {
                progress(format!("stopping {} `{}`...", record.service, record.name));
                process::stop_group(pid, Duration::from_secs(20));
            }
        }
        let dir = Path::new(&record.dir);
        if dir.starts_with(self.home.instances_dir()) && dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| RuntimeError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        self.store.delete_instance(&record.name)?;
        Ok(())
    }

    /// Removes what crashed owners left behind: instances whose owning process is gone,
    /// records of processes that died, and directories with no record.
    pub fn gc(&self) -> Result<GcReport, RuntimeError> {
        let mut report = GcReport::default();
        let records = self.store.instances()?;
        // Users first, so that a broker stops before its ZooKeeper: an instance that others
        // use comes after them.
        let mut ordered: Vec<&InstanceRecord> = records.iter().collect();
        ordered.sort_by_key(|r| users_depth(&records, &r.name, 0));
        for record in ordered {
            let owner_dead = record
                .owner_pid
                .is_some_and(|pid| !is_same_process(pid, record.owner_start_time));
            let process_dead = !self.process_alive(record)
                && record
                    .pid
                    .is_none_or(|pid| process::group_members(pid).is_empty());
            if owner_dead && !process_dead {
                self.stop_instance(record)?;
                report.orphans_stopped.push(record.name.clone());
            } else if process_dead
                && (owner_dead
                    || record.state != InstanceState::Starting
                    || record.owner_pid.is_none())
            {
                self.stop_instance(record)?;
                report.stale_removed.push(record.name.clone());
            }
        }
        for run in self.store.runs()? {
            let owner_dead = run
                .owner_pid
                .is_some_and(|pid| !is_same_process(pid, run.owner_start_time));
            if !run.state.is_final() && owner_dead {
                self.store.set_run_state(
                    &run.id,
                    crate::runs::RunState::Failed,
                    Some("the weir process running it died; `weir gc` tore down what it left"),
                )?;
                report.runs_failed.push(run.id.clone());
            }
        }
        let known: Vec<String> = self
            .store
            .instances()?
            .into_iter()
            .map(|r| r.name)
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.home.instances_dir()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) {
                    std::fs::remove_dir_all(entry.path()).map_err(|source| RuntimeError::Io {
                        path: entry.path(),
                        source,
                    })?;
                    report.directories_removed.push(name);
                }
            }
        }
        Ok(report)
    }
}

/// How many levels of users stand above `name` (0 when nothing uses it). Stopping in
/// increasing depth stops users before what they use.
fn users_depth(records: &[InstanceRecord], name: &str, guard: usize) -> usize {
    if guard > records.len() {
        return guard;
    }
    records
        .iter()
        .filter(|other| other.uses.iter().any(|u| u == name))
        .map(|user| 1 + users_depth(records, &user.name, guard + 1))
        .max()
        .unwrap_or(0)
}

/// The name of the instance started for `name` when its `service` parameter is left out.
fn auto_dependency_name(name: &str, service: ServiceKind) -> String {
    format!("{name}-{service}")
}

/// Keeps how the instance's process was started, so that supervision can start the same
/// process again (same ports, same data).
fn write_process_spec(dir: &Path, spec: &ProcessSpec) -> Result<(), RuntimeError> {
    let spec_path = dir.join(PROCESS_SPEC_FILE);
    let spec_text = serde_json::to_string_pretty(spec).expect("specs serialize");
    std::fs::write(&spec_path, spec_text).map_err(|source| RuntimeError::Io {
        path: spec_path,
        source,
    })
}

fn current_process() -> (i32, Option<u64>) {
    let pid = std::process::id() as i32;
    (pid, start_time(pid))
}

/// Runs a preparation command (e.g. KRaft storage format) and checks it succeeded.
fn run_to_completion(instance: &str, spec: &ProcessSpec) -> Result<(), RuntimeError> {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(|source| RuntimeError::Io {
            path: spec.log_path.clone(),
            source,
        })?;
    let status = std::process::Command::new(&spec.program)
        .args(&spec.args)
        .current_dir(&spec.working_dir)
        .stdout(log.try_clone().map_err(|source| RuntimeError::Io {
            path: spec.log_path.clone(),
            source,
        })?)
        .stderr(log)
        .status()
        .map_err(|source| RuntimeError::Io {
            path: spec.program.clone(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(RuntimeError::PrepareFailed {
            instance: instance.into(),
            command: format!("{} {}", spec.program.display(), spec.args.join(" ")),
            tail: log_tail(&spec.log_path, 20),
        })
    }
}

/// The passing failure the log at `path` tells of, if any ([`PASSING_START_FAILURES`]). The
/// whole log is read: it is that of one start, and a Java stack trace and shutdown put the
/// cause far from its end.
fn passing_start_failure(path: &Path) -> Option<(&'static str, &'static str)> {
    let log = std::fs::read(path).ok()?;
    let log = String::from_utf8_lossy(&log);
    PASSING_START_FAILURES
        .into_iter()
        .find(|(said, _)| log.contains(said))
}

/// What readiness is checked on: the main port of each process making the instance.
#[derive(Debug, Clone)]
struct Readiness {
    ports: Vec<u16>,
}

fn wait_ready(
    definition: &ServiceDefinition,
    process: &mut ManagedProcess,
    readiness: Readiness,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), NeverReady> {
    let started = Instant::now();
    loop {
        if cancel.is_cancelled() {
            return Err(NeverReady::Interrupted);
        }
        if !process.is_running() {
            return Err(NeverReady::Exited);
        }
        match readiness::check(definition.readiness, &readiness.ports) {
            Ok(()) => return Ok(()),
            Err(reason) if started.elapsed() >= timeout => return Err(reason.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_whose_bind_failed_says_the_port_was_taken_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kafka.log");
        std::fs::write(
            &log,
            "[KafkaServer id=0] starting\n\
             ERROR Exiting Kafka due to fatal exception during startup.\n\
             org.apache.kafka.common.KafkaException: Socket server failed to bind to \
             127.0.0.1:21034: Address already in use.\n\
             \tat kafka.network.Acceptor.openServerSocket(SocketServer.scala:734)\n",
        )
        .unwrap();
        assert_eq!(
            passing_start_failure(&log).map(|(said, _)| said),
            Some(PORT_TAKEN)
        );
        std::fs::write(
            &log,
            "ERROR Exiting Kafka due to fatal exception during startup. (kafka.Kafka$)\n\
             org.apache.zookeeper.KeeperException$SessionExpiredException: KeeperErrorCode = \
             Session expired for /feature\n",
        )
        .unwrap();
        assert_eq!(
            passing_start_failure(&log).map(|(said, _)| said),
            Some("SessionExpiredException")
        );
        std::fs::write(&log, "ERROR the broker ran out of heap\n").unwrap();
        assert!(passing_start_failure(&log).is_none());
        assert!(passing_start_failure(&dir.path().join("no such log")).is_none());
    }
}
