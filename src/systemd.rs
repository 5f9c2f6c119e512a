//! The little of systemd the agent speaks: `sd_notify` (READY, STATUS, WATCHDOG) over
//! `$NOTIFY_SOCKET`, and the watchdog interval from `$WATCHDOG_USEC`. No-ops outside systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends a notification (`READY=1`, `WATCHDOG=1`, `STATUS=...`); false when not under systemd.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return false };
    let Ok(sock) = UnixDatagram::unbound() else { return false };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    let sent = if bytes.first() == Some(&b'@') {
        // Abstract socket: a leading NUL instead of '@'.
        use std::os::linux::net::SocketAddrExt;
        match std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..]) {
            Ok(addr) => sock.send_to_addr(state.as_bytes(), &addr).is_ok(),
            Err(_) => false,
        }
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path)).is_ok()
    };
    sent
}

/// How often to ping the watchdog: half of `WatchdogSec`, if it is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_socket() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("notify");
        let server = UnixDatagram::bind(&p).unwrap();
        // Tests run in threads: set the variable only for this check, then remove it.
        std::env::set_var("NOTIFY_SOCKET", &p);
        let sent = notify("READY=1\nSTATUS=test");
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(sent);
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=test");
    }
}
