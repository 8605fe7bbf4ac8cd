//! Castanet's additions to the Job schema, described here so the schema of a job and the
//! paths that change these parts can both use them.
pub use crate::state::JobLimits;
