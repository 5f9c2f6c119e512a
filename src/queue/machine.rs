//! The life of one queued job, as pure code: events in, a new record out. No disk, no clock
//! (time is an input), no randomness (jitter is an input).
//!
//! # States
//!
//! * `Captured`: the bundle is on disk but not yet indexed (only seen while enqueueing, or when
//!   reconciling after a crash).
//! * `Queued`: indexed, waiting for the link. Nothing has been sent.
//! * `Prepped`: prep_upload answered (smile_job_id known); the zip is not confirmed uploaded.
//! * `Uploaded`: the zip was accepted; only the result is missing.
//! * `Result`: a final job_status is stored. The images wait for the retention time.
//! * `Erased`: images deleted; the record keeps the result until it is purged.
//! * `Failed`: refused for good by Smile ID (a final code), expired (by a confirmed clock), or
//!   not buildable. The images stay for `failed_retention_hours`, so `Retry` can undo a
//!   mistaken failure; then they are erased and the stage keeps saying why.
//! * `Quarantined`: the bundle failed its integrity check; kept aside for inspection, never sent.
//!   `Restore` puts it back where it was once its seal checks again (the right key restored).
//!
//! ```text
//!  Captured ─Indexed─▶ Queued ─Progress─▶ Prepped ─Progress─▶ Uploaded ─Final─▶ Result ─Erased─▶ Erased
//!                        │  ▲               │                    │
//!                        │  └──Retry──┐     │ AttemptFailed: same state, attempts+1, next_attempt_at
//!                        ▼            │     ▼                    ▼
//!              Failed (final code, TTL) ◀───┴────────────────────┘
//!
//!  any but Erased ─Integrity─▶ Quarantined ─Restore─▶ the stage its progress and result say
//! ```
//!
//! Only two things end a job for good: Smile ID's verdict (`Final`, `Refused` with its code)
//! and an operator's purge (which removes the record; not an event here). The TTL needs a
//! confirmed clock: a job's age counts from `aged_from`, which is set only from a wall time a
//! server has confirmed ([`Record::anchor_age`]).
//!
//! ```
//! use kiosk_agent::queue::machine::*;
//! use kiosk_agent::smileid::submit::Progress;
//!
//! let mut r = Record::new(1, "job-1", "user-1", 1, 150_000, 1_000);
//! assert_eq!(r.stage, Stage::Captured);
//! r.apply(Event::Indexed, 1_000).unwrap();
//! assert!(r.due(1_000));
//! r.apply(Event::AttemptFailed { error: "link down".into(), backoff_ms: 2_000 }, 1_500).unwrap();
//! assert_eq!((r.stage, r.attempts, r.due(2_000), r.due(3_500)), (Stage::Queued, 1, false, true));
//! let prepped = Progress { prep_attempted: true, smile_job_id: Some("7".into()), ..Default::default() };
//! r.apply(Event::Progress(prepped.clone()), 3_600).unwrap();
//! assert_eq!(r.stage, Stage::Prepped);
//! r.apply(Event::Progress(Progress { put_attempted: true, uploaded: true, ..prepped }), 3_700).unwrap();
//! assert_eq!(r.stage, Stage::Uploaded);
//! r.apply(Event::Final { success: Some(true), result: serde_json::json!({"ResultCode": "1020"}) }, 4_000).unwrap();
//! assert_eq!(r.stage, Stage::Result);
//! assert!(r.erase_due(4_000, 0, 0));
//! r.apply(Event::Erased, 4_001).unwrap();
//! assert_eq!(r.stage, Stage::Erased);
//! assert!(r.apply(Event::Indexed, 4_002).is_err());
//!
//! let mut q = Record::new(2, "job-2", "user-1", 1, 1, 0);
//! q.apply(Event::Integrity("seal mismatch".into()), 0).unwrap();
//! assert_eq!(q.stage, Stage::Quarantined);
//! let mut f = Record::new(3, "job-3", "user-1", 1, 1, 0);
//! f.apply(Event::Indexed, 0).unwrap();
//! f.apply(Event::Refused { code: Some("2212".into()), error: "Invalid job type".into() }, 1).unwrap();
//! assert_eq!(f.stage, Stage::Failed);
//! f.apply(Event::Retry, 2).unwrap();
//! assert_eq!(f.stage, Stage::Queued);
//! q.apply(Event::Restore, 3).unwrap();
//! assert_eq!(q.stage, Stage::Queued);
//! ```

