//! Helpers shared by the integration tests: a sandbox process started through the real CLI.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiosk_agent::smileid::job::*;
use serde_json::json;

pub const PARTNER_ID: &str = "085";
pub const API_KEY: &str = "kR3v9ZsQ2mXb7LpT0aYc1NdE5fGh8JkW-fake-sandbox-key";

/// A small seeded xorshift generator: the random tests replay with the same seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `kiosk-agent sandbox` as a child process; killed on drop.
pub struct SandboxProcess {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub base_url: String,
    pub ca_pem: PathBuf,
    pub key_file: PathBuf,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn start_sandbox(extra_args: &[&str]) -> SandboxProcess {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("api_key");
    std::fs::write(&key_file, format!("{API_KEY}\n")).unwrap();
    let state = dir.path().join("state");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["sandbox", "--listen", &format!("127.0.0.1:{port}"), "--partner-id", PARTNER_ID, "--api-key-file"])
        .arg(&key_file)
        .arg("--state-dir")
        .arg(&state)
        .args(extra_args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the kiosk-agent binary starts");
    let ca_pem = state.join("ca.pem");
    let mut sb = SandboxProcess { child, dir, base_url: format!("https://127.0.0.1:{port}/v1"), ca_pem, key_file };
    wait_for(&sb.ca_pem, &mut sb.child);
    sb
}

fn wait_for(p: &Path, child: &mut Child) {
    let t = Instant::now();
    while !p.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the sandbox exited early: {status}");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the sandbox did not write {} within 30 s", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A ureq agent that trusts only the sandbox's CA.
pub fn sandbox_agent(sb: &SandboxProcess) -> ureq::Agent {
    let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(
        kiosk_agent::uplink::http::load_pem_certs(&sb.ca_pem).unwrap(),
    ));
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(roots)
                .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .build(),
        )
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// The sandbox's own count of jobs, by job_id.
pub fn sandbox_jobs(sb: &SandboxProcess) -> Vec<serde_json::Value> {
    let body = sandbox_agent(sb)
        .get(sb.base_url.replace("/v1", "/sandbox/jobs"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

pub fn key() -> kiosk_agent::smileid::signature::ApiKey {
    kiosk_agent::smileid::signature::ApiKey::new(API_KEY)
}

pub fn img(t: ImageType, name: &str) -> JobImage {
    let file = if name.is_empty() { "selfie.jpg".to_string() } else { name.to_string() };
    let jpeg = std::fs::read(repo().join("tests/vectors/input_images").join(file)).unwrap();
    JobImage { image_type: t, file_name: if t.is_file() { name.into() } else { String::new() }, jpeg }
}

/// A job of `job_type` made of the vector images, as the SDK tests use them.
pub fn job(job_type: JobType, job_id: &str) -> Job {
    let person = IdInfo {
        first_name: Some("Ada".into()),
        country: Some("NG".into()),
        id_type: Some("NIN_V2".into()),
        id_number: Some("00000000000".into()),
        entered: Some(true),
        ..Default::default()
    };
    let mut images = vec![img(ImageType::SelfieFile, "selfie.jpg")];
    let id_info = match job_type {
        JobType::BiometricKyc => person,
        JobType::DocumentVerification => {
            IdInfo { country: Some("NG".into()), id_type: Some("PASSPORT".into()), ..Default::default() }
        }
        JobType::EnhancedDocumentVerification => {
            IdInfo { country: Some("GH".into()), id_type: Some("GHANA_CARD".into()), ..Default::default() }
        }
        JobType::EnhancedKyc => {
            images.clear();
            person
        }
        _ => IdInfo::default(),
    };
    if job_type.is_document() {
        images.push(img(ImageType::IdFrontFile, "id_front.jpg"));
        images.push(img(ImageType::IdBackBase64, "id_back.jpg"));
    } else if job_type.has_images() {
        images.extend((0..8).map(|i| img(ImageType::LivenessFile, &format!("liveness_{i}.jpg"))));
    }
    Job {
        partner_params: PartnerParams {
            user_id: "user-1".into(),
            job_id: job_id.into(),
            job_type,
            extra: [("kiosk_id".to_string(), json!("K-01"))].into(),
        },
        id_info,
        options: JobOptions::default(),
        images,
        consent: None,
        metadata: vec![],
    }
}

/// libfaketime, preloaded into the agent itself (the `faketime` wrapper would stand between the
/// test and the agent's pid, so a signal would miss the agent).
pub fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is needed (Debian package faketime; scripts/test.sh installs it)")
}
