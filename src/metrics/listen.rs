//! `/metrics` over TCP for Prometheus (`[metrics] listen`): HTTP/1.1, GET (and HEAD) only, a few scrapes
//! at a time. Plain on a management VPN or loopback address; over TLS with client certificates
//! (`tls_cert`, `tls_key`, `client_ca`) for scrapes that cross the internet, where only a
//! Prometheus holding a certificate from the fleet's own CA gets an answer.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::httpd::{Handler, Limits, Request, Response};

/// Connections served at once. When all are taken, the oldest is closed for the newcomer: a
/// scrape is answered in milliseconds, so the oldest is one that sends nothing (or trickles, or
/// stalls a TLS handshake without a certificate), and such connections must not shut
/// Prometheus out until their deadlines pass.
const MAX_CONNECTIONS: usize = 8;
/// A connection this young is not closed for another peer's newcomer, unless its own peer holds
/// more than a fair share (see `busiest`): under a flood of connections, the newcomer is
/// refused instead, and a scrape that just got in is answered.
const SHIELDED: Duration = Duration::from_secs(1);
/// Places one peer address may hold: a newcomer beyond them closes that peer's own oldest, so
/// one client opening connections fast cannot fill every place with young ones.
const PER_PEER: usize = MAX_CONNECTIONS / 2;
/// Peers that completed a scrape lately (Prometheus, an HA pair) keep a way in under a flood: a
/// newcomer from one of them closes a young connection of a peer that never scraped. At most
/// this many are remembered, each for `FRESH` after its last scrape; a place is given up only
/// when stale, so a flood that scrapes too cannot push the fleet's Prometheus out.
const KNOWN: usize = 4;
const FRESH: Duration = Duration::from_secs(600);
/// A TLS client has this long to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("metrics listener on {addr}: {source}; check [metrics] listen (an address of this kiosk, a free port)")]
pub struct ListenError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics TLS: {what} {path}: {detail}; check [metrics] tls_cert, tls_key and client_ca (PEM files the service may read)")]
pub struct TlsError {
    pub what: &'static str,
    pub path: String,
    pub detail: String,
}

/// The server side of a TLS scrape: this kiosk's certificate chain and key, and when
/// `client_ca` is given, only clients with a certificate it issued.
pub fn tls_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let fail = |what, path: &Path, detail: String| TlsError { what, path: path.display().to_string(), detail };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| fail("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(fail("certificate", cert, "no CERTIFICATE block".into()));
    }
    // The key's text is never put in an error: only its path.
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail("key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("certificate", cert, e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| fail("client CA", ca, e.to_string()))? {
                roots
                    .add(c.map_err(|e| fail("client CA", ca, e.to_string()))?)
                    .map_err(|e| fail("client CA", ca, e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| fail("client CA", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key_der).map_err(|e| TlsError {
        what: "certificate and key",
        path: format!("{} and {}", cert.display(), key.display()),
        detail: e.to_string(),
    })?;
    Ok(Arc::new(config))
}

/// A connection being served: a handle to close it by, its peer's address, when it came.
struct Open {
    id: u64,
    handle: TcpStream,
    peer: Option<std::net::IpAddr>,
    since: std::time::Instant,
}

struct Scrape<F> {
    render: F,
}

/// The peers that completed a scrape lately, and when each last did.
#[derive(Default)]
struct Scrapers(Mutex<Vec<(std::net::IpAddr, std::time::Instant)>>);

impl Scrapers {
    fn served(&self, peer: std::net::IpAddr) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if let Some(k) = known.iter_mut().find(|k| k.0 == peer) {
            k.1 = now;
        } else if known.len() < KNOWN {
            known.push((peer, now));
        } else if let Some(stale) = known.iter_mut().find(|k| k.1.elapsed() >= FRESH) {
            *stale = (peer, now);
        }
    }

    fn known(&self, peer: Option<std::net::IpAddr>) -> bool {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        peer.is_some_and(|p| known.iter().any(|k| k.0 == p && k.1.elapsed() < FRESH))
    }
}

/// One connection's handler: the scrape, noting its peer once it is answered.
struct Noted<'a> {
    inner: &'a dyn Handler,
    peer: Option<std::net::IpAddr>,
    scrapers: &'a Scrapers,
}

