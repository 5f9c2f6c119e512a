//! Fleet metrics in Prometheus' text format. The agent's parts count what happens into a
//! [`Registry`] (jobs captured, delivered, refused by code, sessions by outcome, upload and
//! capture times, job sizes, the camera's sharpness and brightness); the state that is read
//! rather than counted (queue depth by stage, the oldest pending job, the link, free storage,
//! the camera) comes in a [`Snapshot`] the uplink refreshes after each pass. [`expose`] writes
//! both; it is pure and walks no job, so a scrape costs the same whatever the kiosk's history.
//! [`listen`] serves it over TCP for Prometheus.

pub mod listen;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::vision::quality::Hint;

/// How a session ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Captured and queued.
    Completed,
    /// The person said no.
    Declined,
    /// Nobody answered the consent screen (the person walked away).
    Abandoned,
    /// The capture's time limit passed (counted with the hint that was showing).
    TimedOut,
    /// The host application cancelled it.
    Cancelled,
    /// Liveness refused it: a photo or a screen.
    Refused,
    /// The camera, the storage or the job failed.
    Failed,
}

impl SessionOutcome {
    pub const ALL: [SessionOutcome; 7] = [
        SessionOutcome::Completed,
        SessionOutcome::Declined,
        SessionOutcome::Abandoned,
        SessionOutcome::TimedOut,
        SessionOutcome::Cancelled,
        SessionOutcome::Refused,
        SessionOutcome::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SessionOutcome::Completed => "completed",
            SessionOutcome::Declined => "declined",
            SessionOutcome::Abandoned => "abandoned",
            SessionOutcome::TimedOut => "timed_out",
            SessionOutcome::Cancelled => "cancelled",
            SessionOutcome::Refused => "refused",
            SessionOutcome::Failed => "failed",
        }
    }
}

/// The hints a capture can time out on, with their label values; "none" when none was showing.
const HINTS: [(Option<Hint>, &str); 15] = [
    (None, "none"),
    (Some(Hint::MoreLight), "more_light"),
    (Some(Hint::LessLight), "less_light"),
    (Some(Hint::HoldStill), "hold_still"),
    (Some(Hint::NoFace), "no_face"),
    (Some(Hint::OneFaceOnly), "one_face_only"),
    (Some(Hint::MoveCloser), "move_closer"),
    (Some(Hint::MoveBack), "move_back"),
    (Some(Hint::Centre), "centre"),
    (Some(Hint::MoveALittle), "move_a_little"),
    (Some(Hint::LookStraight), "look_straight"),
    (Some(Hint::TurnLeft), "turn_left"),
    (Some(Hint::TurnRight), "turn_right"),
    (Some(Hint::LookUp), "look_up"),
    (Some(Hint::StartAgain), "start_again"),
];

/// Smile ID's refusal codes are kept apart up to this many; further codes count as "other", so
/// a stream of odd answers cannot grow the registry.
pub const MAX_CODES: usize = 24;

/// The codes Smile ID ends a job with (protocol §6), counted from 0 at the start: a series that
/// appeared only with its first refusal would hide that refusal from `increase()`. They take
/// their places among [`MAX_CODES`].
pub const FINAL_CODES: [&str; 15] = [
    "2203", "2207", "2208", "2209", "2210", "2211", "2212", "2213", "2214", "2215", "2216", "2220", "2221", "2413",
    "2414",
];

