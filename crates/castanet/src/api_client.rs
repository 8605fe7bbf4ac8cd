//! A small client for the manager's REST API, used by the CLI verbs and the demo. The API
//! token and the HTTPS certificate trust come from the global flags, once per process.
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use castanet_worker::ManagerTrust;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// What every request of this process uses; set from the global flags by `configure`.
static CONNECTION: OnceLock<Connection> = OnceLock::new();

struct Connection {
    http: reqwest::Client,
    token: Option<String>,
    trust: ManagerTrust,
}

/// Sets the API token (`--token` / `CASTANET_TOKEN`) and how an https:// manager's
/// certificate is checked, for every `ApiClient` made afterwards.
pub fn configure(token: Option<String>, trust: &super::tls_pin::TrustArgs) -> anyhow::Result<()> {
    let trust = trust.cli_trust()?;
    let connection = Connection {
        http: super::tls_pin::http_client(&trust)?,
        token: token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
        trust,
    };
    CONNECTION
        .set(connection)
        .map_err(|_| anyhow!("the API client was configured twice"))
}

pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    trust: Option<ManagerTrust>,
}

/// A successful answer: a JSON body, or none (204).
pub enum Answer {
    Json(Value),
    Empty,
}

impl ApiClient {
    pub fn new(manager: &str) -> Self {
        let trimmed = manager.trim().trim_end_matches('/');
        let base = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let connection = CONNECTION.get();
        Self {
            base,
            http: connection.map_or_else(reqwest::Client::new, |c| c.http.clone()),
            token: connection.and_then(|c| c.token.clone()),
            trust: connection.map(|c| c.trust.clone()),
        }
    }

    /// The full URL of `path` on this manager (for printing links).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn answer(&self, what: &str, response: reqwest::Response) -> anyhow::Result<Answer> {
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(Answer::Empty);
        }
        let text = response
            .text()
            .await
            .with_context(|| format!("{what}: reading the answer"))?;
        if status.is_success() {
            let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Ok(Answer::Json(json));
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        Err(anyhow!(
            "{what}: the manager answered {status}: {message}{}",
            self.access_hint(status)
        ))
    }

    /// What to do about a refused request: which token to pass.
    fn access_hint(&self, status: StatusCode) -> String {
        match (status, &self.token) {
            (StatusCode::UNAUTHORIZED, None) => "\n  this manager needs an API token: pass --token TOKEN or set CASTANET_TOKEN \
                 (an admin creates one with `castanet manager token create --name NAME --role viewer|submitter|admin`)"
                .into(),
            (StatusCode::UNAUTHORIZED, Some(_)) => "\n  the token given with --token / CASTANET_TOKEN is unknown or revoked: \
                 ask for a new one (`castanet manager token list` shows the live ones)"
                .into(),
            (StatusCode::FORBIDDEN, _) => "\n  the token's role is not enough for this: pass a token of the role named above \
                 with --token or CASTANET_TOKEN"
                .into(),
            _ => String::new(),
        }
    }

    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable(what, e))?;
        self.answer(what, response).await
    }

    /// A request that got no answer; a refused certificate says why.
    fn unreachable(&self, what: &str, error: reqwest::Error) -> anyhow::Error {
        match self.trust.as_ref().and_then(ManagerTrust::take_refusal) {
            Some(refusal) => anyhow!("{what}: refusing the manager at {}: {refusal}", self.base),
            None => anyhow::Error::new(error)
                .context(format!("{what}: cannot reach the manager at {}", self.base)),
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(&format!("GET {path}"), self.request(Method::GET, path))
            .await
    }

    /// GET that must return JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        match self.get(path).await? {
            Answer::Json(v) => Ok(v),
            Answer::Empty => Err(anyhow!("GET {path}: the manager answered with no content")),
        }
    }

    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        Ok(self.get_successful(path).await?.text().await?)
    }

    /// A GET the manager answered with success; its body is still to be read.
    async fn get_successful(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let what = format!("GET {path}");
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| self.unreachable(&what, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(anyhow!(
                "{what}: the manager answered {status}{}",
                self.access_hint(status)
            ));
        }
        Ok(response)
    }

    /// GET of a file (a preview video, say) as bytes.
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let response = self.get_successful(path).await?;
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("GET {path}: reading the answer"))?;
        Ok(bytes.to_vec())
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(
            &format!("POST {path}"),
            self.request(Method::POST, path).json(body),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(
            &format!("PUT {path}"),
            self.request(Method::PUT, path).json(body),
        )
        .await
    }

    pub async fn delete_json(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(
            &format!("DELETE {path}"),
            self.request(Method::DELETE, path).json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(
            &format!("DELETE {path}"),
            self.request(Method::DELETE, path),
        )
        .await
    }
}
