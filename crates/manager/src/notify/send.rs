//! One attempt at one delivery: a signed webhook POST, a chat message, or an e-mail.
//! Every call is bounded by the configured timeout; an error comes back as text for
//! the delivery log.
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::payload;
use super::rules::RuleKind;
use super::settings::{NotifySettings, SmtpSecurity, SmtpSettings};
use crate::store::DeliveryRow;

pub const SIGNATURE_HEADER: &str = "X-Castanet-Signature";
pub const EVENT_HEADER: &str = "X-Castanet-Event";
pub const DELIVERY_HEADER: &str = "X-Castanet-Delivery";

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `delivery` once. `secret` signs webhooks (empty: unsigned).
pub async fn attempt(
    http: &reqwest::Client,
    settings: &NotifySettings,
    delivery: &DeliveryRow,
    secret: &str,
) -> Result<(), String> {
    let kind = RuleKind::parse(&delivery.kind)
        .ok_or_else(|| format!("unknown delivery kind {:?}", delivery.kind))?;
    match kind {
        RuleKind::Webhook => webhook(http, delivery, secret).await,
        RuleKind::Email => {
            let smtp = settings
                .smtp
                .as_ref()
                .ok_or("no SMTP server is configured ([notify.smtp])")?;
            email(smtp, settings, delivery).await
        }
        chat => {
            let payload: Value = serde_json::from_str(&delivery.payload)
                .map_err(|e| format!("stored payload is not JSON: {e}"))?;
            let body = payload::chat_body(chat, &payload).to_string();
            post(http, &delivery.target, body, Vec::new()).await
        }
    }
}

async fn webhook(
    http: &reqwest::Client,
    delivery: &DeliveryRow,
    secret: &str,
) -> Result<(), String> {
    let mut headers = vec![
        (EVENT_HEADER, delivery.event.clone()),
        (DELIVERY_HEADER, delivery.id.clone()),
    ];
    if !secret.is_empty() {
        headers.push((
            SIGNATURE_HEADER,
            signature(secret, delivery.payload.as_bytes()),
        ));
    }
    post(http, &delivery.target, delivery.payload.clone(), headers).await
}

/// POSTs a JSON body; any 2xx answer is a delivery.
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: String,
    headers: Vec<(&str, String)>,
) -> Result<(), String> {
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| describe(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(200).collect();
    Err(format!("HTTP {status}: {excerpt}").trim_end().to_string())
}

/// reqwest's error with its causes (the top level alone says only "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if error.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

async fn email(
    smtp: &SmtpSettings,
    settings: &NotifySettings,
    delivery: &DeliveryRow,
) -> Result<(), String> {
    let payload: Value = serde_json::from_str(&delivery.payload)
        .map_err(|e| format!("stored payload is not JSON: {e}"))?;
    let (subject, body) = payload::email_text(&payload);
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("[notify.smtp] from {:?}: {e}", smtp.from))?;
    let mut message = Message::builder()
        .from(from)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for address in delivery
        .target
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let to: Mailbox = address
            .parse()
            .map_err(|e| format!("recipient {address:?}: {e}"))?;
        message = message.to(to);
    }
    let message = message
        .body(body)
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let transport = smtp_transport(smtp, settings)?;
    // lettre's timeout applies per command; this bounds the whole exchange.
    let limit = settings.timeout() * 3;
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("SMTP: {e}")),
        Err(_) => Err(format!("SMTP: no answer within {limit:?}")),
    }
}

fn smtp_transport(
    smtp: &SmtpSettings,
    settings: &NotifySettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = match smtp.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls => Tls::Required(tls_parameters(smtp)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(smtp)?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(settings.timeout()));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.clone(),
        ));
    }
    Ok(builder.build())
}

fn tls_parameters(smtp: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if let Some(path) = &smtp.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("[notify.smtp] ca_file {}: {e}", path.display()))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("[notify.smtp] ca_file {}: {e}", path.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("SMTP TLS settings: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