/// A Prometheus histogram with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then +Inf; not cumulative (summed when written).
    counts: Vec<AtomicU64>,
    /// The sum in millionths, so that it is one atomic.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        let i = self.bounds.iter().position(|&b| v <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Relaxed);
            match self.bounds.get(i) {
                Some(b) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// A running mean's parts (a Prometheus summary without quantiles): `rate(_sum) / rate(_count)`
/// is the mean over any window, so a drifting camera shows as a trend.
#[derive(Default)]
pub struct Mean {
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Mean {
    pub fn observe(&self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {}", self.count.load(Relaxed));
    }
}

/// Why a session was refused: the control API's refusal codes the fleet watches, then "other".
pub const REFUSALS: [&str; 7] =
    ["storage_full", "storage_unwritable", "camera_missing", "display_missing", "session_running", "busy", "other"];

/// What the agent counts. One per running agent, shared by its parts.
pub struct Registry {
    pub jobs_captured: AtomicU64,
    pub jobs_delivered: AtomicU64,
    pub jobs_quarantined: AtomicU64,
    pub jobs_refused: AtomicU64,
    /// Codes, then "none" and "other".
    failed_by_code: Mutex<Vec<(String, u64)>>,
    /// Smile ID's results: jobs it processed with `job_success` false, and true.
    results: [AtomicU64; 2],
    sessions: [AtomicU64; 7],
    /// Sessions refused before they started, by [`REFUSALS`].
    refused: [AtomicU64; REFUSALS.len()],
    timeouts_by_hint: [AtomicU64; HINTS.len()],
    pub upload_seconds: Histogram,
    pub capture_seconds: Histogram,
    pub job_bytes: Histogram,
    pub frame_sharpness: Mean,
    pub frame_brightness: Mean,
    /// Unix seconds of the last job Smile ID took; 0 before the first.
    pub last_upload: AtomicI64,
    snapshot: Mutex<Snapshot>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            jobs_captured: AtomicU64::new(0),
            jobs_delivered: AtomicU64::new(0),
            jobs_quarantined: AtomicU64::new(0),
            jobs_refused: AtomicU64::new(0),
            failed_by_code: Mutex::new(
                FINAL_CODES.iter().chain(&["none", "other"]).map(|c| (c.to_string(), 0)).collect(),
            ),
            results: Default::default(),
            sessions: Default::default(),
            refused: Default::default(),
            timeouts_by_hint: Default::default(),
            // A job is ~130 KB: seconds on a good link, minutes on 2G.
            upload_seconds: Histogram::new(&[0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0]),
            capture_seconds: Histogram::new(&[5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0]),
            job_bytes: Histogram::new(&[32e3, 64e3, 128e3, 256e3, 512e3, 1e6, 2e6, 4e6]),
            frame_sharpness: Mean::default(),
            frame_brightness: Mean::default(),
            last_upload: AtomicI64::new(0),
            snapshot: Mutex::new(Snapshot::default()),
        }
    }
}

/// The link as the fleet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    #[default]
    Unknown,
    Up,
    Down,
    /// Credentials refused: nothing is sent until an operator fixes them.
    Paused,
    ClockWrong,
}

impl Link {
    const ALL: [(Link, &'static str); 5] = [
        (Link::Up, "up"),
        (Link::Down, "down"),
        (Link::Paused, "paused"),
        (Link::ClockWrong, "clock_wrong"),
        (Link::Unknown, "unknown"),
    ];
}

/// The state read rather than counted, as of the uplink's last pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub pending: usize,
    pub failed: usize,
    pub quarantined: usize,
    pub finished: usize,
    pub bundle_bytes: u64,
    pub free_bytes: Option<u64>,
    /// When the oldest job Smile ID does not have yet was captured (Unix seconds).
    pub oldest_undelivered_at: Option<f64>,
    /// When the oldest job Smile ID took but has not answered for was captured (Unix seconds).
    pub oldest_awaiting_result_at: Option<f64>,
    pub link: Link,
    /// Whether the camera could be opened at last look (`None` while a session holds it).
    pub camera_present: Option<bool>,
    /// Whether the screen's device is there (`None` before the front desk first looked).
    pub display_present: Option<bool>,
    /// Whether the GPIO button is read (`None` without one configured).
    pub button_present: Option<bool>,
    /// Whether the service may write where a job is saved (`None` before the first look).
    pub storage_writable: Option<bool>,
    /// No room for one more job (the queue at its job or byte limit, or the disk under
    /// `min_free_bytes`): sessions are refused (`None` before the first look).
    pub storage_full: Option<bool>,
}

