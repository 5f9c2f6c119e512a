//! The gates a frame passes before it is kept, and the hint that fixes the first one it fails.
//!
//! Selfie and liveness frames ([`analyze_face`]): brightness, exactly one face (faces under 3 %
//! of the frame are bystanders and ignored), face size (box area 10–30 % of the frame by
//! default), face centred and wholly inside the frame, sharpness measured on the face itself,
//! and last the head turned no further than Smile ID's selfie limits (a hint the liveness
//! frames, taken as the head moves, do without). Document frames ([`analyze_document`]): brightness,
//! the card's fill of the frame (from its edges) and sharpness. Measurements run on gray at a
//! fixed working width, so thresholds mean the same for 640×480 and 1280×720 cameras.

use serde::{Deserialize, Serialize};

use super::blazeface::{Detection, FaceModel};
pub use super::decode::Gray;
use super::decode::{box_down, gray, gray_of, rgb, rgb_box_down, DecodeError, Rgb};
use super::face::FaceBox;
use super::pose::{estimate, Pose};
use crate::camera::{Frame, PixelFormat};

/// Width the brightness and sharpness checks run at (frames are box-downscaled to at least this).
pub const WORK_WIDTH: u32 = 640;
/// Width of the small gray the brightness is measured on (half the working width).
pub const DETECT_WIDTH: u32 = 320;

/// Measurements of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    pub mean_luma: f32,
    /// Variance of the 4-neighbour Laplacian: low means blurred or out of focus (0 when no face was measured).
    pub sharpness: f32,
}

/// Mean luma and Laplacian variance of the whole image.
pub fn measure(g: &Gray) -> Quality {
    measure_region(g, (0, 0, g.width, g.height))
}

/// Mean luma and Laplacian variance inside `(x, y, w, h)` (clamped to the image).
pub fn measure_region(g: &Gray, (x0, y0, rw, rh): (u32, u32, u32, u32)) -> Quality {
    let w = g.width as usize;
    let (x0, y0) = (x0.min(g.width) as usize, y0.min(g.height) as usize);
    let (x1, y1) = ((x0 + rw as usize).min(w), (y0 + rh as usize).min(g.height as usize));
    let (mut sum, mut px) = (0u64, 0u64);
    let (mut s, mut s2, mut n) = (0i64, 0i64, 0i64);
    for y in y0..y1 {
        let r = y * w;
        sum += g.data[r + x0..r + x1].iter().map(|&v| v as u64).sum::<u64>();
        px += (x1 - x0) as u64;
        if y == 0 || y + 1 >= g.height as usize {
            continue;
        }
        for x in x0.max(1)..x1.min(w - 1) {
            let c = g.data[r + x] as i64;
            let lap = g.data[r + x - 1] as i64
                + g.data[r + x + 1] as i64
                + g.data[r - w + x] as i64
                + g.data[r + w + x] as i64
                - 4 * c;
            s += lap;
            s2 += lap * lap;
            n += 1;
        }
    }
    let mean_luma = sum as f32 / px.max(1) as f32;
    let sharpness = if n == 0 {
        0.0
    } else {
        let m = s as f64 / n as f64;
        (s2 as f64 / n as f64 - m * m) as f32
    };
    Quality { mean_luma, sharpness }
}

/// What the person should change; shown on the display and reported by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    MoreLight,
    LessLight,
    HoldStill,
    /// No face found: look at the camera.
    NoFace,
    OneFaceOnly,
    MoveCloser,
    MoveBack,
    /// Centre the face (or the card) in the frame.
    Centre,
    MoveALittle,
    /// The head is turned or tilted past the selfie's limits.
    LookStraight,
    /// Active liveness asks for a head turn: to the person's own left or right, or up.
    TurnLeft,
    TurnRight,
    LookUp,
    /// The tracked face left or another took its place: the capture starts again.
    StartAgain,
}

