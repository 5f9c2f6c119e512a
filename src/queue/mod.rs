//! The durable job queue.
//!
//! Each job is a sealed bundle file (images and details, see [`crate::bundle`]) plus a small
//! record in a sled index (its [`machine::Stage`], submission progress, attempts, result). The
//! bundle is fsynced and the index flushed before any network call, and the index is flushed at
//! every state change. sled's cache is capped for small boards.
//!
//! On open the two are reconciled, so no single damaged file can stop the agent: an index that
//! will not open (or panics) is moved aside and rebuilt from the bundles; bundles that fail their
//! seal are moved to `quarantine/` and reported; bundles with no record are adopted; records whose
//! bundle vanished are quarantined; leftover temp files are removed; v1 bundles are migrated.

pub mod machine;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::{self, Bundle, BundleError, Sealer};
use crate::smileid::job::Job;
use crate::smileid::submit::Progress;
use crate::smileid::timestamp::UnixMillis;
use crate::store::{private_dir, write_private};
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
    /// A job not delivered within this time fails as expired (consent and capture go stale).
    pub ttl_hours: u64,
    /// How long images stay after a final result (0: erased at once).
    pub image_retention_secs: u64,
    /// How long a finished job's record and result stay for the host application.
    pub result_retention_hours: u64,
    /// sled's cache (its default is 1 GiB, far beyond a Pi's budget).
    pub index_cache_bytes: u64,
    /// Ballast file kept in the state dir and released when the disk fills, so the queue can
    /// still open and record uploads.
    pub reserve_bytes: u64,
    /// Key file for encrypting bundles at rest (created, 0600, if missing). Relative names
    /// resolve in $CREDENTIALS_DIRECTORY, else in the state dir. None: sealed but not encrypted.
    pub encryption_key_file: Option<PathBuf>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            max_jobs: 500,
            max_bytes: 256 * 1024 * 1024,
            min_free_bytes: 64 * 1024 * 1024,
            ttl_hours: 72,
            image_retention_secs: 0,
            result_retention_hours: 168,
            index_cache_bytes: 4 * 1024 * 1024,
            reserve_bytes: 4 * 1024 * 1024,
            encryption_key_file: Some(PathBuf::from("keys/bundle.key")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue in {path} cannot be opened: {detail}; check its owner and permissions")]
    Open { path: String, detail: String },
    #[error("the queue index failed: {0}; check free disk space")]
    Index(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("job_id {0} is already in the queue; every session needs a new job_id")]
    Duplicate(String),
    #[error("the kiosk's storage is full ({0}); no new session can be saved until queued jobs upload. Nothing queued was dropped")]
    Full(String),
    #[error("no job {0} in the queue")]
    NotFound(String),
    #[error(transparent)]
    Transition(#[from] machine::TransitionError),
    #[error("cannot read or create the key file {path}: {detail}")]
    Key { path: String, detail: String },
}

/// What reconciliation found when the queue was opened.
#[derive(Debug, Default, Clone, Serialize)]
pub struct OpenReport {
    pub index_rebuilt: bool,
    pub index_error: Option<String>,
    /// The disk was full: the ballast file was released so the queue could open.
    pub reserve_released: bool,
    pub adopted: usize,
    pub migrated: usize,
    pub quarantined: Vec<String>,
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
}

pub struct Queue {
    dir: PathBuf,
    db: sled::Db,
    jobs: sled::Tree,
    sealer: Sealer,
    settings: QueueSettings,
    pub report: OpenReport,
}

/// A Biometric KYC bundle is about 200 KB (9 JPEGs); used to refuse a session before capture.
pub const TYPICAL_JOB_BYTES: u64 = 400 * 1024;

fn idx(e: sled::Error) -> QueueError {
    QueueError::Index(e.to_string())
}

fn now_ms() -> i64 {
    UnixMillis::now().0
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

fn load_or_create_key(path: &Path) -> Result<[u8; 32], QueueError> {
    let err = |d: String| QueueError::Key { path: path.display().to_string(), detail: d };
    match std::fs::read(path) {
        Ok(b) if b.len() == 32 => Ok(b.try_into().expect("32 bytes")),
        Ok(b) => Err(err(format!("expected 32 bytes, found {}; restore the right file", b.len()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| err(e.to_string()))?;
            if let Some(parent) = path.parent() {
                private_dir(parent).map_err(|e| err(e.to_string()))?;
            }
            write_private(path, &k).map_err(|e| err(e.to_string()))?;
            Ok(k)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// sled's log segment size. Records are about 1 KB; sled's default 512 KiB segments would keep
/// several MB allocated for a few KB of live records, which dominates a small queue's footprint.
const SEGMENT_BYTES: usize = 64 * 1024;

enum IndexError {
    NoSpace,
    Damaged(String),
}

fn open_index(path: &Path, cache: u64) -> Result<(sled::Db, sled::Tree), IndexError> {
    // sled can panic on some corruptions (its issue #1533); a panic here must not crash-loop the agent.
    let p = path.to_owned();
    let r = std::panic::catch_unwind(move || {
        let db = sled::Config::new().path(p).cache_capacity(cache).segment_size(SEGMENT_BYTES).open()?;
        let t = db.open_tree("jobs")?;
        Ok::<_, sled::Error>((db, t))
    });
    match r {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(sled::Error::Io(e))) if e.raw_os_error() == Some(libc::ENOSPC) => Err(IndexError::NoSpace),
        Ok(Err(e)) => Err(IndexError::Damaged(e.to_string())),
        Err(_) => Err(IndexError::Damaged("sled panicked while opening the index".into())),
    }
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

impl Queue {
    /// Opens (or creates) the queue in `dir` and reconciles index and bundles.
    pub fn open(dir: &Path, settings: QueueSettings) -> Result<Self, QueueError> {
        let open_err = |d: String| QueueError::Open { path: dir.display().to_string(), detail: d };
        for sub in ["bundles", "quarantine"] {
            private_dir(&dir.join(sub)).map_err(|e| open_err(e.to_string()))?;
        }
        let seal_key = load_or_create_key(&dir.join("keys/device.key"))?;
        let enc_key = match &settings.encryption_key_file {
            Some(p) => Some(load_or_create_key(&resolve_key_path(dir, p))?),
            None => None,
        };
        let sealer = Sealer::new(seal_key, enc_key);
        let mut report = OpenReport::default();
        let index_path = dir.join("index.sled");
        let cache = settings.index_cache_bytes;
        let mut opened = open_index(&index_path, cache);
        if matches!(opened, Err(IndexError::NoSpace)) && release_reserve(dir) {
            report.reserve_released = true;
            opened = open_index(&index_path, cache);
        }
        let full = || open_err("the disk is full; free some space".into());
        let (db, jobs) = match opened {
            Ok(x) => x,
            Err(IndexError::NoSpace) => return Err(full()),
            Err(IndexError::Damaged(e)) => {
                report.index_rebuilt = true;
                report.index_error = Some(e);
                let aside = dir.join(format!("index.sled.damaged-{}", now_ms()));
                std::fs::rename(&index_path, &aside)
                    .map_err(|e| open_err(format!("moving the damaged index aside: {e}")))?;
                match open_index(&index_path, cache) {
                    Ok(x) => x,
                    Err(IndexError::NoSpace) => return Err(full()),
                    Err(IndexError::Damaged(e)) => return Err(open_err(e)),
                }
            }
        };
        let mut q = Queue { dir: dir.to_owned(), db, jobs, sealer, settings, report };
        q.reconcile()?;
        keep_reserve(dir, q.settings.reserve_bytes, q.settings.min_free_bytes);
        Ok(q)
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bundle_path(&self, seq: u64) -> PathBuf {
        self.dir.join("bundles").join(format!("{seq:016}.kab"))
    }

    fn quarantine(&mut self, path: &Path, why: &str) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = std::fs::rename(path, self.dir.join("quarantine").join(&name));
        self.report.quarantined.push(format!("{name}: {why}"));
    }

    fn reconcile(&mut self) -> Result<(), QueueError> {
        let mut records = self.list()?;
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<PathBuf> = std::fs::read_dir(self.dir.join("bundles"))
            .map_err(|e| QueueError::Index(e.to_string()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        for path in entries {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                // A write cut off by a crash: the job was never acknowledged.
                let _ = std::fs::remove_file(&path);
                self.report.temp_files_removed += 1;
                continue;
            }
            let Some(seq) = name.split('.').next().and_then(|s| s.parse::<u64>().ok()) else {
                self.quarantine(&path, "unexpected file in bundles/");
                continue;
            };
            let v1 = name.ends_with(".job");
            let read = if v1 {
                bundle::read_v1(&path).and_then(|job| {
                    let created = records.iter().find(|r| r.seq == seq).map(|r| r.created_at).unwrap_or_else(now_ms);
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
                Err(e) => {
                    self.quarantine(&path, &e.to_string());
                    if let Some(r) = records.iter_mut().find(|r| r.seq == seq) {
                        if r.apply(Event::Integrity(e.to_string()), now_ms()).is_ok() {
                            r.bundle_bytes = 0;
                            self.save(r)?;
                        }
                    }
                    continue;
                }
            };
            seen.insert(seq);
            let size = std::fs::metadata(self.bundle_path(seq)).map(|m| m.len()).unwrap_or(0);
            match records.iter_mut().find(|r| r.seq == seq) {
                Some(r) => {
                    if r.bundle_bytes != size {
                        r.bundle_bytes = size;
                        self.save(r)?;
                    }
                }
                None => {
                    // Bundle written but never indexed (a crash), or the index was lost. What
                    // reached Smile ID is unknown: assume the most, so the submission asks first.
                    let pp = &b.job.partner_params;
                    let mut r = Record::new(seq, &pp.job_id, &pp.user_id, pp.job_type.code(), size, b.created_at);
                    r.apply(Event::Indexed, now_ms())?;
                    let p = Progress { prep_attempted: true, put_attempted: true, ..Default::default() };
                    r.apply(Event::Progress(p), now_ms())?;
                    self.save(&r)?;
                    self.report.adopted += 1;
                }
            }
        }
        for r in records
            .iter_mut()
            .filter(|r| r.stage.holds_images() && r.stage != Stage::Quarantined && !seen.contains(&r.seq))
        {
            r.apply(Event::Integrity("bundle file missing".into()), now_ms())?;
            r.bundle_bytes = 0;
            self.save(r)?;
            self.report.quarantined.push(format!("{}: bundle file missing", r.job_id));
        }
        Ok(())
    }

    /// Refuses a new bundle of `bytes` if a limit would be crossed; says which.
    pub fn check_room(&self, bytes: u64) -> Result<(), QueueError> {
        let s = self.stats()?;
        if s.holding_images >= self.settings.max_jobs {
            return Err(QueueError::Full(format!(
                "{} jobs waiting, the limit is {}",
                s.holding_images, self.settings.max_jobs
            )));
        }
        if s.bundle_bytes + bytes > self.settings.max_bytes {
            return Err(QueueError::Full(format!(
                "{} MB queued, the limit is {} MB",
                s.bundle_bytes >> 20,
                self.settings.max_bytes >> 20
            )));
        }
        if let Some(free) = s.free_bytes {
            if free < bytes + self.settings.min_free_bytes {
                return Err(QueueError::Full(format!(
                    "{} MB free on disk, {} MB are kept in reserve",
                    free >> 20,
                    self.settings.min_free_bytes >> 20
                )));
            }
        }
        Ok(())
    }

    /// Stores a captured job durably and returns its record. Nothing is sent yet.
    pub fn enqueue(&self, job: &Job) -> Result<Record, QueueError> {
        let pp = &job.partner_params;
        if self.list()?.iter().any(|r| r.job_id == pp.job_id) {
            return Err(QueueError::Duplicate(pp.job_id.clone()));
        }
        let now = now_ms();
        let b = Bundle { job: job.clone(), created_at: now };
        let seq = self.db.generate_id().map_err(idx)?;
        let bytes = bundle::encode(seq, &b, &self.sealer).map_err(QueueError::Index)?;
        self.check_room(bytes.len() as u64)?;
        let path = self.bundle_path(seq);
        if let Err(e) = write_private(&path, &bytes) {
            let _ = std::fs::remove_file(&path);
            return Err(if e.raw_os_error() == Some(libc::ENOSPC) {
                QueueError::Full("the disk is full".into())
            } else {
                BundleError::Write { path: path.display().to_string(), detail: e.to_string() }.into()
            });
        }
        let mut rec = Record::new(seq, &pp.job_id, &pp.user_id, pp.job_type.code(), bytes.len() as u64, now);
        rec.apply(Event::Indexed, now)?;
        if let Err(e) = self.save(&rec) {
            // Not acknowledged: take the bundle back so nothing half-stored remains.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(rec)
    }

    /// Writes a record and flushes the index to disk before returning.
    pub fn save(&self, rec: &Record) -> Result<(), QueueError> {
        let write = || -> Result<(), sled::Error> {
            self.jobs.insert(rec.seq.to_be_bytes(), serde_json::to_vec(rec).expect("records serialize"))?;
            self.jobs.flush()?;
            Ok(())
        };
        match write() {
            // Progress on a job already queued must be recorded even on a full disk.
            Err(sled::Error::Io(e)) if e.raw_os_error() == Some(libc::ENOSPC) && release_reserve(&self.dir) => {
                write().map_err(idx)
            }
            r => r.map_err(idx),
        }
    }

    /// Applies an event to the job's record and saves it.
    pub fn apply(&self, rec: &mut Record, event: Event) -> Result<(), QueueError> {
        rec.apply(event, now_ms())?;
        self.save(rec)
    }

    /// All records, oldest first. Unreadable index entries are skipped, not fatal.
    pub fn list(&self) -> Result<Vec<Record>, QueueError> {
        let mut out = Vec::new();
        for kv in self.jobs.iter() {
            let (_, v) = kv.map_err(idx)?;
            if let Ok(r) = machine::decode(&v) {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub fn get(&self, job_id: &str) -> Result<Record, QueueError> {
        self.list()?.into_iter().find(|r| r.job_id == job_id).ok_or_else(|| QueueError::NotFound(job_id.into()))
    }

    /// Jobs the uplink should try at `now`, oldest first.
    pub fn due(&self, now: i64) -> Result<Vec<Record>, QueueError> {
        Ok(self.list()?.into_iter().filter(|r| r.due(now)).collect())
    }

    /// The job's details and images; a bundle that fails its seal is quarantined.
    pub fn load_job(&self, rec: &mut Record) -> Result<Job, QueueError> {
        let path = self.bundle_path(rec.seq);
        match bundle::read(&path, Some(rec.seq), &self.sealer) {
            Ok((_, b)) => Ok(b.job),
            Err(e) => {
                let _ = std::fs::rename(&path, self.dir.join("quarantine").join(path.file_name().unwrap_or_default()));
                rec.apply(Event::Integrity(e.to_string()), now_ms())?;
                rec.bundle_bytes = 0;
                self.save(rec)?;
                Err(e.into())
            }
        }
    }

    /// Erases a job's images (overwritten, unlinked, directory synced).
    pub fn erase_images(&self, rec: &mut Record) -> Result<(), QueueError> {
        let path = self.bundle_path(rec.seq);
        bundle::erase(&path)
            .map_err(|e| BundleError::Write { path: path.display().to_string(), detail: e.to_string() })?;
        rec.apply(Event::Erased, now_ms())?;
        self.save(rec)
    }

    /// Expires, erases and purges what is due; returns how many of each.
    pub fn housekeeping(&self, now: i64) -> Result<(usize, usize, usize), QueueError> {
        let s = &self.settings;
        let (mut expired, mut erased, mut purged) = (0, 0, 0);
        for mut r in self.list()? {
            if r.expired(now, s.ttl_hours as i64 * 3_600_000) {
                self.apply(&mut r, Event::Expired)?;
                expired += 1;
            }
            if r.erase_due(now, s.image_retention_secs as i64 * 1000) {
                self.erase_images(&mut r)?;
                erased += 1;
            }
            if r.purge_due(now, s.result_retention_hours as i64 * 3_600_000) {
                self.jobs.remove(r.seq.to_be_bytes()).map_err(idx)?;
                self.jobs.flush().map_err(idx)?;
                purged += 1;
            }
        }
        Ok((expired, erased, purged))
    }

    /// Puts a failed job back in line (operator's `queue retry`).
    pub fn retry(&self, job_id: &str) -> Result<Record, QueueError> {
        let mut r = self.get(job_id)?;
        self.apply(&mut r, Event::Retry)?;
        Ok(r)
    }

    /// Deletes a job entirely: images erased, record removed (operator's `queue purge`).
    pub fn purge(&self, job_id: &str) -> Result<(), QueueError> {
        let r = self.get(job_id)?;
        let path = self.bundle_path(r.seq);
        bundle::erase(&path)
            .map_err(|e| BundleError::Write { path: path.display().to_string(), detail: e.to_string() })?;
        self.jobs.remove(r.seq.to_be_bytes()).map_err(idx)?;
        self.jobs.flush().map_err(idx)?;
        Ok(())
    }

    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut s = QueueStats { free_bytes: free_bytes(&self.dir), ..Default::default() };
        for r in self.list()? {
            s.pending += r.stage.is_pending() as usize;
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

fn resolve_key_path(state_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_owned();
    }
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(d) if Path::new(&d).join(p).exists() => Path::new(&d).join(p),
        _ => state_dir.join(p),
    }
}
