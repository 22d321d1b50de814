//! The chart server: windows fed from Kafka topics or over HTTP, pushed live to browsers.
//! Not built yet; the crate holds its place in the workspace.
