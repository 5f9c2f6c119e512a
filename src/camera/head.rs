//! A head that really turns, for the synthetic camera and the pose tests: the bundled portrait's
//! face laid on a head-shaped surface (an ellipsoid with a nose), turned to a known yaw, pitch
//! and roll and drawn in perspective with a depth buffer. A flat photo moved about keeps its
//! keypoints on one plane; this head's nose and eyes move as a real head's do. With `flat` the
//! same portrait is a print held up and turned: the attack.
//!
//! Head coordinates are centimetres with the origin between the eyes: x to the picture's right,
//! y down, z towards the camera; turns follow [`crate::vision::pose::rotate`].

use crate::vision::blazeface::{FaceModel, Keypoint};
use crate::vision::decode::Rgb;
use crate::vision::pose::rotate;

/// Eye distance the texture is scaled to, in cm.
const EYES_CM: f32 = 6.4;
/// Ellipsoid semi-axes (cm) and its centre below and behind the eyes.
const AXES: (f32, f32, f32) = (7.6, 11.0, 9.5);
const CENTRE: (f32, f32) = (2.5, -8.3);
/// The nose: a ridge of this height (cm) over the ellipsoid, centred this far below the eyes.
const NOSE: (f32, f32) = (2.0, 3.2);

pub struct Head {
    /// The face texture and where the eyes' midpoint and 1 cm fall in it (pixels).
    tex: Rgb,
    eyes_at: (f32, f32),
    px_per_cm: f32,
    /// The portrait's own tilt (its eye line), undone so that roll 0 is level.
    tilt: (f32, f32),
    /// Draw a flat print of the portrait instead (the attack a photo makes), turned the same way.
    pub flat: bool,
}

/// Depth of the head's surface at (x, y), or `None` off the head.
pub fn surface(x: f32, y: f32) -> Option<f32> {
    let (a, b, c) = AXES;
    let q = 1.0 - (x / a).powi(2) - ((y - CENTRE.0) / b).powi(2);
    if q <= 0.0 {
        return None;
    }
    let nose = NOSE.0 * (-(x / 0.9).powi(2) - ((y - NOSE.1) / 1.4).powi(2)).exp();
    Some(CENTRE.1 + c * q.sqrt() + nose)
}

impl Head {
    /// The head wearing the face in `portrait` (found by the face model); `None` without a face.
    pub fn from_portrait(portrait: &Rgb) -> Option<Head> {
        let d = *FaceModel::shared().detect(portrait).first()?;
        let (w, h) = (portrait.width as f32, portrait.height as f32);
        let (re, le) = (d.keypoint(Keypoint::RightEye), d.keypoint(Keypoint::LeftEye));
        let (rx, ry, lx, ly) = (re.0 * w, re.1 * h, le.0 * w, le.1 * h);
        let px = ((lx - rx).powi(2) + (ly - ry).powi(2)).sqrt() / EYES_CM;
        let tilt = (ly - ry).atan2(lx - rx).sin_cos();
        Some(Head {
            tex: portrait.clone(),
            eyes_at: ((rx + lx) / 2.0, (ry + ly) / 2.0),
            px_per_cm: px,
            tilt,
            flat: false,
        })
    }

    /// The bundled portrait's head.
    pub fn bundled() -> Head {
        let img = image::load_from_memory(super::synthetic::FIXTURE_FACE).expect("bundled fixture").to_rgb8();
        let rgb = Rgb { width: img.width(), height: img.height(), data: img.into_raw() };
        Head::from_portrait(&rgb).expect("the bundled portrait has a face")
    }

    /// The portrait's colour at head point (x, y), interpolated between its pixels.
    fn texel(&self, x: f32, y: f32) -> [u8; 3] {
        let (s, c) = self.tilt;
        let (x, y) = (x * c - y * s, x * s + y * c);
        let (tw, th) = (self.tex.width as usize, self.tex.height as usize);
        let tx = (self.eyes_at.0 + x * self.px_per_cm).clamp(0.0, (tw - 1) as f32);
        let ty = (self.eyes_at.1 + y * self.px_per_cm).clamp(0.0, (th - 1) as f32);
        let (x0, y0) = (tx as usize, ty as usize);
        let (x1, y1) = ((x0 + 1).min(tw - 1), (y0 + 1).min(th - 1));
        let (fx, fy) = (tx - x0 as f32, ty - y0 as f32);
        let at = |x: usize, y: usize, k: usize| self.tex.data[(y * tw + x) * 3 + k] as f32;
        std::array::from_fn(|k| {
            let top = at(x0, y0, k) * (1.0 - fx) + at(x1, y0, k) * fx;
            let bottom = at(x0, y1, k) * (1.0 - fx) + at(x1, y1, k) * fx;
            (top * (1.0 - fy) + bottom * fy + 0.5) as u8
        })
    }

