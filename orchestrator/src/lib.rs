//! The orchestrator: where Weir keeps its state ([`home`], [`store`], [`runs`]), the runtimes
//! that start catalog services ([`runtime`]), workflow files ([`workflow`], those `weir serve` offers: [`offered`]) and the
//! engine that runs them ([`engine`]).

pub mod engine;
pub mod home;
pub mod offered;
pub mod runs;
pub mod runtime;
pub mod schema;
pub mod shell;
pub mod store;
pub mod suggest;
pub mod time;
pub mod topics;
pub mod web;
pub mod workflow;
