//! A small HTTP/1.1 server: keep-alive, bodies by Content-Length or chunked, over any byte
//! stream (TLS for the sandbox, a Unix socket for the control API). Just enough for JSON
//! endpoints and the clients that call them.
//!
//! Nothing is allocated from what a client declares: a body is refused when its declared size
//! is over the handler's cap for that request, and otherwise read as it arrives. [`Limits`] put
//! deadlines on the request head and the body, so a client that trickles bytes is cut off.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The raw query string (after `?`), exactly as sent.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    /// The `Date` header's time; the server's clock when unset.
    pub date: Option<crate::smileid::timestamp::UnixMillis>,
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub wire: Wire,
    /// Sent as `Retry-After` (a 429 or 503).
    pub retry_after_secs: Option<u64>,
    /// Sent as `Allow` (a 405: the methods the path takes).
    pub allow: Option<&'static str>,
}

/// How an answer goes on the wire: whole, or broken on purpose (the sandbox's fault injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    #[default]
    Whole,
    /// Wait, then close the connection without answering: a stalled server, or a middlebox
    /// that ate the answer.
    #[cfg(feature = "sandbox")]
    Silent { wait_ms: u64 },
    /// The head with the full `Content-Length`, half the body, then close.
    #[cfg(feature = "sandbox")]
    Truncated,
}

/// What serves requests: a closure, or a type that also breaks uploads on purpose.
pub trait Handler: Send + Sync {
    fn handle(&self, req: &Request) -> Response;
    /// How many body bytes of `req` (headers read) to take before dropping the connection with
    /// the rest unread, which the kernel answers with a reset. `None` reads the whole body.
    #[cfg(feature = "sandbox")]
    fn cut_body(&self, _req: &Request) -> Option<usize> {
        None
    }
    /// Told once per TLS connection, after its handshake: whether the session was resumed.
    fn connected(&self, _resumed: bool) {}
    /// The largest body `req` (headers read) may have; a bigger one is refused with 413 before
    /// any of it is read.
    fn body_limit(&self, _req: &Request) -> usize {
        MAX_BODY
    }
    /// The answer to `req`, whose body is over [`Handler::body_limit`] and left unread (the
    /// connection is closed after it): 413 naming the limit, unless the handler has a better
    /// one (no such endpoint, say).
    fn too_large(&self, _req: &Request, cap: usize) -> Response {
        too_large(cap)
    }
    /// A kept-alive connection now waits for its next request with none of it read: closing it
    /// loses nothing (a client sends again a request whose connection closed unanswered).
    fn at_rest(&self) {}
    /// The next request's first bytes are in: false if the connection was closed meanwhile, and
    /// the request is then dropped unhandled rather than run with nobody to hear the answer.
    fn woken(&self) -> bool {
        true
    }
}

impl<F: Fn(&Request) -> Response + Send + Sync> Handler for F {
    fn handle(&self, req: &Request) -> Response {
        self(req)
    }
}

impl Response {
    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        Response {
            date: None,
            status,
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap_or_default(),
            wire: Wire::Whole,
            retry_after_secs: None,
            allow: None,
        }
    }

    pub fn empty(status: u16) -> Self {
        Response {
            date: None,
            status,
            content_type: "text/plain",
            body: Vec::new(),
            wire: Wire::Whole,
            retry_after_secs: None,
            allow: None,
        }
    }
}

/// The default body cap (the sandbox takes whole job zips).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
const MAX_HEADER_LINE: usize = 16 * 1024;

/// Deadlines for one request, counted from when the server starts waiting for it (`head`: the
/// request line and headers, which covers a keep-alive connection's idle time) and from the end
/// of its head (`body`). `None` waits as long as the stream's own timeouts allow.
///
/// A deadline needs the stream to return from a read now and then: give the socket a short read
/// timeout (the control API uses 200 ms); a timed-out read before the deadline is tried again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub head: Option<Duration>,
    pub body: Option<Duration>,
}

/// A stream whose reads fail with `TimedOut` once `deadline` has passed.
struct Timed<S> {
    inner: S,
    deadline: Option<std::time::Instant>,
}

impl<S: Read> Read for Timed<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            match self.inner.read(buf) {
                Err(e)
                    if self.deadline.is_some()
                        && matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

impl<S: Write> Write for Timed<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// 413, naming the endpoint's limit.
pub fn too_large(cap: usize) -> Response {
    let why = format!("the request body is larger than this endpoint takes ({cap} bytes); send a smaller one");
    Response::json(413, &serde_json::json!({"error": why, "code": "too_large"}))
}

#[derive(Debug)]
enum ReadError {
    Closed,
    Bad(&'static str),
    /// The body is over the handler's limit for this request (its headers read, its body not).
    TooLarge(usize, Box<Request>),
    Io,
    /// The body stopped short of its Content-Length (the peer closed, or its deadline passed).
    Short,
    /// The handler asked for the body to be cut short.
    #[cfg(feature = "sandbox")]
    Cut,
}

fn read_line(r: &mut impl BufRead) -> Result<String, ReadError> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_HEADER_LINE as u64).read_until(b'\n', &mut buf).map_err(|_| ReadError::Io)?;
    if n == 0 {
        return Err(ReadError::Closed);
    }
    if !buf.ends_with(b"\n") {
        return Err(ReadError::Bad("header line too long"));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ReadError::Bad("header is not UTF-8"))
}

