//! The durable job queue.
//!
//! Each job is a sealed bundle file (images and details, see [`crate::bundle`]) plus a small
//! record in a sled index (its [`machine::Stage`], submission progress, attempts, result). The
//! bundle is fsynced and the index flushed before any network call, and the index is flushed at
//! every state change. sled's cache is capped for small boards.
//!
//! Ownership and identity:
//! * One process owns the state dir at a time (an `flock` on `state_dir/lock`); any other gets
//!   [`QueueError::Busy`], never a "damaged" index. Read-only opens create nothing.
//! * A job's storage name (its `seq`) is never taken by another job: new bundles are linked
//!   into place, never renamed over an existing one, and on open the sequence restarts past
//!   the highest seq ever given (`meta`), in the index, in `bundles/` and in `quarantine/`.
//! * Records change only by atomic read-modify-write of the stored record ([`Queue::apply`]),
//!   so a purge, a retry and the uplink's progress never overwrite each other. A job_id → seq
//!   tree makes lookups and the duplicate check one read, and enqueue claims the job_id in the
//!   same transaction that writes the record.
//! * Keys are never invented over existing data: the device and bundle keys are created only
//!   while nothing is sealed, and while something is, a key that differs from the one it was
//!   sealed with (a check value in `keys.check`) stops the open with a message naming it.
//! * Time decides nothing until a server has confirmed the clock ([`Queue::confirm_clock`]).
//!
//! On open the index and the bundles are reconciled, so no single damaged file can stop the
//! agent: an index sled cannot read (or that panics) is moved aside and rebuilt from the
//! bundles; bundles that fail their seal are moved to `quarantine/` and reported (and come back
//! by themselves, or by [`Queue::restore`], once they check again); a bundle that cannot be read
//! (permissions, I/O) is left alone and reported; bundles with no record are adopted (from
//! `quarantine/` only when the index itself was lost); records whose bundle vanished are
//! quarantined; erasures a crash cut short are finished; leftover temp files are removed; v1
//! bundles migrate.

pub mod machine;
mod used_ids;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use zeroize::Zeroizing;

use crate::bundle::{self, Bundle, BundleError, Sealer};
use crate::clock::{BootStamp, Clock, SystemClock};
use crate::smileid::job::Job;
use crate::smileid::submit::Progress;

use crate::store::{private_dir, write_new_private, write_private, DirLock};
pub use machine::{Event, Record, Stage};

/// Limits and retention, from `[queue]` in the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Most jobs holding images at once; new sessions are refused beyond it.
    pub max_jobs: usize,
    /// Most bytes of bundles at once.
    pub max_bytes: u64,
    /// Free space kept on the state file system; a session that would eat into it is refused.
    pub min_free_bytes: u64,
    /// 0 (the default): a job waits for delivery as long as it takes, ended only by Smile ID's
    /// verdict or an operator's purge. Else, an operator's policy: a job not delivered within
    /// this time (by a server-confirmed clock) fails as expired; its images stay for
    /// `failed_retention_hours`, so `queue retry` can still send it.
    pub ttl_hours: u64,
    /// How long images stay after a final result (0: erased at once).
    pub image_retention_secs: u64,
    /// How long a failed job keeps its images, so a mistaken failure can be retried.
    pub failed_retention_hours: u64,
    /// How long a finished job's record and result stay for the host application.
    pub result_retention_hours: u64,
    /// sled's cache (its default is 1 GiB, far beyond a Pi's budget).
    pub index_cache_bytes: u64,
    /// Ballast file kept in the state dir and released when the disk fills, so the queue can
    /// still open and record uploads.
    pub reserve_bytes: u64,
    /// Key file for encrypting bundles and index records at rest. Relative names resolve in
    /// $CREDENTIALS_DIRECTORY, else in the state dir. Created (0600) only for an empty queue.
    /// None: sealed but not encrypted.
    pub encryption_key_file: Option<PathBuf>,
    /// Key file of the seal (HMAC) over every bundle; resolved like `encryption_key_file`.
    pub device_key_file: PathBuf,
}

/// Where the keys lived inside the state dir before they came as systemd credentials.
const LEGACY_DEVICE_KEY: &str = "keys/device.key";
const LEGACY_BUNDLE_KEY: &str = "keys/bundle.key";

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            max_jobs: 500,
            max_bytes: 256 * 1024 * 1024,
            min_free_bytes: 64 * 1024 * 1024,
            ttl_hours: 0,
            image_retention_secs: 0,
            failed_retention_hours: 168,
            result_retention_hours: 168,
            index_cache_bytes: 4 * 1024 * 1024,
            reserve_bytes: 4 * 1024 * 1024,
            encryption_key_file: Some(PathBuf::from("keys/bundle.key")),
            device_key_file: PathBuf::from(LEGACY_DEVICE_KEY),
        }
    }
}

impl QueueSettings {
    /// Which of the queue's own limits (`max_jobs`, `max_bytes`) one more job of `bytes` would
    /// cross, in words; the disk's room is another matter ([`Queue::check_room`]).
    pub fn limit_reached(&self, s: &QueueStats, bytes: u64) -> Option<String> {
        if s.holding_images >= self.max_jobs {
            return Some(format!("{} job(s) waiting, the limit is max_jobs = {}", s.holding_images, self.max_jobs));
        }
        (s.bundle_bytes + bytes > self.max_bytes).then(|| {
            format!("{} MB queued, the limit is max_bytes = {} MB", s.bundle_bytes >> 20, self.max_bytes >> 20)
        })
    }

    /// The ballast kept: 0 (none), or at least 256 KiB. Less frees too little for the index to
    /// record an upload on a full disk: it would only seem to protect the queue.
    pub fn reserve(&self) -> u64 {
        if self.reserve_bytes == 0 {
            0
        } else {
            self.reserve_bytes.max(256 * 1024)
        }
    }

    /// Ranges that keep data safe and the disk quiet; `check-config` and every open use it.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        const TEN_YEARS_H: u64 = 10 * 366 * 24;
        if self.max_jobs == 0 || self.max_bytes < 1024 * 1024 {
            return Err(("queue.max_jobs/max_bytes", "must allow at least one job (max_bytes ≥ 1 MiB)".into()));
        }
        if self.ttl_hours > TEN_YEARS_H {
            return Err((
                "queue.ttl_hours",
                format!(
                    "must be 0 (jobs never expire) to {TEN_YEARS_H} hours (ten years); {} is out of range",
                    self.ttl_hours
                ),
            ));
        }
        for (key, v) in [
            ("queue.failed_retention_hours", self.failed_retention_hours),
            ("queue.result_retention_hours", self.result_retention_hours),
        ] {
            if v == 0 || v > TEN_YEARS_H {
                return Err((key, format!("must be 1 to {TEN_YEARS_H} hours (ten years); {v} is out of range")));
            }
        }
        if self.image_retention_secs > TEN_YEARS_H * 3600 {
            return Err(("queue.image_retention_secs", "must be at most ten years".into()));
        }
        if self.index_cache_bytes < 256 * 1024 || self.index_cache_bytes > 1 << 30 {
            return Err(("queue.index_cache_bytes", "must be 256 KiB to 1 GiB".into()));
        }
        if self.reserve_bytes > 1 << 30 {
            return Err((
                "queue.reserve_bytes",
                format!("must be 0 (no reserve) to 1 GiB (1073741824 bytes); {} is out of range", self.reserve_bytes),
            ));
        }
        if self.min_free_bytes > 1 << 40 {
            return Err((
                "queue.min_free_bytes",
                format!("must be at most 1 TiB (1099511627776 bytes); {} is out of range", self.min_free_bytes),
            ));
        }
        Ok(())
    }
}

/// A size as an operator reads it: MB, or kB under one (not "0 MB free" for 900 kB).
pub fn bytes_text(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{} MB", b >> 20)
    } else {
        format!("{} kB", b.div_ceil(1024))
    }
}

/// What to do about a queue that cannot be opened, from what the system said.
fn open_advice(detail: &str) -> &'static str {
    if detail.contains("os error 30") {
        // EROFS: the kernel remounts a file system read-only after errors on the card.
        "its file system is read-only: the kernel does that after disk errors (see `dmesg`); check or replace the storage, then remount it read-write"
    } else {
        "check its owner and permissions"
    }
}

/// The first folder of the state dir `dir` that this process may not write in (a job's files
/// go there), why, and what to do; `None` when all may be. Asked of the kernel, without writing.
fn unwritable(dir: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let folders = [dir.to_owned(), dir.join("bundles"), dir.join("quarantine"), dir.join("index.sled")];
    folders.into_iter().find_map(|d| {
        let m = std::fs::metadata(&d).ok()?;
        if !m.is_dir() {
            return Some(format!(
                "{} is a file where a folder should be; move it away (the service makes the folder again as it starts)",
                d.display()
            ));
        }
        let c = std::ffi::CString::new(d.as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path that outlives the call.
        let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK | libc::X_OK, libc::AT_EACCESS) };
        if r == 0 {
            return None;
        }
        let e = std::io::Error::last_os_error();
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let fix = match e.raw_os_error() {
            Some(libc::EROFS) => open_advice("os error 30").to_string(),
            Some(libc::EPERM) => format!("it is marked immutable: chattr -i {}", d.display()),
            _ if m.uid() == me => format!("give its owner access back: chmod u+rwx {}", d.display()),
            _ => format!(
                "it belongs to uid {}: give the state dir back to the service's user (uid {me}): chown -R {me}: {}",
                m.uid(),
                dir.display()
            ),
        };
        Some(format!("{} cannot be written by this user ({e}); {fix}", d.display()))
    })
}

/// A file or folder in the state dir `dir` (or one level into its folders) that belongs to
/// someone else than `uid`, and its owner: what stops the service (running as `uid`) after a
/// command run as root beside it.
pub fn foreign_file(dir: &Path, me: u32) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let entries = |d: &Path| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path());
    let mut all: Vec<PathBuf> = vec![dir.to_owned()];
    for e in entries(dir) {
        if e.is_dir() {
            all.extend(entries(&e));
        }
        all.push(e);
    }
    all.into_iter().find_map(|p| std::fs::symlink_metadata(&p).ok().filter(|m| m.uid() != me).map(|m| (p, m.uid())))
}