/// Who this kiosk is, for the `kiosk_info` series.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub id: String,
    pub site: String,
    pub region: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    pub fn session_ended(&self, outcome: SessionOutcome, hint: Option<Hint>) {
        let i = SessionOutcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.sessions[i].fetch_add(1, Relaxed);
        if outcome == SessionOutcome::TimedOut {
            let h = HINTS.iter().position(|(x, _)| *x == hint).unwrap_or(0);
            self.timeouts_by_hint[h].fetch_add(1, Relaxed);
        }
    }

    /// A job Smile ID refused for good, by its result code.
    pub fn job_failed(&self, code: Option<&str>) {
        self.jobs_refused.fetch_add(1, Relaxed);
        let code = code.filter(|c| !c.is_empty() && c.len() <= 8 && c.bytes().all(|b| b.is_ascii_alphanumeric()));
        let mut m = lock(&self.failed_by_code);
        let key = match code {
            Some(c) if m.iter().any(|(k, _)| k == c) || m.len() - 2 < MAX_CODES => c,
            Some(_) => "other",
            None => "none",
        };
        match m.iter().position(|(k, _)| k == key) {
            Some(i) => m[i].1 += 1,
            // Before "none" and "other", which stay last.
            None => {
                let at = m.len() - 2;
                m.insert(at, (key.to_string(), 1))
            }
        }
    }

    /// Smile ID's result on a job it processed: `job_success` (a "no match" or a spoof is false).
    pub fn job_result(&self, success: bool) {
        self.results[success as usize].fetch_add(1, Relaxed);
    }

    /// A job that reached Smile ID after `seconds` of uploading (and polling).
    pub fn job_delivered(&self, seconds: f64, now_unix: i64) {
        self.jobs_delivered.fetch_add(1, Relaxed);
        self.upload_seconds.observe(seconds);
        self.last_upload.store(now_unix, Relaxed);
    }

    /// The queue and link as of a pass (the devices' presence is kept: the front desk sets it).
    pub fn set_snapshot(&self, s: Snapshot) {
        let mut cur = lock(&self.snapshot);
        *cur = Snapshot {
            camera_present: cur.camera_present,
            display_present: cur.display_present,
            button_present: cur.button_present,
            storage_writable: cur.storage_writable,
            storage_full: cur.storage_full,
            ..s
        };
    }

    pub fn set_camera_present(&self, present: bool) {
        lock(&self.snapshot).camera_present = Some(present);
    }

    pub fn set_display_present(&self, present: bool) {
        lock(&self.snapshot).display_present = Some(present);
    }

    pub fn set_button_present(&self, present: bool) {
        lock(&self.snapshot).button_present = Some(present);
    }

    pub fn set_storage_writable(&self, writable: bool) {
        lock(&self.snapshot).storage_writable = Some(writable);
    }

    pub fn set_storage_full(&self, full: bool) {
        lock(&self.snapshot).storage_full = Some(full);
    }

    /// A session refused before it started, by the refusal's code (the control API's).
    pub fn session_refused(&self, code: Option<&str>) {
        let last = REFUSALS.len() - 1;
        let i = REFUSALS.iter().position(|r| Some(*r) == code).unwrap_or(last);
        self.refused[i].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        *lock(&self.snapshot)
    }
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition: what `/metrics` answers.
pub fn expose(r: &Registry, who: &Identity, version: &str) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let s = r.snapshot();
    let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    let _ = writeln!(
        out,
        "# HELP kiosk_info The kiosk's identity and version (always 1).\n# TYPE kiosk_info gauge\n\
         kiosk_info{{kiosk_id=\"{}\",site=\"{}\",region=\"{}\",version=\"{}\"}} 1",
        label(&who.id),
        label(&who.site),
        label(&who.region),
        label(version)
    );
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter(&mut out, "kiosk_jobs_captured_total", "Jobs captured and queued.", r.jobs_captured.load(Relaxed));
    counter(&mut out, "kiosk_jobs_delivered_total", "Jobs Smile ID took.", r.jobs_delivered.load(Relaxed));
    counter(
        &mut out,
        "kiosk_jobs_quarantined_total",
        "Jobs whose bundle failed its integrity check.",
        r.jobs_quarantined.load(Relaxed),
    );
    // All refusals in one series that exists from the start (a code's own series appears with
    // its first refusal, which `increase()` cannot see), then by code.
    counter(
        &mut out,
        "kiosk_jobs_refused_total",
        "Jobs Smile ID refused for good, whatever the code.",
        r.jobs_refused.load(Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP kiosk_jobs_failed_total Jobs Smile ID refused for good, by its result code.\n\
         # TYPE kiosk_jobs_failed_total counter"
    );
    for (code, n) in lock(&r.failed_by_code).iter() {
        let _ = writeln!(out, "kiosk_jobs_failed_total{{code=\"{code}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP kiosk_jobs_results_total Jobs Smile ID processed, by its job_success.\n\
         # TYPE kiosk_jobs_results_total counter"
    );
    for (success, n) in ["false", "true"].iter().zip(&r.results) {
        let _ = writeln!(out, "kiosk_jobs_results_total{{success=\"{success}\"}} {}", n.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP kiosk_sessions_total Sessions at the kiosk, by how they ended.\n# TYPE kiosk_sessions_total counter"
    );
    for (o, n) in SessionOutcome::ALL.iter().zip(&r.sessions) {
        let _ = writeln!(out, "kiosk_sessions_total{{outcome=\"{}\"}} {}", o.label(), n.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP kiosk_sessions_refused_total Sessions refused before they started (people turned away), by why.\n\
         # TYPE kiosk_sessions_refused_total counter"
    );
    for (reason, n) in REFUSALS.iter().zip(&r.refused) {
        let _ = writeln!(out, "kiosk_sessions_refused_total{{reason=\"{reason}\"}} {}", n.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP kiosk_session_timeouts_total Captures that ran out of time, by the hint showing then.\n\
         # TYPE kiosk_session_timeouts_total counter"
    );
    for ((_, name), n) in HINTS.iter().zip(&r.timeouts_by_hint) {
        let _ = writeln!(out, "kiosk_session_timeouts_total{{hint=\"{name}\"}} {}", n.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP kiosk_queue_jobs Jobs on the kiosk by stage.\n# TYPE kiosk_queue_jobs gauge\n\
         kiosk_queue_jobs{{stage=\"pending\"}} {}\nkiosk_queue_jobs{{stage=\"failed\"}} {}\n\
         kiosk_queue_jobs{{stage=\"quarantined\"}} {}\nkiosk_queue_jobs{{stage=\"finished\"}} {}",
        s.pending, s.failed, s.quarantined, s.finished
    );
    gauge(&mut out, "kiosk_queue_bundle_bytes", "Bytes of job bundles on disk.", s.bundle_bytes as f64);
    // A time, not an age: `time() - x` stays right between the uplink's passes.
    gauge(
        &mut out,
        "kiosk_queue_oldest_undelivered_timestamp_seconds",
        "When the oldest job not yet sent to Smile ID was captured (Unix time; 0 when none waits).",
        s.oldest_undelivered_at.unwrap_or(0.0),
    );
    gauge(
        &mut out,
        "kiosk_queue_oldest_awaiting_result_timestamp_seconds",
        "When the oldest job Smile ID took but has given no result for was captured (Unix time; 0 when none).",
        s.oldest_awaiting_result_at.unwrap_or(0.0),
    );
    // The kiosk's own clock, as node_exporter's node_time_seconds: Prometheus compares it with
    // the scrape's time (`kiosk_time_seconds - timestamp(kiosk_time_seconds)`), so a clock gone
    // wrong shows while the uplink is down too, before a signature is refused for it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    gauge(
        &mut out,
        "kiosk_time_seconds",
        "The kiosk's wall clock when scraped (Unix time).",
        (now * 1000.0).round() / 1000.0,
    );
    let _ = writeln!(
        out,
        "# HELP kiosk_link_state The uplink's state: 1 for the current one.\n# TYPE kiosk_link_state gauge"
    );
    for (l, name) in Link::ALL {
        let _ = writeln!(out, "kiosk_link_state{{state=\"{name}\"}} {}", (s.link == l) as u8);
    }
    if let Some(free) = s.free_bytes {
        gauge(&mut out, "kiosk_storage_free_bytes", "Free bytes on the state file system.", free as f64);
    }
    if let Some(present) = s.camera_present {
        gauge(
            &mut out,
            "kiosk_camera_present",
            "1 when the camera's device was there at the last look (0 also when it failed to open).",
            present as u8 as f64,
        );
    }
    if let Some(present) = s.display_present {
        gauge(
            &mut out,
            "kiosk_display_present",
            "1 when the screen's device is there (0: no sessions until it is).",
            present as u8 as f64,
        );
    }
    if let Some(present) = s.button_present {
        gauge(
            &mut out,
            "kiosk_button_present",
            "1 when the GPIO button is read (0: it is looked for again; the screens offer no button).",
            present as u8 as f64,
        );
    }
    if let Some(full) = s.storage_full {
        gauge(
            &mut out,
            "kiosk_storage_full",
            "1 when there is no room for one more job (the queue at its limit, or the disk low): sessions are refused.",
            full as u8 as f64,
        );
    }
    if let Some(writable) = s.storage_writable {
        gauge(
            &mut out,
            "kiosk_storage_writable",
            "1 when the service may write where jobs are saved (0: no session starts).",
            writable as u8 as f64,
        );
    }
    gauge(
        &mut out,
        "kiosk_last_upload_timestamp_seconds",
        "When Smile ID last took a job (Unix time; 0: not since start).",
        r.last_upload.load(Relaxed) as f64,
    );
    r.upload_seconds.write(
        &mut out,
        "kiosk_upload_duration_seconds",
        "Time to deliver a job: from its attempt's start until its zip landed.",
    );
    r.capture_seconds.write(&mut out, "kiosk_capture_duration_seconds", "Time a person spent in a completed session.");
    r.job_bytes.write(&mut out, "kiosk_job_size_bytes", "Size of each captured job's bundle.");
    r.frame_sharpness.write(&mut out, "kiosk_camera_sharpness", "Sharpness of the face in accepted selfies.");
    r.frame_brightness.write(&mut out, "kiosk_camera_brightness", "Mean brightness (0-255) of accepted selfies.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
            .parse()
            .unwrap()
    }

    /// Every hint a capture can time out on is counted and exposed (the turn hints came after
    /// the first ten: a short array once panicked the session thread).
    #[test]
    fn a_time_out_on_any_hint_is_counted_under_its_label() {
        let r = Registry::default();
        for (hint, _) in HINTS {
            r.session_ended(SessionOutcome::TimedOut, hint);
        }
        r.session_ended(SessionOutcome::Refused, None);
        let text = expose(&r, &Identity::default(), "x");
        for (_, label) in HINTS {
            assert!(text.contains(&format!("kiosk_session_timeouts_total{{hint=\"{label}\"}} 1")), "{label}: {text}");
        }
        assert!(text.contains("kiosk_sessions_total{outcome=\"refused\"} 1"), "{text}");
    }

    #[test]
    fn counts_and_state_are_exposed_in_the_text_format() {
        let r = Registry::default();
        r.jobs_captured.fetch_add(3, Relaxed);
        r.job_delivered(1.5, 1_700_000_000);
        r.job_delivered(40.0, 1_700_000_100);
        r.job_failed(Some("2205"));
        r.job_failed(Some("2205"));
        r.job_failed(None);
        r.job_result(false);
        r.session_ended(SessionOutcome::Completed, None);
        r.session_ended(SessionOutcome::TimedOut, Some(Hint::MoreLight));
        r.session_refused(Some("storage_full"));
        r.session_refused(Some("invalid_field"));
        r.set_storage_full(true);
        r.set_snapshot(Snapshot {
            pending: 2,
            link: Link::Paused,
            oldest_undelivered_at: Some(1_700_000_050.0),
            oldest_awaiting_result_at: Some(1_700_000_020.0),
            ..Default::default()
        });
        let who = Identity { id: "nbo-\"001\"".into(), site: "Westlands".into(), region: "KE".into() };
        let t = expose(&r, &who, "0.1.0");
        assert!(
            t.contains("kiosk_info{kiosk_id=\"nbo-\\\"001\\\"\",site=\"Westlands\",region=\"KE\",version=\"0.1.0\"} 1")
        );
        assert_eq!(value(&t, "kiosk_jobs_captured_total"), 3.0);
        // The kiosk's clock, for Prometheus to hold against its own.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((value(&t, "kiosk_time_seconds") - now).abs() < 5.0, "{t}");
        assert_eq!(value(&t, "kiosk_jobs_delivered_total"), 2.0);
        assert_eq!(value(&t, "kiosk_jobs_failed_total{code=\"2205\"}"), 2.0);
        assert_eq!(value(&t, "kiosk_jobs_failed_total{code=\"none\"}"), 1.0);
        // Codes Smile ID ends jobs with are there before their first refusal.
        assert_eq!(value(&t, "kiosk_jobs_failed_total{code=\"2213\"}"), 0.0);
        assert_eq!(value(&t, "kiosk_jobs_results_total{success=\"false\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_jobs_results_total{success=\"true\"}"), 0.0);
        assert_eq!(value(&t, "kiosk_sessions_total{outcome=\"completed\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_sessions_total{outcome=\"timed_out\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_session_timeouts_total{hint=\"more_light\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_sessions_refused_total{reason=\"storage_full\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_sessions_refused_total{reason=\"other\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_sessions_refused_total{reason=\"camera_missing\"}"), 0.0);
        assert_eq!(value(&t, "kiosk_storage_full"), 1.0, "kept over the uplink's snapshot");
        assert_eq!(value(&t, "kiosk_link_state{state=\"paused\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_link_state{state=\"down\"}"), 0.0);
        assert_eq!(value(&t, "kiosk_queue_jobs{stage=\"pending\"}"), 2.0);
        assert_eq!(value(&t, "kiosk_queue_oldest_undelivered_timestamp_seconds"), 1_700_000_050.0);
        assert_eq!(value(&t, "kiosk_queue_oldest_awaiting_result_timestamp_seconds"), 1_700_000_020.0);
        assert_eq!(value(&t, "kiosk_jobs_refused_total"), 3.0);
        assert_eq!(value(&t, "kiosk_last_upload_timestamp_seconds"), 1_700_000_100.0);
        // Histogram buckets are cumulative and end at the count.
        assert_eq!(value(&t, "kiosk_upload_duration_seconds_bucket{le=\"2.5\"}"), 1.0);
        assert_eq!(value(&t, "kiosk_upload_duration_seconds_bucket{le=\"60\"}"), 2.0);
        assert_eq!(value(&t, "kiosk_upload_duration_seconds_bucket{le=\"+Inf\"}"), 2.0);
        assert_eq!(value(&t, "kiosk_upload_duration_seconds_sum"), 41.5);
        // Every series comes right under its own HELP and TYPE (one family's lines together).
        let mut family = "";
        for l in t.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
                continue;
            }
            if l.starts_with('#') {
                continue;
            }
            let name = l.split(['{', ' ']).next().unwrap();
            let base = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(family == base || family == name, "{l} under # TYPE {family}");
        }
    }

    #[test]
    fn odd_refusal_codes_cannot_grow_the_registry() {
        let r = Registry::default();
        for i in 0..1000 {
            r.job_failed(Some(&format!("{i}")));
        }
        r.job_failed(Some("bad code\n"));
        let t = expose(&r, &Identity::default(), "x");
        let codes = t.lines().filter(|l| l.starts_with("kiosk_jobs_failed_total{")).count();
        assert_eq!(codes, MAX_CODES + 2, "the codes, other, none");
        // The documented codes had their places from the start.
        let new_codes = MAX_CODES - FINAL_CODES.len();
        assert_eq!(value(&t, "kiosk_jobs_failed_total{code=\"other\"}"), (1000 - new_codes) as f64);
    }
}
