//! Request and response bodies of the v1 endpoints, and the typed error of a rejected request.

use serde::{Deserialize, Serialize};

use super::job::{IdInfo, Job, PartnerParams};
use super::signature::Signed;

/// `source_sdk` as Smile ID's REST docs ask direct integrators to send it.
pub const SOURCE_SDK: &str = "rest_api";
pub const SOURCE_SDK_VERSION: &str = concat!("kiosk-agent/", env!("CARGO_PKG_VERSION"));
/// The zip name every server SDK declares.
pub const ZIP_NAME: &str = "selfie.zip";

/// `POST /v1/upload` body (protocol §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepUploadRequest {
    pub file_name: String,
    pub smile_client_id: String,
    pub partner_params: PartnerParams,
    pub model_parameters: serde_json::Map<String, serde_json::Value>,
    pub callback_url: Option<String>,
    pub use_enrolled_image: bool,
    pub source_sdk: String,
    pub source_sdk_version: String,
    pub timestamp: String,
    pub signature: String,
    /// Sent only when re-preparing a job whose earlier prep_upload may have reached Smile ID (2215).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
    /// Capture metadata, as the mobile SDKs send it; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<super::job::Metadatum>,
}

impl PrepUploadRequest {
    pub fn new(job: &Job, partner_id: &str, signed: &Signed, retry: bool) -> Self {
        PrepUploadRequest {
            file_name: ZIP_NAME.into(),
            smile_client_id: partner_id.into(),
            partner_params: job.partner_params.clone(),
            model_parameters: Default::default(),
            callback_url: job.options.callback_url.clone(),
            use_enrolled_image: job.options.use_enrolled_image,
            source_sdk: SOURCE_SDK.into(),
            source_sdk_version: SOURCE_SDK_VERSION.into(),
            timestamp: signed.timestamp.clone(),
            signature: signed.signature.clone(),
            retry,
            metadata: job.metadata.clone(),
        }
    }
}

/// `POST /v1/upload` success body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepUploadResponse {
    pub upload_url: String,
    #[serde(default)]
    pub ref_id: String,
    pub smile_job_id: String,
    #[serde(default)]
    pub camera_config: serde_json::Value,
    pub code: String,
}

/// `POST /v1/job_status` body (protocol §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatusRequest {
    pub partner_id: String,
    pub user_id: String,
    pub job_id: String,
    pub image_links: bool,
    pub history: bool,
    pub timestamp: String,
    pub signature: String,
}

/// `POST /v1/job_status` response. `result` stays raw JSON: it is an object once processed
/// and may be a plain string while pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatusResponse {
    pub timestamp: String,
    pub signature: String,
    pub job_complete: bool,
    pub job_success: bool,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub result: serde_json::Value,
    #[serde(default)]
    pub history: serde_json::Value,
    #[serde(default)]
    pub image_links: serde_json::Value,
}

impl JobStatusResponse {
    /// `result.ResultCode`, when the result is an object.
    pub fn result_code(&self) -> Option<&str> {
        self.result.get("ResultCode")?.as_str()
    }
}

/// `POST /v1/id_verification` body (job type 5): id_info fields flattened at top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdVerificationRequest {
    pub partner_id: String,
    pub partner_params: PartnerParams,
    #[serde(flatten)]
    pub id_info: IdInfo,
    pub timestamp: String,
    pub signature: String,
    pub source_sdk: String,
    pub source_sdk_version: String,
}

/// What the agent should do about a rejected request (protocol §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// Server or network trouble: the same request later, with backoff.
    Transient,
    /// 2205/2405: re-sign with a fresh timestamp once; if it persists the key, environment or clock is wrong.
    Resign,
    /// 2215/2206 on prep_upload: the job exists from our own earlier attempt; re-prep with `retry: true`.
    RetryFlag,
    /// 2314, or an expired upload URL: prep again for a fresh upload URL, same job_id.
    NewUploadUrl,
    /// 2204: credentials or types wrong for this environment; stop the whole queue until fixed.
    AuthPause,
    /// A 4xx without Smile ID's code: not Smile ID's verdict on the job but a wrong URL, a proxy
    /// or a captive portal. Every job would meet it: stop the whole queue until fixed.
    Misdirected,
    /// Anything else: the job cannot succeed as it is.
    Final,
}

impl RetryClass {
    pub fn for_code(code: &str) -> Self {
        match code {
            "2201" | "2301" | "2401" => RetryClass::Transient,
            "2205" | "2405" => RetryClass::Resign,
            "2215" | "2206" => RetryClass::RetryFlag,
            "2314" => RetryClass::NewUploadUrl,
            "2204" => RetryClass::AuthPause,
            _ => RetryClass::Final,
        }
    }
}

