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
