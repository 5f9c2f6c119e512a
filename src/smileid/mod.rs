//! Smile ID v1, as pure code: signatures, request and response bodies, validation,
//! the upload zip, and the submission state machine. No sockets, files or clocks here.

pub mod job;
pub mod package;
pub mod signature;
pub mod submit;
pub mod timestamp;
pub mod validate;
pub mod wire;

use job::Job;
use signature::Signed;
use submit::{HttpRequest, Method};
use wire::{ApiError, IdVerificationRequest, SOURCE_SDK, SOURCE_SDK_VERSION};

/// Smile ID's sandbox and production API roots.
pub const SANDBOX_URL: &str = "https://testapi.smileidentity.com/v1";
pub const PRODUCTION_URL: &str = "https://api.smileidentity.com/v1";

/// `POST /v1/id_verification` for an Enhanced KYC job (type 5, synchronous, no images).
pub fn id_verification_request(
    job: &Job,
    partner_id: &str,
    base_url: &str,
    signed: &Signed,
) -> Result<HttpRequest, validate::ValidationError> {
    validate::validate(job)?;
    if job.partner_params.job_type != job::JobType::EnhancedKyc {
        return Err(validate::ValidationError {
            field: "partner_params.job_type".into(),
            problem: "must be 5 for id_verification".into(),
        });
    }
    let body = IdVerificationRequest {
        partner_id: partner_id.into(),
        partner_params: job.partner_params.clone(),
        id_info: job.id_info.clone(),
        timestamp: signed.timestamp.clone(),
        signature: signed.signature.clone(),
        source_sdk: SOURCE_SDK.into(),
        source_sdk_version: SOURCE_SDK_VERSION.into(),
    };
    Ok(HttpRequest {
        method: Method::Post,
        url: format!("{}/id_verification", base_url.trim_end_matches('/')),
        content_type: "application/json",
        body: serde_json::to_vec(&body).expect("request bodies always serialize"),
    })
}

/// `POST /v1/valid_documents`, signed: it makes no job and costs nothing, so it tells before any
/// job needs them whether Smile ID takes this kiosk's partner id and key (the Android SDK signs
/// the same call; protocol §2).
pub fn credentials_check_request(partner_id: &str, base_url: &str, signed: &Signed) -> HttpRequest {
    let body = serde_json::json!({
        "partner_id": partner_id,
        "timestamp": signed.timestamp,
        "signature": signed.signature,
    });
    HttpRequest {
        method: Method::Post,
        url: format!("{}/valid_documents", base_url.trim_end_matches('/')),
        content_type: "application/json",
        body: serde_json::to_vec(&body).expect("request bodies always serialize"),
    }
}

/// Smile ID's refusal of the credentials, from the answer to [`credentials_check_request`]: only
/// an answer with Smile ID's own code for credentials (2204, 2205, 2405) is one. Anything else
/// (the list, an API without the endpoint, a server error) settles nothing: the jobs' own
/// requests still find out.
pub fn credentials_refused(status: u16, body: &[u8]) -> Option<ApiError> {
    if (200..300).contains(&status) {
        return None;
    }
    let e = ApiError::from_response(status, body);
    let names_credentials =
        e.code.is_some() && matches!(e.class, wire::RetryClass::Resign | wire::RetryClass::AuthPause);
    names_credentials.then_some(ApiError { class: wire::RetryClass::AuthPause, ..e })
}

/// A 2xx answer that is not even the start of a JSON object, or a redirect (Smile ID's API sends
/// none): a page from something between the kiosk and Smile ID (a Wi-Fi login page, a proxy),
/// classed [`wire::RetryClass::Misdirected`]; the uplink takes it for the link down. An answer
/// cut short mid-JSON is not one (that is the network's, and retried).
pub fn not_smile_ids(status: u16, body: &[u8]) -> Option<ApiError> {
    let json = body.trim_ascii_start().starts_with(b"{");
    if (300..400).contains(&status) {
        let message = format!("HTTP {status}, a redirect (a Wi-Fi login page or a proxy?), not Smile ID's answer");
        return Some(ApiError { status, code: None, message, class: wire::RetryClass::Misdirected });
    }
    ((200..300).contains(&status) && !json).then(|| ApiError::from_response(status, body))
}

