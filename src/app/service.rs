//! What the control API and the button ask of the running agent: sessions (camera and the
//! borrowed display), the queue, Enhanced KYC calls, health and metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Backend, EnhancedKyc, EnhancedKycAnswer, Health, Refusal, StartSession};
use crate::camera::FrameSource;
use crate::config::Config;
use crate::display::slot::DisplaySlot;
use crate::display::Display;
use crate::queue::{Queue, QueueError, Record};
use crate::session::manager::{Devices, JobProgress, SessionManager, SessionState, SessionView, StartError};
use crate::session::new_job_id;
use crate::smileid::job::{Job, JobOptions, JobType, PartnerParams};
use crate::smileid::signature::SignContext;
use crate::smileid::timestamp::UnixMillis;
use crate::uplink::service::{LinkState, LinkWatch};

/// The camera named in the config, and the display the agent opened once for the day.
pub struct ConfiguredDevices {
    pub config: Config,
    pub display: Arc<DisplaySlot>,
}

impl Devices for ConfiguredDevices {
    fn camera(&self) -> Result<Box<dyn FrameSource + Send>, String> {
        self.config.camera.open().map_err(|e| e.to_string())
    }

    fn display(&self) -> Result<Box<dyn Display + Send>, String> {
        // The screen between sessions gives it back within one redraw.
        match self.display.borrow(Duration::from_secs(5)) {
            Some(d) => Ok(Box::new(d)),
            None => Err("the display stayed busy for 5 s; restart the service if this repeats".into()),
        }
    }
}

pub struct Service {
    pub queue: Arc<Queue>,
    pub sessions: SessionManager,
    pub smile: super::SmileLink,
    pub config: Config,
    pub link: LinkWatch,
    /// Enhanced KYC lookups left ([api] enhanced_kyc_per_hour).
    pub ekyc_budget: std::sync::Mutex<crate::api::access::RateLimit>,
    /// Enhanced KYC lookups under way (`None`) and recent answers, for a host whose client gave
    /// up before the answer came (they hold personal data: in memory only, for
    /// [`EKYC_ANSWER_KEPT`]).
    ekyc_answers: std::sync::Mutex<Vec<(std::time::Instant, String, Option<EnhancedKycAnswer>)>>,
    /// The language a person chose at the idle screen (one of `[display] languages`) and when,
    /// for the session they start; `None`: `[display] language`. The front desk forgets it when
    /// a session ends or after [`super::frontdesk::CHOICE_KEPT`] without one.
    pub chosen_language: std::sync::Mutex<Option<(String, std::time::Instant)>>,
    /// A touch panel is being read (`[input] evdev`): the screens offer on-screen choices.
    pub touch: std::sync::atomic::AtomicBool,
    /// A keyboard or keypad is being read (`[input] evdev`): Enter answers as the button does.
    pub keys: std::sync::atomic::AtomicBool,
    /// What the kiosk counts for the fleet, and who it is.
    pub metrics: Arc<crate::metrics::Registry>,
    pub identity: crate::metrics::Identity,
    /// When the service was built (UTC, ISO 8601).
    pub started_at: String,
    /// `[metrics] listen` is set but its listener could not start: the fleet sees nothing.
    pub metrics_unserved: AtomicBool,
}

/// How long an Enhanced KYC answer can be read again by its job_id.
pub const EKYC_ANSWER_KEPT: Duration = Duration::from_secs(600);

fn queue_refusal(e: QueueError) -> Refusal {
    match e {
        QueueError::NotFound(_) => Refusal::coded(404, "no_job", e.to_string()),
        QueueError::Full(_) => Refusal::coded(507, "storage_full", e.to_string()),
        QueueError::Unwritable(_) => Refusal::coded(507, "storage_unwritable", e.to_string()),
        QueueError::Duplicate(_) | QueueError::Reused(_) => Refusal::coded(409, "job_id_used", e.to_string()),
        QueueError::Refused { .. } | QueueError::Transition(_) => Refusal::coded(409, "job_state", e.to_string()),
        QueueError::Index(_) => Refusal::coded(
            507,
            "storage_unwritable",
            format!("the kiosk cannot save or change jobs now ({e}); it restarts to mend its queue once the disk has room. Nothing it acknowledged is lost"),
        ),
        _ => Refusal::new(500, e.to_string()),
    }
}

