//! Runs sessions for the control API: one at a time (one camera, one screen), each in its own
//! thread, with consent, review answers and cancel coming in over channels and progress
//! published as a view. How the last session ended is kept for the screen between sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{run, Answer, CaptureSettings, Input, Review, SessionError, SessionRequest};
use crate::camera::FrameSource;
use crate::display::screens::{FaceStep, Side};
use crate::display::{Canvas, Display, DisplayError, Screen, Texts};
use crate::queue::{Queue, QueueError, TYPICAL_JOB_BYTES};
use crate::smileid::timestamp::UnixMillis;
use crate::vision::quality::Hint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    AwaitingConsent,
    Capturing,
    Review,
    Queued,
    Declined,
    /// Nobody answered the consent screen in time: a person who walked away.
    Abandoned,
    Cancelled,
    TimedOut,
    /// Liveness refused: a photo or a screen, not a person.
    Refused,
    Failed,
}

impl SessionState {
    pub fn is_over(self) -> bool {
        matches!(
            self,
            Self::Queued
                | Self::Declined
                | Self::Abandoned
                | Self::Cancelled
                | Self::TimedOut
                | Self::Refused
                | Self::Failed
        )
    }
}

/// What the host application sees of a session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub session_id: String,
    pub job_id: String,
    pub job_type: u8,
    /// Whom it is for, and the language on screen: a host that restarted finds its customer's.
    pub user_id: String,
    pub language: Option<String>,
    pub state: SessionState,
    /// The guidance currently on screen (more_light, hold_still, ...).
    pub hint: Option<Hint>,
    pub step: String,
    pub done: u32,
    pub total: u32,
    pub error: Option<String>,
    pub started_at: String,
    /// The uid of the control-API peer that started it; `None` for a walk-up session.
    pub owner: Option<u32>,
    /// Once its job is queued: where the job stands now (the whole result is at
    /// `GET /v1/jobs/{job_id}`). Filled in by the service as it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobProgress>,
}

/// A queued session's job, as the host application polls it.
#[derive(Debug, Clone, Serialize)]
pub struct JobProgress {
    pub stage: crate::queue::Stage,
    /// Smile ID's verdict, once it has answered.
    pub job_success: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a session ({0}) is already running on this kiosk; wait for it to finish or cancel it")]
    Busy(String),
    #[error(transparent)]
    Full(QueueError),
    #[error("the session could not start: {0}; the system is out of threads or memory (check TasksMax and LimitNPROC), try again shortly")]
    Threads(std::io::Error),
}

struct Live {
    consent: Sender<Answer>,
    cancel: Arc<AtomicBool>,
    /// The capture is over and its job is being saved: a cancel now comes too late. Checked
    /// and set under this lock, as a cancel is, so a cancel either stops the job or is refused.
    saving: Arc<Mutex<bool>>,
}

type Views = Arc<Mutex<HashMap<String, SessionView>>>;
type LiveMap = Arc<Mutex<HashMap<String, Live>>>;

/// How the last session ended, for the outcome screen.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Counts sessions ended since start: a new one has a higher number.
    pub number: u64,
    pub state: SessionState,
    /// The person's language.
    pub texts: Option<Arc<Texts>>,
    /// The camera was the reason it failed.
    pub camera_failed: bool,
    pub at: Instant,
}

/// Ended sessions kept for the host application to read (a few days of a busy kiosk's; each a
/// few hundred bytes, in memory only); older ones are dropped. Their jobs stay in the queue.
const ENDED_VIEWS_KEPT: usize = 256;

/// Makes the devices for one session.
pub trait Devices: Send + Sync {
    fn camera(&self) -> Result<Box<dyn FrameSource + Send>, String>;
    fn display(&self) -> Result<Box<dyn Display + Send>, String>;
}

