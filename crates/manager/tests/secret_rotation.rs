//! Rotating the registration secret: new registrations need the new secret, registered
//! workers keep working with their tokens, the rotation survives a restart, and editing
//! the secret in the config afterwards makes the config's value apply again.
mod common;

use castanet_protocol::v1;
use common::{TestManager, authed, misc_sign_on, start, start_configured, start_in};

/// Registers `name` with `secret`; the worker id, or the refusal.
async fn register_with(m: &TestManager, secret: &str, name: &str) -> Result<String, tonic::Status> {
    m.grpc()
        .await
        .register(v1::RegisterRequest {
            registration_secret: secret.into(),
            name: name.into(),
            platform: "linux".into(),
        })
        .await
        .map(|answer| answer.into_inner().worker_id)
}

#[tokio::test]
async fn a_rotated_secret_admits_new_workers_and_registered_ones_keep_their_tokens() {
    let m = start().await;
    let (status, shown) = m.get("/api/v3/registration-secret").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["secret"], "test-secret");
    assert!(shown["rotated_at"].is_null());
    let (old_id, old_token) = m.register("before").await;

    let (status, rotated) = m
        .post("/api/v3/registration-secret/rotate", &serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_eq!(new_secret.len(), 32);
    assert_ne!(new_secret, "test-secret");
    assert!(rotated["rotated_at"].is_string());
    assert_eq!(m.get("/api/v3/registration-secret").await.1, rotated);

    let refused = register_with(&m, "test-secret", "late").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("wrong registration secret"),
        "{refused}"
    );
    register_with(&m, &new_secret, "after").await.unwrap();
    // The worker registered before the rotation signs on with its own token.
    m.grpc()
        .await
        .sign_on(authed(misc_sign_on("before", 1), &old_id, &old_token))
        .await
        .expect("an existing token stays valid");
    // The rotation is audited.
    let (_, audit) = m.get("/api/v3/audit").await;
    assert_eq!(
        audit["entries"][0]["path"],
        "/api/v3/registration-secret/rotate"
    );

    // After a restart on the same database and config, the rotated secret still applies.
    let TestManager { manager, dir, .. } = m;
    manager.shutdown().await.unwrap();
    let m = start_in(dir).await;
    assert!(register_with(&m, "test-secret", "x").await.is_err());
    register_with(&m, &new_secret, "after-restart")
        .await
        .unwrap();

    // Editing the secret in the config file afterwards makes the file's value apply.
    let TestManager { manager, dir, .. } = m;
    manager.shutdown().await.unwrap();
    let m = start_configured(dir, |config| {
        config.registration_secret = "edited-secret".into();
    })
    .await;
    assert!(register_with(&m, &new_secret, "y").await.is_err());
    register_with(&m, "edited-secret", "after-edit")
        .await
        .unwrap();
    let (_, shown) = m.get("/api/v3/registration-secret").await;
    assert_eq!(shown["secret"], "edited-secret");
    assert!(shown["rotated_at"].is_null());
    m.manager.shutdown().await.unwrap();
}
