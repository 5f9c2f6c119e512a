//! Guided capture: the loops that read frames, run the gates, show the debounced hint and keep
//! the frames Smile ID expects.
//!
//! Liveness, active (the default): the first good frame facing the camera is the person's
//! neutral pose, then the head turns of [`super::active`] are asked for with arrows and the
//! frames are kept along them; frames are analysed at most every 100 ms. If the turns time out,
//! the remaining frames are taken as in motion mode and the job is flagged. Then the frames'
//! keypoints must leave the neutral frame's plane ([`crate::vision::planar`]) in three frames,
//! or the session ends refused (fail closed: no measure is no proof): a photo or a screen.
//! Liveness, motion (weaker): frames at least `liveness_interval_ms` apart, each passing every
//! face gate with the face box moved by `min_motion` of its width since the last one kept.
//! Then the selfie: the next frame that passes (and is within the pose limits). One person is
//! followed throughout ([`crate::vision::track`]): if their face leaves or another takes its
//! place, what was kept is dropped and, after a moment's notice, the capture starts again (with
//! the time left; too little for new turns, and it ends as timed out).
//! Frames that come before they could be kept are shown but not analysed. Documents: a frame that passes the
//! document gates for half a second, shown for review, retaken if the person says no. A camera
//! that goes away (unplugged, stalled) puts "camera missing" on screen while the camera is
//! looked for again; every loop ends at the time limit with the last problem as its reason.

use std::time::{Duration, Instant};

use super::active::{Active, ActiveSettings, Task, TaskRecord, AFTER_TURNS_SECS, MIN_TURN_SECS};
use super::{CaptureSettings, Input, Liveness, Review, SessionError};
use crate::camera::{Frame, FrameSource, Scene};
use crate::display::screens::{FaceStep, Problem, Side};
use crate::display::{Display, Screen};
use crate::smileid::job::{ImageType, JobImage};
use crate::vision::decode::rgb;
use crate::vision::encode::{fit_long_side, jpeg, jpeg_long_side};
use crate::vision::face::FaceBox;
use crate::vision::planar::{flatness, Points};
use crate::vision::pose::Pose;
use crate::vision::quality::{analyze_document, analyze_face, face_motion, prepare, Debounce, Hint, Quality};
use crate::vision::track::{Seen, Tracker};

/// Wall-clock limit and camera-loss handling shared by the capture loops.
struct Clock {
    limit: Duration,
    started: Instant,
    first_frame: Option<Duration>,
}

impl Clock {
    fn new(s: &CaptureSettings) -> Self {
        Clock { limit: Duration::from_secs(s.time_limit_secs), started: Instant::now(), first_frame: None }
    }

    /// What is left of the limit at camera time `frame_at` (by the camera's clock and the wall
    /// clock, whichever has run further).
    fn left(&self, frame_at: Duration) -> Duration {
        let camera = frame_at.saturating_sub(self.first_frame.unwrap_or(frame_at));
        self.limit.saturating_sub(camera.max(self.started.elapsed()))
    }

    /// Over the limit by the camera's clock (virtual for the synthetic camera) or the wall clock.
    fn over(&mut self, frame_at: Option<Duration>) -> bool {
        if let Some(at) = frame_at {
            let t0 = *self.first_frame.get_or_insert(at);
            if at.saturating_sub(t0) > self.limit {
                return true;
            }
        }
        self.started.elapsed() > self.limit
    }
}

