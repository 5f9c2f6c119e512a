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
    #[error("another process already serves the control API at {0} (the service, or another kiosk-agent); stop it (`systemctl status kiosk-agent` names the service's), or give this one its own [api] socket")]
    InUse(PathBuf),
    #[error("no group named {0:?} for the control socket; create it or fix [api] group")]
    Group(String),
    #[error("cannot give the control socket to group {group:?}: {detail}; under systemd make it the service's group (`systemctl edit kiosk-agent`: [Service] Group={group}), or fix [api] group")]
    GroupOwner { group: String, detail: String },
    #[error(transparent)]
    Access(#[from] super::access::AccessError),
    #[error("cannot start the control API's workers: {0}; the system is out of threads (check LimitNPROC/TasksMax)")]
    Workers(std::io::Error),
}

/// Binds the socket (replacing a stale one, never one that answers) with mode 0660 and, if
/// given, the group.
///
/// The socket is made under a temporary name and renamed into place once it listens with its
/// mode and group: a host application that waits for the path to appear can connect at once
/// (between bind and listen a connect is refused), and never meets a socket with the umask's
/// mode.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, ServerError> {
    let err = |d: String| ServerError::Bind { path: path.to_owned(), detail: d };
    let name = path.file_name().ok_or_else(|| err("the path names no file".into()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".new");
    let tmp = path.with_file_name(tmp_name);
    // Replaced, a live agent's socket would leave it serving nobody, and its host application
    // talking to this one.
    if answering(path) {
        return Err(ServerError::InUse(path.to_owned()));
    }
    // A socket's path has room for 107 bytes: one that only just fits is made in place.
    if tmp.as_os_str().len() > 107 {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e.to_string())),
            _ => return bind_at(path, group),
        }
    }
    let _ = std::fs::remove_file(&tmp);
    let made = bind_at(&tmp, group).and_then(|l| match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(l),
        Err(e) => Err(err(e.to_string())),
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made.map_err(|e| match e {
        ServerError::Bind { detail, .. } => err(detail),
        e => e,
    })
}

/// The right to serve the control API at a socket path, held while the value lives.
pub struct Claim(#[allow(dead_code)] std::fs::File);

/// Claims the socket at `path` for this process, before anything else is touched: refused if
/// another process holds it or something answers there. Two agents started at once both find
/// nothing answering; the lock beside the socket lets only one of them on; the kernel drops it
/// when its holder exits.
///
/// The lock file is never followed through a symbolic link (the socket's directory belongs to
/// the service's user), and one made by root is given to the directory's owner, so that the
/// service can lock it later. A lock that cannot be had for any other reason than another
/// holder is logged and gone without: a kiosk is not left dark over its lock file, and the
/// answer check still keeps a live agent's socket.
pub fn claim(path: &Path) -> Result<Option<Claim>, ServerError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let Some(name) = path.file_name() else {
        return Err(ServerError::Bind { path: path.to_owned(), detail: "the path names no file".into() });
    };
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".lock");
    let lock = path.with_file_name(lock_name);
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(flags)
            .open(&lock)
            // Root's, on a kiosk whose service user may read it: a shared lock needs no write.
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    std::fs::OpenOptions::new().read(true).custom_flags(flags).open(&lock)
                }
                _ => Err(e),
            })
    };
    let unlocked = |why: String| {
        crate::log::warn(
            &format!("cannot lock {} ({why}); going on without it: two agents started at once on this socket could both serve", lock.display()),
            &[],
        );
        None
    };
    let held = match open() {
        Ok(f) if !f.metadata().is_ok_and(|m| m.is_file()) => unlocked("it is not a regular file".into()),
        Ok(f) => {
            // SAFETY: flock on a descriptor this File owns.
            let locked = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            let err = std::io::Error::last_os_error();
            if locked {
                // SAFETY: geteuid has no preconditions.
                let root = unsafe { libc::geteuid() } == 0;
                let dir = lock.parent().and_then(|d| std::fs::metadata(d).ok());
                if let (true, Some(d), Ok(m)) = (root, dir, f.metadata()) {
                    if m.uid() == 0 && d.uid() != 0 {
                        let _ = std::os::unix::fs::fchown(&f, Some(d.uid()), Some(d.gid()));
                    }
                }
                Some(Claim(f))
            } else if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(ServerError::InUse(path.to_owned()));
            } else {
                unlocked(err.to_string())
            }
        }
        // No directory for the socket yet: the bind will say so.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => unlocked(e.to_string()),
    };
    if answering(path) {
        return Err(ServerError::InUse(path.to_owned()));
    }
    Ok(held)
}

