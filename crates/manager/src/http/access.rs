//! Who may call the REST API, and the audit trail of what they changed.
//!
//! Three modes (config `[access] mode`): `open` (Flamenco's way: anyone on the LAN may do
//! anything, so the Blender add-on needs no login), `submit-open` (viewing and submitting
//! are open, everything else needs a token) and `token` (every API call needs a token).
//! A token has a role — viewer, submitter or admin. Every state-changing request, allowed
//! or refused, is written to the audit log with who made it and how it was answered.
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::AppState;
use crate::store::{ApiRole, NewAuditEntry, TokenHolder, hash_api_token};

pub use crate::config::{AccessConfig, AccessMode};

/// What a request needs, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Liveness, readiness and anything outside the API (dashboard files).
    Nothing,
    View,
    Submit,
    /// Status, priority, tag or deletion of jobs and tasks.
    ManageJobs,
    /// Workers, worker tags, the audit log, the registration secret.
    Administer,
}

impl Need {
    fn as_str(self) -> &'static str {
        match self {
            Need::Nothing => "nothing",
            Need::View => "viewing",
            Need::Submit => "submitting",
            Need::ManageJobs => "managing jobs",
            Need::Administer => "administering",
        }
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// POSTs that change nothing: queries and dry runs.
fn is_read_only_post(path: &str) -> bool {
    matches!(
        path,
        "/api/v3/jobs/query" | "/api/v3/jobs/check" | "/api/v3/shaman/checkout/requirements"
    )
}

/// What a request to `path` with `method` needs.
pub fn need_of(method: &Method, path: &str) -> Need {
    let guarded =
        path.starts_with("/api/") || path == "/metrics" || path.starts_with("/job-files/");
    if !guarded {
        return Need::Nothing;
    }
    // Notification rules name receivers and the delivery log shows payloads: admin only.
    if path == "/api/v3/audit"
        || path.starts_with("/api/v3/registration-secret")
        || path.starts_with("/api/v3/notifications/")
    {
        return Need::Administer;
    }
    if is_read(method) || path == "/api/v3/jobs/query" {
        return Need::View;
    }
    if path == "/api/v3/jobs"
        || path == "/api/v3/jobs/check"
        || path == "/api/v3/jobs/openjd"
        || path.starts_with("/api/v3/shaman/")
    {
        return Need::Submit;
    }
    if path.starts_with("/api/v3/jobs/") || path.starts_with("/api/v3/tasks/") {
        return Need::ManageJobs;
    }
    Need::Administer
}

/// Whether the request changes state and so goes into the audit log.
pub fn is_audited(method: &Method, path: &str) -> bool {
    need_of(method, path) != Need::Nothing && !is_read(method) && !is_read_only_post(path)
}

/// The most a caller without a token may do in `mode`.
fn anonymous_allowance(mode: AccessMode) -> Option<Need> {
    match mode {
        AccessMode::Open => Some(Need::Administer),
        AccessMode::SubmitOpen => Some(Need::Submit),
        AccessMode::Token => None,
    }
}

/// Whether a caller without a token may do what `need` says in `mode`.
pub fn anonymous_may(mode: AccessMode, need: Need) -> bool {
    anonymous_allowance(mode).is_some_and(|allowed| allowed >= need)
}

/// The most a token of `role` may do.
fn role_allowance(role: ApiRole) -> Need {
    match role {
        ApiRole::Viewer => Need::View,
        ApiRole::Submitter => Need::ManageJobs,
        ApiRole::Admin => Need::Administer,
    }
}

/// The least role whose tokens may do `need`.
fn least_role_for(need: Need) -> ApiRole {
    ApiRole::ALL
        .into_iter()
        .find(|role| role_allowance(*role) >= need)
        .unwrap_or(ApiRole::Admin)
}

/// The token a request carries: `Authorization: Bearer …`, or an `access_token` query
/// parameter for what browsers cannot add headers to (event streams, images).
fn presented_token(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return Some(
            value
                .strip_prefix("Bearer ")
                .unwrap_or(value)
                .trim()
                .to_string(),
        );
    }
    request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .map(str::to_string)
    })
}

/// Why a request was not let through.
#[derive(Debug)]
enum Refusal {
    /// No usable token: 401 with a `WWW-Authenticate` challenge.
    Unauthenticated(String),
    /// The token's role is not enough: 403.
    Forbidden(String),
    /// The check itself failed (database).
    Failed(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthenticated(message) => {
                let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Refusal::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, message).into_response()
            }
            Refusal::Failed(error) => error.into_response(),
        }
    }
}

/// Who presented `token`: None without one; a refusal when it is unknown or revoked.
async fn identify(state: &AppState, token: Option<String>) -> Result<Option<TokenHolder>, Refusal> {
    let Some(token) = token else {
        return Ok(None);
    };
    let found = state
        .store
        .api_token_holder(&hash_api_token(&token))
        .await
        .map_err(|e| Refusal::Failed(e.into()))?;
    // A wrong token is refused even where none is needed: it is a mistake worth reporting.
    found
        .map(Some)
        .ok_or_else(|| Refusal::Unauthenticated("the API token is unknown or revoked".to_string()))
}

