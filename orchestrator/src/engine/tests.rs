//! The scheduler against an in-memory runtime: a test double of the runtime seam (not of
//! Kafka or of processes), so that retries, conditions, failure policies, approvals, the run's
//! timeout and interruption are checked in milliseconds. What services do is tested against
//! the real ones in `tests/`.

use crate::runtime::LogSpan;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{run, RunOptions, RunOutcome};
use crate::home::WeirHome;
use crate::runs::{Answer, Answered, RunState};
use crate::runtime::topics::WaitReport;
use crate::runtime::{
    Backend, CreatedTopics, DataReport, DataStep, GcReport, HttpAccess, Instance, InstanceState,
    ProvisionRequest, Provisioned, Runtime, RuntimeError, Scope, StepOutcome,
};
use crate::store::Store;
use crate::workflow::load_text;
use weir_topology::kafka::TopicCounts;

/// Instances kept in a map; provisioning fails or hangs as told.
#[derive(Debug, Default)]
struct MemoryRuntime {
    instances: Mutex<BTreeMap<String, Instance>>,
    /// Instance name → how many more provisions of it fail.
    failures: Mutex<BTreeMap<String, u32>>,
    /// Instances whose provisioning waits until it is cancelled.
    hanging: Vec<String>,
    /// Everything asked of the runtime, in order.
    calls: Mutex<Vec<String>>,
    /// What it says when asked whether it only simulates workloads.
    simulation: Option<String>,
    /// Data-path steps finish without showing anything (as Jobs on kwok nodes do).
    steps_unseen: bool,
    /// Topics a count does not find.
    missing_topics: Vec<String>,
}

impl MemoryRuntime {
    fn failing(name: &str, times: u32) -> Self {
        let runtime = Self::default();
        runtime.failures.lock().unwrap().insert(name.into(), times);
        runtime
    }

    fn hanging(name: &str) -> Self {
        Self {
            hanging: vec![name.into()],
            ..Self::default()
        }
    }

    /// Data steps that show nothing, on a backend that does (`simulation`) or does not
    /// admit to simulating.
    fn unseen(simulation: Option<&str>) -> Self {
        Self {
            simulation: simulation.map(str::to_string),
            steps_unseen: true,
            ..Self::default()
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait::async_trait]
impl Runtime for MemoryRuntime {
    fn backend(&self) -> Backend {
        Backend::Local
    }

    async fn simulation(&self) -> Result<Option<String>, RuntimeError> {
        Ok(self.simulation.clone())
    }

    async fn open_run(&self, run_id: &str, _workflow: &str) -> Result<(), RuntimeError> {
        self.note(format!("open {run_id}"));
        Ok(())
    }

    async fn provision(&self, request: ProvisionRequest) -> Result<Provisioned, RuntimeError> {
        let name = request
            .name
            .clone()
            .expect("workflows name their instances");
        self.note(format!("provision {name}"));
        if self.hanging.contains(&name) {
            request.cancel.cancelled().await;
            return Err(RuntimeError::Interrupted);
        }
        if let Some(left) = self.failures.lock().unwrap().get_mut(&name) {
            if *left > 0 {
                *left -= 1;
                return Err(RuntimeError::DependencyDown(name));
            }
        }
        let instance = Instance {
            name: name.clone(),
            service: request.service,
            state: InstanceState::Running,
            endpoint: format!("memory:{name}"),
            backend: Backend::Local,
            run: match request.scope {
                Scope::Run(id) => Some(id),
                Scope::Standalone => None,
            },
            namespace: None,
            pid: None,
            log: String::new(),
            started: None,
            uses: Vec::new(),
            exit: None,
            restarts: 0,
            members: Vec::new(),
        };
        self.instances
            .lock()
            .unwrap()
            .insert(name, instance.clone());
        Ok(Provisioned::Started(vec![instance]))
    }

    async fn restart(
        &self,
        _scope: &Scope,
        name: &str,
        _ready_timeout: Duration,
        _cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        self.note(format!("restart {name}"));
        let mut instances = self.instances.lock().unwrap();
        let instance = instances
            .get_mut(name)
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))?;
        instance.state = InstanceState::Running;
        instance.exit = None;
        Ok(instance.clone())
    }

