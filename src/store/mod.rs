//! Durable file writes and the state directory's lock, shared by every module that keeps data
//! on disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically and durably: a 0600 temp file, fsync, rename, fsync of
/// the directory. A crash leaves either the old file or the new one, never a torn one.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, bytes, |tmp| std::fs::rename(tmp, path))
}

/// Like [`write_private`], but never replaces: fails with `AlreadyExists` when `path` exists.
/// The temp file is hard-linked into place, which the kernel refuses over an existing name.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, bytes, |tmp| {
        std::fs::hard_link(tmp, path)?;
        std::fs::remove_file(tmp)
    })
}

/// A hidden 0600 temp file beside `path`, written and fsynced, then put in place by `place`;
/// the directory is fsynced after. The temp file never outlives a failure.
fn write_via_temp(path: &Path, bytes: &[u8], place: impl FnOnce(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        place(&tmp)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An exclusive `flock` on a file, held until dropped (or the process dies: the kernel then
/// releases it, so a SIGKILL never leaves a stale lock).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock without waiting; `Ok(None)` when another process (or another open of
    /// the same file) holds it.
    pub fn try_take(path: &Path) -> std::io::Result<Option<DirLock>> {
        Self::take_from(OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?)
    }

    /// Like [`DirLock::try_take`], but never creates the file (a look changes nothing).
    pub fn try_take_existing(path: &Path) -> std::io::Result<Option<DirLock>> {
        Self::take_from(OpenOptions::new().read(true).open(path)?)
    }

    fn take_from(file: File) -> std::io::Result<Option<DirLock>> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        // A child this process is forking holds a copy of the lock until its exec closes it,
        // so a held lock is tried again for a moment before it counts as someone else's; for
        // longer (a loaded machine may take a while to run the child) while the lock is this
        // process's own.
        let start = std::time::Instant::now();
        let ino = file.metadata()?.ino();
        loop {
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Some(DirLock { _file: file }));
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(e);
            }
            // Another process's lock counts at once (after the short grace); this process's own,
            // or one whose holder cannot be told, is waited on for up to 3 s.
            let waited = start.elapsed();
            let other = flock_holder(ino).is_some_and(|p| p != std::process::id());
            if waited >= std::time::Duration::from_secs(3) || (other && waited >= std::time::Duration::from_millis(250))
            {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The pid that took the `flock` on the file with inode `ino` (on any device), from /proc/locks.
pub fn flock_holder(ino: u64) -> Option<u32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF": the pid, then major:minor:inode.
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let at = f.iter().position(|w| *w == "FLOCK")?;
        let (pid, dev) = (f.get(at + 3)?, f.get(at + 4)?);
        (dev.rsplit(':').next()?.parse::<u64>().ok()? == ino).then(|| pid.parse().ok())?
    })
}

/// Where a relative secret name (`api_key`) is among systemd's credentials: as loaded one by
/// one (`LoadCredential=api_key:...`, `$CREDENTIALS_DIRECTORY/api_key`), or with the packaged
/// unit's whole directory (`LoadCredential=kiosk:/etc/kiosk-agent/credentials`, which names it
/// `kiosk_api_key`). `None` outside systemd or when it is in neither place.
pub fn credential(name: &Path) -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("CREDENTIALS_DIRECTORY")?);
    if name.is_absolute() {
        return None;
    }
    // The packaged unit's two directories: /etc/kiosk-agent/credentials (kiosk_) and the
    // encrypted keys in /etc/kiosk-agent/keys (kiosk-keys_).
    let names =
        [name.display().to_string(), format!("kiosk_{}", name.display()), format!("kiosk-keys_{}", name.display())];
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
}

/// A secret file's path: absolute as given, relative among systemd's credentials when there,
/// else as given (relative to the working directory, for a command run by hand).
pub fn secret_path(name: &Path) -> std::path::PathBuf {
    credential(name).unwrap_or_else(|| match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(d) if name.is_relative() => Path::new(&d).join(name),
        _ => name.to_owned(),
    })
}

/// Creates a directory (and parents) readable by its owner only.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_are_private_and_replace_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn new_files_never_replace() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("0001.kab");
        write_new_private(&p, b"first").unwrap();
        let e = write_new_private(&p, b"second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let held = DirLock::try_take(&p).unwrap().expect("free");
        assert!(DirLock::try_take(&p).unwrap().is_none(), "a second open is refused");
        assert!(DirLock::try_take_existing(&p).unwrap().is_none());
        drop(held);
        assert!(DirLock::try_take(&p).unwrap().is_some());
    }
}
