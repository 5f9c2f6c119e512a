//! The real camera: a V4L2 capture node (UVC webcams, vivid in the test VM) through the `v4l`
//! crate, with mmap streaming.
//!
//! Format negotiation prefers MJPEG, then YUYV, at the smallest size the driver offers that is at
//! least the configured one, and accepts whatever size the driver then sets. Every MJPEG buffer
//! is checked (SOI/EOI, minimum size) before it becomes a frame. The device fd is polled with a
//! timeout before a buffer is dequeued, so a stalled camera never reaches the crate's dequeue
//! path (whose re-queue after a timed-out dequeue fails); instead the stream is torn down and
//! opened again. An unplugged camera (ENODEV) closes the stream and the next call looks for the
//! device again, so a camera plugged back in is picked up without restarting the agent.
//!
//! Raspberry Pi CSI cameras (libcamera stack) have no plain V4L2 capture node: run the agent
//! under `libcamerify` (from libcamera-tools), which presents them as one; nothing else is
//! supported for them.

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;
use v4l::buffer::Type;
use v4l::capability::Flags;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use super::{CameraError, Frame, FrameSource, PixelFormat};
use crate::vision::decode::check_mjpeg;

/// What to open and how.
#[derive(Debug, Clone)]
pub struct V4l2Settings {
    /// A device path, or "auto" for the first capture node with a usable format.
    pub device: String,
    /// Smallest frame wanted; the driver may give more.
    pub width: u32,
    pub height: u32,
    /// FourCCs in order of preference, from "MJPG" and "YUYV".
    pub formats: Vec<String>,
    /// No frame for this long: the stream is restarted.
    pub frame_timeout: Duration,
    pub buffers: u32,
}

impl Default for V4l2Settings {
    fn default() -> Self {
        V4l2Settings {
            device: "auto".into(),
            width: 640,
            height: 480,
            formats: vec!["MJPG".into(), "YUYV".into()],
            frame_timeout: Duration::from_secs(2),
            buffers: 4,
        }
    }
}

/// Counters a caller (the doctor, the test VM) can read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub frames: u64,
    /// MJPEG buffers dropped for bad framing.
    pub bad_frames: u64,
    pub timeouts: u64,
    /// Times the device was opened (1 on a healthy run; more after stalls or replugs).
    pub opens: u64,
}

struct Open {
    path: String,
    stream: Stream<'static>,
    // Kept open for the stream's lifetime.
    _dev: Device,
    format: PixelFormat,
    width: u32,
    height: u32,
}

/// A V4L2 camera that reopens itself after stalls and replugs.
pub struct V4l2Camera {
    settings: V4l2Settings,
    open: Option<Open>,
    epoch: Instant,
    pub stats: Stats,
}

/// One format a device offers, for `kiosk-agent camera list`.
#[derive(Debug, Clone, Serialize)]
pub struct FormatInfo {
    pub fourcc: String,
    pub description: String,
    /// "WxH" for discrete sizes, "min..max" for stepwise ones.
    pub sizes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub path: String,
    pub card: String,
    pub driver: String,
    pub bus: String,
    pub capture: bool,
    pub formats: Vec<FormatInfo>,
}

fn fourcc_str(f: FourCC) -> String {
    f.str().map(str::to_string).unwrap_or_else(|_| format!("{:?}", f.repr))
}

fn pixel_format(f: &str) -> Option<PixelFormat> {
    match f {
        "MJPG" | "JPEG" => Some(PixelFormat::Mjpeg),
        "YUYV" => Some(PixelFormat::Yuyv),
        _ => None,
    }
}

fn unavailable(path: &str, e: impl std::fmt::Display) -> CameraError {
    CameraError::Unavailable(path.to_string(), e.to_string())
}

