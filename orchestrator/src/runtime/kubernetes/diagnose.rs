//! Why a pod is not ready, in one line a person can act on: the failing pod condition
//! (e.g. `Unschedulable: 0/2 nodes are available: 2 Insufficient cpu`), the state of its
//! containers (`ImagePullBackOff`, `CrashLoopBackOff`, exit codes) and its latest events.

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};

/// Whether the pod reports the `Ready` condition as true.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// What keeps the pod from being ready, from its status alone.
pub fn pod_problem(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return "no status yet".into();
    };
    let mut reasons = Vec::new();
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" && condition.type_ != "Ready" {
            // PodScheduled=False says more than Ready=False or ContainersReady=False.
            let mut text = condition.type_.clone();
            text.push_str("=False");
            if let Some(reason) = &condition.reason {
                text = reason.clone();
            }
            if let Some(message) = condition.message.as_deref().filter(|m| !m.is_empty()) {
                text.push_str(": ");
                text.push_str(message.trim());
            }
            if condition.type_ == "PodScheduled" || !reasons.contains(&text) {
                reasons.push(text);
            }
        }
    }
    for container in status.container_statuses.iter().flatten() {
        if let Some(problem) = container_problem(container) {
            reasons.push(problem);
        }
    }
    if reasons.is_empty() {
        reasons.push(format!(
            "phase {}",
            status.phase.as_deref().unwrap_or("unknown")
        ));
    }
    reasons.dedup();
    reasons.join("; ")
}

