//! A tiny in-process stand-in for the manager's `WorkerService`, recording every call as an
//! event the tests wait on. It checks only what the worker must get right; the real manager
//! is exercised by the castanet crate's end-to-end tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use castanet_protocol::v1::*;
use castanet_protocol::{
    AUTHORIZATION_HEADER, WORKER_ID_HEADER, WorkerService, WorkerServiceServer,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Code, Request, Response, Status, Streaming};

pub const SECRET: &str = "open-sesame";

/// One call the worker made.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Register {
        name: String,
        platform: String,
    },
    SignOn(SignOnRequest),
    Connect {
        running: Vec<TaskLease>,
    },
    Update(TaskUpdate),
    Log(LogChunk),
    LogClosed {
        task_id: String,
    },
    SignOff {
        reason: String,
    },
    /// An accepted `UploadLastRendered`.
    Preview {
        task_id: String,
        frame: Option<i64>,
    },
}

/// Knobs a test turns before (or while) the worker talks to the fake.
#[derive(Default)]
pub struct Script {
    /// SignOnResponse.last_update_sequence.
    pub last_update_sequence: u64,
    /// How many of the next UpdateTask calls fail with UNAVAILABLE.
    pub failing_updates: u32,
    /// SignOnResponse.task_keepalive_ms (0: no keep-alives).
    pub task_keepalive_ms: u32,
    /// SignOnResponse.fence_after_ms (0: no fence).
    pub fence_after_ms: u32,
    /// How many of the next UploadLastRendered calls fail with UNAVAILABLE.
    pub failing_previews: u32,
}

#[derive(Default)]
struct State {
    script: Script,
    /// worker id → token.
    workers: HashMap<String, String>,
    /// Registrations so far (numbers the ids).
    registrations: u32,
    /// The open instruction stream.
    instructions: Option<mpsc::Sender<Result<Instruction, Status>>>,
}

#[derive(Clone)]
pub struct FakeManager {
    state: Arc<Mutex<State>>,
    events: mpsc::UnboundedSender<Event>,
}

/// The test's side: the address to point the worker at, and the calls it made.
pub struct Handle {
    pub addr: SocketAddr,
    fake: FakeManager,
    events: mpsc::UnboundedReceiver<Event>,
    server: Option<ServerThread>,
}

pub async fn start(script: Script) -> Handle {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (events_tx, events) = mpsc::unbounded_channel();
    let fake = FakeManager {
        state: Arc::new(Mutex::new(State {
            script,
            ..State::default()
        })),
        events: events_tx,
    };
    let server = Some(ServerThread::spawn(fake.clone(), listener));
    Handle {
        addr,
        fake,
        events,
        server,
    }
}

/// The fake's gRPC server on a runtime of its own, so that stopping it drops every
/// connection at once, like a manager process that exits.
struct ServerThread {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ServerThread {
    fn spawn(fake: FakeManager, listener: std::net::TcpListener) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                listener
                    .set_nonblocking(true)
                    .expect("non-blocking listener");
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let serve = tonic::transport::Server::builder()
                    .add_service(WorkerServiceServer::new(fake))
                    .serve_with_incoming(TcpListenerStream::new(listener));
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here closes the listener and every connection.
        });
        Self { stop, thread }
    }

    async fn kill(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("join the server thread")
            .expect("the server thread ended cleanly");
    }
}

impl Handle {
    /// The next event, failing the test if none arrives within 10 s.
    pub async fn next(&mut self) -> Event {
        match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the fake manager is gone"),
            Err(_) => panic!("no event from the worker within 10 s"),
        }
    }

    /// Skips events until `pick` accepts one.
    pub async fn wait_for<T>(&mut self, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        loop {
            let event = self.next().await;
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    /// Every event already recorded, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }

    /// Pushes an instruction down the open stream.
    pub async fn instruct(&self, kind: instruction::Kind) {
        let sender = self
            .fake
            .lock()
            .instructions
            .clone()
            .expect("the worker is connected");
        sender
            .send(Ok(Instruction { kind: Some(kind) }))
            .await
            .expect("the instruction stream is open");
    }

    /// Forgets the worker and ends its stream with UNAUTHENTICATED, as deleting it would.
    pub async fn delete_worker(&self, id: &str) {
        let sender = {
            let mut state = self.fake.lock();
            state.workers.remove(id);
            state.instructions.take()
        };
        if let Some(sender) = sender {
            let _ = sender
                .send(Err(Status::unauthenticated("worker deleted")))
                .await;
        }
    }

    /// Ends the instruction stream, as a manager restart would.
    pub fn hang_up(&self) {
        self.fake.lock().instructions = None;
    }

    /// Stops the server abruptly (every connection drops), keeping what it knows.
    pub async fn kill_server(&mut self) {
        self.hang_up();
        if let Some(server) = self.server.take() {
            server.kill().await;
        }
    }

    /// Serves again on the same address, as a restarted manager would.
    pub fn restart_server(&mut self) {
        let listener = std::net::TcpListener::bind(self.addr).expect("bind the same address again");
        self.server = Some(ServerThread::spawn(self.fake.clone(), listener));
    }

    /// Registers a worker the fake will accept, as if it had registered earlier.
    pub fn know_worker(&self, id: &str, token: &str) {
        self.fake.lock().workers.insert(id.into(), token.into());
    }
}

impl FakeManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Checks the worker id and bearer token of a call.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let id = header(WORKER_ID_HEADER).ok_or_else(|| Status::unauthenticated("no worker id"))?;
        let auth =
            header(AUTHORIZATION_HEADER).ok_or_else(|| Status::unauthenticated("no token"))?;
        match self.lock().workers.get(&id) {
            Some(token) if auth == format!("Bearer {token}") => Ok(()),
            _ => Err(Status::unauthenticated("unknown worker")),
        }
    }
}

