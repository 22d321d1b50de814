//! The catalog of services Weir can start, and how each one is realized.
//!
//! [`local`] holds the local-process realizations: configuration files and command lines for
//! ZooKeeper and Kafka, the readiness checks that prove a service really serves, and a process
//! handle that always cleans up after itself.

pub mod local;
