//! The registration secret workers enrol with. The config file holds the first one; a
//! rotation (API or CLI) stores its replacement here, which applies for as long as the
//! config still holds the secret it replaced — so editing the config later wins again.
//! Registered workers keep their own tokens through every rotation.
use super::{Store, StoreResult, hash_api_token, now};

/// The secret in force and, if it came from a rotation, when that was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationSecret {
    pub secret: String,
    pub rotated_at: Option<String>,
}

impl Store {
    /// The secret workers must present now, given the config file's `config_secret`.
    pub async fn registration_secret(
        &self,
        config_secret: &str,
    ) -> StoreResult<RegistrationSecret> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT secret, config_secret_hash, rotated_at FROM registration_secret WHERE id = 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some((secret, replaced, rotated_at)) if replaced == hash_api_token(config_secret) => {
                RegistrationSecret {
                    secret,
                    rotated_at: Some(rotated_at),
                }
            }
            _ => RegistrationSecret {
                secret: config_secret.to_string(),
                rotated_at: None,
            },
        })
    }

    /// Makes `new_secret` the one in force, replacing whatever was before it.
    pub async fn rotate_registration_secret(
        &self,
        new_secret: &str,
        config_secret: &str,
    ) -> StoreResult<RegistrationSecret> {
        let rotated_at = now();
        sqlx::query(
            "INSERT INTO registration_secret (id, secret, config_secret_hash, rotated_at)
             VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET secret = $1, config_secret_hash = $2, rotated_at = $3",
        )
        .bind(new_secret)
        .bind(hash_api_token(config_secret))
        .bind(&rotated_at)
        .execute(self.writer()?)
        .await?;
        Ok(RegistrationSecret {
            secret: new_secret.to_string(),
            rotated_at: Some(rotated_at),
        })
    }
}
