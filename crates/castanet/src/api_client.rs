//! A small client for the manager's REST API, used by the CLI verbs and the demo.
use anyhow::{Context, anyhow};
use reqwest::StatusCode;
use serde_json::Value;

pub struct ApiClient {
    base: String,
    http: reqwest::Client,
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
        Self {
            base,
            http: reqwest::Client::new(),
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
        Err(anyhow!("{what}: the manager answered {status}: {message}"))
    }

    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request
            .send()
            .await
            .with_context(|| format!("{what}: cannot reach the manager at {}", self.base))?;
        self.answer(what, response).await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        self.send(&format!("GET {path}"), self.http.get(url)).await
    }

    /// GET that must return JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        match self.get(path).await? {
            Answer::Json(v) => Ok(v),
            Answer::Empty => Err(anyhow!("GET {path}: the manager answered with no content")),
        }
    }

    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let response =
            self.http.get(url).send().await.with_context(|| {
                format!("GET {path}: cannot reach the manager at {}", self.base)
            })?;
        if !response.status().is_success() {
            return Err(anyhow!(
                "GET {path}: the manager answered {}",
                response.status()
            ));
        }
        Ok(response.text().await?)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        self.send(&format!("POST {path}"), self.http.post(url).json(body))
            .await
    }
}