#[cfg_attr(not(feature = "sandbox"), allow(unused_variables))]
fn read_request<S: Read + Write, H: Handler + ?Sized>(
    r: &mut BufReader<Timed<S>>,
    handler: &H,
    body_deadline: impl FnOnce() -> Option<std::time::Instant>,
) -> Result<Request, ReadError> {
    let line = read_line(r)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(
            "malformed request line: METHOD PATH HTTP/1.1, one space apart (a space in the path is sent as %20)",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad("only HTTP/1.x is spoken here"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    loop {
        let h = read_line(r)?;
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').ok_or(ReadError::Bad("malformed header"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
        if headers.len() > 100 {
            return Err(ReadError::Bad("too many headers"));
        }
    }
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    r.get_mut().deadline = body_deadline();
    #[cfg(feature = "sandbox")]
    if let Some(n) = handler.cut_body(&req) {
        let len: usize = req.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut part = vec![0u8; n.min(len)];
        let _ = r.read_exact(&mut part);
        return Err(ReadError::Cut);
    }
    // Two lengths that differ, or a length beside chunks: which one frames the body is
    // ambiguous (how requests are smuggled past a proxy), so neither is taken.
    let mut lengths =
        req.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim());
    let first = lengths.next();
    // Every Transfer-Encoding header, joined as one list (RFC 9110 5.3).
    let codings: Vec<String> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .collect();
    let coding = (!codings.is_empty()).then(|| codings.join(", "));
    if lengths.any(|v| Some(v) != first) || (first.is_some() && coding.is_some()) {
        return Err(ReadError::Bad("conflicting Content-Length or Transfer-Encoding headers"));
    }
    // Any other coding (gzip, the obsolete identity, chunked under another) leaves the body's end
    // unknown: refused at once (RFC 9112 6.1), rather than waiting out the body's deadline.
    if coding.as_deref().is_some_and(|c| c != "chunked") {
        return Err(ReadError::Bad(
            "Transfer-Encoding other than chunked; send the body chunked or with Content-Length",
        ));
    }
    let cap = handler.body_limit(&req);
    let declared: Option<usize> = req.header("content-length").and_then(|l| l.parse().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(ReadError::TooLarge(cap, Box::new(req)));
    }
    if req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let w = r.get_mut();
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| ReadError::Io)?;
        w.flush().map_err(|_| ReadError::Io)?;
    }
    if coding.is_some() {
        loop {
            let size_line = read_line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| ReadError::Bad("bad chunk size"))?;
            if size > cap.saturating_sub(req.body.len()) {
                req.body.clear();
                return Err(ReadError::TooLarge(cap, Box::new(req)));
            }
            if size == 0 {
                while !read_line(r)?.is_empty() {}
                break;
            }
            read_exactly(r, size, &mut req.body)?;
            read_line(r)?;
        }
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| ReadError::Bad("bad Content-Length"))?;
        if len > cap {
            return Err(ReadError::TooLarge(cap, Box::new(req)));
        }
        read_exactly(r, len, &mut req.body)?;
    }
    Ok(req)
}

/// Appends exactly `n` bytes from `r` to `body`, growing it only as bytes arrive.
fn read_exactly(r: &mut impl Read, n: usize, body: &mut Vec<u8>) -> Result<(), ReadError> {
    let want = body.len() + n;
    // A read error here is the body's deadline passing (or the peer going): short either way.
    let _ = r.take(n as u64).read_to_end(body);
    if body.len() == want {
        Ok(())
    } else {
        Err(ReadError::Short)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "Insufficient Storage",
        _ => "Status",
    }
}

