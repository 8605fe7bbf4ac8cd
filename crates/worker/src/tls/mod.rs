//! Trusting a manager that serves TLS. The manager's certificate is usually self-signed,
//! so trust comes from its SHA-256 fingerprint: given by the operator, or pinned on first
//! use and kept with the worker's credentials. A CA file can stand in for (or add to) the
//! pin. A certificate that does not match is refused, and the refusal says why.
mod connector;

pub use connector::TlsConnector;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};

/// Whether a (normalised) manager URL asks for TLS.
pub(crate) fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// A certificate's SHA-256 fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

/// Uppercase hex pairs joined by colons, as `openssl x509 -fingerprint -sha256` prints.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Accepts 64 hex digits, with or without colons, in any case, with an optional
/// `sha256:` / `SHA256 Fingerprint=` prefix.
impl FromStr for Fingerprint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let body = trimmed
            .rsplit_once('=')
            .map_or(trimmed, |(_, after)| after)
            .trim();
        let body = body
            .strip_prefix("sha256:")
            .or_else(|| body.strip_prefix("SHA256:"))
            .unwrap_or(body);
        let digits: String = body.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(&digits).ok().filter(|b| b.len() == 32);
        match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            Some(bytes) => Ok(Self(bytes)),
            None => Err(format!(
                "{trimmed:?} is not a SHA-256 certificate fingerprint (64 hex digits, colons allowed)"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("CA certificate file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a client trusts in a manager's certificate, and what it pinned or refused.
/// Clones share the pin and the last refusal.
#[derive(Clone)]
pub struct ManagerTrust {
    verifier: Arc<PinningVerifier>,
}

impl ManagerTrust {
    /// `pin`: the fingerprint the certificate must have. `ca_file`: PEM CA certificates
    /// the chain must lead to (checked as well as the pin). `trust_on_first_use`: with
    /// neither, accept the first certificate seen and pin it.
    pub fn new(
        pin: Option<Fingerprint>,
        ca_file: Option<&Path>,
        trust_on_first_use: bool,
    ) -> Result<Self, TrustError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain_verifier = match ca_file {
            Some(path) => Some(
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(read_roots(path)?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| TrustError::CaFile {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?,
            ),
            None => None,
        };
        Ok(Self {
            verifier: Arc::new(PinningVerifier {
                provider,
                chain_verifier,
                ca_file: ca_file.map(Path::to_path_buf),
                pin: Mutex::new(pin),
                trust_on_first_use,
                refusal: Mutex::new(None),
            }),
        })
    }

    /// A rustls client configuration that checks certificates this way.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, TrustError> {
        let mut config = ClientConfig::builder_with_provider(self.verifier.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// The fingerprint certificates must match: given, or pinned on first use.
    pub fn pinned(&self) -> Option<Fingerprint> {
        *lock(&self.verifier.pin)
    }

    /// Why the last refused certificate was refused (taken: asked once per refusal).
    pub fn take_refusal(&self) -> Option<String> {
        lock(&self.verifier.refusal).take()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_roots(path: &Path) -> Result<RootCertStore, TrustError> {
    let error = |message: String| TrustError::CaFile {
        path: path.to_path_buf(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))? {
        roots
            .add(cert.map_err(|e| error(e.to_string()))?)
            .map_err(|e| error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(error("no PEM certificate in the file".into()));
    }
    Ok(roots)
}

#[derive(Debug)]
struct PinningVerifier {
    provider: Arc<CryptoProvider>,
    chain_verifier: Option<Arc<WebPkiServerVerifier>>,
    ca_file: Option<PathBuf>,
    pin: Mutex<Option<Fingerprint>>,
    trust_on_first_use: bool,
    refusal: Mutex<Option<String>>,
}

/// A refusal with its explanation, for the handshake error.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl PinningVerifier {
    fn refuse(&self, message: String) -> rustls::Error {
        // The caller reports the refusal (taken with `take_refusal`) as its error.
        tracing::debug!("{message}");
        *lock(&self.refusal) = Some(message.clone());
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            Refused(message),
        ))))
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain_verifier
            && let Err(e) =
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            let ca = self.ca_file.as_deref().unwrap_or(Path::new("?")).display();
            return Err(self.refuse(format!(
                "its TLS certificate does not verify against the CA in {ca}: {e}"
            )));
        }
        let presented = Fingerprint::of(end_entity);
        let mut pin = lock(&self.pin);
        match *pin {
            Some(pinned) if pinned == presented => Ok(ServerCertVerified::assertion()),
            Some(pinned) => {
                drop(pin);
                Err(self.refuse(format!(
                    "its TLS certificate does not match the pinned fingerprint: it has \
                     {presented}, but {pinned} is pinned (given with --manager-fingerprint, or \
                     pinned on first use in the worker's credentials). If the manager's \
                     certificate was replaced on purpose, compare with `castanet manager \
                     fingerprint` on the manager host and pass the new one with \
                     --manager-fingerprint"
                )))
            }
            // The CA vouched for it; nothing is pinned.
            None if self.chain_verifier.is_some() => Ok(ServerCertVerified::assertion()),
            None if self.trust_on_first_use => {
                tracing::warn!(
                    fingerprint = %presented,
                    "trusting the manager's TLS certificate on first use and pinning it; \
                     compare with `castanet manager fingerprint` on the manager host"
                );
                *pin = Some(presented);
                Ok(ServerCertVerified::assertion())
            }
            None => {
                drop(pin);
                Err(self.refuse(format!(
                    "its TLS certificate is not trusted yet: the certificate's SHA-256 fingerprint is \
                     {presented}. Compare it with `castanet manager fingerprint` on the manager \
                     host, then pass it with --manager-fingerprint (or pass --manager-ca)"
                )))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let fingerprint = Fingerprint::of(b"certificate");
        let shown = fingerprint.to_string();
        assert_eq!(shown.len(), 95);
        let plain = shown.replace(':', "");
        for spelling in [
            shown.clone(),
            plain.to_lowercase(),
            format!("sha256:{plain}"),
            format!("SHA256 Fingerprint={shown}"),
            format!("  {shown}\n"),
        ] {
            assert_eq!(
                spelling.parse::<Fingerprint>(),
                Ok(fingerprint),
                "{spelling}"
            );
        }
        for bad in ["", "AB:CD", &plain[..62], &format!("{plain}00"), "zz"] {
            let err = bad.parse::<Fingerprint>().unwrap_err();
            assert!(err.contains("64 hex digits"), "{err}");
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let err = ManagerTrust::new(None, Some(Path::new("/nonexistent/ca.pem")), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