/// After root looked at a queue that is not root's: the files sled wrote meanwhile (a snapshot
/// after an unclean stop) go to the index's owner, so that the service can open it again. The
/// service's user owns these folders and could swap a name for a link to a file of root's: each
/// is opened without following links, and only a regular file with one name, root's, is given
/// away, through its descriptor.
fn give_back(index: &Path) {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let Ok(c) = std::ffi::CString::new(index.as_os_str().as_bytes()) else { return };
    // SAFETY: a NUL-terminated path; the descriptor is closed by `give_back_in`.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd >= 0 {
        give_back_in(fd, None, 1);
    }
}

/// [`give_back`] in the folder open at `dir` (closed here), whose owner is `owner` (that of
/// the index when `None`), and `depth` levels of folders under it.
fn give_back_in(dir: libc::c_int, owner: Option<(u32, u32)>, depth: u32) {
    // SAFETY: `dir` is an open descriptor; `st` a properly sized out-parameter.
    let stat = |fd: libc::c_int| {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
    };
    let Some(own) = owner.or_else(|| stat(dir).map(|st| (st.st_uid, st.st_gid))) else {
        // SAFETY: closing the descriptor this function was given.
        unsafe { libc::close(dir) };
        return;
    };
    // Root's own index: nothing to give.
    let names: Vec<std::ffi::CString> = if own.0 == 0 {
        Vec::new()
    } else {
        let proc_path = format!("/proc/self/fd/{dir}");
        std::fs::read_dir(proc_path)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                use std::os::unix::ffi::OsStrExt;
                std::ffi::CString::new(e.file_name().as_bytes()).ok()
            })
            .collect()
    };
    for name in names {
        // SAFETY: a NUL-terminated name relative to the open folder; never follows a link.
        let fd = unsafe {
            libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        };
        if fd < 0 {
            continue;
        }
        match stat(fd) {
            Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR && depth > 0 => {
                if st.st_uid == 0 {
                    // SAFETY: the descriptor just opened.
                    unsafe { libc::fchown(fd, own.0, own.1) };
                }
                give_back_in(fd, Some(own), depth - 1);
                continue;
            }
            Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_nlink == 1 && st.st_uid == 0 => {
                // SAFETY: the descriptor just opened.
                unsafe { libc::fchown(fd, own.0, own.1) };
            }
            _ => {}
        }
        // SAFETY: the descriptor just opened.
        unsafe { libc::close(fd) };
    }
    // SAFETY: closing the descriptor this function was given.
    unsafe { libc::close(dir) };
}

/// `dir` can hold a queue: a directory, or nothing yet (it is made at the first open).
pub fn check_dir(dir: &Path) -> Result<(), QueueError> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(QueueError::NotADirectory { path: dir.display().to_string() }),
        _ => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue in {path} cannot be opened: {detail}; {}", open_advice(detail))]
    Open { path: String, detail: String },
    #[error(
        "state_dir {path} is not a directory; name a directory (or a path yet to be made) as state_dir in the config"
    )]
    NotADirectory { path: String },
    #[error("state_dir {path} cannot be made there ({detail}); name as state_dir in the config a directory on a writable disk (the package's is /var/lib/kiosk-agent)")]
    Uncreatable { path: String, detail: String },
    #[error("the queue in {path} cannot be opened: the disk is full ({detail}); free some space on it (logs, files that are not the kiosk's). Nothing queued was dropped")]
    NoRoom { path: String, detail: String },
    #[error("the queue in {path} is in use by another kiosk-agent process (normally the service, `kiosk-agent run`); while it runs, use the commands that go through it: `kiosk-agent status`, `kiosk-agent queue ...`, `kiosk-agent jobs`, `kiosk-agent session`")]
    Busy { path: String },
    #[error("there is no queue in {path} yet (nothing was ever captured there); check state_dir in the config")]
    Missing { path: String },
    #[error("this user may not open the queue in {path} ({detail}); it belongs to the service's user: use the commands that go through the service (`kiosk-agent status`, `kiosk-agent queue ...`) as a member of its API group, or run as root")]
    NoAccess { path: String, detail: String },
    #[error("the queue in {path} is this user's own but its permissions refuse it ({detail}); give the owner access back: chmod -R u+rwX {path}")]
    OwnerRefused { path: String, detail: String },
    #[error("the queue in {path} belongs to uid {owner}, not to this user; run the command as that user (`sudo -u kiosk-agent kiosk-agent ...`) so that no file in it ends up owned by someone the service cannot write as")]
    NotOwner { path: String, owner: u32 },
    #[error("the queue was opened read-only; {0} needs the service stopped, or goes through its control API")]
    ReadOnly(&'static str),
    #[error("the queue index failed: {0}; check free disk space")]
    Index(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("job_id {0} is already in the queue: a request sent again finds its job there (GET /v1/jobs/…, `kiosk-agent queue show`); a new session needs a new job_id")]
    Duplicate(String),
    #[error("job_id {0} was used by an earlier job on this kiosk (since purged or removed after its result, or an Enhanced KYC lookup); Smile ID keeps a job_id for one job, so every session needs a new job_id")]
    Reused(String),
    #[error("no room for another job ({0}); no new session can be saved until there is: queued jobs make room as they upload (or raise the [queue] limit named, or free space on the disk, whichever it is). Nothing queued was dropped")]
    Full(String),
    #[error(
        "the kiosk cannot save a job: {0}. Sessions start again as soon as it is put right; nothing queued was dropped"
    )]
    Unwritable(String),
    #[error("no job {0} in the queue")]
    NotFound(String),
    #[error("job {job_id} cannot be {what}: {why}")]
    Refused { job_id: String, what: &'static str, why: String },
    #[error(transparent)]
    Transition(#[from] machine::TransitionError),
    #[error("the key file {path} cannot be used: {detail}")]
    Key { path: String, detail: String },
    #[error("job {job_id} is in the queue, but its record cannot be read: {detail}. It is kept; put back the keys it was written with (the service names the key file it misses)")]
    Unreadable { job_id: String, detail: String },
    #[error("job {job_id} is not among the jobs these keys can read, and {unreadable} job(s) in the queue cannot be read: it may be one. They are kept; put back the keys they were written with (the service names the key file it misses)")]
    Hidden { job_id: String, unreadable: usize },
}

/// What reconciliation found when the queue was opened.
#[derive(Debug, Default, Clone, Serialize)]
pub struct OpenReport {
    /// No queue was here: this open made a new, empty one.
    pub created: bool,
    pub index_rebuilt: bool,
    pub index_error: Option<String>,
    /// The disk was full: the ballast file was released so the queue could open.
    pub reserve_released: bool,
    pub adopted: usize,
    pub migrated: usize,
    pub quarantined: Vec<String>,
    /// Quarantined bundles whose seal checks again (the right key is back): returned to line.
    pub restored: Vec<String>,
    /// Bundles that could not be read (permissions, I/O, no key configured): left in place.
    pub unreadable: Vec<String>,
    /// A read-only look found the keys missing or different (the service would refuse to start).
    pub key_problem: Option<String>,
    pub temp_files_removed: usize,
}

/// Counts for status output.
#[derive(Debug, Default, Clone, Serialize)]
pub struct QueueStats {
    pub pending: usize,
    pub holding_images: usize,
    pub bundle_bytes: u64,
    pub failed: usize,
    pub quarantined: usize,
    pub finished: usize,
    pub free_bytes: Option<u64>,
    /// When the oldest job Smile ID does not have yet was captured (Unix ms).
    pub oldest_undelivered_at: Option<i64>,
    /// When the oldest job Smile ID has but has not given its result for was captured (Unix
    /// ms): one stuck in processing keeps its images on the kiosk.
    pub oldest_awaiting_result_at: Option<i64>,
    /// Records these keys cannot read (a missing or different bundle key): kept, not counted above.
    pub unreadable: usize,
    /// What of the state dir the service cannot write (a folder root took over), and why: no
    /// job could be saved. Only for the service's own open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritable: Option<String>,
}

/// What one housekeeping round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Housekeeping {
    /// Jobs whose age was dated from a newly confirmed clock.
    pub dated: usize,
    pub expired: usize,
    pub erased: usize,
    pub purged: usize,
    /// Jobs whose files could not be handled this time (tried again next time).
    pub failures: usize,
}

/// Whether an open may change the state dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Creates nothing, repairs nothing; refuses every change.
    ReadOnly,
}

/// A confirmation of the wall clock by a server: wall and boot time read together.
#[derive(Debug, Clone)]
struct Confirmed {
    wall: i64,
    boot: BootStamp,
}

/// A confirmation counts this long (by the boot clock), while the wall clock keeps pace.
const CONFIRMATION_VALID_MS: i64 = 6 * 3_600_000;
/// How far the wall clock may drift from the boot clock after a confirmation.
const CONFIRMATION_DRIFT_MS: i64 = 60_000;

pub struct Queue {
    dir: PathBuf,
    db: sled::Db,
    jobs: sled::Tree,
    by_job: sled::Tree,
    /// `seq_hwm`: the highest seq ever given, so a purge of the newest job frees no name.
    meta: sled::Tree,
    sealer: Sealer,
    settings: QueueSettings,
    clock: Arc<dyn Clock>,
    next_seq: AtomicU64,
    confirmed: Mutex<Option<Confirmed>>,
    /// Set by an operator's retry: the uplink tries now, even while paused.
    wake: std::sync::atomic::AtomicBool,
    access: Access,
    /// sled failed a write (a full disk, a storage fault): it then fails every later one, even
    /// with room again, until the index is opened afresh (by the agent's restart).
    index_failed: std::sync::atomic::AtomicBool,
    _lock: Option<DirLock>,
    pub report: OpenReport,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // What sled writes to the end of a look by root goes back to the index's owner too.
        if self.access == Access::ReadOnly {
            let _ = self.db.flush();
            give_back(&self.dir.join("index.sled"));
        }
    }
}

const SEQ_HWM: &[u8] = b"seq_hwm";

/// `meta` key that marks a job_id used by a job since removed (value: when, in ms): the
/// id's MAC under the seal key, not the id, so a purged job leaves no readable trace of it.
fn retired_key(sealer: &Sealer, job_id: &str) -> Vec<u8> {
    retired_key_of(&used_mac(sealer, job_id))
}