use serde::{Deserialize, Serialize};

use crate::clock::BootStamp;
use crate::smileid::submit::Progress;

/// Version of [`Record`] as stored in the index. v1 had `state: queued|done|failed`.
pub const RECORD_SCHEMA: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Captured,
    Queued,
    Prepped,
    Uploaded,
    Result,
    Erased,
    Failed,
    Quarantined,
}

impl Stage {
    /// The stage's name as the API, the logs and the CLI show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Captured => "captured",
            Stage::Queued => "queued",
            Stage::Prepped => "prepped",
            Stage::Uploaded => "uploaded",
            Stage::Result => "result",
            Stage::Erased => "erased",
            Stage::Failed => "failed",
            Stage::Quarantined => "quarantined",
        }
    }

    /// Still to be sent or answered.
    pub fn is_pending(self) -> bool {
        matches!(self, Stage::Queued | Stage::Prepped | Stage::Uploaded)
    }

    /// The bundle (images) should still exist in this stage.
    pub fn holds_images(self) -> bool {
        matches!(
            self,
            Stage::Captured | Stage::Queued | Stage::Prepped | Stage::Uploaded | Stage::Result | Stage::Quarantined
        )
    }
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The index now holds the job (after its bundle was written).
    Indexed,
    /// Submission progress, saved before each request leaves.
    Progress(Progress),
    /// A try failed for a reason that may pass (network, 5xx, paused credentials).
    AttemptFailed { error: String, backoff_ms: u64 },
    /// Smile ID refused the job for good.
    Refused { code: Option<String>, error: String },
    /// A final job_status (or, with callbacks only, the confirmed upload: success unknown here).
    Final { success: Option<bool>, result: serde_json::Value },
    /// The job outlived its time to live without being delivered.
    Expired,
    /// The images are gone from disk.
    Erased,
    /// The bundle failed its seal or could not be read.
    Integrity(String),
    /// The operator asked to try a job again: a failed one back in line, a waiting one now.
    Retry,
    /// The bundle is back in `bundles/` and passed its seal: out of quarantine.
    Restore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job_id}: {event} is not possible in state {stage:?}")]
pub struct TransitionError {
    pub job_id: String,
    pub stage: Stage,
    pub event: &'static str,
}

/// The index entry of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub seq: u64,
    pub job_id: String,
    pub user_id: String,
    pub job_type: u8,
    pub stage: Stage,
    pub progress: Progress,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_code: Option<String>,
    /// Unix ms before which the job is not tried again.
    pub next_attempt_at: i64,
    pub job_success: Option<bool>,
    /// Final job_status `result`, kept for the host application until purged.
    pub result: Option<serde_json::Value>,
    /// Size of the bundle file while it exists.
    pub bundle_bytes: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Confirmed wall time from which the job's age counts toward the TTL; `None` until a
    /// server has confirmed the kiosk's clock since the capture.
    #[serde(default)]
    pub aged_from: Option<i64>,
    /// The boot clock at capture, to date the capture once the wall clock is confirmed.
    #[serde(default)]
    pub created_boot: Option<BootStamp>,
    /// The stage a quarantined job was in, so a restore puts it back there.
    #[serde(default)]
    pub quarantined_from: Option<Stage>,
    /// The uid of the control-API peer whose session made the job; operators read only theirs.
    #[serde(default)]
    pub owner: Option<u32>,
    /// Times Smile ID refused the job for good; an operator's retry does not clear it, so the
    /// fleet counts a job refused again after a retry once.
    #[serde(default)]
    pub refusals: u32,
}