pub struct SessionManager {
    views: Views,
    live: LiveMap,
    queue: Arc<Queue>,
    devices: Arc<dyn Devices>,
    settings: CaptureSettings,
    consent_timeout: Duration,
    /// With a button or touch screen, how long the document review waits for "keep" or "take
    /// again" (no answer: the person walked away); without one (`None`) the photo is kept, as
    /// nobody at the kiosk can answer.
    review_timeout: Option<Duration>,
    /// A touch panel: the consent screen offers the whole text.
    pub read_more: AtomicBool,
    /// A keyboard or keypad is being read (Enter, Esc answer).
    pub keys: AtomicBool,
    /// A push button answers (press: yes, hold: no): its legend goes under the screen's buttons.
    /// Set while the button is read (it may be missing for a while).
    pub button: Arc<AtomicBool>,
    ended: Arc<Mutex<Option<Ended>>>,
    /// Sessions are counted here by outcome, with their capture times and job sizes.
    pub metrics: Arc<crate::metrics::Registry>,
}

struct ChannelInput {
    rx: Receiver<Answer>,
    cancel: Arc<AtomicBool>,
    timeout: Duration,
    review_timeout: Option<Duration>,
    job_id: String,
    read_more: bool,
    button: bool,
    keys: bool,
    /// The consent question has been logged (once per session, whatever "read more" does).
    asked: bool,
    /// Nobody answered the consent screen in time (the person walked away).
    walked_away: bool,
}

impl Input for ChannelInput {
    fn consent(&mut self) -> bool {
        self.consent_answer() == Answer::Yes
    }

    fn touch(&self) -> bool {
        self.read_more
    }

    fn button(&self) -> bool {
        self.button
    }

    fn keys(&self) -> bool {
        self.keys
    }

    fn consent_answer(&mut self) -> Answer {
        if !std::mem::replace(&mut self.asked, true) {
            crate::log::info(
                &format!("job {}: the person is asked for consent", self.job_id),
                &[("JOB_ID", self.job_id.as_str()), ("STAGE", "consent")],
            );
        }
        match self.rx.recv_timeout(self.timeout) {
            Ok(_) if self.cancel.load(Ordering::Relaxed) => Answer::No,
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                self.walked_away = true;
                Answer::No
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn reviews(&self) -> bool {
        self.review_timeout.is_some()
    }

    fn confirm(&mut self, _scene: crate::camera::Scene) -> Review {
        let Some(timeout) = self.review_timeout else { return Review::Keep };
        // A second press meant for the consent screen must not answer the review.
        while self.rx.try_recv().is_ok() {}
        let fields = [("JOB_ID", self.job_id.as_str()), ("STAGE", "document_review")];
        crate::log::info(
            &format!("job {}: the person is asked to keep the document photo or take it again", self.job_id),
            &fields,
        );
        // "Read more" and "back" are not answers here (a tap meant for the consent screens,
        // arriving late).
        let until = Instant::now() + timeout;
        let review = loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Answer::Yes) => break Review::Keep,
                Ok(Answer::No) => break Review::Retake,
                Ok(Answer::More | Answer::Previous | Answer::Back) => continue,
                Err(_) => break Review::Gone,
            }
        };
        let said = match review {
            Review::Retake => "the person asked to take the document photo again",
            Review::Gone => "nobody answered the document photo's review: the person walked away, nothing is kept",
            Review::Keep => return review,
        };
        crate::log::info(&format!("job {}: {said}", self.job_id), &fields);
        review
    }
}

/// Shows screens on the real display and mirrors their progress into the session's view.
struct Observed {
    inner: Box<dyn Display + Send>,
    views: Views,
    id: String,
}

impl Display for Observed {
    fn size(&self) -> (u32, u32) {
        self.inner.size()
    }

    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError> {
        self.inner.present(canvas, name)
    }

    fn texts(&self) -> std::sync::Arc<crate::display::Texts> {
        self.inner.texts()
    }

    fn set_texts(&mut self, texts: std::sync::Arc<crate::display::Texts>) {
        self.inner.set_texts(texts)
    }

    fn live(&self) -> bool {
        self.inner.live()
    }

    fn px_per_mm(&self) -> f32 {
        self.inner.px_per_mm()
    }

