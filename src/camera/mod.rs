//! Where frames come from: a small trait over cameras, with the real Linux implementation
//! ([`v4l2`], UVC webcams and anything else with a V4L2 capture node) and the synthetic camera
//! the demo and tests use ([`synthetic`]).

pub mod head;
pub mod synthetic;
pub mod v4l2;

use std::time::Duration;

/// Pixel layout of a frame as the camera delivered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Packed 8-bit RGB, `width * height * 3` bytes.
    Rgb8,
    /// YUV 4:2:2 packed as Y0 U Y1 V, `width * height * 2` bytes.
    Yuyv,
    /// One JPEG picture per frame (UVC MJPEG), possibly without Huffman tables.
    Mjpeg,
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
    #[error("camera {0} is not available: {1}; check that it is plugged in (the agent keeps looking for it)")]
    Unavailable(String, String),
    #[error("camera {0} offers no usable format ({1}); kiosk-agent needs MJPEG or YUYV capture")]
    NoFormat(String, String),
}

impl CameraError {
    /// True when waiting (for a replug, or the next frame) can fix it.
    pub fn is_transient(&self) -> bool {
        matches!(self, CameraError::Stopped(_) | CameraError::Unavailable(..))
    }
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
    /// The head turn the screen asks for now (active liveness). Real cameras ignore it; the
    /// synthetic person does as asked, as a person reading the screen would.
    fn prompt(&mut self, _task: Option<crate::session::active::Task>) {}
}