impl Handler for Noted<'_> {
    fn handle(&self, req: &Request) -> Response {
        let resp = self.inner.handle(req);
        if let (200, Some(peer)) = (resp.status, self.peer) {
            self.scrapers.served(peer);
        }
        resp
    }

    fn body_limit(&self, req: &Request) -> usize {
        self.inner.body_limit(req)
    }
}

impl<F: Fn() -> String + Send + Sync> Handler for Scrape<F> {
    fn handle(&self, req: &Request) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/metrics") => Response {
                date: None,
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: (self.render)().into_bytes(),
                wire: Default::default(),
                retry_after_secs: None,
                allow: None,
            },
            ("GET", _) => Response::empty(404),
            _ => Response { allow: Some("GET, HEAD"), ..Response::empty(405) },
        }
    }

    fn body_limit(&self, _req: &Request) -> usize {
        0
    }
}

/// Binds `addr` and serves `render()`'s text at `/metrics` on a thread of its own until `stop`.
/// Returns the bound address (the port chosen when `addr` asks for port 0).
pub fn serve(
    addr: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
    render: impl Fn() -> String + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
) -> Result<SocketAddr, ListenError> {
    let err = |source| ListenError { addr: addr.to_string(), source };
    let listener = TcpListener::bind(addr).map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    let handler = Arc::new(Scrape { render });
    // The open connections: (id, a handle to close it by, when it came).
    let open: Arc<Mutex<Vec<Open>>> = Arc::default();
    let scrapers: Arc<Scrapers> = Arc::default();
    let ids = AtomicU64::new(0);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            // A blocking accept: a scrape is answered at once, not at the next poll (polling every
            // 50 ms made a scrape take 50 ms). `stop` is seen at the next connection; the
            // service stops it only as the process ends.
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let Ok(handle) = sock.try_clone() else { continue };
                        let peer = sock.peer_addr().map(|a| a.ip()).ok();
                        let id = ids.fetch_add(1, Ordering::Relaxed);
                        {
                            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
                            let own = |o: &&Open| o.peer == peer;
                            // Whom the newcomer displaces: its own peer's oldest past the
                            // peer's share; else, when every place is taken, the oldest past
                            // its first second (the list is in arrival order).
                            let mine = open.iter().filter(own).count();
                            let victim = if mine >= PER_PEER {
                                open.iter().position(|o| o.peer == peer)
                            } else if open.len() >= MAX_CONNECTIONS {
                                let stranger = || open.iter().position(|o| !scrapers.known(o.peer));
                                match open.iter().position(|o| o.since.elapsed() >= SHIELDED) {
                                    Some(i) => Some(i),
                                    // All young (a flood): a peer that scraped lately gets in
                                    // over one that never did (however many peers flood).
                                    None if scrapers.known(peer) && stranger().is_some() => stranger(),
                                    // Else the oldest of the peer holding the most places, when
                                    // it holds more than a fair share beside the newcomer's.
                                    None => match busiest(&open) {
                                        Some((i, held)) if held > mine + 1 => Some(i),
                                        _ => continue,
                                    },
                                }
                            } else {
                                None
                            };
                            if let Some(i) = victim {
                                // Its thread sees the socket closed and lets go of its place.
                                let old = open.remove(i);
                                let _ = old.handle.shutdown(std::net::Shutdown::Both);
                            }
                            open.push(Open { id, handle, peer, since: std::time::Instant::now() });
                        }
                        let (handler, open, stop, tls) = (handler.clone(), open.clone(), stop.clone(), tls.clone());
                        let scrapers = scrapers.clone();
                        let forget = move |open: &Mutex<Vec<Open>>| {
                            open.lock().unwrap_or_else(|e| e.into_inner()).retain(|o| o.id != id);
                        };
                        let spawned = std::thread::Builder::new().name("metrics-scrape".into()).spawn({
                            let open = open.clone();
                            move || {
                                let noted = Noted { inner: &*handler, peer, scrapers: &scrapers };
                                connection(sock, tls, &noted, &stop);
                                forget(&open);
                            }
                        });
                        if spawned.is_err() {
                            // No thread to be had: the connection went with the closure.
                            forget(&open);
                            crate::log::warn("metrics: no thread for a scrape; it is refused", &[]);
                        }
                    }
                    // Out of descriptors or memory: try again shortly.
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        })
        .map_err(err)?;
    Ok(bound)
}

