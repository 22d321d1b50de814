//! `weir scale` on local processes: a running instance's replicas change, kept by its
//! supervisor (see [`LocalProcesses::scale`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_catalog::local::render::{self, extra_local_ports, LocalContext};
use weir_catalog::service::{Params, ServiceDefinition};
use weir_supervisor::ports::free_port;
use weir_supervisor::process::{self, log_tail};
use weir_supervisor::readiness::NeverReady;
use weir_supervisor::{members, readiness};

use super::{auto_dependency_name, progress, write_process_spec, LocalProcesses, Readiness};
use crate::runtime::{NotReady, RuntimeError};
use crate::store::{InstanceRecord, InstanceState};

impl LocalProcesses {
    /// Changes how many replicas of a running instance run (see
    /// [`ServiceDefinition::check_scale`]) and waits until each is ready.
    ///
    /// A supervised instance reads its new member spec on SIGHUP: replicas that stay keep
    /// running as they are, new ones start, dropped ones stop (a runner commits what it
    /// acknowledged as it leaves its group). An instance that ran as a single process is
    /// started again under a supervisor: its process stops, handing its partitions to the
    /// group, and the supervisor starts every replica, on the same port for the first.
    pub fn scale(
        &self,
        name: &str,
        replicas: u32,
        ready_timeout: Duration,
    ) -> Result<InstanceRecord, RuntimeError> {
        let (mut record, definition) = self.recorded(name)?;
        RuntimeError::check_scale(&definition, name, replicas)?;
        let pid = match record.pid {
            Some(pid) if record.state == InstanceState::Running && self.process_alive(&record) => {
                pid
            }
            _ => return Err(RuntimeError::DependencyDown(name.into())),
        };
        let dir = PathBuf::from(&record.dir);
        let supervised = members::read_status(&dir).is_ok();
        let mut given: Vec<(String, String)> = params_as_given(&record.params)
            .into_iter()
            .filter(|(param, _)| param != "replicas")
            .collect();
        given.push(("replicas".into(), replicas.to_string()));
        let params = definition
            .validate(&given)
            .map_err(RuntimeError::InvalidParams)?;
        let before = record
            .params
            .get("replicas")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        if before == u64::from(replicas) {
            progress(format!(
                "{} `{name}` already has {replicas} replicas",
                record.service
            ));
            return Ok(record);
        }
        let context = LocalContext {
            instance: record.name.clone(),
            ports: self.replica_ports(&definition, &record, &params)?,
            dependencies: self.dependency_endpoints(&definition, &params, name)?,
            dir: dir.clone(),
            params,
            weir_exe: self.weir_exe.clone(),
        };
        let service = render::render_supervised(definition.kind, &context)?;
        let readiness = Readiness {
            ports: render::member_ports(&definition, &context.params, &context.ports),
        };
        service.write_files().map_err(|source| RuntimeError::Io {
            path: dir.clone(),
            source,
        })?;
        write_process_spec(&dir, &service.process)?;
        progress(format!(
            "scaling {} `{name}` from {before} to {replicas} replicas...",
            record.service
        ));
        let started = Instant::now();
        if supervised {
            // SAFETY: a plain syscall on the instance's recorded (and checked) process.
            unsafe { libc::kill(pid, libc::SIGHUP) };
            let expected: Vec<String> = (0..replicas).map(|i| format!("replica-{i}")).collect();
            self.await_replicas(&definition, &record, &expected, &readiness, ready_timeout)?;
        } else {
            progress(format!(
                "  `{name}` ran as one process: stopping it and starting its replicas under a \
                 supervisor"
            ));
            // Starting, with no process yet: whoever watches the instance (a run's
            // supervision) does not take the stopped process for a death.
            record.state = InstanceState::Starting;
            record.pid = None;
            self.store.update_instance(&record)?;
            process::stop_group(pid, Duration::from_secs(20));
            self.spawn_until_ready(
                &definition,
                &mut record,
                &service.process,
                readiness,
                ready_timeout,
            )?;
        }
        record.params = serde_json::to_value(&context.params).unwrap_or_default();
        self.store.update_instance(&record)?;
        progress(format!(
            "{} `{name}`: {replicas} of {replicas} replicas ready ({:.1}s)",
            record.service,
            started.elapsed().as_secs_f64()
        ));
        Ok(record)
    }

