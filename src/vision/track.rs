//! One person through a capture, sans-IO: each analysed frame's face (its box, with the frame's
//! time) continues the track when it is near where the track's face was last seen and of a like
//! size. A track whose face has been missing for [`LOST_AFTER`] and at least [`LOST_FRAMES`]
//! analyses is lost; the next face starts a new track. Smile ID's SDK restarts a capture when its
//! face tracker's id changes; the capture loop does the same on [`Seen::Changed`].
//!
//! ```text
//!  no track ──face──▶ First ──near, like size──▶ Same ◀─┐
//!                       │                         │     │ back in time, near
//!                       │      missing ──────▶ Missing ─┘
//!                       │                         │ far, other size; or lost, then any face
//!                       └──────────────────────▶ Changed (a new track: the capture restarts)
//! ```
//!
//! Both tests are lenient on purpose: a head turning, or analyses seconds apart on a slow CPU,
//! must not read as a new person. A swap shows as a gap (one person steps away, the next steps
//! in) or as a face at another place or size (a second person was beside the first).
//!
//! ```
//! use std::time::Duration;
//! use kiosk_agent::vision::face::FaceBox;
//! use kiosk_agent::vision::track::{Seen, Tracker};
//!
//! let face = |x| Some(FaceBox { x, y: 0.3, w: 0.2, h: 0.3, hits: 90 });
//! let ms = Duration::from_millis;
//! let mut t = Tracker::default();
//! assert_eq!(t.observe(ms(0), face(0.40)), Seen::First);
//! assert_eq!(t.observe(ms(100), face(0.42)), Seen::Same); // moved a little
//! assert_eq!(t.observe(ms(200), None), Seen::Missing); // a blink of the detector
//! assert_eq!(t.observe(ms(300), face(0.41)), Seen::Same);
//! assert_eq!(t.observe(ms(400), face(0.75)), Seen::Changed); // someone else, beside
//! for at in (500..=1600).step_by(100) {
//!     assert_eq!(t.observe(ms(at), None), Seen::Missing); // they step away...
//! }
//! assert_eq!(t.observe(ms(1700), face(0.75)), Seen::Changed); // ...and come back: a new track
//! ```

use std::time::Duration;

use super::face::FaceBox;

/// A face missing this long (and for [`LOST_FRAMES`] analyses) has left: the track is lost.
pub const LOST_AFTER: Duration = Duration::from_millis(1000);
/// ... and for at least this many analyses in a row, so a slow CPU's sparse analyses are not
/// each a loss.
pub const LOST_FRAMES: u32 = 3;
/// A face continues the track if its centre is within this many of the track's face widths of
/// where that face was last seen...
const MAX_SHIFT: f32 = 0.8;
/// ... and its width is within this factor of that face's.
const MAX_GROWTH: f32 = 1.6;

/// What one analysed frame says about the person being tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first face: the track starts.
    First,
    /// The tracked person's face.
    Same,
    /// No single face in this frame (none, or several); the track waits.
    Missing,
    /// A face that is not the tracked person's: a new track has started with it.
    Changed,
}

#[derive(Debug, Default)]
pub struct Tracker {
    /// Where and when the tracked face was last seen.
    last: Option<(Duration, FaceBox)>,
    /// Analyses in a row without it.
    missed: u32,
}

impl Tracker {
    /// The face found in the frame analysed at `at` (`None` when there is no single face).
    pub fn observe(&mut self, at: Duration, face: Option<FaceBox>) -> Seen {
        let Some(face) = face else {
            self.missed += 1;
            return Seen::Missing;
        };
        let seen = match self.last {
            None => Seen::First,
            Some((when, prev)) => {
                let lost = self.missed >= LOST_FRAMES && at.saturating_sub(when) >= LOST_AFTER;
                if !lost && near(&prev, &face) {
                    Seen::Same
                } else {
                    Seen::Changed
                }
            }
        };
        self.last = Some((at, face));
        self.missed = 0;
        seen
    }
}

