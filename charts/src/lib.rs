//! The chart server: windows of line series fed from Kafka topics ([`feed`]) or over HTTP with
//! Visdom's protocol ([`visdom`], windows in Visdom's format: [`visdom_window`]), kept in bounded rings ([`ring`], [`store`]), pushed live to
//! browsers and drawn as PNG/SVG snapshots ([`snapshot`]) by the HTTP server ([`server`]).

pub mod feed;
pub mod ring;
pub mod saved;
pub mod server;
pub mod snapshot;
pub mod store;
pub mod visdom;
pub mod visdom_window;
