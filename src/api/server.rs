//! The control API's Unix socket: created 0660 (owner and one group may connect), one thread
//! per connection.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{route, Backend};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create the control socket {path}: {detail}; check the directory exists and is writable")]
    Bind { path: PathBuf, detail: String },
    #[error("no group named {0:?} for the control socket; create it or fix [api] group")]
    Group(String),
    #[error("cannot give the control socket to group {group:?}: {detail}; under systemd make it the service's group (`systemctl edit kiosk-agent`: [Service] Group={group}), or fix [api] group")]
    GroupOwner { group: String, detail: String },
}

fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is NUL-terminated; getgrnam returns a pointer into static storage or null.
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    (!g.is_null()).then(|| unsafe { (*g).gr_gid })
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
        let gid = group_id(g).ok_or_else(|| ServerError::Group(g.into()))?;
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

/// Serves the API until `stop` is set.
pub fn serve(listener: UnixListener, backend: Arc<dyn Backend>, stop: Arc<AtomicBool>) {
    listener.set_nonblocking(true).ok();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                let (b, stop) = (backend.clone(), stop.clone());
                std::thread::spawn(move || {
                    sock.set_nonblocking(false).ok();
                    sock.set_read_timeout(Some(Duration::from_secs(300))).ok();
                    let handler = |req: &crate::httpd::Request| route(&*b, req);
                    crate::httpd::serve_stream(sock, &handler, &stop, |_| {});
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
