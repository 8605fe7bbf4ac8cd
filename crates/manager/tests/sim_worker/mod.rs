//! A protocol-level worker for tests: registers, signs on, opens its instruction
//! stream and answers assignments the way a test tells it to.
#![allow(dead_code)]
use std::time::Duration;

use castanet_manager::ManagerConfig;
use castanet_protocol::WorkerServiceClient;
use castanet_protocol::v1::{self, instruction::Kind};
use tonic::transport::Channel;

use crate::common::{TestManager, authed};

/// Starts a manager whose config `tweak` adjusts (failure limits, timeouts).
pub async fn start_with(tweak: impl FnOnce(&mut ManagerConfig)) -> TestManager {
    crate::common::start_configured(tempfile::tempdir().expect("temp dir"), tweak).await
}

pub struct SimWorker {
    pub id: String,
    pub token: String,
    pub name: String,
    pub client: WorkerServiceClient<Channel>,
    pub stream: tonic::Streaming<v1::Instruction>,
    sequence: u64,
}

pub fn sign_on_request(name: &str, slots: u32) -> v1::SignOnRequest {
    v1::SignOnRequest {
        name: name.into(),
        platform: "linux".into(),
        supported_task_types: vec!["misc".into()],
        slots,
        capabilities: Some(v1::Capabilities {
            cpu_cores: 2,
            ram_bytes: 1 << 30,
            ..Default::default()
        }),
        software_version: "test".into(),
        can_restart: false,
        self_check_problems: Vec::new(),
        storage_mirror: String::new(),
    }
}

impl SimWorker {
    /// Registers, signs on and connects a worker with one slot.
    pub async fn connect(m: &TestManager, name: &str) -> Self {
        Self::connect_for(m, name, &["misc"]).await
    }

    /// Like `connect`, for the given task types.
    pub async fn connect_for(m: &TestManager, name: &str, task_types: &[&str]) -> Self {
        let (id, token) = m.register(name).await;
        let mut client = m.grpc().await;
        let mut sign_on = sign_on_request(name, 1);
        sign_on.supported_task_types = task_types.iter().map(|t| t.to_string()).collect();
        let answer = client
            .sign_on(authed(sign_on, &id, &token))
            .await
            .expect("signs on")
            .into_inner();
        let stream = client
            .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
            .await
            .expect("connects")
            .into_inner();
        Self {
            id,
            token,
            name: name.into(),
            client,
            stream,
            sequence: answer.last_update_sequence,
        }
    }

    /// The next instruction, failing the test after 10 s.
    pub async fn next_instruction(&mut self) -> Kind {
        let message = tokio::time::timeout(
            Duration::from_secs(10),
            crate::common::next_message(&mut self.stream),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: no instruction within 10 s", self.name))
        .expect("stream healthy")
        .expect("stream open");
        message.kind.expect("instruction has a kind")
    }

    pub async fn next_assignment(&mut self) -> v1::AssignTask {
        match self.next_instruction().await {
            Kind::AssignTask(task) => task,
            other => panic!("{}: expected an assignment, got {other:?}", self.name),
        }
    }

    /// Whether an instruction arrives within `wait` (used to show that none does).
    pub async fn instruction_within(&mut self, wait: Duration) -> Option<Kind> {
        match tokio::time::timeout(wait, crate::common::next_message(&mut self.stream)).await {
            Ok(Ok(Some(message))) => message.kind,
            _ => None,
        }
    }

    pub async fn report(
        &mut self,
        task: &v1::AssignTask,
        status: v1::TaskStatus,
        failure: Option<v1::Failure>,
    ) -> Result<v1::TaskUpdateAck, tonic::Status> {
        self.sequence += 1;
        let update = v1::TaskUpdate {
            task_id: task.task_id.clone(),
            lease_epoch: task.lease_epoch,
            sequence: self.sequence,
            status: status as i32,
            failure,
            ..Default::default()
        };
        self.client
            .update_task(authed(update, &self.id, &self.token))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn complete(&mut self, task: &v1::AssignTask) {
        self.report(task, v1::TaskStatus::Completed, None)
            .await
            .expect("completion accepted");
    }

    pub async fn fail(&mut self, task: &v1::AssignTask, fault: v1::FaultClass) {
        let failure = v1::Failure {
            fault_class: fault as i32,
            message: format!("{} gave up", self.name),
            last_log_lines: vec!["the last line".into()],
        };
        self.report(task, v1::TaskStatus::Failed, Some(failure))
            .await
            .expect("failure accepted");
    }
}

/// The next assignment to any of `workers`: (index of the worker, task).
pub async fn next_assignment_any(workers: &mut [SimWorker]) -> (usize, v1::AssignTask) {
    let waits = workers
        .iter_mut()
        .map(|w| Box::pin(async move { crate::common::next_message(&mut w.stream).await }));
    let (result, index, _) =
        tokio::time::timeout(Duration::from_secs(10), futures::future::select_all(waits))
            .await
            .expect("some worker gets an instruction within 10 s");
    let message = result.expect("stream healthy").expect("stream open");
    match message.kind {
        Some(Kind::AssignTask(task)) => (index, task),
        other => panic!("expected an assignment, got {other:?}"),
    }
}
