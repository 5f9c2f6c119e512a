//! Head pose from the face model's six keypoints: the rotation of a mean face (in centimetres,
//! eyes 6.4 cm apart) whose weak-perspective projection best fits them, found by a coarse grid
//! then step-halving. Angles in degrees, as the person moves: yaw > 0 turning to their own left
//! (the nose goes to the picture's right), pitch > 0 looking up, roll > 0 tilting clockwise as
//! the camera sees it.

use super::blazeface::Detection;

/// Yaw, pitch and roll in degrees, and how well the keypoints fit a head so turned (0…1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    pub confidence: f32,
}

/// Under this the angles mean nothing: the keypoints fit no head so turned (a face half hidden, a
/// mis-placed keypoint), or the detector itself was unsure (the confidence is the fit times the
/// detection's score, which is at least 0.5: such a face needs a fit of 0.6).
pub const MIN_CONFIDENCE: f32 = 0.3;

impl Pose {
    /// The angles can be relied on: all measured, and the keypoints fit a head so turned.
    pub fn measured(&self) -> bool {
        [self.yaw, self.pitch, self.roll].iter().all(|a| a.is_finite()) && self.confidence >= MIN_CONFIDENCE
    }
}

/// The mean face: x to the picture's right, y down, z towards the camera; origin between the
/// eyes. Outline from the model's keypoints on a frontal face (the bundled portrait), depths
/// from anthropometry: the nose tip 2.7 cm in front of the eyes, the mouth 0.7. The model's "ear"
/// points sit on the face's outline at ear height as seen from the front, about 5 cm behind.
pub const MEAN_FACE: [[f32; 3]; 6] =
    [[-3.2, 0.0, 0.0], [3.2, 0.0, 0.0], [0.0, 3.7, 2.7], [0.0, 6.5, 0.7], [-6.7, 1.0, -5.0], [6.7, 1.0, -5.0]];

/// The ears' keypoints are guesses once a turn hides one: they count for a quarter.
const WEIGHTS: [f32; 6] = [1.0, 1.0, 1.0, 1.0, 0.25, 0.25];

/// `p` turned by yaw, then pitch, then roll (degrees).
pub fn rotate(p: [f32; 3], yaw: f32, pitch: f32, roll: f32) -> [f32; 3] {
    let (sy, cy) = yaw.to_radians().sin_cos();
    let (sp, cp) = pitch.to_radians().sin_cos();
    let (sr, cr) = roll.to_radians().sin_cos();
    let [x, y, z] = p;
    let (x, z) = (x * cy + z * sy, -x * sy + z * cy);
    let (y, z) = (y * cp - z * sp, y * sp + z * cp);
    let (x, y) = (x * cr - y * sr, x * sr + y * cr);
    [x, y, z]
}

/// Weighted squared error of the best scale and shift of the rotated mean face onto `pts`.
fn misfit(pts: &[(f32, f32); 6], yaw: f32, pitch: f32, roll: f32) -> f32 {
    let proj: Vec<(f32, f32)> = MEAN_FACE
        .iter()
        .map(|&p| {
            let [x, y, _] = rotate(p, yaw, pitch, roll);
            (x, y)
        })
        .collect();
    let wsum: f32 = WEIGHTS.iter().sum();
    let mean = |v: &dyn Fn(usize) -> f32| (0..6).map(|i| WEIGHTS[i] * v(i)).sum::<f32>() / wsum;
    let (px, py) = (mean(&|i| proj[i].0), mean(&|i| proj[i].1));
    let (qx, qy) = (mean(&|i| pts[i].0), mean(&|i| pts[i].1));
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..6 {
        let (ax, ay) = (proj[i].0 - px, proj[i].1 - py);
        num += WEIGHTS[i] * (ax * (pts[i].0 - qx) + ay * (pts[i].1 - qy));
        den += WEIGHTS[i] * (ax * ax + ay * ay);
    }
    let s = num / den.max(1e-9);
    (0..6)
        .map(|i| {
            let ex = s * (proj[i].0 - px) - (pts[i].0 - qx);
            let ey = s * (proj[i].1 - py) - (pts[i].1 - qy);
            WEIGHTS[i] * (ex * ex + ey * ey)
        })
        .sum::<f32>()
        / wsum
}

