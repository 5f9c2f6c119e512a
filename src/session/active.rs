//! Active liveness, sans-IO: the head turns Smile ID's enhanced SmartSelfie asks for (turn left,
//! turn right, look up, in random order, each held for a moment), and which frames along them
//! become the liveness images. Poses come in with their frame times; what to ask the person and
//! whether to keep the frame come out. The capture loop owns the camera, the clock and the screen.
//!
//! ```text
//!            first good frame                 task reached and held        last task held
//! Baseline ───(kept, sets the ──▶ Task 1 ───▶ Task 2 ───▶ Task 3 ───────▶ Done
//!              person's neutral)    │ (frames kept at checkpoints along each turn)
//!                                   └──── timeout: the tasks stop; TimedOut (caller goes on
//!                                          without them and flags the job)
//! ```
//!
//! Angles are measured from the person's own neutral pose (the first kept frame), so a camera
//! mounted high or a person's own posture does not count as a turn.
//!
//! ```
//! use std::time::Duration;
//! use kiosk_agent::session::active::{Active, ActiveSettings, Task};
//! use kiosk_agent::vision::pose::Pose;
//!
//! let pose = |yaw, pitch| Some(Pose { yaw, pitch, roll: 0.0, confidence: 1.0 });
//! let ms = Duration::from_millis;
//! let s = ActiveSettings::default();
//! let mut a = Active::new([Task::TurnLeft, Task::LookUp, Task::TurnRight], 4, ms(250), &s);
//! assert!(a.observe(ms(0), pose(0.0, 0.0)).keep); // the neutral frame
//! assert_eq!(a.task(), Some(Task::TurnLeft));
//! assert!(!a.observe(ms(300), pose(20.0, 0.0)).keep); // on the way
//! assert!(!a.observe(ms(400), pose(30.0, 0.0)).keep); // there: now hold it
//! assert!(a.observe(ms(600), pose(31.0, 0.0)).keep); // held 200 ms: kept
//! assert_eq!(a.task(), Some(Task::LookUp));
//! a.observe(ms(900), pose(2.0, 18.0));
//! assert!(a.observe(ms(1100), pose(1.0, 19.0)).keep);
//! a.observe(ms(1400), pose(-28.0, 0.0));
//! assert!(a.observe(ms(1600), pose(-29.0, 1.0)).keep);
//! assert!(a.done() && !a.timed_out());
//! assert_eq!(a.record().len(), 3);
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::vision::pose::Pose;

/// One head movement the person is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// To the person's own left (yaw > 0).
    TurnLeft,
    TurnRight,
    LookUp,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::TurnLeft, Task::TurnRight, Task::LookUp];

    /// The three tasks in a random order (a recording of one order cannot answer another).
    pub fn shuffled() -> [Task; 3] {
        let mut r = [0u8; 1];
        getrandom::fill(&mut r).expect("the OS random source works");
        let mut t = Task::ALL;
        // Six orders; the modulo bias of 256 % 6 is immaterial here.
        let n = r[0] as usize % 6;
        t.swap(0, n % 3);
        t[1..].rotate_left(n / 3);
        t
    }

    pub fn name(self) -> &'static str {
        match self {
            Task::TurnLeft => "turn_left",
            Task::TurnRight => "turn_right",
            Task::LookUp => "look_up",
        }
    }

    /// How far (degrees) the head is turned the task's way from `neutral`.
    fn progress(self, p: &Pose, neutral: (f32, f32)) -> f32 {
        match self {
            Task::TurnLeft => p.yaw - neutral.0,
            Task::TurnRight => neutral.0 - p.yaw,
            Task::LookUp => p.pitch - neutral.1,
        }
    }
}

/// The turns get at least this many seconds...
pub const MIN_TURN_SECS: u64 = 5;
/// ... and leave at least this many of the capture's time limit for the frames and the selfie
/// after them.
pub const AFTER_TURNS_SECS: u64 = 15;

