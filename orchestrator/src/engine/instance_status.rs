//! Reading the `/status` an instance serves (a source's or a runner's), through the runtime,
//! in the type the instance serves it in.

use std::time::Duration;

use weir_contracts::status::RunnerStatus;

use crate::runtime::{Runtime, RuntimeError, Scope};

use super::RunContext;

/// One HTTP request to a service.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an instance's status, or another document it serves, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The HTTP client could not be built (no TLS backend, for one).
    #[error("cannot build an HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The runtime cannot say how to reach the instance.
    #[error(transparent)]
    Unreachable(Box<RuntimeError>),
    /// The request failed or was answered with an error status.
    #[error("GET {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not the document the instance should serve.
    #[error("GET {url}: not a status: {source}")]
    NotAStatus {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<RuntimeError> for StatusError {
    fn from(error: RuntimeError) -> Self {
        StatusError::Unreachable(Box::new(error))
    }
}

/// The client every status read uses: each request gives up after [`HTTP_TIMEOUT`].
pub(super) fn http_client() -> Result<reqwest::Client, StatusError> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(StatusError::Client)
}

/// `GET /status` of an instance, in the type the instance serves.
pub(super) async fn status_of<T: serde::de::DeserializeOwned>(
    context: &RunContext,
    client: &reqwest::Client,
    instance: &str,
) -> Result<T, StatusError> {
    let access = context.runtime.http(&context.scope, instance).await?;
    get_status(client, &format!("{}/status", access.url)).await
}

/// `GET /status` of each replica of a topology runner, read once, in replica order.
pub async fn runner_replicas(
    runtime: &dyn Runtime,
    scope: &Scope,
    instance: &str,
) -> Result<Vec<RunnerStatus>, StatusError> {
    let client = http_client()?;
    let replicas = runtime.http_replicas(scope, instance).await?;
    let mut statuses = Vec::with_capacity(replicas.len());
    for replica in &replicas {
        statuses.push(get_status(&client, &format!("{}/status", replica.url)).await?);
    }
    Ok(statuses)
}

/// `GET url`, read as the status type the instance serves.
pub(super) async fn get_status<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, StatusError> {
    let body = get_bytes(client, url).await?;
    serde_json::from_slice(&body).map_err(|source| StatusError::NotAStatus {
        url: url.to_string(),
        source,
    })
}

/// `GET url`'s body, failing on an error status.
pub(super) async fn get_bytes(
    client: &reqwest::Client,
    url: &str,
) -> Result<bytes::Bytes, StatusError> {
    let http = |source| StatusError::Http {
        url: url.to_string(),
        source,
    };
    let response = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(http)?;
    response.bytes().await.map_err(http)
}
