//! One person through a capture, sans-IO: each analysed frame's faces (their boxes, with the
//! frame's time) are matched to the tracked one. A face near where the tracked face was last seen
//! and of a like size continues the track, whatever else is in view (a bystander does not end it,
//! and, followed as it moves, cannot take the tracked face's place while that is out of sight).
//! A track whose face has been missing for [`LOST_AFTER`] and at least [`LOST_FRAMES`] analyses is
//! lost; a face that then comes back to about its place and size (half a width, 30 %) within
//! [`RETURN_WITHIN`] is the same person (a turn too far, a glance down), any other face starts a
//! new track. Smile ID's SDK restarts a capture when its face tracker's id changes; the capture
//! loop does the same on [`Seen::Changed`].
//!
//! ```text
//!  no track ──one face──▶ First ──a face near──▶ Same ◀────────────┐
//!                           │                     │                │ a face near; or, lost, one
//!                           │   no face near ──▶ Missing ──────────┘ back at its place in time
//!                           │                     │ one face, far or of another size and not a
//!                           │                     │ bystander; or, lost, one face not back in time
//!                           └───────────────────▶ Changed (a new track: the capture restarts)
//! ```
//!
//! The tests are lenient on purpose: a head turning, or analyses seconds apart on a slow CPU,
//! must not read as a new person. A swap shows as a gap (one person steps away, the next steps
//! in) or as a face at another place or size (a second person was beside the first). Not seen:
//! another person at the same place and size within [`RETURN_WITHIN`] (the tracker knows where
//! faces are, not whose they are; Smile ID compares the selfie with the liveness frames).
//!
//! ```
//! use std::time::Duration;
//! use kiosk_agent::vision::face::FaceBox;
//! use kiosk_agent::vision::track::{Seen, Tracker};
//!
//! let face = |x| FaceBox { x, y: 0.3, w: 0.2, h: 0.3, hits: 90 };
//! let ms = Duration::from_millis;
//! let mut t = Tracker::default();
//! assert_eq!(t.observe(ms(0), &[face(0.40)]), Seen::First);
//! assert_eq!(t.observe(ms(100), &[face(0.42)]), Seen::Same); // moved a little
//! assert_eq!(t.observe(ms(200), &[]), Seen::Missing); // a blink of the detector
//! assert_eq!(t.observe(ms(300), &[face(0.41), face(0.75)]), Seen::Same); // a bystander...
//! assert_eq!(t.observe(ms(400), &[face(0.75)]), Seen::Missing); // ...alone for a moment
//! assert_eq!(t.observe(ms(500), &[face(0.41)]), Seen::Same);
//! assert_eq!(t.observe(ms(600), &[face(0.10)]), Seen::Changed); // someone else, beside
//! for at in (700..=3100).step_by(100) {
//!     assert_eq!(t.observe(ms(at), &[]), Seen::Missing); // they step away...
//! }
//! assert_eq!(t.observe(ms(3200), &[face(0.10)]), Seen::Changed); // ...and come back: a new track
//! ```

use std::time::Duration;

use super::face::FaceBox;

/// A face missing this long (and for [`LOST_FRAMES`] analyses) has left: the track is lost.
pub const LOST_AFTER: Duration = Duration::from_millis(1000);
/// ... and for at least this many analyses in a row, so a slow CPU's sparse analyses are not
/// each a loss.
pub const LOST_FRAMES: u32 = 3;
/// A lost face back at its place and size within this long (from when it was last seen) is the
/// same person's: a head turned past what the detector sees, or a glance down at the kiosk.
pub const RETURN_WITHIN: Duration = Duration::from_millis(2500);

/// How far a face may be from the tracked one and still be it.
#[derive(Debug, Clone, Copy)]
struct Reach {
    /// Its centre within this many of the track's face widths of where that face was last seen...
    shift: f32,
    /// ... and its width within this factor of that face's.
    growth: f32,
}

/// Between analyses: a head turning moves its box by about a third of its width.
const FOLLOW: Reach = Reach { shift: 0.8, growth: 1.6 };
/// After a loss: back where it was, within half a face width and 30 % of its size. The face gates
/// lead everyone to the same place, so this alone does not tell two people apart: it holds for
/// `RETURN_WITHIN` only.
const RETURN: Reach = Reach { shift: 0.5, growth: 1.3 };

/// What one analysed frame says about the person being tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first face: the track starts.
    First,
    /// The tracked person's face (among any others).
    Same,
    /// Not the tracked face: none, or several strangers (the track waits).
    Missing,
    /// One face that is not the tracked person's: a new track has started with it.
    Changed,
}