fn retired_key_of(mac: &[u8; 32]) -> Vec<u8> {
    [RETIRED, &mac[..]].concat()
}

const RETIRED: &[u8] = b"retired/";
/// `meta` key: how many of `used_ids`' records the index has taken in.
const USED_IDS_TAKEN: &[u8] = b"used_ids_taken";

/// The tree from each job_id's MAC ([`used_mac`]) to its record's key: no readable trace of
/// the id. (Older indexes had "by_job", keyed by the job_id itself: dropped at the first
/// read-write open, which rebuilds this from the records.)
const JOB_MACS: &str = "job_macs";
const OLD_BY_JOB: &str = "by_job";

fn used_mac(sealer: &Sealer, job_id: &str) -> [u8; 32] {
    sealer.mac(&[b"retired job_id\0".as_slice(), job_id.as_bytes()].concat())
}

/// A Biometric KYC bundle is about 200 KB (9 JPEGs); used to refuse a session before capture.
pub const TYPICAL_JOB_BYTES: u64 = 400 * 1024;

fn idx(e: sled::Error) -> QueueError {
    match e {
        // The system's words ("No space left on device (os error 28)"), not sled's debug form.
        sled::Error::Io(io) => QueueError::Index(io.to_string()),
        e => QueueError::Index(e.to_string()),
    }
}

/// Free bytes for unprivileged users on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// Reads a 32-byte key; creates it only when `may_create` (nothing sealed yet: nothing to
/// lose). Says whether it was created.
fn load_key(path: &Path, name: &Path, may_create: bool, what: &str) -> Result<(Zeroizing<[u8; 32]>, bool), QueueError> {
    let err = |d: String| QueueError::Key { path: path.display().to_string(), detail: d };
    let credential = is_credential_name(name);
    match std::fs::read(path).map(Zeroizing::new) {
        Ok(b) if b.len() == 32 => {
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&b);
            Ok((k, false))
        }
        Ok(b) => Err(err(format!("expected 32 bytes, found {}; restore the right file", b.len()))),
        // A credential is made by whoever installs the kiosk, never by the agent.
        // Run by hand: only the service is given its credentials.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && credential && by_hand() => Err(QueueError::Key {
            path: Path::new(SERVICE_KEYS).join(name).display().to_string(),
            detail: format!(
            "the {what} is one of the service's systemd credentials (kept encrypted in /etc/kiosk-agent/keys), \
             given only to the service: this command, run by hand, cannot read the jobs' records (they are \
             kept). To read them by hand, run the command as the service does (systemd-run --pipe \
             --wait -p User=kiosk-agent -p LoadCredentialEncrypted=kiosk-keys:/etc/kiosk-agent/keys kiosk-agent ...)"
        ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && credential => Err(err(format!(
            "the {what} is a systemd credential that the package makes in /etc/kiosk-agent/keys, and it \
             is not there: under systemd, reinstall the package; by hand, run the command as the service \
             does (systemd-run --pipe --wait -p User=kiosk-agent -p LoadCredentialEncrypted=kiosk-keys:/etc/kiosk-agent/keys \
             kiosk-agent ...)"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
            let mut k = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut *k).map_err(|e| err(e.to_string()))?;
            if let Some(parent) = path.parent() {
                private_dir(parent).map_err(|e| err(e.to_string()))?;
            }
            write_private(path, &*k).map_err(|e| err(e.to_string()))?;
            Ok((k, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(err(format!(
            "the {what} is missing, and jobs sealed with it are queued, so no new key is made over them; \
             restore the file (or the systemd credential that provides it) and start again"
        ))),
        Err(e) => Err(err(format!("{e}; check the file's owner and permissions"))),
    }
}

/// Keys that now come from systemd credentials leave the state dir: a copy at the old place
/// that matches one is overwritten and removed, so the state dir holds no key.
fn forget_legacy_copies(dir: &Path, loaded: &[(&Path, &[u8; 32])]) {
    // Only for keys that came from systemd's credentials, which never name a state-dir file.
    let Some(creds) = std::env::var_os("CREDENTIALS_DIRECTORY") else { return };
    let from_creds: Vec<&[u8; 32]> = loaded.iter().filter(|(p, _)| p.starts_with(&creds)).map(|(_, k)| *k).collect();
    for legacy in [LEGACY_DEVICE_KEY, LEGACY_BUNDLE_KEY] {
        let old = dir.join(legacy);
        let Ok(bytes) = std::fs::read(&old).map(Zeroizing::new) else { continue };
        // Only a copy of a key now loaded from a credential goes; anything else is the operator's.
        if from_creds.iter().any(|k| bytes[..] == k[..]) && crate::bundle::erase(&old).is_ok() {
            crate::log::info(
                "a key that now comes from systemd credentials was erased from the state directory",
                &[("path", &old.display().to_string())],
            );
        }
    }
}

/// The queue's key files that lie in the state dir, beside the jobs they protect (a kiosk run
/// by hand, an older install): a copy of that directory alone reads every queued job.
pub fn keys_beside_data(state_dir: &Path, s: &QueueSettings) -> Vec<PathBuf> {
    // Where a path really is (through symlinks and ".."), whether or not its file exists yet.
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|e| match (p.parent(), p.file_name()) {
                (Some(dir), Some(name)) => std::fs::canonicalize(dir).map(|d| d.join(name)),
                _ => Err(e),
            })
            .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()))
    };
    let dir = abs(state_dir);
    [s.encryption_key_file.as_deref(), Some(s.device_key_file.as_path())]
        .into_iter()
        .flatten()
        .filter(|p| !is_credential_name(p))
        .map(|p| resolve_key_path(state_dir, p))
        .filter(|k| abs(k).starts_with(&dir))
        .collect()
}

/// A bare key name ("bundle_key") names a systemd credential, which the installer makes and
/// the agent never does; a name with a directory ("keys/bundle.key") is a state-dir file.
fn is_credential_name(p: &Path) -> bool {
    p.is_relative() && p.components().count() == 1
}

/// Not run by systemd with credentials: an operator's command beside the service.
fn by_hand() -> bool {
    std::env::var_os("CREDENTIALS_DIRECTORY").is_none()
}

/// The queue's keys are the service's systemd credentials, which a command run by hand is not
/// given: what it cannot read says nothing about the keys.
pub fn keys_are_the_services(s: &QueueSettings) -> bool {
    by_hand()
        && is_credential_name(&s.device_key_file)
        && s.encryption_key_file.as_deref().is_none_or(is_credential_name)
}

/// Where the package keeps the service's keys, encrypted (`LoadCredentialEncrypted=`).
pub const SERVICE_KEYS: &str = "/etc/kiosk-agent/keys";

/// The service's keys that are not among the package's encrypted credentials, in words: the
/// service will not start without them.
pub fn service_keys_missing(s: &QueueSettings) -> Option<String> {
    let names = [Some(s.device_key_file.as_path()), s.encryption_key_file.as_deref()];
    let missing: Vec<String> = names
        .into_iter()
        .flatten()
        .map(|n| Path::new(SERVICE_KEYS).join(n))
        // An encrypted credential is a file of some bytes: an empty one, or a folder, is no key.
        .filter(|p| !std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|p| p.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the service's key credential(s) {} are not there (or empty): the service will not start; reinstall the package, or put them back from the kiosk's backup",
            missing.join(", ")
        )
    })
}

/// A non-secret value that tells whether a key is the one the queue was sealed with.
fn key_check(key: &[u8; 32]) -> String {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    m.update(b"kiosk-agent key check v1");
    m.finalize().into_bytes()[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// `keys.check` in the state dir: the check values of the keys the queue was sealed with.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct KeyChecks {
    device: Option<String>,
    bundle: Option<String>,
}

/// Free space the index needs before it is opened, even for a look (sled writes as it opens).
const INDEX_ROOM: u64 = 4 * SEGMENT_BYTES as u64;

/// sled's log segment size. Records are about 1 KB; sled's default 512 KiB segments would keep
/// several MB allocated for a few KB of live records, which dominates a small queue's footprint.
const SEGMENT_BYTES: usize = 64 * 1024;

enum IndexError {
    NoSpace,
    /// sled cannot read what is there: rebuild from the bundles.
    Damaged(String),
    /// Another process holds sled's own lock (one that takes no `flock`, e.g. an older agent).
    Locked,
    /// Permissions, I/O, resources: not damage, and not ours to repair.
    Unavailable(String),
}

fn open_index(path: &Path, cache: u64) -> Result<sled::Db, IndexError> {
    // sled can panic on some corruptions (its issue #1533); a panic here must not crash-loop the agent.
    let p = path.to_owned();
    let r = std::panic::catch_unwind(move || {
        let db = sled::Config::new().path(p).cache_capacity(cache).segment_size(SEGMENT_BYTES).open()?;
        for t in ["jobs", JOB_MACS, "meta"] {
            db.open_tree(t)?;
        }
        Ok::<_, sled::Error>(db)
    });
    match r {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(sled::Error::Io(e))) if e.raw_os_error() == Some(libc::ENOSPC) => Err(IndexError::NoSpace),
        Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => Err(IndexError::Locked),
        // Only what sled read and could not make sense of is damage; an I/O error that is
        // about this process or this machine (rights, limits, memory, a read-only mount) is not.
        Ok(Err(sled::Error::Io(e)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::OutOfMemory
                    | std::io::ErrorKind::Other
            ) || e.raw_os_error().is_some_and(|c| {
                [libc::EACCES, libc::EPERM, libc::EIO, libc::EROFS, libc::EMFILE, libc::ENFILE, libc::ENOMEM]
                    .contains(&c)
            }) =>
        {
            Err(IndexError::Unavailable(e.to_string()))
        }
        Ok(Err(e)) => Err(IndexError::Damaged(e.to_string())),
        Err(_) => Err(IndexError::Damaged("sled panicked while opening the index".into())),
    }
}

/// The process holding an `flock` on sled's data file, from `/proc/locks`.
fn sled_lock_holder(index: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    crate::store::flock_holder(std::fs::metadata(index.join("db")).ok()?.ino())
}

/// Ballast kept on the state file system: released when the disk fills, so the queue can
/// still open and record progress while nothing new is accepted.
const RESERVE_FILE: &str = "reserve.bin";

fn release_reserve(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(RESERVE_FILE)).is_ok()
}