impl Service {
    /// A V4L2 camera is configured but no such device node exists (unplugged, or no driver).
    pub fn camera_missing(&self) -> bool {
        let cam = &self.config.camera;
        if cam.source != crate::config::CameraSource::V4l2 {
            return false;
        }
        if cam.device != "auto" {
            return !std::path::Path::new(&cam.device).exists();
        }
        let any_video = std::fs::read_dir("/dev")
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("video")))
            .unwrap_or(false);
        !any_video
    }

    /// The screen cannot show anything (its device is not there, or it is unplugged): sessions
    /// wait for it.
    pub fn display_missing(&self) -> bool {
        self.config.display.screen_now().is_none()
    }

    /// The link as the uplink last saw it.
    pub fn link(&self) -> LinkState {
        self.link.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// No room for one more job: a session would be refused.
    /// What stops the next job from being saved, as the person at the kiosk is told it: no room,
    /// or (a folder it cannot write) a kiosk out of service.
    pub fn storage_problem(&self) -> Option<crate::display::screens::Problem> {
        use crate::display::screens::Problem;
        match self.queue.check_room(crate::queue::TYPICAL_JOB_BYTES) {
            Ok(()) => None,
            Err(QueueError::Full(_)) => Some(Problem::StorageFull),
            Err(_) => Some(Problem::OutOfService),
        }
    }

    /// A session started, or why not.
    fn start(&self, mut r: StartSession) -> Result<SessionView, Refusal> {
        // A session the host application starts without a language speaks the one the person
        // at the kiosk chose.
        if r.language.is_none() {
            r.language = self.chosen_language.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| c.0.clone());
        }
        let req = super::session_request(&self.config, r)
            .map_err(|e| Refusal::coded(422, "invalid_field", format!("invalid language: {e}")))?;
        let job_id = &req.job_id;
        // Refused before the person spends two minutes at the camera, not when the job is saved.
        self.queue.check_new_job_id(job_id).map_err(queue_refusal)?;
        if self.display_missing() {
            let missing = self.config.display.screen_missing_why().unwrap_or_else(|| "the screen is missing".into());
            let why = format!(
                "no session was started: {missing} (the agent finds it again by itself), or the [display] settings in kiosk.toml"
            );
            crate::log::warn(&why, &[]);
            return Err(Refusal::coded(503, "display_missing", why));
        }
        // Nor asked for consent to photos no camera can take (the welcome says so meanwhile).
        if self.camera_missing() {
            let which = match self.config.camera.device.as_str() {
                "auto" => "no camera is plugged in".to_string(),
                d => format!("the camera {d} is missing"),
            };
            let why = format!(
                "no session was started: {which}; plug it in (it is found again at once), or set [camera] device in kiosk.toml; `kiosk-agent doctor` lists the cameras found"
            );
            // The kiosk's staff read the journal, not the host application's answers.
            crate::log::warn(&why, &[]);
            return Err(Refusal::coded(503, "camera_missing", why));
        }
        let (owner, job_id, user_id) = (req.owner, req.job_id.clone(), req.user_id.clone());
        // Nor taken by an Enhanced KYC lookup under way. Held until the session is started, so
        // a lookup asked for meanwhile finds the session's job_id taken (`enhanced_kyc`).
        let lookups = self.ekyc_answers.lock().unwrap_or_else(|e| e.into_inner());
        if lookups.iter().any(|(_, id, _)| *id == job_id) {
            return Err(Refusal::coded(
                409,
                "job_id_used",
                format!("job_id {job_id} is an Enhanced KYC lookup's; a session needs a new job_id"),
            ));
        }
        let started = self.sessions.start(req);
        drop(lookups);
        match started {
            Ok(v) => Ok(v),
            Err(e @ StartError::Busy(_)) => {
                let running = self.sessions.active().and_then(|id| self.sessions.view(&id));
                let shown =
                    running.as_ref().filter(|v| v.owner.is_none() || v.owner == owner).map(|v| v.session_id.clone());
                let msg = match running {
                    // The same request sent again (its answer lost): the session it started.
                    Some(v) if v.job_id == job_id && v.user_id == user_id && v.owner == owner => format!(
                        "the session for job_id {job_id} is already running: {} (this request sent again?); read it at GET /v1/sessions/{}",
                        v.session_id, v.session_id
                    ),
                    // Another host application's: neither its id nor a cancel it may not send.
                    Some(v) if v.owner.is_some() && v.owner != owner => {
                        "another host application's session is running on this kiosk; try again when it ends".into()
                    }
                    Some(v) if v.owner.is_none() || v.owner == owner => e.to_string(),
                    // Ended in between, or another's: no id.
                    _ => "a session is running on this kiosk; try again when it ends".into(),
                };
                Err(Refusal { session_id: shown, ..Refusal::coded(409, "session_running", msg) })
            }
            Err(StartError::Full(e)) => {
                crate::log::warn(&format!("no session was started: {e}"), &[]);
                Err(queue_refusal(e))
            }
            Err(e @ StartError::Threads(_)) => {
                Err(Refusal { retry_after_secs: Some(5), ..Refusal::coded(503, "busy", e.to_string()) })
            }
        }
    }
}

