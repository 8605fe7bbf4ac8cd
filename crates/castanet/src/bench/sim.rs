//! Simulated workers for the bench: real protocol clients (register, sign on, open the
//! instruction stream) whose tasks are no-ops — each assignment is reported completed at
//! once (unless told to hold tasks, or given a task time). Every assignment and abort is
//! timestamped. Workers of a farm told to `reconnect` sign on again when their stream ends
//! (a manager restart), with the real worker's backoff, listing the task whose completion
//! they could not deliver so the manager keeps it for them. A farm given a `standby`
//! manager follows the active one as a real worker given `--manager a,b` does.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use castanet_protocol::WorkerServiceClient;
use castanet_protocol::v1::{self, instruction::Kind};
use castanet_worker::failover::FailoverChannel;
use tokio::sync::mpsc;
use tonic::transport::Channel;

type Client = WorkerServiceClient<FailoverChannel>;

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
    /// The worker signed on again and opened a new instruction stream.
    Reattached {
        worker: usize,
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
    /// Workers started while this is set sign on again when their stream ends.
    pub reconnect: bool,
    /// The task types workers started now run.
    pub task_types: Vec<String>,
    /// A second manager on the same database that workers started now move to when the
    /// first is gone or refuses them as a standby.
    pub standby: Option<String>,
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
        reconnect: false,
        task_types: vec!["misc".into()],
        standby: None,
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
            channel = Some(connect(url, farm.standby.as_deref()).await?);
        }
        let channel = channel.clone().context("channel")?;
        let client = WorkerServiceClient::new(channel.clone());
        let session = sign_on(client.clone(), secret, farm.size, &farm.task_types).await?;
        farm.start(farm.size, client, channel, session);
        farm.size += 1;
    }
    Ok(())
}

/// Sign-on attempts of a worker of `grow_together` before the bench gives up.
const SIGN_ON_ATTEMPTS: u32 = 10;