impl Record {
    pub fn new(seq: u64, job_id: &str, user_id: &str, job_type: u8, bundle_bytes: u64, now: i64) -> Self {
        Record {
            schema: RECORD_SCHEMA,
            seq,
            job_id: job_id.into(),
            user_id: user_id.into(),
            job_type,
            stage: Stage::Captured,
            progress: Progress::default(),
            attempts: 0,
            last_error: None,
            last_code: None,
            next_attempt_at: now,
            job_success: None,
            result: None,
            bundle_bytes,
            created_at: now,
            updated_at: now,
            finished_at: None,
            aged_from: None,
            created_boot: None,
            quarantined_from: None,
            owner: None,
            refusals: 0,
        }
    }

    /// An operator put the job back: its age counts afresh from the next confirmed clock.
    fn age_afresh(&mut self) {
        self.aged_from = None;
        self.created_boot = None;
    }

    /// Dates the job's age from a confirmed clock (`trusted_now`, with the boot clock read at
    /// the same moment): on the capture's own boot, the boot clock says how long ago it was;
    /// across a reboot nothing does, so the age counts from now. A job is never made older
    /// than it can be shown to be. Returns whether anything changed.
    pub fn anchor_age(&mut self, trusted_now: i64, boot_now: &BootStamp) -> bool {
        if self.aged_from.is_some() {
            return false;
        }
        self.aged_from = Some(trusted_now - self.boot_age(boot_now).unwrap_or(0));
        true
    }

    /// When the job was captured, as far as can be shown at `wall_now`: by a confirmed clock
    /// once one has dated it; until then by the boot clock on the capture's own boot, and
    /// across a reboot from now. A wall clock that was slow at capture cannot make it old.
    pub fn captured_by(&self, wall_now: i64, boot_now: &BootStamp) -> i64 {
        self.aged_from.unwrap_or_else(|| wall_now - self.boot_age(boot_now).unwrap_or(0))
    }

    /// Milliseconds since capture by the boot clock, on the capture's own boot. An interval
    /// longer than this boot has lasted is not one (a faked or broken clock).
    fn boot_age(&self, boot_now: &BootStamp) -> Option<i64> {
        self.created_boot.as_ref().and_then(|b| boot_now.since(b)).filter(|d| (0..=boot_now.ms).contains(d))
    }

