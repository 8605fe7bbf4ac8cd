//! A worker's instruction stream as handed to tonic. It ends when the dispatcher drops the
//! sending half (worker deleted, replaced, manager stopping), and it reports when tonic
//! drops it (the worker went away), so the connection can be forgotten.
use std::pin::Pin;
use std::task::{Context, Poll};

use castanet_protocol::v1::Instruction;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Status;

pub struct InstructionStream {
    inner: UnboundedReceiverStream<Result<Instruction, Status>>,
    dropped: Option<oneshot::Sender<()>>,
}

/// Wraps `receiver`; the returned receiver completes when the stream is dropped.
pub fn new(
    receiver: mpsc::UnboundedReceiver<Result<Instruction, Status>>,
) -> (InstructionStream, oneshot::Receiver<()>) {
    let (dropped, on_drop) = oneshot::channel();
    let stream = InstructionStream {
        inner: UnboundedReceiverStream::new(receiver),
        dropped: Some(dropped),
    };
    (stream, on_drop)
}

impl Stream for InstructionStream {
    type Item = Result<Instruction, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl Drop for InstructionStream {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(());
        }
    }
}
