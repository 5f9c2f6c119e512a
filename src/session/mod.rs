//! One person's visit: consent, guided capture (ID document front and back for document
//! jobs; liveness frames and a selfie), review, and the finished [`Job`] ready for the queue.
//! Devices come in as traits, so tests drive it for real.
//!
//! ```text
//! Idle ─start─▶ Consent ─accept─▶ Capture (document front, back; liveness ×8; selfie) ─▶ Review ─▶ Queued
//!                  │ decline / timeout        │ cancel / time limit / camera lost / flat face
//!                  ▼                          ▼
//!               Declined                Cancelled / TimedOut / Failed / Refused
//! ```

pub mod active;
pub mod capture;
pub mod manager;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::camera::{CameraError, FrameSource, Scene};
use crate::display::screens::{Legend, More};
use crate::display::{Display, DisplayError, Screen};
use crate::smileid::job::{ConsentInformation, Consented, IdInfo, Job, JobOptions, JobType, Metadatum, PartnerParams};
use crate::smileid::validate::{validate, ValidationError};
use crate::vision::encode::EncodeError;
use crate::vision::quality::{Hint, Thresholds};
use capture::capture_document;

/// How liveness is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// Head turns asked for in random order, frames taken along them, flat pictures refused
    /// ([`active`]; Smile ID's enhanced SmartSelfie).
    Active,
    /// Only that the face moved between frames: weaker, a photo moved about passes.
    Motion,
}

/// Capture parameters (Smile ID's mobile SDK values by default, protocol §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSettings {
    pub liveness: Liveness,
    /// The head turns of `liveness = "active"`.
    pub active: active::ActiveSettings,
    pub liveness_frames: u32,
    pub liveness_interval_ms: u64,
    pub selfie_long_side: u32,
    pub liveness_long_side: u32,
    pub jpeg_quality: u8,
    /// Document photos: long side and quality (Smile ID's SDKs send documents at high quality).
    pub document_long_side: u32,
    pub document_jpeg_quality: u8,
    pub time_limit_secs: u64,
    /// Read so that older configs still load; unused since the face model replaced the cascade
    /// (it has no window size; `thresholds.min_tracked_face` sets the smallest face).
    pub min_face_px: u32,
    /// A new hint replaces the shown one only after this long (no flicker).
    pub hint_hold_ms: u64,
    pub thresholds: Thresholds,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        CaptureSettings {
            liveness: Liveness::Active,
            active: active::ActiveSettings::default(),
            liveness_frames: 8,
            liveness_interval_ms: 250,
            selfie_long_side: 640,
            liveness_long_side: 320,
            jpeg_quality: 80,
            document_long_side: 1280,
            document_jpeg_quality: 92,
            time_limit_secs: 120,
            min_face_px: 40,
            hint_hold_ms: 300,
            thresholds: Thresholds::default(),
        }
    }
}

/// An answer on the consent screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Show the whole consent text; shown, its next page.
    More,
    /// The whole consent text's previous page.
    Previous,
    /// Back from the whole text to the short one.
    Back,
}

/// The person's answers.
pub trait Input {
    /// True when the person accepts the consent screen (blocks until they answer or give up).
    fn consent(&mut self) -> bool;
    /// True when the person answers by tapping the panel (a touch panel): the consent screen
    /// offers the whole text, and buttons show no press or hold legend.
    fn touch(&self) -> bool {
        false
    }
    /// True when a push button answers (press: yes, hold: no).
    fn button(&self) -> bool {
        false
    }
    /// True when a keyboard or keypad answers (Enter: yes, Esc: no, the arrow on: the whole
    /// consent text).
    fn keys(&self) -> bool {
        false
    }
    /// What the screen's buttons say under their labels: nothing with a touch panel (they are
    /// tapped), else the push button's "Press"/"Hold", else the keys' "Enter"/"Esc".
    fn legend(&self) -> Legend {
        match (self.touch(), self.button(), self.keys()) {
            (true, _, _) => Legend::None,
            (false, true, _) => Legend::Button,
            (false, false, true) => Legend::Keys,
            (false, false, false) => Legend::None,
        }
    }
    /// One answer on the consent screens; inputs without a "read more" answer yes or no only.
    fn consent_answer(&mut self) -> Answer {
        if self.consent() {
            Answer::Yes
        } else {
            Answer::No
        }
    }
    /// True once the session should stop (the host cancelled it).
    fn cancelled(&self) -> bool {
        false
    }
    /// True when someone at the kiosk can answer the review of a document photo; without, the
    /// photo (which passed every check) is kept unasked.
    fn reviews(&self) -> bool {
        true
    }
    /// The person's answer to the photo of a document side shown for review.
    fn confirm(&mut self, _scene: Scene) -> Review {
        Review::Keep
    }
}

