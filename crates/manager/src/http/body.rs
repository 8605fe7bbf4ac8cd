//! Request bodies as JSON objects. serde reads a struct from a JSON array by position, so
//! without this check `[null,null]` would pass as a request with every field left out.
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses `body` as the JSON object `T`; `what` names the body in the error
/// ("invalid jobs query: …").
pub fn parse_object<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    // JSON is UTF-8; serde_json checks only the strings it keeps, so invalid bytes in a
    // field it skips would otherwise pass.
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid {what}: not UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let first = text.bytes().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(b'{') {
        let got = match first {
            None => "an empty body",
            Some(b'[') => "an array",
            Some(_) => "something else",
        };
        return Err(ApiError::bad_request(format!(
            "invalid {what}: expected a JSON object, got {got}"
        )));
    }
    // Checked UTF-8 already: from_str does not check it again.
    serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Change {
        id: Option<String>,
        name: Option<String>,
    }

    #[test]
    fn only_objects_are_requests() {
        assert!(parse_object::<Change>(b" {\"name\": \"x\"}", "tag change").is_ok());
        for (body, got) in [
            (&b"[null,null]"[..], "an array"),
            (b"", "an empty body"),
            (b"null", "something else"),
        ] {
            let error = parse_object::<Change>(body, "tag change").expect_err("refused");
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(
                error.message,
                format!("invalid tag change: expected a JSON object, got {got}")
            );
        }
    }
}
