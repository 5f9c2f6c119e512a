//! Frame quality measured, not guessed: mean luma and Laplacian variance on a gray image at
//! a fixed working width (so thresholds mean the same for 640×480 and 1280×720 cameras).

use serde::{Deserialize, Serialize};

use crate::camera::{Frame, PixelFormat};

/// Width the checks run at; larger frames are box-downscaled to about this.
pub const WORK_WIDTH: u32 = 640;

/// An 8-bit gray image.
#[derive(Debug, Clone)]
pub struct Gray {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Gray {
    /// BT.601 luma of a frame, box-downscaled by an integer factor to at most about [`WORK_WIDTH`].
    pub fn from_frame(f: &Frame) -> Gray {
        match f.format {
            PixelFormat::Rgb8 => Self::from_rgb(&f.data, f.width, f.height),
        }
    }

    pub fn from_rgb(rgb: &[u8], width: u32, height: u32) -> Gray {
        let k = (width / WORK_WIDTH).max(1);
        let (w, h) = (width / k, height / k);
        let mut data = Vec::with_capacity((w * h) as usize);
        let stride = width as usize * 3;
        for y in 0..h as usize {
            for x in 0..w as usize {
                let mut acc = 0u32;
                for yy in 0..k as usize {
                    let row = (y * k as usize + yy) * stride;
                    for xx in 0..k as usize {
                        let p = row + (x * k as usize + xx) * 3;
                        acc += 77 * rgb[p] as u32 + 150 * rgb[p + 1] as u32 + 29 * rgb[p + 2] as u32;
                    }
                }
                data.push((acc / (256 * k * k)) as u8);
            }
        }
        Gray { width: w, height: h, data }
    }
}

/// Measurements of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    pub mean_luma: f32,
    /// Variance of the 4-neighbour Laplacian: low means blurred or out of focus.
    pub sharpness: f32,
}

pub fn measure(g: &Gray) -> Quality {
    let (w, h) = (g.width as usize, g.height as usize);
    let sum: u64 = g.data.iter().map(|&v| v as u64).sum();
    let mean_luma = sum as f32 / g.data.len().max(1) as f32;
    let (mut s, mut s2, mut n) = (0i64, 0i64, 0i64);
    for y in 1..h.saturating_sub(1) {
        let r = y * w;
        for x in 1..w - 1 {
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
    let sharpness = if n == 0 {
        0.0
    } else {
        let m = s as f64 / n as f64;
        (s2 as f64 / n as f64 - m * m) as f32
    };
    Quality { mean_luma, sharpness }
}

/// What the person should change; shown on the display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    MoreLight,
    LessLight,
    HoldStill,
    MoveALittle,
}

/// Gate thresholds; defaults sit between the good and bad fixture frames (see tests).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub min_luma: f32,
    pub max_luma: f32,
    pub min_sharpness: f32,
    /// Mean absolute gray difference required between consecutive liveness frames.
    pub min_motion: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        // Sharpness on the fixtures: motion blur 28-31, defocus 8, a sharp but large (upscaled) face 37,
        // ordinary good frames 150-230. Whole-frame variance is a coarse measure; the face-region
        // measure replaces it once a face detector is in.
        Thresholds { min_luma: 60.0, max_luma: 200.0, min_sharpness: 33.0, min_motion: 1.5 }
    }
}

/// `Ok` if the frame is usable, else the hint that fixes the first problem found.
pub fn gate(q: &Quality, t: &Thresholds) -> Result<(), Hint> {
    if q.mean_luma < t.min_luma {
        Err(Hint::MoreLight)
    } else if q.mean_luma > t.max_luma {
        Err(Hint::LessLight)
    } else if q.sharpness < t.min_sharpness {
        Err(Hint::HoldStill)
    } else {
        Ok(())
    }
}

/// Mean absolute difference of two gray images of the same size (0 when sizes differ).
pub fn motion(a: &Gray, b: &Gray) -> f32 {
    if a.data.len() != b.data.len() || a.data.is_empty() {
        return 0.0;
    }
    let sum: u64 = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    sum as f32 / a.data.len() as f32
}