/// Something listens on the socket at `path`: a connect is taken, or waits (a listener whose
/// backlog is full, an agent hung) longer than a second. A stale socket refuses at once.
pub fn answering(path: &Path) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_owned();
    let probe = std::thread::Builder::new().name("socket-probe".into()).spawn(move || {
        let _ = tx.send(UnixStream::connect(&p).is_ok());
    });
    probe.is_ok() && rx.recv_timeout(Duration::from_secs(1)).unwrap_or(true)
}

fn bind_at(path: &Path, group: Option<&str>) -> Result<UnixListener, ServerError> {
    let err = |d: String| ServerError::Bind { path: path.to_owned(), detail: d };
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
    /// The peer's uid, so that one user cannot hold every worker.
    uid: Option<u32>,
    /// [`QUEUED`], [`BUSY`], [`CLOSED`], or the time (ms since the server started) from which a
    /// worker has been waiting for this connection's next request, with [`AT_REST`] while none
    /// of it has come.
    state: Arc<AtomicU64>,
}

/// Waiting for a worker: it has not had its chance yet, so it is never closed to make room.
const QUEUED: u64 = u64::MAX;
/// In its handler now.
const BUSY: u64 = u64::MAX - 1;
/// Shut down to make room: a request read after this is dropped, not run.
const CLOSED: u64 = u64::MAX - 2;
/// Added to the time of a kept-alive connection that has answered and has none of its next
/// request: closing it loses nothing, so its own user's newcomer may take its place.
const AT_REST: u64 = 1 << 62;
/// A connection a worker has waited on this long for its request may be closed to make room
/// (a local client sends its request at once; only a trickle or an idle keep-alive takes this long).
const SLOW: Duration = Duration::from_millis(25);
/// How long a newcomer waits for room before it gets 503.
const ROOM_WAIT: Duration = Duration::from_secs(1);

/// The API's connections: a fixed pool of workers, made once, so a connection never needs a
/// new thread. When every worker is taken, the connection a worker has waited on longest for
/// its request (idle, or trickling its head or body, for more than [`SLOW`]) is shut down to
/// make room; else one of the newcomer's own user's kept-alive connections at rest; else one of
/// a user that holds more than half the workers (for a newcomer from another user). A newcomer
/// that finds no room within [`ROOM_WAIT`] gets 503. Nothing here can stop the acceptor.
pub struct Server {
    open: Mutex<Vec<Open>>,
    next_id: AtomicU64,
    started: Instant,
    backend: Arc<dyn Backend>,
    access: Access,
    limits: ServerLimits,
}

type Conn = (u64, UnixStream, Arc<AtomicU64>);

