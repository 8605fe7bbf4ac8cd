//! Starting and stopping the manager: open the store, build the shared state, serve
//! gRPC and HTTP on one listener, and shut down cleanly (streams closed, database closed).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::compiler::{JobTypeRegistry, SandboxLimits};
use crate::events::EventBus;
use crate::logs::TaskLogs;
use crate::scheduler::Dispatcher;
use crate::shaman::Shaman;
use crate::store::{Store, StoreError};
use crate::{AppState, ManagerConfig, grpc, http};

/// How long open requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long background tasks get to finish their current step at shutdown.
const BACKGROUND_GRACE: Duration = Duration::from_secs(10);
/// How long stopping waits for the database's connections to close after that.
const STORE_CLOSE_GRACE: Duration = Duration::from_secs(10);
/// A partial output upload untouched this long is removed at start (see `transfers`).
const STALE_UPLOAD_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot create storage directory {path}: {source}")]
    Storage {
        path: String,
        source: std::io::Error,
    },
    #[error("storage directory {path} is not writable (task logs go there): {source}")]
    StorageNotWritable {
        path: String,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    /// Another manager took over the database (this one had lost its connection).
    #[error("{0}: this manager stopped so the active one serves the farm")]
    LostLeadership(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    ShamanLock(#[from] crate::shaman::FileStoreLockError),
    #[error("notifications: {0}")]
    Notifications(String),
    #[error(
        "the task logs directory {jobs} is the Shaman checkout root: the two must differ \
         (change storage_root or the shared storage path)"
    )]
    JobsStorageIsCheckoutRoot { jobs: String },
}

/// Task logs under the checkout root would be removed with checkouts, and checkouts
/// named like job folders would be taken for them.
fn refuse_jobs_storage_as_checkout_root(
    logs: &TaskLogs,
    shaman: &Shaman,
) -> Result<(), ManagerError> {
    let jobs = logs.jobs_root();
    let checkouts = shaman.checkout_root();
    let same = jobs == checkouts
        || matches!(
            (std::fs::canonicalize(jobs), std::fs::canonicalize(&checkouts)),
            (Ok(a), Ok(b)) if a == b
        );
    if same {
        return Err(ManagerError::JobsStorageIsCheckoutRoot {
            jobs: jobs.display().to_string(),
        });
    }
    Ok(())
}

/// A manager serving in the background.
pub struct RunningManager {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    pub state: AppState,
    /// The certificate's SHA-256 fingerprint when serving TLS (clients pin it).
    pub tls_fingerprint: Option<String>,
    shutdown: CancellationToken,
    server: JoinHandle<Result<(), ManagerError>>,
}

impl RunningManager {
    /// Asks the manager to stop; `wait` returns when it has.
    pub fn request_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops the manager and waits until it has closed everything.
    pub async fn shutdown(self) -> Result<(), ManagerError> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the manager stops (after `request_shutdown`, or on a fatal error).
    pub async fn wait(self) -> Result<(), ManagerError> {
        let result = match self.server.await {
            Ok(result) => result,
            Err(join_error) => Err(ManagerError::Serve(std::io::Error::other(
                join_error.to_string(),
            ))),
        };
        // Only once every background task has ended: none of them writes to a closed store.
        let left = self.state.background.stop(BACKGROUND_GRACE).await;
        if left > 0 {
            tracing::warn!(
                "{left} background tasks did not stop within {BACKGROUND_GRACE:?}; closing the database anyway"
            );
        }
        // A statement still running (a background task past its grace) holds its connection
        // until it ends; SQLite cannot be interrupted through the pool. Every change is its
        // own committed transaction, so stopping without waiting loses nothing.
        if tokio::time::timeout(STORE_CLOSE_GRACE, self.state.store.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "the database did not close within {STORE_CLOSE_GRACE:?} (a statement was still \
                 running); stopping anyway"
            );
        }
        tracing::info!("manager stopped");
        match self.state.store.lost_leadership() {
            Some(reason) => Err(ManagerError::LostLeadership(reason.to_string())),
            None => result,
        }
    }

    /// Resolves once the manager is stopping (asked to, or it stopped being the active one).
    pub async fn stopping(&self) {
        self.shutdown.cancelled().await
    }
}