/// A request Smile ID (or the network path to it) refused, or could not take now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
    pub class: RetryClass,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ApiError {
    fn describe(&self) -> String {
        let code = self.code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default();
        match self.class {
            // A 503 from a busy server or a proxy is no refusal: nothing is wrong with the job.
            RetryClass::Transient => format!(
                "Smile ID could not take the request now (HTTP {}{code}): {}; it is tried again",
                self.status, self.message
            ),
            _ => format!("Smile ID refused the request (HTTP {}{code}): {}", self.status, self.message),
        }
    }

    /// Reads a non-2xx response: `{error, code}` when the body has it, else the status decides.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let code = parsed.as_ref().and_then(|b| b.code.as_ref()).and_then(|c| match c {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let message = match parsed.and_then(|b| b.error) {
            Some(error) => quoted(&error),
            // Not Smile ID's own words (a proxy's or a captive portal's page, which may quote
            // the request): described, not repeated.
            None if body.iter().all(u8::is_ascii_whitespace) => format!("HTTP {status} with no body"),
            None => {
                let what = if is_web_page(body) { "a web page (a proxy or a Wi-Fi login page?)" } else { "an answer" };
                format!("HTTP {status} with {what} that is not Smile ID's, of {} bytes", body.len())
            }
        };
        let class = match &code {
            Some(c) => RetryClass::for_code(c),
            None if status >= 500 || status == 408 || status == 429 => RetryClass::Transient,
            None if status == 401 || status == 403 => RetryClass::Resign,
            None => RetryClass::Misdirected,
        };
        ApiError { status, code, message, class }
    }
}

/// `body` is an HTML page (a proxy's, a Wi-Fi login's), not an API's answer.
pub fn is_web_page(body: &[u8]) -> bool {
    body.windows(5).any(|w| w.eq_ignore_ascii_case(b"<html"))
}

/// The longest text from another server that is kept (in logs, job records, status, health).
const QUOTED_CHARS: usize = 160;

/// Text another server sent (an error message, an answer's body), fit to be logged and shown:
/// one line, no control characters, at most [`QUOTED_CHARS`] characters. The far end may echo
/// what it was sent; callers holding a secret that went with the request also redact it, and
/// anything shaped like a key, a signature or a token is cut out here whoever calls.
pub fn quoted(text: &str) -> String {
    let text = without_tokens(text);
    let mut out = String::new();
    // Bidi overrides and isolates would reorder what a terminal or log viewer shows.
    let text: String =
        text.chars().filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')).collect();
    for (i, word) in text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > QUOTED_CHARS {
            break;
        }
    }
    match out.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out,
    }
}

/// Runs of base64 or hex characters (%-escapes included, as a URL-encoded signature has them) at
/// least this long, with letters and digits both, or with capitals among a quarter to three
/// quarters of their letters (one signature in 1500 has no digit), are taken for secrets: a
/// request's signature (44), a SHA-256 (64), a bearer token. Words, ids (a database's 24, a UUID's
/// parts, a job_id's parts between its hyphens), paths and CamelCase names are shorter, or not so
/// mixed.
const TOKEN_CHARS: usize = 32;

