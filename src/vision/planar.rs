//! Is it a flat picture? A photograph or a screen, however it is moved or tilted, shows its
//! keypoints as one plane seen from different places: one frame's points map onto another's by a
//! homography. A head that turns does not: the nose stands 2–3 cm out of the plane of the eyes
//! and mouth, and the face's outline at the ears moves the other way. The check fits a
//! homography from a frame facing the camera to each other frame and reports how far the
//! points miss it, as a share of the eye distance.

/// Keypoints of one frame in pixels (the face model's six, in its order).
pub type Points = [(f32, f32); 6];

/// A 3×3 homography, row-major, `h[8]` = 1.
type Homography = [f64; 9];

/// Moves the centroid to 0 and the mean distance to √2 (Hartley), for a well-conditioned fit.
fn normalise(p: &Points) -> ([(f64, f64); 6], [f64; 3]) {
    let n = p.len() as f64;
    let (cx, cy) = p.iter().fold((0.0, 0.0), |a, q| (a.0 + q.0 as f64 / n, a.1 + q.1 as f64 / n));
    let d = p.iter().map(|q| ((q.0 as f64 - cx).powi(2) + (q.1 as f64 - cy).powi(2)).sqrt()).sum::<f64>() / n;
    let s = std::f64::consts::SQRT_2 / d.max(1e-9);
    (std::array::from_fn(|i| ((p[i].0 as f64 - cx) * s, (p[i].1 as f64 - cy) * s)), [s, cx, cy])
}

/// Solves the 8×8 system `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    for c in 0..8 {
        let p = (c..8).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].is_nan() || a[p][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        let pivot = a[c];
        for r in c + 1..8 {
            let f = a[r][c] / pivot[c];
            for (x, p) in a[r][c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; 8];
    for r in (0..8).rev() {
        x[r] = (b[r] - (r + 1..8).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    Some(x)
}

/// The least-squares homography taking `from` to `to` (normalised points).
fn fit(from: &[(f64, f64); 6], to: &[(f64, f64); 6]) -> Option<Homography> {
    // Each pair gives two rows of A h = b with h33 = 1; normal equations AᵀA h = Aᵀb.
    let (mut ata, mut atb) = ([[0.0; 8]; 8], [0.0; 8]);
    for (&(x, y), &(u, v)) in from.iter().zip(to) {
        for (row, rhs) in
            [([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u), ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v)]
        {
            for i in 0..8 {
                for j in 0..8 {
                    ata[i][j] += row[i] * row[j];
                }
                atb[i] += row[i] * rhs;
            }
        }
    }
    let h = solve(ata, atb)?;
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

/// How far `to` is from any plane-to-plane view of `from`: the root-mean-square miss of the best
/// homography, as a share of `to`'s eye distance. `None` when the points are degenerate.
pub fn residual(from: &Points, to: &Points) -> Option<f32> {
    let (a, _) = normalise(from);
    let (b, [s, ..]) = normalise(to);
    let h = fit(&a, &b)?;
    let mut sum = 0.0;
    for (&(x, y), &(u, v)) in a.iter().zip(&b) {
        let w = h[6] * x + h[7] * y + 1.0;
        let (px, py) = ((h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w);
        sum += (px - u).powi(2) + (py - v).powi(2);
    }
    let rms_px = (sum / 6.0).sqrt() / s;
    let eyes = ((to[1].0 - to[0].0).powi(2) + (to[1].1 - to[0].1).powi(2)).sqrt() as f64;
    Some((rms_px / eyes.max(1e-6)) as f32).filter(|v| v.is_finite())
}

/// How many frames must leave the plane: a head shows its depth in each of its turns, while a
/// print's keypoints may jitter off its plane in a frame or two (the face model's noise).
pub const DEPTH_FRAMES: usize = 3;

/// The [`residual`] from `reference` that [`DEPTH_FRAMES`] of `frames` reach (the third
/// largest): small for anything flat. `None` with fewer measurable frames than that.
pub fn flatness(reference: &Points, frames: &[Points]) -> Option<f32> {
    let mut r: Vec<f32> = frames.iter().filter_map(|f| residual(reference, f)).collect();
    r.sort_by(|a, b| b.total_cmp(a));
    r.get(DEPTH_FRAMES - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::pose::{rotate, MEAN_FACE};

    /// The mean face (3-D) or its flat picture, turned and seen in perspective from 60 cm.
    fn view(flat: bool, yaw: f32, pitch: f32, shift: (f32, f32)) -> Points {
        std::array::from_fn(|i| {
            let [x, y, z] = MEAN_FACE[i];
            let [x, y, z] = rotate([x, y, if flat { 0.0 } else { z }], yaw, pitch, 0.0);
            let k = 600.0 / (60.0 - z);
            (320.0 + shift.0 + x * k, 240.0 + shift.1 + y * k)
        })
    }

    #[test]
    fn a_picture_moved_and_tilted_stays_on_one_plane() {
        let r = view(true, 0.0, 0.0, (0.0, 0.0));
        for (yaw, pitch, shift) in [(30.0, 0.0, (40.0, 0.0)), (-35.0, 10.0, (-30.0, 20.0)), (0.0, 25.0, (0.0, -50.0))] {
            let e = residual(&r, &view(true, yaw, pitch, shift)).unwrap();
            assert!(e < 1e-3, "{e}");
        }
    }

    #[test]
    fn a_head_turning_leaves_the_plane() {
        let r = view(false, 0.0, 0.0, (0.0, 0.0));
        let small = residual(&r, &view(false, 5.0, 0.0, (0.0, 0.0))).unwrap();
        let turned = residual(&r, &view(false, 27.0, 0.0, (0.0, 0.0))).unwrap();
        let up = residual(&r, &view(false, 0.0, 17.0, (0.0, 0.0))).unwrap();
        assert!(turned > 0.05 && up > 0.03, "turned {turned}, up {up}");
        assert!(small < turned, "a small turn ({small}) leaves the plane less than a large one");
        let frames =
            [view(false, 27.0, 0.0, (0.0, 0.0)), view(false, 0.0, 17.0, (0.0, 0.0)), view(false, 5.0, 0.0, (0.0, 0.0))];
        assert_eq!(flatness(&r, &frames), Some(small), "the smallest of three");
        assert_eq!(flatness(&r, &frames[..2]), None, "two frames are not enough to say");
    }

    #[test]
    fn points_all_in_one_place_are_no_answer() {
        let p = [(10.0, 10.0); 6];
        assert_eq!(residual(&p, &p), None);
        let nan = [(f32::NAN, 1.0); 6];
        assert_eq!(residual(&nan, &nan), None);
    }
}