/// Opens everything and starts serving. Returns once the listener is bound.
pub async fn start(config: ManagerConfig) -> Result<RunningManager, ManagerError> {
    let storage = config.storage_path();
    std::fs::create_dir_all(&storage).map_err(|source| ManagerError::Storage {
        path: storage.display().to_string(),
        source,
    })?;
    let store = Store::open(&config.database_location())
        .await?
        .with_failure_policy(config.failure_policy())
        .with_resource_pools(config.resources.clone());
    let logs = TaskLogs::new(&storage);
    logs.check_writable()
        .await
        .map_err(|source| ManagerError::StorageNotWritable {
            path: logs.jobs_root().display().to_string(),
            source,
        })?;
    let events = EventBus::new();
    // Events carry the fields of what changed, read once per burst.
    events.set_details(Arc::new(store.clone()));
    let dispatcher = Dispatcher::new(store.clone(), logs.clone(), events.clone());
    let limits = SandboxLimits {
        memory_bytes: (config.script_memory_limit_mb as usize).saturating_mul(1024 * 1024),
        time: config.script_time_limit(),
    };
    let job_types = JobTypeRegistry::with_concurrency(
        Some(config.scripts_path()),
        limits,
        config.concurrent_scripts(),
    );
    let shaman = config
        .shaman
        .enabled
        .then(|| Shaman::new(&config.shaman.shared_storage_path(&config.base_dir)));
    if let Some(shaman) = &shaman {
        refuse_jobs_storage_as_checkout_root(&logs, shaman)?;
    }
    let notifier = crate::notify::Notifier::new(
        &config.notify,
        &config.notifications,
        &config.farm_name,
        &config.base_dir,
    )
    .map_err(ManagerError::Notifications)?;
    let transfers = crate::transfers::Transfers::new(&config);
    let stale = transfers.remove_stale_uploads(STALE_UPLOAD_AGE);
    if stale > 0 {
        tracing::info!(
            count = stale,
            "removed output uploads no worker continued for a week"
        );
    }
    let state = AppState {
        config: Arc::new(config),
        store,
        logs,
        events,
        dispatcher: dispatcher.clone(),
        job_types,
        shaman,
        notifier,
        preview_videos: crate::preview_video::PreviewVideos::default(),
        background: crate::background::Background::default(),
        settling: crate::worker_status::SettleLock::default(),
        transfers,
    };

    // Before binding: a broken certificate must stop the start, not the first client.
    let tls = if state.config.tls.enabled {
        let tls = crate::tls::load_or_generate(&state.config.tls, &state.config.base_dir)?;
        tracing::info!(
            cert = %tls.cert_path.display(),
            fingerprint = %tls.fingerprint,
            "serving TLS; clients pin this SHA-256 certificate fingerprint"
        );
        Some(tls)
    } else {
        None
    };
    let tls_fingerprint = tls.as_ref().map(|tls| tls.fingerprint.clone());

    let listener = listen(&state.config.listen)
        .await
        .map_err(|source| ManagerError::Listen {
            address: state.config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(ManagerError::Serve)?;
    // Only once this manager owns its address and the file store: a second manager started
    // by mistake must stop before it takes the first one's work in progress for leftovers.
    let shaman_lock = match &state.shaman {
        Some(shaman) => {
            let lock = shaman.lock_file_store()?;
            shaman.remove_interrupted_work().await;
            Some(lock)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    state.notifier.set_bound_address(addr, scheme);
    let shutdown = state.background.shutdown().clone();

    let grpc_routes =
        tonic::service::Routes::new(grpc::WorkerApi::server(state.clone())).into_axum_router();
    let app = http::with_fallback(http::router(state.clone()).merge(grpc_routes));

    // The dispatcher, monitors, notifier and job deleter: now, or once a standby takes over.
    crate::roles::start(&state, &dispatcher, crate::roles::Address { addr, scheme });
    let serve_shutdown = shutdown.clone();
    let events = state.events.clone();
    let keep_alive = crate::connections::keep_alive(std::time::Duration::from_secs(
        state.config.worker_timeout_seconds,
    ));
    let server = tokio::spawn(async move {
        // The Shaman file store locked for as long as the server runs.
        let _shaman_lock = shaman_lock;
        let graceful = {
            let shutdown = serve_shutdown.clone();
            let dispatcher = dispatcher.clone();
            async move {
                shutdown.cancelled().await;
                // Long-lived worker and SSE streams would keep a graceful shutdown waiting.
                dispatcher.close_all();
                events.close();
            }
        };
        let mut serve = match tls {
            Some(tls) => tokio::spawn(crate::tls::serve(
                listener,
                tls.acceptor,
                app,
                keep_alive,
                graceful,
            )),
            None => tokio::spawn(crate::connections::serve(
                listener, app, keep_alive, graceful,
            )),
        };
        let flatten = |joined: Result<std::io::Result<()>, tokio::task::JoinError>| match joined {
            Ok(result) => result.map_err(ManagerError::Serve),
            Err(e) => Err(ManagerError::Serve(std::io::Error::other(e.to_string()))),
        };
        tokio::select! {
            joined = &mut serve => return flatten(joined),
            _ = serve_shutdown.cancelled() => {}
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, serve).await {
            Ok(joined) => flatten(joined),
            Err(_) => {
                tracing::warn!(
                    "open connections did not close within {SHUTDOWN_GRACE:?}; stopping anyway"
                );
                Ok(())
            }
        }
    });
    tracing::info!(%addr, "manager listening");
    Ok(RunningManager {
        addr,
        state,
        tls_fingerprint,
        shutdown,
        server,
    })
}

/// Connections the kernel may hold for the manager before it accepts them (capped by the
/// system's `net.core.somaxconn`). A whole farm reconnects at once after a restart or a
/// network outage: with the default of 1,024, 1,000 simulated workers signing on together
/// overflowed the queue and some connections were reset.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds `address` (`host:port`; the first of its addresses that binds) with
/// [`LISTEN_BACKLOG`].
async fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As `TcpListener::bind` does: a restarted manager can take its port back at once.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}