/// Capture nodes under /dev, by number.
pub fn device_paths() -> Vec<String> {
    let mut v: Vec<(u32, String)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("video")?.parse().ok()?;
            Some((n, format!("/dev/{name}")))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// Describes one device: identity, whether it captures video, and its formats and sizes.
pub fn describe(path: &str) -> Result<DeviceInfo, CameraError> {
    let dev = Device::with_path(path).map_err(|e| unavailable(path, e))?;
    let caps = dev.query_caps().map_err(|e| unavailable(path, e))?;
    let capture = caps.capabilities.contains(Flags::VIDEO_CAPTURE) && caps.capabilities.contains(Flags::STREAMING);
    let mut formats = Vec::new();
    if capture {
        for d in dev.enum_formats().map_err(|e| unavailable(path, e))? {
            let sizes = dev
                .enum_framesizes(d.fourcc)
                .unwrap_or_default()
                .into_iter()
                .map(|s| match s.size {
                    FrameSizeEnum::Discrete(d) => format!("{}x{}", d.width, d.height),
                    FrameSizeEnum::Stepwise(s) => {
                        format!("{}x{}..{}x{}", s.min_width, s.min_height, s.max_width, s.max_height)
                    }
                })
                .collect();
            formats.push(FormatInfo { fourcc: fourcc_str(d.fourcc), description: d.description, sizes });
        }
    }
    Ok(DeviceInfo { path: path.into(), card: caps.card, driver: caps.driver, bus: caps.bus, capture, formats })
}

/// Every V4L2 node that can be opened.
pub fn list() -> Vec<DeviceInfo> {
    device_paths().iter().filter_map(|p| describe(p).ok()).collect()
}

/// The size to ask for: the smallest offered that is at least `want`, else the largest.
fn pick_size(dev: &Device, fourcc: FourCC, want: (u32, u32)) -> (u32, u32) {
    let mut discrete: Vec<(u32, u32)> = Vec::new();
    for s in dev.enum_framesizes(fourcc).unwrap_or_default() {
        match s.size {
            FrameSizeEnum::Discrete(d) => discrete.push((d.width, d.height)),
            // Stepwise or continuous: the driver adjusts our request to its nearest size.
            FrameSizeEnum::Stepwise(_) => return want,
        }
    }
    discrete.sort_by_key(|&(w, h)| w as u64 * h as u64);
    discrete
        .iter()
        .copied()
        .find(|&(w, h)| w >= want.0 && h >= want.1)
        .or_else(|| discrete.last().copied())
        .unwrap_or(want)
}

impl V4l2Camera {
    pub fn new(settings: V4l2Settings) -> Self {
        V4l2Camera { settings, open: None, epoch: Instant::now(), stats: Stats::default() }
    }

    /// Path, format and size of the open stream, if any.
    pub fn current(&self) -> Option<(String, PixelFormat, u32, u32)> {
        self.open.as_ref().map(|o| (o.path.clone(), o.format, o.width, o.height))
    }

    fn candidates(&self) -> Vec<String> {
        if self.settings.device == "auto" {
            device_paths()
        } else {
            vec![self.settings.device.clone()]
        }
    }

    fn open_device(&mut self) -> Result<Open, CameraError> {
        let mut last = CameraError::Unavailable(self.settings.device.clone(), "no /dev/video* node".into());
        for path in self.candidates() {
            match self.open_path(&path) {
                Ok(o) => return Ok(o),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn open_path(&mut self, path: &str) -> Result<Open, CameraError> {
        let dev = Device::with_path(path).map_err(|e| unavailable(path, e))?;
        let caps = dev.query_caps().map_err(|e| unavailable(path, e))?;
        if !caps.capabilities.contains(Flags::VIDEO_CAPTURE) || !caps.capabilities.contains(Flags::STREAMING) {
            return Err(unavailable(path, "not a streaming video capture node"));
        }
        let offered: Vec<FourCC> =
            dev.enum_formats().map_err(|e| unavailable(path, e))?.into_iter().map(|d| d.fourcc).collect();
        let names: Vec<String> = offered.iter().map(|f| fourcc_str(*f)).collect();
        let fourcc = self
            .settings
            .formats
            .iter()
            .find_map(|want| offered.iter().copied().find(|f| fourcc_str(*f) == *want))
            .ok_or_else(|| CameraError::NoFormat(path.into(), names.join(", ")))?;
        let (w, h) = pick_size(&dev, fourcc, (self.settings.width, self.settings.height));
        let set = dev.set_format(&Format::new(w, h, fourcc)).map_err(|e| unavailable(path, e))?;
        let format = pixel_format(&fourcc_str(set.fourcc))
            .ok_or_else(|| CameraError::NoFormat(path.into(), format!("driver set {}", fourcc_str(set.fourcc))))?;
        let stream = Stream::with_buffers(&dev, Type::VideoCapture, self.settings.buffers.max(2))
            .map_err(|e| unavailable(path, e))?;
        self.stats.opens += 1;
        crate::log::info(&format!("camera {path}: {} {}x{}", fourcc_str(set.fourcc), set.width, set.height), &[]);
        Ok(Open { path: path.into(), stream, _dev: dev, format, width: set.width, height: set.height })
    }

    /// Closes the stream; the crate panics in drop on unexpected STREAMOFF errors, which must not
    /// take the agent down with a camera that misbehaves.
    fn close(&mut self) {
        if let Some(o) = self.open.take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(o)));
        }
    }
}

impl Drop for V4l2Camera {
    fn drop(&mut self) {
        self.close();
    }
}

fn lost(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EIO) | Some(libc::EBADF))
}

