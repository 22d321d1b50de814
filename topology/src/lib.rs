//! The topology runner and the data sources of Weir.
//!
//! A topology ([`spec::TopologySpec`]) reads one Kafka topic, runs each record through a
//! chain of operators ([`operators`]) and writes to output topics, with at-least-once delivery
//! ([`runner`], [`checkpoint`]), operator state kept in compacted changelog topics
//! ([`changelog`]) and Prometheus metrics ([`metrics`]). Sources ([`source`])
//! feed topics from a live HTTP endpoint or from a recording.

pub mod changelog;
pub mod checkpoint;
pub mod delivery_reports;
pub mod error;
pub mod expression;
pub mod flow;
mod in_flight;
pub mod kafka;
mod key_names;
pub mod metrics;
pub mod operators;
pub mod pointer;
pub mod pruned;
pub mod runner;
pub mod source;
pub mod spec;
pub mod state;
pub mod status;
pub mod test_driver;
