//! Where frames come from: a small trait over cameras, and the synthetic camera used by the
//! demo and tests. (The V4L2 implementation joins here with the capture issue.)

pub mod synthetic;

use std::time::Duration;

/// Pixel layout of a frame as the camera delivered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Packed 8-bit RGB, `width * height * 3` bytes.
    Rgb8,
}

/// One frame; `at` is the capture time since the stream started (the camera's clock).
#[derive(Clone)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub data: Vec<u8>,
    pub at: Duration,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{} {:?} at {:?})", self.width, self.height, self.format, self.at)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera fixture image is unreadable: {0}")]
    Fixture(String),
    #[error("camera stopped delivering frames: {0}; check the cable, the agent retries by itself")]
    Stopped(String),
}

/// What the session is asking the person to show. Real cameras ignore it; the synthetic
/// camera shows the matching scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    Face,
    DocumentFront,
    DocumentBack,
}

/// A source of frames, real or synthetic.
pub trait FrameSource {
    fn next_frame(&mut self) -> Result<Frame, CameraError>;
    fn set_scene(&mut self, _scene: Scene) {}
}
