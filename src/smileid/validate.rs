//! Client-side checks that mirror the official SDKs (protocol §7), so a bad job is refused
//! on the kiosk with a message naming the field instead of being rejected by Smile ID later.

use std::collections::HashSet;

use super::job::{ImageType, Job, JobType};

/// One violation; `field` is the JSON path of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct ValidationError {
    pub field: String,
    pub problem: String,
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> ValidationError {
    ValidationError { field: field.into(), problem: problem.into() }
}

/// True for bytes that start with a JPEG SOI marker and end with EOI (trailing padding allowed).
pub fn looks_like_jpeg(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF {
        return false;
    }
    let tail = &b[b.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Checks a job before it is queued: partner params, options, images and id_info per job type.
pub fn validate(job: &Job) -> Result<(), ValidationError> {
    let pp = &job.partner_params;
    for (name, v) in [("user_id", &pp.user_id), ("job_id", &pp.job_id)] {
        if v.trim().is_empty() {
            return Err(err(format!("partner_params.{name}"), "must be a non-empty string"));
        }
        if v.chars().count() > 128 || v.chars().any(|c| c.is_control()) {
            return Err(err(format!("partner_params.{name}"), "must be at most 128 printable characters"));
        }
    }
    for (k, v) in &pp.extra {
        if !v.is_string() {
            return Err(err(format!("partner_params.{k}"), "extra partner params must be strings"));
        }
    }
    let o = &job.options;
    let has_callback = o.callback_url.as_deref().is_some_and(|u| !u.trim().is_empty());
    if !has_callback && !o.return_job_status {
        return Err(err(
            "options.return_job_status",
            "choose to get the result via callback_url or by job status query (set one)",
        ));
    }
    if let Some(url) = o.callback_url.as_deref().filter(|u| !u.is_empty()) {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(err("options.callback_url", "must be an http(s) URL"));
        }
    }
    validate_id_info(job)?;
    if !pp.job_type.has_images() {
        if !job.images.is_empty() {
            return Err(err("images", "job_type 5 (Enhanced KYC) takes no images"));
        }
        return Ok(());
    }
    validate_images(job)
}

fn validate_images(job: &Job) -> Result<(), ValidationError> {
    let jt = job.partner_params.job_type;
    if job.images.is_empty() {
        return Err(err("images", "must contain at least one image"));
    }
    let mut names = HashSet::new();
    for (i, img) in job.images.iter().enumerate() {
        let field = format!("images[{i}]");
        if !looks_like_jpeg(&img.jpeg) {
            return Err(err(field, "is not a JPEG (Smile ID accepts .jpg only)"));
        }
        if img.image_type.is_file() {
            let n = &img.file_name;
            if n.is_empty()
                || n.contains('/')
                || n.contains('\\')
                || n == "info.json"
                || !(n.ends_with(".jpg") || n.ends_with(".jpeg"))
            {
                return Err(err(
                    format!("{field}.file_name"),
                    "must be a plain .jpg file name (no directories, not info.json)",
                ));
            }
            if !names.insert(n.as_str()) {
                return Err(err(
                    format!("{field}.file_name"),
                    format!("{n:?} is used twice; every zipped image needs its own name"),
                ));
            }
        } else if !img.file_name.is_empty() {
            return Err(err(
                format!("{field}.file_name"),
                "must be empty for a base64 image type (image and file_name both can't exist)",
            ));
        }
    }
    let has_selfie = job.images.iter().any(|i| i.image_type.is_selfie());
    let enrolled_ok = jt.is_document() && job.options.use_enrolled_image;
    if !has_selfie && !enrolled_ok {
        return Err(err("images", "needs at least one selfie image (image_type_id 0 or 2)"));
    }
    let has_front = job.images.iter().any(|i| i.image_type.is_id_front());
    if jt.is_document() && !has_front {
        return Err(err("images", "a Document Verification job needs an ID card front image (image_type_id 1 or 3)"));
    }
    if matches!(jt, JobType::SmartSelfieAuthentication | JobType::SmartSelfieEnrollment) && has_front {
        return Err(err("images", "SmartSelfie jobs take no ID card images"));
    }
    let backs =
        job.images.iter().filter(|i| matches!(i.image_type, ImageType::IdBackFile | ImageType::IdBackBase64)).count();
    if backs > 1 {
        return Err(err("images", "at most one ID card back image"));
    }
    Ok(())
}

fn validate_id_info(job: &Job) -> Result<(), ValidationError> {
    let id = &job.id_info;
    let jt = job.partner_params.job_type;
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if let Some(c) = id.country.as_deref() {
        if !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(err("id_info.country", "must be an ISO 3166-1 alpha-2 code in capitals, e.g. NG"));
        }
    }
    if jt.is_document() && !present(&id.country) {
        return Err(err("id_info.country", "is required for Document Verification"));
    }
    if jt == JobType::EnhancedDocumentVerification && !present(&id.id_type) {
        return Err(err("id_info.id_type", "is required for Enhanced Document Verification"));
    }
    let entered = id.entered == Some(true);
    if jt == JobType::BiometricKyc && !entered && !job.images.iter().any(|i| i.image_type.is_id_front()) {
        return Err(err("id_info.entered", "Biometric KYC needs id_info with entered: true (or an ID card image)"));
    }
    if entered || jt == JobType::EnhancedKyc {
        for (name, v) in [("country", &id.country), ("id_type", &id.id_type), ("id_number", &id.id_number)] {
            if !present(v) {
                return Err(err(format!("id_info.{name}"), "is required when the ID details are to be verified"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smileid::job::*;

    pub(crate) const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0xFF, 0xD9];

    fn img(t: ImageType, name: &str) -> JobImage {
        JobImage { image_type: t, file_name: name.into(), jpeg: JPEG.to_vec() }
    }

    fn bkyc() -> Job {
        let mut images = vec![img(ImageType::SelfieFile, "selfie.jpg")];
        images.extend((0..8).map(|i| img(ImageType::LivenessFile, &format!("liveness_{i}.jpg"))));
        Job {
            partner_params: PartnerParams {
                user_id: "u1".into(),
                job_id: "j1".into(),
                job_type: JobType::BiometricKyc,
                extra: Default::default(),
            },
            id_info: IdInfo {
                country: Some("NG".into()),
                id_type: Some("NIN_V2".into()),
                id_number: Some("00000000000".into()),
                entered: Some(true),
                ..Default::default()
            },
            options: JobOptions::default(),
            images,
            consent: None,
            metadata: vec![],
        }
    }

    fn field_of(job: &Job) -> String {
        validate(job).unwrap_err().field
    }

    #[test]
    fn good_job_passes() {
        validate(&bkyc()).unwrap();
    }

    #[test]
    fn each_violation_names_its_field() {
        let mut j = bkyc();
        j.partner_params.user_id = " ".into();
        assert_eq!(field_of(&j), "partner_params.user_id");

        let mut j = bkyc();
        j.partner_params.extra.insert("kiosk".into(), serde_json::json!(5));
        assert_eq!(field_of(&j), "partner_params.kiosk");

        let mut j = bkyc();
        j.options.return_job_status = false;
        assert_eq!(field_of(&j), "options.return_job_status");

        let mut j = bkyc();
        j.images.retain(|i| !i.image_type.is_selfie());
        assert_eq!(field_of(&j), "images");

        let mut j = bkyc();
        j.images[2].jpeg = b"\x89PNG\r\n\x1a\nxxxx".to_vec();
        assert_eq!(field_of(&j), "images[2]");

        let mut j = bkyc();
        j.images[3].file_name = "../etc/passwd.jpg".into();
        assert_eq!(field_of(&j), "images[3].file_name");

        let mut j = bkyc();
        j.images[4].file_name = "liveness_0.jpg".into();
        assert_eq!(field_of(&j), "images[4].file_name");

        let mut j = bkyc();
        j.id_info.country = Some("Nigeria".into());
        assert_eq!(field_of(&j), "id_info.country");

        let mut j = bkyc();
        j.id_info.id_number = None;
        assert_eq!(field_of(&j), "id_info.id_number");

        let mut j = bkyc();
        j.id_info.entered = None;
        assert_eq!(field_of(&j), "id_info.entered");
    }

    #[test]
    fn document_rules() {
        let mut j = bkyc();
        j.partner_params.job_type = JobType::DocumentVerification;
        j.id_info = IdInfo::default();
        assert_eq!(field_of(&j), "id_info.country");
        j.id_info.country = Some("NG".into());
        assert_eq!(field_of(&j), "images");
        j.images.push(img(ImageType::IdFrontFile, "id_front.jpg"));
        validate(&j).unwrap();
        j.partner_params.job_type = JobType::EnhancedDocumentVerification;
        assert_eq!(field_of(&j), "id_info.id_type");
    }

    #[test]
    fn enhanced_kyc_takes_no_images() {
        let mut j = bkyc();
        j.partner_params.job_type = JobType::EnhancedKyc;
        assert_eq!(field_of(&j), "images");
        j.images.clear();
        validate(&j).unwrap();
    }
}
