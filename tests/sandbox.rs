//! `kiosk-agent sandbox` (started through the CLI) makes Smile ID's checks and answers in its
//! codes; the agent's own client completes every job type against it over verified TLS.

mod common;

use std::io::Write;

use common::*;
use serde_json::{json, Value};

use kiosk_agent::smileid::job::*;
use kiosk_agent::smileid::package::{build_zip, info_json};
use kiosk_agent::smileid::signature::{sign_at, ApiKey, LocalKeySigner, Signed};
use kiosk_agent::smileid::submit::{Outcome, ResponseCheck, Submission, SubmitConfig};
use kiosk_agent::smileid::timestamp::UnixMillis;
use kiosk_agent::smileid::wire::{PrepUploadRequest, PrepUploadResponse};
use kiosk_agent::uplink::drive::{drive, RetryPolicy};
use kiosk_agent::uplink::http::{HttpClient, Timeouts};

fn post(sb: &SandboxProcess, path: &str, body: &Value) -> (u16, Value) {
    let mut r = sandbox_agent(sb)
        .post(format!("{}{path}", sb.base_url))
        .header("Content-Type", "application/json")
        .send(serde_json::to_vec(body).unwrap())
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn put(sb: &SandboxProcess, url: &str, zip: Vec<u8>) -> (u16, Value) {
    let mut r = sandbox_agent(sb).put(url).header("Content-Type", "application/zip").send(zip).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn prep(sb: &SandboxProcess, j: &Job, retry: bool) -> (u16, Value, Signed) {
    let signed = sign_at(&key(), PARTNER_ID, UnixMillis::now());
    let body = serde_json::to_value(PrepUploadRequest::new(j, PARTNER_ID, &signed, retry)).unwrap();
    let (s, v) = post(sb, "/upload", &body);
    (s, v, signed)
}

fn prepped(sb: &SandboxProcess, j: &Job) -> (PrepUploadResponse, Signed) {
    let (s, v, signed) = prep(sb, j, false);
    assert_eq!(s, 200, "{v}");
    (serde_json::from_value(v).unwrap(), signed)
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// A zip with an arbitrary info.json and entries, for the negative cases.
fn raw_zip(info: &Value, entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    zw.start_file("info.json", o).unwrap();
    zw.write_all(&serde_json::to_vec(info).unwrap()).unwrap();
    for (n, b) in entries {
        zw.start_file(*n, o).unwrap();
        zw.write_all(b).unwrap();
    }
    zw.finish().unwrap().into_inner()
}

#[test]
fn rejects_bad_signature_stale_timestamp_and_unknown_partner() {
    let sb = start_sandbox(&[]);
    let j = job(JobType::BiometricKyc, "sig-1");
    let mut signed = sign_at(&key(), PARTNER_ID, UnixMillis::now());
    signed.signature = sign_at(&ApiKey::new("wrong-key"), PARTNER_ID, UnixMillis::now()).signature;
    let (s, v) =
        post(&sb, "/upload", &serde_json::to_value(PrepUploadRequest::new(&j, PARTNER_ID, &signed, false)).unwrap());
    assert_eq!((s, code(&v)), (401, "2205"), "{v}");

    let stale = sign_at(&key(), PARTNER_ID, UnixMillis(UnixMillis::now().0 - 3_600_000));
    let (s, v) =
        post(&sb, "/upload", &serde_json::to_value(PrepUploadRequest::new(&j, PARTNER_ID, &stale, false)).unwrap());
    assert_eq!((s, code(&v)), (401, "2205"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("clock"), "{v}");

    let other = sign_at(&key(), "999", UnixMillis::now());
    let (s, v) = post(&sb, "/upload", &serde_json::to_value(PrepUploadRequest::new(&j, "999", &other, false)).unwrap());
    assert_eq!((s, code(&v)), (401, "2205"), "{v}");

    let (s, v) = post(&sb, "/upload", &json!({"smile_client_id": PARTNER_ID}));
    assert_eq!((s, code(&v)), (400, "2213"), "{v}");
    let mut body = serde_json::to_value(PrepUploadRequest::new(
        &j,
        PARTNER_ID,
        &sign_at(&key(), PARTNER_ID, UnixMillis::now()),
        false,
    ))
    .unwrap();
    body["partner_params"]["job_type"] = json!("1");
    let (s, v) = post(&sb, "/upload", &body);
    assert_eq!((s, code(&v)), (400, "2204"), "{v}");
}

#[test]
fn rejects_reused_job_id_unless_retry() {
    let sb = start_sandbox(&[]);
    let j = job(JobType::SmartSelfieEnrollment, "reuse-1");
    prepped(&sb, &j);
    let (s, v, _) = prep(&sb, &j, false);
    assert_eq!((s, code(&v)), (400, "2215"), "{v}");
    let (s, v, _) = prep(&sb, &j, true);
    assert_eq!(s, 200, "{v}");
}

#[test]
fn rejects_bad_zips_each_with_its_code() {
    let sb = start_sandbox(&[]);
    let selfie = std::fs::read(repo().join("tests/vectors/input_images/selfie.jpg")).unwrap();

    // A file listed in info.json but absent from the zip.
    let j = job(JobType::SmartSelfieEnrollment, "zip-missing");
    let (p, signed) = prepped(&sb, &j);
    let info = serde_json::to_value(info_json(&j, PARTNER_ID, &signed, false, &p)).unwrap();
    let (s, v) = put(&sb, &p.upload_url, raw_zip(&info, &[("selfie.jpg", &selfie)]));
    assert_eq!((s, code(&v)), (400, "2213"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("liveness_0.jpg"), "{v}");

    // No selfie at all.
    let mut j = job(JobType::SmartSelfieEnrollment, "zip-noselfie");
    j.images.retain(|i| !i.image_type.is_selfie());
    let (p, signed) = prepped(&sb, &job(JobType::SmartSelfieEnrollment, "zip-noselfie"));
    let info = info_json(&j, PARTNER_ID, &signed, false, &p);
    let (s, v) = put(&sb, &p.upload_url, build_zip(&info, &j).unwrap());
    assert_eq!((s, code(&v)), (400, "2213"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("selfie"), "{v}");

    // A PNG where a JPEG must be.
    let mut j = job(JobType::SmartSelfieEnrollment, "zip-png");
    j.images[0].jpeg = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let (p, signed) = prepped(&sb, &job(JobType::SmartSelfieEnrollment, "zip-png"));
    let info = info_json(&j, PARTNER_ID, &signed, false, &p);
    let (s, v) = put(&sb, &p.upload_url, build_zip(&info, &j).unwrap());
    assert_eq!((s, code(&v)), (400, "2203"), "{v}");

    // Not a zip; a tampered URL.
    let j = job(JobType::SmartSelfieEnrollment, "zip-garbage");
    let (p, _) = prepped(&sb, &j);
    let (s, v) = put(&sb, &p.upload_url, b"not a zip".to_vec());
    assert_eq!((s, code(&v)), (400, "2203"), "{v}");
    let (s, v) = put(&sb, &p.upload_url.replace("Signature=", "Signature=x"), b"".to_vec());
    assert_eq!((s, code(&v)), (403, "2205"), "{v}");
    // Nothing was counted as an upload.
    assert!(sandbox_jobs(&sb).iter().all(|r| r["uploads"] == 0));
}

#[test]
fn rejects_expired_upload_url() {
    let sb = start_sandbox(&["--upload-url-ttl-secs", "0"]);
    let j = job(JobType::SmartSelfieEnrollment, "expired-1");
    let (p, signed) = prepped(&sb, &j);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let info = info_json(&j, PARTNER_ID, &signed, false, &p);
    let (s, v) = put(&sb, &p.upload_url, build_zip(&info, &j).unwrap());
    assert_eq!((s, code(&v)), (403, "2314"), "{v}");
}

#[test]
fn tls_is_verified_a_client_without_the_ca_is_refused() {
    let sb = start_sandbox(&[]);
    let http = HttpClient::new(None, &Timeouts::default()).unwrap();
    let req = kiosk_agent::smileid::submit::HttpRequest {
        method: kiosk_agent::smileid::submit::Method::Post,
        url: format!("{}/upload", sb.base_url),
        content_type: "application/json",
        body: b"{}".to_vec(),
    };
    let e = http.execute(&req).unwrap_err().to_string();
    assert!(e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"), "{e}");
}

#[test]
fn agent_completes_every_job_type_against_the_sandbox() {
    let sb = start_sandbox(&[]);
    let http = HttpClient::new(Some(&sb.ca_pem), &Timeouts::default()).unwrap();
    let signer = LocalKeySigner { partner_id: PARTNER_ID.into(), key: key() };
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    for jt in [
        JobType::BiometricKyc,
        JobType::SmartSelfieAuthentication,
        JobType::SmartSelfieEnrollment,
        JobType::DocumentVerification,
        JobType::EnhancedDocumentVerification,
    ] {
        let mut j = job(jt, &format!("agent-{}", jt.code()));
        j.partner_params.extra.insert("application_id".into(), "APP-777".into());
        let mut sub = Submission::new(j, cfg.clone()).unwrap();
        let out = drive(&mut sub, &http, &signer, &RetryPolicy::default(), |_, _| Ok(())).unwrap();
        let Outcome::Completed(status) = out else { panic!("{jt:?}: {out:?}") };
        assert!(status.job_success, "{jt:?}: {status:?}");
        assert_eq!(status.result["PartnerParams"]["job_id"], format!("agent-{}", jt.code()));
        // Echoed as Smile ID does: the partner's own params too.
        assert_eq!(status.result["PartnerParams"]["application_id"], "APP-777", "{jt:?}: {status:?}");
    }
    let ekyc = job(JobType::EnhancedKyc, "agent-5");
    let req = kiosk_agent::smileid::id_verification_request(
        &ekyc,
        PARTNER_ID,
        &sb.base_url,
        &sign_at(&key(), PARTNER_ID, UnixMillis::now()),
    )
    .unwrap();
    let resp = http.execute(&req).unwrap();
    let result = kiosk_agent::smileid::id_verification_result(resp.status, &resp.body).unwrap();
    assert_eq!(result["ResultCode"], "1012");
    let jobs = sandbox_jobs(&sb);
    assert_eq!(jobs.len(), 5);
    assert!(jobs.iter().all(|r| r["uploads"] == 1 && r["preps"] == 1), "{jobs:#?}");
}
