//! HTTPS on ureq 3 and rustls. Certificate verification is always on: the webpki roots,
//! plus an optional extra CA file for private deployments and the local sandbox.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
};

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
    /// The server's certificate starts after this kiosk's "now": the clock is behind (a board
    /// without a battery clock boots at its image's date). No certificate error says more.
    #[error("request to {host} failed: its certificate is valid only from {behind_secs} s after this kiosk's time, so this clock is at least that far behind; nothing was sent. Set the clock (check NTP); the jobs wait")]
    ClockBehind { host: String, behind_secs: u64 },
}

impl HttpError {
    /// How far behind the server's certificate shows this kiosk's clock to be, if it does.
    pub fn clock_behind_secs(&self) -> Option<u64> {
        match self {
            HttpError::ClockBehind { behind_secs, .. } => Some(*behind_secs),
            _ => None,
        }
    }
}

/// A certificate not yet valid at this kiosk's time: how many seconds early the kiosk is.
fn not_yet_valid(e: &ureq::Error) -> Option<u64> {
    use rustls::CertificateError as C;
    let tls = match e {
        ureq::Error::Rustls(r) => r,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    match tls {
        rustls::Error::InvalidCertificate(C::NotValidYetContext { time, not_before }) => {
            Some(not_before.as_secs().saturating_sub(time.as_secs()).max(1))
        }
        rustls::Error::InvalidCertificate(C::NotValidYet) => Some(1),
        _ => None,
    }
}

/// Largest answer the agent reads; Smile ID's JSON answers are a few KB.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// A connection-reusing HTTPS client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    /// Upload body bytes handed to the connection so far, by every clone of this client: how
    /// far the uploads in flight have got.
    sent: Arc<AtomicU64>,
}

/// A PUT body that counts what the connection has taken of it.
struct Counting<'a> {
    body: &'a [u8],
    sent: &'a AtomicU64,
}

impl std::io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.body.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// TCP connections that end with a reset, never a graceful close. When a request is given up
/// (no progress, or the process is killed), the kernel would otherwise go on delivering the bytes
/// already queued, and an upload the agent has written off could land after it has asked whether
/// it arrived: a duplicate. With SO_LINGER 0 the queued bytes are dropped with the socket.
#[derive(Debug)]
struct AbortiveTcp {
    connect: Duration,
}

impl<In: Transport> Connector<In> for AbortiveTcp {
    type Out = Either<In, AbortiveTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            return Ok(chained.map(Either::A));
        }
        let mut last = None;
        for addr in details.addrs.iter() {
            match TcpStream::connect_timeout(addr, self.connect) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                    // SAFETY: a valid socket and a correctly sized option value.
                    let rc = unsafe {
                        libc::setsockopt(
                            stream.as_raw_fd(),
                            libc::SOL_SOCKET,
                            libc::SO_LINGER,
                            (&linger as *const libc::linger).cast(),
                            std::mem::size_of::<libc::linger>() as libc::socklen_t,
                        )
                    };
                    if rc != 0 {
                        return Err(std::io::Error::last_os_error().into());
                    }
                    let c = details.config;
                    let buffers = LazyBuffers::new(c.input_buffer_size(), c.output_buffer_size());
                    return Ok(Some(Either::B(AbortiveTransport { stream, buffers })));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map(ureq::Error::from).unwrap_or(ureq::Error::HostNotFound))
    }
}

/// A plain TCP transport for ureq over a socket set up by [`AbortiveTcp`].
#[derive(Debug)]
struct AbortiveTransport {
    stream: TcpStream,
    buffers: LazyBuffers,
}

/// The socket timeout for one read or write: what is left of the phase, capped by the idle limit.
fn socket_timeout(t: &NextTimeout) -> Option<Duration> {
    if t.after.is_not_happening() {
        None
    } else {
        Some((*t.after).max(Duration::from_millis(1)))
    }
}

fn io_error(e: std::io::Error, t: &NextTimeout) -> ureq::Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ureq::Error::Timeout(t.reason),
        _ => e.into(),
    }
}

