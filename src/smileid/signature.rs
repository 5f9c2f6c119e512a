//! The v1 request signature (protocol §1):
//! `base64(HMAC-SHA256(key = api_key, msg = timestamp ‖ partner_id ‖ "sid_request"))`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::timestamp::UnixMillis;

type HmacSha256 = Hmac<Sha256>;

/// A `{timestamp, signature}` pair, made for exactly one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub timestamp: String,
    pub signature: String,
}

/// The partner's API key. Its `Debug` never prints the key, so it cannot leak through logs or errors.
#[derive(Clone)]
pub struct ApiKey(String);

impl Drop for ApiKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    fn mac(&self, timestamp: &str, partner_id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.0.as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(partner_id.as_bytes());
        mac.update(b"sid_request");
        mac
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Signature over an arbitrary timestamp string, exactly as the official SDKs compute it.
pub fn signature_for(key: &ApiKey, partner_id: &str, timestamp: &str) -> String {
    B64.encode(key.mac(timestamp, partner_id).finalize().into_bytes())
}

/// Signs at `now`, in the agent's own timestamp form.
pub fn sign_at(key: &ApiKey, partner_id: &str, now: UnixMillis) -> Signed {
    let timestamp = now.to_iso();
    let signature = signature_for(key, partner_id, &timestamp);
    Signed { timestamp, signature }
}

/// Checks a signature in constant time (response signatures, and the sandbox's request check).
pub fn verify(key: &ApiKey, partner_id: &str, timestamp: &str, signature: &str) -> bool {
    match B64.decode(signature.trim()) {
        Ok(raw) => key.mac(timestamp, partner_id).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_vector() {
        let key = ApiKey::new("kR3v9ZsQ2mXb7LpT0aYc1NdE5fGh8JkW-fake-sandbox-key");
        let s = sign_at(&key, "085", UnixMillis(1_714_557_600_000));
        assert_eq!(s.timestamp, "2024-05-01T10:00:00.000Z");
        assert_eq!(s.signature, "tipKAnMZdfRmY/S1JM3FpNiyZ5/3VosBRKVREBObXao=");
        assert!(verify(&key, "085", &s.timestamp, &s.signature));
        assert!(!verify(&key, "85", &s.timestamp, &s.signature));
        assert!(!verify(&key, "085", "2024-05-01T10:00:00.001Z", &s.signature));
        assert!(!verify(&key, "085", &s.timestamp, "not base64!"));
    }

    #[test]
    fn debug_hides_key() {
        let key = ApiKey::new("super-secret-key");
        assert!(!format!("{key:?}").contains("super-secret"));
    }
}

/// What a signature is for: some custody modes (Smile ID's `auth_smile`) mint it per job.
#[derive(Debug, Clone, Copy)]
pub struct SignContext<'a> {
    pub job_type: u8,
    pub job_id: &'a str,
    pub user_id: &'a str,
}

/// Produces a fresh `{timestamp, signature}` for each request: with a key on the device, or by
/// asking something that holds the key (see `uplink::custody`).
pub trait Signer: Send + Sync {
    fn sign(&self, now: UnixMillis, ctx: &SignContext) -> Result<Signed, SignError>;
    /// Whether job_status answers can be checked here (only with the key on the device).
    fn response_check(&self) -> crate::smileid::submit::ResponseCheck {
        crate::smileid::submit::ResponseCheck::TlsOnly
    }
    /// Whether it signs for no job at all (the credentials check): only the key on the device.
    /// Those that ask elsewhere are asked for jobs only (Smile ID's `auth_smile` mints per job).
    fn signs_without_a_job(&self) -> bool {
        false
    }
    /// Why it cannot sign at all (its credential was missing when the agent started), said as
    /// the reason uploads are paused.
    fn missing(&self) -> Option<&str> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not sign the request: {message}")]
pub struct SignError {
    pub message: String,
    /// The signer answered and refused this kiosk (a wrong device token or auth_token): every
    /// job would meet the same answer, so the uplink pauses rather than burn through the queue.
    pub refused: bool,
}

impl SignError {
    /// Signing failed this time (unreachable, an unreadable answer): tried again.
    pub fn failed(message: impl Into<String>) -> Self {
        SignError { message: message.into(), refused: false }
    }
}

/// Key custody (a): the API key read from a root-only file or a systemd credential.
#[derive(Debug, Clone)]
pub struct LocalKeySigner {
    pub partner_id: String,
    pub key: ApiKey,
}

impl Signer for LocalKeySigner {
    fn sign(&self, now: UnixMillis, _: &SignContext) -> Result<Signed, SignError> {
        Ok(sign_at(&self.key, &self.partner_id, now))
    }

    fn response_check(&self) -> crate::smileid::submit::ResponseCheck {
        crate::smileid::submit::ResponseCheck::Key(self.key.clone())
    }

    fn signs_without_a_job(&self) -> bool {
        true
    }
}
