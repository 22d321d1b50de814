//! Which Kafka a `weir topics` command talks to: its bootstrap servers, a Kafka instance's
//! name, or the run that started one. An address is checked before any Kafka client exists:
//! a client given a name that does not resolve retries until its timeout and then fails
//! with a message about metadata, long after the user could have been told what is wrong.

use std::net::ToSocketAddrs;

use weir_contracts::service_kind::ServiceKind;

use crate::runtime::{inventory, Backend, InstanceState, RuntimeConfig, RuntimeError};

/// How the user named the Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTarget {
    /// Bootstrap servers, `host:port[,host:port...]`.
    Brokers(String),
    /// A Kafka instance, by the name `weir instances` shows.
    Instance(String),
    /// The Kafka instance of a run.
    Run(String),
}

/// Why the Kafka named could not be reached from here.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// A bootstrap entry is not `host:port`.
    #[error("`{entry}` is not host:port{hint}")]
    NotHostPort { entry: String, hint: String },
    /// A bootstrap host has no address.
    #[error("`{entry}` does not resolve to an address ({reason}){hint}")]
    Unresolvable {
        entry: String,
        reason: String,
        hint: String,
    },
    #[error("no bootstrap servers given")]
    Empty,
    #[error("no instance is named `{0}` (`weir instances` lists them)")]
    NoInstance(String),
    #[error("`{name}` is a {service} instance, not Kafka")]
    NotKafka { name: String, service: ServiceKind },
    #[error("Kafka instance `{name}` is {state}, not running")]
    NotRunning { name: String, state: String },
    /// Cluster addresses are for pods; this machine does not reach them.
    #[error(
        "Kafka instance `{name}` runs in Kubernetes namespace `{namespace}`: its address \
         {endpoint} is the one pods use; pass --brokers with an address this machine reaches \
         (e.g. a `kubectl port-forward` of it)"
    )]
    InCluster {
        name: String,
        namespace: String,
        endpoint: String,
    },
    #[error(
        "run `{0}` has no Kafka instance now (a finished run's topics are torn down; \
         `weir runs show {0}` lists the counts it kept)"
    )]
    RunWithoutKafka(String),
    #[error("run `{run}` has several Kafka instances ({names}): name one with --kafka")]
    SeveralInRun { run: String, names: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl KafkaTarget {
    /// The bootstrap servers this target names, checked to resolve.
    pub async fn resolve(&self, config: &RuntimeConfig) -> Result<String, AddressError> {
        match self {
            KafkaTarget::Brokers(brokers) => match check_bootstrap(brokers) {
                Ok(()) => Ok(brokers.clone()),
                // `--brokers kafka-1` where `kafka-1` is an instance: say what was meant.
                Err(error) => Err(with_instance_hint(error, config, brokers).await),
            },
            KafkaTarget::Instance(name) => {
                let instance = inventory::locate(config, name)
                    .await?
                    .ok_or_else(|| AddressError::NoInstance(name.clone()))?;
                kafka_endpoint(instance)
            }
            KafkaTarget::Run(run) => {
                let all = inventory::instances(config, None).await?.instances;
                let mut kafkas: Vec<_> = (all.into_iter())
                    .filter(|i| i.run.as_deref() == Some(run) && i.service == ServiceKind::Kafka)
                    .collect();
                match kafkas.len() {
                    0 => Err(AddressError::RunWithoutKafka(run.clone())),
                    1 => kafka_endpoint(kafkas.remove(0)),
                    _ => Err(AddressError::SeveralInRun {
                        run: run.clone(),
                        names: (kafkas.iter().map(|i| i.name.as_str()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    }
}

fn kafka_endpoint(instance: crate::runtime::Instance) -> Result<String, AddressError> {
    if instance.service != ServiceKind::Kafka {
        return Err(AddressError::NotKafka {
            name: instance.name,
            service: instance.service,
        });
    }
    if instance.backend == Backend::Kubernetes {
        return Err(AddressError::InCluster {
            name: instance.name,
            namespace: instance.namespace.unwrap_or_default(),
            endpoint: instance.endpoint,
        });
    }
    if instance.state != InstanceState::Running {
        return Err(AddressError::NotRunning {
            name: instance.name,
            state: instance.state.as_str().to_string(),
        });
    }
    check_bootstrap(&instance.endpoint)?;
    Ok(instance.endpoint)
}

/// Each comma-separated entry is `host:port` and its host resolves.
pub fn check_bootstrap(brokers: &str) -> Result<(), AddressError> {
    let entries: Vec<&str> = (brokers.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(AddressError::Empty);
    }
    for entry in entries {
        let has_port = entry
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            return Err(AddressError::NotHostPort {
                entry: entry.to_string(),
                hint: String::new(),
            });
        }
        if let Err(error) = entry.to_socket_addrs() {
            return Err(AddressError::Unresolvable {
                entry: entry.to_string(),
                reason: error.to_string(),
                hint: String::new(),
            });
        }
    }
    Ok(())
}

async fn with_instance_hint(
    error: AddressError,
    config: &RuntimeConfig,
    brokers: &str,
) -> AddressError {
    let name = brokers.trim();
    let known = matches!(inventory::locate(config, name).await, Ok(Some(_)));
    let hint = if known {
        format!("; an instance is named `{name}`: use --kafka {name}")
    } else {
        String::new()
    };
    match error {
        AddressError::NotHostPort { entry, .. } => AddressError::NotHostPort { entry, hint },
        AddressError::Unresolvable { entry, reason, .. } => AddressError::Unresolvable {
            entry,
            reason,
            hint,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_pass() {
        check_bootstrap("127.0.0.1:9092").unwrap();
        check_bootstrap("localhost:9092, 127.0.0.1:9093").unwrap();
    }

    #[test]
    fn a_name_without_port_is_refused_at_once() {
        let error = check_bootstrap("kafka-1").unwrap_err();
        assert!(matches!(error, AddressError::NotHostPort { .. }), "{error}");
        assert_eq!(error.to_string(), "`kafka-1` is not host:port");
        assert!(matches!(
            check_bootstrap("127.0.0.1:port"),
            Err(AddressError::NotHostPort { .. })
        ));
        assert!(matches!(check_bootstrap(" , "), Err(AddressError::Empty)));
    }

    #[test]
    fn a_host_that_does_not_resolve_is_refused() {
        // `.invalid` never resolves (RFC 6761).
        let error = check_bootstrap("kafka.invalid:9092").unwrap_err();
        assert!(
            matches!(error, AddressError::Unresolvable { .. }),
            "{error}"
        );
    }
}