/// How far each turn must go and for how long (Smile ID's enhanced SmartSelfie values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActiveSettings {
    /// Degrees of yaw for a turn left or right.
    pub turn_yaw: f32,
    /// Degrees of pitch for looking up.
    pub look_up_pitch: f32,
    /// How long the turn must be held, in milliseconds.
    pub hold_ms: u64,
    /// After this many seconds from the neutral frame the tasks stop (timed out): the capture
    /// goes on without them and the job is flagged (its frames must still show depth).
    pub timeout_secs: u64,
    /// Liveness frames whose keypoints stay closer to one plane than this share of the eye
    /// distance are a flat picture and refused ([`crate::vision::planar`]); 0 turns it off.
    pub min_depth: f32,
}

impl Default for ActiveSettings {
    fn default() -> Self {
        ActiveSettings { turn_yaw: 27.0, look_up_pitch: 17.0, hold_ms: 150, timeout_secs: 45, min_depth: 0.07 }
    }
}

/// What became of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaskRecord {
    pub task: Task,
    /// Milliseconds from the task being asked to it being held; `None` if it never was.
    pub took_ms: Option<u64>,
}

/// What to do with the frame just observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Keep this frame as a liveness image.
    pub keep: bool,
}

/// The tasks' state; see the module docs.
#[derive(Debug, Clone)]
pub struct Active {
    s: ActiveSettings,
    interval: Duration,
    tasks: [Task; 3],
    /// Frames to keep along each task (the neutral frame is kept before them).
    per_task: [u32; 3],
    current: usize,
    /// Checkpoints of the current task already kept.
    kept_in_task: u32,
    neutral: Option<(f32, f32)>,
    started: Option<Duration>,
    task_started: Duration,
    held_since: Option<Duration>,
    last_kept: Option<Duration>,
    took: [Option<u64>; 3],
    timed_out: bool,
}

impl Active {
    /// `frames` liveness frames in all, at least `interval` apart: one neutral, the rest spread
    /// over the tasks.
    pub fn new(tasks: [Task; 3], frames: u32, interval: Duration, s: &ActiveSettings) -> Active {
        let rest = frames.saturating_sub(1);
        let per_task = std::array::from_fn(|i| rest / 3 + u32::from((i as u32) < rest % 3));
        Active {
            s: *s,
            interval,
            tasks,
            per_task,
            current: 0,
            kept_in_task: 0,
            neutral: None,
            started: None,
            task_started: Duration::ZERO,
            held_since: None,
            last_kept: None,
            took: [None; 3],
            timed_out: false,
        }
    }

    /// The task being asked for now; `None` before the neutral frame and once all are done.
    pub fn task(&self) -> Option<Task> {
        (self.neutral.is_some() && !self.done() && !self.timed_out).then(|| self.tasks[self.current])
    }

    /// All three tasks held.
    pub fn done(&self) -> bool {
        self.current >= 3
    }

    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Each task in the order asked, and how long it took.
    pub fn record(&self) -> Vec<TaskRecord> {
        self.tasks.iter().zip(self.took).map(|(&task, took_ms)| TaskRecord { task, took_ms }).collect()
    }

