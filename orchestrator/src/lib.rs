//! The orchestrator: where Weir keeps its state ([`home`], [`store`]) and the runtimes that
//! start catalog services ([`runtime`]).

pub mod home;
pub mod runtime;
pub mod store;
pub mod time;