#[derive(Debug, Default)]
pub struct Tracker {
    /// Where and when the tracked face was last seen.
    last: Option<(Duration, FaceBox)>,
    /// Analyses in a row without it.
    missed: u32,
    /// The other faces last seen with it (or, while it is missing, in its place): bystanders. One of
    /// them alone in view while the tracked face is briefly out of sight is not a new person.
    others: Vec<FaceBox>,
}

impl Tracker {
    /// The faces found in the frame analysed at `at` (any number, the bystanders among them).
    pub fn observe(&mut self, at: Duration, faces: &[FaceBox]) -> Seen {
        let (seen, face) = match (self.last, faces) {
            (_, []) => (Seen::Missing, None),
            (None, [one]) => (Seen::First, Some(*one)),
            // Several people and no track: whose it is cannot be told; the capture asks for one.
            (None, _) => (Seen::Missing, None),
            (Some((when, prev)), _) => {
                let gone = at.saturating_sub(when);
                let lost = self.missed >= LOST_FRAMES && gone >= LOST_AFTER;
                let reach = match (lost, gone < RETURN_WITHIN) {
                    (false, _) => Some(FOLLOW),
                    (true, true) => Some(RETURN),
                    (true, false) => None,
                };
                // A face within reach of where a bystander was is that bystander: while the
                // tracked face is out of sight always (else a bystander could walk into its place
                // step by step), while it is in view unless it is nearer the tracked face.
                let by = |f: &FaceBox| {
                    self.others.iter().filter_map(|o| distance(o, f, FOLLOW)).min_by(|a, b| a.total_cmp(b))
                };
                let out_of_sight = self.missed > 0;
                let nearest = reach.and_then(|r| {
                    faces
                        .iter()
                        .filter_map(|f| {
                            let d = distance(&prev, f, r)?;
                            match by(f) {
                                Some(b) if out_of_sight || b < d => None,
                                _ => Some((d, f)),
                            }
                        })
                        .min_by(|a, b| a.0.total_cmp(&b.0))
                        .map(|(_, f)| *f)
                });
                match (nearest, faces) {
                    (Some(f), _) => (Seen::Same, Some(f)),
                    (None, [one]) if lost || !self.others.iter().any(|o| distance(o, one, FOLLOW).is_some()) => {
                        (Seen::Changed, Some(*one))
                    }
                    (None, _) => (Seen::Missing, None),
                }
            }
        };
        match face {
            Some(f) => {
                self.last = Some((at, f));
                self.missed = 0;
                self.others = faces.iter().filter(|o| **o != f).copied().collect();
            }
            None => {
                self.missed += 1;
                if !faces.is_empty() {
                    self.others = faces.to_vec();
                }
            }
        }
        seen
    }
}