/// `face` is where `prev` could have moved to: its centre within [`MAX_SHIFT`] face widths, its
/// size within [`MAX_GROWTH`]. Boxes are fractions of the frame; the shift is measured in pixels'
/// proportions through the boxes' own aspect (a face box is about square in pixels).
fn near(prev: &FaceBox, face: &FaceBox) -> bool {
    let ((px, py), (fx, fy)) = (prev.center(), face.center());
    let aspect = prev.h / prev.w.max(1e-6);
    let shift = ((fx - px).powi(2) + ((fy - py) / aspect).powi(2)).sqrt() / prev.w.max(1e-6);
    let growth = face.w.max(1e-6) / prev.w.max(1e-6);
    shift <= MAX_SHIFT && (1.0 / MAX_GROWTH..=MAX_GROWTH).contains(&growth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, w: f32) -> Option<FaceBox> {
        Some(FaceBox { x, y, w, h: w * 4.0 / 3.0, hits: 90 })
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_head_turning_and_drifting_at_ten_analyses_a_second_stays_one_track() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(ms(0), face(0.40, 0.30, 0.20)), Seen::First);
        // A turn moves the box's centre by about a third of its width and shrinks it a little.
        for (i, dx) in [0.0f32, 0.02, 0.05, 0.07, 0.06, 0.03, 0.0, -0.04, -0.07].into_iter().enumerate() {
            let w = 0.20 - dx.abs() * 0.3;
            assert_eq!(t.observe(ms(100 * (i as u64 + 1)), face(0.40 + dx, 0.30, w)), Seen::Same, "step {i}");
        }
    }

    #[test]
    fn sparse_analyses_on_a_slow_cpu_are_not_losses() {
        let mut t = Tracker::default();
        t.observe(ms(0), face(0.40, 0.30, 0.20));
        // Two seconds apart, the face missed once in between: not lost (too few analyses).
        assert_eq!(t.observe(ms(2000), None), Seen::Missing);
        assert_eq!(t.observe(ms(4000), face(0.45, 0.32, 0.19)), Seen::Same);
    }

    #[test]
    fn a_detector_that_blinks_for_under_a_second_keeps_the_track() {
        let mut t = Tracker::default();
        t.observe(ms(0), face(0.40, 0.30, 0.20));
        for at in (100..=900).step_by(100) {
            assert_eq!(t.observe(ms(at), None), Seen::Missing);
        }
        assert_eq!(t.observe(ms(950), face(0.41, 0.30, 0.20)), Seen::Same);
    }

    #[test]
    fn a_person_who_steps_away_and_any_face_after_is_a_new_track() {
        let mut t = Tracker::default();
        t.observe(ms(0), face(0.40, 0.30, 0.20));
        for at in (100..=1000).step_by(100) {
            t.observe(ms(at), None);
        }
        // Even at the very same place: a second and ten analyses without a face is a new person.
        assert_eq!(t.observe(ms(1100), face(0.40, 0.30, 0.20)), Seen::Changed);
        assert_eq!(t.observe(ms(1200), face(0.40, 0.30, 0.20)), Seen::Same);
    }

    #[test]
    fn a_face_elsewhere_or_of_another_size_is_someone_else() {
        for (other, why) in [
            (face(0.62, 0.30, 0.20), "beside"),
            (face(0.40, 0.62, 0.20), "below"),
            (face(0.35, 0.25, 0.34), "nearer the camera"),
            (face(0.45, 0.35, 0.11), "further away"),
        ] {
            let mut t = Tracker::default();
            t.observe(ms(0), face(0.40, 0.30, 0.20));
            assert_eq!(t.observe(ms(100), other), Seen::Changed, "{why}");
        }
    }

    #[test]
    fn several_faces_are_no_face_for_the_track() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(ms(0), None), Seen::Missing);
        assert_eq!(t.observe(ms(100), face(0.40, 0.30, 0.20)), Seen::First);
    }
}
