//! One person's visit: consent, guided capture (ID document front and back for document
//! jobs; liveness frames and a selfie), review, and the finished [`Job`] ready for the queue.
//! Devices come in as traits, so tests drive it for real.
//!
//! ```text
//! Idle ─start─▶ Consent ─accept─▶ Capture (document front, back; liveness ×8; selfie) ─▶ Review ─▶ Queued
//!                  │ decline / timeout        │ cancel / time limit / camera lost
//!                  ▼                          ▼
//!               Declined                Cancelled / TimedOut / Failed
//! ```

pub mod manager;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::camera::{CameraError, FrameSource, Scene};
use crate::display::{Display, DisplayError, Screen};
use crate::smileid::job::{
    ConsentInformation, Consented, IdInfo, ImageType, Job, JobImage, JobOptions, JobType, Metadatum, PartnerParams,
};
use crate::smileid::validate::{validate, ValidationError};
use crate::vision::encode::{jpeg_long_side, EncodeError};
use crate::vision::quality::{gate, measure, motion, Gray, Hint, Thresholds};

/// Capture parameters (Smile ID's mobile SDK values by default, protocol §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSettings {
    pub liveness_frames: u32,
    pub liveness_interval_ms: u64,
    pub selfie_long_side: u32,
    pub liveness_long_side: u32,
    pub jpeg_quality: u8,
    pub time_limit_secs: u64,
    pub thresholds: Thresholds,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        CaptureSettings {
            liveness_frames: 8,
            liveness_interval_ms: 250,
            selfie_long_side: 640,
            liveness_long_side: 320,
            jpeg_quality: 80,
            time_limit_secs: 120,
            thresholds: Thresholds::default(),
        }
    }
}

/// The person's answers.
pub trait Input {
    /// True when the person accepts the consent screen (blocks until they answer or give up).
    fn consent(&mut self) -> bool;
    /// True once the session should stop (the host cancelled it).
    fn cancelled(&self) -> bool {
        false
    }
}

/// Input that answers from a script: for the demo and tests (a real button lives behind the same trait).
pub struct ScriptedInput {
    pub accept: bool,
}

impl Input for ScriptedInput {
    fn consent(&mut self) -> bool {
        self.accept
    }
}