/// Writes `resp`, its body only if `body` (not for a HEAD, whose answer has none: RFC 9110);
/// `keep_alive` is `None` when the connection is closed after it, else how long (s) an idle one
/// is kept for its next request, if that is bounded.
fn write_response(
    w: &mut impl Write,
    resp: &Response,
    keep_alive: Option<Option<u64>>,
    body: bool,
) -> std::io::Result<()> {
    let date = resp.date.unwrap_or_else(crate::smileid::timestamp::UnixMillis::now).to_http_date();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
    );
    if let Some(secs) = resp.retry_after_secs {
        head += &format!("Retry-After: {secs}\r\n");
    }
    if let Some(methods) = resp.allow {
        head += &format!("Allow: {methods}\r\n");
    }
    // A client told how long an idle connection lasts does not send into one being closed.
    head += &match keep_alive {
        Some(Some(secs)) => format!("Connection: keep-alive\r\nKeep-Alive: timeout={secs}\r\n\r\n"),
        Some(None) => "Connection: keep-alive\r\n\r\n".into(),
        None => "Connection: close\r\n\r\n".into(),
    };
    match resp.wire {
        Wire::Whole => {
            w.write_all(head.as_bytes())?;
            if body {
                w.write_all(&resp.body)?;
            }
        }
        #[cfg(feature = "sandbox")]
        Wire::Silent { wait_ms } => {
            std::thread::sleep(Duration::from_millis(wait_ms));
            return Err(std::io::Error::other("answer withheld on purpose"));
        }
        #[cfg(feature = "sandbox")]
        Wire::Truncated => {
            w.write_all(head.as_bytes())?;
            w.write_all(&resp.body[..resp.body.len() / 2])?;
            w.flush()?;
            return Err(std::io::Error::other("answer cut short on purpose"));
        }
    }
    w.flush()
}

/// Serves `listener` until `stop` is set, handing each request to `handler`.
pub fn serve<H>(listener: TcpListener, tls: Arc<rustls::ServerConfig>, stop: Arc<AtomicBool>, handler: Arc<H>)
where
    H: Handler + ?Sized + 'static,
{
    listener.set_nonblocking(true).ok();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                let (tls, handler, stop) = (tls.clone(), handler.clone(), stop.clone());
                std::thread::spawn(move || connection(sock, tls, handler, stop));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn connection<H: Handler + ?Sized>(
    sock: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<H>,
    stop: Arc<AtomicBool>,
) {
    sock.set_nonblocking(false).ok();
    sock.set_read_timeout(Some(Duration::from_secs(60))).ok();
    sock.set_write_timeout(Some(Duration::from_secs(60))).ok();
    sock.set_nodelay(true).ok();
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        if stream.conn.complete_io(&mut stream.sock).is_err() {
            return;
        }
    }
    handler.connected(stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
    serve_stream(stream, &*handler, &stop, Limits::default(), |s| {
        s.conn.send_close_notify();
        let _ = s.flush();
    });
}

/// Serves requests on one connection until it closes, `stop` is set, a request asks to close,
/// or a deadline of `limits` passes.
pub fn serve_stream<S: Read + Write, H: Handler + ?Sized>(
    stream: S,
    handler: &H,
    stop: &AtomicBool,
    limits: Limits,
    on_close: impl FnOnce(&mut S),
) {
    let mut reader = BufReader::new(Timed { inner: stream, deadline: None });
    let after = |d: Option<Duration>| d.map(|d| std::time::Instant::now() + d);
    let mut served = false;
    while !stop.load(Ordering::Relaxed) {
        reader.get_mut().deadline = after(limits.head);
        if served && reader.buffer().is_empty() {
            handler.at_rest();
            let closed = !reader.fill_buf().is_ok_and(|b| !b.is_empty());
            if !handler.woken() || closed {
                return;
            }
        }
        served = true;
        let req = match read_request(&mut reader, handler, || after(limits.body)) {
            Ok(r) => r,
            Err(ReadError::Closed | ReadError::Io) => return,
            // Cut: dropped with the body unread, so the peer sees a reset mid-upload.
            #[cfg(feature = "sandbox")]
            Err(ReadError::Cut) => return,
            Err(ReadError::TooLarge(cap, req)) => {
                let _ = write_response(reader.get_mut(), &handler.too_large(&req, cap), None, true);
                return;
            }
            Err(ReadError::Bad(why)) => {
                let _ = write_response(
                    reader.get_mut(),
                    &Response::json(400, &serde_json::json!({"error": why, "code": "bad_request"})),
                    None,
                    true,
                );
                return;
            }
            // Said to a peer still listening (one whose Content-Length counts more than it sent).
            Err(ReadError::Short) => {
                let why = "the body stopped before the length its Content-Length gives; send exactly that many bytes";
                let _ = write_response(
                    reader.get_mut(),
                    &Response::json(400, &serde_json::json!({"error": why, "code": "bad_request"})),
                    None,
                    true,
                );
                return;
            }
        };
        reader.get_mut().deadline = None;
        let keep_alive = !req.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        // A HEAD is answered as its GET would be, without the body (health checkers send one).
        let head = req.method == "HEAD";
        let resp = if head { handler.handle(&Request { method: "GET".into(), ..req }) } else { handler.handle(&req) };
        // Idle, a connection is closed when its next head is due: a second early, said here.
        let kept = keep_alive.then(|| limits.head.map(|d| d.as_secs().saturating_sub(1).max(1)));
        if write_response(reader.get_mut(), &resp, kept, !head).is_err() || !keep_alive {
            on_close(&mut reader.get_mut().inner);
            return;
        }
    }
}
