//! The agent's Smile ID client checked against what the official SDKs really sent
//! (tests/vectors, recorded from smile-id-core 3.0.1 and smile-identity-core 3.2.1).
//!
//! Each Python scenario is replayed through the sans-IO [`Submission`]: fed the SDK's own
//! `{timestamp, signature}` pairs and the recorder's answers, the agent must produce the same
//! prep_upload body, info.json, zip entries and job_status body, field by field. Allowed
//! differences, each asserted explicitly: `source_sdk`/`source_sdk_version` (REST integrators
//! send "rest_api"), `package_information.language` ("rust"), `server_information` (the agent
//! sends the prep_upload object like JS/Ruby; Python sends only the URL), the zip's compression
//! method for JPEGs (stored, which Smile ID accepts as it does from the JS SDK), and Python's
//! junk `base64imgString` zip entries (an SDK bug, protocol §4).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use kiosk_agent::smileid::job::{IdInfo, Job, JobImage, JobOptions, PartnerParams};
use kiosk_agent::smileid::signature::{signature_for, ApiKey, Signed};
use kiosk_agent::smileid::submit::{HttpResponse, Method, Outcome, Output, ResponseCheck, Submission, SubmitConfig};
use kiosk_agent::smileid::timestamp::UnixMillis;

const KEY: &str = "kR3v9ZsQ2mXb7LpT0aYc1NdE5fGh8JkW-fake-sandbox-key";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn load(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn signatures_match_the_sdks_byte_for_byte() {
    let v = load(&vectors().join("signatures.json"));
    let cases = v["vectors"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for c in cases {
        let key = ApiKey::new(c["api_key"].as_str().unwrap());
        let got = signature_for(&key, c["partner_id"].as_str().unwrap(), c["timestamp"].as_str().unwrap());
        assert_eq!(got, c["signature"].as_str().unwrap(), "{}", c["note"]);
        assert_eq!(got, c["openssl_cli"].as_str().unwrap());
    }
    // Node's numeric-timestamp quirk: the signed string is the ISO form of the number.
    let q = &v["node_numeric_timestamp_quirk"];
    let ms = q["input"].as_i64().unwrap();
    assert_eq!(UnixMillis(ms).to_iso(), q["signed_string"].as_str().unwrap());
    let key = ApiKey::new(q["api_key"].as_str().unwrap());
    assert_eq!(
        kiosk_agent::smileid::signature::sign_at(&key, "085", UnixMillis(ms)).signature,
        q["signature"].as_str().unwrap()
    );
}

/// Rebuilds the job the SDK was given from its recorded requests.
fn job_from(dir: &Path) -> (Job, Value, Value) {
    let prep = load(&dir.join("01_POST_v1_upload.json"));
    let body = prep["body_json"].clone();
    let info = load(&dir.join("02_info.json"));
    let images = info["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let t = serde_json::from_value(i["image_type_id"].clone()).unwrap();
            let name = i["file_name"].as_str().unwrap();
            let jpeg = if name.is_empty() {
                B64.decode(i["image"].as_str().unwrap()).unwrap()
            } else {
                std::fs::read(vectors().join("input_images").join(name)).unwrap()
            };
            JobImage { image_type: t, file_name: name.into(), jpeg }
        })
        .collect();
    let pp: PartnerParams = serde_json::from_value(body["partner_params"].clone()).unwrap();
    let id_info: IdInfo = serde_json::from_value(info["id_info"].clone()).unwrap();
    let options = JobOptions {
        callback_url: body["callback_url"].as_str().map(str::to_owned),
        use_enrolled_image: body["use_enrolled_image"].as_bool().unwrap(),
        ..JobOptions::default()
    };
    (Job { partner_params: pp, id_info, options, images, consent: None, metadata: vec![] }, prep, info)
}

fn signed_of(body: &Value) -> Signed {
    Signed {
        timestamp: body["timestamp"].as_str().unwrap().into(),
        signature: body["signature"].as_str().unwrap().into(),
    }
}

fn assert_same_except(ours: &Value, theirs: &Value, except: &[&str], what: &str) {
    let (o, t) = (ours.as_object().unwrap(), theirs.as_object().unwrap());
    let ok: Vec<_> = o.keys().filter(|k| !except.contains(&k.as_str())).collect();
    let tk: Vec<_> = t.keys().filter(|k| !except.contains(&k.as_str())).collect();
    assert_eq!(
        BTreeMap::from_iter(ok.iter().map(|k| (*k, ()))).keys().collect::<Vec<_>>(),
        BTreeMap::from_iter(tk.iter().map(|k| (*k, ()))).keys().collect::<Vec<_>>(),
        "{what}: field names"
    );
    for k in ok {
        assert_eq!(o[k], t[k], "{what}: field {k}");
    }
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().to_string(), b)
        })
        .collect()
}

