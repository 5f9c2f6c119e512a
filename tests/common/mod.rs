//! Helpers shared by the integration tests: a sandbox process started through the real CLI.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PARTNER_ID: &str = "085";
pub const API_KEY: &str = "kR3v9ZsQ2mXb7LpT0aYc1NdE5fGh8JkW-fake-sandbox-key";

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
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
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
