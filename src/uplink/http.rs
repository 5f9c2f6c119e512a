//! HTTPS on ureq 3 and rustls. Certificate verification is always on: the webpki roots,
//! plus an optional extra CA file for private deployments and the local sandbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::smileid::submit::{HttpRequest, HttpResponse, Method};

/// Timeouts. `idle_secs` follows progress: every socket read or write must move some bytes
/// within it, so a slow link that keeps moving is never cut off while a dead or stalled one is
/// noticed in seconds. The per-phase limits are ceilings above that, for links that trickle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    pub connect_secs: u64,
    /// Longest wait for any progress (bytes sent or received) on an open connection.
    pub idle_secs: u64,
    pub send_body_secs: u64,
    pub recv_response_secs: u64,
    pub recv_body_secs: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        // A 5 MB document job takes ~4 min at 2G's 20 KB/s: the send ceiling leaves room for it.
        Timeouts { connect_secs: 15, idle_secs: 30, send_body_secs: 900, recv_response_secs: 120, recv_body_secs: 120 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot read the extra CA file {path}: {detail}; point [smileid] extra_ca_file at a PEM certificate")]
    CaFile { path: PathBuf, detail: String },
    #[error("request to {host} failed: {detail}")]
    Transport { host: String, detail: String },
}

/// Largest answer the agent reads; Smile ID's JSON answers are a few KB.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// A connection-reusing HTTPS client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

/// Reads every certificate in a PEM file.
pub fn load_pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>, HttpError> {
    let err = |detail: String| HttpError::CaFile { path: path.to_owned(), detail };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

impl HttpClient {
    pub fn new(extra_ca_file: Option<&Path>, t: &Timeouts) -> Result<Self, HttpError> {
        let roots = match extra_ca_file {
            None => RootCerts::WebPki,
            Some(path) => {
                let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                certs.extend(load_pem_certs(path)?);
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let secs = |s: u64| Some(Duration::from_secs(s.max(1)));
        let config = ureq::Agent::config_builder()
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .http_status_as_error(false)
            .user_agent(concat!("kiosk-agent/", env!("CARGO_PKG_VERSION")))
            .timeout_per_read(secs(t.idle_secs))
            .timeout_per_write(secs(t.idle_secs))
            // Kiosks poll every few seconds: keep the connection (and its TLS session) for reuse.
            .max_idle_age(Duration::from_secs(60))
            .timeout_connect(secs(t.connect_secs))
            .timeout_send_request(secs(t.connect_secs))
            .timeout_send_body(secs(t.send_body_secs))
            .timeout_recv_response(secs(t.recv_response_secs))
            .timeout_recv_body(secs(t.recv_body_secs))
            .build();
        Ok(HttpClient { agent: config.into() })
    }

    /// Sends one request exactly as the protocol core built it.
    pub fn execute(&self, req: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.send(req, None)
    }

    /// Same, with `Authorization: Bearer <token>` (the partner signer's device token).
    pub fn execute_with_bearer(&self, req: &HttpRequest, token: &str) -> Result<HttpResponse, HttpError> {
        self.send(req, Some(token))
    }

    fn send(&self, req: &HttpRequest, bearer: Option<&str>) -> Result<HttpResponse, HttpError> {
        let host = host_of(&req.url);
        let fail = |e: ureq::Error| HttpError::Transport { host: host.clone(), detail: advise(e.to_string()) };
        let result = match req.method {
            Method::Get => self.agent.get(&req.url).call(),
            Method::Post => {
                let mut r = self
                    .agent
                    .post(&req.url)
                    .header("Content-Type", req.content_type)
                    .header("Accept", "application/json");
                if let Some(t) = bearer {
                    r = r.header("Authorization", format!("Bearer {t}"));
                }
                r.send(&req.body[..])
            }
            Method::Put => self.agent.put(&req.url).header("Content-Type", req.content_type).send(&req.body[..]),
        };
        let mut resp = result.map_err(fail)?;
        let status = resp.status().as_u16();
        let date = resp.headers().get("date").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(fail)?;
        Ok(HttpResponse { status, body, date })
    }
}

/// Adds what to do to the errors an operator can act on.
fn advise(detail: String) -> String {
    if detail.contains("certificate") {
        format!(
            "{detail}; the server's certificate was refused and nothing was sent: check the kiosk's clock, the \
             API host in [smileid], and extra_ca_file (a captive portal or proxy shows its own certificate)"
        )
    } else if detail.contains("timed out") || detail.contains("Timeout") {
        format!("{detail}; no progress within the timeout: the link is down or stalled, the job will be retried")
    } else {
        detail
    }
}

/// `scheme://host[:port]` of a URL: what a link probe reaches.
pub fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://{}", host_of(url)),
        None => host_of(url),
    }
}

/// `host[:port]` of a URL, for error messages that must not echo query strings.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_host() {
        assert_eq!(origin_of("https://testapi.smileidentity.com/v1"), "https://testapi.smileidentity.com");
        assert_eq!(origin_of("https://127.0.0.1:8443/v1/upload?x=1"), "https://127.0.0.1:8443");
        assert_eq!(host_of("https://h:1/a?b"), "h:1");
    }
}
