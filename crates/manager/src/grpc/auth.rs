//! Worker credentials: tokens are random, shown to the worker once, and stored as
//! SHA-256 hashes (a 256-bit random token needs no slow hash to resist guessing).
use castanet_protocol::{AUTHORIZATION_HEADER, WORKER_ID_HEADER};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::store::Store;

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets without revealing through timing where they differ.
pub fn secrets_match(a: &str, b: &str) -> bool {
    let (ha, hb) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Refuses a registration that does not present the registration secret: the config's,
/// or its rotated replacement (store/registration_secret.rs).
pub async fn check_registration_secret(
    state: &crate::AppState,
    presented: &str,
    address: &str,
    name: &str,
) -> Result<(), Status> {
    let secret = state
        .store
        .registration_secret(&state.config.registration_secret)
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    if secrets_match(presented, &secret.secret) {
        return Ok(());
    }
    tracing::warn!(%address, %name, "registration refused: wrong registration secret");
    Err(Status::permission_denied(
        "wrong registration secret; use the manager's current one (`castanet manager secret show`)",
    ))
}

/// `authenticate` for the calls a connected worker makes for every task: the token of
/// a worker with an open instruction stream is checked against the hash remembered with
/// its connection, so the database is asked once per connection instead of per call.
/// Deleting a worker closes its connection, and with it the remembered hash.
pub async fn authenticate_connected<T>(
    state: &crate::AppState,
    request: &Request<T>,
) -> Result<String, Status> {
    if let Some((worker_id, token)) = credentials(request)
        && let Some(known) = state.dispatcher.known_token_hash(worker_id)
        && secrets_match(&hash_token(token), &known)
    {
        return Ok(worker_id.to_string());
    }
    let worker_id = authenticate(&state.store, request).await?;
    if let Some((_, token)) = credentials(request) {
        state
            .dispatcher
            .remember_token_hash(&worker_id, hash_token(token));
    }
    Ok(worker_id)
}

/// (worker id, token) from the request's metadata, when both are there.
fn credentials<T>(request: &Request<T>) -> Option<(&str, &str)> {
    let metadata = request.metadata();
    let worker_id = metadata.get(WORKER_ID_HEADER).and_then(|v| v.to_str().ok());
    let token = metadata
        .get(AUTHORIZATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    worker_id.zip(token)
}

/// The id of the worker whose credentials the request carries, or UNAUTHENTICATED.
pub async fn authenticate<T>(store: &Store, request: &Request<T>) -> Result<String, Status> {
    let metadata = request.metadata();
    let worker_id = metadata
        .get(WORKER_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Status::unauthenticated(format!("missing {WORKER_ID_HEADER} metadata")))?;
    let token = metadata
        .get(AUTHORIZATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Status::unauthenticated("missing \"authorization: Bearer <token>\" metadata")
        })?;
    let stored = store
        .worker_token_hash(worker_id)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .ok_or_else(|| {
            Status::unauthenticated(format!(
                "unknown or deleted worker {worker_id}; register again"
            ))
        })?;
    if !secrets_match(&hash_token(token), &stored) {
        return Err(Status::unauthenticated(format!(
            "wrong token for worker {worker_id}"
        )));
    }
    Ok(worker_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
    }
}
