//! What an instance's pods say about it: ready or not, how many times kubelet restarted its
//! containers and how the last one ended. Kubernetes restarts a dead container by itself;
//! Weir's supervision counts those restarts against the task's policy.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::diagnose::is_ready;
use crate::runtime::InstanceState;

/// The pods of one instance, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodHealth {
    pub pods: usize,
    pub ready: usize,
    /// Container restarts kubelet made, over all the instance's pods.
    pub restarts: u32,
    /// How the last restarted container ended, e.g. "exit code 137 (Error)".
    pub last_exit: Option<String>,
    /// Why a pod will not come back by itself (it failed or was evicted).
    pub failed: Option<String>,
}

impl PodHealth {
    /// Adds one pod.
    pub fn add(&mut self, pod: &Pod) {
        self.pods += 1;
        self.ready += usize::from(is_ready(pod));
        let Some(status) = &pod.status else { return };
        if status.phase.as_deref() == Some("Failed") {
            self.failed = Some(format!(
                "pod failed: {}",
                status
                    .reason
                    .as_deref()
                    .or(status.message.as_deref())
                    .unwrap_or("no reason given")
            ));
        }
        for container in status.container_statuses.iter().flatten() {
            let restarts = u32::try_from(container.restart_count).unwrap_or(0);
            self.restarts = self.restarts.saturating_add(restarts);
            if restarts > 0 {
                self.last_exit = last_exit(container).or(self.last_exit.take());
            }
        }
    }

    /// The state `weir instances` shows and supervision acts on.
    pub fn state(&self) -> InstanceState {
        match self {
            PodHealth {
                failed: Some(_), ..
            } => InstanceState::Dead,
            PodHealth { pods: 0, .. } => InstanceState::Starting,
            PodHealth { pods, ready, .. } if ready == pods => InstanceState::Running,
            _ => InstanceState::Starting,
        }
    }

    /// How it ended, for a dead instance.
    pub fn exit(&self) -> Option<String> {
        match (&self.failed, &self.last_exit) {
            (Some(failed), Some(exit)) => Some(format!("{failed}; last container {exit}")),
            (Some(failed), None) => Some(failed.clone()),
            (None, _) => None,
        }
    }
}

fn last_exit(container: &ContainerStatus) -> Option<String> {
    let ended = container.last_state.as_ref()?.terminated.as_ref()?;
    let mut text = match ended.signal {
        Some(signal) => format!("killed by signal {signal}"),
        None => format!("exit code {}", ended.exit_code),
    };
    if let Some(reason) = &ended.reason {
        text.push_str(&format!(" ({reason})"));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p" },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn restarts_and_how_the_last_container_ended_are_read_from_the_pods() {
        let mut health = PodHealth::default();
        assert_eq!(health.state(), InstanceState::Starting, "no pod yet");
        health.add(&pod(serde_json::json!({
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "True" }],
            "containerStatuses": [{
                "name": "kafka", "image": "i", "imageID": "", "ready": true,
                "restartCount": 2,
                "lastState": { "terminated": { "exitCode": 137, "reason": "Error" } },
            }],
        })));
        assert_eq!(health.state(), InstanceState::Running);
        assert_eq!(health.restarts, 2);
        assert_eq!(health.last_exit.as_deref(), Some("exit code 137 (Error)"));
        assert_eq!(
            health.exit(),
            None,
            "a restarted container is not a dead instance"
        );

        health.add(&pod(serde_json::json!({
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "False" }],
        })));
        assert_eq!(
            health.state(),
            InstanceState::Starting,
            "one pod of two is ready"
        );

        health.add(&pod(
            serde_json::json!({ "phase": "Failed", "reason": "Evicted" }),
        ));
        assert_eq!(health.state(), InstanceState::Dead);
        assert_eq!(
            health.exit().as_deref(),
            Some("pod failed: Evicted; last container exit code 137 (Error)")
        );
    }
}