    async fn scale(
        &self,
        _scope: &Scope,
        name: &str,
        replicas: u32,
        _ready_timeout: Duration,
        _cancel: &CancellationToken,
    ) -> Result<Instance, RuntimeError> {
        self.note(format!("scale {name} {replicas}"));
        let instances = self.instances.lock().unwrap();
        instances
            .get(name)
            .cloned()
            .ok_or_else(|| RuntimeError::NoSuchInstance(name.into()))
    }

    async fn stop(&self, _scope: &Scope, name: &str) -> Result<Vec<String>, RuntimeError> {
        self.note(format!("stop {name}"));
        self.instances.lock().unwrap().remove(name);
        Ok(vec![name.into()])
    }

    async fn teardown(&self, _scope: &Scope) -> Result<Vec<String>, RuntimeError> {
        self.note("teardown".into());
        let mut instances = self.instances.lock().unwrap();
        let names = instances.keys().cloned().collect();
        instances.clear();
        Ok(names)
    }

    async fn instances(&self, _scope: Option<&Scope>) -> Result<Vec<Instance>, RuntimeError> {
        Ok(self.instances.lock().unwrap().values().cloned().collect())
    }

    async fn gc(&self) -> Result<GcReport, RuntimeError> {
        Ok(GcReport::default())
    }

    async fn logs(
        &self,
        _scope: &Scope,
        name: &str,
        _span: LogSpan,
    ) -> Result<String, RuntimeError> {
        Ok(format!("log of {name}\n"))
    }

    async fn data_step(
        &self,
        _scope: &Scope,
        label: &str,
        step: &DataStep,
        _timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<StepOutcome, RuntimeError> {
        self.note(format!("step {label}"));
        if cancel.is_cancelled() {
            return Err(RuntimeError::Interrupted);
        }
        if self.steps_unseen {
            return Ok(StepOutcome::Unseen("no container ran it".into()));
        }
        Ok(StepOutcome::Seen(match step {
            DataStep::Count { topics, .. } => DataReport::Counted(TopicCounts {
                counts: topics
                    .iter()
                    .filter(|t| !self.missing_topics.contains(t))
                    .map(|t| (t.clone(), 7))
                    .collect(),
                missing: self.missing_topics.clone(),
            }),
            DataStep::Wait {
                topic, messages, ..
            } => DataReport::Waited(WaitReport {
                topic: topic.clone(),
                count: Some(*messages),
                wanted: *messages,
                reached: true,
            }),
            DataStep::CreateTopics { topics, .. } => DataReport::Created(CreatedTopics {
                created: topics.clone(),
            }),
            DataStep::VerifyTable { topic, table, .. } => {
                DataReport::Verified(crate::topics::table::TableComparison {
                    topic: topic.clone(),
                    table: table.clone(),
                    expected_rows: 0,
                    target_rows: 0,
                    target_exists: true,
                    events_applied: 0,
                    missing: Vec::new(),
                    unexpected: Vec::new(),
                    different: Vec::new(),
                    poison: Vec::new(),
                    left_out: Default::default(),
                })
            }
        }))
    }

    async fn http(&self, _scope: &Scope, name: &str) -> Result<HttpAccess, RuntimeError> {
        Err(RuntimeError::NoSuchInstance(name.into()))
    }

    async fn http_replicas(
        &self,
        _scope: &Scope,
        name: &str,
    ) -> Result<Vec<HttpAccess>, RuntimeError> {
        Err(RuntimeError::NoSuchInstance(name.into()))
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    home: WeirHome,
    runtime: Arc<MemoryRuntime>,
    interrupt: CancellationToken,
}

impl Harness {
    fn new(runtime: MemoryRuntime) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            home: WeirHome::at(dir.path()),
            _dir: dir,
            runtime: Arc::new(runtime),
            interrupt: CancellationToken::new(),
        }
    }

    async fn run(&self, workflow: &str) -> RunOutcome {
        let loaded = load_text(Path::new("test.yaml"), workflow, &[]).expect("a valid workflow");
        let options = RunOptions {
            home: self.home.clone(),
            interrupt: self.interrupt.clone(),
            skip_results: CancellationToken::new(),
            id: Some("rtest".into()),
            command_line: None,
        };
        tokio::time::timeout(
            Duration::from_secs(20),
            run(loaded, self.runtime.clone(), options),
        )
        .await
        .expect("the run ends")
        .expect("the run is recorded")
    }

