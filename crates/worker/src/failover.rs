//! The worker's channel to "the manager" when it is given several (`--manager a,b`): managers
//! sharing one PostgreSQL database, of which one is active. Calls go to the current one; when
//! it is unreachable or answers that it is a standby, the session moves on to the next, and
//! every clone of the channel (the runner's, the uploads') follows at once.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::Service;

/// One lazily connected channel per manager URL, and which one calls go to.
#[derive(Clone)]
pub struct FailoverChannel {
    managers: Arc<Vec<(String, Channel)>>,
    current: Arc<AtomicUsize>,
}

impl FailoverChannel {
    /// `managers` must not be empty.
    pub fn new(managers: Vec<(String, Channel)>) -> Self {
        assert!(
            !managers.is_empty(),
            "a worker has at least one manager URL"
        );
        Self {
            managers: Arc::new(managers),
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The URL calls go to now.
    pub fn current_url(&self) -> &str {
        let index = self.current.load(Ordering::SeqCst) % self.managers.len();
        &self.managers[index].0
    }

    /// Moves on to the next manager of the list; its URL. A single manager stays.
    pub fn next(&self) -> &str {
        let count = self.managers.len();
        let next = (self.current.fetch_add(1, Ordering::SeqCst) + 1) % count;
        &self.managers[next].0
    }

    /// Whether there is another manager to move on to.
    pub fn has_others(&self) -> bool {
        self.managers.len() > 1
    }

    fn channel(&self) -> Channel {
        let index = self.current.load(Ordering::SeqCst) % self.managers.len();
        self.managers[index].1.clone()
    }
}

impl Service<http::Request<Body>> for FailoverChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the chosen channel's, awaited in `call`: which one is chosen may change
        // between the two.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut channel = self.channel();
        Box::pin(async move {
            futures::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
            channel.call(request).await
        })
    }
}
