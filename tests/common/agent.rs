//! `kiosk-agent run` as a separate process, on the synthetic camera and PNG screens, for the
//! attack suite and the API bench; optionally as another user (the uid's own limits apply).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RunningAgent {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub state: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the agent sends Smile ID traffic when a test needs none: a closed loopback port.
pub const NO_SMILE_ID: &str = "https://127.0.0.1:9/v1";

/// Starts the agent with `environment` (an https URL) and extra config lines (`[api]` is
/// open: its keys may follow directly); as `uid` when given (the temp dir is then its own).
pub fn start(
    bin: &str,
    environment: &str,
    extra_ca: Option<&std::path::Path>,
    api_lines: &str,
    uid: Option<u32>,
) -> RunningAgent {
    start_in(tempfile::tempdir().unwrap(), bin, environment, extra_ca, api_lines, uid, &[])
}

/// [`start`] in a given directory (an earlier agent's, to start it again) with extra
/// environment variables.
pub fn start_in(
    dir: tempfile::TempDir,
    bin: &str,
    environment: &str,
    extra_ca: Option<&std::path::Path>,
    api_lines: &str,
    uid: Option<u32>,
    env: &[(&str, &std::path::Path)],
) -> RunningAgent {
    let socket = dir.path().join("control.sock");
    let state = dir.path().join("state");
    std::fs::write(dir.path().join("api_key"), super::API_KEY).unwrap();
    let ca = extra_ca.map(|c| format!("extra_ca_file = {c:?}\n")).unwrap_or_default();
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\n[smileid]\npartner_id = \"{}\"\nenvironment = {environment:?}\n{ca}api_key_file = {:?}\n\
             [camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\nwidth = 320\nheight = 240\n\
             [queue]\nmin_free_bytes = 0\nreserve_bytes = 0\n[uplink]\nidle_poll_secs = 1\n[api]\nsocket = {socket:?}\n{api_lines}\n",
            super::PARTNER_ID,
            dir.path().join("api_key"),
            dir.path().join("screens"),
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let _ = std::fs::remove_file(&socket);
    let mut cmd = Command::new(bin);
    cmd.envs(env.iter().copied());
    cmd.args(["run", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdout(Stdio::from(std::fs::File::create(dir.path().join("agent.out")).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    if let Some(uid) = uid {
        for p in [dir.path().to_path_buf(), dir.path().join("api_key"), config.clone()] {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd.uid(uid).gid(uid);
    }
    let child = cmd.spawn().unwrap();
    let mut a = RunningAgent { child, socket, log, state, dir };
    let t = Instant::now();
    while !a.socket.exists() {
        if let Ok(Some(st)) = a.child.try_wait() {
            panic!("the agent exited ({st}): {}", a.log_text());
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the agent did not open its socket: {}", a.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    a
}

impl RunningAgent {
    /// Stops the agent and gives back its directory, to start it again.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::TempDir::new().unwrap())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A line of /proc/PID/status, in kB (VmRSS, VmHWM).
    pub fn status_kb(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    pub fn threads(&self) -> u64 {
        self.status_kb("Threads:")
    }

    /// GET /v1/health on a fresh connection: the status and how long the answer took.
    pub fn health(&self) -> (u16, Duration) {
        let t = Instant::now();
        let (status, _) =
            raw(&self.socket, b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n", Duration::from_secs(10));
        (status, t.elapsed())
    }
}

/// Sends `bytes` and reads the answer until the server closes: (status, body); status 0 if
/// the connection was closed (or timed out) without an answer.
pub fn raw(socket: &std::path::Path, bytes: &[u8], timeout: Duration) -> (u16, String) {
    let Ok(mut s) = UnixStream::connect(socket) else { return (0, String::new()) };
    s.set_read_timeout(Some(timeout)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A connection that sends a request head one byte at a time, `every` apart, forever (slowloris).
pub fn slow_connections(socket: &std::path::Path, n: usize, every: Duration) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let socket = socket.to_path_buf();
            std::thread::spawn(move || {
                let Ok(mut s) = UnixStream::connect(&socket) else { return };
                for b in b"GET /v1/health HTTP/1.1\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')).take(200) {
                    if s.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
            })
        })
        .collect()
}
