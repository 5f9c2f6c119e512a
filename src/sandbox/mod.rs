//! `kiosk-agent sandbox`: a local HTTPS server that speaks Smile ID's v1 endpoints and makes
//! the checks Smile ID makes, for demos, development and tests. Not a model of Smile ID's
//! verification: every well-formed job passes (see [`api`] for what is checked).

pub mod api;
pub mod tls;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::smileid::signature::ApiKey;
use crate::store::{private_dir, write_private};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {detail}; pick a free port")]
    Listen { addr: String, detail: String },
    #[error("sandbox TLS setup failed: {0}")]
    Tls(String),
    #[error("sandbox state dir {path}: {detail}; check it is writable")]
    State { path: PathBuf, detail: String },
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub listen: SocketAddr,
    pub partner_id: String,
    pub api_key: ApiKey,
    pub state_dir: PathBuf,
    pub timestamp_window_secs: i64,
    pub upload_url_ttl_secs: i64,
    pub latency_ms: u64,
    pub clock_offset_secs: i64,
    pub auth_token: Option<String>,
}

/// A running sandbox; stops when dropped.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT/v1`
    pub base_url: String,
    pub ca_pem_path: PathBuf,
    pub api: Arc<api::Sandbox>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds, makes the certificates, writes `state_dir/ca.pem` (only once ready) and serves.
pub fn start(o: SandboxOptions) -> Result<RunningSandbox, SandboxError> {
    let state = |e: std::io::Error| SandboxError::State { path: o.state_dir.clone(), detail: e.to_string() };
    private_dir(&o.state_dir).map_err(state)?;
    let ca_pem_path = o.state_dir.join("ca.pem");
    // A stale ca.pem would tell a waiting client the sandbox is up before it is.
    match std::fs::remove_file(&ca_pem_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(state(e)),
        _ => {}
    }
    let listener = TcpListener::bind(o.listen)
        .map_err(|e| SandboxError::Listen { addr: o.listen.to_string(), detail: e.to_string() })?;
    let addr = listener
        .local_addr()
        .map_err(|e| SandboxError::Listen { addr: o.listen.to_string(), detail: e.to_string() })?;
    let host = addr.ip().to_string();
    let (ca_pem, tls) = tls::server_config(&o.state_dir, &[host.clone(), "localhost".to_string()])?;
    let host_for_url = if addr.is_ipv6() { format!("[{host}]") } else { host };
    let public_base = format!("https://{host_for_url}:{}", addr.port());
    let api = Arc::new(
        api::Sandbox::new(api::Settings {
            partner_id: o.partner_id.clone(),
            api_key: o.api_key.clone(),
            state_dir: o.state_dir.clone(),
            public_base: public_base.clone(),
            timestamp_window_secs: o.timestamp_window_secs,
            upload_url_ttl_secs: o.upload_url_ttl_secs,
            latency_ms: o.latency_ms,
            clock_offset_secs: o.clock_offset_secs,
            auth_token: o.auth_token.clone(),
        })
        .map_err(state)?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let handler = api.clone();
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("sandbox-accept".into())
            .spawn(move || crate::httpd::serve(listener, tls, stop, handler))
            .map_err(state)?
    };
    // Readable by clients (it is a public certificate), written last: its presence means "ready".
    write_private(&ca_pem_path, ca_pem.as_bytes()).map_err(state)?;
    set_mode(&ca_pem_path, 0o644).map_err(state)?;
    Ok(RunningSandbox { addr, base_url: format!("{public_base}/v1"), ca_pem_path, api, stop, thread: Some(thread) })
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}
