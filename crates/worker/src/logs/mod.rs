//! A task's log: the `LogSink` commands write lines to, and the uploader that streams
//! those lines to the manager as they arrive.

mod sink;
mod upload;

pub use sink::LogSink;
pub use upload::spawn_uploader;
