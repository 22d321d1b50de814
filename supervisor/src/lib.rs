//! The machinery of Weir's local runtime: the processes the catalog's local renderings
//! describe, started and kept here. The catalog says what to run; this crate runs it.
//!
//! - [`process`]: a service process in a process group of its own, always stopped (SIGTERM,
//!   then SIGKILL) and reaped, with its log.
//! - [`members`]: `weir members run`, which keeps several processes as one instance.
//! - [`ports`]: free loopback ports; [`readiness`]: a service is ready when it really serves.
//! - [`stack`]: a ZooKeeper and a Kafka broker started together (tests and benchmarks).

pub mod members;
pub mod ports;
pub mod process;
pub mod readiness;
pub mod stack;