impl Server {
    /// Makes the workers; fails (and so does the agent's start) only if they cannot be made.
    pub fn start(
        listener: UnixListener,
        backend: Arc<dyn Backend>,
        access: Access,
        limits: ServerLimits,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let server = Arc::new(Server {
            open: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
            backend,
            access,
            limits,
        });
        let (tx, rx) = sync_channel::<Conn>(limits.workers.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..limits.workers.max(1) {
            let (server, rx, stop) = (server.clone(), rx.clone(), stop.clone());
            std::thread::Builder::new().name(format!("api-{i}")).spawn(move || server.work(&rx, &stop))?;
        }
        std::thread::Builder::new().name("api-accept".into()).spawn(move || server.accept(listener, tx, &stop))
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn accept(&self, listener: UnixListener, tx: SyncSender<Conn>, stop: &AtomicBool) {
        listener.set_nonblocking(true).ok();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((sock, _)) => self.admit(sock, &tx),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_readable(&listener, 100),
                // Out of file descriptors and the like: this one connection is lost, not the API.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Makes room for one more connection, from `uid`: true once there is.
    fn room(&self, open: &mut Vec<Open>, uid: Option<u32>) -> bool {
        let workers = self.limits.workers.max(1);
        if open.len() < workers {
            return true;
        }
        let now = self.now_ms();
        // Those waiting for a request: (index, state seen, waiting since, at rest). One at rest
        // whose next request is already in the socket is left to its worker.
        let waiting: Vec<(usize, u64, u64, bool)> = open
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let seen = o.state.load(Ordering::Relaxed);
                let at_rest = seen & AT_REST != 0;
                (seen < CLOSED && !(at_rest && pending(&o.sock))).then_some((i, seen, seen & !AT_REST, at_rest))
            })
            .collect();
        let slowest =
            || waiting.iter().filter(|w| now.saturating_sub(w.2) >= SLOW.as_millis() as u64).min_by_key(|w| w.2);
        // None slow: a user's newcomer takes the place of that user's own connection at rest,
        // else a user holding more than half the workers gives one up to another user (at
        // rest if it has one, whatever it is doing between requests if not), so that no client
        // can shut the others out, nor its own next request out with its keep-alive pool.
        let own = || waiting.iter().find(|w| w.3 && open[w.0].uid == uid);
        let hog = || {
            let count = |u: Option<u32>| open.iter().filter(|o| o.uid == u).count();
            let (top, n) = open.iter().map(|o| (o.uid, count(o.uid))).max_by_key(|(_, n)| *n)?;
            if n * 2 <= workers || top == uid {
                return None;
            }
            waiting.iter().filter(|w| open[w.0].uid == top).min_by_key(|w| (!w.3, w.2))
        };
        let Some(&(i, seen, ..)) = slowest().or_else(own).or_else(hog) else { return false };
        // Unless its worker has just taken in a request or begun one: then look again.
        if open[i].state.compare_exchange(seen, CLOSED, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return false;
        }
        let o = open.swap_remove(i);
        let _ = o.sock.shutdown(std::net::Shutdown::Both);
        true
    }

    fn admit(&self, sock: UnixStream, tx: &SyncSender<Conn>) {
        sock.set_nonblocking(false).ok();
        sock.set_read_timeout(Some(READ_TICK)).ok();
        sock.set_write_timeout(Some(Duration::from_secs(10))).ok();
        let Ok(handle) = sock.try_clone() else {
            return refuse(sock, "the kiosk agent has no file descriptors left; try again shortly");
        };
        let uid = {
            use std::os::fd::AsFd;
            super::access::peer(sock.as_fd()).ok().map(|(uid, _, _)| uid)
        };
        let give_up = Instant::now() + ROOM_WAIT;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !self.room(&mut open, uid) {
            drop(open);
            if Instant::now() >= give_up {
                return refuse(sock, "the kiosk agent is busy with other requests; try again shortly");
            }
            std::thread::sleep(Duration::from_millis(2));
            open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(AtomicU64::new(QUEUED));
        open.push(Open { id, sock: handle, uid, state: state.clone() });
        drop(open);
        // The channel holds as many as there are workers, and no more are open than that, so
        // this waits at most for a shut-down connection's worker to let go of it.
        let _ = tx.send((id, sock, state));
    }

    fn work(&self, rx: &Mutex<Receiver<Conn>>, stop: &AtomicBool) {
        loop {
            let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok((id, sock, state)) = next else { return };
            // A panic in one request ends that connection, never the worker.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(&sock, &state, stop)));
            self.open.lock().unwrap_or_else(|e| e.into_inner()).retain(|o| o.id != id);
        }
    }

    fn serve(&self, sock: &UnixStream, state: &AtomicU64, stop: &AtomicBool) {
        use std::os::fd::AsFd;
        let caller = match super::access::peer(sock.as_fd()) {
            Ok((uid, gid, _)) => {
                Caller { uid, role: self.access.role(uid, gid, &super::access::peer_groups(sock.as_fd())) }
            }
            Err(_) => return,
        };
        // Its wait for a request counts from here, after the role's lookups.
        state.store(self.now_ms(), Ordering::Relaxed);
        let handler = Api { server: self, caller, state };
        crate::httpd::serve_stream(sock, &handler, stop, self.limits.limits, |_| {});
    }
}

/// Waits until a connection is there to accept, or `ms` have passed (so `stop` is looked at).
fn wait_readable(listener: &UnixListener, ms: i32) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Whether bytes of a request wait in `sock`, unread by its worker.
fn pending(sock: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = 0u8;
    // SAFETY: a one-byte buffer that outlives the call; MSG_PEEK leaves the byte where it is.
    let n = unsafe { libc::recv(sock.as_raw_fd(), (&mut b as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    n > 0
}

/// Answers 503 and closes, without reading the request (the answer is small enough for the
/// socket's buffer, so this never waits on the client).
fn refuse(mut sock: UnixStream, why: &str) {
    use std::io::Write;
    sock.set_nonblocking(true).ok();
    let body = serde_json::json!({ "error": why, "code": "busy", "retry_after_secs": 1 }).to_string();
    let _ = write!(
        sock,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// One connection's handler: the router for this caller, with the body caps of its routes and
/// a log line for every administrative action.
struct Api<'a> {
    server: &'a Server,
    caller: Caller,
    state: &'a AtomicU64,
}

impl crate::httpd::Handler for Api<'_> {
    fn handle(&self, req: &Request) -> Response {
        if self.state.swap(BUSY, Ordering::Relaxed) == CLOSED {
            // Shut down to make room while its request came in: nobody would hear the answer.
            return Response::json(
                503,
                &serde_json::json!({"error": "closed to make room; send again", "code": "busy"}),
            );
        }
        let resp = route(&*self.server.backend, &self.caller, req);
        // An audit of what admins did and read; a scraper's counters every few seconds would
        // only bury it.
        let scrape = matches!(req.method.as_str(), "GET" | "HEAD") && req.path == "/metrics";
        if super::required_role(req) == Some(Role::Administer) && resp.status != 403 && !scrape {
            crate::log::info(
                "administrative request",
                &[
                    ("peer_uid", &self.caller.uid.to_string()),
                    // A path that names nothing is not echoed: a host's mistake may put anything
                    // in it, a customer's id number included, and this goes to the fleet's journal.
                    (
                        "request",
                        &match resp.status {
                            404 => format!("{} (a path that names nothing here)", req.method),
                            _ => format!("{} {}", req.method, req.path),
                        },
                    ),
                    ("status", &resp.status.to_string()),
                ],
            );
        }
        // Waiting for the next request on this connection from now.
        self.state.store(self.server.now_ms(), Ordering::Relaxed);
        resp
    }

    fn body_limit(&self, req: &Request) -> usize {
        super::body_limit(req)
    }

    /// A path or method that names nothing is told so (404, 405) whatever its body's size.
    fn too_large(&self, req: &Request, cap: usize) -> Response {
        match super::routed(req) {
            true => crate::httpd::too_large(cap),
            false => self.handle(req),
        }
    }

    fn at_rest(&self) {
        let _ = self.state.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s < CLOSED).then_some(s | AT_REST));
    }

    fn woken(&self) -> bool {
        self.state.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s != CLOSED).then_some(s & !AT_REST)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    #[test]
    fn the_socket_appears_listening_with_its_mode_over_a_stale_one() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("control.sock");
        std::fs::write(&path, "stale").unwrap();
        let l = bind(&path, None).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        UnixStream::connect(&path).unwrap();
        assert!(l.accept().is_ok());
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["control.sock"], "nothing left beside it");
    }

    #[test]
    fn a_socket_another_agent_serves_is_not_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("control.sock");
        let live = bind(&path, None).unwrap();
        let e = bind(&path, None).unwrap_err().to_string();
        assert!(e.contains("another process already serves") && e.contains("control.sock"), "{e}");
        UnixStream::connect(&path).unwrap();
        assert!(live.accept().is_ok(), "the first still serves");
        // Once it is gone, its socket is stale and replaced.
        drop(live);
        let _l = bind(&path, None).unwrap();
        UnixStream::connect(&path).unwrap();
    }

