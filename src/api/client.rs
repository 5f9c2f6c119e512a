//! A minimal HTTP/1.1 client over the control socket, for the CLI and tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the agent at {path}: {detail}; is `kiosk-agent run` running, and are you in the socket's group?"
    )]
    Connect { path: String, detail: String },
    #[error("the agent's answer could not be read: {0}")]
    Read(String),
}

/// Sends one request; returns the status and the JSON (or text) body.
pub fn call(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), ClientError> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| ClientError::Connect { path: socket.display().to_string(), detail: e.to_string() })?;
    let payload = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: kiosk-agent\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", payload.len());
    let rd = |e: std::io::Error| ClientError::Read(e.to_string());
    s.write_all(head.as_bytes()).map_err(rd)?;
    s.write_all(&payload).map_err(rd)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(rd)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| ClientError::Read(format!("bad status line {line:?}")))?;
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(rd)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().map_err(|_| ClientError::Read("bad Content-Length".into()))?;
            }
        }
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).map_err(rd)?;
    let v = serde_json::from_slice(&buf)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&buf).into_owned()));
    Ok((status, v))
}