/// A field of an id between '-' or '_': a word in one case, digits, or lower-case hex (a UUID's
/// parts, a job_id's time and random part). A URL-safe token (base64url: a JWT's parts, an OAuth
/// token) has '-' and '_' at random, between mixed-case runs that are none of these.
fn id_field(part: &str) -> bool {
    let all = |f: fn(&u8) -> bool| part.bytes().all(|b| f(&b));
    all(u8::is_ascii_lowercase)
        || all(u8::is_ascii_uppercase)
        || all(u8::is_ascii_digit)
        || all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// `run` (of [`TOKEN_CHARS`] or more) looks random: a key, signature or token.
fn token_shaped(run: &str) -> bool {
    if run.contains(['-', '_']) && run.split(['-', '_']).all(id_field) {
        return false;
    }
    let count = |f: fn(&char) -> bool| run.chars().filter(f).count();
    let (digits, upper, lower) =
        (count(char::is_ascii_digit), count(char::is_ascii_uppercase), count(char::is_ascii_lowercase));
    let letters = upper + lower;
    run.chars().count() >= TOKEN_CHARS && letters > 0 && (digits > 0 || (4 * upper >= letters && 4 * lower >= letters))
}

/// `text` with every token-shaped run replaced by "[redacted]".
fn without_tokens(text: &str) -> String {
    let in_token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '%' | '-' | '_');
    let (mut out, mut run) = (String::with_capacity(text.len()), String::new());
    let flush = |out: &mut String, run: &mut String| {
        out.push_str(if token_shaped(run) { "[redacted]" } else { run });
        run.clear();
    };
    for c in text.chars() {
        if in_token(c) {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    flush(&mut out, &mut run);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_or_key_echoed_back_is_not_kept() {
        let echo = r#"You are not authorized. Echo: {"partner_id":"085","signature":"GarTCb4B3MAA6iPEq5IG2pZ7+MPpfyK7iDFwqUuqyAQ=","timestamp":"2026-12-05T16:26:54.445Z"}"#;
        let e = ApiError::from_response(
            401,
            format!(r#"{{"code":"2205","error":{}}}"#, serde_json::json!(echo)).as_bytes(),
        );
        assert!(!e.message.contains("GarTCb4B3") && e.message.contains("[redacted]"), "{}", e.message);
        assert!(e.message.contains("not authorized"), "{}", e.message);
        assert_eq!(quoted("bearer 0123456789abcdef0123456789abcdef"), "bearer [redacted]");
        assert_eq!(
            quoted("signature: GarTCb4B3MAA6iPEq5IG2pZ7%2BMPpfyK7iDFwqUuqyAQ%3D, t=1"),
            "signature: [redacted], t=1"
        );
        // URL-safe tokens, their '-' and '_' anywhere: a JWT's parts, an opaque bearer token.
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrLTE2NzQ5MSIsImV4cCI6MTc2NX0.Qh3k_Vq2-Zr8pLx0WmN4tY7uE1aS5dF9gH2jK6lO3cB";
        // (Its short header is no secret: the algorithm's name.)
        assert_eq!(quoted(&format!("token {jwt} expired")), "token eyJhbGciOiJIUzI1NiJ9.[redacted].[redacted] expired");
        assert_eq!(quoted("auth_token: Zk3-qP9wL2xR7_tY4uI8oA1sD6fG0hJ5kL"), "auth_token: [redacted]");
        // Its '-' and '_' cutting it into short runs.
        assert_eq!(quoted("t: Zk3qP9wL2xR7-tY4uI8oA1sD6f_G0hJ5kL9mN2bV;"), "t: [redacted];");
        // A signature without a digit.
        assert_eq!(quoted("sig: GarTCbBMAAiPEqIGpZ+MPpfyKiDFwqUuqyAQbcdEfgH="), "sig: [redacted]");
        // What Smile ID says about a job stays whole.
        for plain in [
            "at com.example.AuthenticationFailedExceptionHandler.handle",
            "/var/lib/kiosk-agent/queue/jobs/pending/incoming/bundles",
            "Job already exists. Did you mean to set the retry flag to true?",
            "Invalid job_id kiosk-1796487742757-c47892cd2873",
            "user walkup-1796487742757-c47892cd2873 and job kiosk_1796487742757_c47892cd2873",
            "job_65f0c1a2b3c4d5e6f7a8b9c0_retry of ENHANCED_DOCUMENT_VERIFICATION_WITH_SELFIE",
            "enhanced_document_verification_with_selfie_and_back_of_id_card",
            "No job 65f0c1a2b3c4d5e6f7a8b9c0 for user 5d1b2c3a-9e8f-4a7b-8c6d-1e2f3a4b5c6d",
            "Unauthorized partner 1234567",
            "https://testapi.smileidentity.com/v1/upload",
        ] {
            assert_eq!(quoted(plain), plain);
        }
    }

    #[test]
    fn what_another_server_says_is_kept_to_one_short_line() {
        let long = format!("bad\r\n\tthing\x1b[31m {}", "é".repeat(400));
        let e = ApiError::from_response(
            400,
            format!(r#"{{"error":{},"code":"2213"}}"#, serde_json::json!(long)).as_bytes(),
        );
        assert!(e.message.starts_with("bad thing [31m éé") && e.message.ends_with('…'), "{}", e.message);
        assert_eq!(e.message.chars().count(), QUOTED_CHARS + 1);
        let page = format!("<html>\n{}Authorization: Bearer T0KEN</html>", "x ".repeat(3000));
        let e = ApiError::from_response(502, page.as_bytes());
        assert!(e.message.contains("web page") && !e.message.contains("T0KEN"), "{}", e.message);
        assert_eq!(quoted("a\u{202E}b\u{2066}c"), "abc", "no bidi override reaches a log");
        assert_eq!(quoted(" \n "), "");
        assert_eq!(quoted("Invalid job type"), "Invalid job type");
    }

    #[test]
    fn a_busy_server_is_not_said_to_refuse() {
        let busy = ApiError::from_response(503, b"<html>Service Unavailable</html>");
        assert!(busy.to_string().starts_with("Smile ID could not take the request now (HTTP 503)"), "{busy}");
        let refused = ApiError::from_response(400, br#"{"error":"Invalid job type","code":"2213"}"#);
        assert_eq!(refused.to_string(), "Smile ID refused the request (HTTP 400, code 2213): Invalid job type");
    }

    #[test]
    fn error_bodies_are_classified() {
        let e = ApiError::from_response(
            400,
            br#"{"error":"Job already exists. Did you mean to set the retry flag to true?","code":"2215"}"#,
        );
        assert_eq!(e.class, RetryClass::RetryFlag);
        assert_eq!(e.code.as_deref(), Some("2215"));
        assert!(e.to_string().contains("code 2215"));
        assert_eq!(
            ApiError::from_response(401, br#"{"error":"You are not authorized to do that.","code":2205}"#).class,
            RetryClass::Resign
        );
        assert_eq!(ApiError::from_response(502, b"<html>bad gateway</html>").class, RetryClass::Transient);
        assert_eq!(ApiError::from_response(400, br#"{"error":"x","code":"2213"}"#).class, RetryClass::Final);
        assert_eq!(ApiError::from_response(400, b"").message, "HTTP 400 with no body");
        assert_eq!(
            ApiError::from_response(404, b"<html>Not Found</html>").class,
            RetryClass::Misdirected,
            "a page without Smile ID's code is not Smile ID's verdict"
        );
    }
}
