//! The control API's Unix socket: created 0660 (owner and one group may connect), served by a
//! fixed pool of workers with bounded bodies and deadlines; each peer's role from its
//! credentials.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::access::{Access, Caller, Role};
use super::{route, Backend};
use crate::httpd::{Limits, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create the control socket {path}: {detail}; check the directory exists and is writable")]
    Bind { path: PathBuf, detail: String },
    #[error("no group named {0:?} for the control socket; create it or fix [api] group")]
    Group(String),
    #[error("cannot give the control socket to group {group:?}: {detail}; under systemd make it the service's group (`systemctl edit kiosk-agent`: [Service] Group={group}), or fix [api] group")]
    GroupOwner { group: String, detail: String },
    #[error(transparent)]
    Access(#[from] super::access::AccessError),
    #[error("cannot start the control API's workers: {0}; the system is out of threads (check LimitNPROC/TasksMax)")]
    Workers(std::io::Error),
}

/// Binds the socket (replacing a stale one) with mode 0660 and, if given, the group.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, ServerError> {
    let err = |d: String| ServerError::Bind { path: path.to_owned(), detail: d };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e.to_string())),
        _ => {}
    }
    let l = UnixListener::bind(path).map_err(|e| err(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|e| err(e.to_string()))?;
    if let Some(g) = group {
        let gid = super::access::group_id(g).ok_or_else(|| ServerError::Group(g.into()))?;
        // Under the packaged unit the group is the service's own (Group=kiosk): the socket is
        // born with it, and no chown is needed (the unit's syscall filter forbids it anyway).
        // SAFETY: getegid has no preconditions.
        if gid != unsafe { libc::getegid() } {
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(|e| ServerError::GroupOwner { group: g.into(), detail: e.to_string() })?;
        }
    }
    Ok(l)
}

/// How the API's connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once, each by a worker thread made at start.
    pub workers: usize,
    /// Deadlines for a request's head and body.
    pub limits: Limits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            workers: 16,
            limits: Limits { head: Some(Duration::from_secs(10)), body: Some(Duration::from_secs(10)) },
        }
    }
}

/// A read on an API socket returns at least this often, so deadlines are checked.
const READ_TICK: Duration = Duration::from_millis(200);

/// One open connection, as the acceptor sees it.
struct Open {
    id: u64,
    /// A handle to shut the connection down from the acceptor (the worker owns the stream).
    sock: UnixStream,
    since: Instant,
    /// In the handler now (not waiting for bytes): never shut down to make room.
    busy: Arc<AtomicBool>,
}

/// The API's connections: a fixed pool of workers, made once, so a connection never needs a
/// new thread. When every worker is taken, the connection that has waited longest for its
/// request (idle, or trickling its head or body) is shut down to make room; if every one is in
/// its handler, the newcomer gets 503. Nothing here can stop the acceptor.
pub struct Server {
    open: Mutex<Vec<Open>>,
    next_id: AtomicU64,
    backend: Arc<dyn Backend>,
    access: Access,
    limits: ServerLimits,
}

impl Server {
    /// Makes the workers; fails (and so does the agent's start) only if they cannot be made.
    pub fn start(
        listener: UnixListener,
        backend: Arc<dyn Backend>,
        access: Access,
        limits: ServerLimits,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let server =
            Arc::new(Server { open: Mutex::new(Vec::new()), next_id: AtomicU64::new(0), backend, access, limits });
        let (tx, rx) = sync_channel::<(u64, UnixStream, Arc<AtomicBool>)>(limits.workers.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..limits.workers.max(1) {
            let (server, rx, stop) = (server.clone(), rx.clone(), stop.clone());
            std::thread::Builder::new().name(format!("api-{i}")).spawn(move || server.work(&rx, &stop))?;
        }
        std::thread::Builder::new().name("api-accept".into()).spawn(move || server.accept(listener, tx, &stop))
    }

    fn accept(&self, listener: UnixListener, tx: SyncSender<(u64, UnixStream, Arc<AtomicBool>)>, stop: &AtomicBool) {
        listener.set_nonblocking(true).ok();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((sock, _)) => self.admit(sock, &tx),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                // Out of file descriptors and the like: this one connection is lost, not the API.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn admit(&self, sock: UnixStream, tx: &SyncSender<(u64, UnixStream, Arc<AtomicBool>)>) {
        sock.set_nonblocking(false).ok();
        sock.set_read_timeout(Some(READ_TICK)).ok();
        sock.set_write_timeout(Some(Duration::from_secs(10))).ok();
        let Ok(handle) = sock.try_clone() else {
            return refuse(sock, "the kiosk agent has no file descriptors left; try again shortly");
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.limits.workers.max(1) {
            let idle =
                open.iter().enumerate().filter(|(_, o)| !o.busy.load(Ordering::Relaxed)).min_by_key(|(_, o)| o.since);
            match idle.map(|(i, _)| i) {
                Some(i) => {
                    let o = open.swap_remove(i);
                    let _ = o.sock.shutdown(std::net::Shutdown::Both);
                }
                None => {
                    drop(open);
                    return refuse(sock, "the kiosk agent is busy with other requests; try again shortly");
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicBool::new(false));
        open.push(Open { id, sock: handle, since: Instant::now(), busy: busy.clone() });
        drop(open);
        // The channel holds as many as there are workers, and the list allows no more than that
        // open, so this does not block for long: a shut-down connection's worker is freed at once.
        let _ = tx.send((id, sock, busy));
    }

    fn work(&self, rx: &Mutex<Receiver<(u64, UnixStream, Arc<AtomicBool>)>>, stop: &AtomicBool) {
        loop {
            let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok((id, sock, busy)) = next else { return };
            // A panic in one request ends that connection, never the worker.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(&sock, &busy, stop)));
            self.open.lock().unwrap_or_else(|e| e.into_inner()).retain(|o| o.id != id);
        }
    }

    fn serve(&self, sock: &UnixStream, busy: &AtomicBool, stop: &AtomicBool) {
        use std::os::fd::AsFd;
        let caller = match super::access::peer(sock.as_fd()) {
            Ok((uid, gid, _)) => Caller { uid, role: self.access.role(uid, gid) },
            Err(_) => return,
        };
        let handler = Api { backend: &*self.backend, caller, busy };
        crate::httpd::serve_stream(sock, &handler, stop, self.limits.limits, |_| {});
    }
}

/// Answers 503 and closes, without reading the request (the answer is small enough for the
/// socket's buffer, so this never waits on the client).
fn refuse(mut sock: UnixStream, why: &str) {
    use std::io::Write;
    sock.set_nonblocking(true).ok();
    let body = serde_json::json!({ "error": why }).to_string();
    let _ = write!(
        sock,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// One connection's handler: the router for this caller, with the body caps of its routes and
/// a log line for every administrative action.
struct Api<'a> {
    backend: &'a dyn Backend,
    caller: Caller,
    busy: &'a AtomicBool,
}

impl crate::httpd::Handler for Api<'_> {
    fn handle(&self, req: &Request) -> Response {
        self.busy.store(true, Ordering::Relaxed);
        let resp = route(self.backend, &self.caller, req);
        if super::required_role(req) == Some(Role::Administer) && resp.status != 403 {
            crate::log::info(
                "administrative request",
                &[
                    ("peer_uid", &self.caller.uid.to_string()),
                    ("request", &format!("{} {}", req.method, req.path)),
                    ("status", &resp.status.to_string()),
                ],
            );
        }
        self.busy.store(false, Ordering::Relaxed);
        resp
    }

    fn body_limit(&self, req: &Request) -> usize {
        super::body_limit(req)
    }
}