    /// A frame at `at` whose face passed the capture gates with `pose`, or `None` for a frame
    /// without a usable face (it only moves the clock on).
    pub fn observe(&mut self, at: Duration, pose: Option<Pose>) -> Step {
        let skip = Step { keep: false };
        if self.done() || self.timed_out {
            return skip;
        }
        if let Some(t0) = self.started {
            if at.saturating_sub(t0) >= Duration::from_secs(self.s.timeout_secs) {
                self.timed_out = true;
                return skip;
            }
        }
        let Some(p) = pose.filter(Pose::measured) else {
            self.held_since = None;
            return skip;
        };
        let Some(neutral) = self.neutral else {
            self.neutral = Some((p.yaw, p.pitch));
            self.started = Some(at);
            self.task_started = at;
            self.last_kept = Some(at);
            return Step { keep: true };
        };
        let task = self.tasks[self.current];
        let target = match task {
            Task::LookUp => self.s.look_up_pitch,
            _ => self.s.turn_yaw,
        };
        let turned = task.progress(&p, neutral);
        let spaced = self.last_kept.is_none_or(|t| at.saturating_sub(t) >= self.interval);
        let k = self.per_task[self.current];
        if turned >= target {
            let since = *self.held_since.get_or_insert(at);
            // A quick turn can pass checkpoints between two frames (or within the interval):
            // they are taken while the turn is held.
            if self.kept_in_task + 1 < k && spaced {
                self.kept_in_task += 1;
                self.last_kept = Some(at);
                return Step { keep: true };
            }
            if at.saturating_sub(since) >= Duration::from_millis(self.s.hold_ms) && spaced {
                self.took[self.current] = Some(at.saturating_sub(self.task_started).as_millis() as u64);
                self.next_task(at);
                return Step { keep: k > 0 };
            }
            return skip;
        }
        self.held_since = None;
        // Checkpoints along the way at 1/k, 2/k … of the target; the last is the held pose.
        let next = self.kept_in_task + 1;
        if next < k && turned >= target * next as f32 / k as f32 && spaced {
            self.kept_in_task = next;
            self.last_kept = Some(at);
            return Step { keep: true };
        }
        skip
    }