/// What the host application asks for.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    pub partner_name: String,
    pub user_id: String,
    /// Fixed here, at capture, and never changed afterwards (exactly-once upload relies on it).
    pub job_id: String,
    pub job_type: JobType,
    pub id_info: IdInfo,
    pub options: JobOptions,
    /// Extra partner_params (strings), echoed in Smile ID's results.
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
    /// Document jobs: also capture the back of the ID.
    pub document_back: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the person declined consent; nothing was captured")]
    Declined,
    #[error("the session was cancelled; nothing was kept")]
    Cancelled,
    #[error("capture took longer than {limit:?}; last problem: {hint:?}. Ask the person to try again")]
    TimedOut { limit: Duration, hint: Option<Hint> },
    #[error(transparent)]
    Camera(#[from] CameraError),
    #[error(transparent)]
    Display(#[from] DisplayError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("the captured job is not valid: {0}")]
    Invalid(#[from] ValidationError),
    #[error("job type {0:?} has no capture session (Enhanced KYC is a direct call)")]
    Unsupported(JobType),
}

/// A fresh job id: time-ordered and random, unique across kiosks.
pub fn new_job_id() -> String {
    let mut r = [0u8; 6];
    getrandom::fill(&mut r).expect("the OS random source works");
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("kiosk-{}-{hex}", crate::smileid::timestamp::UnixMillis::now().0)
}

/// Captures 8 liveness frames, spaced in time and with motion between them, then one selfie.
/// Liveness images come back first in capture order, the selfie last.
pub fn capture_selfie_and_liveness(
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &dyn Input,
    s: &CaptureSettings,
    retries: &mut u32,
) -> Result<Vec<JobImage>, SessionError> {
    cam.set_scene(Scene::Face);
    let total = s.liveness_frames + 1;
    let interval = Duration::from_millis(s.liveness_interval_ms);
    let limit = Duration::from_secs(s.time_limit_secs);
    let mut images = Vec::with_capacity(total as usize);
    let mut last: Option<(Duration, Gray)> = None;
    let mut start = None;
    let mut shown: Option<(u32, Option<Hint>)> = None;
    let mut hint = None;
    while (images.len() as u32) < total {
        if input.cancelled() {
            return Err(SessionError::Cancelled);
        }
        let frame = cam.next_frame()?;
        let t0 = *start.get_or_insert(frame.at);
        if frame.at.saturating_sub(t0) > limit {
            return Err(SessionError::TimedOut { limit, hint });
        }
        let gray = Gray::from_frame(&frame);
        let q = measure(&gray);
        hint = gate(&q, &s.thresholds).err();
        *retries += hint.is_some() as u32;
        let due = last.as_ref().is_none_or(|(at, _)| frame.at.saturating_sub(*at) >= interval);
        if hint.is_none() && due {
            let moved = last.as_ref().is_none_or(|(_, g)| motion(g, &gray) >= s.thresholds.min_motion);
            let n = images.len() as u32;
            if n < s.liveness_frames && !moved {
                hint = Some(Hint::MoveALittle);
            } else if n < s.liveness_frames {
                let jpeg = jpeg_long_side(&frame, s.liveness_long_side, s.jpeg_quality)?;
                images.push(JobImage {
                    image_type: ImageType::LivenessFile,
                    file_name: format!("liveness_{n}.jpg"),
                    jpeg,
                });
                last = Some((frame.at, gray));
            } else {
                let jpeg = jpeg_long_side(&frame, s.selfie_long_side, s.jpeg_quality)?;
                images.push(JobImage { image_type: ImageType::SelfieFile, file_name: "selfie.jpg".into(), jpeg });
            }
        }
        // Redraw only when something the person should see changed: rendering must not slow capture.
        let state = (images.len() as u32, hint);
        if shown != Some(state) {
            shown = Some(state);
            let preview = Some((frame.width, frame.height, frame.data.clone()));
            let title = if images.len() as u32 >= s.liveness_frames {
                "Look straight at the camera"
            } else {
                "Slowly move your head"
            };
            display.show(&Screen::Capture { title: title.into(), hint, done: images.len() as u32, total, preview })?;
        }
    }
    Ok(images)
}

/// Captures one side of an ID document: the first frame that passes the gates after the card
/// has been held steady for a moment, encoded at document quality.
fn capture_document(
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &dyn Input,
    s: &CaptureSettings,
    scene: Scene,
    retries: &mut u32,
) -> Result<JobImage, SessionError> {
    cam.set_scene(scene);
    let (title, image_type, name) = match scene {
        Scene::DocumentBack => ("Show the back of your ID card", ImageType::IdBackFile, "id_back.jpg"),
        _ => ("Show the front of your ID card", ImageType::IdFrontFile, "id_front.jpg"),
    };
    let limit = Duration::from_secs(s.time_limit_secs);
    let settle = Duration::from_millis(500);
    let mut start = None;
    let mut shown = None;
    loop {
        if input.cancelled() {
            return Err(SessionError::Cancelled);
        }
        let frame = cam.next_frame()?;
        let t0 = *start.get_or_insert(frame.at);
        let hint = gate(&measure(&Gray::from_frame(&frame)), &s.thresholds).err();
        *retries += hint.is_some() as u32;
        if frame.at.saturating_sub(t0) > limit {
            return Err(SessionError::TimedOut { limit, hint });
        }
        if shown != Some(hint) {
            shown = Some(hint);
            let preview = Some((frame.width, frame.height, frame.data.clone()));
            display.show(&Screen::Capture { title: title.into(), hint, done: 0, total: 1, preview })?;
        }
        if hint.is_none() && frame.at.saturating_sub(t0) >= settle {
            let jpeg = jpeg_long_side(&frame, 1280, 95)?;
            return Ok(JobImage { image_type, file_name: name.into(), jpeg });
        }
    }
}

/// Runs one whole session and returns the validated job.
pub fn run(
    req: &SessionRequest,
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &mut dyn Input,
    s: &CaptureSettings,
) -> Result<Job, SessionError> {
    if !req.job_type.has_images() {
        return Err(SessionError::Unsupported(req.job_type));
    }
    let started = crate::smileid::timestamp::UnixMillis::now();
    display.show(&Screen::Consent { partner: req.partner_name.clone() })?;
    if !input.consent() {
        display.show(&Screen::Error { title: "Cancelled".into(), detail: "Nothing was recorded.".into() })?;
        return Err(if input.cancelled() { SessionError::Cancelled } else { SessionError::Declined });
    }
    let consent = ConsentInformation {
        consented: Consented {
            consent_granted_date: crate::smileid::timestamp::UnixMillis::now().to_iso(),
            personal_details: true,
            contact_information: true,
            document_information: req.job_type.is_document(),
        },
    };
    let mut retries = 0u32;
    let mut documents = Vec::new();
    if req.job_type.is_document() {
        documents.push(capture_document(cam, display, input, s, Scene::DocumentFront, &mut retries)?);
        if req.document_back {
            documents.push(capture_document(cam, display, input, s, Scene::DocumentBack, &mut retries)?);
        }
    }
    let mut images = capture_selfie_and_liveness(cam, display, input, s, &mut retries)?;
    // Selfie first, then liveness, then the document: the order the server SDKs send.
    images.rotate_right(1);
    images.extend(documents);
    display.show(&Screen::Review { images: images.len() as u32 })?;
    let seconds = (crate::smileid::timestamp::UnixMillis::now().0 - started.0) as f64 / 1000.0;
    let job = Job {
        partner_params: PartnerParams {
            user_id: req.user_id.clone(),
            job_id: req.job_id.clone(),
            job_type: req.job_type,
            extra: req.extra.clone(),
        },
        id_info: req.id_info.clone(),
        options: req.options.clone(),
        images,
        consent: Some(consent),
        metadata: vec![
            Metadatum { name: "capture_retries".into(), value: retries.into() },
            Metadatum { name: "session_seconds".into(), value: (seconds as u64).into() },
            Metadatum { name: "client".into(), value: concat!("kiosk-agent/", env!("CARGO_PKG_VERSION")).into() },
        ],
    };
    validate(&job)?;
    Ok(job)
}
