//! The catalog of services Weir can start, and how each one is realized.
//!
//! [`catalog`] lists the services with their typed parameters, ports, dependencies and
//! readiness checks ([`service`]). Each has two realizations: a local process ([`local`]) and
//! Kubernetes objects ([`kubernetes`], pure functions returning `k8s-openapi` types).

pub mod catalog;
pub mod command;
pub mod kafka_settings;
pub mod kubernetes;
pub mod local;
pub mod service;