    /// Draws the head turned by `(yaw, pitch, roll)` degrees onto `frame`, the eyes' midpoint at
    /// `at` (pixels) when facing the camera, `scale` pixels per cm, seen from 60 cm.
    ///
    /// The surface is a mesh of small triangles, each filled pixel by pixel (nearest wins):
    /// scattering points instead left holes where a turn brings a steep side (the nose's, the
    /// cheek's) to face the camera, and the model read those rings of holes as features.
    pub fn draw(&self, frame: &mut Rgb, (yaw, pitch, roll): (f32, f32, f32), at: (f32, f32), scale: f32) {
        const DIST: f32 = 60.0;
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut depth = vec![f32::MIN; w * h];
        // Vertices 2 px apart, so no triangle spans more than a few pixels.
        let step = 2.0 / scale;
        let (a, b, _) = AXES;
        let (nx, ny) = ((2.0 * a / step).ceil() as usize + 1, (2.0 * b / step).ceil() as usize + 1);
        let vertex = |i: usize, j: usize| -> Option<Vertex> {
            let (x, y) = (-a + i as f32 * step, CENTRE.0 - b + j as f32 * step);
            let z = if self.flat { 0.0 } else { surface(x, y)? };
            let [rx, ry, rz] = rotate([x, y, z], yaw, pitch, roll);
            let k = scale * DIST / (DIST - rz);
            Some(Vertex { px: at.0 + rx * k, py: at.1 + ry * k, z: rz, x, y })
        };
        let mut above: Vec<Option<Vertex>> = (0..nx).map(|i| vertex(i, 0)).collect();
        for j in 1..ny {
            let row: Vec<Option<Vertex>> = (0..nx).map(|i| vertex(i, j)).collect();
            for i in 0..nx - 1 {
                if let (Some(p), Some(q), Some(r), Some(s)) = (above[i], above[i + 1], row[i], row[i + 1]) {
                    for t in [[p, q, s], [p, s, r]] {
                        self.fill(frame, &mut depth, t);
                    }
                }
            }
            above = row;
        }
    }

    /// Fills one triangle: each pixel whose centre it covers takes the texture at the head point
    /// there, if nothing nearer has been drawn.
    fn fill(&self, frame: &mut Rgb, depth: &mut [f32], [v0, v1, v2]: [Vertex; 3]) {
        let (w, h) = (frame.width as i64, frame.height as i64);
        let area = (v1.px - v0.px) * (v2.py - v0.py) - (v2.px - v0.px) * (v1.py - v0.py);
        if area.abs() < 1e-6 {
            return;
        }
        let lo = |a: f32, b: f32, c: f32| a.min(b).min(c).floor() as i64;
        let hi = |a: f32, b: f32, c: f32| a.max(b).max(c).ceil() as i64;
        let (x0, x1) = (lo(v0.px, v1.px, v2.px).max(0), hi(v0.px, v1.px, v2.px).min(w - 1));
        let (y0, y1) = (lo(v0.py, v1.py, v2.py).max(0), hi(v0.py, v1.py, v2.py).min(h - 1));
        for py in y0..=y1 {
            for px in x0..=x1 {
                let (cx, cy) = (px as f32 + 0.5, py as f32 + 0.5);
                // Barycentric weights; a hair of slack so that shared edges leave no seam.
                let w1 = ((cx - v0.px) * (v2.py - v0.py) - (v2.px - v0.px) * (cy - v0.py)) / area;
                let w2 = ((v1.px - v0.px) * (cy - v0.py) - (cx - v0.px) * (v1.py - v0.py)) / area;
                let w0 = 1.0 - w1 - w2;
                if w0 < -1e-4 || w1 < -1e-4 || w2 < -1e-4 {
                    continue;
                }
                let z = w0 * v0.z + w1 * v1.z + w2 * v2.z;
                let i = py as usize * w as usize + px as usize;
                if z > depth[i] {
                    depth[i] = z;
                    let (x, y) = (w0 * v0.x + w1 * v1.x + w2 * v2.x, w0 * v0.y + w1 * v1.y + w2 * v2.y);
                    frame.data[i * 3..i * 3 + 3].copy_from_slice(&self.texel(x, y));
                }
            }
        }
    }
}

/// A mesh vertex: where it falls in the frame (pixels), its depth after the turn (cm), and the
/// head point it is (cm).
#[derive(Clone, Copy)]
struct Vertex {
    px: f32,
    py: f32,
    z: f32,
    x: f32,
    y: f32,
}

/// A plain room behind the head: a lit wall fading to a darker floor, `w` × `h`.
pub fn room(w: u32, h: u32) -> Rgb {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        let v = 190.0 - 70.0 * y as f32 / h as f32;
        for x in 0..w {
            let g = v - 15.0 * ((x as f32 / w as f32) - 0.5).abs();
            data.extend_from_slice(&[g as u8, (g * 0.97) as u8, (g * 0.9) as u8]);
        }
    }
    Rgb { width: w, height: h, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::pose::estimate;

    #[test]
    fn the_nose_stands_out_and_the_sides_fall_away() {
        let (eyes, nose, ear) = (surface(3.2, 0.0).unwrap(), surface(0.0, 3.7).unwrap(), surface(6.7, 1.0).unwrap());
        assert!(eyes.abs() < 0.3, "eyes at {eyes}");
        assert!(nose - eyes > 2.0, "nose at {nose}");
        assert!(ear < -3.0, "ear at {ear}");
        assert!(surface(20.0, 0.0).is_none());
    }

    /// The head rendered from −35° to 35° of yaw, level: found every time, its yaw measured
    /// within 7°; looking 20° up and 20° down are told apart. (Pitch is the weak axis: the
    /// errors over the whole grid are printed by `cargo bench --bench vision`.)
    #[test]
    fn the_rendered_head_is_found_and_its_turn_measured() {
        let head = Head::bundled();
        let measure = |yaw: f32, pitch: f32| {
            let mut frame = room(640, 480);
            head.draw(&mut frame, (yaw, pitch, 0.0), (320.0, 220.0), 10.0);
            let found = FaceModel::shared().detect(&frame);
            assert_eq!(found.len(), 1, "yaw {yaw} pitch {pitch}");
            estimate(&found[0], 640, 480)
        };
        for yaw in (-35..=35).step_by(5) {
            let p = measure(yaw as f32, 0.0);
            assert!((p.yaw - yaw as f32).abs() <= 7.0, "yaw {yaw}: {p:?}");
        }
        let (up, down) = (measure(0.0, 20.0), measure(0.0, -20.0));
        assert!(up.pitch - down.pitch >= 10.0, "up {up:?}, down {down:?}");
    }
}