/// The next frame; while the camera is missing, says so on screen and keeps looking.
fn next_frame(
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &dyn Input,
    clock: &mut Clock,
) -> Result<Frame, SessionError> {
    let mut shown = false;
    loop {
        if input.cancelled() {
            return Err(SessionError::Cancelled);
        }
        match cam.next_frame() {
            Ok(f) => return Ok(f),
            Err(e) if e.is_transient() => {
                // Once per outage: it is looked for every 300 ms.
                if !shown {
                    crate::log::warn(&e.to_string(), &[]);
                }
                // Out of time with the camera still gone: the camera's failure, not the person's.
                if clock.over(None) {
                    return Err(e.into());
                }
                if !shown {
                    shown = true;
                    display.show(&Screen::Error { problem: Problem::CameraMissing })?;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Live displays get a new preview at most this often.
const PREVIEW_EVERY: Duration = Duration::from_millis(66);

/// RGB preview for the display, at most 320 px wide (no panel shows more of it).
fn preview(frame: &Frame) -> Option<(u32, u32, Vec<u8>)> {
    rgb(frame).ok().map(|p| fit_long_side(&p, 320)).map(|p| (p.width, p.height, p.data))
}

/// Captures the liveness frames, then one selfie. Liveness images come back first in capture
/// order, the selfie last.
pub fn capture_selfie_and_liveness(
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &dyn Input,
    s: &CaptureSettings,
    retries: &mut u32,
) -> Result<Vec<JobImage>, SessionError> {
    capture_face(cam, display, input, s, retries).map(|c| c.images)
}

/// What a face capture gives besides its images: measurements for the job's metadata.
pub struct FaceCapture {
    pub images: Vec<JobImage>,
    /// The selfie frame's brightness and the face's sharpness (the fleet's camera trends).
    pub selfie_quality: Option<Quality>,
    pub selfie_pose: Option<Pose>,
    /// How far the liveness frames' keypoints are from one plane ([`crate::vision::planar`]):
    /// a print or a screen stays near 0.
    pub flatness: Option<f32>,
    /// Active liveness: the tasks in the order asked, how long each took, whether they timed out.
    pub tasks: Option<(Vec<TaskRecord>, bool)>,
}

/// Active-liveness frames are analysed at most this often (a turn held 150 ms is seen twice).
const TRACK_EVERY: Duration = Duration::from_millis(100);
/// After a restart, "starting again" stays on screen this long before the capture goes on.
const RESTART_NOTICE: Duration = Duration::from_secs(2);

/// [`capture_selfie_and_liveness`], also measuring the selfie and the liveness frames.
pub fn capture_face(
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &dyn Input,
    s: &CaptureSettings,
    retries: &mut u32,
) -> Result<FaceCapture, SessionError> {
    cam.set_scene(Scene::Face);
    let (mut selfie_quality, mut selfie_pose) = (None, None);
    // Keypoints (pixels) and yaw of each liveness frame kept.
    let mut kept: Vec<(Points, f32)> = Vec::new();
    let total = s.liveness_frames + 1;
    let interval = Duration::from_millis(s.liveness_interval_ms);
    let mut active =
        (s.liveness == Liveness::Active).then(|| Active::new(Task::shuffled(), s.liveness_frames, interval, &s.active));
    let mut clock = Clock::new(s);
    let mut debounce = Debounce::new(Duration::from_millis(s.hint_hold_ms));
    let mut images = Vec::with_capacity(total as usize);
    let mut last: Option<(Duration, FaceBox)> = None;
    let mut analysed: Option<Duration> = None;
    let mut shown: Option<(u32, Option<Hint>)> = None;
    let mut drawn_at = Duration::ZERO;
    let mut hint = None;
    let mut tracker = Tracker::default();
    let mut notice_until: Option<Duration> = None;
    while (images.len() as u32) < total {
        let frame = next_frame(cam, display, input, &mut clock)?;
        if clock.over(Some(frame.at)) {
            return Err(SessionError::TimedOut { limit: clock.limit, hint });
        }
        let n = images.len() as u32;
        // Until the turns are done (or timed out) the selfie waits, however many frames are kept.
        let tracking = active.as_ref().is_some_and(|a| !a.done() && !a.timed_out());
        // The first frame of active liveness sets the person's neutral pose: it must face the
        // camera (the selfie's limits), or a turn from it could be out of reach.
        let neutral_next = tracking && active.as_ref().is_some_and(|a| a.task().is_none());
        // Nothing can be kept before the interval is up: such frames are shown, not analysed
        // (a Pi's CPU is better spent; an emulated one would take minutes). Head turns are
        // followed more closely.
        let due = if tracking {
            analysed.is_none_or(|at| frame.at.saturating_sub(at) >= TRACK_EVERY)
        } else {
            last.is_none_or(|(at, _)| frame.at.saturating_sub(at) >= interval)
        };
        // After a restart the capture pauses while "starting again" is read.
        let paused = notice_until.is_some_and(|until| frame.at < until);
        if paused {
            hint = Some(Hint::StartAgain);
        } else if due {
            analysed = Some(frame.at);
            let Ok(prepared) = prepare(&frame) else {
                *retries += 1;
                continue;
            };
            let a = analyze_face(&prepared, &s.thresholds);
            // One person from the first kept frame to the selfie: when the tracked face leaves or
            // another takes its place, everything kept so far is dropped and the capture restarts,
            // with new turns (Smile ID's SDK does the same when its tracker's face changes).
            if tracker.observe(frame.at, &a.faces) == Seen::Changed && !images.is_empty() {
                crate::log::warn(
                    &format!(
                        "the face being captured left or changed after {} of {total} frames; the capture starts again",
                        images.len()
                    ),
                    &[],
                );
                images.clear();
                kept.clear();
                last = None;
                if active.is_some() {
                    // The new turns get what is left of the time limit, less the notice and what
                    // the selfie needs after them; too little, and the time is up now rather than
                    // at a refusal for turns nobody had time to make.
                    let left = clock.left(frame.at).saturating_sub(RESTART_NOTICE).as_secs();
                    let turns = left.saturating_sub(AFTER_TURNS_SECS).min(s.active.timeout_secs);
                    let needed = (MIN_TURN_SECS * 1000).max(2 * interval.as_millis() as u64 * s.liveness_frames as u64);
                    if turns * 1000 < needed {
                        crate::log::warn(
                            "the face changed too late to start the head turns again; the capture ends",
                            &[],
                        );
                        return Err(SessionError::TimedOut { limit: clock.limit, hint });
                    }
                    let settings = ActiveSettings { timeout_secs: turns, ..s.active };
                    active = Some(Active::new(Task::shuffled(), s.liveness_frames, interval, &settings));
                }
                cam.prompt(None);
                notice_until = Some(frame.at + RESTART_NOTICE);
                debounce.show_now(Some(Hint::StartAgain));
                *retries += 1;
                // The capture goes on after the notice: its first frame must face the camera to be
                // the new neutral one, which this frame was not checked for.
                continue;
            }
            // The pose limits are the selfie's (and the neutral frame's): liveness frames are
            // taken as the head moves.
            hint = a.hint.filter(|h| !(*h == Hint::LookStraight && n < s.liveness_frames && !neutral_next));
            let mut keep_liveness = false;
            if let (true, Some(act)) = (tracking, active.as_mut()) {
                let good = a.pose.filter(|_| hint.is_none() && a.face.is_some());
                keep_liveness = act.observe(frame.at, good).keep && n < s.liveness_frames;
                cam.prompt(act.task());
                *retries += hint.is_some() as u32;
                if hint.is_none() {
                    hint = act.task().map(|t| match t {
                        Task::TurnLeft => Hint::TurnLeft,
                        Task::TurnRight => Hint::TurnRight,
                        Task::LookUp => Hint::LookUp,
                    });
                }
                if act.timed_out() {
                    crate::log::warn("the person did not make the head turns in time; the capture goes on without them (the job is flagged, and refused unless its frames show a head's depth)", &[]);
                }
            } else if let (None, Some(face)) = (hint, a.face) {
                let moved = last.is_none_or(|(_, prev)| face_motion(&prev, &face) >= s.thresholds.min_motion);
                if n < s.liveness_frames && !moved {
                    hint = Some(Hint::MoveALittle);
                } else {
                    keep_liveness = n < s.liveness_frames;
                }
                *retries += hint.is_some() as u32;
            } else {
                *retries += 1;
            }
            if keep_liveness {
                let jpeg = jpeg_long_side(&frame, s.liveness_long_side, s.jpeg_quality)?;
                images.push(JobImage {
                    image_type: ImageType::LivenessFile,
                    file_name: format!("liveness_{n}.jpg"),
                    jpeg,
                });
                last = a.face.map(|f| (frame.at, f));
                if let (Some(d), Some(p)) = (a.detection, a.pose) {
                    let (w, h) = (prepared.size.0 as f32, prepared.size.1 as f32);
                    kept.push((d.keypoints.map(|(x, y)| (x * w, y * h)), p.yaw));
                }
            } else if let (None, Some(_), true, false) = (hint, a.face, n >= s.liveness_frames, tracking) {
                let jpeg = jpeg_long_side(&frame, s.selfie_long_side, s.jpeg_quality)?;
                images.push(JobImage { image_type: ImageType::SelfieFile, file_name: "selfie.jpg".into(), jpeg });
                selfie_quality = Some(a.quality);
                selfie_pose = a.pose;
            }
        }
        // Redraw when what the person should see changed, and on live displays (drawn on their own
        // thread) also to move the preview along, at most 15 times a second.
        let state = (images.len() as u32, debounce.update(hint, frame.at));
        let refresh = display.live() && frame.at.saturating_sub(drawn_at) >= PREVIEW_EVERY;
        if shown != Some(state) || refresh {
            shown = Some(state);
            drawn_at = frame.at;
            // A turn still asked for keeps the turning title: "look straight at the camera"
            // over "turn to your right" would say two things at once.
            let turning = matches!(state.1, Some(Hint::TurnLeft | Hint::TurnRight | Hint::LookUp));
            let step = if images.len() as u32 >= s.liveness_frames && !turning {
                FaceStep::Selfie
            } else {
                FaceStep::Liveness
            };
            display.show(&Screen::Face {
                step,
                hint: state.1,
                done: images.len() as u32,
                total,
                preview: preview(&frame),
            })?;
        }
    }
    cam.prompt(None);
    // The reference the others are compared with: the neutral frame of active liveness (it faced
    // the camera), else the most frontal frame.
    let front = match active {
        Some(_) => (!kept.is_empty()).then_some(0),
        None => (0..kept.len()).min_by(|&a, &b| kept[a].1.abs().total_cmp(&kept[b].1.abs())),
    };
    let flatness = front.and_then(|r| {
        let others: Vec<Points> = kept.iter().enumerate().filter(|(i, _)| *i != r).map(|(_, k)| k.0).collect();
        flatness(&kept[r].0, &others)
    });
    // Active liveness fails closed: no measure of depth (too few frames) is no proof of a head.
    if let Some(act) = &active {
        let depth = flatness.unwrap_or(0.0);
        if s.active.min_depth > 0.0 && depth < s.active.min_depth {
            let turns = if act.timed_out() { "the head turns were not made in time and " } else { "" };
            crate::log::warn(
                &format!(
                    "liveness refused: {turns}the face's keypoints stayed on one plane ({depth:.3} of the eye distance, under {}): a photo, a screen, or a head that did not turn",
                    s.active.min_depth
                ),
                &[],
            );
            display.show(&Screen::Error { problem: Problem::NotLive })?;
            return Err(SessionError::NotLive { flatness: depth, timed_out: act.timed_out() });
        }
    }
    let tasks = active.map(|a| (a.record(), a.timed_out()));
    if let Some((record, timed_out)) = &tasks {
        let done: Vec<String> = record
            .iter()
            .map(|t| format!("{} {}", t.task.name(), t.took_ms.map_or("not done".into(), |ms| format!("{ms} ms"))))
            .collect();
        let how = if *timed_out { "timed out" } else { "done" };
        let depth = flatness.map_or("-".into(), |f| format!("{f:.3}"));
        crate::log::info(&format!("active liveness {how}: {}; depth {depth}", done.join(", ")), &[]);
    }
    Ok(FaceCapture { images, selfie_quality, selfie_pose, flatness, tasks })
}

/// Captures one side of an ID document: a frame that has passed the document gates for half a
/// second, shown to the person, kept when they accept it.
pub fn capture_document(
    cam: &mut dyn FrameSource,
    display: &mut dyn Display,
    input: &mut dyn Input,
    s: &CaptureSettings,
    scene: Scene,
    retries: &mut u32,
) -> Result<JobImage, SessionError> {
    cam.set_scene(scene);
    let (side, image_type, name) = match scene {
        Scene::DocumentBack => (Side::Back, ImageType::IdBackFile, "id_back.jpg"),
        _ => (Side::Front, ImageType::IdFrontFile, "id_front.jpg"),
    };
    let settle = Duration::from_millis(500);
    let mut clock = Clock::new(s);
    let mut debounce = Debounce::new(Duration::from_millis(s.hint_hold_ms));
    let mut good_since: Option<Duration> = None;
    let mut shown = None;
    let mut hint = None;
    loop {
        let frame = next_frame(cam, display, input, &mut clock)?;
        if clock.over(Some(frame.at)) {
            return Err(SessionError::TimedOut { limit: clock.limit, hint });
        }
        let Ok(prepared) = prepare(&frame) else {
            *retries += 1;
            continue;
        };
        hint = analyze_document(&prepared, &s.thresholds).hint;
        *retries += hint.is_some() as u32;
        good_since = if hint.is_none() { Some(good_since.unwrap_or(frame.at)) } else { None };
        let show = debounce.update(hint, frame.at);
        if shown != Some(show) {
            shown = Some(show);
            display.show(&Screen::Document {
                side,
                hint: show,
                preview: preview(&frame),
                review: false,
                legend: input.legend(),
            })?;
        }
        if good_since.is_some_and(|t| frame.at.saturating_sub(t) >= settle) {
            let img =
                fit_long_side(&rgb(&frame).map_err(crate::vision::encode::EncodeError::from)?, s.document_long_side);
            // Asked only of someone who can answer: else the question would flash and answer itself.
            if input.reviews() {
                display.show(&Screen::Document {
                    side,
                    hint: None,
                    preview: Some((img.width, img.height, img.data.clone())),
                    review: true,
                    legend: input.legend(),
                })?;
            }
            match input.confirm(scene) {
                Review::Keep => {
                    return Ok(JobImage {
                        image_type,
                        file_name: name.into(),
                        jpeg: jpeg(&img, s.document_jpeg_quality)?,
                    })
                }
                Review::Gone => {
                    // The person's ID photo does not stay on the panel for whoever comes next.
                    display.show(&Screen::Error { problem: Problem::Cancelled })?;
                    return Err(SessionError::WalkedAway);
                }
                Review::Retake => {}
            }
            *retries += 1;
            good_since = None;
            shown = None;
        }
    }
}
