//! The HTTP interface of the runner and the sources: `GET /status` answering their typed
//! status ([`weir_contracts::status`]) and the server that carries it with `/metrics`.

use std::net::SocketAddr;

use serde::Serialize;
use tokio::sync::watch;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

/// A route of a process's HTTP interface.
pub type Route = BoxedFilter<(Response,)>;

/// `GET /status` answering the latest value of `status`.
pub fn route<T>(status: watch::Receiver<T>) -> Route
where
    T: Serialize + Send + Sync + 'static,
{
    warp::path("status")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || warp::reply::json(&*status.borrow()).into_response())
        .boxed()
}

/// A process's HTTP interface, served in the background until [`Server::stop`].
#[derive(Debug)]
pub struct Server {
    /// Where it listens (the port chosen when asked for port 0).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` and serves `routes`.
    pub async fn start(addr: SocketAddr, routes: Route) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(warp::serve(routes).serve_incoming_with_graceful_shutdown(
            incoming,
            async move {
                let _ = stopped.changed().await;
            },
        ));
        Ok(Server { addr, stop, task })
    }

    /// Stops serving, letting requests in progress finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use weir_contracts::status::SourceStatus;

    use super::*;

    #[tokio::test]
    async fn status_is_served_as_json() {
        let (tx, rx) = watch::channel(SourceStatus::new(false, "r.csv", "raw"));
        tx.send_modify(|s| s.published = 3);
        let reply = warp::test::request()
            .path("/status")
            .reply(&route(rx))
            .await;
        assert_eq!(reply.status(), 200);
        let body: SourceStatus = serde_json::from_slice(reply.body()).unwrap();
        assert_eq!((body.published, body.live), (3, false));
    }
}