impl Backend for Service {
    fn start_session(&self, r: StartSession) -> Result<SessionView, Refusal> {
        let started = self.start(r);
        // People turned away are counted for the fleet, by why.
        if let Err(refusal) = &started {
            self.metrics.session_refused(refusal.code);
        }
        started
    }

    fn sessions(&self) -> Vec<SessionView> {
        self.sessions.views().into_iter().filter_map(|v| self.session(&v.session_id)).collect()
    }

    fn session(&self, id: &str) -> Option<SessionView> {
        let mut v = self.sessions.view(id)?;
        if v.state == SessionState::Queued {
            v.job = self.queue.get(&v.job_id).ok().map(|r| JobProgress { stage: r.stage, job_success: r.job_success });
        }
        Some(v)
    }

    fn consent(&self, id: &str, granted: bool) -> Option<SessionView> {
        let before = self.sessions.view(id)?;
        let mut v = self.sessions.consent(id, granted)?;
        // Answered once the session has taken the answer (or ended, its time up as it came),
        // so a 200 never hides an answer that was too late.
        let give_up = std::time::Instant::now() + Duration::from_secs(1);
        while (v.state, &v.step) == (before.state, &before.step) && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
            v = self.sessions.view(id)?;
        }
        self.session(id)
    }

    fn cancel(&self, id: &str) -> Option<SessionView> {
        let mut v = self.sessions.cancel(id)?;
        // Answered once the session has ended (its camera let go within a frame or two), so
        // the host reads how it ended, not the state before.
        let give_up = std::time::Instant::now() + Duration::from_secs(3);
        while !v.state.is_over() && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
            v = self.sessions.view(id)?;
        }
        self.session(id)
    }

    fn jobs(&self) -> Result<Vec<Record>, Refusal> {
        self.queue.list().map_err(queue_refusal)
    }

    fn job(&self, job_id: &str) -> Option<Record> {
        self.queue.get(job_id).ok()
    }

    fn job_gone(&self, job_id: &str) -> bool {
        matches!(self.queue.check_new_job_id(job_id), Err(QueueError::Reused(_)))
    }

    fn enhanced_kyc_answer(&self, job_id: &str) -> Option<Option<EnhancedKycAnswer>> {
        let mut kept = self.ekyc_answers.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(at, _, a)| a.is_none() || at.elapsed() < EKYC_ANSWER_KEPT);
        kept.iter().find(|(_, id, _)| id == job_id).map(|(_, _, a)| a.clone())
    }

    fn purge(&self, job_id: &str) -> Result<(), Refusal> {
        self.queue.purge(job_id).map_err(queue_refusal)?;
        crate::log::info(&format!("job {job_id} purged by the operator"), &[("JOB_ID", job_id)]);
        Ok(())
    }

    fn retry(&self, job_id: &str) -> Result<Record, Refusal> {
        let r = self.queue.retry(job_id).map_err(queue_refusal)?;
        crate::log::info(&format!("job {job_id} put back in line by the operator"), &[("JOB_ID", job_id)]);
        Ok(r)
    }

    fn restore(&self, job_id: &str) -> Result<Record, Refusal> {
        let r = self.queue.restore(job_id).map_err(queue_refusal)?;
        crate::log::info(&format!("job {job_id} restored from quarantine by the operator"), &[("JOB_ID", job_id)]);
        Ok(r)
    }

    fn enhanced_kyc(&self, r: EnhancedKyc) -> Result<EnhancedKycAnswer, Refusal> {
        if self.config.api.enhanced_kyc_per_hour == 0 {
            return Err(Refusal::coded(
                403,
                "enhanced_kyc_off",
                "Enhanced KYC is off on this kiosk ([api] enhanced_kyc_per_hour = 0)",
            ));
        }
        let allowed = self.ekyc_budget.lock().unwrap_or_else(|e| e.into_inner()).take(std::time::Instant::now());
        if let Err(wait) = allowed {
            let secs = wait.as_secs().max(1);
            return Err(Refusal {
                retry_after_secs: Some(secs),
                ..Refusal::coded(
                    429,
                    "rate_limited",
                    format!(
                        "Enhanced KYC is limited to {} lookups an hour ([api] enhanced_kyc_per_hour); try again in {secs} s",
                        self.config.api.enhanced_kyc_per_hour,
                    ),
                )
            });
        }
        let job = Job {
            partner_params: PartnerParams {
                user_id: r.user_id,
                job_id: r.job_id.unwrap_or_else(new_job_id),
                job_type: JobType::EnhancedKyc,
                extra: super::kiosk_params(&self.config),
            },
            id_info: r.id_info,
            options: JobOptions::default(),
            images: Vec::new(),
            consent: None,
            metadata: Vec::new(),
        };
        let pp = &job.partner_params;
        // A job_id names one job at Smile ID, a lookup's too; one under way is not sent twice
        // (a client that gave up and asks again).
        let in_flight = {
            let mut kept = self.ekyc_answers.lock().unwrap_or_else(|e| e.into_inner());
            // A capture session's job_id is its own from the moment it starts.
            let session =
                self.sessions.active().and_then(|id| self.sessions.view(&id)).filter(|v| v.job_id == pp.job_id);
            if let Some(v) = session {
                self.ekyc_budget.lock().unwrap_or_else(|e| e.into_inner()).give_back();
                return Err(Refusal::coded(
                    409,
                    "job_id_used",
                    format!(
                        "job_id {} is the running session {}'s; a lookup needs a new job_id",
                        pp.job_id, v.session_id
                    ),
                ));
            }
            let taken = kept.iter().any(|(_, id, _)| *id == pp.job_id);
            let free = self.queue.check_new_job_id(&pp.job_id);
            if taken || free.is_err() {
                self.ekyc_budget.lock().unwrap_or_else(|e| e.into_inner()).give_back();
                return Err(match free {
                    Err(e) => queue_refusal(e),
                    Ok(()) => Refusal::coded(
                        409,
                        "job_id_used",
                        format!("an Enhanced KYC lookup with job_id {} is under way or answered; read its answer at GET /v1/jobs/{}", pp.job_id, crate::api::escape_segment(&pp.job_id)),
                    ),
                });
            }
            kept.push((std::time::Instant::now(), pp.job_id.clone(), None));
            pp.job_id.clone()
        };
        let forget = || {
            self.ekyc_answers.lock().unwrap_or_else(|e| e.into_inner()).retain(|(_, id, _)| *id != in_flight);
        };
        // A lookup that never reached Smile ID (no key, no link) spends none of the hour's.
        let unsent = |e: Refusal| {
            self.ekyc_budget.lock().unwrap_or_else(|e| e.into_inner()).give_back();
            forget();
            e
        };
        let ctx = SignContext { job_type: 5, job_id: &pp.job_id, user_id: &pp.user_id };
        let signed = self
            .smile
            .signer
            .sign(UnixMillis::now(), &ctx)
            .map_err(|e| unsent(Refusal::coded(502, "not_signed", e.to_string())))?;
        let base = self.config.base_url().map_err(|e| unsent(Refusal::new(500, e.to_string())))?;
        let req = crate::smileid::id_verification_request(&job, &self.config.smileid.partner_id, &base, &signed)
            .map_err(|e| unsent(Refusal::new(422, e.to_string())))?;
        let resp = self.smile.http.execute(&req).map_err(|e| {
            unsent(Refusal::coded(502, "smileid_unreachable", format!("Smile ID is unreachable: {e}; try again later")))
        })?;
        // Smile ID has seen this job_id now, whatever it answered.
        if let Err(e) = self.queue.retire(&pp.job_id) {
            crate::log::warn(&format!("job {}: {e}", pp.job_id), &[("JOB_ID", &pp.job_id)]);
        }
        let result = crate::smileid::id_verification_result(resp.status, &resp.body).map_err(|e| {
            forget();
            Refusal::coded(502, "smileid_refused", e.to_string())
        })?;
        crate::log::info(&format!("Enhanced KYC lookup {} answered", pp.job_id), &[("JOB_ID", &pp.job_id)]);
        let answer = EnhancedKycAnswer { job_id: pp.job_id.clone(), result };
        let mut kept = self.ekyc_answers.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(at, id, a)| *id != answer.job_id && (a.is_none() || at.elapsed() < EKYC_ANSWER_KEPT));
        kept.push((std::time::Instant::now(), answer.job_id.clone(), Some(answer.clone())));
        Ok(answer)
    }

    fn health(&self) -> Health {
        let link = self.link();
        let stats = self.queue.stats();
        // First what stops people being served (no screen, no camera, nowhere to keep a job),
        // then what stops jobs going up, then the rest.
        let mut problems: Vec<&'static str> = Vec::new();
        if self.display_missing() {
            problems.push("display_missing");
        }
        if self.camera_missing() {
            problems.push("camera_missing");
        }
        let queue_problems = match &stats {
            Ok(s) => queue_problem(s, &self.config.queue),
            Err(_) => vec!["queue_unreadable"],
        };
        let (serving, later): (Vec<_>, Vec<_>) = queue_problems.into_iter().partition(|p| *p != "quarantined_jobs");
        problems.extend(serving);
        problems.extend(link_problem(&link));
        if self.config.input.button().is_some() && !self.sessions.button.load(Ordering::Relaxed) {
            problems.push("button_missing");
        }
        problems.extend(later);
        // Last: it stops nothing at the kiosk, only the fleet's view of it.
        if self.metrics_unserved.load(Ordering::Relaxed) {
            problems.push("metrics_not_served");
        }
        // "ok", or the first problem by how much it stops: nothing captured, nothing sent, less.
        Health {
            status: problems.first().copied().unwrap_or("ok"),
            problems,
            uplink: link,
            queue: stats.ok(),
            version: env!("CARGO_PKG_VERSION"),
            started_at: Some(self.started_at.clone()),
        }
    }

    fn started_at(&self) -> Option<String> {
        Some(self.started_at.clone())
    }

    fn held(&self) -> Option<&'static str> {
        link_problem(&self.link())
    }

    fn metrics(&self) -> String {
        crate::metrics::expose(&self.metrics, &self.identity, crate::VERSION)
    }
}