    /// Each task's state and attempts, as recorded.
    fn tasks(&self) -> BTreeMap<String, (String, u32)> {
        Store::open(&self.home.database())
            .unwrap()
            .tasks("rtest")
            .unwrap()
            .into_iter()
            .map(|t| (t.name, (t.state.as_str().to_string(), t.attempts)))
            .collect()
    }

    fn state_of(&self, task: &str) -> String {
        self.tasks()[task].0.clone()
    }

    /// Answers the run's approvals as they come, `answers` in order.
    fn answer(&self, answers: Vec<Answer>) -> tokio::task::JoinHandle<()> {
        let database = self.home.database();
        tokio::spawn(async move {
            for answer in answers {
                loop {
                    let store = Store::open(&database).unwrap();
                    if store.run("rtest").unwrap().is_some_and(|r| {
                        r.state == RunState::AwaitingApproval && r.approval_message.is_some()
                    }) && matches!(
                        store.answer_approval("rtest", None, answer).unwrap(),
                        Answered::Recorded(_)
                    ) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Let the run take the answer before the next one is given.
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        })
    }
}

const HEADER: &str = "name: t\nvariables:\n  kill: { type: bool, default: false }\ntasks:\n";

fn workflow(tasks: &str) -> String {
    format!("{HEADER}{tasks}")
}

#[tokio::test]
async fn a_task_is_retried_until_it_succeeds() {
    let harness = Harness::new(MemoryRuntime::failing("kafka", 2));
    let outcome = harness
        .run(&workflow(
            "  - name: kafka\n    retries: 2\n    retry-delay: 10ms\n    provision: { service: kafka, instance: kafka }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Succeeded, "{outcome:?}");
    assert_eq!(harness.tasks()["kafka"], ("succeeded".into(), 3));
    assert_eq!(
        harness.runtime.calls(),
        [
            "open rtest",
            "provision kafka",
            "provision kafka",
            "provision kafka",
            "teardown"
        ]
    );
}

#[tokio::test]
async fn a_task_that_fails_after_its_retries_fails_the_run_and_cancels_its_dependants() {
    let harness = Harness::new(MemoryRuntime::failing("kafka", 5));
    let outcome = harness
        .run(&workflow(
            "  - name: kafka\n    retries: 1\n    retry-delay: 10ms\n    provision: { service: kafka, instance: kafka }\n  - name: after\n    depends: [kafka]\n    wait: { duration: 10ms }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Failed);
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("task `kafka` failed"),
        "{outcome:?}"
    );
    assert_eq!(harness.tasks()["kafka"], ("failed".into(), 2));
    assert_eq!(harness.state_of("after"), "cancelled");
    assert_eq!(harness.runtime.calls().last().unwrap(), "teardown");
}

#[tokio::test]
async fn when_false_skips_a_task_and_its_dependants_still_run() {
    let harness = Harness::new(MemoryRuntime::default());
    let outcome = harness
        .run(&workflow(
            "  - name: approve\n    when: \"${kill}\"\n    approval: { message: stop? }\n  - name: after\n    depends: [approve]\n    wait: { duration: 10ms }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Succeeded);
    assert_eq!(harness.state_of("approve"), "skipped");
    assert_eq!(harness.state_of("after"), "succeeded");
}

#[tokio::test]
async fn on_failure_continue_lets_dependants_run_and_the_run_succeed() {
    let harness = Harness::new(MemoryRuntime::failing("flaky", 1));
    let outcome = harness
        .run(&workflow(
            "  - name: flaky\n    on-failure: continue\n    provision: { service: kafka, instance: flaky }\n  - name: after\n    depends: [flaky]\n    wait: { duration: 10ms }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Succeeded);
    assert_eq!(harness.state_of("flaky"), "failed");
    assert_eq!(harness.state_of("after"), "succeeded");
}

#[tokio::test]
async fn on_failure_pause_continues_when_approved_and_fails_when_rejected() {
    let tasks = "  - name: flaky\n    on-failure: pause\n    provision: { service: kafka, instance: flaky }\n  - name: after\n    depends: [flaky]\n    wait: { duration: 10ms }\n";

    let harness = Harness::new(MemoryRuntime::failing("flaky", 1));
    let answers = harness.answer(vec![Answer::Approved]);
    let outcome = harness.run(&workflow(tasks)).await;
    answers.await.unwrap();
    assert_eq!(outcome.state, RunState::Succeeded, "{outcome:?}");
    assert_eq!(harness.state_of("flaky"), "failed");
    assert_eq!(harness.state_of("after"), "succeeded");

    let harness = Harness::new(MemoryRuntime::failing("flaky", 1));
    let answers = harness.answer(vec![Answer::Rejected]);
    let outcome = harness.run(&workflow(tasks)).await;
    answers.await.unwrap();
    assert_eq!(outcome.state, RunState::Failed, "{outcome:?}");
    assert_eq!(harness.state_of("after"), "cancelled");
}

#[tokio::test]
async fn the_run_timeout_holds_while_an_approval_waits() {
    let harness = Harness::new(MemoryRuntime::default());
    let outcome = harness
        .run("name: t\ntimeout: 300ms\ntasks:\n  - name: approve\n    approval: { message: stop? }\n")
        .await;
    assert_eq!(outcome.state, RunState::Failed);
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("timeout of 300ms"),
        "{outcome:?}"
    );
    assert_eq!(harness.state_of("approve"), "cancelled");
    let run = Store::open(&harness.home.database())
        .unwrap()
        .run("rtest")
        .unwrap()
        .unwrap();
    assert_eq!(
        run.approval_message, None,
        "the approval request is withdrawn"
    );
    assert_eq!(harness.runtime.calls().last().unwrap(), "teardown");
}

#[tokio::test]
async fn two_parallel_approvals_are_answered_each_on_its_own() {
    let harness = Harness::new(MemoryRuntime::default());
    let database = harness.home.database();
    let answering = tokio::spawn(async move {
        let pending = |count: usize| {
            let store = Store::open(&database).unwrap();
            let run = store.run("rtest").unwrap()?;
            (run.approvals.len() == count).then_some((store, run))
        };
        let (store, run) = loop {
            match pending(2) {
                Some(found) => break found,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(run.state, RunState::AwaitingApproval);
        assert_eq!(
            store
                .answer_approval("rtest", None, Answer::Approved)
                .unwrap(),
            Answered::Ambiguous(vec!["left".into(), "right".into()])
        );
        assert_eq!(
            store
                .answer_approval("rtest", Some("left"), Answer::Approved)
                .unwrap(),
            Answered::Recorded("left".into())
        );
        let (store, run) = loop {
            match pending(1) {
                Some(found) => break found,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(run.approvals[0].task, "right", "{run:?}");
        assert_eq!(run.state, RunState::AwaitingApproval, "right still waits");
        assert_eq!(
            store
                .answer_approval("rtest", Some("right"), Answer::Approved)
                .unwrap(),
            Answered::Recorded("right".into())
        );
    });
    let outcome = harness
        .run(&workflow(
            "  - name: left\n    approval: { message: left? }\n  - name: right\n    approval: { message: right? }\n  - name: after\n    depends: [left, right]\n    wait: { duration: 1ms }\n",
        ))
        .await;
    answering.await.unwrap();
    assert_eq!(outcome.state, RunState::Succeeded, "{outcome:?}");
    for task in ["left", "right", "after"] {
        assert_eq!(harness.state_of(task), "succeeded", "{task}");
    }
}

#[tokio::test]
async fn an_expired_approval_takes_its_declared_outcome() {
    let harness = Harness::new(MemoryRuntime::default());
    let outcome = harness
        .run(&workflow(
            "  - name: approve\n    approval: { message: stop?, timeout: 50ms, on-timeout: reject }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Cancelled);
    assert_eq!(
        outcome.error.as_deref(),
        Some("approval `approve` was rejected")
    );
}

#[tokio::test]
async fn an_interrupt_while_provisioning_cancels_the_run_and_tears_down() {
    let harness = Harness::new(MemoryRuntime::hanging("kafka"));
    let interrupt = harness.interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        interrupt.cancel();
    });
    let outcome = harness
        .run(&workflow(
            "  - name: zk\n    provision: { service: zookeeper, instance: zk }\n  - name: kafka\n    depends: [zk]\n    provision: { service: kafka, instance: kafka }\n  - name: after\n    depends: [kafka]\n    wait: { duration: 1s }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Cancelled);
    assert_eq!(harness.state_of("zk"), "succeeded");
    assert_eq!(harness.state_of("kafka"), "cancelled");
    assert_eq!(harness.state_of("after"), "cancelled");
    assert_eq!(
        harness.runtime.calls(),
        ["open rtest", "provision zk", "provision kafka", "teardown"]
    );
}

#[tokio::test]
async fn an_interrupt_during_a_wait_or_an_approval_cancels_the_run() {
    for task in [
        "  - name: block\n    wait: { duration: 1h }\n",
        "  - name: block\n    approval: { message: stop? }\n",
    ] {
        let harness = Harness::new(MemoryRuntime::default());
        let interrupt = harness.interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            interrupt.cancel();
        });
        let outcome = harness.run(&workflow(task)).await;
        assert_eq!(outcome.state, RunState::Cancelled, "{task}");
        assert_eq!(harness.state_of("block"), "cancelled", "{task}");
    }
}

#[tokio::test]
async fn an_interrupted_run_still_counts_its_topics_before_teardown() {
    let harness = Harness::new(MemoryRuntime::default());
    let interrupt = harness.interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        interrupt.cancel();
    });
    let outcome = harness
        .run(&workflow(
            "  - name: kafka\n    provision: { service: kafka, instance: kafka }\n  - name: topics\n    depends: [kafka]\n    create-topics: { kafka: kafka, topics: [a, b] }\n  - name: block\n    depends: [topics]\n    wait: { duration: 1h }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Cancelled);
    let run = recorded_run(&harness);
    assert_eq!(run.topics, serde_json::json!({ "a": 7, "b": 7 }));
    assert_eq!(run.unavailable, serde_json::json!({}));
}

#[tokio::test]
async fn collect_counts_the_run_topics_through_the_runtime_and_keeps_logs() {
    let harness = Harness::new(MemoryRuntime::default());
    let outcome = harness
        .run(&workflow(
            "  - name: kafka\n    provision: { service: kafka, instance: kafka }\n  - name: topics\n    depends: [kafka]\n    create-topics: { kafka: kafka, topics: [a, b] }\n  - name: results\n    depends: [topics]\n    collect: { kafka: kafka }\n",
        ))
        .await;
    assert_eq!(outcome.state, RunState::Succeeded);
    let run = Store::open(&harness.home.database())
        .unwrap()
        .run("rtest")
        .unwrap()
        .unwrap();
    assert_eq!(run.topics, serde_json::json!({ "a": 7, "b": 7 }));
    assert_eq!(run.unavailable, serde_json::json!({}));
    let log = harness.home.run_dir("rtest").join("logs/kafka.log");
    assert_eq!(std::fs::read_to_string(log).unwrap(), "log of kafka\n");
}

const TOPICS_AND_RESULTS: &str = "  - name: kafka\n    provision: { service: kafka, instance: kafka }\n  - name: topics\n    depends: [kafka]\n    create-topics: { kafka: kafka, topics: [a, b] }\n  - name: results\n    depends: [topics]\n    collect: { kafka: kafka }\n";

fn recorded_run(harness: &Harness) -> crate::runs::RunRecord {
    Store::open(&harness.home.database())
        .unwrap()
        .run("rtest")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_step_that_shows_nothing_fails_its_task_on_a_backend_that_really_runs_workloads() {
    let harness = Harness::new(MemoryRuntime::unseen(None));
    let outcome = harness.run(&workflow(TOPICS_AND_RESULTS)).await;
    assert_eq!(outcome.state, RunState::Failed, "{outcome:?}");
    assert_eq!(harness.state_of("topics"), "failed");
    let error = outcome.error.unwrap();
    assert!(error.contains("no container ran it"), "{error}");
    assert_eq!(recorded_run(&harness).simulated, None);
}

#[tokio::test]
async fn a_simulated_backend_may_leave_results_unavailable_and_the_run_says_it_was_simulated() {
    let harness = Harness::new(MemoryRuntime::unseen(Some("kwok nodes")));
    let outcome = harness.run(&workflow(TOPICS_AND_RESULTS)).await;
    assert_eq!(outcome.state, RunState::Succeeded, "{outcome:?}");
    let run = recorded_run(&harness);
    assert_eq!(run.simulated.as_deref(), Some("kwok nodes"));
    let unavailable = run.unavailable.as_object().unwrap();
    assert!(
        unavailable.contains_key("create-topics:topics"),
        "{unavailable:?}"
    );
    assert!(unavailable.contains_key("topics"), "{unavailable:?}");
    assert_eq!(run.topics, serde_json::json!({}));
}

#[tokio::test]
async fn a_topic_that_does_not_exist_is_not_counted_as_empty_and_fails_the_run() {
    let harness = Harness::new(MemoryRuntime {
        missing_topics: vec!["b".into()],
        ..MemoryRuntime::default()
    });
    let outcome = harness.run(&workflow(TOPICS_AND_RESULTS)).await;
    assert_eq!(outcome.state, RunState::Failed, "{outcome:?}");
    let error = outcome.error.unwrap();
    assert!(error.contains("not observed: topic:b"), "{error}");
    let run = recorded_run(&harness);
    assert_eq!(run.topics, serde_json::json!({ "a": 7 }));
    assert!(run.unavailable["topic:b"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
}

impl Harness {
    /// Kills `name` once it has been provisioned, as a SIGKILL would.
    fn kill_when_started(&self, name: &'static str) -> tokio::task::JoinHandle<()> {
        let runtime = self.runtime.clone();
        tokio::spawn(async move {
            loop {
                if let Some(instance) = runtime.instances.lock().unwrap().get_mut(name) {
                    instance.state = InstanceState::Dead;
                    instance.exit = Some("killed by SIGKILL".into());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

#[tokio::test]
async fn a_dead_instance_whose_task_declares_restart_is_started_again_and_the_run_records_it() {
    let harness = Harness::new(MemoryRuntime::default());
    let killer = harness.kill_when_started("kafka");
    let outcome = harness
        .run(&workflow(
            "  - name: kafka\n    restart: { limit: 2, backoff: 10ms }\n    provision: { service: kafka, instance: kafka }\n  - name: run\n    depends: [kafka]\n    wait: { duration: 3s }\n",
        ))
        .await;
    killer.await.unwrap();
    assert_eq!(outcome.state, RunState::Succeeded, "{outcome:?}");
    assert!(harness
        .runtime
        .calls()
        .contains(&"restart kafka".to_string()));
    let events: Vec<String> = recorded_run(&harness)
        .events
        .into_iter()
        .map(|e| format!("{}: {}", e.instance, e.what))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], "kafka: died (killed by SIGKILL)");
    assert!(
        events[1].starts_with("kafka: restarted (1 of 2 allowed"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_dead_instance_without_a_restart_policy_fails_the_run_naming_it() {
    let harness = Harness::new(MemoryRuntime::default());
    let killer = harness.kill_when_started("kafka");
    let outcome = harness
        .run(&workflow(
            "  - name: kafka\n    provision: { service: kafka, instance: kafka }\n  - name: run\n    depends: [kafka]\n    wait: { duration: 10s }\n",
        ))
        .await;
    killer.await.unwrap();
    assert_eq!(outcome.state, RunState::Failed, "{outcome:?}");
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("kafka `kafka` (started by task `kafka`) died (killed by SIGKILL)"),
        "{error}"
    );
    assert!(
        error.contains("log of kafka"),
        "the end of its log: {error}"
    );
    assert_eq!(harness.state_of("run"), "cancelled");
    assert!(!harness
        .runtime
        .calls()
        .contains(&"restart kafka".to_string()));
}

#[test]
fn restart_backoff_doubles_up_to_thirty_seconds() {
    let policy = crate::workflow::RestartPolicy {
        limit: 50,
        backoff: Duration::from_secs(1),
    };
    assert_eq!(policy.pause(0), Duration::from_secs(1));
    assert_eq!(policy.pause(3), Duration::from_secs(8));
    assert_eq!(policy.pause(40), Duration::from_secs(30));
}