    #[test]
    fn a_path_with_no_room_for_the_temporary_name_is_bound_in_place() {
        let d = tempfile::tempdir().unwrap();
        let room = 107 - d.path().as_os_str().len() - 1;
        let path = d.path().join("s".repeat(room - 2));
        let _l = bind(&path, None).unwrap();
        UnixStream::connect(&path).unwrap();
        let e = bind(&d.path().join("s".repeat(room + 5)), None).unwrap_err().to_string();
        assert!(e.contains(&"s".repeat(room + 5)) && !e.contains(".new"), "{e}");
    }

    #[test]
    fn a_claimed_socket_is_refused_to_a_second_claim_until_the_first_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("api.sock");
        let first = claim(&path).unwrap();
        assert!(first.is_some());
        assert!(matches!(claim(&path), Err(ServerError::InUse(_))));
        drop(first);
        assert!(claim(&path).unwrap().is_some());
        // A symbolic link for a lock file is not followed (nor anything made where it points).
        let odd = d.path().join("odd.sock");
        std::os::unix::fs::symlink(d.path().join("made-by-the-link"), d.path().join(".odd.sock.lock")).unwrap();
        assert!(claim(&odd).unwrap().is_none());
        assert!(!d.path().join("made-by-the-link").exists());
        // Where no lock can be had, a live socket still refuses.
        let _live = UnixListener::bind(&odd).unwrap();
        assert!(matches!(claim(&odd), Err(ServerError::InUse(_))));
        assert!(claim(&d.path().join("no-such-dir").join("api.sock")).unwrap().is_none());
    }
}
