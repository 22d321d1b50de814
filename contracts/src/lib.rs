//! The vocabulary Weir's processes and layers share, and nothing else: no IO, no Kafka, no
//! HTTP. The bottom floor of the workspace; every other crate may use it.
//!
//! - [`args`] and [`chart_args`]: the command line of each role the `weir` binary carries
//!   (topology runner, sources, chart server) as typed values, parsed by the binary and
//!   rendered by the catalog.
//! - [`service_kind`]: the closed set of services the catalog offers.
//! - [`status`]: what the runner and the sources answer on `GET /status`.
//! - [`window`]: chart windows fed from topics.
//! - [`condition`]: `when:` conditions of tasks and windows.
//! - [`duration`], [`template`], [`yaml`], [`number`]: how users write durations, `${name}`
//!   references, where a YAML file went wrong, numbers in JSON documents.

pub mod args;
pub mod chart_args;
pub mod condition;
pub mod duration;
pub mod number;
pub mod service_kind;
pub mod status;
pub mod template;
pub mod window;
pub mod yaml;
