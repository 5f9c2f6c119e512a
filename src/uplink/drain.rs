//! Empties the queue in FIFO order: each pending job is resumed from its saved progress,
//! driven to an outcome, and its record updated. Progress is saved before every request.

use crate::queue::{JobState, Queue, QueueError, Record};
use crate::smileid::signature::Signer;
use crate::smileid::submit::{Outcome, Submission, SubmitConfig};

use super::drive::{drive, DriveError, Event, RetryPolicy};
use super::http::HttpClient;

/// The result of one job's pass through the uplink.
#[derive(Debug)]
pub struct Drained {
    pub record: Record,
    pub outcome: Result<Outcome, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Drives every pending job once; jobs that only hit transient trouble stay queued.
pub fn drain(
    queue: &Queue,
    http: &HttpClient,
    signer: &dyn Signer,
    cfg: &SubmitConfig,
    policy: &RetryPolicy,
    mut on_event: impl FnMut(&Record, &Event),
) -> Result<Vec<Drained>, DrainError> {
    let mut out = Vec::new();
    for mut rec in queue.pending()? {
        let job = match queue.load_job(&rec) {
            Ok(j) => j,
            Err(e) => {
                rec.state = JobState::Failed;
                rec.last_error = Some(e.to_string());
                queue.save(&rec)?;
                out.push(Drained { record: rec, outcome: Err(e.to_string()) });
                continue;
            }
        };
        let mut sub = match Submission::resume(job, cfg.clone(), rec.progress.clone()) {
            Ok(s) => s,
            Err(e) => {
                rec.state = JobState::Failed;
                rec.last_error = Some(e.to_string());
                queue.save(&rec)?;
                out.push(Drained { record: rec, outcome: Err(e.to_string()) });
                continue;
            }
        };
        rec.attempts += 1;
        let mut save_err = None;
        let result = drive(&mut sub, http, signer, policy, |ev, progress| {
            // Save before the request leaves: after a crash, a 2215 is then known to be ours.
            if *progress != rec.progress {
                rec.progress = progress.clone();
                if let Err(e) = queue.save(&rec) {
                    save_err = Some(e);
                }
            }
            on_event(&rec, ev);
        });
        if let Some(e) = save_err {
            return Err(e.into());
        }
        rec.progress = sub.progress().clone();
        let paused = matches!(result, Err(DriveError::Paused(_)));
        let outcome = match result {
            Ok(o) => {
                match &o {
                    Outcome::Completed(status) => {
                        rec.state = JobState::Done;
                        rec.result = Some(status.result.clone());
                        rec.last_error = None;
                    }
                    Outcome::Submitted { .. } => rec.state = JobState::Done,
                    Outcome::PollingExhausted { .. } => {
                        rec.last_error = Some("no final result yet; will ask again".into())
                    }
                    Outcome::Failed(e) => {
                        rec.state = JobState::Failed;
                        rec.last_error = Some(e.to_string());
                    }
                }
                Ok(o)
            }
            Err(DriveError::GaveUp { attempts, last }) => {
                rec.last_error = Some(format!("{last} (after {attempts} tries; will try again)"));
                Err(rec.last_error.clone().unwrap_or_default())
            }
            Err(e) => {
                rec.last_error = Some(e.to_string());
                Err(e.to_string())
            }
        };
        queue.save(&rec)?;
        if rec.state != JobState::Queued {
            queue.erase_bundle(&rec)?;
        }
        out.push(Drained { record: rec, outcome });
        if paused {
            // Every other job would be refused the same way: stop here, keep them queued.
            break;
        }
    }
    Ok(out)
}