    /// Applies `event` at `now`; an impossible transition leaves the record untouched.
    pub fn apply(&mut self, event: Event, now: i64) -> Result<(), TransitionError> {
        use Stage::*;
        let name = match &event {
            Event::Indexed => "Indexed",
            Event::Progress(_) => "Progress",
            Event::AttemptFailed { .. } => "AttemptFailed",
            Event::Refused { .. } => "Refused",
            Event::Final { .. } => "Final",
            Event::Expired => "Expired",
            Event::Erased => "Erased",
            Event::Integrity(_) => "Integrity",
            Event::Retry => "Retry",
            Event::Restore => "Restore",
        };
        let bad = || TransitionError { job_id: self.job_id.clone(), stage: self.stage, event: name };
        match (self.stage, event) {
            (Captured, Event::Indexed) => self.stage = Queued,
            (Queued | Prepped | Uploaded, Event::Progress(p)) => {
                let before = self.stage;
                self.stage = if p.uploaded {
                    Uploaded
                } else if p.smile_job_id.is_some() {
                    Prepped
                } else {
                    Queued
                };
                self.progress = p;
                // A step further: the failure that held it is behind it, and an operator
                // reading it beside "uploaded" would think the upload failed.
                if self.stage != before {
                    self.last_error = None;
                }
            }
            (Queued | Prepped | Uploaded, Event::AttemptFailed { error, backoff_ms }) => {
                self.attempts += 1;
                self.last_error = Some(error);
                self.next_attempt_at = now.saturating_add(backoff_ms as i64);
            }
            (Queued | Prepped | Uploaded, Event::Refused { code, error }) => {
                self.refusals = self.refusals.saturating_add(1);
                self.stage = Failed;
                self.last_code = code;
                self.last_error = Some(error);
                self.finished_at = Some(now);
            }
            (Queued | Prepped | Uploaded, Event::Final { success, result }) => {
                self.stage = Result;
                self.job_success = success;
                self.result = Some(kept_result(result));
                self.last_error = None;
                self.finished_at = Some(now);
            }
            // Uploaded jobs never expire, nor jobs whose zip may have landed: Smile ID may have them.
            (Queued | Prepped, Event::Expired) if !self.progress.put_attempted => {
                // The images stay for the failed-job retention: `Retry` can still send it.
                self.stage = Failed;
                self.last_error = Some(
                    "expired (queue.ttl_hours) before it could be delivered: `kiosk-agent queue retry` sends it anyway, until failed_retention_hours erase its images"
                        .into(),
                );
                self.finished_at = Some(now);
            }
            (Result, Event::Erased) => {
                self.stage = Erased;
                self.bundle_bytes = 0;
            }
            // A failed job's images go too; the stage keeps saying why it failed.
            (Failed, Event::Erased) => self.bundle_bytes = 0,
            (Captured | Queued | Prepped | Uploaded | Result | Failed, Event::Integrity(why)) => {
                self.quarantined_from = Some(self.stage);
                self.stage = Quarantined;
                self.last_error = Some(why);
                self.finished_at = Some(now);
            }
            (Failed, Event::Retry) if self.bundle_bytes > 0 => {
                self.age_afresh();
                self.stage = Queued;
                self.attempts = 0;
                self.last_error = None;
                self.last_code = None;
                self.next_attempt_at = now;
                self.finished_at = None;
            }
            (Queued | Prepped | Uploaded, Event::Retry) => {
                self.attempts = 0;
                self.next_attempt_at = now;
            }
            (Quarantined, Event::Restore) => {
                self.age_afresh();
                self.stage = if self.result.is_some() {
                    Result
                } else if self.quarantined_from == Some(Failed) {
                    // Smile ID's verdict (or the TTL) stands; `Retry` is the way back from there.
                    Failed
                } else if self.progress.uploaded {
                    Uploaded
                } else if self.progress.smile_job_id.is_some() {
                    Prepped
                } else {
                    Queued
                };
                if self.stage != Failed {
                    self.last_error = None;
                }
                self.next_attempt_at = now;
                if self.result.is_none() && self.stage != Failed {
                    self.finished_at = None;
                }
                self.quarantined_from = None;
            }
            _ => return Err(bad()),
        }
        self.updated_at = now;
        Ok(())
    }

    /// Whether the uplink should try this job at `now`.
    pub fn due(&self, now: i64) -> bool {
        self.stage.is_pending() && now >= self.next_attempt_at
    }

    /// Whether the job outlived `ttl_ms` without reaching Smile ID, at a confirmed `now`.
    /// Uploaded jobs never expire (Smile ID has them, only the answer is missing), nor jobs
    /// whose zip may have landed. A job whose age is not yet dated from a confirmed clock is not
    /// expired.
    pub fn expired(&self, now: i64, ttl_ms: i64) -> bool {
        matches!(self.stage, Stage::Queued | Stage::Prepped)
            && !self.progress.put_attempted
            && self.aged_from.is_some_and(|t| now.saturating_sub(t) > ttl_ms)
    }

    /// Whether the images should be erased at `now`: after a result, once `retention_ms` has
    /// passed (0: at once); after a failure, once `failed_retention_ms` has.
    pub fn erase_due(&self, now: i64, retention_ms: i64, failed_retention_ms: i64) -> bool {
        let since = |t: Option<i64>| now.saturating_sub(t.unwrap_or(now));
        match self.stage {
            Stage::Result => retention_ms == 0 || since(self.finished_at) >= retention_ms,
            Stage::Failed => self.bundle_bytes > 0 && since(self.finished_at) >= failed_retention_ms,
            _ => false,
        }
    }

