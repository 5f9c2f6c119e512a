//! A captured job on disk: versioned, written atomically, readable by the owner only.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::smileid::job::Job;
use crate::store::write_private;

/// Bumped whenever the layout changes; readers migrate older versions.
pub const SCHEMA: u32 = 1;

#[derive(Serialize, Deserialize)]
struct BundleFile {
    schema: u32,
    job: Job,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot write job bundle {path}: {detail}; check free space and permissions of the state directory")]
    Write { path: String, detail: String },
    #[error("cannot read job bundle {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("job bundle {path} is damaged ({detail}); it is kept aside, not uploaded")]
    Corrupt { path: String, detail: String },
    #[error("job bundle {path} has schema {found}, newer than this agent ({SCHEMA}); upgrade the agent")]
    TooNew { path: String, found: u32 },
}

pub fn write(path: &Path, job: &Job) -> Result<(), BundleError> {
    let bytes = serde_json::to_vec(&BundleFile { schema: SCHEMA, job: job.clone() }).expect("jobs always serialize");
    write_private(path, &bytes)
        .map_err(|e| BundleError::Write { path: path.display().to_string(), detail: e.to_string() })
}

pub fn read(path: &Path) -> Result<Job, BundleError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| BundleError::Read { path: p.clone(), detail: e.to_string() })?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| BundleError::Corrupt { path: p.clone(), detail: e.to_string() })?;
    let found = v.get("schema").and_then(|s| s.as_u64()).unwrap_or(0) as u32;
    if found > SCHEMA {
        return Err(BundleError::TooNew { path: p, found });
    }
    let f: BundleFile =
        serde_json::from_value(v).map_err(|e| BundleError::Corrupt { path: p, detail: e.to_string() })?;
    Ok(f.job)
}
