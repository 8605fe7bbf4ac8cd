//! Active and standby managers (PostgreSQL: several managers may share one database; the one
//! holding the leader lock is active, see `store::leadership`). What writes on its own — the
//! dispatcher, the monitors, the notifier, the job deleter — runs on the active manager only.
//! A standby serves reads, refuses writes naming the active manager, and tries for the lock
//! four times a second; the active one watches each second that it still holds it and stops
//! when it does not.
use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::scheduler::Dispatcher;

/// How often the active manager checks it still holds the lock.
const LEADERSHIP_CHECK: Duration = Duration::from_secs(1);
/// How often a standby tries for the lock: a free lock is taken within this (a try is one
/// cheap statement).
const TAKEOVER_ATTEMPT: Duration = Duration::from_millis(250);

/// Where this manager answers, for the standbys to name and for mDNS.
#[derive(Clone)]
pub struct Address {
    pub addr: SocketAddr,
    pub scheme: &'static str,
}

impl Address {
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
}

/// Starts the active manager's work now, or once this standby takes over.
pub fn start(state: &AppState, dispatcher: &Dispatcher, address: Address) {
    let shutdown = state.background.shutdown().clone();
    if state.store.is_active() {
        become_active(state, dispatcher, &address, &shutdown);
        return;
    }
    tracing::info!(
        "another manager holds the database's leader lock: this one is a standby (reads only) \
         until it takes over"
    );
    let state = state.clone();
    let dispatcher = dispatcher.clone();
    state.background.clone().spawn(async move {
        loop {
            state.store.refresh_active_manager().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(TAKEOVER_ATTEMPT) => {}
            }
            match state.store.try_take_over().await {
                Ok(true) => {
                    tracing::warn!("the active manager is gone: this manager took over");
                    become_active(&state, &dispatcher, &address, &shutdown);
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot try to take over as the active manager: {e}"),
            }
        }
    });
}

fn become_active(
    state: &AppState,
    dispatcher: &Dispatcher,
    address: &Address,
    shutdown: &CancellationToken,
) {
    let background = &state.background;
    {
        let store = state.store.clone();
        let url = address.url();
        background.spawn(async move {
            if let Err(e) = store.record_active_manager(&url).await {
                tracing::warn!("cannot record this manager as the active one: {e}");
            }
        });
    }
    background.spawn(dispatcher.clone().run(shutdown.clone()));
    if let Some(shaman) = state.shaman.clone() {
        let settings = &state.config.shaman;
        background.spawn(shaman.run_garbage_collector(
            settings.gc_period(),
            settings.gc_max_age(),
            shutdown.clone(),
        ));
    }
    let monitor = crate::monitor::Monitor::new(
        state.clone(),
        std::sync::Arc::new(crate::monitor::SystemClock),
        crate::monitor::MonitorSettings::from_config(&state.config),
    );
    background.spawn(monitor.run(shutdown.clone()));
    background.spawn(crate::monitor::job_dependencies::run(
        state.clone(),
        shutdown.clone(),
    ));
    background.spawn(crate::monitor::rechunker::run(
        state.clone(),
        shutdown.clone(),
    ));
    // Notifications: the transition watcher and the outbox's deliverer.
    crate::notify::spawn(state, shutdown);
    // Finishes deletions a restart or a failure left behind, then sweeps every minute.
    background.spawn(crate::job_deleter::run(state.clone(), shutdown.clone()));
    background.spawn(crate::memory::trim_periodically(shutdown.clone()));
    background.spawn(crate::preview_video::run(state.clone(), shutdown.clone()));
    background.spawn(advertise(state.clone(), address.clone(), shutdown.clone()));
    background.spawn(watch_leadership(state.clone(), shutdown.clone()));
}

/// Advertises the farm on the LAN for as long as this manager is the active one. Failing to
/// advertise is not fatal: workers can still be given the URL.
async fn advertise(state: AppState, address: Address, shutdown: CancellationToken) {
    let advertisement = crate::discovery::advertise(
        address.addr,
        &state.config.farm_name,
        crate::VERSION,
        address.scheme,
    )
    .unwrap_or_else(|e| {
        tracing::warn!("{e}");
        None
    });
    shutdown.cancelled().await;
    drop(advertisement);
}

/// The active manager stops once another one holds the lock: it can no longer write, and its
/// workers must go to the new active manager (they reconnect through their manager list).
async fn watch_leadership(state: AppState, shutdown: CancellationToken) {
    let mut unanswered = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(LEADERSHIP_CHECK) => {}
        }
        let check = tokio::time::timeout(LEADERSHIP_CHECK * 2, state.store.leadership_lost());
        let reason = match check.await {
            Ok(Ok(None)) => {
                unanswered = 0;
                continue;
            }
            Ok(Ok(Some(reason))) => reason,
            Ok(Err(_)) | Err(_) if unanswered + 1 < UNANSWERED_CHECKS => {
                unanswered += 1;
                continue;
            }
            // By now the server has dropped this manager's session (its keepalives went
            // unanswered too) and a standby may be active.
            Ok(Err(e)) => format!("the database has not answered for {UNANSWERED_CHECKS} s ({e})"),
            Err(_) => format!("the database has not answered for {UNANSWERED_CHECKS} s"),
        };
        tracing::error!("{reason}: this manager is no longer the active one; stopping");
        state.store.note_leadership_lost(reason);
        shutdown.cancel();
        return;
    }
}

/// Leadership checks in a row the database may leave unanswered before the active manager
/// stops: about as long as the server takes to drop a silent session.
const UNANSWERED_CHECKS: u32 = 5;