    /// Whether the record itself (with its result) should be deleted at `now`.
    pub fn purge_due(&self, now: i64, keep_ms: i64) -> bool {
        matches!(self.stage, Stage::Erased | Stage::Failed)
            && self.bundle_bytes == 0
            && now.saturating_sub(self.finished_at.unwrap_or(now)) >= keep_ms
    }
}

/// Exponential backoff with jitter: `base * 2^attempts`, capped, then scaled into
/// [50 %, 100 %] by `jitter` (0..1) so that kiosks coming back online do not retry in step.
pub fn backoff_ms(attempts: u32, base_ms: u64, cap_ms: u64, jitter: f64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempts.min(20)).min(cap_ms);
    let j = jitter.clamp(0.0, 1.0);
    (exp as f64 * (0.5 + 0.5 * j)) as u64
}

/// The parts of Smile ID's result the kiosk keeps for the host application: the verdict and
/// how it was reached, never the person's data (FullName, IDNumber, DOB, Photo, Address,
/// PhoneNumber...), which the partner gets from Smile ID itself (callback or job status).
pub fn kept_result(result: serde_json::Value) -> serde_json::Value {
    const KEPT: [&str; 11] = [
        // What the kiosk writes itself when the result goes to the partner's callback.
        "note",
        "ResultCode",
        "ResultText",
        "ResultType",
        "SmileJobID",
        "PartnerParams",
        "Actions",
        "ConfidenceValue",
        "IsFinalResult",
        "IsMachineResult",
        "IDType",
    ];
    // Smile ID echoes every partner param the job was sent with, and a host may have sent a
    // customer's name in one: only the three that identify the job are kept.
    const PARAMS_KEPT: [&str; 3] = ["job_id", "job_type", "user_id"];
    match result {
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter()
                .filter(|(k, _)| KEPT.contains(&k.as_str()))
                .map(|(k, v)| match (k.as_str(), v) {
                    ("PartnerParams", serde_json::Value::Object(p)) => {
                        let p = p.into_iter().filter(|(k, _)| PARAMS_KEPT.contains(&k.as_str())).collect();
                        (k, serde_json::Value::Object(p))
                    }
                    (_, v) => (k, v),
                })
                .collect(),
        ),
        // A result that is not an object says nothing personal the kiosk could pick out.
        _ => serde_json::Value::Null,
    }
}

/// Reads an index record of any known schema, migrating older ones (and keeping of a stored
/// result only what [`kept_result`] keeps).
pub fn decode(bytes: &[u8]) -> Result<Record, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut r = match v.get("schema").and_then(|s| s.as_u64()) {
        Some(2) => serde_json::from_value::<Record>(v).map_err(|e| e.to_string())?,
        Some(1) => migrate_v1(v)?,
        Some(n) => {
            return Err(format!("record schema {n} is newer than this agent ({RECORD_SCHEMA}); upgrade the agent"))
        }
        None => return Err("record has no schema".into()),
    };
    r.result = r.result.take().map(kept_result);
    Ok(r)
}

#[derive(Deserialize)]
struct RecordV1 {
    seq: u64,
    job_id: String,
    user_id: String,
    job_type: u8,
    state: String,
    #[serde(default)]
    progress: Progress,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    result: Option<serde_json::Value>,
    created_at: i64,
    updated_at: i64,
}