    fn brand(&self) -> std::sync::Arc<crate::display::brand::Brand> {
        self.inner.brand()
    }

    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        if let Some(v) = self.views.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&self.id) {
            match screen {
                Screen::Consent { .. } => v.state = SessionState::AwaitingConsent,
                Screen::Face { step, hint, done, total, .. } => {
                    v.state = SessionState::Capturing;
                    v.step = if *step == FaceStep::Liveness { "liveness" } else { "selfie" }.into();
                    v.hint = *hint;
                    (v.done, v.total) = (*done, *total);
                }
                Screen::Document { side, hint, review, .. } => {
                    v.state = SessionState::Capturing;
                    v.step = match (review, side) {
                        (true, _) => "document_review",
                        (false, Side::Front) => "document_front",
                        (false, Side::Back) => "document_back",
                    }
                    .into();
                    v.hint = *hint;
                    (v.done, v.total) = (*review as u32, 1);
                }
                Screen::Review { .. } => v.state = SessionState::Review,
                _ => {}
            }
        }
        self.inner.show(screen)
    }
}

fn new_session_id() -> String {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).expect("OS randomness");
    r.iter().map(|b| format!("{b:02x}")).collect()
}

impl SessionManager {
    pub fn new(
        queue: Arc<Queue>,
        devices: Arc<dyn Devices>,
        settings: CaptureSettings,
        consent_timeout: Duration,
        review_timeout: Option<Duration>,
    ) -> Self {
        SessionManager {
            views: Default::default(),
            live: Default::default(),
            queue,
            devices,
            settings,
            consent_timeout,
            review_timeout,
            read_more: AtomicBool::new(false),
            keys: AtomicBool::new(false),
            button: Default::default(),
            ended: Default::default(),
            metrics: Default::default(),
        }
    }