/// Whether `holder` (or an anonymous caller) may do what `need` says in `mode`.
fn authorize(mode: AccessMode, holder: Option<&TokenHolder>, need: Need) -> Result<(), Refusal> {
    let allowed = [
        anonymous_allowance(mode),
        holder.map(|h| role_allowance(h.role)),
    ]
    .into_iter()
    .flatten()
    .max();
    match (allowed, holder) {
        (Some(allowed), _) if allowed >= need => Ok(()),
        (_, None) => Err(Refusal::Unauthenticated(format!(
            "this manager's API is in \"{}\" mode: {} needs a token with role {} or higher; \
             send \"Authorization: Bearer <token>\"",
            mode.as_str(),
            need.as_str(),
            least_role_for(need)
        ))),
        (_, Some(holder)) => Err(Refusal::Forbidden(format!(
            "token \"{}\" has role {}; {} needs role {} or higher",
            holder.name,
            holder.role,
            need.as_str(),
            least_role_for(need)
        ))),
    }
}

/// Who made an admitted request: the name of its API token; None without one.
#[derive(Clone, Debug)]
pub struct Caller(pub Option<String>);

/// Middleware: admits or refuses each API request, and audits state-changing ones.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let need = need_of(&method, &path);
    if need == Need::Nothing {
        return next.run(request).await;
    }
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    // Taken out first: the request body is not Sync, so no reference to it may cross an await.
    let token = presented_token(&request);
    let (holder, response) = match identify(&state, token).await {
        Err(refusal) => (None, refusal.into_response()),
        Ok(holder) => match authorize(state.config.access.mode, holder.as_ref(), need) {
            Ok(()) => {
                // Handlers that record who did something (the approval gate) read this.
                let name = holder.as_ref().map(|h| h.name.clone());
                request.extensions_mut().insert(Caller(name));
                (holder, next.run(request).await)
            }
            Err(refusal) => (holder, refusal.into_response()),
        },
    };
    if is_audited(&method, &path) {
        let entry = NewAuditEntry {
            actor: holder.as_ref().map_or("anonymous", |h| h.name.as_str()),
            role: holder.as_ref().map(|h| h.role.as_str()),
            remote: remote.as_deref(),
            method: method.as_str(),
            path: &path,
            status: response.status().as_u16(),
        };
        // The request has been answered; a lost audit entry is reported, not fatal.
        if let Err(e) = state.store.insert_audit_entry(&entry).await {
            tracing::warn!("cannot write the audit log for {method} {path}: {e}");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_by_what_they_change() {
        let get = Method::GET;
        let post = Method::POST;
        let delete = Method::DELETE;
        assert_eq!(need_of(&get, "/healthz"), Need::Nothing);
        assert_eq!(need_of(&get, "/"), Need::Nothing);
        assert_eq!(need_of(&get, "/metrics"), Need::View);
        assert_eq!(need_of(&get, "/api/v3/jobs"), Need::View);
        assert_eq!(need_of(&post, "/api/v3/jobs/query"), Need::View);
        assert_eq!(need_of(&post, "/api/v3/jobs"), Need::Submit);
        assert_eq!(
            need_of(&post, "/api/v3/shaman/checkout/create"),
            Need::Submit
        );
        assert_eq!(need_of(&post, "/api/v3/jobs/x/setstatus"), Need::ManageJobs);
        assert_eq!(need_of(&delete, "/api/v3/jobs/x"), Need::ManageJobs);
        assert_eq!(
            need_of(&delete, "/api/v3/worker-mgt/workers/x"),
            Need::Administer
        );
        assert_eq!(need_of(&get, "/api/v3/audit"), Need::Administer);
        assert_eq!(
            need_of(&get, "/api/v3/registration-secret"),
            Need::Administer
        );
        assert!(is_audited(&post, "/api/v3/jobs"));
        assert!(!is_audited(&post, "/api/v3/jobs/check"));
        assert!(!is_audited(&get, "/api/v3/jobs"));
    }

    #[test]
    fn roles_and_modes_allow_what_the_docs_say() {
        assert_eq!(least_role_for(Need::View), ApiRole::Viewer);
        assert_eq!(least_role_for(Need::Submit), ApiRole::Submitter);
        assert_eq!(least_role_for(Need::ManageJobs), ApiRole::Submitter);
        assert_eq!(least_role_for(Need::Administer), ApiRole::Admin);
        assert_eq!(anonymous_allowance(AccessMode::Token), None);
        assert_eq!(
            anonymous_allowance(AccessMode::SubmitOpen),
            Some(Need::Submit)
        );
        let parsed: AccessConfig = toml::from_str("mode = \"submit-open\"").unwrap();
        assert_eq!(parsed.mode, AccessMode::SubmitOpen);
        assert!(toml::from_str::<AccessConfig>("mode = \"closed\"").is_err());
    }
}
