//! A task's log: the `LogSink` commands write lines to, and the uploader that streams
//! those lines to the manager as they arrive.

mod sink;
mod spool;
mod upload;

pub use sink::LogSink;
pub use spool::{LogSpool, SpooledLog};
pub use upload::{send_spooled, spawn_uploader};