/// Gate thresholds (fractions are of the whole frame).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub min_luma: f32,
    pub max_luma: f32,
    /// Laplacian variance of the face scaled to 96 px wide.
    pub min_sharpness: f32,
    /// Laplacian variance of the whole frame at the working width, for documents.
    pub min_document_sharpness: f32,
    /// Face box area ÷ frame area.
    pub min_face_area: f32,
    pub max_face_area: f32,
    /// Largest distance of the face centre from the frame centre, as a fraction of the frame size.
    pub max_off_centre: f32,
    /// Smallest face-box movement between liveness frames, as a fraction of the face width.
    pub min_motion: f32,
    /// Faces with a box under this fraction of the frame are someone else's (Smile ID's 3 %).
    pub min_tracked_face: f32,
    /// The selfie's head pose limits in degrees (Smile ID's: 15° yaw, 30° pitch and roll).
    pub max_yaw: f32,
    pub max_pitch: f32,
    pub max_roll: f32,
    /// Document: bounding box of the card's edges ÷ frame area.
    pub min_document_fill: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        // Face sharpness on the fixtures (face at 96 px): sharp 236-403, motion blur 51-66, defocus
        // 12-22 (tests/vision.rs holds each variant to its verdict). Face areas are of the face
        // model's box (brow to chin): 7.6 % of the frame for the fixtures' far face, 26 % for the
        // near one.
        Thresholds {
            min_luma: 60.0,
            max_luma: 200.0,
            min_sharpness: 120.0,
            min_document_sharpness: 40.0,
            min_face_area: 0.10,
            max_face_area: 0.30,
            max_off_centre: 0.15,
            min_motion: 0.04,
            min_tracked_face: 0.03,
            max_yaw: 15.0,
            max_pitch: 30.0,
            max_roll: 30.0,
            min_document_fill: 0.30,
        }
    }
}

/// What one frame showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub quality: Quality,
    /// The face, in fractions of the frame (x, y, w, h all 0..1), when exactly one was found.
    pub face: Option<FaceBox>,
    /// Every face big enough to be tracked (the one above among them), in fractions of the frame.
    pub faces: Vec<FaceBox>,
    /// The face's keypoints (fractions of the frame) and its head pose, with that face.
    pub detection: Option<Detection>,
    pub pose: Option<Pose>,
    /// `None` when the frame passes every gate.
    pub hint: Option<Hint>,
}

/// Gray at the working width, a smaller gray for brightness, and the colour the face model
/// reads, box-downscaled to about the working width too: the model sees 128 pixels, and a 720p
/// frame halved first makes every later pass a quarter of the work. (The loops that keep a frame
/// decode their own full copy.)
pub struct Prepared {
    pub work: Gray,
    pub detect: Gray,
    pub rgb: Rgb,
    /// The frame's own width and height (an MJPEG frame's as decoded).
    pub size: (u32, u32),
}

pub fn prepare(f: &Frame) -> Result<Prepared, DecodeError> {
    let full = rgb(f)?;
    let (size, k) = ((full.width, full.height), full.width / WORK_WIDTH);
    let rgb = rgb_box_down(full, k);
    // An MJPEG frame is decoded once, to colour; YUYV's gray is its Y bytes, cheaper than luma.
    let work = match f.format {
        PixelFormat::Mjpeg => gray_of(&rgb, WORK_WIDTH),
        _ => gray(f, WORK_WIDTH)?,
    };
    let k = (work.width / DETECT_WIDTH).max(1);
    Ok(Prepared { detect: box_down(&work, k), work, rgb, size })
}

fn light(q: &Quality, t: &Thresholds) -> Option<Hint> {
    if q.mean_luma < t.min_luma {
        Some(Hint::MoreLight)
    } else if q.mean_luma > t.max_luma {
        Some(Hint::LessLight)
    } else {
        None
    }
}

