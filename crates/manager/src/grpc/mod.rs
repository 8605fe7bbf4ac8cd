//! The worker protocol service. Handlers only translate between protobuf and the
//! store/dispatcher, and map errors to gRPC statuses.
mod auth;
mod full_disk;
mod instruction_stream;
mod reconnect;
mod uploads;

pub use auth::{hash_token, new_token};

use std::pin::Pin;

use castanet_protocol::v1::{self, TaskStatus as WireTaskStatus};
use castanet_protocol::{WorkerService, WorkerServiceServer};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::AppState;
use crate::events::Event;
use crate::scheduler::WorkerSession;
use crate::state::{TaskStatus, WorkerStatus};
use crate::store::{SignOn, StoreError, WorkerTaskUpdate};

pub struct WorkerApi {
    state: AppState,
}

impl WorkerApi {
    pub fn server(state: AppState) -> WorkerServiceServer<Self> {
        WorkerServiceServer::new(Self { state }).max_decoding_message_size(32 * 1024 * 1024)
    }
}

pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(m) => Status::not_found(m),
        StoreError::LeaseLost(m) | StoreError::Refused(m) => Status::failed_precondition(m),
        // Workers retry it and keep what they sent (journal, log spool) meanwhile.
        full if full.is_disk_full() => {
            full_disk::DATABASE_DISK.refused(&full);
            Status::resource_exhausted(format!(
                "the manager's database disk is full; nothing was stored: {full}"
            ))
        }
        other => {
            tracing::error!("{other}");
            Status::internal(other.to_string())
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
        // The config's secret, or its rotated replacement (store/registration_secret.rs).
        let secret = self
            .state
            .store
            .registration_secret(&self.state.config.registration_secret)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if !auth::secrets_match(&body.registration_secret, &secret.secret) {
            tracing::warn!(%address, name = %body.name, "registration refused: wrong registration secret");
            return Err(Status::permission_denied(
                "wrong registration secret; use the manager's current one (`castanet manager secret show`)",
            ));
        }
        let name = body.name.trim();
        crate::names::check_name("worker name", name).map_err(Status::invalid_argument)?;
        let worker_id = uuid::Uuid::new_v4().to_string();
        let token = new_token();
        self.state
            .store
            .insert_worker(
                &worker_id,
                name,
                &body.platform,
                &address,
                &hash_token(&token),
            )
            .await
            .map_err(store_status)?;
        tracing::info!(%worker_id, name, %address, "worker registered");
        self.state.events.publish(Event::worker(&worker_id));
        Ok(Response::new(v1::RegisterResponse { worker_id, token }))
    }

    async fn answer_sign_on(
        &self,
        request: Request<v1::SignOnRequest>,
    ) -> Result<Response<v1::SignOnResponse>, Status> {
        let worker_id = auth::authenticate(&self.state.store, &request).await?;
        let address = peer_address(&request);
        let body = request.into_inner();
        crate::names::check_name("worker name", body.name.trim())
            .map_err(Status::invalid_argument)?;
        let capabilities = body.capabilities.unwrap_or_default();
        let info = SignOn {
            name: body.name.trim().to_string(),
            platform: body.platform,
            address,
            software_version: body.software_version,
            supported_task_types: body.supported_task_types,
            slots: i64::from(body.slots.max(1)),
            capabilities: serde_json::json!({
                "cpu_cores": capabilities.cpu_cores,
                "ram_bytes": capabilities.ram_bytes,
                "gpus": capabilities.gpus.iter().map(|g| serde_json::json!({
                    "name": g.name, "vram_bytes": g.vram_bytes, "index": g.index,
                })).collect::<Vec<_>>(),
                "software": capabilities.software,
            }),
            can_restart: body.can_restart,
        };
        let row = self
            .state
            .store
            .sign_on_worker(&worker_id, &info)
            .await
            .map_err(store_status)?;
        tracing::info!(%worker_id, name = %row.name, slots = row.slots, "worker signed on");
        self.state.events.publish(Event::worker(&worker_id));
        let requested = WorkerStatus::from_str_or_awake(&row.status_requested);
        let timing = crate::monitor::MonitorSettings::from_config(&self.state.config);
        let millis = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        Ok(Response::new(v1::SignOnResponse {
            requested_status: wire_worker_status(requested) as i32,
            last_update_sequence: row.last_update_sequence as u64,
            task_keepalive_ms: millis(timing.task_keepalive()),
            fence_after_ms: millis(timing.fence_after()),
        }))
    }

    async fn answer_sign_off(
        &self,
        request: Request<v1::SignOffRequest>,
    ) -> Result<Response<v1::SignOffResponse>, Status> {
        let worker_id = auth::authenticate(&self.state.store, &request).await?;
        let reason = request.into_inner().reason;
        self.state.dispatcher.disconnect_all(&worker_id);
        let why = "the worker signed off";
        let requeued = self
            .state
            .store
            .sign_off_worker(&worker_id, why)
            .await
            .map_err(store_status)?;
        tracing::info!(%worker_id, %reason, tasks_handed_back = requeued.len(), "worker signed off");
        self.state.announce_requeued(&requeued, why).await;
        self.state.events.publish(Event::worker(&worker_id));
        self.state.dispatcher.kick();
        Ok(Response::new(v1::SignOffResponse {}))
    }

    async fn answer_connect_worker(
        &self,
        request: Request<v1::ConnectRequest>,
    ) -> Result<Response<InstructionStream>, Status> {
        let worker_id = auth::authenticate(&self.state.store, &request).await?;
        let body = request.into_inner();
        let store = &self.state.store;
        let worker = store
            .get_worker(&worker_id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::unauthenticated("worker no longer exists; register again"))?;
        // Keep the tasks the worker still runs under their current lease; hand back the rest.
        let mut keep = Vec::new();
        for lease in &body.running_tasks {
            let epoch = lease.lease_epoch as i64;
            if reconnect::still_held(store, &worker_id, &lease.task_id, epoch).await? {
                keep.push((lease.task_id.clone(), epoch));
            }
        }
        let keep_ids: Vec<String> = keep.iter().map(|(id, _)| id.clone()).collect();
        let why = "the worker reconnected without it";
        let requeued = store
            .requeue_worker_tasks(&worker_id, &keep_ids, why)
            .await
            .map_err(store_status)?;
        self.state.announce_requeued(&requeued, why).await;
        store
            .set_worker_status(
                &worker_id,
                WorkerStatus::Awake.as_str(),
                "instruction stream opened",
            )
            .await
            .map_err(store_status)?;

        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let session = WorkerSession {
            worker_id: worker_id.clone(),
            name: worker.name.clone(),
            slots: worker.slots.max(1) as usize,
            task_types: worker.task_types(),
            running: keep.clone(),
            variables: crate::variables::WorkerVariables::new(
                &crate::variables::Variables::from_config(&self.state.config),
                &worker.platform,
            ),
        };
        let connection = self.state.dispatcher.connect(session, sender);
        reconnect::release_ended(&self.state, &worker_id, &keep).await;
        reconnect::abort_not_kept(&self.state, &worker_id, &body.running_tasks, &keep);
        // A request made while the worker was away (or remembered at sign-off) reaches it now.
        if let Err(e) = crate::worker_status::on_connect(&self.state, &worker_id).await {
            tracing::warn!(%worker_id, "cannot deliver the requested status: {e}");
        }
        let (stream, stream_dropped) = instruction_stream::new(receiver);
        // When the worker goes away its stream is dropped; forget the connection then.
        let dispatcher = self.state.dispatcher.clone();
        let events = self.state.events.clone();
        let store = self.state.store.clone();
        tokio::spawn(async move {
            let _ = stream_dropped.await;
            dispatcher.disconnect(&worker_id, connection);
            // The worker timeout counts from here.
            let seen = std::slice::from_ref(&worker_id);
            // While the manager stops, its streams close after the database; nothing to say then.
            if let Err(e) = store.touch_workers(seen, chrono::Utc::now()).await
                && !store.is_closed()
            {
                tracing::warn!(%worker_id, "cannot record when the worker was last seen: {e}");
            }
            tracing::info!(%worker_id, "worker's instruction stream closed");
            events.publish(Event::worker(&worker_id));
        });
        tracing::info!(worker = %worker.name, "worker connected");
        self.state.events.publish(Event::worker(&worker.id));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn answer_update_task(
        &self,
        request: Request<v1::TaskUpdate>,
    ) -> Result<Response<v1::TaskUpdateAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let body = request.into_inner();
        if let Some(tail) = &body.log_tail {
            uploads::store_log_tail(
                &self.state,
                &worker_id,
                &body.task_id,
                body.lease_epoch,
                tail,
            )
            .await?;
        }
        let status = match body.status() {
            WireTaskStatus::Unspecified => None,
            WireTaskStatus::Active => Some(TaskStatus::Active),
            WireTaskStatus::Completed => Some(TaskStatus::Completed),
            WireTaskStatus::Failed => Some(TaskStatus::Failed),
        };
        let failure = body.failure.clone().unwrap_or_default();
        let fault_class = (status == Some(TaskStatus::Failed))
            .then(|| failure.fault_class().api_name().to_string());
        let update = WorkerTaskUpdate {
            worker_id: worker_id.clone(),
            task_id: body.task_id.clone(),
            lease_epoch: body.lease_epoch as i64,
            sequence: body.sequence as i64,
            status,
            activity: body.activity.clone(),
            steps_completed: body.steps_completed.map(i64::from),
            // The protocol says 0..100; NaN or 1e30 from a confused worker is not shown as sent.
            progress: body
                .progress_percent
                .filter(|percent| percent.is_finite())
                .map(|percent| f64::from(percent.clamp(0.0, 100.0))),
            fault_class,
        };
        let outcome = self
            .state
            .store
            .apply_worker_task_update(&update)
            .await
            .map_err(store_status)?;
        full_disk::DATABASE_DISK.stored();
        // A keep-alive only moved the task's last-touched time: nothing for anyone to see.
        let keepalive = status.is_none()
            && update.activity.is_none()
            && update.steps_completed.is_none()
            && update.progress.is_none();
        if outcome.applied && !keepalive {
            if status == Some(TaskStatus::Failed) {
                let mut text = format!(
                    "Task failed ({}): {}",
                    failure.fault_class().api_name(),
                    failure.message
                );
                for line in &failure.last_log_lines {
                    text.push_str("\n    ");
                    text.push_str(line);
                }
                self.state
                    .log_manager_line(&outcome.job_id, &body.task_id, &text)
                    .await;
            }
            if let Some(report) = &outcome.failure {
                for (task_id, line) in &report.log_lines {
                    self.state
                        .log_manager_line(&outcome.job_id, task_id, line)
                        .await;
                }
                for task_id in &report.requeued {
                    self.state
                        .events
                        .publish(Event::task(&outcome.job_id, task_id));
                }
            }
            if outcome.task_finished {
                self.state
                    .dispatcher
                    .task_finished(&worker_id, &body.task_id);
                crate::worker_status::after_task_finished(&self.state, &worker_id);
            }
            if !outcome.to_abort.is_empty() {
                let reason = format!(
                    "the job got status \"{}\"",
                    outcome.job_status.map(|s| s.as_str()).unwrap_or("changed")
                );
                self.state.dispatcher.abort_and_announce(
                    &outcome.job_id,
                    &outcome.to_abort,
                    &reason,
                );
            }
            self.state
                .events
                .publish(Event::task(&outcome.job_id, &body.task_id));
            self.state.events.publish(Event::job(&outcome.job_id));
        }
        Ok(Response::new(v1::TaskUpdateAck {
            applied: outcome.applied,
        }))
    }

    async fn answer_upload_log(
        &self,
        request: Request<Streaming<v1::LogChunk>>,
    ) -> Result<Response<v1::UploadLogAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let bytes_written =
            uploads::receive_log(&self.state, &worker_id, request.into_inner()).await?;
        Ok(Response::new(v1::UploadLogAck { bytes_written }))
    }

    async fn answer_upload_last_rendered(
        &self,
        request: Request<v1::LastRendered>,
    ) -> Result<Response<v1::LastRenderedAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        uploads::store_last_rendered(&self.state, &worker_id, request.into_inner()).await?;
        Ok(Response::new(v1::LastRenderedAck {}))
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type ConnectWorkerStream = InstructionStream;

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

fn wire_worker_status(status: WorkerStatus) -> v1::WorkerStatus {
    v1::WorkerStatus::from_api_name(status.as_str()).unwrap_or(v1::WorkerStatus::Awake)
}

impl WorkerStatus {
    /// A requested status as stored ("" when none): the worker starts awake by default.
    fn from_str_or_awake(requested: &str) -> WorkerStatus {
        requested.parse().unwrap_or(WorkerStatus::Awake)
    }
}
