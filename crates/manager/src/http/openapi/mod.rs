//! The OpenAPI document of the REST API, served at `GET /api/v3/openapi.json`. It is
//! built from one list of operations (`paths.rs`) whose request and answer bodies are
//! Rust types (`schemas.rs`, and the request types of the handlers); utoipa turns those
//! types into JSON schemas. Castanet's own endpoints carry the tag `extensions`.
//! `tests/openapi.rs` walks the router and fails for any route this list lacks.
mod farm_and_extension_paths;
mod paths;
mod schemas;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ComponentsBuilder, Object, Schema, Type};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required, ResponseBuilder,
};

/// The tag of Castanet's own endpoints (not in Flamenco's API).
pub const EXTENSIONS: &str = "extensions";

/// `GET /api/v3/openapi.json`
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// The document as JSON text, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_pretty_json().unwrap_or_else(|e| {
            format!("{{\"error\": \"cannot serialise the OpenAPI document: {e}\"}}")
        })
    })
}

/// Builds the document.
pub fn document() -> OpenApi {
    let mut api = Api::default();
    paths::describe(&mut api);
    let tags = [
        ("meta", "The manager, its configuration and variables."),
        (
            "jobs",
            "Jobs and their tasks (Flamenco's paths and shapes).",
        ),
        ("worker-mgt", "Workers and worker tags."),
        ("shaman", "The upload store the Blender add-on uses."),
        (
            EXTENSIONS,
            "Castanet's own endpoints, not in Flamenco's API.",
        ),
    ]
    .map(|(name, about)| {
        TagBuilder::new()
            .name(name)
            .description(Some(about))
            .build()
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Castanet manager API")
                .version(crate::VERSION)
                .description(Some(
                    "The REST API of a Castanet manager: Flamenco's /api/v3 paths and shapes \
                     (except /api/v3/worker/*, replaced by gRPC), plus Castanet's extensions. \
                     The dashboard is served at / and under it.",
                )),
        )
        .paths(api.paths)
        .components(Some(
            ComponentsBuilder::new()
                .schemas_from_iter(api.schemas)
                .build(),
        ))
        .tags(Some(tags))
        .build()
}

/// What an operation takes or answers with.
pub(crate) enum Body {
    /// JSON of a schema (by reference), boxed: a schema is large.
    Json(Box<RefOr<Schema>>),
    /// Another media type, free-form.
    Other(&'static str),
}

/// Collects operations and the schemas they refer to.
#[derive(Default)]
pub(crate) struct Api {
    paths: Paths,
    schemas: BTreeMap<String, RefOr<Schema>>,
}

impl Api {
    /// A reference to `T`'s schema, registering it (and the schemas it uses).
    pub fn schema<T: ToSchema>(&mut self) -> Body {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.schemas.extend(nested);
        self.schemas.insert(T::name().into_owned(), T::schema());
        Body::Json(Box::new(RefOr::Ref(Ref::from_schema_name(T::name()))))
    }

    /// A JSON array of `T`.
    pub fn list_of<T: ToSchema>(&mut self) -> Body {
        let Body::Json(item) = self.schema::<T>() else {
            unreachable!("schema() always answers JSON")
        };
        Body::Json(Box::new(ArrayBuilder::new().items(*item).into()))
    }

    /// Starts an operation; path parameters (`{name}`, `{*name}`) are documented from
    /// the path. The path is the router's, so the two can be compared.
    pub fn op(&mut self, method: HttpMethod, path: &str, tag: &str, summary: &str) -> Op<'_> {
        let mut operation = OperationBuilder::new()
            .tag(tag)
            .summary(Some(summary))
            .operation_id(Some(operation_id(&method, path)));
        for name in path_parameters(path) {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(Object::with_type(Type::String))),
            );
        }
        Op {
            api: self,
            method,
            path: openapi_path(path),
            operation,
        }
    }

    fn error_body(&mut self) -> Body {
        self.schema::<schemas::Error>()
    }
}

/// One operation being described; `done` adds it.
pub(crate) struct Op<'a> {
    api: &'a mut Api,
    method: HttpMethod,
    path: String,
    operation: OperationBuilder,
}

fn content(body: Body) -> (String, utoipa::openapi::Content) {
    match body {
        Body::Json(schema) => (
            "application/json".into(),
            ContentBuilder::new().schema(Some(*schema)).build(),
        ),
        Body::Other(media) => (media.into(), ContentBuilder::new().build()),
    }
}

impl Op<'_> {
    /// The request body.
    pub fn body(mut self, body: Body) -> Self {
        let (media, content) = content(body);
        self.operation = self.operation.request_body(Some(
            RequestBodyBuilder::new()
                .content(media, content)
                .required(Some(Required::True))
                .build(),
        ));
        self
    }

    /// An answer with a body.
    pub fn answer(mut self, status: u16, description: &str, body: Body) -> Self {
        let (media, content) = content(body);
        let response = ResponseBuilder::new()
            .description(description)
            .content(media, content)
            .build();
        self.operation = self.operation.response(status.to_string(), response);
        self
    }

    /// An answer without a body.
    pub fn empty(mut self, status: u16, description: &str) -> Self {
        let response = ResponseBuilder::new().description(description).build();
        self.operation = self.operation.response(status.to_string(), response);
        self
    }

    /// Error answers (`{code, message}`), each with what it means.
    pub fn errors(mut self, errors: &[(u16, &str)]) -> Self {
        for (status, description) in errors {
            let body = self.api.error_body();
            self = self.answer(*status, description, body);
        }
        self
    }

    /// An optional query parameter.
    pub fn query(mut self, name: &str, description: &str) -> Self {
        self.operation = self.operation.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(Object::with_type(Type::String))),
        );
        self
    }

    pub fn done(self) {
        self.api
            .paths
            .add_path_operation(self.path, vec![self.method], self.operation.build());
    }
}

/// `{name}` and `{*name}` segments of a router path, by name.
fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*').to_string())
        .collect()
}

/// The router's path in OpenAPI's syntax: a catch-all `{*rest}` becomes `{rest}`.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// A stable operation id from the method and path, e.g. `delete_api_v3_jobs_id`.
fn operation_id(method: &HttpMethod, path: &str) -> String {
    let method = serde_json::to_value(method)
        .ok()
        .and_then(|m| m.as_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{method}_{}", words.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_and_catch_alls_are_named() {
        assert_eq!(
            path_parameters("/api/v3/shaman/files/{checksum}/{filesize}"),
            ["checksum", "filesize"]
        );
        assert_eq!(path_parameters("/job-files/{*path}"), ["path"]);
        assert_eq!(openapi_path("/job-files/{*path}"), "/job-files/{path}");
    }

    #[test]
    fn every_referenced_schema_is_in_the_document() {
        let json: serde_json::Value =
            serde_json::from_str(document_json()).expect("the document is JSON");
        let schemas = json["components"]["schemas"].as_object().expect("schemas");
        let text = document_json();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but missing"
            );
        }
    }
}