/// The face gates on a prepared frame.
pub fn analyze_face(p: &Prepared, t: &Thresholds) -> Analysis {
    // Brightness from the small image is as good and far cheaper; sharpness comes from the face.
    let mean_luma = p.detect.data.iter().map(|&v| v as u64).sum::<u64>() as f32 / p.detect.data.len().max(1) as f32;
    let whole = Quality { mean_luma, sharpness: 0.0 };
    let found: Vec<Detection> =
        FaceModel::shared().detect(&p.rgb).into_iter().filter(|d| d.w * d.h >= t.min_tracked_face).collect();
    let one = (found.len() == 1).then(|| found[0]);
    let faces: Vec<FaceBox> =
        found.iter().map(|d| FaceBox { x: d.x, y: d.y, w: d.w, h: d.h, hits: (d.score * 100.0) as u32 }).collect();
    let face = (faces.len() == 1).then(|| faces[0]);
    let pose = one.map(|d| estimate(&d, p.rgb.width, p.rgb.height));
    let mut a = Analysis { quality: whole, face, faces, detection: one, pose, hint: None };
    if let Some(h) = light(&whole, t) {
        a.hint = Some(h);
        return a;
    }
    let (Some(f), Some(pose)) = (face, pose) else {
        a.hint = Some(if found.len() > 1 { Hint::OneFaceOnly } else { Hint::NoFace });
        return a;
    };
    // Sharpness where it matters, on the face (not a sharp background behind a blurred face), and at
    // one face size, so near and far faces are held to the same standard.
    a.quality =
        Quality { mean_luma: whole.mean_luma, sharpness: measure(&crop_to_width(&p.work, &f, FACE_WIDTH)).sharpness };
    let area = f.w * f.h;
    let (cx, cy) = f.center();
    let inside = f.x >= 0.0 && f.y >= 0.0 && f.x + f.w <= 1.0 && f.y + f.h <= 1.0;
    // Written so that a pose that could not be measured (NaN, keypoints fitting no head) counts as
    // turned.
    let turned = !(pose.measured()
        && pose.yaw.abs() <= t.max_yaw
        && pose.pitch.abs() <= t.max_pitch
        && pose.roll.abs() <= t.max_roll);
    a.hint = if area < t.min_face_area {
        Some(Hint::MoveCloser)
    } else if area > t.max_face_area {
        Some(Hint::MoveBack)
    } else if !inside || (cx - 0.5).abs() > t.max_off_centre || (cy - 0.5).abs() > t.max_off_centre {
        Some(Hint::Centre)
    } else if a.quality.sharpness < t.min_sharpness {
        Some(Hint::HoldStill)
    } else if turned {
        // Last, so that a frame failing only here passed everything else: liveness frames, taken
        // as the head moves, do not need it (see `session::capture`).
        Some(Hint::LookStraight)
    } else {
        None
    };
    a
}

/// Width the face is scaled to before its sharpness is measured.
pub const FACE_WIDTH: u32 = 96;

/// The region `f` (fractions of the image) area-averaged to `out_w` pixels wide.
pub fn crop_to_width(g: &Gray, f: &FaceBox, out_w: u32) -> Gray {
    let (gw, gh) = (g.width as f32, g.height as f32);
    let (x0, y0) = ((f.x * gw).clamp(0.0, gw - 1.0), (f.y * gh).clamp(0.0, gh - 1.0));
    let (cw, ch) = ((f.w * gw).min(gw - x0).max(1.0), (f.h * gh).min(gh - y0).max(1.0));
    let out_h = ((out_w as f32 * ch / cw) as u32).max(1);
    let (kx, ky) = (cw / out_w as f32, ch / out_h as f32);
    let mut data = Vec::with_capacity((out_w * out_h) as usize);
    for oy in 0..out_h {
        let ys = (y0 + oy as f32 * ky) as u32;
        let ye = ((y0 + (oy + 1) as f32 * ky).ceil() as u32).clamp(ys + 1, g.height);
        for ox in 0..out_w {
            let xs = (x0 + ox as f32 * kx) as u32;
            let xe = ((x0 + (ox + 1) as f32 * kx).ceil() as u32).clamp(xs + 1, g.width);
            let mut acc = 0u32;
            for y in ys..ye {
                acc += g.data[(y * g.width + xs) as usize..(y * g.width + xe) as usize]
                    .iter()
                    .map(|&v| v as u32)
                    .sum::<u32>();
            }
            data.push((acc / ((ye - ys) * (xe - xs)).max(1)) as u8);
        }
    }
    Gray { width: out_w, height: out_h, data }
}

/// Face-box movement between two frames as a fraction of the face width (centre shift plus size change).
pub fn face_motion(a: &FaceBox, b: &FaceBox) -> f32 {
    let (ax, ay) = a.center();
    let (bx, by) = b.center();
    let shift = ((ax - bx).powi(2) + ((ay - by) * a.h / a.w.max(1e-6)).powi(2)).sqrt();
    (shift + (a.w - b.w).abs()) / a.w.max(1e-6)
}

/// The document gates: brightness, sharpness, fill (the card's edge bounding box against the frame), centring.
pub fn analyze_document(p: &Prepared, t: &Thresholds) -> Analysis {
    let q = measure(&p.work);
    let mut a = Analysis { quality: q, face: None, faces: Vec::new(), detection: None, pose: None, hint: light(&q, t) };
    if a.hint.is_some() {
        return a;
    }
    // Blur first: a blurred card has no edges, so its fill could not be measured either.
    if q.sharpness < t.min_document_sharpness {
        a.hint = Some(Hint::HoldStill);
        return a;
    }
    let (x, y, w, h) = edge_box(&p.detect);
    let (dw, dh) = (p.detect.width as f32, p.detect.height as f32);
    let fill = (w as f32 / dw) * (h as f32 / dh);
    let touches = x == 0 || y == 0 || x + w >= p.detect.width || y + h >= p.detect.height;
    let (cx, cy) = ((x as f32 + w as f32 / 2.0) / dw, (y as f32 + h as f32 / 2.0) / dh);
    a.hint = if fill < t.min_document_fill {
        Some(Hint::MoveCloser)
    } else if touches {
        Some(Hint::MoveBack)
    } else if (cx - 0.5).abs() > t.max_off_centre || (cy - 0.5).abs() > t.max_off_centre {
        Some(Hint::Centre)
    } else {
        None
    };
    a
}

