//! The OpenAPI document of the REST API, served at `GET /api/v3/openapi.json`. It is
//! built from one list of operations (`paths.rs`) whose request and answer bodies are
//! Rust types (`schemas.rs`, and the request types of the handlers); utoipa turns those
//! types into JSON schemas. Castanet's own endpoints carry the tag `extensions`.
//! `tests/openapi.rs` walks the router and fails for any route this list lacks.
mod approval;
mod errors;
mod farm_and_extension_paths;
mod job_extensions;
mod notifications;
mod openjd;
mod paths;
mod preview_video;
mod scheduling;
mod schemas;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use super::access::{AccessMode, Need};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, ComponentsBuilder, Object, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required, ResponseBuilder,
};

/// The tag of Castanet's own endpoints (not in Flamenco's API).
pub const EXTENSIONS: &str = "extensions";

/// The name of the bearer-token security scheme.
const TOKEN_SCHEME: &str = "apiToken";

/// `GET /api/v3/openapi.json`: the document of this manager's access mode, which decides
/// where a token is needed.
pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(state.config.access.mode),
    )
}

/// The document of `mode` as JSON text, built once per mode.
pub fn document_json(mode: AccessMode) -> &'static str {
    static JSON: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match mode {
        AccessMode::Open => &JSON[0],
        AccessMode::SubmitOpen => &JSON[1],
        AccessMode::Token => &JSON[2],
    };
    slot.get_or_init(|| {
        document(mode).to_pretty_json().unwrap_or_else(|e| {
            format!("{{\"error\": \"cannot serialise the OpenAPI document: {e}\"}}")
        })
    })
}

/// Builds the document for a manager in access `mode`.
pub fn document(mode: AccessMode) -> OpenApi {
    let mut api = Api {
        mode,
        ..Api::default()
    };
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
                .security_scheme(TOKEN_SCHEME, token_scheme())
                .build(),
        ))
        .tags(Some(tags))
        .build()
}

/// How API tokens are presented, and when they are needed.
fn token_scheme() -> SecurityScheme {
    let mut http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
    http.description = Some(
        "A token made with `castanet manager token create`, needed by the operations that \
         list this scheme: in access mode `token` every API call, in `submit-open` what goes \
         beyond viewing and submitting, in `open` (Flamenco's way, the default) none; this \
         document is the one of the manager's mode. Where a header cannot be set (event \
         streams, images) the token may be the `access_token` query parameter instead."
            .to_string(),
    );
    SecurityScheme::Http(http)
}

/// The schema of a path parameter, by its name: `{id}`s are UUIDs (a handler answers 400
/// for anything else), the rest free text the handler checks.
fn path_parameter_schema(name: &str) -> Object {
    match name {
        "id" => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uuid".into())))
            .build(),
        _ => Object::with_type(Type::String),
    }
}

/// The router's method, to ask the access rules what an operation needs.
fn axum_method(method: &HttpMethod) -> axum::http::Method {
    use axum::http::Method;
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
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
    /// Where tokens are needed depends on it.
    mode: AccessMode,
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
        let parameters = path_parameters(path);
        for name in &parameters {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(path_parameter_schema(name))),
            );
        }
        Op {
            mode: self.mode,
            api: self,
            need: super::access::need_of(&axum_method(&method), path),
            takes_id: parameters.iter().any(|name| name == "id"),
            method,
            path: openapi_path(path),
            operation,
            statuses: BTreeSet::new(),
            has_json_body: false,
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
    /// What the access rules ask of a caller (`http/access.rs`).
    need: Need,
    mode: AccessMode,
    /// Whether a path parameter is a UUID the handler checks.
    takes_id: bool,
    statuses: BTreeSet<u16>,
    has_json_body: bool,
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
        // Only JSON bodies are read whole, up to the limit; uploads are streamed.
        self.has_json_body = matches!(body, Body::Json(_));
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
        self.statuses.insert(status);
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
        self.statuses.insert(status);
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

    /// Adds the answers every operation of its kind may give, unless described already:
    /// 400 for a malformed `{id}`, 413 for a body over the limit, 401 and 403 from the
    /// access rules. Then adds the operation.
    pub fn done(mut self) {
        let mut common = Vec::new();
        if self.takes_id {
            common.push((400, "An `{id}` is not a UUID; the message names it."));
        }
        if self.has_json_body {
            common.push((413, "The JSON body is over the size limit (2 MiB)."));
        }
        if self.need != Need::Nothing {
            // A token sent is checked in every mode, even where none is needed.
            common.push((
                401,
                "The token sent is unknown or revoked, or a token is needed and none was \
                 sent (see the `apiToken` scheme).",
            ));
            if self.mode != AccessMode::Open {
                common.push((403, "The token's role is not enough for this operation."));
            }
            if !super::access::anonymous_may(self.mode, self.need) {
                self.operation = self
                    .operation
                    .security(SecurityRequirement::new(TOKEN_SCHEME, Vec::<String>::new()));
            }
        }
        let missing: Vec<(u16, &str)> = common
            .into_iter()
            .filter(|(status, _)| !self.statuses.contains(status))
            .collect();
        self = self.errors(&missing);
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
            serde_json::from_str(document_json(AccessMode::Token)).expect("the document is JSON");
        let schemas = json["components"]["schemas"].as_object().expect("schemas");
        let text = document_json(AccessMode::Token);
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but missing"
            );
        }
    }
}
