//! The worker protocol service. Handlers only translate: protobuf into an operation's input
//! (`ops/`), its result into protobuf, its errors into gRPC statuses (`translate.rs`).
mod auth;
mod full_disk;
mod instruction_stream;
mod reconnect;
mod transfers;
mod translate;
mod uploads;

pub use auth::{hash_token, new_token};

use std::pin::Pin;

use castanet_protocol::v1;
use castanet_protocol::{WorkerService, WorkerServiceServer};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::AppState;
use crate::ops::worker_sessions::{self, SessionError};
use crate::ops::{self, task_updates};
use crate::store::StoreError;
use full_disk::FullSpell;
use std::sync::Arc;
use uploads::LogTouches;

pub struct WorkerApi {
    state: AppState,
    memory: Arc<CallMemory>,
}

/// What the service remembers between calls. It belongs to one manager, not to the
/// process: two managers in one process (tests, a benchmark) must not share it.
struct CallMemory {
    /// The manager's database disk, refusing worker calls' writes.
    database_disk: FullSpell,
    /// The storage directory, refusing task log chunks.
    storage_directory: FullSpell,
    log_touches: LogTouches,
}

impl WorkerApi {
    pub fn server(state: AppState) -> WorkerServiceServer<Self> {
        let memory = Arc::new(CallMemory {
            database_disk: FullSpell::new("database disk"),
            storage_directory: FullSpell::new("storage directory"),
            log_touches: LogTouches::default(),
        });
        WorkerServiceServer::new(Self { state, memory }).max_decoding_message_size(32 * 1024 * 1024)
    }

    /// A store error as a status; a full database disk starts (or goes on with) a spell.
    fn store_status(&self, e: StoreError) -> Status {
        if e.is_disk_full() {
            self.memory.database_disk.refused(&e);
        }
        translate::store_status(e)
    }

    fn session_status(&self, e: SessionError) -> Status {
        match e {
            SessionError::Store(e) => self.store_status(e),
            other => translate::session_status(other),
        }
    }
}