    /// How the last session ended, if one has.
    pub fn last_ended(&self) -> Option<Ended> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The session under way, if any.
    pub fn active(&self) -> Option<String> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.values().find(|v| !v.state.is_over()).map(|v| v.session_id.clone())
    }

    /// Starts a session in its own thread; refuses while another runs or when storage is full.
    /// The check for a running session and the new session's entry happen under one lock, so
    /// two requests at the same moment cannot both start.
    pub fn start(&self, req: SessionRequest) -> Result<SessionView, StartError> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = views.values().find(|v| !v.state.is_over()) {
            return Err(StartError::Busy(v.session_id.clone()));
        }
        // Refuse before the person spends two minutes in front of the camera, not after.
        self.queue.check_room(TYPICAL_JOB_BYTES).map_err(StartError::Full)?;
        if views.len() >= ENDED_VIEWS_KEPT {
            let mut ended: Vec<(String, String)> =
                views.values().map(|v| (v.started_at.clone(), v.session_id.clone())).collect();
            ended.sort();
            for (_, id) in ended.into_iter().take(views.len() + 1 - ENDED_VIEWS_KEPT) {
                views.remove(&id);
            }
        }
        let id = new_session_id();
        let view = SessionView {
            session_id: id.clone(),
            job_id: req.job_id.clone(),
            job_type: req.job_type.code(),
            user_id: req.user_id.clone(),
            language: req.texts.as_ref().map(|t| t.code.clone()),
            state: SessionState::AwaitingConsent,
            hint: None,
            step: "consent".into(),
            done: 0,
            total: 0,
            error: None,
            started_at: UnixMillis::now().to_iso(),
            owner: req.owner,
            job: None,
        };
        views.insert(id.clone(), view.clone());
        drop(views);
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let saving = Arc::new(Mutex::new(false));
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), Live { consent: tx, cancel: cancel.clone(), saving: saving.clone() });
        let (views, live, queue, devices, settings, ended, metrics) = (
            self.views.clone(),
            self.live.clone(),
            self.queue.clone(),
            self.devices.clone(),
            self.settings.clone(),
            self.ended.clone(),
            self.metrics.clone(),
        );
        let (read_more, button) = (self.read_more.load(Ordering::Relaxed), self.button.load(Ordering::Relaxed));
        let keys = self.keys.load(Ordering::Relaxed);
        // The review only where someone at the kiosk can answer it now: a button, or a touch
        // panel or keys found (the config may name input devices that are not there).
        let answerable = button || read_more || keys;
        let (timeout, review_timeout) = (self.consent_timeout, self.review_timeout.filter(|_| answerable));
        let texts = req.texts.clone();
        let spawned = std::thread::Builder::new().name(format!("session-{id}")).spawn(move || {
            // The outcome screen is the screen owner's (it knows how long to keep it up);
            // the display goes back to it when this thread's loan is dropped, before `end`.
            let end = |state: SessionState, error: Option<String>, camera_failed: bool| {
                if let Some(v) = views.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&id) {
                    v.state = state;
                    v.error = error;
                    v.hint = None;
                }
                live.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                let mut last = ended.lock().unwrap_or_else(|e| e.into_inner());
                let number = last.as_ref().map_or(1, |e| e.number + 1);
                *last = Some(Ended { number, state, texts: texts.clone(), camera_failed, at: Instant::now() });
            };
            let disp = match devices.display() {
                Ok(d) => d,
                Err(e) => {
                    metrics.session_ended(crate::metrics::SessionOutcome::Failed, None);
                    return end(SessionState::Failed, Some(e), false);
                }
            };
            let mut cam = match devices.camera() {
                Ok(c) => c,
                Err(e) => {
                    drop(disp);
                    metrics.session_ended(crate::metrics::SessionOutcome::Failed, None);
                    metrics.set_camera_present(false);
                    return end(SessionState::Failed, Some(e), true);
                }
            };
            let mut display = Observed { inner: disp, views: views.clone(), id: id.clone() };
            let job_id = req.job_id.clone();
            let mut input = ChannelInput {
                rx,
                cancel,
                timeout,
                review_timeout,
                job_id,
                read_more,
                button,
                keys,
                asked: false,
                walked_away: false,
            };
            let began = std::time::Instant::now();
            let outcome = run(&req, &mut *cam, &mut display, &mut input, &settings);
            drop((display, cam));
            // A cancel after the last frame, before the job is saved, still stops it.
            let outcome = outcome.and_then(|job| {
                let mut saving = saving.lock().unwrap_or_else(|e| e.into_inner());
                match input.cancel.load(Ordering::Relaxed) {
                    true => Err(SessionError::Cancelled),
                    false => {
                        *saving = true;
                        Ok(job)
                    }
                }
            });
            let enqueued = outcome.map(|job| queue.enqueue_owned(&job, req.owner).map(|r| (r, job)));
            count(&metrics, &enqueued, input.walked_away, began.elapsed());
            match enqueued {
                Ok(Ok((r, _))) => {
                    crate::log::info(
                        &format!("job {} captured and queued ({} bytes)", r.job_id, r.bundle_bytes),
                        &[("JOB_ID", &r.job_id), ("STAGE", "queued")],
                    );
                    end(SessionState::Queued, None, false)
                }
                Ok(Err(e)) => {
                    // The person was told on screen; staff read the journal.
                    crate::log::error(
                        &format!("job {}: captured, but it could not be saved: {e}", req.job_id),
                        &[("JOB_ID", &req.job_id), ("STAGE", "session")],
                    );
                    end(SessionState::Failed, Some(e.to_string()), false)
                }
                // Said in the view, so a host application (and `kiosk-agent session`) can tell a
                // person who said no from a consent screen nobody answered.
                Err(SessionError::Declined) if input.walked_away => end(
                    SessionState::Abandoned,
                    Some("nobody answered the consent screen in time; if the host application records the person's consent, send it while the consent screen shows (POST /v1/sessions/<id>/consent, or `kiosk-agent session --consent-given`)".into()),
                    false,
                ),
                Err(SessionError::Declined) => {
                    end(SessionState::Declined, Some("consent was declined, on the kiosk or by the host application".into()), false)
                }
                Err(e @ SessionError::WalkedAway) => end(SessionState::Abandoned, Some(e.to_string()), false),
                Err(SessionError::Cancelled) => {
                    end(SessionState::Cancelled, Some("cancelled by the person at the kiosk (Esc), the host application or staff; nothing was kept".into()), false)
                }
                Err(e @ SessionError::TimedOut { .. }) => end(SessionState::TimedOut, Some(e.to_string()), false),
                Err(e @ SessionError::NotLive { .. }) => end(SessionState::Refused, Some(e.to_string()), false),
                Err(e @ SessionError::Camera(_)) => end(SessionState::Failed, Some(e.to_string()), true),
                Err(e) => end(SessionState::Failed, Some(e.to_string()), false),
            }
        });
        if let Err(e) = spawned {
            // Nothing started: the session is forgotten, as if it had never been asked for.
            self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&view.session_id);
            self.views.lock().unwrap_or_else(|e| e.into_inner()).remove(&view.session_id);
            return Err(StartError::Threads(e));
        }
        Ok(view)
    }

    pub fn views(&self) -> Vec<SessionView> {
        self.views.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    pub fn view(&self, id: &str) -> Option<SessionView> {
        self.views.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// The person's (or the host's) answer to the question on screen (consent, or keeping a
    /// document photo); `None` if the session is unknown.
    pub fn consent(&self, id: &str, granted: bool) -> Option<SessionView> {
        self.answer(id, if granted { Answer::Yes } else { Answer::No })
    }

    /// Any answer on the session's question, "read more" and "back" included.
    pub fn answer(&self, id: &str, answer: Answer) -> Option<SessionView> {
        if let Some(l) = self.live.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            let _ = l.consent.send(answer);
        }
        self.view(id)
    }

    pub fn cancel(&self, id: &str) -> Option<SessionView> {
        self.stop(id);
        self.view(id)
    }

    /// Stops the session, nothing kept; false when there is none running or its job is already
    /// being saved (captured with consent: it is kept).
    pub fn stop(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let Some(l) = live.get(id) else { return false };
        if *l.saving.lock().unwrap_or_else(|e| e.into_inner()) {
            return false;
        }
        l.cancel.store(true, Ordering::Relaxed);
        let _ = l.consent.send(Answer::No);
        true
    }
}