/// An answer to a document photo's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Keep,
    Retake,
    /// Nobody answered in time: the person walked away. Going on would photograph whoever comes
    /// next for this person's job, so the visit ends and nothing is kept.
    Gone,
}

/// Input that answers from a script: for the demo and tests (a real button lives behind the same trait).
pub struct ScriptedInput {
    pub accept: bool,
    /// Answers to the document review, in order; once used up, every photo is accepted.
    pub confirmations: Vec<bool>,
}

impl ScriptedInput {
    pub fn accepting() -> Self {
        ScriptedInput { accept: true, confirmations: Vec::new() }
    }
}

impl Input for ScriptedInput {
    fn consent(&mut self) -> bool {
        self.accept
    }
    fn confirm(&mut self, _scene: Scene) -> Review {
        match self.confirmations.is_empty() || self.confirmations.remove(0) {
            true => Review::Keep,
            false => Review::Retake,
        }
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
    /// The person's language for the screens (the display keeps its own when `None`).
    pub texts: Option<std::sync::Arc<crate::display::Texts>>,
    /// The uid of the control-API peer that asked: the one operator that may read the result.
    pub owner: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the person declined consent; nothing was captured")]
    Declined,
    #[error("the session was cancelled; nothing was kept")]
    Cancelled,
    #[error("nobody answered the document photo's review in time (the person walked away); nothing was kept")]
    WalkedAway,
    #[error("capture took longer than {limit:?}; last problem: {}. Ask the person to try again", hint.map(crate::display::screens::hint_text).unwrap_or_else(|| "none".into()))]
    TimedOut { limit: Duration, hint: Option<Hint> },
    #[error("liveness refused: {}the face's keypoints stayed on one plane ({flatness:.3} of the eye distance): a photo, a screen, or a head that did not turn. Nothing was kept; ask the person to stand in front of the camera themselves and follow the arrows", if *timed_out { "the head turns were not made in time and " } else { "" })]
    NotLive { flatness: f32, timed_out: bool },
    #[error(transparent)]
    Camera(#[from] CameraError),
    #[error(transparent)]
    Display(#[from] DisplayError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("the captured job is not valid: {0}")]
    Invalid(#[from] ValidationError),
    #[error("job type {} takes no photos, so it has no capture session (Enhanced KYC is a direct call: POST /v1/enhanced_kyc)", .0.code())]
    Unsupported(JobType),
}

/// A fresh job id: time-ordered and random, unique across kiosks.
pub fn new_job_id() -> String {
    let mut r = [0u8; 6];
    getrandom::fill(&mut r).expect("the OS random source works");
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("kiosk-{}-{hex}", crate::smileid::timestamp::UnixMillis::now().0)
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
    if let Some(t) = &req.texts {
        display.set_texts(t.clone());
    }
    let partner = req.partner_name.clone();
    // The whole text's page, once opened; "more" again turns the page.
    let mut more: Option<u16> = None;
    loop {
        // The whole text is offered where it can be opened: a tap, or the arrow key.
        let view = match (more, input.touch() || input.keys()) {
            (Some(page), _) => More::Open(page),
            (None, true) => More::Link,
            (None, false) => More::No,
        };
        let face_only = matches!(req.job_type, JobType::SmartSelfieEnrollment | JobType::SmartSelfieAuthentication);
        display.show(&Screen::Consent { partner: partner.clone(), more: view, legend: input.legend(), face_only })?;
        match input.consent_answer() {
            Answer::Yes => break,
            Answer::No => {
                display.show(&Screen::Error { problem: crate::display::screens::Problem::Cancelled })?;
                return Err(if input.cancelled() { SessionError::Cancelled } else { SessionError::Declined });
            }
            // Counted on past the last page (the screen wraps it), and back to the first.
            Answer::More => more = Some(more.map_or(0, |p| p.saturating_add(1))),
            Answer::Previous => more = more.map(|p| p.saturating_sub(1)),
            Answer::Back => more = None,
        }
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
    let face = capture::capture_face(cam, display, input, s, &mut retries)?;
    let (mut images, quality) = (face.images, face.selfie_quality);
    // Selfie first, then liveness, then the document: the order the server SDKs send.
    images.rotate_right(1);
    images.extend(documents);
    display.show(&Screen::Review { images: images.len() as u32 })?;
    let seconds = (crate::smileid::timestamp::UnixMillis::now().0 - started.0) as f64 / 1000.0;
    let mut job = Job {
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
    let round = |v: f32| serde_json::Value::from((v * 10.0).round() as f64 / 10.0);
    if let Some(q) = quality {
        // The selfie's mean brightness (0-255) and the face's sharpness: a camera's drift shows here.
        job.metadata.push(Metadatum { name: "selfie_brightness".into(), value: round(q.mean_luma) });
        job.metadata.push(Metadatum { name: "selfie_sharpness".into(), value: round(q.sharpness) });
    }
    if let Some(p) = face.selfie_pose {
        // Degrees, as the person turned: yaw > 0 to their left, pitch > 0 up, roll > 0 clockwise.
        job.metadata.push(Metadatum { name: "selfie_yaw".into(), value: round(p.yaw) });
        job.metadata.push(Metadatum { name: "selfie_pitch".into(), value: round(p.pitch) });
        job.metadata.push(Metadatum { name: "selfie_roll".into(), value: round(p.roll) });
    }
    match &face.tasks {
        // `active_liveness_type` as Smile ID's SDKs send it; the rest are the kiosk's own: the
        // tasks in the order asked, how long each one that was done took (ms, from the previous
        // one), and whether they timed out (the SDKs report that as a failure reason instead).
        Some((tasks, timed_out)) => {
            job.metadata.push(Metadatum { name: "active_liveness_type".into(), value: "head_pose".into() });
            let order: Vec<&str> = tasks.iter().map(|t| t.task.name()).collect();
            job.metadata.push(Metadatum { name: "active_liveness_tasks".into(), value: order.join(",").into() });
            for t in tasks {
                if let Some(ms) = t.took_ms {
                    let name = format!("active_liveness_{}_ms", t.task.name());
                    job.metadata.push(Metadatum { name, value: ms.into() });
                }
            }
            job.metadata.push(Metadatum { name: "active_liveness_timed_out".into(), value: (*timed_out).into() });
        }
        None => job.metadata.push(Metadatum { name: "liveness_check".into(), value: "motion".into() }),
    }
    if let Some(f) = face.flatness {
        // How far the liveness frames' keypoints miss one plane, as a share of the eye distance.
        let v = serde_json::Value::from((f * 1000.0).round() as f64 / 1000.0);
        job.metadata.push(Metadatum { name: "liveness_flatness".into(), value: v });
    }
    validate(&job)?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Can(bool, bool, bool);

    impl Input for Can {
        fn consent(&mut self) -> bool {
            true
        }
        fn touch(&self) -> bool {
            self.0
        }
        fn button(&self) -> bool {
            self.1
        }
        fn keys(&self) -> bool {
            self.2
        }
    }

    #[test]
    fn the_buttons_legend_names_what_answers_them() {
        // A finger taps the buttons themselves; else the push button's press and hold; else keys.
        assert_eq!(Can(true, true, true).legend(), Legend::None);
        assert_eq!(Can(false, true, true).legend(), Legend::Button);
        assert_eq!(Can(false, false, true).legend(), Legend::Keys);
        assert_eq!(Can(false, false, false).legend(), Legend::None);
    }
}