/// The link's problem as health and `status` name it.
pub fn link_problem(link: &LinkState) -> Option<&'static str> {
    match link {
        LinkState::Paused { .. } => Some("paused"),
        LinkState::ClockWrong { .. } => Some("clock_wrong"),
        LinkState::Down { .. } => Some("link_down"),
        LinkState::Up | LinkState::Unknown => None,
    }
}

/// The queue's problems as health and `status` name them: a folder the service cannot write,
/// too little room on the disk for a job, the queue at its job or byte limit, a damaged job set
/// aside.
pub fn queue_problem(s: &crate::queue::QueueStats, q: &crate::queue::QueueSettings) -> Vec<&'static str> {
    let room = q.min_free_bytes + crate::queue::TYPICAL_JOB_BYTES;
    let low = s.free_bytes.is_some_and(|f| f < room);
    // The queue's own limits, not the disk: jobs waiting for the link, most likely.
    let full = q.limit_reached(s, crate::queue::TYPICAL_JOB_BYTES).is_some();
    [
        (s.unwritable.is_some(), "storage_unwritable"),
        (low, "storage_low"),
        (full, "queue_full"),
        (s.quarantined > 0, "quarantined_jobs"),
    ]
    .into_iter()
    .filter_map(|(is, name)| is.then_some(name))
    .collect()
}