/// The pose of a detected face in a `width` × `height` frame.
pub fn estimate(d: &Detection, width: u32, height: u32) -> Pose {
    let pts: [(f32, f32); 6] =
        std::array::from_fn(|i| (d.keypoints[i].0 * width as f32, d.keypoints[i].1 * height as f32));
    let (re, le) = (pts[0], pts[1]);
    let eyes = ((le.0 - re.0).powi(2) + (le.1 - re.1).powi(2)).sqrt().max(1e-3);
    let roll0 = (le.1 - re.1).atan2(le.0 - re.0).to_degrees();
    let mut best = (f32::MAX, 0.0, 0.0, roll0);
    for yaw in (-70..=70).step_by(5) {
        for pitch in (-50..=50).step_by(5) {
            let e = misfit(&pts, yaw as f32, pitch as f32, roll0);
            if e < best.0 {
                best = (e, yaw as f32, pitch as f32, roll0);
            }
        }
    }
    let mut step = 2.5;
    while step > 0.05 {
        let (_, y, p, r) = best;
        for (dy, dp, dr) in [
            (step, 0.0, 0.0),
            (-step, 0.0, 0.0),
            (0.0, step, 0.0),
            (0.0, -step, 0.0),
            (0.0, 0.0, step),
            (0.0, 0.0, -step),
        ] {
            let e = misfit(&pts, y + dy, p + dp, r + dr);
            if e < best.0 {
                best = (e, y + dy, p + dp, r + dr);
            }
        }
        if best.1 == y && best.2 == p && best.3 == r {
            step /= 2.0;
        }
    }
    let (e, yaw, pitch, roll) = best;
    // A root-mean-square miss of a fifth of the eye distance leaves no confidence.
    let fit = (1.0 - e.sqrt() / (0.2 * eyes)).clamp(0.0, 1.0);
    Pose { yaw, pitch, roll, confidence: fit * d.score }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A detection whose keypoints are the mean face turned and projected: the estimate must
    /// give the turn back.
    fn turned(yaw: f32, pitch: f32, roll: f32) -> Detection {
        let keypoints = std::array::from_fn(|i| {
            let [x, y, _] = rotate(MEAN_FACE[i], yaw, pitch, roll);
            // 10 px per cm, centred in a 640×480 frame, as fractions.
            ((320.0 + 10.0 * x) / 640.0, (240.0 + 10.0 * y) / 480.0)
        });
        Detection { score: 0.9, x: 0.4, y: 0.4, w: 0.2, h: 0.2, keypoints }
    }

    #[test]
    fn the_mean_face_turned_is_estimated_back() {
        for (yaw, pitch, roll) in [
            (0.0, 0.0, 0.0),
            (30.0, 0.0, 0.0),
            (-30.0, 10.0, 0.0),
            (0.0, 20.0, 0.0),
            (10.0, -15.0, 25.0),
            (-40.0, 0.0, -20.0),
        ] {
            let p = estimate(&turned(yaw, pitch, roll), 640, 480);
            assert!(
                (p.yaw - yaw).abs() < 1.0 && (p.pitch - pitch).abs() < 1.0 && (p.roll - roll).abs() < 1.0,
                "{p:?} for {yaw} {pitch} {roll}"
            );
            assert!(p.confidence > 0.85, "{p:?}");
        }
    }

    #[test]
    fn the_sign_conventions_are_the_persons() {
        // Turning to their own left moves the nose to the picture's right.
        let d = turned(25.0, 0.0, 0.0);
        assert!(d.keypoints[2].0 > (d.keypoints[0].0 + d.keypoints[1].0) / 2.0);
        // Looking up brings the nose towards the eyes.
        let (up, level) = (turned(0.0, 20.0, 0.0), turned(0.0, 0.0, 0.0));
        assert!(up.keypoints[2].1 - up.keypoints[0].1 < level.keypoints[2].1 - level.keypoints[0].1);
    }

    #[test]
    fn keypoints_no_head_could_make_have_little_confidence() {
        let mut d = turned(0.0, 0.0, 0.0);
        assert!(estimate(&d, 640, 480).measured());
        d.keypoints[2] = (0.9, 0.1);
        let p = estimate(&d, 640, 480);
        assert!(p.confidence < 0.5 && !p.measured(), "{p:?}");
    }
}
