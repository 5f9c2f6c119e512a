//! The uplink loop: drains the queue oldest first whenever the link is there.
//!
//! Each pass: if anything is due, a link probe (a TLS handshake and HTTP answer from the API
//! host, not a ping; skipped when the last pass ended with the link up less than 30 s ago), a
//! clock check against the answer's `Date` (a good one confirms the clock to the queue, a bad
//! one withdraws the confirmation), then housekeeping (dating, expiry, erasure, purge: the
//! queue does what is timed only on a confirmed clock), then the due jobs oldest first,
//! `parallel_uploads` at a time on their own connections. Failures move a job's
//! `next_attempt_at` by exponential backoff with jitter; a dead link, refused credentials
//! (2204/2205), an API that answers without Smile ID's codes (a wrong URL) or a wrong clock stop
//! the pass and show in the status instead of burning through the queue. No job fails for any
//! of those: only Smile ID's verdict ends a job. With the key on the device, the first probe
//! that finds the link up also asks Smile ID whether it takes the credentials (a signed call
//! that makes no job), so refused ones pause the kiosk before the first customer's job waits.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::queue::machine::backoff_ms;
use crate::queue::{Event as QEvent, Queue, QueueError, QueueStats, Record};
use crate::smileid::signature::Signer;
use crate::smileid::submit::{HttpRequest, Method, Outcome, Submission, SubmitConfig, SubmitError};
use crate::smileid::timestamp::UnixMillis;
use crate::store::write_private;

use super::drive::{clock_skew_secs, drive, DriveError, Event, RetryPolicy};
use super::http::HttpClient;

/// Uplink tuning, from `[uplink]` in the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UplinkSettings {
    /// First per-job retry delay; doubles per failure up to `max_backoff_secs`, with jitter.
    pub base_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// How long to wait before asking again after credentials were refused.
    pub paused_retry_secs: u64,
    /// Largest accepted difference between the kiosk's clock and the server's.
    pub max_clock_skew_secs: u64,
    /// Time between passes when idle.
    pub idle_poll_secs: u64,
    /// Longest wait between link probes while the link is down (they back off up to this).
    pub max_probe_interval_secs: u64,
    /// Jobs sent at once, each on its own connection: while one waits a round trip for an
    /// answer, the other keeps the link busy (on 2G a round trip is ~0.3 s).
    pub parallel_uploads: usize,
}

impl Default for UplinkSettings {
    fn default() -> Self {
        UplinkSettings {
            base_backoff_secs: 2,
            max_backoff_secs: 900,
            paused_retry_secs: 300,
            max_clock_skew_secs: 300,
            idle_poll_secs: 5,
            max_probe_interval_secs: 60,
            parallel_uploads: 2,
        }
    }
}

/// The link as last seen, for status output and the idle screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "link", rename_all = "snake_case")]
pub enum LinkState {
    Unknown,
    Up,
    Down {
        error: String,
    },
    /// Credentials refused: nothing is sent until `retry_at`.
    Paused {
        error: String,
        retry_at: i64,
    },
    ClockWrong {
        skew_secs: i64,
        /// The skew is a bound (from the server's certificate), not a measurement.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        at_least: bool,
    },
}

impl LinkState {
    /// The state without what the server or the network said about it.
    pub fn without_detail(self) -> LinkState {
        let error = "the reason is shown to callers with a role ([api] operators or admins)".to_string();
        match self {
            LinkState::Down { .. } => LinkState::Down { error },
            LinkState::Paused { retry_at, .. } => LinkState::Paused { error, retry_at },
            other => other,
        }
    }
}

/// The link state as the uplink last saw it, shared with the rest of the running agent (the
/// idle screen, health) without a trip through `status.json`.
pub type LinkWatch = Arc<std::sync::Mutex<LinkState>>;

/// What `kiosk-agent status` shows (written to `state_dir/status.json` after every pass).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub updated_at: String,
    #[serde(flatten)]
    pub link: LinkState,
    pub queue: serde_json::Value,
}