/// How far `face` is from `prev` in `prev`'s face widths, if it is within `r`: its centre within
/// `r.shift` widths and its size within `r.growth`. Boxes are fractions of the frame; the shift is
/// measured in pixels' proportions through the boxes' own aspect (a face box is about square in
/// pixels).
fn distance(prev: &FaceBox, face: &FaceBox, r: Reach) -> Option<f32> {
    let ((px, py), (fx, fy)) = (prev.center(), face.center());
    let aspect = prev.h / prev.w.max(1e-6);
    let shift = ((fx - px).powi(2) + ((fy - py) / aspect).powi(2)).sqrt() / prev.w.max(1e-6);
    let growth = face.w.max(1e-6) / prev.w.max(1e-6);
    (shift <= r.shift && (1.0 / r.growth..=r.growth).contains(&growth)).then_some(shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, w: f32) -> FaceBox {
        FaceBox { x, y, w, h: w * 4.0 / 3.0, hits: 90 }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    const HERE: (f32, f32, f32) = (0.40, 0.30, 0.20);

    fn tracking() -> Tracker {
        let mut t = Tracker::default();
        assert_eq!(t.observe(ms(0), &[face(HERE.0, HERE.1, HERE.2)]), Seen::First);
        t
    }

    #[test]
    fn a_head_turning_and_drifting_at_ten_analyses_a_second_stays_one_track() {
        let mut t = tracking();
        // A turn moves the box's centre by about a third of its width and shrinks it a little.
        for (i, dx) in [0.0f32, 0.02, 0.05, 0.07, 0.06, 0.03, 0.0, -0.04, -0.07].into_iter().enumerate() {
            let w = 0.20 - dx.abs() * 0.3;
            assert_eq!(t.observe(ms(100 * (i as u64 + 1)), &[face(0.40 + dx, 0.30, w)]), Seen::Same, "step {i}");
        }
    }

    #[test]
    fn sparse_analyses_on_a_slow_cpu_are_not_losses() {
        let mut t = tracking();
        // Two seconds apart, the face missed once in between: not lost (too few analyses).
        assert_eq!(t.observe(ms(2000), &[]), Seen::Missing);
        assert_eq!(t.observe(ms(4000), &[face(0.45, 0.32, 0.19)]), Seen::Same);
    }

    #[test]
    fn a_detector_that_blinks_for_under_a_second_keeps_the_track() {
        let mut t = tracking();
        for at in (100..=900).step_by(100) {
            assert_eq!(t.observe(ms(at), &[]), Seen::Missing);
        }
        assert_eq!(t.observe(ms(950), &[face(0.41, 0.30, 0.20)]), Seen::Same);
    }

    #[test]
    fn a_face_back_at_its_place_soon_after_a_loss_is_the_same_person() {
        // A head turned past what the detector sees for two seconds, then back.
        let mut t = tracking();
        for at in (100..=2000).step_by(100) {
            t.observe(ms(at), &[]);
        }
        assert_eq!(t.observe(ms(2100), &[face(0.43, 0.31, 0.18)]), Seen::Same);
    }

    #[test]
    fn after_a_loss_a_face_elsewhere_of_another_size_or_too_late_is_a_new_track() {
        for (at, other, why) in [
            (1100, face(0.52, 0.30, 0.20), "moved more than half a width"),
            (1100, face(0.40, 0.30, 0.27), "a third larger"),
            (2600, face(0.40, 0.30, 0.20), "at the very place, after 2.6 s"),
        ] {
            let mut t = tracking();
            for missed in (100..at).step_by(100) {
                t.observe(ms(missed), &[]);
            }
            assert_eq!(t.observe(ms(at), &[other]), Seen::Changed, "{why}");
            assert_eq!(t.observe(ms(at + 100), &[other]), Seen::Same, "{why}: the new track goes on");
        }
    }

    #[test]
    fn a_face_elsewhere_or_of_another_size_is_someone_else() {
        for (other, why) in [
            (face(0.62, 0.30, 0.20), "beside"),
            (face(0.40, 0.62, 0.20), "below"),
            (face(0.35, 0.25, 0.34), "nearer the camera"),
            (face(0.45, 0.35, 0.11), "further away"),
        ] {
            let mut t = tracking();
            assert_eq!(t.observe(ms(100), &[other]), Seen::Changed, "{why}");
        }
    }

    #[test]
    fn a_bystander_neither_ends_the_track_nor_takes_it_over() {
        let mut t = tracking();
        let mut by = face(0.70, 0.25, 0.12);
        for at in (100..=1500).step_by(100) {
            // The bystander drifts, the tracked face stays; now and then the detector misses the
            // tracked face and only the bystander is seen.
            by.x += 0.01;
            let seen = if at % 300 == 0 { &[by][..] } else { &[face(0.41, 0.30, 0.20), by][..] };
            let want = if seen.len() == 1 { Seen::Missing } else { Seen::Same };
            assert_eq!(t.observe(ms(at), seen), want, "at {at} ms");
        }
        // The tracked person, last seen at 1400 ms, leaves; once they are lost (a second, three
        // analyses), the bystander alone is a new track.
        for at in (1600..=2300).step_by(100) {
            assert_eq!(t.observe(ms(at), &[by]), Seen::Missing, "at {at} ms");
        }
        assert_eq!(t.observe(ms(2400), &[by]), Seen::Changed);
    }

    #[test]
    fn a_bystander_walking_into_the_place_of_a_face_out_of_sight_does_not_take_it_over() {
        let mut t = tracking();
        let by = |x: f32| face(x, 0.30, 0.20);
        assert_eq!(t.observe(ms(100), &[face(0.40, 0.30, 0.20), by(0.70)]), Seen::Same);
        // The tracked person ducks out; the bystander walks over to their place, in steps a head
        // turn could make, and stays there.
        for (i, x) in [0.70, 0.60, 0.50, 0.45, 0.40, 0.40, 0.40].into_iter().enumerate() {
            assert_eq!(t.observe(ms(200 + 100 * i as u64), &[by(x)]), Seen::Missing, "at x = {x}");
        }
        // The tracked face back after one missed analysis, the bystander still where it stood.
        let mut t = tracking();
        assert_eq!(t.observe(ms(100), &[face(0.40, 0.30, 0.20), by(0.70)]), Seen::Same);
        assert_eq!(t.observe(ms(200), &[by(0.70)]), Seen::Missing);
        assert_eq!(t.observe(ms(300), &[face(0.41, 0.30, 0.20), by(0.70)]), Seen::Same);
    }

    #[test]
    fn several_faces_and_no_track_is_no_track() {
        let mut t = Tracker::default();
        assert_eq!(t.observe(ms(0), &[face(0.1, 0.3, 0.2), face(0.6, 0.3, 0.2)]), Seen::Missing);
        assert_eq!(t.observe(ms(100), &[face(0.40, 0.30, 0.20)]), Seen::First);
    }
}
