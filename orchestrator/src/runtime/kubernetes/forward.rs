//! A loopback port that leads to a pod's port through the API server's port-forward, so that
//! plain HTTP clients (chart snapshots, runner metrics) reach services inside the cluster.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::KubeError;

/// A forwarded port; forwarding stops when this is dropped.
#[derive(Debug)]
pub struct Forward {
    pub local: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards a loopback port to `port` of `pod`. The first forward is opened at once, so
/// that a pod that cannot be reached (not running, or a node without a kubelet) is an error
/// here rather than a dropped connection later.
pub async fn forward(pods: Api<Pod>, pod: &str, port: u16) -> Result<Forward, KubeError> {
    let what = format!("port-forwarding to port {port} of pod `{pod}`");
    let mut probe = pods
        .portforward(pod, &[port])
        .await
        .map_err(KubeError::api(what.clone()))?;
    let first = probe.take_stream(port);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| KubeError::Io {
            what: "binding a loopback port".into(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| KubeError::Io {
        what: "binding a loopback port".into(),
        source,
    })?;
    let pod = pod.to_string();
    let accept = tokio::spawn(async move {
        let mut spare = first.map(|stream| (probe, stream));
        while let Ok((mut connection, _)) = listener.accept().await {
            let (forwarder, mut upstream) = match spare.take() {
                Some(pair) => pair,
                None => match pods.portforward(&pod, &[port]).await {
                    Ok(mut forwarder) => match forwarder.take_stream(port) {
                        Some(stream) => (forwarder, stream),
                        None => continue,
                    },
                    Err(error) => {
                        tracing::warn!("port-forward to `{pod}`: {error}");
                        continue;
                    }
                },
            };
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut connection, &mut upstream).await;
                drop(upstream);
                let _ = forwarder.join().await;
            });
        }
    });
    Ok(Forward { local, accept })
}