/// One job's result in a pass.
#[derive(Debug)]
pub struct Delivered {
    pub record: Record,
    pub outcome: Result<Outcome, String>,
}

pub struct Uplink<'a> {
    pub queue: &'a Queue,
    pub http: &'a HttpClient,
    pub signer: &'a dyn Signer,
    pub cfg: SubmitConfig,
    pub settings: UplinkSettings,
    pub link: LinkState,
    pub status_file: Option<PathBuf>,
    /// Given the link state after every pass.
    pub link_watch: Option<LinkWatch>,
    /// The loop's last sign of life (pass started, request sent), for the watchdog: boot-clock
    /// ms ([`crate::clock::boot_ms`]), which setting the clock does not move.
    pub heartbeat: Arc<AtomicI64>,
    /// When a pass last ended with the link up: a pass soon after needs no probe.
    last_up_at: Option<std::time::Instant>,
    /// While paused, when to ask again (monotonic: a clock jump cannot stretch a pause).
    paused_until: Option<std::time::Instant>,
    /// The link state last written to the log: a change is logged once, not every pass.
    logged_link: Option<LinkState>,
    /// When an idle kiosk last probed the API host (link state, clock).
    idle_probed: Option<std::time::Instant>,
    /// Smile ID answered the credentials check without refusing them: not asked again.
    credentials_settled: bool,
    /// Deliveries, refusals and upload times are counted here; the queue and link state are
    /// left in its snapshot after every pass.
    pub metrics: Arc<crate::metrics::Registry>,
}

/// How often an idle kiosk asks the API host whether it is there and what time it is.
const IDLE_PROBE: Duration = Duration::from_secs(5 * 60);

/// A link that worked this recently is not probed again: every answer's `Date` is checked anyway.
const PROBE_SKIP: Duration = Duration::from_secs(30);

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b) as f64 / u16::MAX as f64
}