fn replay(scenario: &str) {
    let dir = vectors().join(scenario);
    let key = ApiKey::new(KEY);
    let (job, prep, info) = job_from(&dir);
    let prep_body = &prep["body_json"];
    // The SDK's own signature is what the agent computes for the same timestamp.
    assert_eq!(
        signature_for(&key, "085", prep_body["timestamp"].as_str().unwrap()),
        prep_body["signature"].as_str().unwrap()
    );

    let mut sub =
        Submission::new(job, SubmitConfig::new("085", "http://127.0.0.1:18080/v1", ResponseCheck::Key(key))).unwrap();
    let now = UnixMillis(0);
    assert_eq!(sub.poll_output(now), Output::NeedSignature);
    sub.provide_signature(signed_of(prep_body));
    let Output::Send(req) = sub.poll_output(now) else { panic!("expected prep_upload") };
    assert_eq!(req.url, "http://127.0.0.1:18080/v1/upload");
    let ours: Value = serde_json::from_slice(&req.body).unwrap();
    assert_same_except(&ours, prep_body, &["source_sdk", "source_sdk_version"], "prep_upload");
    assert_eq!(ours["source_sdk"], "rest_api");

    // The SDKs were recorded against a plaintext stand-in of the upload store; the agent sends a
    // zip only over https (`tests/faults.rs` has the refusal), so the answer is replayed as https.
    let recorded_url = prep["response"]["body"]["upload_url"].as_str().unwrap().to_string();
    let mut prep_https = prep["response"]["body"].clone();
    prep_https["upload_url"] = recorded_url.replacen("http://", "https://", 1).into();
    let prep_resp = &prep_https;
    sub.handle_response(HttpResponse::new(200, serde_json::to_vec(prep_resp).unwrap()), now).unwrap();
    let Output::Send(put) = sub.poll_output(now) else { panic!("expected the PUT") };
    assert_eq!(put.method, Method::Put);
    assert_eq!(put.url, prep_resp["upload_url"].as_str().unwrap(), "the upload URL is used exactly as returned");
    assert_eq!(put.content_type, "application/zip");

    let ours_zip = zip_entries(&put.body);
    let theirs_zip: Vec<_> = zip_entries(&std::fs::read(dir.join("02_PUT_upload.zip")).unwrap())
        .into_iter()
        .filter(|(n, _)| n != "base64imgString")
        .collect();
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours_zip), names(&theirs_zip), "zip entries, in order");
    for ((n, a), (_, b)) in ours_zip.iter().zip(&theirs_zip).skip(1) {
        assert_eq!(a, b, "zip entry {n} bytes");
    }
    let our_info: Value = serde_json::from_slice(&ours_zip[0].1).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&theirs_zip[0].1).unwrap(),
        info,
        "the recorded info.json is the zipped one"
    );
    assert_same_except(&our_info, &info, &["package_information", "server_information"], "info.json");
    assert_same_except(
        &our_info["package_information"],
        &info["package_information"],
        &["language"],
        "info.json package_information",
    );
    assert_eq!(our_info["package_information"]["language"], "rust");
    assert_eq!(info["server_information"], recorded_url.as_str(), "Python sends the URL string");
    assert_eq!(our_info["server_information"], *prep_resp, "the agent sends the prep_upload answer object");

    sub.handle_response(HttpResponse::new(200, vec![]), now).unwrap();
    let mut now = now;
    for poll in ["03_POST_v1_job_status.json", "04_POST_v1_job_status.json"] {
        let rec = load(&dir.join(poll));
        if let Output::Wait(until) = sub.poll_output(now) {
            now = until;
        }
        assert_eq!(sub.poll_output(now), Output::NeedSignature);
        sub.provide_signature(signed_of(&rec["body_json"]));
        let Output::Send(req) = sub.poll_output(now) else { panic!("expected job_status") };
        let ours: Value = serde_json::from_slice(&req.body).unwrap();
        assert_same_except(&ours, &rec["body_json"], &[], "job_status");
        sub.handle_response(HttpResponse::new(200, serde_json::to_vec(&rec["response"]["body"]).unwrap()), now)
            .unwrap();
    }
    let Output::Done(Outcome::Completed(status)) = sub.poll_output(now) else { panic!("expected a completed job") };
    assert!(status.job_complete);
}

#[test]
fn python_biometric_kyc_files() {
    replay("python_biometric_kyc/files_type0_type4");
}

#[test]
fn python_biometric_kyc_base64() {
    replay("python_biometric_kyc/base64_type2_type6");
}

#[test]
fn python_document_verification() {
    replay("python_document_verification");
}

#[test]
fn python_enhanced_document_verification() {
    replay("python_enhanced_document_verification");
}

#[test]
fn python_smartselfie_enrollment() {
    replay("python_smartselfie_enrollment");
}

#[test]
fn python_smartselfie_authentication() {
    replay("python_smartselfie_authentication");
}

#[test]
fn python_enhanced_kyc_body() {
    let rec = load(&vectors().join("python_enhanced_kyc/01_POST_v1_id_verification.json"));
    let body = &rec["body_json"];
    let job = Job {
        partner_params: serde_json::from_value(body["partner_params"].clone()).unwrap(),
        id_info: serde_json::from_value(json!({
            "first_name": body["first_name"], "last_name": body["last_name"], "country": body["country"], "id_type": body["id_type"],
            "id_number": body["id_number"], "dob": body["dob"], "phone_number": body["phone_number"], "entered": body["entered"]
        }))
        .unwrap(),
        options: JobOptions::default(),
        images: vec![],
        consent: None,
        metadata: vec![],
    };
    let req = kiosk_agent::smileid::id_verification_request(&job, "085", "http://127.0.0.1:18080/v1", &signed_of(body))
        .unwrap();
    assert_eq!(req.url, "http://127.0.0.1:18080/v1/id_verification");
    let ours: Value = serde_json::from_slice(&req.body).unwrap();
    assert_same_except(&ours, body, &["source_sdk", "source_sdk_version"], "id_verification");
    let resp = serde_json::to_vec(&rec["response"]["body"]).unwrap();
    assert_eq!(kiosk_agent::smileid::id_verification_result(200, &resp).unwrap()["ResultCode"], "1012");
}