/// Counts how a session ended (and, for a job, its size, the time it took and the camera's
/// figures) for the fleet's metrics.
fn count(
    m: &crate::metrics::Registry,
    ended: &Result<Result<(crate::queue::Record, crate::smileid::job::Job), crate::queue::QueueError>, SessionError>,
    walked_away: bool,
    took: Duration,
) {
    use crate::metrics::SessionOutcome as O;
    let (outcome, hint) = match ended {
        Ok(Ok((r, job))) => {
            m.jobs_captured.fetch_add(1, Ordering::Relaxed);
            m.job_bytes.observe(r.bundle_bytes as f64);
            m.capture_seconds.observe(took.as_secs_f64());
            for d in &job.metadata {
                match (d.name.as_str(), d.value.as_f64()) {
                    ("selfie_sharpness", Some(v)) => m.frame_sharpness.observe(v),
                    ("selfie_brightness", Some(v)) => m.frame_brightness.observe(v),
                    _ => {}
                }
            }
            (O::Completed, None)
        }
        Ok(Err(_)) => (O::Failed, None),
        Err(SessionError::Declined) if walked_away => (O::Abandoned, None),
        Err(SessionError::Declined) => (O::Declined, None),
        Err(SessionError::WalkedAway) => (O::Abandoned, None),
        Err(SessionError::Cancelled) => (O::Cancelled, None),
        Err(SessionError::TimedOut { hint, .. }) => (O::TimedOut, *hint),
        Err(SessionError::NotLive { .. }) => (O::Refused, None),
        Err(_) => (O::Failed, None),
    };
    m.session_ended(outcome, hint);
}

impl std::hash::Hash for SessionState {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (*self as u8).hash(h)
    }
}