fn peer_address<T>(request: &Request<T>) -> String {
    // Behind the axum router (plain or TLS) the peer comes as axum's `ConnectInfo`.
    request
        .remote_addr()
        .or_else(|| {
            request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0)
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

type InstructionStream = Pin<Box<dyn Stream<Item = Result<v1::Instruction, Status>> + Send>>;

/// The calls themselves; [`WorkerService`] below answers with them, each status bounded.
impl WorkerApi {
    async fn answer_register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let address = peer_address(&request);
        let body = request.into_inner();
        auth::check_registration_secret(
            &self.state,
            &body.registration_secret,
            &address,
            &body.name,
        )
        .await?;
        let token = new_token();
        let registration = translate::registration(body, address, &token);
        let (worker_id, effects) = worker_sessions::register(&self.state, &registration)
            .await
            .map_err(|e| self.session_status(e))?;
        ops::apply(effects, &self.state).await;
        Ok(Response::new(v1::RegisterResponse { worker_id, token }))
    }

    async fn answer_sign_on(
        &self,
        request: Request<v1::SignOnRequest>,
    ) -> Result<Response<v1::SignOnResponse>, Status> {
        let worker_id = auth::authenticate(&self.state.store, &request).await?;
        let address = peer_address(&request);
        let info = translate::sign_on_info(request.into_inner(), address);
        let (row, effects) = worker_sessions::sign_on(&self.state, &worker_id, &info)
            .await
            .map_err(|e| self.session_status(e))?;
        ops::apply(effects, &self.state).await;
        let response = translate::sign_on_response(&row, &self.state.config);
        Ok(Response::new(response))
    }

    async fn answer_sign_off(
        &self,
        request: Request<v1::SignOffRequest>,
    ) -> Result<Response<v1::SignOffResponse>, Status> {
        let worker_id = auth::authenticate(&self.state.store, &request).await?;
        let reason = request.into_inner().reason;
        let effects = worker_sessions::sign_off(&self.state, &worker_id, &reason)
            .await
            .map_err(|e| self.session_status(e))?;
        ops::apply(effects, &self.state).await;
        Ok(Response::new(v1::SignOffResponse {}))
    }

    async fn answer_connect_worker(
        &self,
        request: Request<v1::ConnectRequest>,
    ) -> Result<Response<InstructionStream>, Status> {
        let worker_id = auth::authenticate(&self.state.store, &request).await?;
        let listed = request.into_inner().running_tasks;
        let leases = translate::leases(&listed);
        let (reconnected, effects) = worker_sessions::connect(&self.state, &worker_id, &leases)
            .await
            .map_err(|e| self.session_status(e))?;
        ops::apply(effects, &self.state).await;
        let stream = reconnect::open_stream(&self.state, reconnected, &listed).await;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn answer_update_task(
        &self,
        request: Request<v1::TaskUpdate>,
    ) -> Result<Response<v1::TaskUpdateAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let body = request.into_inner();
        if let Some(tail) = &body.log_tail {
            let epoch = body.lease_epoch;
            uploads::store_log_tail(self, &worker_id, &body.task_id, epoch, tail).await?;
        }
        let report = translate::task_report(worker_id, &body);
        let (applied, effects) = task_updates::update_task(&self.state, &report)
            .await
            .map_err(|e| self.store_status(e))?;
        self.memory.database_disk.stored();
        ops::apply(effects, &self.state).await;
        Ok(Response::new(v1::TaskUpdateAck { applied }))
    }

    async fn answer_upload_log(
        &self,
        request: Request<Streaming<v1::LogChunk>>,
    ) -> Result<Response<v1::UploadLogAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let bytes_written = uploads::receive_log(self, &worker_id, request.into_inner()).await?;
        Ok(Response::new(v1::UploadLogAck { bytes_written }))
    }

    async fn answer_upload_last_rendered(
        &self,
        request: Request<v1::LastRendered>,
    ) -> Result<Response<v1::LastRenderedAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        uploads::store_last_rendered(self, &worker_id, request.into_inner()).await?;
        Ok(Response::new(v1::LastRenderedAck {}))
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type ConnectWorkerStream = InstructionStream;
    type FetchFileStream = transfers::FileStream;

    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        self.answer_register(request).await.map_err(bounded_status)
    }

    async fn sign_on(
        &self,
        request: Request<v1::SignOnRequest>,
    ) -> Result<Response<v1::SignOnResponse>, Status> {
        self.answer_sign_on(request).await.map_err(bounded_status)
    }

    async fn sign_off(
        &self,
        request: Request<v1::SignOffRequest>,
    ) -> Result<Response<v1::SignOffResponse>, Status> {
        self.answer_sign_off(request).await.map_err(bounded_status)
    }

    async fn connect_worker(
        &self,
        request: Request<v1::ConnectRequest>,
    ) -> Result<Response<Self::ConnectWorkerStream>, Status> {
        self.answer_connect_worker(request)
            .await
            .map_err(bounded_status)
    }

    async fn update_task(
        &self,
        request: Request<v1::TaskUpdate>,
    ) -> Result<Response<v1::TaskUpdateAck>, Status> {
        self.answer_update_task(request)
            .await
            .map_err(bounded_status)
    }

    async fn upload_log(
        &self,
        request: Request<Streaming<v1::LogChunk>>,
    ) -> Result<Response<v1::UploadLogAck>, Status> {
        self.answer_upload_log(request)
            .await
            .map_err(bounded_status)
    }

    async fn upload_last_rendered(
        &self,
        request: Request<v1::LastRendered>,
    ) -> Result<Response<v1::LastRenderedAck>, Status> {
        self.answer_upload_last_rendered(request)
            .await
            .map_err(bounded_status)
    }

    async fn list_inputs(
        &self,
        request: Request<v1::ListInputsRequest>,
    ) -> Result<Response<v1::ListInputsResponse>, Status> {
        self.answer_list_inputs(request)
            .await
            .map_err(bounded_status)
    }

    async fn fetch_file(
        &self,
        request: Request<v1::FetchFileRequest>,
    ) -> Result<Response<Self::FetchFileStream>, Status> {
        self.answer_fetch_file(request)
            .await
            .map_err(bounded_status)
    }

    async fn output_upload_status(
        &self,
        request: Request<v1::OutputFile>,
    ) -> Result<Response<v1::OutputUploadState>, Status> {
        self.answer_output_upload_status(request)
            .await
            .map_err(bounded_status)
    }

    async fn upload_output(
        &self,
        request: Request<Streaming<v1::OutputChunk>>,
    ) -> Result<Response<v1::OutputUploadState>, Status> {
        self.answer_upload_output(request)
            .await
            .map_err(bounded_status)
    }

    async fn report_transfers(
        &self,
        request: Request<v1::TransferTotals>,
    ) -> Result<Response<v1::TransferTotalsAck>, Status> {
        self.answer_report_transfers(request)
            .await
            .map_err(bounded_status)
    }
}

/// Status messages often quote what the worker sent (a task id, a MIME type, a name) and travel
/// in an HTTP/2 header: a quoted 64 KiB string made a header the worker's side refused, and the
/// whole connection closed. Every message is cut to this many bytes.
const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

fn bounded_status(status: Status) -> Status {
    let message = status.message();
    if message.len() <= MAX_STATUS_MESSAGE_BYTES {
        return status;
    }
    let mut end = MAX_STATUS_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Status::new(status.code(), format!("{}…", &message[..end]))
}
