//! `/metrics` over TCP for Prometheus (`[metrics] listen`): plain HTTP/1.1, GET only, a few
//! scrapes at a time; meant for a management VPN or loopback address, never the open internet.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::httpd::{Handler, Limits, Request, Response};

/// Scrapes served at once; more connections are closed at once (Prometheus retries next interval).
const MAX_CONNECTIONS: usize = 4;

#[derive(Debug, thiserror::Error)]
#[error("metrics listener on {addr}: {source}; check [metrics] listen (an address of this kiosk, a free port)")]
pub struct ListenError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

struct Scrape<F> {
    render: F,
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
            },
            ("GET", _) => Response::empty(404),
            _ => Response::empty(405),
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
    render: impl Fn() -> String + Send + Sync + 'static,
    stop: Arc<AtomicBool>,
) -> Result<SocketAddr, ListenError> {
    let err = |source| ListenError { addr: addr.to_string(), source };
    let listener = TcpListener::bind(addr).map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    let handler = Arc::new(Scrape { render });
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                            busy.fetch_sub(1, Ordering::AcqRel);
                            continue;
                        }
                        let (handler, done, stop) = (handler.clone(), busy.clone(), stop.clone());
                        let spawned = std::thread::Builder::new().name("metrics-scrape".into()).spawn(move || {
                            connection(sock, &*handler, &stop);
                            done.fetch_sub(1, Ordering::AcqRel);
                        });
                        if spawned.is_err() {
                            // No thread to be had: the connection went with the closure.
                            busy.fetch_sub(1, Ordering::AcqRel);
                            crate::log::warn("metrics: no thread for a scrape; it is refused", &[]);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        })
        .map_err(err)?;
    Ok(bound)
}

fn connection(sock: TcpStream, handler: &dyn Handler, stop: &AtomicBool) {
    sock.set_nonblocking(false).ok();
    // Short read timeouts let the deadlines below cut off a client that trickles bytes.
    sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
    sock.set_write_timeout(Some(Duration::from_secs(10))).ok();
    sock.set_nodelay(true).ok();
    let limits = Limits { head: Some(Duration::from_secs(30)), body: Some(Duration::from_secs(5)) };
    crate::httpd::serve_stream(sock, handler, stop, limits, |_| {});
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
        let addr = serve("127.0.0.1:0", || "kiosk_up 1\n".to_string(), stop.clone()).unwrap();
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4") && ok.ends_with("kiosk_up 1\n"), "{ok}");
        let other = get(addr, "GET /api/v1/sessions HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let post = get(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
        assert!(post.starts_with("HTTP/1.1 413") || post.starts_with("HTTP/1.1 405"), "{post}");
        // A port in use is refused naming the key.
        let e = serve(&addr.to_string(), String::new, stop.clone()).unwrap_err();
        assert!(e.to_string().contains("[metrics] listen"), "{e}");
        stop.store(true, Ordering::Relaxed);
    }
}