impl<'a> Uplink<'a> {
    pub fn new(
        queue: &'a Queue,
        http: &'a HttpClient,
        signer: &'a dyn Signer,
        cfg: SubmitConfig,
        settings: UplinkSettings,
    ) -> Self {
        Uplink {
            queue,
            http,
            signer,
            cfg,
            settings,
            link: LinkState::Unknown,
            status_file: None,
            link_watch: None,
            heartbeat: Default::default(),
            last_up_at: None,
            paused_until: None,
            logged_link: None,
            idle_probed: None,
            credentials_settled: false,
            metrics: Default::default(),
        }
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_failures: 3,
            max_clock_skew: Duration::from_secs(self.settings.max_clock_skew_secs),
            ..RetryPolicy::default()
        }
    }

    /// Reaches the API host over TLS; any HTTP answer means the link works. Returns the clock skew;
    /// a certificate not yet valid by this clock is [`super::http::HttpError::ClockBehind`].
    pub fn probe(&self) -> Result<Option<i64>, super::http::HttpError> {
        let root = super::http::origin_of(&self.cfg.base_url);
        let req = HttpRequest {
            method: Method::Get,
            url: format!("{root}/"),
            content_type: "application/json",
            body: Vec::new(),
        };
        let resp = self.http.execute(&req)?;
        Ok(resp.date.as_deref().and_then(|d| clock_skew_secs(d, UnixMillis::now())))
    }

    fn per_job_backoff(&self, r: &Record) -> u64 {
        backoff_ms(r.attempts, self.settings.base_backoff_secs * 1000, self.settings.max_backoff_secs * 1000, jitter())
    }

    /// The longest a job can legitimately wait for its next try; a longer wait means the clock
    /// jumped back since it was set.
    fn max_wait_ms(&self) -> i64 {
        let s = &self.settings;
        (s.max_backoff_secs.max(s.paused_retry_secs).saturating_mul(2000)).min(i64::MAX as u64) as i64
    }

    /// One pass over the queue. Returns what happened to each job it tried.
    pub fn pass(&mut self, on_event: impl FnMut(&Record, &Event) + Send) -> Result<Vec<Delivered>, QueueError> {
        self.pass_keeping(on_event, true)
    }

    /// One pass; with `keep` false the outcomes are not collected (a long-running drain would
    /// hold every job's result until the pass ends: 16 KB a job, 16 MB over 1,000 jobs).
    fn pass_keeping(
        &mut self,
        on_event: impl FnMut(&Record, &Event) + Send,
        keep: bool,
    ) -> Result<Vec<Delivered>, QueueError> {
        let now = UnixMillis::now().0;
        self.heartbeat.store(crate::clock::boot_ms(), Ordering::Relaxed);
        if self.queue.take_wake() {
            // The operator asked for a try now (`queue retry`): that ends a pause too.
            self.paused_until = None;
        }
        if self.paused_until.is_some_and(|t| std::time::Instant::now() < t) {
            self.write_status();
            return Ok(Vec::new());
        }
        // A wrong clock set every job's next try by it: once it is right again (NTP set it back
        // an hour), none waits out that hour. Every waiting job is due, and the probe decides.
        let max_wait = if matches!(self.link, LinkState::ClockWrong { .. }) { 0 } else { self.max_wait_ms() };
        if self.queue.due(now, max_wait)?.is_empty() {
            // Nothing to send, but the idle screen and health say whether the kiosk is online,
            // and finished or failed jobs wait on a confirmed clock for their retention: an idle
            // kiosk asks the API host now and then (once at start, then every few minutes; while
            // the link is down or the clock wrong, each time `run`'s backoff comes round, so a
            // return shows within `max_probe_interval_secs`).
            let down = matches!(self.link, LinkState::Down { .. } | LinkState::ClockWrong { .. });
            if down || self.idle_probed.is_none_or(|t| t.elapsed() >= IDLE_PROBE) {
                self.idle_probed = Some(std::time::Instant::now());
                self.check_link();
            }
            log_housekeeping(self.queue.housekeeping()?);
            self.write_status();
            return Ok(Vec::new());
        }
        let recently_up = self.link == LinkState::Up && self.last_up_at.is_some_and(|t| t.elapsed() < PROBE_SKIP);
        if !recently_up && !self.check_link() {
            self.write_status();
            return Ok(Vec::new());
        }
        if recently_up {
            self.paused_until = None;
        }
        // After the clock check: what is timed runs only on a confirmed clock.
        log_housekeeping(self.queue.housekeeping()?);
        // The fleet sees the jobs now going up as waiting while the pass takes them (minutes on
        // a slow link), not the figures from before they were captured.
        self.write_status();
        let due = self.queue.due(UnixMillis::now().0, max_wait)?;
        // Workers take jobs oldest first; a stop (link, credentials, clock) ends the pass for all.
        let todo = Mutex::new(VecDeque::from(due));
        let out = Mutex::new(Vec::new());
        let finished = std::sync::atomic::AtomicUsize::new(0);
        let stop: Mutex<Option<LinkState>> = Mutex::new(None);
        let failed: Mutex<Option<QueueError>> = Mutex::new(None);
        let on_event = Mutex::new(on_event);
        let this = &*self;
        let worker = || loop {
            if lock(&stop).is_some() || lock(&failed).is_some() {
                return;
            }
            let Some(mut rec) = lock(&todo).pop_front() else { return };
            match this.one(&mut rec, &|r: &Record, ev: &Event| (lock(&on_event))(r, ev)) {
                Ok((delivered, link)) => {
                    finished.fetch_add(1, Ordering::Relaxed);
                    // A job's buffers are freed now; give their pages back rather than keep them.
                    crate::memory::release_free_memory();
                    if keep {
                        lock(&out).push(delivered);
                    }
                    if link.is_some() {
                        *lock(&stop) = link;
                    }
                }
                Err(e) => *lock(&failed) = Some(e),
            }
        };
        // Two uploads started together share the link evenly, finish together and then wait out
        // their round trips (answer, job_status, next prep_upload) together, leaving the link idle.
        // Each further worker starts once the uploads so far have sent half a job (or a job is
        // done: one that only needed its result polled sends nothing), so one's round trips fall
        // in another's upload.
        let half_job = lock(&todo).front().map_or(0, |r| r.bundle_bytes / 2);
        let start = self.http.bytes_sent();
        std::thread::scope(|s| {
            s.spawn(worker);
            for k in 1..self.settings.parallel_uploads.max(1) as u64 {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while self.http.bytes_sent() < start + k * half_job
                    && (finished.load(Ordering::Relaxed) as u64) < k
                    && std::time::Instant::now() < deadline
                    && !lock(&todo).is_empty()
                    && lock(&stop).is_none()
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                s.spawn(worker);
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        if let Some(link) = stop.into_inner().unwrap_or_else(|e| e.into_inner()) {
            match &link {
                LinkState::Paused { .. } => {
                    let wait = Duration::from_secs(self.settings.paused_retry_secs);
                    self.paused_until = Some(std::time::Instant::now() + wait);
                }
                LinkState::ClockWrong { .. } => self.queue.distrust_clock(),
                _ => {}
            }
            self.link = link;
        }
        let mut out = out.into_inner().unwrap_or_else(|e| e.into_inner());
        out.sort_by_key(|d| d.record.seq);
        self.last_up_at = (self.link == LinkState::Up).then(std::time::Instant::now);
        log_housekeeping(self.queue.housekeeping()?);
        self.write_status();
        Ok(out)
    }

    /// Submits one job. The link state comes back when the pass must stop (link, credentials
    /// or clock).
    fn one(
        &self,
        rec: &mut Record,
        on_event: &dyn Fn(&Record, &Event),
    ) -> Result<(Delivered, Option<LinkState>), QueueError> {
        match self.submit(rec, on_event) {
            // The operator purged the job, or changed it, while it was on its way: their word stands.
            Err(e @ (QueueError::NotFound(_) | QueueError::Transition(_))) => {
                crate::log::info(
                    &format!("job {} changed by the operator during its upload: {e}", rec.job_id),
                    &[("JOB_ID", &rec.job_id)],
                );
                Ok((Delivered { record: rec.clone(), outcome: Err(e.to_string()) }, None))
            }
            r => r,
        }
    }

    fn submit(
        &self,
        rec: &mut Record,
        on_event: &dyn Fn(&Record, &Event),
    ) -> Result<(Delivered, Option<LinkState>), QueueError> {
        let started = std::time::Instant::now();
        // Delivered once, when its zip is first known to have landed: whether the result comes
        // in this attempt, a later one or a later process.
        let landed = |before: &crate::smileid::submit::Progress, now: &crate::smileid::submit::Progress| {
            if now.uploaded && !before.uploaded {
                self.metrics.job_delivered(started.elapsed().as_secs_f64(), UnixMillis::now().0 / 1000);
            }
        };
        let job = match self.queue.load_job(rec) {
            Ok(j) => j,
            Err(QueueError::Bundle(e)) => {
                // Unreadable but not damaged (permissions, I/O): tried again later, never dropped.
                if !matches!(e, crate::bundle::BundleError::Corrupt { .. }) {
                    let backoff = self.per_job_backoff(rec);
                    self.queue.apply(rec, QEvent::AttemptFailed { error: e.to_string(), backoff_ms: backoff })?;
                } else {
                    // The queue has set it aside (quarantine).
                    self.metrics.jobs_quarantined.fetch_add(1, Ordering::Relaxed);
                }
                return Ok((Delivered { record: rec.clone(), outcome: Err(e.to_string()) }, None));
            }
            Err(e) => return Err(e),
        };
        let mut sub = match Submission::resume(job, self.cfg.clone(), rec.progress.clone()) {
            Ok(s) => s,
            Err(e) => {
                self.queue.apply(rec, QEvent::Refused { code: None, error: e.to_string() })?;
                return Ok((Delivered { record: rec.clone(), outcome: Err(e.to_string()) }, None));
            }
        };
        let mut save_err = None;
        let policy = self.policy();
        let heartbeat = self.heartbeat.clone();
        let result = drive(&mut sub, self.http, self.signer, &policy, |ev, progress| {
            heartbeat.store(crate::clock::boot_ms(), Ordering::Relaxed);
            // Saved before the request leaves: after a crash, the next try knows what may have
            // reached Smile ID (a 2215 is ours; a PUT may have landed).
            if *progress != rec.progress {
                let before = rec.progress.clone();
                if let Err(e) = self.queue.apply(rec, QEvent::Progress(progress.clone())) {
                    let why = e.to_string();
                    save_err = Some(e);
                    return Err(why);
                }
                // Once saved: a landing not saved is found again, and counted, by the next try.
                landed(&before, progress);
            }
            on_event(rec, ev);
            Ok(())
        });
        if let Some(e) = save_err {
            return Err(e);
        }
        if *sub.progress() != rec.progress {
            let before = rec.progress.clone();
            self.queue.apply(rec, QEvent::Progress(sub.progress().clone()))?;
            landed(&before, sub.progress());
        }
        let backoff = self.per_job_backoff(rec);
        let (outcome, stop) = match result {
            Ok(o) => {
                match &o {
                    Outcome::Completed(s) => self
                        .queue
                        .apply(rec, QEvent::Final { success: Some(s.job_success), result: s.result.clone() })?,
                    Outcome::Submitted { .. } => self.queue.apply(
                        rec,
                        QEvent::Final {
                            success: None,
                            result: serde_json::json!({"note": "result sent to callback_url"}),
                        },
                    )?,
                    Outcome::PollingExhausted { .. } => self.queue.apply(
                        rec,
                        QEvent::AttemptFailed {
                            error: "uploaded; no final result yet, will ask again".into(),
                            backoff_ms: backoff,
                        },
                    )?,
                    Outcome::Failed(e) => {
                        self.queue.apply(rec, QEvent::Refused { code: e.code.clone(), error: e.to_string() })?
                    }
                }
                // With no retention the result itself says the images go: now, not at the pass's end.
                if rec.stage == crate::queue::Stage::Result && self.queue.settings().image_retention_secs == 0 {
                    // A file that will not go now goes at the next housekeeping or open.
                    if let Err(e) = self.queue.erase_images(rec) {
                        crate::log::warn(&format!("job {}: {e}", rec.job_id), &[("JOB_ID", &rec.job_id)]);
                    }
                }
                (Ok(o), None)
            }
            Err(e) => {
                let msg = match &e {
                    DriveError::Sign(s) if self.signer.missing().is_some() => s.message.clone(),
                    DriveError::Sign(s) if s.refused => format!(
                        "uploads are paused, every job kept, because the signer refused this kiosk: {}. Check the device token (smileid.device_token_file) or auth_token (smileid.auth_token_file) and the signer; the service reads them when it starts, so restart it after changing them (`systemctl restart kiosk-agent`)",
                        s.message
                    ),
                    e => e.to_string(),
                };
                let pauses = matches!(&e, DriveError::Paused(_) | DriveError::Misdirected { .. })
                    || matches!(&e, DriveError::Sign(s) if s.refused);
                let stop = match &e {
                    _ if pauses => {
                        let retry_at = UnixMillis::now().0 + self.settings.paused_retry_secs as i64 * 1000;
                        Some(LinkState::Paused { error: msg.clone(), retry_at })
                    }
                    DriveError::ClockWrong { skew_secs, at_least } => {
                        Some(LinkState::ClockWrong { skew_secs: *skew_secs, at_least: *at_least })
                    }
                    DriveError::GaveUp { last: SubmitError::Transport(t), .. } => {
                        Some(LinkState::Down { error: t.clone() })
                    }
                    // Answers nobody can read, every time (a portal's JSON?): nothing goes up.
                    DriveError::GaveUp { last: last @ SubmitError::BadResponse { .. }, .. } => {
                        Some(LinkState::Down { error: last.to_string() })
                    }
                    _ => None,
                };
                // A stop of the whole queue (link, credentials, URL, clock) is not this job's fault:
                // it waits on the queue's pause, not on a backoff of its own.
                let backoff_ms = if stop.is_some() { 0 } else { backoff };
                self.queue.apply(rec, QEvent::AttemptFailed { error: msg.clone(), backoff_ms })?;
                (Err(msg), stop)
            }
        };
        log_outcome(rec, &outcome);
        if let Ok(Outcome::Completed(s)) = &outcome {
            self.metrics.job_result(s.job_success);
        }
        // Counted once per job: one refused again after an operator's retry is not a new one.
        if let Ok(Outcome::Failed(e)) = &outcome {
            if rec.refusals == 1 {
                self.metrics.job_failed(e.code.as_deref());
            }
        }
        Ok((Delivered { record: rec.clone(), outcome }, stop))
    }

    pub fn status(&self) -> Status {
        let stats = self.queue.stats().unwrap_or_default();
        Status { updated_at: UnixMillis::now().to_iso(), link: self.link.clone(), queue: stats_json(&stats) }
    }

    /// Probes the API host: the link is up (and the clock confirmed by its `Date`), down, or
    /// the clock is wrong. True when jobs may be sent.
    fn check_link(&mut self) -> bool {
        // Nothing can be signed: said whether or not the API host answers, with no time to ask
        // again at (0: only a restart reads the credential), the same state each pass, said once.
        if let Some(why) = self.signer.missing() {
            self.link = LinkState::Paused { error: why.to_string(), retry_at: 0 };
            return false;
        }
        match self.probe() {
            Err(e) => {
                self.link = match e.clock_behind_secs() {
                    Some(behind) => {
                        self.queue.distrust_clock();
                        LinkState::ClockWrong { skew_secs: -(behind as i64), at_least: true }
                    }
                    None => LinkState::Down { error: e.to_string() },
                };
                false
            }
            Ok(Some(skew)) if skew.unsigned_abs() > self.settings.max_clock_skew_secs => {
                self.queue.distrust_clock();
                self.link = LinkState::ClockWrong { skew_secs: skew, at_least: false };
                false
            }
            Ok(skew) => {
                if skew.is_some() {
                    self.queue.confirm_clock();
                }
                if let Some(refused) = self.credentials_refused() {
                    if refused.class == crate::smileid::wire::RetryClass::Misdirected {
                        // A Wi-Fi login page or a proxy answers in Smile ID's place: not reached.
                        let root = super::http::origin_of(&self.cfg.base_url);
                        self.link = LinkState::Down { error: format!("{root} answered {}", refused.message) };
                        return false;
                    }
                    let error = DriveError::Paused(SubmitError::Api(refused)).to_string();
                    let retry_at = UnixMillis::now().0 + self.settings.paused_retry_secs as i64 * 1000;
                    self.link = LinkState::Paused { error, retry_at };
                    self.paused_until =
                        Some(std::time::Instant::now() + Duration::from_secs(self.settings.paused_retry_secs));
                    return false;
                }
                self.link = LinkState::Up;
                self.paused_until = None;
                true
            }
        }
    }

    /// Smile ID's refusal of this kiosk's credentials, asked once until it answers otherwise
    /// (and again after each refusal: a pause ends in a new check). Only with a key on the device.
    /// A page that is not Smile ID's answer settles nothing either, and comes back classed
    /// [`crate::smileid::wire::RetryClass::Misdirected`].
    fn credentials_refused(&mut self) -> Option<crate::smileid::wire::ApiError> {
        if self.credentials_settled || !self.signer.signs_without_a_job() {
            return None;
        }
        let ctx = crate::smileid::signature::SignContext { job_type: 0, job_id: "", user_id: "" };
        let signed = self.signer.sign(UnixMillis::now(), &ctx).ok()?;
        let req = crate::smileid::credentials_check_request(&self.cfg.partner_id, &self.cfg.base_url, &signed);
        // The network failing now settles nothing: asked again at the next probe.
        let resp = self.http.execute(&req).ok()?;
        if resp.status == 404 {
            // Smile ID's API always has this call: a root without it is likely not the API's.
            crate::log::warn(
                &format!(
                    "{} answered 404 (no such call) to a signed valid_documents: smileid.environment may not be Smile ID's v1 API root; jobs are kept, and paused if their own requests are refused too",
                    req.url
                ),
                &[],
            );
        }
        if let Some(page) = crate::smileid::not_a_credentials_answer(resp.status, &resp.body) {
            return Some(page);
        }
        let refused = crate::smileid::credentials_refused(resp.status, &resp.body);
        self.credentials_settled = refused.is_none();
        refused
    }

    fn write_status(&mut self) {
        if self.logged_link.as_ref() != Some(&self.link) && self.link != LinkState::Unknown {
            let (name, detail) = match &self.link {
                LinkState::Up => ("up", "Smile ID's API is reachable".to_string()),
                LinkState::Down { error } => ("down", format!("Smile ID's API is unreachable: {error}")),
                LinkState::Paused { error, .. } => ("paused", error.clone()),
                LinkState::ClockWrong { skew_secs, at_least } => (
                    "clock_wrong",
                    format!(
                        "{}; nothing is signed until NTP fixes it",
                        super::drive::clock_words(*skew_secs, *at_least)
                    ),
                ),
                LinkState::Unknown => ("unknown", String::new()),
            };
            let level = if name == "up" { crate::log::Level::Info } else { crate::log::Level::Warning };
            crate::log::log(level, &format!("link {name}: {detail}"), &[("LINK", name)]);
            self.logged_link = Some(self.link.clone());
        }
        if let Some(w) = &self.link_watch {
            *w.lock().unwrap_or_else(|e| e.into_inner()) = self.link.clone();
        }
        let stats = self.queue.stats().unwrap_or_default();
        self.metrics.set_snapshot(self.snapshot(&stats));
        if let Some(p) = &self.status_file {
            // Status holds counts and link state only, no personal data.
            let status =
                Status { updated_at: UnixMillis::now().to_iso(), link: self.link.clone(), queue: stats_json(&stats) };
            let _ = write_private(p, &serde_json::to_vec_pretty(&status).unwrap_or_default());
        }
    }

    /// The queue and link as the fleet's metrics show them.
    fn snapshot(&self, stats: &QueueStats) -> crate::metrics::Snapshot {
        use crate::metrics::Link;
        crate::metrics::Snapshot {
            pending: stats.pending,
            failed: stats.failed,
            quarantined: stats.quarantined,
            finished: stats.finished,
            bundle_bytes: stats.bundle_bytes,
            free_bytes: stats.free_bytes,
            oldest_undelivered_at: stats.oldest_undelivered_at.map(|t| t as f64 / 1000.0),
            oldest_awaiting_result_at: stats.oldest_awaiting_result_at.map(|t| t as f64 / 1000.0),
            link: match self.link {
                LinkState::Unknown => Link::Unknown,
                LinkState::Up => Link::Up,
                LinkState::Down { .. } => Link::Down,
                LinkState::Paused { .. } => Link::Paused,
                LinkState::ClockWrong { .. } => Link::ClockWrong,
            },
            // The devices' and the state dir's: the front desk's to set.
            camera_present: None,
            display_present: None,
            button_present: None,
            storage_writable: None,
            storage_full: None,
        }
    }

    /// Passes until `stop` is set, or (with `exit_when_idle`) until nothing is pending.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        exit_when_idle: bool,
        mut on_event: impl FnMut(&Record, &Event) + Send,
    ) -> Result<(), QueueError> {
        // Consecutive passes that found the link down: probing backs off too, with jitter, so a
        // fleet of kiosks does not hammer the API host the moment a cell tower returns.
        let mut down_streak = 0u32;
        while !stop.load(Ordering::Relaxed) {
            // A pass that fails (the index, the disk) is reported and tried again; the agent
            // stays up for the person at the screen rather than crash-looping under systemd.
            let failed = match self.pass_keeping(&mut on_event, false) {
                Ok(_) => false,
                Err(e) if exit_when_idle => return Err(e),
                Err(e) => {
                    crate::log::log(crate::log::Level::Error, &format!("upload pass failed: {e}"), &[]);
                    true
                }
            };
            let stats = self.queue.stats()?;
            if exit_when_idle && stats.pending == 0 {
                return Ok(());
            }
            let now = UnixMillis::now().0;
            let next_due = self
                .queue
                .list()?
                .iter()
                .filter(|r| r.stage.is_pending())
                .map(|r| r.next_attempt_at.min(now + self.max_wait_ms()))
                .min();
            let idle_ms = self.settings.idle_poll_secs * 1000;
            // A wrong clock is asked about as a dead link is: soon, then less often.
            let held = matches!(self.link, LinkState::Down { .. } | LinkState::ClockWrong { .. });
            down_streak = if held { down_streak + 1 } else { 0 };
            let wait = match (&self.link, next_due) {
                (LinkState::Up, Some(t)) => (t - now).clamp(0, idle_ms as i64),
                (LinkState::Down { .. } | LinkState::ClockWrong { .. }, _) => {
                    backoff_ms(down_streak - 1, idle_ms, self.settings.max_probe_interval_secs * 1000, jitter()) as i64
                }
                _ => idle_ms as i64,
            };
            // On the monotonic clock: NTP setting the wall clock back an hour must not hold the
            // next pass for an hour.
            let wait = if failed { wait.max(idle_ms as i64) } else { wait };
            let deadline = std::time::Instant::now() + Duration::from_millis(wait.max(0) as u64);
            while std::time::Instant::now() < deadline && !stop.load(Ordering::Relaxed) && !self.queue.wake_pending() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

fn log_housekeeping(h: crate::queue::Housekeeping) {
    if h.expired + h.erased + h.purged > 0 {
        crate::log::info(
            &format!(
                "housekeeping: {} job(s) expired (images kept for retry), images of {} erased, {} record(s) removed",
                h.expired, h.erased, h.purged
            ),
            &[],
        );
    }
}

/// Each job's step in the operator's log, with the journal fields JOB_ID, STAGE and SMILE_CODE.
fn log_outcome(rec: &Record, outcome: &Result<Outcome, String>) {
    use crate::log::Level;
    let stage = rec.stage.as_str();
    let (level, message, code) = match outcome {
        Ok(Outcome::Completed(s)) => {
            let code = s.result_code().unwrap_or("").to_string();
            (Level::Info, format!("job {}: Smile ID's result is in (success: {})", rec.job_id, s.job_success), code)
        }
        Ok(Outcome::Submitted { .. }) => {
            (Level::Info, format!("job {}: uploaded; the result goes to the callback URL", rec.job_id), String::new())
        }
        Ok(Outcome::PollingExhausted { .. }) => {
            (Level::Info, format!("job {}: uploaded; no result yet, asked again later", rec.job_id), String::new())
        }
        Ok(Outcome::Failed(e)) => (
            Level::Warning,
            format!("job {}: refused by Smile ID: {e}", rec.job_id),
            e.code.clone().unwrap_or_default(),
        ),
        Err(e) => (Level::Warning, format!("job {}: not delivered this time: {e}", rec.job_id), String::new()),
    };
    let mut fields = vec![("JOB_ID", rec.job_id.as_str()), ("STAGE", stage)];
    if !code.is_empty() {
        fields.push(("SMILE_CODE", code.as_str()));
    }
    crate::log::log(level, &message, &fields);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn stats_json(s: &QueueStats) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or_default()
}
