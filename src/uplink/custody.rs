//! Key custody: who holds the Smile ID API key and produces each request's signature.
//!
//! * `local_key`: the key in a root-only file or a systemd credential on the kiosk
//!   ([`LocalKeySigner`](crate::smileid::signature::LocalKeySigner)).
//! * `partner_signer`: the key stays on the partner's backend; the kiosk asks it over TLS for
//!   `{timestamp, signature}` per request, authenticated with a device token.
//! * `auth_smile`: Smile ID's mobile flow; the kiosk holds an `auth_token` and Smile ID mints
//!   the signature per job through `POST /v1/auth_smile`.
//!
//! In the two remote modes the key is never on the device, so job_status answers are trusted
//! on TLS alone. No mode writes a key or token into logs, bundles or errors.

use serde::Deserialize;

use crate::smileid::signature::{SignContext, SignError, Signed, Signer};
use crate::smileid::submit::{HttpRequest, Method};
use crate::smileid::timestamp::{self, UnixMillis};

use super::http::HttpClient;

/// No credential to sign with: its file was missing, unreadable or empty when the service
/// started. The service runs all the same (screens, sessions, the queue), and its uplink stays
/// paused saying which file is missing, rather than leave the kiosk dark and restarting.
pub struct MissingCredential {
    why: String,
}

impl MissingCredential {
    /// `problem`: what reading the credential said (it names the file, never a secret).
    pub fn new(problem: &dyn std::fmt::Display) -> Self {
        let why = format!(
            "uploads are paused, every job kept: {problem}; then restart the service (`systemctl restart kiosk-agent`), which reads its credentials when it starts"
        );
        MissingCredential { why }
    }
}

impl Signer for MissingCredential {
    fn sign(&self, _now: UnixMillis, _ctx: &SignContext) -> Result<Signed, SignError> {
        Err(SignError { message: self.why.clone(), refused: true })
    }

    fn missing(&self) -> Option<&str> {
        Some(&self.why)
    }
}

/// A secret read from a file: `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Deserialize)]
struct SignedAnswer {
    timestamp: String,
    signature: String,
    #[serde(default)]
    success: Option<bool>,
}

fn read_answer(what: &str, status: u16, body: &[u8]) -> Result<Signed, SignError> {
    if !(200..300).contains(&status) {
        // The answer's words are not kept: a signer (or a proxy before it) may echo the request,
        // token included, in any encoding. Its status and a short code say enough here; its own
        // log says the rest.
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| match v.get("code")? {
                serde_json::Value::String(c) => Some(c.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|c| c.len() <= 16 && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or_else(String::new, |c| format!(", code {c}"));
        // Not this kiosk's to sign for (the token), rather than a passing fault of the signer.
        let refused = matches!(status, 401 | 403) || crate::smileid::credentials_refused(status, body).is_some();
        return Err(SignError {
            message: format!(
                "{what} refused to sign (HTTP {status}{code}); its answer is not repeated here, as it may quote the request: see the signer's own log"
            ),
            refused,
        });
    }
    let a: SignedAnswer = serde_json::from_slice(body)
        .map_err(|e| SignError::failed(format!("{what} answered something unreadable: {e}")))?;
    if a.success == Some(false) {
        return Err(SignError::failed(format!("{what} answered success: false")));
    }
    if timestamp::parse(&a.timestamp).is_none() || a.signature.len() != 44 {
        return Err(SignError::failed(format!("{what} answered a malformed timestamp or signature")));
    }
    Ok(Signed { timestamp: a.timestamp, signature: a.signature })
}

/// Custody (b): the partner's backend signs; the kiosk authenticates with a device token.
#[derive(Debug)]
pub struct PartnerSigner {
    pub url: String,
    pub partner_id: String,
    pub device_token: Secret,
    pub http: HttpClient,
}

impl Signer for PartnerSigner {
    fn sign(&self, _now: UnixMillis, ctx: &SignContext) -> Result<Signed, SignError> {
        let body = serde_json::json!({"partner_id": self.partner_id, "job_id": ctx.job_id, "user_id": ctx.user_id, "job_type": ctx.job_type});
        let req = HttpRequest {
            method: Method::Post,
            url: self.url.clone(),
            content_type: "application/json",
            body: serde_json::to_vec(&body).expect("json"),
        };
        let resp = self
            .http
            .execute_with_bearer(&req, self.device_token.expose())
            .map_err(|e| SignError::failed(format!("the partner signer is unreachable: {e}")))?;
        read_answer("the partner signer", resp.status, &resp.body)
    }
}

/// Custody (c): Smile ID mints the signature per job from the kiosk's auth_token.
#[derive(Debug)]
pub struct AuthSmileSigner {
    /// The API root, e.g. `https://testapi.smileidentity.com/v1`.
    pub base_url: String,
    pub partner_id: String,
    pub auth_token: Secret,
    pub production: bool,
    pub http: HttpClient,
}

impl Signer for AuthSmileSigner {
    fn sign(&self, _now: UnixMillis, ctx: &SignContext) -> Result<Signed, SignError> {
        let body = serde_json::json!({
            "job_type": ctx.job_type, "enrollment": ctx.job_type == 4, "job_id": ctx.job_id, "user_id": ctx.user_id,
            "signature": true, "production": self.production, "partner_id": self.partner_id, "auth_token": self.auth_token.expose(),
        });
        let req = HttpRequest {
            method: Method::Post,
            url: format!("{}/auth_smile", self.base_url.trim_end_matches('/')),
            content_type: "application/json",
            body: serde_json::to_vec(&body).expect("json"),
        };
        let resp = self.http.execute(&req).map_err(|e| SignError::failed(format!("auth_smile is unreachable: {e}")))?;
        read_answer("auth_smile", resp.status, &resp.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signers_answer_is_never_repeated_in_any_encoding_of_the_token() {
        let token = "q8Z/vT+3kLmN0pQr/StUv+WxYz12==";
        for echo in [
            format!(r#"{{"error":"bad token {}","code":"2205"}}"#, token.replace('/', "\\/")),
            format!("token={}", token.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D")),
            format!("<pre>Bearer {}\n{}</pre>", &token[..10], &token[10..]),
        ] {
            let e = read_answer("the partner signer", 401, echo.as_bytes()).expect_err("refused");
            assert!(e.refused, "401 is this kiosk's token refused");
            assert!(!e.message.contains("q8Z") && !e.message.contains("WxYz"), "{}", e.message);
            assert!(e.message.contains("HTTP 401"), "{}", e.message);
        }
        let e = read_answer("auth_smile", 403, br#"{"code":"2205","error":"x"}"#).expect_err("refused");
        assert!(e.message.contains("HTTP 403, code 2205"), "{}", e.message);
        let e = read_answer("auth_smile", 500, br#"{"code":"<script>alert(1)</script>"}"#).expect_err("failed");
        assert!(!e.refused && !e.message.contains("script"), "{}", e.message);
    }
}