/// Bounding box of the rows and columns with a real share of strong edges: where the card is.
fn edge_box(g: &Gray) -> (u32, u32, u32, u32) {
    let (w, h) = (g.width as usize, g.height as usize);
    let (mut cols, mut rows) = (vec![0u32; w], vec![0u32; h]);
    for (y, row_count) in rows.iter_mut().enumerate().take(h.saturating_sub(1)).skip(1) {
        for (x, col_count) in cols.iter_mut().enumerate().take(w - 1).skip(1) {
            let i = y * w + x;
            let gx = (g.data[i + 1] as i32 - g.data[i - 1] as i32).abs();
            let gy = (g.data[i + w] as i32 - g.data[i - w] as i32).abs();
            if gx + gy > 48 {
                *col_count += 1;
                *row_count += 1;
            }
        }
    }
    let span = |v: &[u32], min: u32| {
        let first = v.iter().position(|&c| c >= min);
        let last = v.iter().rposition(|&c| c >= min);
        match (first, last) {
            (Some(a), Some(b)) => (a as u32, (b - a + 1) as u32),
            _ => (0, 0),
        }
    };
    let (x, bw) = span(&cols, (h as u32 / 50).max(2));
    let (y, bh) = span(&rows, (w as u32 / 50).max(2));
    (x, y, bw, bh)
}

/// Keeps the shown hint steady: a new hint replaces the shown one only after it has been seen
/// for `hold` (so a flickering detection does not make the screen flicker).
#[derive(Debug, Clone)]
pub struct Debounce {
    hold: std::time::Duration,
    shown: Option<Hint>,
    candidate: Option<(Option<Hint>, std::time::Duration)>,
}

impl Debounce {
    pub fn new(hold: std::time::Duration) -> Self {
        Debounce { hold, shown: None, candidate: None }
    }

    /// Shows `hint` now, without waiting: a notice the capture pauses for.
    pub fn show_now(&mut self, hint: Option<Hint>) {
        self.shown = hint;
        self.candidate = None;
    }

    /// Feeds the latest frame's hint at camera time `at`; returns the hint to show.
    pub fn update(&mut self, hint: Option<Hint>, at: std::time::Duration) -> Option<Hint> {
        if hint == self.shown {
            self.candidate = None;
        } else {
            match self.candidate {
                Some((c, since)) if c == hint => {
                    if at.saturating_sub(since) >= self.hold {
                        self.shown = hint;
                        self.candidate = None;
                    }
                }
                _ => self.candidate = Some((hint, at)),
            }
        }
        self.shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn debounce_waits_before_switching() {
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(300));
        assert_eq!(d.update(Some(Hint::MoreLight), ms(0)), None);
        assert_eq!(d.update(Some(Hint::MoreLight), ms(200)), None);
        assert_eq!(d.update(Some(Hint::MoreLight), ms(300)), Some(Hint::MoreLight));
        // A single-frame flicker does not change what is shown.
        assert_eq!(d.update(None, ms(330)), Some(Hint::MoreLight));
        assert_eq!(d.update(Some(Hint::MoreLight), ms(360)), Some(Hint::MoreLight));
        assert_eq!(d.update(None, ms(400)), Some(Hint::MoreLight));
        assert_eq!(d.update(None, ms(700)), None);
    }

    #[test]
    fn face_motion_is_relative_to_face_size() {
        let a = FaceBox { x: 0.4, y: 0.3, w: 0.2, h: 0.27, hits: 5 };
        let b = FaceBox { x: 0.41, ..a };
        assert!((face_motion(&a, &b) - 0.05).abs() < 1e-4);
        assert_eq!(face_motion(&a, &a), 0.0);
    }

    #[test]
    fn region_measure_clamps() {
        let g = Gray { width: 4, height: 4, data: (0..16).collect() };
        let q = measure_region(&g, (2, 2, 10, 10));
        assert_eq!(q.mean_luma, (10 + 11 + 14 + 15) as f32 / 4.0);
    }
}
