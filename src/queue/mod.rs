//! The durable job queue: a job is on disk (bundle file, fsynced) and indexed in sled
//! (flushed) before any network call, and its submission progress is saved before each
//! request, so a restart resumes it instead of losing or duplicating it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::{self, BundleError};
use crate::smileid::job::Job;
use crate::smileid::submit::Progress;
use crate::smileid::timestamp::UnixMillis;
use crate::store::private_dir;

pub mod machine;

pub const RECORD_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    /// Smile ID answered with a final status (or the job went to the callback only).
    Done,
    /// Refused for good; `last_error` says why.
    Failed,
}

/// The index entry of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub seq: u64,
    pub job_id: String,
    pub user_id: String,
    pub job_type: u8,
    pub state: JobState,
    pub progress: Progress,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Final job_status `result` (no images), kept for the host application.
    pub result: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue index at {path} cannot be opened: {detail}; check permissions, or move it aside to rebuild")]
    Open { path: String, detail: String },
    #[error("the queue index failed: {0}; check free disk space")]
    Index(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("job_id {0} is already in the queue; every session needs a new job_id")]
    Duplicate(String),
}

pub struct Queue {
    dir: PathBuf,
    db: sled::Db,
    jobs: sled::Tree,
}

fn idx(e: sled::Error) -> QueueError {
    QueueError::Index(e.to_string())
}

impl Queue {
    /// Opens (or creates) the queue under `dir`, with sled's cache capped for small boards.
    pub fn open(dir: &Path) -> Result<Self, QueueError> {
        let open_err = |d: String| QueueError::Open { path: dir.display().to_string(), detail: d };
        private_dir(&dir.join("bundles")).map_err(|e| open_err(e.to_string()))?;
        let db = sled::Config::new()
            .path(dir.join("index.sled"))
            .cache_capacity(4 * 1024 * 1024)
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        let jobs = db.open_tree("jobs").map_err(|e| open_err(e.to_string()))?;
        Ok(Queue { dir: dir.to_owned(), db, jobs })
    }

    fn bundle_path(&self, seq: u64) -> PathBuf {
        self.dir.join("bundles").join(format!("{seq:016}.job"))
    }

    /// Stores a captured job durably and returns its record. Nothing is sent yet.
    pub fn enqueue(&self, job: &Job) -> Result<Record, QueueError> {
        let pp = &job.partner_params;
        if self.list()?.iter().any(|r| r.job_id == pp.job_id) {
            return Err(QueueError::Duplicate(pp.job_id.clone()));
        }
        let seq = self.db.generate_id().map_err(idx)?;
        bundle::write(&self.bundle_path(seq), job)?;
        let now = UnixMillis::now().0;
        let rec = Record {
            schema: RECORD_SCHEMA,
            seq,
            job_id: pp.job_id.clone(),
            user_id: pp.user_id.clone(),
            job_type: pp.job_type.code(),
            state: JobState::Queued,
            progress: Progress::default(),
            attempts: 0,
            last_error: None,
            result: None,
            created_at: now,
            updated_at: now,
        };
        self.save(&rec)?;
        Ok(rec)
    }

    /// Writes a record and flushes it to disk before returning.
    pub fn save(&self, rec: &Record) -> Result<(), QueueError> {
        let mut rec = rec.clone();
        rec.updated_at = UnixMillis::now().0;
        self.jobs.insert(rec.seq.to_be_bytes(), serde_json::to_vec(&rec).expect("records serialize")).map_err(idx)?;
        self.jobs.flush().map_err(idx)?;
        Ok(())
    }

    /// All records, oldest first. Unreadable entries are skipped, not fatal.
    pub fn list(&self) -> Result<Vec<Record>, QueueError> {
        let mut out = Vec::new();
        for kv in self.jobs.iter() {
            let (_, v) = kv.map_err(idx)?;
            if let Ok(r) = serde_json::from_slice::<Record>(&v) {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub fn pending(&self) -> Result<Vec<Record>, QueueError> {
        Ok(self.list()?.into_iter().filter(|r| r.state == JobState::Queued).collect())
    }

    pub fn load_job(&self, rec: &Record) -> Result<Job, QueueError> {
        Ok(bundle::read(&self.bundle_path(rec.seq))?)
    }

    /// Deletes a job's images once they are no longer needed (final result reached).
    pub fn erase_bundle(&self, rec: &Record) -> Result<(), QueueError> {
        match std::fs::remove_file(self.bundle_path(rec.seq)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(BundleError::Write { path: self.bundle_path(rec.seq).display().to_string(), detail: e.to_string() }
                    .into())
            }
            _ => Ok(()),
        }
    }
}