/// Starts `count` more workers against `url` at once, each on its own connection, as a
/// farm's nodes come up together.
pub async fn grow_together(
    farm: &mut SimFarm,
    url: &str,
    secret: &str,
    count: usize,
) -> anyhow::Result<()> {
    let mut joining = tokio::task::JoinSet::new();
    for index in farm.size..farm.size + count {
        let (url, secret, types) = (url.to_string(), secret.to_string(), farm.task_types.clone());
        let standby = farm.standby.clone();
        joining.spawn(async move {
            // As a real worker does: a connection the busy manager could not take is retried.
            let mut backoff = castanet_worker::backoff::Backoff::default();
            let mut attempts = 0;
            loop {
                let signed_on = async {
                    let channel = connect(&url, standby.as_deref()).await?;
                    let client = WorkerServiceClient::new(channel.clone());
                    let session = sign_on(client.clone(), &secret, index, &types).await?;
                    anyhow::Ok((index, client, channel, session))
                };
                match signed_on.await {
                    Ok(worker) => return Ok(worker),
                    Err(e) if attempts >= SIGN_ON_ATTEMPTS => return Err(e),
                    Err(_) => {
                        attempts += 1;
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        });
    }
    while let Some(joined) = joining.join_next().await {
        let (index, client, channel, session) =
            joined.context("a simulated worker's sign-on")??;
        farm.start(index, client, channel, session);
    }
    farm.size += count;
    Ok(())
}

/// A channel to `url`, connected now, and to `standby` when given, connected when first used.
async fn connect(url: &str, standby: Option<&str>) -> anyhow::Result<FailoverChannel> {
    let active = Channel::from_shared(url.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let mut managers = vec![(url.to_string(), active)];
    if let Some(standby) = standby {
        let lazy = Channel::from_shared(standby.to_string())?
            .tcp_nodelay(true)
            .connect_lazy();
        managers.push((standby.to_string(), lazy));
    }
    Ok(FailoverChannel::new(managers))
}

impl SimFarm {
    /// Runs a signed-on worker.
    fn start(&self, index: usize, client: Client, managers: FailoverChannel, session: Session) {
        let worker = SimWorker {
            index,
            client,
            managers,
            session,
            events: self.sender.clone(),
            hold: self.hold.clone(),
            task_time: self.task_time.clone(),
            reconnect: self.reconnect,
            task_types: self.task_types.clone(),
        };
        tokio::spawn(worker.run());
    }
}

struct Session {
    id: String,
    token: String,
    stream: tonic::Streaming<v1::Instruction>,
}

async fn sign_on(
    mut client: Client,
    secret: &str,
    index: usize,
    task_types: &[String],
) -> anyhow::Result<Session> {
    let registered = client
        .register(v1::RegisterRequest {
            registration_secret: secret.to_string(),
            name: sim_name(index),
            platform: "linux".into(),
        })
        .await?
        .into_inner();
    let (id, token) = (registered.worker_id, registered.token);
    let stream = attach(&mut client, &id, &token, index, task_types, Vec::new()).await?;
    Ok(Session { id, token, stream })
}

fn sim_name(index: usize) -> String {
    format!("bench-{index:04}")
}

/// Signs the registered worker on and opens its instruction stream, listing `running`.
async fn attach(
    client: &mut Client,
    id: &str,
    token: &str,
    index: usize,
    task_types: &[String],
    running: Vec<v1::TaskLease>,
) -> anyhow::Result<tonic::Streaming<v1::Instruction>> {
    let sign_on = v1::SignOnRequest {
        name: sim_name(index),
        platform: "linux".into(),
        supported_task_types: task_types.to_vec(),
        slots: 1,
        capabilities: None,
        software_version: "bench".into(),
        can_restart: false,
        self_check_problems: Vec::new(),
        storage_mirror: String::new(),
    };
    client.sign_on(authed(sign_on, id, token)?).await?;
    let connect = v1::ConnectRequest {
        running_tasks: running,
    };
    Ok(client
        .connect_worker(authed(connect, id, token)?)
        .await?
        .into_inner())
}

struct SimWorker {
    index: usize,
    client: Client,
    /// Which manager `client` calls go to.
    managers: FailoverChannel,
    session: Session,
    events: mpsc::UnboundedSender<SimEvent>,
    hold: Arc<AtomicBool>,
    task_time: Option<TaskTime>,
    reconnect: bool,
    task_types: Vec<String>,
}

impl SimWorker {
    async fn run(mut self) {
        let mut sequence = 0u64;
        // A completion that could not be delivered (the manager went away): listed at the
        // next sign-on and sent again.
        let mut undelivered: Option<v1::TaskUpdate> = None;
        loop {
            while undelivered.is_none() {
                let Ok(Some(instruction)) = self.session.stream.message().await else {
                    break;
                };
                undelivered = self.follow(instruction, &mut sequence).await;
            }
            if !self.reconnect {
                return;
            }
            self.reattach(undelivered.as_ref()).await;
            if let Some(update) = undelivered.take() {
                undelivered = self.complete(update).await;
            }
        }
    }

    /// Acts on one instruction; the completion it could not deliver, if any.
    async fn follow(
        &mut self,
        instruction: v1::Instruction,
        sequence: &mut u64,
    ) -> Option<v1::TaskUpdate> {
        let at = Instant::now();
        match instruction.kind {
            Some(Kind::AssignTask(task)) => {
                let _ = self.events.send(SimEvent::Assigned {
                    worker: self.index,
                    task_id: task.task_id.clone(),
                    at,
                });
                if self.hold.load(Ordering::Relaxed) {
                    return None;
                }
                if let Some(time) = &self.task_time {
                    tokio::time::sleep(time(&task)).await;
                }
                *sequence += 1;
                let update = v1::TaskUpdate {
                    task_id: task.task_id,
                    lease_epoch: task.lease_epoch,
                    sequence: *sequence,
                    status: v1::TaskStatus::Completed as i32,
                    ..Default::default()
                };
                self.complete(update).await
            }
            Some(Kind::AbortTask(abort)) => {
                let _ = self.events.send(SimEvent::Aborted {
                    task_id: abort.task_id,
                    at,
                });
                None
            }
            _ => None,
        }
    }

    /// Sends a completion; gives it back when the manager could not be reached (the manager's
    /// refusal, e.g. of a lost lease, drops it).
    async fn complete(&mut self, update: v1::TaskUpdate) -> Option<v1::TaskUpdate> {
        let task_id = update.task_id.clone();
        let request = authed(update.clone(), &self.session.id, &self.session.token).ok()?;
        let sent_at = Instant::now();
        match self.client.update_task(request).await {
            Ok(_) => {
                let _ = self.events.send(SimEvent::Completed {
                    worker: self.index,
                    task_id,
                    sent_at,
                });
                None
            }
            // The connection went (a manager restart or death): the update may or may not have
            // landed. Told apart from a refusal as the real worker does.
            Err(status) if castanet_worker::is_transient(&status) => Some(update),
            Err(_) => None,
        }
    }

    /// Signs on again until a manager answers, listing the undelivered task; each refusal
    /// (gone, or a standby) moves on to the next manager, as a real worker does.
    async fn reattach(&mut self, undelivered: Option<&v1::TaskUpdate>) {
        let running: Vec<v1::TaskLease> = undelivered
            .map(|update| v1::TaskLease {
                task_id: update.task_id.clone(),
                lease_epoch: update.lease_epoch,
            })
            .into_iter()
            .collect();
        let mut backoff = castanet_worker::backoff::Backoff::default();
        loop {
            tokio::time::sleep(backoff.next_delay()).await;
            let (id, token) = (&self.session.id, &self.session.token);
            if let Ok(stream) = attach(
                &mut self.client,
                id,
                token,
                self.index,
                &self.task_types,
                running.clone(),
            )
            .await
            {
                self.session.stream = stream;
                let _ = self.events.send(SimEvent::Reattached {
                    worker: self.index,
                    at: Instant::now(),
                });
                return;
            }
            self.managers.next();
        }
    }
}