fn container_problem(container: &ContainerStatus) -> Option<String> {
    if container.ready {
        return None;
    }
    let state = container.state.as_ref()?;
    if let Some(waiting) = &state.waiting {
        return Some(format!(
            "container `{}` waiting: {}{}",
            container.name,
            waiting.reason.as_deref().unwrap_or("unknown reason"),
            waiting
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
    }
    if let Some(terminated) = &state.terminated {
        return Some(format!(
            "container `{}` exited with code {}{}",
            container.name,
            terminated.exit_code,
            terminated
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    Some(format!(
        "container `{}` is running but not ready (readiness probe)",
        container.name
    ))
}

/// A container that will not become ready however long Weir waits: its image cannot be had,
/// or it crashed again after being restarted. Waiting out the ready timeout would only delay
/// the same error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub pod: String,
    pub container: String,
    /// The pod's state in one line, as [`pod_problem`] says it.
    pub problem: String,
    /// Whether the container ran and crashed, so its previous log says why.
    pub crashed: bool,
}

/// Waiting reasons that mean the image cannot be had. `ErrImagePull` alone is not among them:
/// kubelet retries a failed pull once before it backs off, and a registry may answer the
/// second time.
const IMAGE_UNAVAILABLE: [&str; 3] = ["ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"];

/// How many restarts make a crash loop hopeless: the container crashed, was restarted and
/// crashed again. One crash may be a dependency that was slow to answer; two in a row are not.
const CRASHES_BEFORE_GIVING_UP: i32 = 1;

/// The first container of the pod that is stuck, if any.
pub fn stuck(pod: &Pod) -> Option<Stuck> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in containers {
        let Some(reason) = container
            .state
            .as_ref()
            .and_then(|state| state.waiting.as_ref())
            .and_then(|waiting| waiting.reason.as_deref())
        else {
            continue;
        };
        let crashed =
            reason == "CrashLoopBackOff" && container.restart_count >= CRASHES_BEFORE_GIVING_UP;
        if crashed || IMAGE_UNAVAILABLE.contains(&reason) {
            return Some(Stuck {
                pod: pod.metadata.name.clone().unwrap_or_default(),
                container: container.name.clone(),
                problem: pod_problem(pod),
                crashed,
            });
        }
    }
    None
}

/// The latest events, newest last, as `Reason: message` (at most `limit`).
pub fn summarize_events(events: &[Event], limit: usize) -> Vec<String> {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
    });
    let mut lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or("Event"),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect();
    lines.dedup();
    let skip = lines.len().saturating_sub(limit);
    lines.split_off(skip)
}

/// What `describe` says of a workload without pods.
pub const NO_POD: &str = "no pod of it exists (its controller could not create one)";

/// One line per pod that is not ready, with its events.
pub fn describe(pods: &[(Pod, Vec<Event>)]) -> String {
    let lines: Vec<String> = pods
        .iter()
        .filter(|(pod, _)| !is_ready(pod))
        .map(|(pod, events)| {
            let name = pod.metadata.name.as_deref().unwrap_or("?");
            let problem = pod_problem(pod);
            // Events that repeat the status (the scheduler's message) add nothing.
            let events: Vec<String> = summarize_events(events, 3)
                .into_iter()
                .filter(|e| !e.split_once(": ").is_some_and(|(_, m)| problem.contains(m)))
                .collect();
            format!(
                "pod `{name}` is not ready: {problem}{}",
                if events.is_empty() {
                    String::new()
                } else {
                    format!(" [events: {}]", events.join(" | "))
                }
            )
        })
        .collect();
    if pods.is_empty() {
        NO_POD.into()
    } else if lines.is_empty() {
        "its pods are ready but its controller has not counted them yet".into()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, PodCondition, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, status: PodStatus) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            status: Some(status),
            ..Pod::default()
        }
    }

    fn condition(
        type_: &str,
        status: &str,
        reason: Option<&str>,
        message: Option<&str>,
    ) -> PodCondition {
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.map(Into::into),
            message: message.map(Into::into),
            ..PodCondition::default()
        }
    }

    #[test]
    fn an_unschedulable_pod_is_named_with_the_scheduler_message_and_events() {
        let unschedulable = pod(
            "kafka-0",
            PodStatus {
                phase: Some("Pending".into()),
                conditions: Some(vec![condition(
                    "PodScheduled",
                    "False",
                    Some("Unschedulable"),
                    Some("0/2 nodes are available: 2 Insufficient cpu."),
                )]),
                ..PodStatus::default()
            },
        );
        let repeated = Event {
            reason: Some("FailedScheduling".into()),
            message: Some("0/2 nodes are available: 2 Insufficient cpu.".into()),
            ..Event::default()
        };
        let news = Event {
            reason: Some("TriggeredScaleUp".into()),
            message: Some("pod triggered scale-up".into()),
            ..Event::default()
        };
        let text = describe(&[(unschedulable, vec![repeated, news])]);
        assert_eq!(text, "pod `kafka-0` is not ready: Unschedulable: 0/2 nodes are available: 2 Insufficient cpu. [events: TriggeredScaleUp: pod triggered scale-up]");
    }

    #[test]
    fn a_waiting_container_says_why() {
        let pulling = pod(
            "charts-abc",
            PodStatus {
                conditions: Some(vec![condition("Ready", "False", None, None)]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "chart-server".into(),
                    ready: false,
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("ImagePullBackOff".into()),
                            message: Some("image not found".into()),
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            },
        );
        assert_eq!(
            pod_problem(&pulling),
            "container `chart-server` waiting: ImagePullBackOff (image not found)"
        );
    }

    fn waiting(name: &str, reason: &str, restarts: i32) -> Pod {
        pod(
            name,
            PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    restart_count: restarts,
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: None,
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            },
        )
    }

    #[test]
    fn an_image_that_cannot_be_pulled_is_stuck_once_kubelet_backs_off() {
        assert_eq!(stuck(&waiting("p", "ErrImagePull", 0)), None);
        assert_eq!(stuck(&waiting("p", "ContainerCreating", 0)), None);
        let stuck_pod = stuck(&waiting("p", "ImagePullBackOff", 0)).unwrap();
        assert_eq!(stuck_pod.container, "main");
        assert!(!stuck_pod.crashed);
        assert_eq!(
            stuck_pod.problem,
            "container `main` waiting: ImagePullBackOff"
        );
    }

    #[test]
    fn a_crash_loop_is_stuck_after_the_second_crash() {
        assert_eq!(stuck(&waiting("p", "CrashLoopBackOff", 0)), None);
        let crashed = stuck(&waiting("p", "CrashLoopBackOff", 1)).unwrap();
        assert!(crashed.crashed);
        assert_eq!(crashed.pod, "p");
    }

    #[test]
    fn ready_pods_are_left_out() {
        let ready = pod(
            "zk-0",
            PodStatus {
                conditions: Some(vec![condition("Ready", "True", None, None)]),
                ..PodStatus::default()
            },
        );
        assert!(is_ready(&ready));
        assert!(describe(&[(ready, vec![])]).contains("has not counted them"));
        assert!(describe(&[]).starts_with("no pod of it exists"));
    }
}
