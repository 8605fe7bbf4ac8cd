//! Shared by the worker's session tests: a worker library instance run against the fake
//! manager, and helpers to assign tasks and read the manager's events.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use castanet_protocol::v1::instruction::Kind;
use castanet_protocol::v1::{AssignTask, Command, TaskLease, TaskUpdate};
use castanet_worker::{WorkerConfig, WorkerError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fake_manager::{Event, Handle};

pub struct Worker {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), WorkerError>>,
}

impl Worker {
    pub fn start(manager: &Handle, data_dir: &Path, secret: Option<&str>) -> Self {
        Self::start_with(manager, data_dir, secret, |_| {})
    }

    /// Starts a worker whose configuration `adjust` changes first.
    pub fn start_with(
        manager: &Handle,
        data_dir: &Path,
        secret: Option<&str>,
        adjust: impl FnOnce(&mut WorkerConfig),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("castanet_worker=debug")
            .with_test_writer()
            .try_init();
        let mut config =
            WorkerConfig::with_defaults(manager.addr.to_string(), data_dir.to_path_buf());
        config.registration_secret = secret.map(str::to_string);
        config.name = "test-worker".into();
        config.slots = 2;
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(castanet_worker::run(config, shutdown.clone()));
        Self { shutdown, task }
    }

    /// Cancels the worker and returns what `run` returned.
    pub async fn stop(self) -> Result<(), WorkerError> {
        self.shutdown.cancel();
        self.finished().await
    }

    pub async fn finished(self) -> Result<(), WorkerError> {
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => panic!("the worker panicked: {join}"),
            Err(_) => panic!("the worker did not stop within 10 s"),
        }
    }
}

pub fn task(id: &str, lease_epoch: u64, commands: &[(&str, &str)]) -> Kind {
    Kind::AssignTask(AssignTask {
        task_id: id.into(),
        task_name: format!("{id} name"),
        task_type: "misc".into(),
        job_id: "job-1".into(),
        job_name: "job one".into(),
        commands: commands
            .iter()
            .map(|(name, params)| Command {
                name: name.to_string(),
                parameters_json: params.to_string(),
                total_step_count: 0,
            })
            .collect(),
        lease_epoch,
        steps_total: commands.len() as u32,
        ..AssignTask::default()
    })
}

pub fn update_of(event: &Event) -> Option<TaskUpdate> {
    match event {
        Event::Update(update) => Some(update.clone()),
        _ => None,
    }
}

/// Waits until the worker is connected and returns the leases it listed.
pub async fn connected(manager: &mut Handle) -> Vec<TaskLease> {
    manager
        .wait_for(|e| match e {
            Event::Connect { running } => Some(running.clone()),
            _ => None,
        })
        .await
}
