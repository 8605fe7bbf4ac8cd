//! Simulated workers for the bench: real protocol clients (register, sign on, open the
//! instruction stream) whose tasks are no-ops — each assignment is reported completed at
//! once (unless told to hold tasks, or given a task time). Every assignment and abort is
//! timestamped.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use castanet_protocol::WorkerServiceClient;
use castanet_protocol::v1::{self, instruction::Kind};
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// What a simulated worker saw, and when.
#[derive(Clone, Debug)]
pub enum SimEvent {
    Assigned {
        worker: usize,
        task_id: String,
        at: Instant,
    },
    /// The worker sent its completion of `task_id` at `sent_at` (and it was acknowledged).
    Completed {
        worker: usize,
        task_id: String,
        sent_at: Instant,
    },
    Aborted {
        task_id: String,
        at: Instant,
    },
}

/// How long a simulated worker takes for a task (it sleeps that long before reporting).
pub type TaskTime = Arc<dyn Fn(&v1::AssignTask) -> std::time::Duration + Send + Sync>;

/// The simulated farm: its event feed and a switch that makes workers hold their tasks.
pub struct SimFarm {
    /// Workers started while this is set take that long per task (None: no time at all).
    pub task_time: Option<TaskTime>,
    pub events: mpsc::UnboundedReceiver<SimEvent>,
    /// While set, workers keep assigned tasks instead of completing them.
    pub hold: Arc<AtomicBool>,
    sender: mpsc::UnboundedSender<SimEvent>,
    /// Workers started so far.
    pub size: usize,
}

fn authed<T>(message: T, id: &str, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let md = request.metadata_mut();
    md.insert(castanet_protocol::WORKER_ID_HEADER, id.parse()?);
    md.insert(
        castanet_protocol::AUTHORIZATION_HEADER,
        format!("Bearer {token}").parse()?,
    );
    Ok(request)
}

/// An empty farm; `grow` adds workers.
pub fn new_farm() -> SimFarm {
    let (sender, events) = mpsc::unbounded_channel();
    SimFarm {
        task_time: None,
        events,
        hold: Arc::new(AtomicBool::new(false)),
        sender,
        size: 0,
    }
}

/// Starts `count` more workers against `url`, `per_connection` of them sharing one
/// HTTP/2 connection (keeps the bench within the default file-descriptor limit).
pub async fn grow(
    farm: &mut SimFarm,
    url: &str,
    secret: &str,
    count: usize,
    per_connection: usize,
) -> anyhow::Result<()> {
    let mut channel = None;
    for offset in 0..count {
        if offset % per_connection.max(1) == 0 {
            channel = Some(
                Channel::from_shared(url.to_string())?
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .with_context(|| format!("connecting to {url}"))?,
            );
        }
        let index = farm.size;
        let client = WorkerServiceClient::new(channel.clone().context("channel")?);
        let stream = sign_on(client.clone(), secret, index).await?;
        tokio::spawn(run_worker(
            index,
            client,
            stream,
            farm.sender.clone(),
            farm.hold.clone(),
            farm.task_time.clone(),
        ));
        farm.size += 1;
    }
    Ok(())
}

struct Session {
    id: String,
    token: String,
    stream: tonic::Streaming<v1::Instruction>,
}

async fn sign_on(
    mut client: WorkerServiceClient<Channel>,
    secret: &str,
    index: usize,
) -> anyhow::Result<Session> {
    let name = format!("bench-{index:04}");
    let registered = client
        .register(v1::RegisterRequest {
            registration_secret: secret.to_string(),
            name: name.clone(),
            platform: "linux".into(),
        })
        .await?
        .into_inner();
    let (id, token) = (registered.worker_id, registered.token);
    let sign_on = v1::SignOnRequest {
        name,
        platform: "linux".into(),
        supported_task_types: vec!["misc".into()],
        slots: 1,
        capabilities: None,
        software_version: "bench".into(),
        can_restart: false,
        self_check_problems: Vec::new(),
        storage_mirror: String::new(),
    };
    client.sign_on(authed(sign_on, &id, &token)?).await?;
    let stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token)?)
        .await?
        .into_inner();
    Ok(Session { id, token, stream })
}

async fn run_worker(
    index: usize,
    mut client: WorkerServiceClient<Channel>,
    mut session: Session,
    events: mpsc::UnboundedSender<SimEvent>,
    hold: Arc<AtomicBool>,
    task_time: Option<TaskTime>,
) {
    let mut sequence = 0u64;
    while let Ok(Some(instruction)) = session.stream.message().await {
        let at = Instant::now();
        match instruction.kind {
            Some(Kind::AssignTask(task)) => {
                let _ = events.send(SimEvent::Assigned {
                    worker: index,
                    task_id: task.task_id.clone(),
                    at,
                });
                if hold.load(Ordering::Relaxed) {
                    continue;
                }
                if let Some(time) = &task_time {
                    tokio::time::sleep(time(&task)).await;
                }
                sequence += 1;
                let update = v1::TaskUpdate {
                    task_id: task.task_id.clone(),
                    lease_epoch: task.lease_epoch,
                    sequence,
                    status: v1::TaskStatus::Completed as i32,
                    ..Default::default()
                };
                let Ok(request) = authed(update, &session.id, &session.token) else {
                    return;
                };
                let sent_at = Instant::now();
                if client.update_task(request).await.is_err() {
                    continue;
                }
                let _ = events.send(SimEvent::Completed {
                    worker: index,
                    task_id: task.task_id,
                    sent_at,
                });
            }
            Some(Kind::AbortTask(abort)) => {
                let _ = events.send(SimEvent::Aborted {
                    task_id: abort.task_id,
                    at,
                });
            }
            _ => {}
        }
    }
}
