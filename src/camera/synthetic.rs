//! A test camera: frames of a real face photo that drifts and sways as a person would in
//! front of a kiosk, on a virtual clock (no sleeping), so capture logic runs at full speed.

use std::f32::consts::TAU;
use std::time::Duration;

use super::{CameraError, Frame, FrameSource, PixelFormat};

/// The bundled fixture: NASA astronaut portrait (public domain) in a 640×480 webcam-like frame.
pub const FIXTURE_FACE: &[u8] = include_bytes!("../../assets/face-640x480.jpg");

pub struct SyntheticCamera {
    base: image::RgbImage,
    fps: u32,
    n: u64,
    /// Peak horizontal drift in pixels; 0 makes a still camera.
    pub sway_px: f32,
}

impl SyntheticCamera {
    /// Frames of `fixture` (JPEG or PNG bytes) at `fps` on the camera's virtual clock.
    pub fn new(fixture: &[u8], fps: u32) -> Result<Self, CameraError> {
        let base = image::load_from_memory(fixture).map_err(|e| CameraError::Fixture(e.to_string()))?.to_rgb8();
        Ok(SyntheticCamera { base, fps: fps.max(1), n: 0, sway_px: 24.0 })
    }

    pub fn with_default_face() -> Self {
        Self::new(FIXTURE_FACE, 30).expect("the bundled fixture decodes")
    }
}

impl FrameSource for SyntheticCamera {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let t = self.n as f32 / self.fps as f32;
        self.n += 1;
        // A slow sway (1.6 s period) plus a small nod: motion between liveness frames, like a live person.
        let dx = (self.sway_px * (TAU * t / 1.6).sin()).round() as i64;
        let dy = (self.sway_px * 0.25 * (TAU * t / 1.1).sin()).round() as i64;
        let (w, h) = self.base.dimensions();
        let src = self.base.as_raw();
        let mut data = vec![0u8; (w * h * 3) as usize];
        for y in 0..h as i64 {
            let sy = (y - dy).clamp(0, h as i64 - 1) as usize;
            for x in 0..w as i64 {
                let sx = (x - dx).clamp(0, w as i64 - 1) as usize;
                let s = (sy * w as usize + sx) * 3;
                let d = (y as usize * w as usize + x as usize) * 3;
                data[d..d + 3].copy_from_slice(&src[s..s + 3]);
            }
        }
        Ok(Frame { width: w, height: h, format: PixelFormat::Rgb8, data, at: Duration::from_secs_f32(t) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_move_and_advance_the_clock() {
        let mut cam = SyntheticCamera::with_default_face();
        let a = cam.next_frame().unwrap();
        for _ in 0..10 {
            cam.next_frame().unwrap();
        }
        let b = cam.next_frame().unwrap();
        assert_eq!((a.width, a.height), (640, 480));
        assert!(b.at > a.at);
        let diff: u64 = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y) as u64).sum();
        assert!(diff / a.data.len() as u64 >= 1, "the face must move between frames");
    }
}