fn migrate_v1(v: serde_json::Value) -> Result<Record, String> {
    let o: RecordV1 = serde_json::from_value(v).map_err(|e| format!("v1 record: {e}"))?;
    let mut r = Record::new(o.seq, &o.job_id, &o.user_id, o.job_type, 0, o.created_at);
    r.progress = o.progress;
    r.attempts = o.attempts;
    r.last_error = o.last_error;
    r.updated_at = o.updated_at;
    r.stage = match o.state.as_str() {
        "queued" if r.progress.uploaded => Stage::Uploaded,
        "queued" if r.progress.smile_job_id.is_some() => Stage::Prepped,
        "queued" => Stage::Queued,
        // v1 erased images as soon as a job finished.
        "done" => Stage::Erased,
        "failed" => Stage::Failed,
        other => return Err(format!("v1 record has unknown state {other:?}")),
    };
    if r.stage == Stage::Erased {
        r.job_success = Some(true);
        r.result = o.result;
        r.finished_at = Some(o.updated_at);
    }
    if r.stage == Stage::Failed {
        r.finished_at = Some(o.updated_at);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff_ms(0, 1000, 60_000, 1.0), 1000);
        assert_eq!(backoff_ms(3, 1000, 60_000, 1.0), 8000);
        assert_eq!(backoff_ms(30, 1000, 60_000, 1.0), 60_000);
        assert_eq!(backoff_ms(3, 1000, 60_000, 0.0), 4000);
    }

    #[test]
    fn v1_records_migrate() {
        let v1 = br#"{"schema":1,"seq":4,"job_id":"j","user_id":"u","job_type":1,"state":"queued","progress":{"prep_attempted":true,"uploaded":false,"smile_job_id":"9"},"attempts":2,"last_error":"x","result":null,"created_at":5,"updated_at":6}"#;
        let r = decode(v1).unwrap();
        assert_eq!(
            (r.schema, r.stage, r.attempts, r.progress.smile_job_id.as_deref()),
            (2, Stage::Prepped, 2, Some("9"))
        );
        let done = String::from_utf8_lossy(v1).replace("\"queued\"", "\"done\"");
        assert_eq!(decode(done.as_bytes()).unwrap().stage, Stage::Erased);
        let future = String::from_utf8_lossy(v1).replace("\"schema\":1", "\"schema\":9");
        assert!(decode(future.as_bytes()).unwrap_err().contains("newer"));
        assert!(decode(b"\x00garbage").is_err());
    }

    #[test]
    fn a_step_further_clears_the_failure_that_held_the_job() {
        let mut r = Record::new(1, "j", "u", 1, 10, 0);
        r.apply(Event::Indexed, 0).unwrap();
        r.apply(Event::AttemptFailed { error: "down".into(), backoff_ms: 1 }, 1).unwrap();
        // A try that got no further keeps saying what holds it.
        r.apply(Event::Progress(Progress { prep_attempted: true, ..Default::default() }), 2).unwrap();
        assert_eq!(r.last_error.as_deref(), Some("down"));
        let uploaded =
            Progress { prep_attempted: true, uploaded: true, smile_job_id: Some("9".into()), ..Default::default() };
        r.apply(Event::Progress(uploaded), 3).unwrap();
        assert_eq!((r.stage, r.last_error.as_deref()), (Stage::Uploaded, None));
    }

    #[test]
    fn impossible_transitions_change_nothing() {
        let mut r = Record::new(1, "j", "u", 1, 10, 0);
        let before = r.clone();
        assert!(r.apply(Event::Final { success: Some(true), result: serde_json::Value::Null }, 5).is_err());
        assert_eq!(r, before);
        r.apply(Event::Integrity("bad".into()), 1).unwrap();
        assert!(r.apply(Event::Retry, 2).is_err(), "a quarantined bundle is never sent");
    }

    #[test]
    fn ages_count_only_from_a_confirmed_clock() {
        let boot = |ms| BootStamp { boot_id: "b1".into(), ms };
        let day = 86_400_000;
        let mut r = Record::new(1, "j", "u", 1, 10, 0);
        r.apply(Event::Indexed, 0).unwrap();
        r.created_boot = Some(boot(1_000));
        // Captured while the wall clock said 0 (30 days slow); confirmed an hour later at 30 days.
        assert!(!r.expired(30 * day, day), "undated jobs never expire");
        assert!(r.anchor_age(30 * day + 3_600_000, &boot(1_000 + 3_600_000)));
        assert_eq!(r.aged_from, Some(30 * day));
        assert!(!r.expired(30 * day + 3_600_000, day) && r.expired(31 * day + 1, day));
        assert!(!r.anchor_age(99 * day, &boot(5_000)), "dated once");
        // Across a reboot the boot clock says nothing: the age counts from the confirmation.
        let mut r2 = Record::new(2, "k", "u", 1, 10, 0);
        r2.created_boot = Some(boot(1_000));
        r2.anchor_age(50 * day, &BootStamp { boot_id: "b2".into(), ms: 10 });
        assert_eq!(r2.aged_from, Some(50 * day));
    }

    #[test]
    fn failures_keep_their_images_for_a_while_and_can_be_retried() {
        let mut r = Record::new(1, "j", "u", 1, 10, 0);
        r.apply(Event::Indexed, 0).unwrap();
        r.apply(Event::Expired, 100).unwrap();
        assert_eq!((r.stage, r.bundle_bytes), (Stage::Failed, 10));
        assert!(!r.erase_due(150, 0, 1_000) && r.erase_due(1_100, 0, 1_000));
        r.apply(Event::Retry, 200).unwrap();
        assert_eq!((r.stage, r.next_attempt_at), (Stage::Queued, 200));
        r.apply(Event::AttemptFailed { error: "down".into(), backoff_ms: 5_000 }, 300).unwrap();
        r.apply(Event::Retry, 400).unwrap();
        assert!(r.due(400), "retry on a waiting job means now");
        r.apply(Event::Integrity("seal".into()), 500).unwrap();
        r.apply(Event::Restore, 600).unwrap();
        assert_eq!(r.stage, Stage::Queued);
        // Put back by the operator, a job's age starts again.
        r.aged_from = Some(0);
        r.apply(Event::Expired, 700).unwrap();
        r.apply(Event::Retry, 800).unwrap();
        assert_eq!((r.stage, r.aged_from), (Stage::Queued, None));
        // A refused job restored from quarantine stays refused; one whose zip may have landed
        // never expires.
        let mut f = Record::new(2, "k", "u", 1, 10, 0);
        f.apply(Event::Indexed, 0).unwrap();
        f.apply(Event::Refused { code: Some("2213".into()), error: "no".into() }, 1).unwrap();
        f.apply(Event::Integrity("seal".into()), 2).unwrap();
        f.apply(Event::Restore, 3).unwrap();
        assert_eq!((f.stage, f.last_code.as_deref()), (Stage::Failed, Some("2213")));
        let mut p = Record::new(3, "p", "u", 1, 10, 0);
        p.apply(Event::Indexed, 0).unwrap();
        p.apply(Event::Progress(Progress { prep_attempted: true, put_attempted: true, ..Default::default() }), 1)
            .unwrap();
        p.aged_from = Some(0);
        assert!(!p.expired(i64::MAX, 1) && p.apply(Event::Expired, 2).is_err());
    }

    #[test]
    fn ttl_and_retention() {
        let mut r = Record::new(1, "j", "u", 1, 10, 0);
        r.apply(Event::Indexed, 0).unwrap();
        assert!(!r.expired(101, 100), "not dated yet");
        r.aged_from = Some(0);
        assert!(!r.expired(10, 100) && r.expired(101, 100));
        r.apply(
            Event::Progress(Progress {
                uploaded: true,
                put_attempted: true,
                prep_attempted: true,
                smile_job_id: Some("1".into()),
            }),
            5,
        )
        .unwrap();
        assert!(!r.expired(1_000_000, 100), "uploaded jobs are Smile ID's now");
        r.apply(Event::Final { success: Some(true), result: serde_json::json!({}) }, 10).unwrap();
        assert!(!r.erase_due(15, 10, 0) && r.erase_due(20, 10, 0));
        r.apply(Event::Erased, 20).unwrap();
        assert!(!r.purge_due(25, 100) && r.purge_due(110, 100));
    }
}
