//! The closed set of services the catalog offers. Every layer names a service by this type, so a
//! new service is added in one place and the compiler shows each place that must learn it.

use serde::{Deserialize, Serialize};
use strum::IntoEnumIterator;

/// A kind of service: what `weir up KIND` starts and what a workflow task's `service:` names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ServiceKind {
    /// Apache ZooKeeper, the coordination service a ZooKeeper-mode Kafka needs.
    #[serde(rename = "zookeeper")]
    #[strum(serialize = "zookeeper")]
    ZooKeeper,
    /// An Apache Kafka cluster (one or more brokers).
    Kafka,
    /// Weir's topology runner, one or more replicas in one consumer group.
    TopologyRunner,
    /// Weir's Visdom-compatible live chart server.
    ChartServer,
    /// A source that polls an HTTP endpoint and publishes what it answers.
    HttpSource,
    /// A source that replays a recorded file, labelled as a replay.
    ReplaySource,
}

/// A name that is not one of the catalog's services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the catalog has no service `{name}`; it offers: {}", ServiceKind::names().join(", "))]
pub struct UnknownService {
    pub name: String,
}

impl ServiceKind {
    /// The name users type (`kafka`, `topology-runner`).
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Every kind, in the catalog's order.
    pub fn all() -> impl Iterator<Item = ServiceKind> {
        ServiceKind::iter()
    }

    /// Every kind's name, in the catalog's order.
    pub fn names() -> Vec<&'static str> {
        ServiceKind::iter().map(ServiceKind::name).collect()
    }

    /// Reads a service's name as users type it.
    pub fn parse(name: &str) -> Result<ServiceKind, UnknownService> {
        name.parse()
    }

    /// Whether it publishes records into Kafka from outside (a source).
    pub fn is_source(self) -> bool {
        matches!(self, ServiceKind::HttpSource | ServiceKind::ReplaySource)
    }

    /// Whether its instances keep data on disk and have stable member identities (a
    /// StatefulSet on Kubernetes), rather than being stateless processes.
    pub fn is_stateful(self) -> bool {
        matches!(self, ServiceKind::ZooKeeper | ServiceKind::Kafka)
    }
}

impl std::str::FromStr for ServiceKind {
    type Err = UnknownService;

    fn from_str(name: &str) -> Result<ServiceKind, UnknownService> {
        ServiceKind::iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownService { name: name.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_as_text_and_as_json() {
        for kind in ServiceKind::all() {
            assert_eq!(ServiceKind::parse(kind.name()), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<ServiceKind>(&json).unwrap(), kind);
        }
        assert_eq!(ServiceKind::ZooKeeper.name(), "zookeeper");
        assert_eq!(ServiceKind::TopologyRunner.name(), "topology-runner");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_names_on_offer() {
        let error = ServiceKind::parse("kafak").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the catalog has no service `kafak`; it offers: zookeeper, kafka, topology-runner, \
             chart-server, http-source, replay-source"
        );
    }
}