fn keep_reserve(dir: &Path, bytes: u64, min_free: u64) {
    let p = dir.join(RESERVE_FILE);
    let have = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    if have >= bytes || free_bytes(dir).is_none_or(|f| f < bytes + min_free) {
        return;
    }
    if write_private(&p, &vec![0u8; bytes as usize]).is_err() {
        let _ = std::fs::remove_file(&p);
    }
}

/// The seq a bundle or quarantined file is named for (`0000000000000042.kab[.N]`).
fn seq_of(name: &str) -> Option<u64> {
    name.split('.').next().and_then(|s| s.parse::<u64>().ok())
}

/// The files in `dir`, sorted by name; none where it is not there. A directory that is there
/// and cannot be read is an error, not empty.
fn names_in_readable(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r?,
    };
    let mut v: Vec<_> = entries.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect();
    v.sort();
    Ok(v)
}

/// [`names_in_readable`], an unreadable directory taken as empty.
fn names_in(dir: &Path) -> Vec<(String, PathBuf)> {
    names_in_readable(dir).unwrap_or_default()
}

/// Moves `from` to `to_dir/name` without ever replacing a file there (a `.N` suffix if taken).
fn move_aside(from: &Path, to_dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    for n in 0..1000 {
        let to = if n == 0 { to_dir.join(name) } else { to_dir.join(format!("{name}.{n}")) };
        match std::fs::hard_link(from, &to) {
            Ok(()) => {
                std::fs::remove_file(from)?;
                std::fs::File::open(to_dir)?.sync_all()?;
                return Ok(to);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many files of that name"))
}

impl Queue {
    /// Opens (or creates) the queue in `dir` for this process alone, and reconciles index and
    /// bundles.
    pub fn open(dir: &Path, settings: QueueSettings) -> Result<Self, QueueError> {
        Self::open_with(dir, settings, Access::ReadWrite, Arc::new(SystemClock))
    }

    /// Opens an existing queue to read it: creates, repairs and changes nothing.
    pub fn open_read_only(dir: &Path, settings: QueueSettings) -> Result<Self, QueueError> {
        Self::open_with(dir, settings, Access::ReadOnly, Arc::new(SystemClock))
    }

    /// Opens with an explicit access mode and clock (tests inject time here).
    pub fn open_with(
        dir: &Path,
        settings: QueueSettings,
        access: Access,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, QueueError> {
        let open_err = |d: String| QueueError::Open { path: dir.display().to_string(), detail: d };
        settings.check().map_err(|(k, p)| open_err(format!("{k} {p}")))?;
        let index_path = dir.join("index.sled");
        let rw = access == Access::ReadWrite;
        check_dir(dir)?;
        let no_access = |e: std::io::Error| {
            use std::os::unix::fs::MetadataExt;
            let (path, detail) = (dir.display().to_string(), e.to_string());
            // SAFETY: geteuid has no preconditions.
            match std::fs::metadata(dir) {
                Ok(m) if m.uid() == unsafe { libc::geteuid() } => QueueError::OwnerRefused { path, detail },
                _ => QueueError::NoAccess { path, detail },
            }
        };
        if !rw {
            match index_path.try_exists() {
                Ok(true) => {}
                Ok(false) => return Err(QueueError::Missing { path: dir.display().to_string() }),
                Err(e) => return Err(no_access(e)),
            }
        }
        if rw {
            // Written only as the state dir's owner (the service's user): a file root made here
            // would stop the service at its next start.
            use std::os::unix::fs::MetadataExt;
            if let Ok(m) = std::fs::metadata(dir) {
                // SAFETY: geteuid has no preconditions.
                if m.uid() != unsafe { libc::geteuid() } {
                    return Err(QueueError::NotOwner { path: dir.display().to_string(), owner: m.uid() });
                }
            }
            private_dir(dir).map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => no_access(e),
                // No owner or mode would help: a read-only disk, or a place such as /proc.
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ReadOnlyFilesystem => {
                    QueueError::Uncreatable { path: dir.display().to_string(), detail: e.to_string() }
                }
                _ => open_err(e.to_string()),
            })?;
        }
        let lock_path = dir.join("lock");
        let taken = if rw { DirLock::try_take(&lock_path) } else { DirLock::try_take_existing(&lock_path) };
        let lock = match taken {
            Ok(Some(l)) => Some(l),
            Ok(None) => return Err(QueueError::Busy { path: dir.display().to_string() }),
            // Never owned by anyone yet: a look needs no lock file of its own.
            Err(e) if !rw && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(no_access(e)),
            Err(e) => return Err(open_err(format!("taking its lock: {e}"))),
        };
        if rw {
            for sub in ["bundles", "quarantine"] {
                private_dir(&dir.join(sub)).map_err(|e| open_err(e.to_string()))?;
            }
        }
        // sled writes as it opens, even for a look: on a full disk that write can tear the index
        // (rebuilt from the bundles, it would lack the finished jobs' records). So the reserve
        // goes first, and without room the index is not opened at all.
        // No index, and no job's files: nothing was ever kept here (an index lost beside its
        // bundles is rebuilt, not new).
        let created = rw && !index_path.exists() && names_in(&dir.join("bundles")).is_empty();
        let mut report = OpenReport { created, ..Default::default() };
        if free_bytes(dir).is_some_and(|f| f < INDEX_ROOM) {
            report.reserve_released = rw && release_reserve(dir);
            let free = free_bytes(dir).unwrap_or(0);
            if free < INDEX_ROOM {
                let what = if rw { "opening" } else { "a look at" };
                return Err(QueueError::NoRoom {
                    path: dir.display().to_string(),
                    detail: format!(
                        "{} KB free; {what} its index now could damage it, so it was left alone",
                        free >> 10
                    ),
                });
            }
        }
        let cache = settings.index_cache_bytes;
        // sled lets go of its own lock a while after a close (its background threads), so a
        // lock this very process still holds is waited out; one held by another process is Busy.
        let mut opened = open_index(&index_path, cache);
        let started = std::time::Instant::now();
        let ours_or_unknown = || match sled_lock_holder(&index_path) {
            Some(pid) => pid == std::process::id() && started.elapsed() < std::time::Duration::from_secs(30),
            // Held, but by whom cannot be told (a child being forked holds a copy): a little while.
            None => started.elapsed() < std::time::Duration::from_secs(3),
        };
        while matches!(opened, Err(IndexError::Locked)) && ours_or_unknown() {
            std::thread::sleep(std::time::Duration::from_millis(100));
            opened = open_index(&index_path, cache);
        }
        // Out of room all the same (sled wanted more than was checked): the reserve goes, once.
        let make_room = |opened: Result<sled::Db, IndexError>, released: &mut bool| match opened {
            Err(IndexError::NoSpace) if rw && release_reserve(dir) => {
                *released = true;
                open_index(&index_path, cache)
            }
            r => r,
        };
        let opened = make_room(opened, &mut report.reserve_released);
        let full = || QueueError::NoRoom {
            path: dir.display().to_string(),
            detail: format!("{} KB free", free_bytes(dir).unwrap_or(0) >> 10),
        };
        let db = match opened {
            Ok(x) => x,
            Err(IndexError::NoSpace) => return Err(full()),
            Err(IndexError::Locked) => return Err(QueueError::Busy { path: dir.display().to_string() }),
            Err(IndexError::Unavailable(e)) => {
                // Refused: a file of someone else's than the state dir's owner, named.
                use std::os::unix::fs::MetadataExt;
                let owner = std::fs::metadata(dir).ok().map(|m| (m.uid(), m.gid()));
                let refused = e.contains("os error 13");
                let foreign = owner.filter(|_| refused).and_then(|o| Some((foreign_file(dir, o.0)?, o)));
                return Err(open_err(match foreign {
                    Some(((f, uid), (own, group))) => format!(
                        "{e}: {} belongs to uid {uid}, not to the state dir's owner (uid {own}): a command run as root beside a stopped service? `chown -R {own}:{group} {}` gives it back",
                        f.display(),
                        dir.display()
                    ),
                    None => e,
                }));
            }
            Err(IndexError::Damaged(e)) if !rw => {
                return Err(open_err(format!("the index is damaged ({e}); the service repairs it when it starts")))
            }
            Err(IndexError::Damaged(e)) => {
                report.index_rebuilt = true;
                report.index_error = Some(e);
                let aside = dir.join(format!("index.sled.damaged-{}", clock.wall_ms()));
                std::fs::rename(&index_path, &aside)
                    .map_err(|e| open_err(format!("moving the damaged index aside: {e}")))?;
                match make_room(open_index(&index_path, cache), &mut report.reserve_released) {
                    Ok(x) => x,
                    Err(IndexError::NoSpace) => return Err(full()),
                    Err(IndexError::Locked) => return Err(QueueError::Busy { path: dir.display().to_string() }),
                    Err(IndexError::Damaged(e) | IndexError::Unavailable(e)) => return Err(open_err(e)),
                }
            }
        };
        if !rw {
            give_back(&index_path);
        }
        let jobs = db.open_tree("jobs").map_err(idx)?;
        let by_job = db.open_tree(JOB_MACS).map_err(idx)?;
        let meta = db.open_tree("meta").map_err(idx)?;
        // A look at the index needs no keys, but says when they would stop the service (as far
        // as this user can see them: they may be the service's systemd credentials).
        let (sealer, key_problem) = if rw {
            (Self::load_keys(dir, &settings, rw, &jobs)?, None)
        } else {
            match Self::load_keys(dir, &settings, false, &jobs) {
                Ok(s) => (s, None),
                Err(e) => (Sealer::new([0; 32], None), Some(e.to_string())),
            }
        };
        report.key_problem = key_problem;
        let mut q = Queue {
            dir: dir.to_owned(),
            db,
            jobs,
            by_job,
            meta,
            sealer,
            settings,
            clock,
            next_seq: AtomicU64::new(1),
            confirmed: Mutex::new(None),
            wake: Default::default(),
            access,
            index_failed: Default::default(),
            _lock: lock,
            report,
        };
        if rw {
            q.reconcile()?;
            q.sync_used_ids()?;
            keep_reserve(dir, q.settings.reserve(), q.settings.min_free_bytes);
        }
        q.next_seq.store(q.highest_seq()? + 1, Ordering::SeqCst);
        Ok(q)
    }

    /// The device (seal) key and the bundle (encryption) key. Made only for an empty queue; a
    /// key that is not the one the queue was sealed with stops here, naming the file.
    fn load_keys(dir: &Path, s: &QueueSettings, rw: bool, index: &sled::Tree) -> Result<Sealer, QueueError> {
        // Sealed bundles and encrypted index records depend on the keys (v1 `.job` files and
        // plain records do not).
        let sealed = |sub: &str| names_in(&dir.join(sub)).iter().any(|(n, _)| n.contains(".kab"));
        let records_sealed =
            index.iter().values().take(64).filter_map(Result::ok).any(|v| bundle::is_sealed_record(&v));
        let nothing_sealed = !sealed("bundles") && !sealed("quarantine") && !records_sealed;
        let checks_path = dir.join("keys.check");
        let mut stored: KeyChecks =
            std::fs::read(&checks_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let device_path = resolve_key_path(dir, &s.device_key_file);
        let (seal_key, made) = load_key(&device_path, &s.device_key_file, rw && nothing_sealed, "device key")?;
        if made {
            stored.device = None;
        }
        let enc = match &s.encryption_key_file {
            Some(p) => {
                let path = resolve_key_path(dir, p);
                let (k, made) = load_key(&path, p, rw && nothing_sealed, "bundle encryption key")?;
                if made {
                    stored.bundle = None;
                }
                Some((k, path))
            }
            None => None,
        };
        let now = KeyChecks { device: Some(key_check(&seal_key)), bundle: enc.as_ref().map(|(k, _)| key_check(k)) };
        // With nothing sealed, any key is the right one: the checks follow the keys.
        let differs = |a: &Option<String>, b: &Option<String>| !nothing_sealed && a.is_some() && b.is_some() && a != b;
        if differs(&stored.device, &now.device) {
            return Err(QueueError::Key {
                path: device_path.display().to_string(),
                detail: "this is not the device key the queued jobs were sealed with; restore the original file".into(),
            });
        }
        if let Some((_, path)) = enc.as_ref().filter(|_| differs(&stored.bundle, &now.bundle)) {
            return Err(QueueError::Key {
                path: path.display().to_string(),
                detail: "this is not the bundle key the queued jobs were encrypted with; restore the original \
                         key (or the systemd credential that provides it)"
                    .into(),
            });
        }
        let kept = if nothing_sealed { None } else { stored.bundle.clone() };
        let merged = KeyChecks { device: now.device.clone(), bundle: now.bundle.clone().or(kept) };
        let sealer = Sealer::new(*seal_key, enc.as_ref().map(|(k, _)| **k));
        // Records are encrypted under the bundle key: one that does not open them is the wrong
        // key, and nothing may be pinned, judged or erased under it.
        let undecryptable =
            index.iter().take(64).filter_map(Result::ok).any(|(k, v)| sealer.open_record(seq_of_key(&k), &v).is_err());
        if undecryptable {
            let path = enc.as_ref().map(|(_, p)| p.display().to_string());
            return Err(QueueError::Key {
                path: path.unwrap_or_else(|| "[queue] encryption_key_file".into()),
                detail: "the job index is encrypted under another bundle key; restore the original key (or the \
                         systemd credential that provides it)"
                    .into(),
            });
        }
        if rw {
            let mut loaded: Vec<(&Path, &[u8; 32])> = vec![(&device_path, &seal_key)];
            loaded.extend(enc.as_ref().map(|(k, p)| (p.as_path(), &**k)));
            forget_legacy_copies(dir, &loaded);
        }
        // A queue from before key checks: pin the keys only once a sealed bundle proves them.
        let unproven = !nothing_sealed && (stored.device.is_none() || (enc.is_some() && stored.bundle.is_none()));
        let proven = || {
            let mut sealed = names_in(&dir.join("bundles"));
            sealed.extend(names_in(&dir.join("quarantine")));
            sealed
                .iter()
                .filter(|(n, _)| n.ends_with(".kab"))
                .take(16)
                .any(|(n, p)| bundle::read(p, seq_of(n), &sealer).is_ok())
        };
        if rw && merged != stored && (!unproven || proven()) {
            write_private(&checks_path, &serde_json::to_vec(&merged).expect("serializes"))
                .map_err(|e| QueueError::Key { path: checks_path.display().to_string(), detail: e.to_string() })?;
        }
        Ok(sealer)
    }

    fn writable(&self, what: &'static str) -> Result<(), QueueError> {
        match self.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(QueueError::ReadOnly(what)),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.wall_ms()
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An index error, noting whether sled's writing failed (see `index_failed`).
    fn idx(&self, e: sled::Error) -> QueueError {
        if let sled::Error::Io(io) = &e {
            if !self.index_failed.swap(true, std::sync::atomic::Ordering::Relaxed) {
                crate::log::error(
                    &format!("the queue's index failed writing ({io}); no job can be saved or moved on until it is opened again: the agent restarts to do that (free disk space if it is full)"),
                    &[],
                );
            }
        }
        idx(e)
    }

    /// The index failed writing and must be opened again (the agent restarts); every job
    /// acknowledged before is on disk, and the reopening finds it.
    pub fn index_failed(&self) -> bool {
        self.index_failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// An open would find room for the index now (the reserve, if still there, counts: the
    /// open releases it). Without it a restart would only fail to open, again and again.
    pub fn reopenable(&self) -> bool {
        let reserve = std::fs::metadata(self.dir.join(RESERVE_FILE)).map_or(0, |m| m.len());
        free_bytes(&self.dir).is_some_and(|f| f + reserve >= INDEX_ROOM)
    }

    fn bundle_path(&self, seq: u64) -> PathBuf {
        self.dir.join("bundles").join(format!("{seq:016}.kab"))
    }

    /// The highest seq anywhere: ever given, in records, bundles, quarantined files.
    fn highest_seq(&self) -> Result<u64, QueueError> {
        let be = |v: &[u8]| u64::from_be_bytes(v.try_into().unwrap_or([0; 8]));
        let mut hi = match self.jobs.last().map_err(|e| self.idx(e))? {
            Some((k, _)) => be(&k),
            None => 0,
        };
        if let Some(v) = self.meta.get(SEQ_HWM).map_err(|e| self.idx(e))? {
            hi = hi.max(be(&v));
        }
        for sub in ["bundles", "quarantine"] {
            for (name, _) in names_in(&self.dir.join(sub)) {
                hi = hi.max(seq_of(name.trim_start_matches('.')).unwrap_or(0));
            }
        }
        Ok(hi)
    }

    fn quarantine_file(&mut self, path: &Path, why: &str) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = move_aside(path, &self.dir.join("quarantine"), &name);
        self.report.quarantined.push(format!("{name}: {why}"));
    }

    fn reconcile(&mut self) -> Result<(), QueueError> {
        // Records stored before the index was encrypted (or before a key was set), or holding
        // more of a result than is kept now, or of an older schema: rewritten in today's form.
        // Only under keys a check value has pinned: never encrypt under a key not yet proven.
        let mut stale = Vec::new();
        let pinned = self.dir.join("keys.check").exists();
        for kv in self.jobs.iter().filter(|_| pinned) {
            let (k, v) = kv.map_err(|e| self.idx(e))?;
            let seq = seq_of_key(&k);
            let Ok(json) = self.sealer.open_record(seq, &v) else { continue };
            let Ok(r) = machine::decode(&json) else { continue };
            if !self.sealer.record_is_current(&v) || serde_json::to_vec(&r).ok().as_deref() != Some(&json[..]) {
                stale.push((seq, r.job_id));
            }
        }
        for (seq, job_id) in stale {
            self.update(seq, &job_id, |_| Ok(()))?;
        }
        let mut records = self.list()?;
        let mut seen = std::collections::HashSet::new();
        // Quarantined files that check again (the right key is back) return first.
        for (name, path) in names_in(&self.dir.join("quarantine")) {
            let Some(seq) = seq_of(&name).filter(|_| name.ends_with(".kab")) else { continue };
            let record = records.iter().find(|r| r.seq == seq);
            if record.is_some_and(|r| r.stage != Stage::Quarantined) || self.bundle_path(seq).exists() {
                continue;
            }
            // A file with no record is taken back only when the index was lost this time: any
            // other time its job was purged, or finished, and must not come back.
            let raw = self.jobs.contains_key(seq.to_be_bytes()).map_err(|e| self.idx(e))?;
            if record.is_none() && (raw || !self.report.index_rebuilt) {
                continue;
            }
            if bundle::read(&path, Some(seq), &self.sealer).is_ok()
                && move_aside(&path, &self.dir.join("bundles"), &format!("{seq:016}.kab")).is_ok()
            {
                if let Some(r) = records.iter_mut().find(|r| r.seq == seq) {
                    r.bundle_bytes = std::fs::metadata(self.bundle_path(seq)).map(|m| m.len()).unwrap_or(0);
                    let now = self.now_ms();
                    *r = self.update(r.seq, &r.job_id.clone(), |x| {
                        x.bundle_bytes = r.bundle_bytes;
                        x.apply(Event::Restore, now).map_err(Into::into)
                    })?;
                    self.report.restored.push(r.job_id.clone());
                } else {
                    self.report.restored.push(name);
                }
            }
        }
        // A bundles/ that cannot be read (its permissions changed) hides nothing's absence:
        // no job is taken for missing then.
        let bundles_dir = self.dir.join("bundles");
        let listed = names_in_readable(&bundles_dir).map_err(|e| {
            self.report.unreadable.push(format!(
                "{} cannot be read ({e}): no job was changed; give it back to the agent's user (the package's: chown -R kiosk-agent: {}), then start the agent again",
                bundles_dir.display(),
                self.dir.display()
            ));
        });
        let bundles_readable = listed.is_ok();
        for (name, path) in listed.unwrap_or_default() {
            if name.starts_with('.') {
                // A write cut off by a crash: the job was never acknowledged.
                let _ = std::fs::remove_file(&path);
                self.report.temp_files_removed += 1;
                continue;
            }
            let Some(seq) = seq_of(&name) else {
                self.quarantine_file(&path, "unexpected file in bundles/");
                continue;
            };
            let v1 = name.ends_with(".job");
            let read = if v1 {
                bundle::read_v1(&path).and_then(|job| {
                    let created =
                        records.iter().find(|r| r.seq == seq).map(|r| r.created_at).unwrap_or_else(|| self.now_ms());
                    let b = Bundle { job, created_at: created };
                    bundle::write(&self.bundle_path(seq), seq, &b, &self.sealer)?;
                    let _ = std::fs::remove_file(&path);
                    self.report.migrated += 1;
                    Ok((seq, b))
                })
            } else {
                bundle::read(&path, Some(seq), &self.sealer)
            };
            let (seq, b) = match read {
                Ok(x) => x,
                Err(e @ BundleError::Corrupt { .. }) => {
                    self.quarantine_file(&path, &e.to_string());
                    if let Some(r) = records.iter_mut().find(|r| r.seq == seq) {
                        let now = self.now_ms();
                        let why = e.to_string();
                        if let Ok(x) = self.update(seq, &r.job_id.clone(), |x| {
                            x.apply(Event::Integrity(why.clone()), now)?;
                            x.bundle_bytes = 0;
                            Ok(())
                        }) {
                            *r = x;
                        }
                    }
                    continue;
                }
                Err(e) => {
                    // Not damage (permissions, I/O, a missing key): leave it for the operator.
                    seen.insert(seq);
                    self.report.unreadable.push(e.to_string());
                    continue;
                }
            };
            seen.insert(seq);
            let size = std::fs::metadata(self.bundle_path(seq)).map(|m| m.len()).unwrap_or(0);
            match records.iter().find(|r| r.seq == seq) {
                // Its images were erased in the record, and a crash came before the file went.
                Some(r) if !r.stage.holds_images() && r.bundle_bytes == 0 => {
                    let _ = bundle::erase(&self.bundle_path(seq));
                    seen.remove(&seq);
                }
                // Quarantined, but its bundle is back in place and checks: out of quarantine.
                Some(r) if r.stage == Stage::Quarantined => {
                    let now = self.now_ms();
                    self.update(seq, &r.job_id.clone(), |x| {
                        x.bundle_bytes = size;
                        x.apply(Event::Restore, now).map_err(Into::into)
                    })?;
                    self.report.restored.push(r.job_id.clone());
                }
                Some(r) if r.bundle_bytes != size => {
                    self.update(seq, &r.job_id.clone(), |x| {
                        x.bundle_bytes = size;
                        Ok(())
                    })?;
                }
                Some(_) => {}
                None if self.jobs.contains_key(seq.to_be_bytes()).map_err(|e| self.idx(e))? => {
                    // Its record is there but this agent cannot read it (a newer schema?).
                    self.report
                        .unreadable
                        .push(format!("{name}: its index record cannot be read by this agent version; left as it is"));
                }
                None => {
                    // Bundle written but never indexed (a crash), or the index was lost. What
                    // reached Smile ID is unknown: assume the most, so the submission asks first.
                    let pp = &b.job.partner_params;
                    let now = self.now_ms();
                    let mut r = Record::new(seq, &pp.job_id, &pp.user_id, pp.job_type.code(), size, b.created_at);
                    r.apply(Event::Indexed, now)?;
                    let p = Progress { prep_attempted: true, put_attempted: true, ..Default::default() };
                    r.apply(Event::Progress(p), now)?;
                    if self.insert_new(&r)? {
                        self.report.adopted += 1;
                        records.push(r);
                    } else {
                        // Its job_id belongs to another record: keep the file aside, lose nothing.
                        self.quarantine_file(&self.bundle_path(seq), "a second bundle for a job_id already queued");
                    }
                }
            }
        }
        for r in records.iter().filter(|r| {
            bundles_readable && r.stage.holds_images() && r.stage != Stage::Quarantined && !seen.contains(&r.seq)
        }) {
            let now = self.now_ms();
            self.update(r.seq, &r.job_id, |x| {
                x.apply(Event::Integrity("bundle file missing".into()), now)?;
                x.bundle_bytes = 0;
                Ok(())
            })?;
            self.report.quarantined.push(format!("{}: bundle file missing", r.job_id));
        }
        // The job_id tree follows the records (it may be new, or from before a crash); an older
        // index's tree of job_ids in clear goes.
        if self.db.tree_names().iter().any(|t| t.as_ref() == OLD_BY_JOB.as_bytes()) {
            self.db.drop_tree(OLD_BY_JOB).map_err(|e| self.idx(e))?;
        }
        for r in self.list()? {
            let mac = used_mac(&self.sealer, &r.job_id);
            if self.by_job.get(mac).map_err(|e| self.idx(e))?.is_none() {
                self.by_job.insert(mac, &r.seq.to_be_bytes()).map_err(|e| self.idx(e))?;
            }
        }
        for kv in self.by_job.iter() {
            let (k, v) = kv.map_err(|e| self.idx(e))?;
            if self.jobs.get(&v).map_err(|e| self.idx(e))?.is_none() {
                self.by_job.remove(k).map_err(|e| self.idx(e))?;
            }
        }
        self.flush()
    }

    fn flush(&self) -> Result<(), QueueError> {
        match self.db.flush() {
            Err(sled::Error::Io(e)) if e.raw_os_error() == Some(libc::ENOSPC) && release_reserve(&self.dir) => {
                self.db.flush().map(|_| ()).map_err(|e| self.idx(e))
            }
            r => r.map(|_| ()).map_err(|e| self.idx(e)),
        }
    }

    /// Whether `job_id` may name a new job: not in the queue, and never used by a job since
    /// removed. A reused job_id is Smile ID's job already: a 2215 would then be taken for our own
    /// earlier try, and one person's photos sent into another's job.
    pub fn check_new_job_id(&self, job_id: &str) -> Result<(), QueueError> {
        if self.by_job.contains_key(used_mac(&self.sealer, job_id)).map_err(|e| self.idx(e))? {
            return Err(QueueError::Duplicate(job_id.to_string()));
        }
        if self.meta.contains_key(retired_key(&self.sealer, job_id)).map_err(|e| self.idx(e))? {
            return Err(QueueError::Reused(job_id.to_string()));
        }
        Ok(())
    }

    /// Marks `job_id` used by a job that never entered the queue (an Enhanced KYC lookup that
    /// reached Smile ID): [`Queue::check_new_job_id`] refuses it from now on.
    pub fn retire(&self, job_id: &str) -> Result<(), QueueError> {
        self.writable("remembering a job_id")?;
        self.meta.insert(retired_key(&self.sealer, job_id), &self.now_ms().to_be_bytes()).map_err(|e| self.idx(e))?;
        self.flush()?;
        self.note_used(job_id);
        Ok(())
    }

    /// Adds `job_id` to `used_ids`. The index already refuses it; the file only matters if the
    /// index is ever rebuilt, so a failure here is logged, not the caller's.
    fn note_used(&self, job_id: &str) {
        if let Err(e) = used_ids::append(&self.dir, &[used_mac(&self.sealer, job_id)]) {
            crate::log::warn(
                "a used job_id could not be added to used_ids (the index still refuses it; a rebuilt one would not)",
                &[("path", &self.dir.join(used_ids::FILE).display().to_string()), ("error", &e.to_string())],
            );
        }
    }

    /// Keeps `used_ids` in step with the index: made from the index the first time (a queue
    /// from before the file), and what the index has not taken in yet (all of it, when the
    /// index was lost and rebuilt from the bundles) read into it.
    fn sync_used_ids(&mut self) -> Result<(), QueueError> {
        let be = |v: &[u8]| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])) as usize;
        let mut taken = self.meta.get(USED_IDS_TAKEN).map_err(|e| self.idx(e))?.map_or(0, |v| be(&v));
        let read = used_ids::read_from(&self.dir, taken).unwrap_or_else(|e| {
            self.report.unreadable.push(format!("{}: {e}; used job_ids may be accepted again", used_ids::FILE));
            Some(Vec::new())
        });
        let macs = if let Some(macs) = read {
            macs
        } else {
            let mut macs = Vec::new();
            for k in self.by_job.iter().keys() {
                macs.extend(<[u8; 32]>::try_from(&k.map_err(|e| self.idx(e))?[..]));
            }
            for k in self.meta.scan_prefix(RETIRED).keys() {
                macs.extend(<[u8; 32]>::try_from(&k.map_err(|e| self.idx(e))?[RETIRED.len()..]));
            }
            if let Err(e) = used_ids::append(&self.dir, &macs) {
                crate::log::warn(
                    "used_ids could not be made; job_ids stay refused by the index alone",
                    &[("error", &e.to_string())],
                );
            }
            taken = 0;
            macs
        };
        if macs.is_empty() {
            return Ok(());
        }
        let now = self.now_ms().to_be_bytes();
        for mac in &macs {
            self.meta.insert(retired_key_of(mac), &now).map_err(|e| self.idx(e))?;
        }
        self.meta.insert(USED_IDS_TAKEN, &((taken + macs.len()) as u64).to_be_bytes()).map_err(|e| self.idx(e))?;
        self.flush()
    }

    /// Inserts a new record and claims its job_id, atomically; false if the job_id is taken.
    fn insert_new(&self, rec: &Record) -> Result<bool, QueueError> {
        let key = rec.seq.to_be_bytes();
        let value = self.sealer.seal_record(rec.seq, serde_json::to_vec(rec).expect("records serialize"));
        let mac = used_mac(&self.sealer, &rec.job_id);
        let r = (&self.jobs, &self.by_job, &self.meta).transaction(|(jobs, by_job, meta)| {
            if by_job.get(mac)?.is_some() || jobs.get(key)?.is_some() {
                return Err(ConflictableTransactionError::Abort(()));
            }
            by_job.insert(&mac, &key)?;
            jobs.insert(&key, value.clone())?;
            let hwm = meta.get(SEQ_HWM)?.map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])));
            if hwm.is_none_or(|h| h < rec.seq) {
                meta.insert(SEQ_HWM, &key)?;
            }
            Ok(())
        });
        match r {
            Ok(()) => self.flush().map(|_| true),
            Err(TransactionError::Abort(())) => Ok(false),
            Err(TransactionError::Storage(e)) => Err(idx(e)),
        }
    }

    /// Reads the stored record, changes it with `f`, and writes it back only if nobody else
    /// wrote it meanwhile (else again, on the fresh copy); flushed before returning.
    fn update(
        &self,
        seq: u64,
        job_id: &str,
        mut f: impl FnMut(&mut Record) -> Result<(), QueueError>,
    ) -> Result<Record, QueueError> {
        let key = seq.to_be_bytes();
        loop {
            let old =
                self.jobs.get(key).map_err(|e| self.idx(e))?.ok_or_else(|| QueueError::NotFound(job_id.into()))?;
            let mut r = self.decode(seq, &old)?;
            f(&mut r)?;
            let new = self.sealer.seal_record(seq, serde_json::to_vec(&r).expect("records serialize"));
            let swapped = match self.jobs.compare_and_swap(key, Some(&old), Some(new.clone())) {
                Err(sled::Error::Io(e)) if e.raw_os_error() == Some(libc::ENOSPC) && release_reserve(&self.dir) => {
                    self.jobs.compare_and_swap(key, Some(&old), Some(new)).map_err(|e| self.idx(e))?
                }
                r => r.map_err(|e| self.idx(e))?,
            };
            if swapped.is_ok() {
                self.flush()?;
                return Ok(r);
            }
        }
    }

    /// Refuses a new bundle of `bytes` if a limit would be crossed; says which. This is the gate
    /// before a person starts: it keeps `min_free_bytes` free on disk.
    pub fn check_room(&self, bytes: u64) -> Result<(), QueueError> {
        self.room_for(bytes, self.settings.min_free_bytes)
    }

    /// [`Queue::check_room`], keeping `keep` bytes free on disk.
    fn room_for(&self, bytes: u64, keep: u64) -> Result<(), QueueError> {
        let s = self.stats()?;
        if let Some(why) = s.unwritable {
            return Err(QueueError::Unwritable(why));
        }
        if let Some(why) = self.settings.limit_reached(&s, bytes) {
            return Err(QueueError::Full(why));
        }
        if let Some(free) = s.free_bytes {
            if free < bytes + keep {
                return Err(QueueError::Full(format!(
                    "{} free on disk, {} kept free, and the job takes {}",
                    bytes_text(free),
                    bytes_text(keep),
                    bytes_text(bytes)
                )));
            }
        }
        Ok(())
    }

    /// Stores a captured job durably and returns its record. Nothing is sent yet.
    pub fn enqueue(&self, job: &Job) -> Result<Record, QueueError> {
        self.enqueue_owned(job, None)
    }

    /// [`Queue::enqueue`] for a job a control-API peer asked for: `owner` may read its result.
    pub fn enqueue_owned(&self, job: &Job, owner: Option<u32>) -> Result<Record, QueueError> {
        self.writable("saving a job")?;
        let pp = &job.partner_params;
        self.check_new_job_id(&pp.job_id)?;
        let now = self.now_ms();
        let b = Bundle { job: job.clone(), created_at: now };
        let (seq, path, bytes) = loop {
            let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
            let bytes = bundle::encode(seq, &b, &self.sealer)
                .map_err(|d| BundleError::Write { path: self.bundle_path(seq).display().to_string(), detail: d })?;
            // The disk may have filled since the person was let start (`check_room`): they
            // have been captured, so their job is kept while the disk has room for it and a
            // margin (1 MiB at most) for the index's writes as it goes up, left above the room
            // an open needs (so a restart need not spend the reserve). `min_free_bytes` whole
            // only keeps new people from starting.
            self.room_for(bytes.len() as u64, self.settings.min_free_bytes.min(4 * INDEX_ROOM))?;
            let path = self.bundle_path(seq);
            match write_new_private(&path, &bytes) {
                Ok(()) => break (seq, path, bytes),
                // Never over another job's bundle: take the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    // Not acknowledged: if the file got into place before the failure, it goes.
                    let _ = std::fs::remove_file(&path);
                    return Err(if e.raw_os_error() == Some(libc::ENOSPC) {
                        QueueError::Full("the disk is full".into())
                    } else {
                        BundleError::Write { path: path.display().to_string(), detail: e.to_string() }.into()
                    });
                }
            }
        };
        let mut rec = Record::new(seq, &pp.job_id, &pp.user_id, pp.job_type.code(), bytes.len() as u64, now);
        rec.apply(Event::Indexed, now)?;
        rec.created_boot = Some(self.clock.boot());
        rec.aged_from = self.trusted_now();
        rec.owner = owner;
        let stored = self.insert_new(&rec);
        if let Err(_) | Ok(false) = stored {
            // Not acknowledged: take back the record (a commit whose flush failed may still
            // reach the disk) and then the bundle, so nothing half-stored remains.
            if stored.is_err() {
                let _ = self.remove(&rec, false);
            }
            let _ = std::fs::remove_file(&path);
        }
        match stored {
            Ok(true) => {
                self.note_used(&pp.job_id);
                Ok(rec)
            }
            Ok(false) => Err(QueueError::Duplicate(pp.job_id.clone())),
            Err(e) => Err(e),
        }
    }

    /// Applies an event to the job's stored record (not to the caller's copy, which may be
    /// stale) and hands back the result in `rec`. A purged job is `NotFound`.
    pub fn apply(&self, rec: &mut Record, event: Event) -> Result<(), QueueError> {
        self.writable("changing a job")?;
        let now = self.now_ms();
        *rec = self.update(rec.seq, &rec.job_id.clone(), |r| r.apply(event.clone(), now).map_err(Into::into))?;
        Ok(())
    }

    /// All records, oldest first. Unreadable index entries are skipped, not fatal.
    pub fn list(&self) -> Result<Vec<Record>, QueueError> {
        let mut out = Vec::new();
        for kv in self.jobs.iter() {
            let (k, v) = kv.map_err(|e| self.idx(e))?;
            if let Ok(r) = self.decode(seq_of_key(&k), &v) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// A job the job_id tree does not name, looked for among the records: a look (read-only) at
    /// an older index, whose tree was keyed otherwise. Records these keys cannot read may hold it.
    fn find(&self, job_id: &str) -> Result<Record, QueueError> {
        let mut unreadable = 0;
        for kv in self.jobs.iter() {
            let (k, v) = kv.map_err(|e| self.idx(e))?;
            match self.decode(seq_of_key(&k), &v) {
                Ok(r) if r.job_id == job_id => return Ok(r),
                Ok(_) => {}
                Err(_) => unreadable += 1,
            }
        }
        match unreadable {
            0 => Err(QueueError::NotFound(job_id.into())),
            n => Err(QueueError::Hidden { job_id: job_id.into(), unreadable: n }),
        }
    }

    /// A stored record: decrypted, then read in any known schema.
    fn decode(&self, seq: u64, stored: &[u8]) -> Result<Record, QueueError> {
        let json = self.sealer.open_record(seq, stored).map_err(QueueError::Index)?;
        machine::decode(&json).map_err(QueueError::Index)
    }

    /// One job by its job_id, through the job_id tree.
    pub fn get(&self, job_id: &str) -> Result<Record, QueueError> {
        let not_found = || QueueError::NotFound(job_id.into());
        let Some(seq) = self.by_job.get(used_mac(&self.sealer, job_id)).map_err(|e| self.idx(e))? else {
            // Not every call for an unknown id decodes the whole queue: only where the tree may
            // not name the job (an older index not yet opened for changes, or other keys).
            let unindexed = self.by_job.is_empty() && !self.jobs.is_empty();
            return match unindexed || self.report.key_problem.is_some() {
                true => self.find(job_id),
                false => Err(not_found()),
            };
        };
        let v = self.jobs.get(&seq).map_err(|e| self.idx(e))?.ok_or_else(not_found)?;
        self.decode(seq_of_key(&seq), &v).map_err(|e| match e {
            QueueError::Index(detail) => QueueError::Unreadable { job_id: job_id.into(), detail },
            e => e,
        })
    }

    /// Jobs the uplink should try at `now`, oldest first. A wait that reaches further than
    /// `max_wait_ms` comes from a clock that jumped back: such a job is due now.
    pub fn due(&self, now: i64, max_wait_ms: i64) -> Result<Vec<Record>, QueueError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| r.due(now) || (r.stage.is_pending() && r.next_attempt_at - now > max_wait_ms))
            .collect())
    }

    /// The job's details and images. Only a bundle that fails its seal is quarantined; one
    /// that cannot be read (permissions, I/O, no key) stays where it is.
    pub fn load_job(&self, rec: &mut Record) -> Result<Job, QueueError> {
        let path = self.bundle_path(rec.seq);
        match bundle::read(&path, Some(rec.seq), &self.sealer) {
            Ok((_, b)) => Ok(b.job),
            Err(e @ BundleError::Corrupt { .. }) if self.access == Access::ReadWrite => {
                let name = format!("{:016}.kab", rec.seq);
                let _ = move_aside(&path, &self.dir.join("quarantine"), &name);
                let now = self.now_ms();
                let why = e.to_string();
                *rec = self.update(rec.seq, &rec.job_id.clone(), |r| {
                    r.apply(Event::Integrity(why.clone()), now)?;
                    r.bundle_bytes = 0;
                    Ok(())
                })?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Erases a job's images (overwritten, unlinked, directory synced), wherever a copy is.
    /// The record says so first, atomically, so a retry racing this cannot bring back a job
    /// whose bundle is going; a crash in between is finished at the next open.
    pub fn erase_images(&self, rec: &mut Record) -> Result<(), QueueError> {
        self.writable("erasing images")?;
        self.apply(rec, Event::Erased)?;
        self.erase_files(rec.seq)
    }

    /// Every file of a job: its bundle and any copy in quarantine.
    fn erase_files(&self, seq: u64) -> Result<(), QueueError> {
        let name = format!("{seq:016}.kab");
        let mut files = vec![self.bundle_path(seq)];
        files.extend(
            names_in(&self.dir.join("quarantine")).into_iter().filter(|(n, _)| n.starts_with(&name)).map(|(_, p)| p),
        );
        for path in files {
            bundle::erase(&path)
                .map_err(|e| BundleError::Write { path: path.display().to_string(), detail: e.to_string() })?;
        }
        Ok(())
    }

    /// A server confirmed the wall clock just now (its `Date` within the allowed skew).
    pub fn confirm_clock(&self) {
        let c = Confirmed { wall: self.clock.wall_ms(), boot: self.clock.boot() };
        *self.confirmed.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
    }

    /// The clock was found wrong: nothing is decided by it until confirmed again.
    pub fn distrust_clock(&self) {
        *self.confirmed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The wall time now, if a confirmation still vouches for it: recent by the boot clock,
    /// on this boot, and the wall clock has kept pace with the boot clock since.
    pub fn trusted_now(&self) -> Option<i64> {
        let c = self.confirmed.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let elapsed = self.clock.boot().since(&c.boot).filter(|e| (0..CONFIRMATION_VALID_MS).contains(e))?;
        let wall = self.clock.wall_ms();
        ((wall - c.wall - elapsed).abs() <= CONFIRMATION_DRIFT_MS).then_some(wall)
    }

    /// Dates, expires, erases and purges what is due. Everything that depends on the time
    /// waits for a confirmed clock; only the erasure of a result's images with no retention
    /// (which the result itself decides) runs without one.
    pub fn housekeeping(&self) -> Result<Housekeeping, QueueError> {
        self.writable("housekeeping")?;
        let s = &self.settings;
        let hours = |h: u64| h.saturating_mul(3_600_000).min(i64::MAX as u64) as i64;
        let (ttl, failed_keep, keep) =
            (hours(s.ttl_hours), hours(s.failed_retention_hours), hours(s.result_retention_hours));
        let retention = s.image_retention_secs.saturating_mul(1000).min(i64::MAX as u64) as i64;
        let trusted = self.trusted_now();
        let boot = self.clock.boot();
        let mut done = Housekeeping::default();
        for mut r in self.list()? {
            let result = (|| {
                if let Some(t) = trusted.filter(|_| r.aged_from.is_none() && r.stage.is_pending()) {
                    r = self.update(r.seq, &r.job_id.clone(), |x| {
                        x.anchor_age(t, &boot);
                        Ok(())
                    })?;
                    done.dated += 1;
                }
                if ttl > 0 && trusted.is_some_and(|t| r.expired(t, ttl)) {
                    self.apply(&mut r, Event::Expired)?;
                    done.expired += 1;
                }
                let erase = match trusted {
                    Some(t) => r.erase_due(t, retention, failed_keep),
                    None => r.stage == Stage::Result && retention == 0,
                };
                if erase {
                    self.erase_images(&mut r)?;
                    done.erased += 1;
                }
                if trusted.is_some_and(|t| r.purge_due(t, keep)) {
                    self.remove(&r, true)?;
                    done.purged += 1;
                }
                Ok::<_, QueueError>(())
            })();
            match result {
                // Purged or changed by someone else meanwhile: theirs is the newer word.
                Err(QueueError::NotFound(_) | QueueError::Transition(_)) => {}
                // One job's file (I/O, permissions) must not stop the others, nor the agent.
                Err(e @ QueueError::Bundle(_)) => {
                    done.failures += 1;
                    crate::log::warn(&format!("housekeeping: job {}: {e}", r.job_id), &[("JOB_ID", &r.job_id)]);
                }
                r => r?,
            }
        }
        Ok(done)
    }

    /// Removes a record; with `retire`, its job_id is remembered as used (a few bytes a job,
    /// kept for good): [`Queue::check_new_job_id`] refuses it for a new job.
    fn remove(&self, r: &Record, retire: bool) -> Result<(), QueueError> {
        let key = r.seq.to_be_bytes();
        let now = self.now_ms().to_be_bytes();
        let retired = retired_key(&self.sealer, &r.job_id);
        let mac = used_mac(&self.sealer, &r.job_id);
        (&self.jobs, &self.by_job, &self.meta)
            .transaction(|(jobs, by_job, meta)| {
                // Already gone: another purge got there first, and this one is not done twice.
                if jobs.remove(&key)?.is_none() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                if by_job.get(mac)?.is_some_and(|v| v.as_ref() == key) {
                    by_job.remove(&mac)?;
                }
                if retire {
                    meta.insert(retired.as_slice(), &now)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => self.idx(e),
                TransactionError::Abort(()) => QueueError::NotFound(r.job_id.clone()),
            })?;
        self.flush()
    }

    /// Puts a job back in line (operator's `queue retry`): a failed job whose images remain,
    /// or a waiting one, now rather than after its backoff.
    pub fn retry(&self, job_id: &str) -> Result<Record, QueueError> {
        self.writable("queue retry")?;
        let mut r = self.get(job_id)?;
        let refuse = |why: &str| QueueError::Refused { job_id: job_id.into(), what: "retried", why: why.into() };
        match r.stage {
            Stage::Result | Stage::Erased => return Err(refuse("Smile ID has already given its result")),
            Stage::Quarantined => return Err(refuse("it is quarantined; `queue restore` it first")),
            Stage::Failed if r.bundle_bytes == 0 => {
                return Err(refuse("its images were erased after the failed-job retention; capture again"))
            }
            _ => {}
        }
        self.apply(&mut r, Event::Retry)?;
        self.wake.store(true, Ordering::SeqCst);
        Ok(r)
    }

    /// Whether an operator asked for a try now; clears the request.
    pub fn take_wake(&self) -> bool {
        self.wake.swap(false, Ordering::SeqCst)
    }

    /// Whether an operator asked for a try now (the request stays for `take_wake`).
    pub fn wake_pending(&self) -> bool {
        self.wake.load(Ordering::SeqCst)
    }

    /// Takes a quarantined job back (operator's `queue restore`) once its bundle checks again.
    pub fn restore(&self, job_id: &str) -> Result<Record, QueueError> {
        self.writable("queue restore")?;
        let r = self.get(job_id)?;
        let refuse = |why: String| QueueError::Refused { job_id: job_id.into(), what: "restored", why };
        if r.stage != Stage::Quarantined {
            return Err(refuse(format!("it is not quarantined (it is {})", r.stage.as_str())));
        }
        let name = format!("{:016}.kab", r.seq);
        let candidates: Vec<PathBuf> = names_in(&self.dir.join("quarantine"))
            .into_iter()
            .filter(|(n, _)| n.starts_with(&name))
            .map(|(_, p)| p)
            .collect();
        if candidates.is_empty() {
            return Err(refuse(format!("its bundle {name} is not in quarantine/; nothing is left to restore")));
        }
        let mut last = String::new();
        for path in candidates {
            match bundle::read(&path, Some(r.seq), &self.sealer) {
                Ok(_) => {
                    let to = move_aside(&path, &self.dir.join("bundles"), &name)
                        .map_err(|e| refuse(format!("moving it back: {e}")))?;
                    if to != self.bundle_path(r.seq) {
                        let _ = move_aside(&to, &self.dir.join("quarantine"), &name);
                        return Err(refuse("another file holds its place in bundles/".into()));
                    }
                    let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
                    let now = self.now_ms();
                    return self.update(r.seq, job_id, |x| {
                        x.bundle_bytes = size;
                        x.apply(Event::Restore, now).map_err(Into::into)
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(refuse(format!("its bundle still does not check: {last}; put back a good copy of the file in quarantine/ (from a backup) or the keys it was sealed with")))
    }

    /// Deletes a job entirely: images erased, record removed (operator's `queue purge`).
    pub fn purge(&self, job_id: &str) -> Result<(), QueueError> {
        self.writable("queue purge")?;
        let r = self.get(job_id)?;
        self.erase_files(r.seq)?;
        self.remove(&r, true)
    }

    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let unwritable = if self.index_failed() {
            Some("the queue's index failed writing (a full disk, or a storage fault) and is being opened again".into())
        } else if self.access == Access::ReadWrite {
            unwritable(&self.dir)
        } else {
            None
        };
        let mut s = QueueStats { free_bytes: free_bytes(&self.dir), unwritable, ..Default::default() };
        let records = self.list()?;
        s.unreadable = self.jobs.len().saturating_sub(records.len());
        let (wall, boot) = (self.clock.wall_ms(), self.clock.boot());
        for r in records {
            s.pending += r.stage.is_pending() as usize;
            // The kiosk's own clock at capture may have been wrong.
            let oldest = match r.stage {
                Stage::Queued | Stage::Prepped => Some(&mut s.oldest_undelivered_at),
                Stage::Uploaded => Some(&mut s.oldest_awaiting_result_at),
                _ => None,
            };
            if let Some(oldest) = oldest {
                let at = r.captured_by(wall, &boot);
                *oldest = Some(oldest.map_or(at, |t| t.min(at)));
            }
            if r.bundle_bytes > 0 {
                s.holding_images += 1;
                s.bundle_bytes += r.bundle_bytes;
            }
            s.failed += (r.stage == Stage::Failed) as usize;
            s.quarantined += (r.stage == Stage::Quarantined) as usize;
            s.finished += matches!(r.stage, Stage::Result | Stage::Erased) as usize;
        }
        Ok(s)
    }
}

/// The seq a `jobs` tree key holds (big-endian u64).
fn seq_of_key(key: &[u8]) -> u64 {
    u64::from_be_bytes(key.try_into().unwrap_or([0; 8]))
}

/// A relative key name is looked up in $CREDENTIALS_DIRECTORY (systemd credentials), then in
/// the state dir; when it is in neither, a bare name names the missing credential and a name
/// with a directory the state dir's file (created only for an empty queue).
fn resolve_key_path(state_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_owned();
    }
    // An older install's config names the state-dir files; the package has since made
    // credentials of them, which win.
    let upgraded = match p.to_str() {
        Some(LEGACY_DEVICE_KEY) => crate::store::credential(Path::new("device_key")),
        Some(LEGACY_BUNDLE_KEY) => crate::store::credential(Path::new("bundle_key")),
        _ => None,
    };
    // A bare name is a credential even when it is missing (the open then says so); a name
    // with a directory ("keys/bundle.key") is a file in the state dir.
    upgraded.or_else(|| crate::store::credential(p)).unwrap_or_else(|| {
        match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(d) if is_credential_name(p) => PathBuf::from(d).join(p),
            _ => state_dir.join(p),
        }
    })
}