#[tonic::async_trait]
impl WorkerService for FakeManager {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        if request.registration_secret != SECRET {
            return Err(Status::permission_denied("wrong registration secret"));
        }
        self.record(Event::Register {
            name: request.name,
            platform: request.platform,
        });
        let mut state = self.lock();
        state.registrations += 1;
        let worker_id = format!("worker-{}", state.registrations);
        let token = format!("token-{}", state.registrations);
        state.workers.insert(worker_id.clone(), token.clone());
        Ok(Response::new(RegisterResponse { worker_id, token }))
    }

    async fn sign_on(
        &self,
        request: Request<SignOnRequest>,
    ) -> Result<Response<SignOnResponse>, Status> {
        self.authenticate(&request)?;
        self.record(Event::SignOn(request.into_inner()));
        let script = &self.lock().script;
        Ok(Response::new(SignOnResponse {
            requested_status: WorkerStatus::Awake as i32,
            last_update_sequence: script.last_update_sequence,
            task_keepalive_ms: script.task_keepalive_ms,
            fence_after_ms: script.fence_after_ms,
        }))
    }

    async fn sign_off(
        &self,
        request: Request<SignOffRequest>,
    ) -> Result<Response<SignOffResponse>, Status> {
        self.authenticate(&request)?;
        self.record(Event::SignOff {
            reason: request.into_inner().reason,
        });
        Ok(Response::new(SignOffResponse {}))
    }

    type ConnectWorkerStream = ReceiverStream<Result<Instruction, Status>>;
    type FetchFileStream = ReceiverStream<Result<FileChunk, Status>>;

    // Transfers of workers without shared storage are tested against the real manager
    // (crates/castanet/tests/no_shared_storage.rs); these workers see shared storage.
    async fn list_inputs(
        &self,
        _request: Request<ListInputsRequest>,
    ) -> Result<Response<ListInputsResponse>, Status> {
        Err(Status::unimplemented("no transfers in the fake manager"))
    }

    async fn fetch_file(
        &self,
        _request: Request<FetchFileRequest>,
    ) -> Result<Response<Self::FetchFileStream>, Status> {
        Err(Status::unimplemented("no transfers in the fake manager"))
    }

    async fn output_upload_status(
        &self,
        _request: Request<OutputFile>,
    ) -> Result<Response<OutputUploadState>, Status> {
        Err(Status::unimplemented("no transfers in the fake manager"))
    }

    async fn upload_output(
        &self,
        _request: Request<Streaming<OutputChunk>>,
    ) -> Result<Response<OutputUploadState>, Status> {
        Err(Status::unimplemented("no transfers in the fake manager"))
    }

    async fn report_transfers(
        &self,
        _request: Request<TransferTotals>,
    ) -> Result<Response<TransferTotalsAck>, Status> {
        Err(Status::unimplemented("no transfers in the fake manager"))
    }

    async fn connect_worker(
        &self,
        request: Request<ConnectRequest>,
    ) -> Result<Response<Self::ConnectWorkerStream>, Status> {
        self.authenticate(&request)?;
        let (tx, rx) = mpsc::channel(16);
        self.lock().instructions = Some(tx);
        self.record(Event::Connect {
            running: request.into_inner().running_tasks,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn update_task(
        &self,
        request: Request<TaskUpdate>,
    ) -> Result<Response<TaskUpdateAck>, Status> {
        self.authenticate(&request)?;
        let update = request.into_inner();
        let mut state = self.lock();
        // Log lines that go with an update are stored before it, as one more chunk.
        if state.script.failing_updates == 0
            && let Some(tail) = &update.log_tail
        {
            self.record(Event::Log(LogChunk {
                task_id: update.task_id.clone(),
                lease_epoch: update.lease_epoch,
                text: tail.text.clone(),
                offset: tail.offset,
            }));
            self.record(Event::LogClosed {
                task_id: update.task_id.clone(),
            });
        }
        self.record(Event::Update(update.clone()));
        if state.script.failing_updates > 0 {
            state.script.failing_updates -= 1;
            return Err(Status::new(Code::Unavailable, "manager restarting"));
        }
        let applied = update.sequence > state.script.last_update_sequence;
        state.script.last_update_sequence = state.script.last_update_sequence.max(update.sequence);
        Ok(Response::new(TaskUpdateAck { applied }))
    }

    async fn upload_log(
        &self,
        request: Request<Streaming<LogChunk>>,
    ) -> Result<Response<UploadLogAck>, Status> {
        self.authenticate(&request)?;
        let mut stream = request.into_inner();
        let mut bytes = 0;
        let mut task_id = String::new();
        while let Some(chunk) = stream.message().await? {
            bytes += chunk.text.len() as u64;
            task_id.clone_from(&chunk.task_id);
            self.record(Event::Log(chunk));
        }
        self.record(Event::LogClosed { task_id });
        Ok(Response::new(UploadLogAck {
            bytes_written: bytes,
        }))
    }

    async fn upload_last_rendered(
        &self,
        request: Request<LastRendered>,
    ) -> Result<Response<LastRenderedAck>, Status> {
        self.authenticate(&request)?;
        let mut state = self.lock();
        if state.script.failing_previews > 0 {
            state.script.failing_previews -= 1;
            return Err(Status::new(Code::Unavailable, "manager restarting"));
        }
        let preview = request.into_inner();
        self.record(Event::Preview {
            task_id: preview.task_id,
            frame: preview.frame,
        });
        Ok(Response::new(LastRenderedAck {}))
    }
}