/// Builds the service from its config, around the display opened for the day.
pub fn build(
    config: Config,
    queue: Arc<Queue>,
    display: Arc<DisplaySlot>,
    link: LinkWatch,
) -> Result<Service, crate::config::ConfigError> {
    let smile = super::SmileLink::for_service(&config)?;
    let devices = Arc::new(ConfiguredDevices { config: config.clone(), display });
    let answers_on_device = config.input.on_device();
    let metrics = Arc::new(crate::metrics::Registry::default());
    // Those set aside as the queue opened count too, not only those found damaged at upload.
    metrics.jobs_quarantined.fetch_add(queue.report.quarantined.len() as u64, Ordering::Relaxed);
    let mut sessions = SessionManager::new(
        queue.clone(),
        devices,
        config.capture.clone(),
        Duration::from_secs(config.api.consent_timeout_secs),
        answers_on_device.then(|| Duration::from_secs(config.input.answer_timeout_secs)),
    );
    sessions.metrics = metrics.clone();
    let identity = config.kiosk.identity();
    let per_hour = config.api.enhanced_kyc_per_hour;
    let ekyc_budget = std::sync::Mutex::new(crate::api::access::RateLimit::new(per_hour, per_hour.min(5)));
    Ok(Service {
        link,
        queue,
        sessions,
        smile,
        config,
        ekyc_budget,
        ekyc_answers: Default::default(),
        chosen_language: Default::default(),
        touch: Default::default(),
        keys: Default::default(),
        identity,
        metrics,
        started_at: UnixMillis::now().to_iso(),
        metrics_unserved: AtomicBool::new(false),
    })
}

/// Starts the control API on its socket in a background thread.
pub fn start_api(service: Arc<Service>, stop: Arc<AtomicBool>) -> Result<(), crate::api::server::ServerError> {
    let api = &service.config.api;
    let listener = crate::api::server::bind(&api.socket, api.group.as_deref())?;
    let access = crate::api::access::Access::from_config(api)?;
    let deadline = Some(std::time::Duration::from_secs(api.request_timeout_secs));
    let limits = crate::api::server::ServerLimits {
        workers: api.max_connections,
        limits: crate::httpd::Limits { head: deadline, body: deadline },
    };
    let backend: Arc<dyn Backend> = service;
    crate::api::server::Server::start(listener, backend, access, limits, stop)
        .map_err(crate::api::server::ServerError::Workers)?;
    Ok(())
}
