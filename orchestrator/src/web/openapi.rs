//! The OpenAPI 3.0 document of the REST API, served at `/api/openapi.json`.

use serde_json::{json, Value};
use weir_contracts::service_kind::ServiceKind;

fn op(summary: &str, mutating: bool, body: Option<Value>) -> Value {
    let mut operation = json!({
        "summary": summary,
        "responses": {
            "200": { "description": "OK" },
            "400": { "description": "Malformed request; the body says why" },
            "404": { "description": "No such object" },
        },
    });
    if mutating {
        operation["security"] = json!([{ "bearer": [] }]);
        operation["responses"]["202"] =
            json!({ "description": "Accepted: started in the background" });
        operation["responses"]["401"] = json!({ "description": "No or unknown token" });
        operation["responses"]["403"] =
            json!({ "description": "The token's role is too low, or a cross-site request" });
        operation["responses"]["409"] =
            json!({ "description": "Conflicts with the current state" });
    }
    if let Some(schema) = body {
        operation["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    operation
}

/// The query of a browse; every view of the topic browser is one of these in its address.
fn browse_params() -> Vec<Value> {
    let names = [
        "partition",
        "offset",
        "since",
        "limit",
        "key",
        "contains",
        "where",
        "scan_limit",
        "format",
        "access_token",
    ];
    (names.iter())
        .map(|name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } }))
        .collect()
}

fn path_param(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
}

/// `?task=`: which approval, when a run awaits several.
fn task_param() -> Value {
    json!({
        "name": "task", "in": "query", "required": false, "schema": { "type": "string" },
        "description": "The task whose approval is answered; needed when several wait at once"
    })
}

fn tail_param() -> Value {
    json!({
        "name": "tail", "in": "query", "required": false,
        "schema": { "type": "integer", "minimum": 0, "maximum": 10000, "default": 200 },
        "description": "How many of the log's last lines to show"
    })
}

/// Where a launch runs: one of the backends the server offers (`GET /api/catalog` lists them).
fn backend_property() -> Value {
    json!({
        "type": "string", "enum": ["local", "kubernetes"],
        "description": "One of the `backends` of /api/catalog (weir serve --backends); the first of them when absent"
    })
}

pub fn document() -> Value {
    let launch_service = json!({
        "type": "object", "required": ["service"], "additionalProperties": false,
        "properties": {
            "service": { "type": "string", "enum": ServiceKind::names(), "example": "kafka" },
            "name": { "type": "string", "pattern": "^[a-z][a-z0-9-]{0,39}$" },
            "params": { "type": "object", "additionalProperties": true },
            "backend": backend_property(),
        },
    });
    let launch_run = json!({
        "type": "object", "required": ["workflow"], "additionalProperties": false,
        "properties": {
            "workflow": { "type": "string", "example": "ci-smoke" },
            "variables": { "type": "object", "additionalProperties": true },
            "backend": backend_property(),
        },
    });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Weir", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Catalog, service instances, workflow runs and approvals." },
        "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } } },
        "paths": {
            "/api/dashboard": { "get": op("The portal's counters and recent runs", false, None) },
            "/api/catalog": { "get": op("Services and shipped workflows with their typed parameters", false, None) },
            "/api/instances": {
                "get": op("Service instances", false, None),
                "post": op("Start a service instance (operator)", true, Some(launch_service)),
            },
            "/api/instances/{name}": {
                "parameters": [path_param("name")],
                "delete": op("Stop a service instance (operator)", true, None),
            },
            "/api/instances/{name}/log": {
                "parameters": [path_param("name"), tail_param()],
                "get": op("The end of an instance's log (text)", false, None),
            },
            "/api/instances/{name}/topics": {
                "parameters": [path_param("name")],
                "get": op("A Kafka instance's topics, and its consumer groups with their lag in records and seconds", false, None),
            },
            "/api/instances/{name}/topics/{topic}/messages": {
                "parameters": [path_param("name"), path_param("topic")],
                "get": {
                    "summary": "A topic's messages: the newest, or forward from `offset` or `since` (RFC 3339 or epoch ms); filtered by `key`, `contains` or `where` (CEL) within `scan_limit`; `format=jsonl` downloads them",
                    "parameters": browse_params(),
                    "responses": { "200": { "description": "OK" }, "400": { "description": "A parameter is wrong; the body says why" }, "404": { "description": "No such instance, topic or partition" }, "502": { "description": "Kafka did not answer" } },
                },
                "post": op("Write one message (operator): `value`, optional `key`, `headers` ([name, value] pairs), `partition`", true, Some(json!({
                    "type": "object", "required": ["value"], "additionalProperties": false,
                    "properties": { "value": { "type": "string" }, "key": { "type": "string" }, "partition": { "type": "integer" },
                        "headers": { "type": "array", "items": { "type": "array", "items": { "type": "string" }, "minItems": 2, "maxItems": 2 } } },
                }))),
            },
            "/api/instances/{name}/topics/{topic}/tail": {
                "parameters": [path_param("name"), path_param("topic")],
                "get": op("Server-Sent Events: a `message` event for each new message the filter (`key`, `contains`, `where`, `partition`) keeps; `failed` if the tail stops", false, None),
            },
            "/api/runs": {
                "get": op("Runs, newest first", false, None),
                "post": op("Run a shipped workflow (operator)", true, Some(launch_run)),
            },
            "/api/runs/{id}": {
                "parameters": [path_param("id")],
                "get": op("A run with its tasks and topic counts", false, None),
            },
            "/api/runs/{id}/topologies": {
                "parameters": [path_param("id")],
                "get": op("Each topology's runners read now: counts, lag, latency p50/p99, errors (`unavailable` says why a topology could not be read)", false, None),
            },
            "/api/runs/{id}/approve": {
                "parameters": [path_param("id"), task_param()],
                "post": op("Approve a pending approval (operator)", true, None),
            },
            "/api/runs/{id}/reject": {
                "parameters": [path_param("id"), task_param()],
                "post": op("Reject a pending approval (operator)", true, None),
            },
            "/api/runs/{id}/artifacts/{path}": {
                "parameters": [path_param("id"), path_param("path")],
                "get": op("A kept chart snapshot or log of a run (under charts/ or logs/)", false, None),
            },
            "/api/events": { "get": op("Server-Sent Events: `changed` whenever instances or runs change", false, None) },
        },
    })
}