    fn next_task(&mut self, at: Duration) {
        self.current += 1;
        self.kept_in_task = 0;
        self.held_since = None;
        self.task_started = at;
        self.last_kept = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pose(yaw: f32, pitch: f32) -> Option<Pose> {
        Some(Pose { yaw, pitch, roll: 0.0, confidence: 1.0 })
    }
    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// A person who turns smoothly to each asked pose and back, sampled at 10 Hz.
    fn follow(a: &mut Active, overshoot: f32) -> (u32, Duration) {
        let (mut kept, mut t) = (0, 0u64);
        let (mut yaw, mut pitch) = (0.0f32, 0.0f32);
        while !a.done() && !a.timed_out() {
            let (ty, tp) = match a.task() {
                Some(Task::TurnLeft) => (27.0 + overshoot, 0.0),
                Some(Task::TurnRight) => (-27.0 - overshoot, 0.0),
                Some(Task::LookUp) => (0.0, 17.0 + overshoot),
                None => (0.0, 0.0),
            };
            yaw += (ty - yaw).clamp(-6.0, 6.0);
            pitch += (tp - pitch).clamp(-6.0, 6.0);
            kept += a.observe(ms(t), pose(yaw + 3.0, pitch - 8.0)).keep as u32;
            t += 100;
        }
        (kept, ms(t))
    }

    #[test]
    fn a_person_who_turns_gives_every_frame_along_the_turns() {
        for frames in [8, 7, 4, 1] {
            let mut a = Active::new(Task::shuffled(), frames, ms(250), &ActiveSettings::default());
            let (kept, took) = follow(&mut a, 5.0);
            assert!(a.done() && !a.timed_out(), "{frames}");
            assert_eq!(kept, frames, "{frames} frames");
            assert!(took < ms(10_000), "{took:?}");
            assert!(a.record().iter().all(|r| r.took_ms.is_some()));
        }
    }

    #[test]
    fn a_turn_short_of_the_threshold_is_never_done_and_times_out() {
        let s = ActiveSettings { timeout_secs: 20, ..ActiveSettings::default() };
        let mut a = Active::new([Task::TurnLeft, Task::TurnRight, Task::LookUp], 8, ms(250), &s);
        let (kept, took) = follow(&mut a, -3.0);
        assert!(a.timed_out() && !a.done());
        assert_eq!(a.task(), None);
        // The neutral frame and the checkpoints on the way to a turn that never arrives.
        assert_eq!(kept, 3);
        assert!(took >= ms(20_000) && took < ms(20_500), "{took:?}");
        assert_eq!(a.record()[0].took_ms, None);
    }

    #[test]
    fn the_turn_must_be_held_and_the_frames_spaced() {
        let s = ActiveSettings::default();
        let mut a = Active::new([Task::TurnRight, Task::TurnLeft, Task::LookUp], 4, ms(250), &s);
        assert!(a.observe(ms(0), pose(0.0, 0.0)).keep);
        // A flick past the threshold and back is not a held turn.
        assert!(!a.observe(ms(300), pose(-30.0, 0.0)).keep);
        assert!(!a.observe(ms(400), pose(-5.0, 0.0)).keep);
        assert!(!a.observe(ms(500), pose(-30.0, 0.0)).keep);
        assert!(!a.observe(ms(600), pose(-30.0, 0.0)).keep);
        assert!(a.observe(ms(650), pose(-30.0, 0.0)).keep);
        // The wrong way counts for nothing; a lost face restarts the hold.
        assert_eq!(a.task(), Some(Task::TurnLeft));
        assert!(!a.observe(ms(1000), pose(-30.0, 0.0)).keep);
        assert!(!a.observe(ms(1100), pose(30.0, 0.0)).keep);
        assert!(!a.observe(ms(1200), None).keep);
        assert!(!a.observe(ms(1300), pose(30.0, 0.0)).keep);
        assert!(a.observe(ms(1450), pose(30.0, 0.0)).keep);
        assert_eq!(a.task(), Some(Task::LookUp));
    }

    #[test]
    fn turns_count_from_the_persons_own_neutral_pose() {
        let mut a =
            Active::new([Task::LookUp, Task::TurnLeft, Task::TurnRight], 4, ms(250), &ActiveSettings::default());
        // A camera mounted high: the person's neutral reads 15° down.
        assert!(a.observe(ms(0), pose(0.0, -15.0)).keep);
        assert!(!a.observe(ms(300), pose(0.0, 0.0)).keep);
        assert!(!a.observe(ms(600), pose(0.0, 0.0)).keep);
        assert_eq!(a.task(), Some(Task::LookUp), "level is 15° up from neutral: not yet 17°");
        a.observe(ms(700), pose(0.0, 10.0));
        assert!(a.observe(ms(900), pose(0.0, 10.0)).keep, "10° reads as 25° up from neutral");
        assert_eq!(a.task(), Some(Task::TurnLeft));
    }

    #[test]
    fn shuffled_orders_are_all_three_tasks_and_vary() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let t = Task::shuffled();
            let mut s = t.to_vec();
            s.sort_by_key(|t| t.name());
            assert_eq!(s, vec![Task::LookUp, Task::TurnLeft, Task::TurnRight]);
            seen.insert(t);
        }
        assert_eq!(seen.len(), 6, "every order comes up");
    }

    #[test]
    fn broken_poses_are_no_face() {
        let mut a = Active::new(Task::ALL, 8, ms(250), &ActiveSettings::default());
        let nan = Some(Pose { yaw: f32::NAN, pitch: 0.0, roll: 0.0, confidence: 0.0 });
        assert!(!a.observe(ms(0), nan).keep);
        assert_eq!(a.task(), None);
    }

    #[test]
    fn a_turn_measured_with_little_confidence_does_not_count() {
        let mut a = Active::new(Task::ALL, 4, ms(100), &ActiveSettings::default());
        assert!(a.observe(ms(0), pose(0.0, 0.0)).keep);
        assert_eq!(a.task(), Some(Task::ALL[0]));
        // Keypoints that fit no head, far past the turn, held: nothing is kept, nothing done.
        let unsure = Some(Pose { yaw: 60.0, pitch: 40.0, roll: 0.0, confidence: 0.1 });
        for t in 1..=20 {
            assert!(!a.observe(ms(100 * t), unsure).keep);
        }
        assert_eq!(a.task(), Some(Task::ALL[0]));
    }
}