/// An answer to [`credentials_check_request`] that is not Smile ID's: a page or redirect
/// ([`not_smile_ids`]), or a 2xx without the list Smile ID answers with (a portal's JSON).
pub fn not_a_credentials_answer(status: u16, body: &[u8]) -> Option<ApiError> {
    if let Some(page) = not_smile_ids(status, body) {
        return Some(page);
    }
    let listed = serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("valid_documents").is_some());
    ((200..300).contains(&status) && !listed).then(|| ApiError {
        status,
        code: None,
        message: format!("HTTP {status} with JSON that is not Smile ID's answer"),
        class: wire::RetryClass::Misdirected,
    })
}

/// Reads the synchronous id_verification answer: the result object, or the typed refusal.
pub fn id_verification_result(status: u16, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if !(200..300).contains(&status) {
        return Err(ApiError::from_response(status, body));
    }
    serde_json::from_slice(body).map_err(|e| ApiError {
        status,
        code: None,
        message: format!("unreadable id_verification answer: {e}"),
        class: wire::RetryClass::Transient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_in_smile_ids_place_is_told_from_an_answer_cut_short() {
        let page = not_smile_ids(200, b"\n<!DOCTYPE html><html>Log in to Airport Wi-Fi</html>").expect("a page");
        assert_eq!(page.class, wire::RetryClass::Misdirected);
        assert!(page.message.contains("Wi-Fi login"), "{}", page.message);
        assert!(not_smile_ids(200, br#" {"upload_url": "https://x/"#).is_none(), "cut short: the network's");
        assert!(not_smile_ids(502, b"<html>Bad gateway</html>").is_none(), "not a 2xx: classed as such");
        let redirect = not_smile_ids(307, b"").expect("Smile ID's API sends no redirect");
        assert!(redirect.message.contains("redirect") && redirect.class == wire::RetryClass::Misdirected);
        // The credentials check's answer is Smile ID's list, not any JSON.
        assert!(not_a_credentials_answer(200, br#"{"valid_documents": []}"#).is_none());
        assert!(not_a_credentials_answer(200, br#"{"status": "log in first"}"#).is_some());
        assert!(not_a_credentials_answer(401, br#"{"code": "2205"}"#).is_none(), "a refusal is Smile ID's");
    }

    #[test]
    fn only_smile_ids_own_codes_refuse_the_credentials() {
        let refused = |status, body: &str| credentials_refused(status, body.as_bytes()).map(|e| e.code);
        for code in ["2204", "2205", "2405"] {
            let body = format!(r#"{{"error":"You are not authorized to do that","code":"{code}"}}"#);
            assert_eq!(refused(401, &body), Some(Some(code.to_string())));
        }
        // The list, an API without the endpoint, a proxy's 403, a server error: nothing settled.
        assert_eq!(refused(200, r#"{"valid_documents":[]}"#), None);
        assert_eq!(refused(404, "Not Found"), None);
        assert_eq!(refused(403, "<html>Forbidden</html>"), None);
        assert_eq!(refused(500, r#"{"error":"System error","code":"2201"}"#), None);
    }

    #[test]
    fn the_check_is_signed_as_every_request() {
        let key = signature::ApiKey::new("k");
        let signed = signature::sign_at(&key, "001", timestamp::UnixMillis(1_700_000_000_000));
        let req = credentials_check_request("001", "https://h/v1/", &signed);
        assert_eq!(req.url, "https://h/v1/valid_documents");
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert!(signature::verify(
            &key,
            "001",
            body["timestamp"].as_str().unwrap(),
            body["signature"].as_str().unwrap()
        ));
    }
}
