//! The schemas of the status enums, read from `crate::state` so the document lists exactly
//! the statuses the manager knows. Answer types that carry a status as stored text name
//! these as their field's schema.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::state::{FarmStatus, JobStatus, TaskStatus, WorkerStatus};

/// A string enum schema holding `values`.
fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

macro_rules! status_schema {
    ($doc:ident, $status:ty, $description:literal) => {
        #[derive(Serialize)]
        pub struct $doc;
        impl PartialSchema for $doc {
            fn schema() -> RefOr<Schema> {
                string_enum($description, <$status>::ALL.iter().map(|s| s.as_str()))
            }
        }
        impl ToSchema for $doc {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($status))
            }
        }
    };
}

status_schema!(JobStatusDoc, JobStatus, "Status of a job.");
status_schema!(TaskStatusDoc, TaskStatus, "Status of a task.");
status_schema!(WorkerStatusDoc, WorkerStatus, "Status of a worker.");
status_schema!(FarmStatusDoc, FarmStatus, "Status of the whole farm.");