impl Transport for AbortiveTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let t = timeout.for_write();
        self.stream.set_write_timeout(socket_timeout(&t))?;
        let out = &self.buffers.output()[..amount];
        (&self.stream).write_all(out).map_err(|e| io_error(e, &t))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let t = timeout.for_read();
        self.stream.set_read_timeout(socket_timeout(&t))?;
        let n = (&self.stream).read(self.buffers.input_append_buf()).map_err(|e| io_error(e, &t))?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open means: nothing to read and no error (a pooled connection has no answer pending).
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open = matches!((&self.stream).read(&mut [0u8]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && open
    }
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

/// Roots Mozilla trusts for some domains only. The bare certificates do not carry those limits
/// (webpki-roots' anchors do), and Smile ID's hosts are in none of the domains: left out.
const DOMAIN_LIMITED: &[(&str, &[u8])] = &[(".tr", b"TUBITAK Kamu SM SSL Kok Sertifikasi")];

/// Mozilla's roots for TLS servers (webpki-root-certs), less [`DOMAIN_LIMITED`].
fn mozilla_roots() -> Vec<Certificate<'static>> {
    let limited = |der: &[u8]| DOMAIN_LIMITED.iter().any(|(_, name)| der.windows(name.len()).any(|w| w == *name));
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter(|c| !limited(c.as_ref()))
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

impl HttpClient {
    pub fn new(extra_ca_file: Option<&Path>, t: &Timeouts) -> Result<Self, HttpError> {
        // ureq is built without its own copy of Mozilla's list (webpki-roots, some 50 KB of the
        // binary), and so without a default crypto provider, named below.
        let mut certs = mozilla_roots();
        if let Some(path) = extra_ca_file {
            certs.extend(load_pem_certs(path)?);
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(certs)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let secs = |s: u64| Some(Duration::from_secs(s.max(1)));
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
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
        let connector =
            ().chain(AbortiveTcp { connect: Duration::from_secs(t.connect_secs.max(1)) })
                .chain(ureq::unversioned::transport::RustlsConnector::default());
        let agent = ureq::Agent::with_parts(config, connector, ureq::unversioned::resolver::DefaultResolver::default());
        Ok(HttpClient { agent, sent: Arc::new(AtomicU64::new(0)) })
    }

    /// Upload body bytes sent so far by this client and its clones.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
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
        let fail = |e: ureq::Error| match not_yet_valid(&e) {
            Some(behind_secs) => HttpError::ClockBehind { host: host.clone(), behind_secs },
            None => HttpError::Transport { host: host.clone(), detail: advise(e.to_string()) },
        };
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
            Method::Put => {
                let mut body = Counting { body: &req.body, sent: &self.sent };
                self.agent
                    .put(&req.url)
                    .header("Content-Type", req.content_type)
                    // Stated, so the body goes length-delimited as S3's presigned PUTs require.
                    .header("Content-Length", req.body.len())
                    .send(ureq::SendBody::from_reader(&mut body))
            }
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

/// `host[:port]` of a URL, for error messages that must not echo query strings or a
/// `user:password@` (the config refuses one; this is the second line).
pub fn host_of(url: &str) -> String {
    let authority = authority(url);
    authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_string()
}

/// The URL carries a `user:password@`.
pub fn has_login(url: &str) -> bool {
    authority(url).contains('@')
}

/// `[user[:password]@]host[:port]` of a URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_are_mozillas_less_those_limited_to_some_domains() {
        let roots = mozilla_roots();
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() - DOMAIN_LIMITED.len());
        assert!(roots.len() > 100, "{} roots", roots.len());
        for (_, name) in DOMAIN_LIMITED {
            assert!(!roots.iter().any(|c| c.der().windows(name.len()).any(|w| w == *name)));
        }
    }

    #[test]
    fn origin_and_host() {
        assert_eq!(origin_of("https://testapi.smileidentity.com/v1"), "https://testapi.smileidentity.com");
        assert_eq!(origin_of("https://127.0.0.1:8443/v1/upload?x=1"), "https://127.0.0.1:8443");
        assert_eq!(host_of("https://h:1/a?b"), "h:1");
        // Nor a login, which the config refuses.
        assert_eq!(host_of("https://user:Secret1@gw.example:8443/v1?k=v"), "gw.example:8443");
        assert_eq!(origin_of("https://u:p@api.example/v1"), "https://api.example");
        assert!(has_login("https://u:p@api.example/v1") && !has_login("https://api.example/v1?to=a@b"));
    }
}