fn connection(sock: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, handler: &dyn Handler, stop: &AtomicBool) {
    sock.set_write_timeout(Some(Duration::from_secs(10))).ok();
    sock.set_nodelay(true).ok();
    let limits = Limits { head: Some(Duration::from_secs(30)), body: Some(Duration::from_secs(5)) };
    match tls {
        None => {
            // Short read timeouts let the deadlines cut off a client that trickles bytes.
            sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
            crate::httpd::serve_stream(sock, handler, stop, limits, |_| {});
        }
        Some(config) => {
            // The whole handshake gets 5 s, however slowly a client trickles it; one without an
            // accepted certificate ends here.
            sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
            let Ok(conn) = rustls::ServerConnection::new(config) else { return };
            let mut stream = rustls::StreamOwned::new(conn, sock);
            let deadline = std::time::Instant::now() + HANDSHAKE;
            while stream.conn.is_handshaking() {
                if std::time::Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                    return;
                }
                match stream.conn.complete_io(&mut stream.sock) {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
            crate::httpd::serve_stream(stream, handler, stop, limits, |s| {
                s.conn.send_close_notify();
                let _ = std::io::Write::flush(s);
            });
        }
    }
}

/// The oldest connection of the peer holding the most places, and how many it holds.
fn busiest(open: &[Open]) -> Option<(usize, usize)> {
    let held = |peer| open.iter().filter(|o| o.peer == peer).count();
    let top = open.iter().max_by_key(|o| held(o.peer))?.peer;
    Some((open.iter().position(|o| o.peer == top)?, held(top)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_the_text_at_metrics_and_nothing_else() {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0", None, || "kiosk_up 1\n".to_string(), stop.clone()).unwrap();
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4") && ok.ends_with("kiosk_up 1\n"), "{ok}");
        let other = get(addr, "GET /api/v1/sessions HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let post = get(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
        assert!(post.starts_with("HTTP/1.1 413") || post.starts_with("HTTP/1.1 405"), "{post}");
        // A port in use is refused naming the key.
        let e = serve(&addr.to_string(), None, String::new, stop.clone()).unwrap_err();
        assert!(e.to_string().contains("[metrics] listen"), "{e}");
        stop.store(true, Ordering::Relaxed);
    }

    /// Connections that send nothing (or trickle) do not shut Prometheus out: with every place
    /// taken by silent ones, a scrape is still answered.
    #[test]
    fn silent_connections_do_not_shut_a_scrape_out() {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0", None, || "kiosk_up 1\n".to_string(), stop.clone()).unwrap();
        let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS + 4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(SHIELDED + Duration::from_millis(200));
        // (It used to be closed unanswered: every place was taken.)
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("kiosk_up 1\n"), "{ok}");
        drop(silent);
        stop.store(true, Ordering::Relaxed);
    }

    /// A TCP connection to `to` from the loopback address `from` (another peer than 127.0.0.1).
    fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
        use std::os::fd::FromRawFd;
        let sin = |ip: [u8; 4], port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
            sin_zero: [0; 8],
        };
        let std::net::IpAddr::V4(ip) = to.ip() else { panic!("IPv4 only") };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: plain socket calls on a descriptor made here, with sockaddr_in of the right size.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let (a, b) = (sin(from, 0), sin(ip.octets(), to.port()));
            assert_eq!(libc::bind(fd, &a as *const _ as *const libc::sockaddr, len), 0);
            assert_eq!(libc::connect(fd, &b as *const _ as *const libc::sockaddr, len), 0);
            TcpStream::from_raw_fd(fd)
        }
    }

    /// Clients opening silent connections faster than a second apart, one alone or several
    /// together, take at most their share of the places: Prometheus, from another address, is
    /// still answered.
    #[test]
    fn clients_churning_connections_leave_room_for_another() {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0", None, || "kiosk_up 1\n".to_string(), stop.clone()).unwrap();
        let flooding = Arc::new(AtomicBool::new(true));
        let flood = |from: [u8; 4]| {
            let flooding = flooding.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while flooding.load(Ordering::Relaxed) {
                    held.push(connect_from(from, addr));
                    held.drain(..held.len().saturating_sub(100));
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let scrapes = || {
            std::thread::sleep(Duration::from_millis(500));
            for _ in 0..5 {
                let mut s = connect_from([127, 0, 0, 2], addr);
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n").unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("kiosk_up 1\n"), "{out:?}");
            }
        };
        // One peer alone, then three together (each within its own share of the places), then
        // twelve (more peers than places: the scraper that was answered before gets in).
        let mut floods = vec![flood([127, 0, 0, 1])];
        scrapes();
        floods.extend([flood([127, 0, 0, 3]), flood([127, 0, 0, 4])]);
        scrapes();
        floods.extend((10..19).map(|i| flood([127, 0, 0, i])));
        scrapes();
        flooding.store(false, Ordering::Relaxed);
        for f in floods {
            f.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
    fn pki(
        dir: &Path,
    ) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf, rcgen::Certificate, rcgen::KeyPair) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.clone().self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, &ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server =
            CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&server_key, &issuer).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client =
            CertificateParams::new(vec!["prometheus".to_string()]).unwrap().signed_by(&client_key, &issuer).unwrap();
        let (c, k, a) = (dir.join("server.pem"), dir.join("server.key"), dir.join("ca.pem"));
        std::fs::write(&c, server.pem()).unwrap();
        std::fs::write(&k, server_key.serialize_pem()).unwrap();
        std::fs::write(&a, ca_cert.pem()).unwrap();
        (c, k, a, client, client_key)
    }

    fn tls_get(
        addr: SocketAddr,
        ca: &Path,
        client: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
    ) -> std::io::Result<String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => b
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut s = rustls::StreamOwned::new(conn, TcpStream::connect(addr)?);
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: kiosk\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn over_tls_only_a_client_certificate_from_the_fleets_ca_gets_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca, client, client_key) = pki(dir.path());
        let tls = tls_config(&cert, &key, Some(&ca)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0", Some(tls), || "kiosk_up 1\n".to_string(), stop.clone()).unwrap();
        let ok = tls_get(addr, &ca, Some((&client, &client_key))).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("kiosk_up 1\n"), "{ok}");
        assert!(tls_get(addr, &ca, None).is_err(), "no client certificate, no answer");
        // Plain HTTP on the TLS port gets nothing either.
        let plain = std::panic::catch_unwind(|| get(addr, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(plain.map_or(true, |t| !t.contains("kiosk_up")));
        // A key that is not a key is named by its path, its text never shown.
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n").unwrap();
        let e = tls_config(&cert, &key, Some(&ca)).unwrap_err().to_string();
        assert!(e.contains("server.key") && !e.contains("bm90IGEga2V5"), "{e}");
        stop.store(true, Ordering::Relaxed);
    }
}