    /// The port of each of `params`' replicas: the ports replicas run on now (the first
    /// from the instance's endpoint, the others from its supervisor's status), new ones for
    /// replicas that do not run yet.
    fn replica_ports(
        &self,
        definition: &ServiceDefinition,
        record: &InstanceRecord,
        params: &Params,
    ) -> Result<BTreeMap<String, u16>, RuntimeError> {
        let mut running = BTreeMap::new();
        if let Some(first) = definition.ports.first() {
            if let Some(port) = port_of(&record.endpoint) {
                running.insert(render::member_name(first.name, 0), port);
            }
            for member in members::read_status(Path::new(&record.dir)).unwrap_or_default() {
                let index = member
                    .name
                    .strip_prefix("replica-")
                    .and_then(|i| i.parse().ok());
                let port = member.endpoint.as_deref().and_then(port_of);
                if let (Some(index), Some(port)) = (index, port) {
                    running.insert(render::member_name(first.name, index), port);
                }
            }
        }
        let names = (definition.ports.iter().map(|p| p.name.to_string()))
            .chain(extra_local_ports(definition, params));
        let mut ports = BTreeMap::new();
        for port in names {
            let number = match running.get(&port) {
                Some(&number) => number,
                None => free_port().map_err(|source| RuntimeError::Io {
                    path: PathBuf::from(&record.dir),
                    source,
                })?,
            };
            ports.insert(port, number);
        }
        Ok(ports)
    }

    /// The endpoints of the running instances an existing instance uses, by the parameter
    /// naming each.
    fn dependency_endpoints(
        &self,
        definition: &ServiceDefinition,
        params: &Params,
        name: &str,
    ) -> Result<BTreeMap<String, String>, RuntimeError> {
        let mut endpoints = BTreeMap::new();
        for need in definition.needs.iter().filter(|n| n.applies(params)) {
            let dependency = params
                .str(need.param)
                .map_or_else(|| auto_dependency_name(name, need.service), str::to_string);
            let record = self.require_running(&dependency, need.service)?;
            endpoints.insert(need.param.to_string(), record.endpoint);
        }
        Ok(endpoints)
    }

    /// Waits until a supervised instance runs exactly the `expected` members and each is
    /// ready.
    fn await_replicas(
        &self,
        definition: &ServiceDefinition,
        record: &InstanceRecord,
        expected: &[String],
        readiness: &Readiness,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let started = Instant::now();
        loop {
            let outcome = if self.cancel.is_cancelled() {
                return Err(RuntimeError::Interrupted);
            } else if !self.process_alive(record) {
                Err(NeverReady::SupervisorExited)
            } else {
                let status = members::read_status(Path::new(&record.dir)).unwrap_or_default();
                let running: Vec<&str> = (status.iter())
                    .filter(|m| m.pid.is_some())
                    .map(|m| m.name.as_str())
                    .collect();
                if running == expected {
                    readiness::check(definition.readiness, &readiness.ports)
                        .map_err(NeverReady::from)
                } else {
                    Err(NeverReady::MembersMissing {
                        running: running.join(", "),
                        wanted: expected.join(", "),
                    })
                }
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(reason) if started.elapsed() >= timeout || !self.process_alive(record) => {
                    return Err(RuntimeError::NotReady(Box::new(NotReady {
                        instance: record.name.clone(),
                        service: definition.kind,
                        timeout,
                        reason,
                        log: record.log_path.clone(),
                        tail: log_tail(Path::new(&record.log_path), 20),
                    })))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// The port of an endpoint such as `127.0.0.1:9092` or `http://127.0.0.1:8080`.
fn port_of(endpoint: &str) -> Option<u16> {
    endpoint
        .rsplit_once(':')?
        .1
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// An instance's recorded parameters as a user would give them, to be validated again.
fn params_as_given(params: &serde_json::Value) -> Vec<(String, String)> {
    let Some(params) = params.as_object() else {
        return Vec::new();
    };
    (params.iter())
        .map(|(name, value)| {
            let raw = match value {
                serde_json::Value::String(text) => text.clone(),
                // Numbers, booleans, mappings and window lists: JSON is also their YAML.
                other => other.to_string(),
            };
            (name.clone(), raw)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_catalog::catalog;

    /// What `weir scale` validates again is what the instance was given.
    #[test]
    fn recorded_parameters_validate_again_to_the_same_values() {
        for (service, given) in [
            (
                "topology-runner",
                vec![
                    ("file", "/tmp/topology.yaml"),
                    ("replicas", "3"),
                    ("params", "{threshold: 60, rate_topic: rates}"),
                    ("kafka", "kafka-1"),
                ],
            ),
            (
                "chart-server",
                vec![
                    ("kafka", "kafka-1"),
                    (
                        "windows",
                        r#"[{topic: rates, y: rate, x: timestamp, title: "Rate", kind: line}]"#,
                    ),
                ],
            ),
            (
                "replay-source",
                vec![
                    ("file", "/tmp/closes.csv"),
                    ("topic", "raw"),
                    ("interval", "500ms"),
                ],
            ),
        ] {
            let definition = catalog::find(service).unwrap();
            let given: Vec<(String, String)> = (given.into_iter())
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            let params = definition.validate(&given).unwrap();
            let recorded = serde_json::to_value(&params).unwrap();
            let again = definition.validate(&params_as_given(&recorded)).unwrap();
            assert_eq!(again, params, "{service}");
        }
    }

    #[test]
    fn ports_are_read_from_either_kind_of_endpoint() {
        assert_eq!(port_of("127.0.0.1:9092"), Some(9092));
        assert_eq!(port_of("http://127.0.0.1:8080"), Some(8080));
        assert_eq!(port_of(""), None);
    }
}