impl FrameSource for V4l2Camera {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        // Bad MJPEG buffers are skipped, but a camera that sends nothing else is reported.
        for _ in 0..30 {
            if self.open.is_none() {
                self.open = Some(self.open_device()?);
            }
            let timeout_ms = self.settings.frame_timeout.as_millis().min(i32::MAX as u128) as i32;
            let o = self.open.as_mut().expect("opened above");
            let path = o.path.clone();
            match o.stream.handle().poll(libc::POLLIN, timeout_ms) {
                Ok(0) => {
                    self.stats.timeouts += 1;
                    self.close();
                    return Err(CameraError::Stopped(format!(
                        "{path}: no frame for {:?}, stream restarted",
                        self.settings.frame_timeout
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    self.close();
                    return Err(unavailable(&path, e));
                }
            }
            let (format, width, height) = (o.format, o.width, o.height);
            let data = match CaptureStream::next(&mut o.stream) {
                Ok((buf, meta)) => buf[..(meta.bytesused as usize).min(buf.len())].to_vec(),
                Err(e) => {
                    self.close();
                    return Err(if lost(&e) { unavailable(&path, e) } else { CameraError::Stopped(e.to_string()) });
                }
            };
            if format == PixelFormat::Mjpeg && check_mjpeg(&data).is_err() {
                self.stats.bad_frames += 1;
                continue;
            }
            self.stats.frames += 1;
            return Ok(Frame { width, height, format, data, at: self.epoch.elapsed() });
        }
        let path = self.open.as_ref().map(|o| o.path.clone()).unwrap_or_default();
        self.close();
        Err(CameraError::Stopped(format!("{path}: 30 MJPEG frames in a row were malformed, stream restarted")))
    }
}

/// What `kiosk-agent camera test` saw: the negotiated stream, the frames and what the gates said.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub device: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    /// Frames by gate verdict ("ok" or the hint), over the frames analysed.
    pub verdicts: std::collections::BTreeMap<String, u64>,
    pub mean_luma: f32,
    /// Mean time to decode and analyse one frame, in milliseconds.
    pub analysis_ms: f64,
    /// Camera errors met and recovered from (unplugged, stalled), in order.
    pub errors: Vec<String>,
    pub stats: Stats,
}

/// Streams until `frames` frames have arrived or `deadline` passes, riding out replugs and
/// stalls; every frame is decoded and put through the face gates. `last` receives the last frame.
pub fn stream_test(
    cam: &mut V4l2Camera,
    frames: u64,
    deadline: Duration,
    last: &mut Option<Frame>,
) -> Result<StreamReport, CameraError> {
    use crate::vision::quality::{analyze_face, prepare, Thresholds};
    let started = Instant::now();
    let (mut verdicts, mut errors) = (std::collections::BTreeMap::new(), Vec::new());
    let (mut luma, mut analysis) = (0.0f64, Duration::ZERO);
    while cam.stats.frames < frames {
        if started.elapsed() > deadline {
            let e = errors.last().cloned().unwrap_or_else(|| "no frames".into());
            return Err(CameraError::Stopped(format!(
                "{} of {frames} frames before the deadline; last error: {e}",
                cam.stats.frames
            )));
        }
        let f = match cam.next_frame() {
            Ok(f) => f,
            Err(e) if e.is_transient() => {
                errors.push(e.to_string());
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Err(e) => return Err(e),
        };
        let t = Instant::now();
        let verdict = match prepare(&f) {
            Ok(p) => {
                let a = analyze_face(&p, &Thresholds::default());
                luma += a.quality.mean_luma as f64;
                a.hint.map(|h| {
                    serde_json::to_value(h).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
                })
            }
            Err(e) => Some(format!("undecodable: {e}")),
        };
        analysis += t.elapsed();
        *verdicts.entry(verdict.unwrap_or_else(|| "ok".into())).or_insert(0) += 1;
        *last = Some(f);
    }
    let (device, format, width, height) =
        cam.current().map(|(d, f, w, h)| (d, format!("{f:?}"), w, h)).unwrap_or_default();
    let n = cam.stats.frames.max(1);
    Ok(StreamReport {
        device,
        format,
        width,
        height,
        frames: cam.stats.frames,
        verdicts,
        mean_luma: (luma / n as f64) as f32,
        analysis_ms: analysis.as_secs_f64() * 1000.0 / n as f64,
        errors,
        stats: cam.stats.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_unavailable_and_transient() {
        let mut cam =
            V4l2Camera::new(V4l2Settings { device: "/dev/video-does-not-exist".into(), ..Default::default() });
        let e = cam.next_frame().unwrap_err();
        assert!(matches!(e, CameraError::Unavailable(..)), "{e}");
        assert!(e.is_transient());
        assert!(e.to_string().contains("/dev/video-does-not-exist"), "{e}");
    }

    #[test]
    fn a_non_camera_node_is_refused() {
        let e = describe("/dev/null").unwrap_err();
        assert!(e.to_string().contains("/dev/null"), "{e}");
    }
}
