//! A test camera on a virtual clock (no sleeping), so capture logic runs at full speed. By
//! default it shows a person: the bundled portrait on a 3-D head ([`super::head`]) that turns
//! as the screen asks (it is told through [`FrameSource::prompt`], as a person reads the
//! screen) and otherwise sways a little. Given a fixture photo it shows that photo as a flat
//! print held up to the camera, swayed about or tilted as asked: the presentation attack
//! liveness must refuse. It delivers RGB, YUYV or MJPEG like a UVC camera, and can show the bad
//! cases the gates must catch: too dark, blurred, two people.

use std::f32::consts::TAU;
use std::time::Duration;

use embedded_graphics::mono_font::ascii::FONT_10X20;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle, RoundedRectangle};
use embedded_graphics::text::Text;

use super::head::{room, Head};
use super::{CameraError, Frame, FrameSource, PixelFormat, Scene};
use crate::display::Canvas;
use crate::session::active::Task;
use crate::vision::decode::{rgb_to_yuyv, Rgb};
use crate::vision::encode::jpeg;

/// The bundled fixture: NASA astronaut portrait (public domain) in a 640×480 webcam-like frame,
/// at the distance a kiosk wants (face about a quarter of the frame).
pub const FIXTURE_FACE: &[u8] = include_bytes!("../../assets/face-640x480.jpg");

/// What is wrong with the picture, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Good,
    /// A dim room: every channel at a fifth.
    Dark,
    /// Out of focus: a wide box blur.
    Blurred,
    /// Two people side by side (the person twice, a little smaller).
    TwoFaces,
}

/// How a print is moved in front of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrintMotion {
    /// Slid about in the picture's plane.
    Sway,
    /// Turned and tilted in 3-D, in perspective, as the screen asks a head to turn.
    Tilt,
}

/// Who is in front of the camera.
enum Subject {
    /// A head that turns as asked; or, `flat`, a print of the face at the head's size, moved
    /// as the motion says.
    Head(Box<Head>, Option<PrintMotion>),
    /// The whole picture slid about (documents, and photos without a face to hold up).
    Sway,
}

/// Degrees a head turns to for each task: past Smile ID's thresholds (27°, 17°) with room for
/// the pose estimate's error.
const TURN: (f32, f32) = (38.0, 32.0);
/// Degrees per second a head turns at.
const TURN_SPEED: f32 = 100.0;
/// The head's size in the picture: pixels per centimetre (the face box about 15 % of the frame).
const HEAD_SCALE: f32 = 15.0;

pub struct SyntheticCamera {
    subject: Subject,
    /// The asked-for turn, and the head's pose now (yaw, pitch).
    task: Option<Task>,
    pose: (f32, f32),
    base: image::RgbImage,
    face: image::RgbImage,
    scene: Scene,
    variant: Variant,
    fps: u32,
    n: u64,
    /// Peak horizontal drift in pixels; 0 makes a still camera.
    pub sway_px: f32,
    /// What the frames are delivered as.
    pub format: PixelFormat,
}

impl SyntheticCamera {
    /// A flat print of `fixture` (JPEG or PNG bytes) at `fps` on the camera's virtual clock,
    /// slid about.
    pub fn new(fixture: &[u8], fps: u32) -> Result<Self, CameraError> {
        let base = image::load_from_memory(fixture).map_err(|e| CameraError::Fixture(e.to_string()))?.to_rgb8();
        if base.width() % 2 == 1 {
            return Err(CameraError::Fixture("the fixture's width must be even (YUYV pairs pixels)".into()));
        }
        Ok(SyntheticCamera {
            subject: Subject::Sway,
            task: None,
            pose: (0.0, 0.0),
            face: base.clone(),
            base,
            scene: Scene::Face,
            variant: Variant::Good,
            fps: fps.max(1),
            n: 0,
            sway_px: 24.0,
            format: PixelFormat::Rgb8,
        })
    }

    /// The same camera showing `v`.
    pub fn with_variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self.base = apply(&self.face, v);
        self
    }

    pub fn with_format(mut self, f: PixelFormat) -> Self {
        self.format = f;
        self
    }

    /// The photo as a print of its face held where a person's head would be, moved `m`; a
    /// picture without a face the model finds is slid about whole.
    pub fn with_print_motion(mut self, m: PrintMotion) -> Self {
        let (w, h) = self.face.dimensions();
        let rgb = Rgb { width: w, height: h, data: self.face.as_raw().clone() };
        self.subject = match Head::from_portrait(&rgb) {
            Some(mut head) => {
                head.flat = true;
                Subject::Head(Box::new(head), Some(m))
            }
            None => Subject::Sway,
        };
        self
    }

    /// The bundled portrait's person: a head that turns as asked.
    pub fn with_default_face() -> Self {
        // 15 frames a second: each is drawn in 3-D, and the capture looks at ten a second.
        let mut cam = Self::new(FIXTURE_FACE, 15).expect("the bundled fixture decodes");
        cam.subject = Subject::Head(Box::new(Head::bundled()), None);
        cam
    }

    /// A person wearing the face in `fixture` (JPEG or PNG bytes), who turns as asked; an error
    /// if the face model finds no face in it.
    pub fn person(fixture: &[u8], fps: u32) -> Result<Self, CameraError> {
        let mut cam = Self::new(fixture, fps)?;
        let (w, h) = cam.face.dimensions();
        let head = Head::from_portrait(&Rgb { width: w, height: h, data: cam.face.as_raw().clone() })
            .ok_or_else(|| CameraError::Fixture("the face model finds no face in the fixture".into()))?;
        cam.subject = Subject::Head(Box::new(head), None);
        Ok(cam)
    }

    /// The bundled portrait as a flat print (the attack), moved `m`.
    pub fn with_default_print(m: PrintMotion) -> Self {
        Self::new(FIXTURE_FACE, 15).expect("the bundled fixture decodes").with_print_motion(m)
    }

    /// A frame of the head (or tilted print) at time `t`, turning towards the asked pose.
    fn render_head(&mut self, t: f32) -> image::RgbImage {
        let Subject::Head(head, motion) = &self.subject else { unreachable!("only heads are rendered") };
        let target = match (self.task, motion) {
            // A print slid about and rocked in its own plane, whatever the screen says.
            (_, Some(PrintMotion::Sway)) => (0.0, 0.0),
            (Some(Task::TurnLeft), _) => (TURN.0, 0.0),
            (Some(Task::TurnRight), _) => (-TURN.0, 0.0),
            (Some(Task::LookUp), _) => (0.0, TURN.1),
            // A person waiting turns a little this way and that.
            (None, _) => (4.0 * (TAU * t / 2.3).sin(), 2.0 * (TAU * t / 1.7).sin()),
        };
        let (drift, roll) = match motion {
            Some(PrintMotion::Sway) => (40.0, 10.0 * (TAU * t / 2.9).sin()),
            _ => (10.0, 0.0),
        };
        let step = TURN_SPEED / self.fps as f32;
        self.pose.0 += (target.0 - self.pose.0).clamp(-step, step);
        self.pose.1 += (target.1 - self.pose.1).clamp(-step, step);
        let (w, h) = self.face.dimensions();
        let mut frame = room(w, h);
        // Drift a little from side to side too, as people do.
        let at =
            (w as f32 / 2.0 + drift * (TAU * t / 1.6).sin(), h as f32 * 0.43 + 0.3 * drift * (TAU * t / 1.1).sin());
        let scale = HEAD_SCALE * w as f32 / 640.0;
        head.draw(&mut frame, (self.pose.0, self.pose.1, roll), at, scale);
        apply(&image::RgbImage::from_raw(w, h, frame.data).expect("room size"), self.variant)
    }
}

/// A made-up identity card (no real document's design), held up to the camera.
fn render_card(face: &image::RgbImage, (w, h): (u32, u32), back: bool) -> image::RgbImage {
    let mut c = Canvas::new(w, h);
    let _ = c.clear(Rgb888::new(96, 88, 80));
    let (cw, ch) = (w * 3 / 4, w * 3 / 4 * 54 / 86);
    let (x0, y0) = ((w - cw) as i32 / 2, (h - ch) as i32 / 2);
    let card =
        RoundedRectangle::with_equal_corners(Rectangle::new(Point::new(x0, y0), Size::new(cw, ch)), Size::new(16, 16));
    let _ = card.into_styled(PrimitiveStyle::with_fill(Rgb888::new(236, 240, 228))).draw(&mut c);
    let _ = Rectangle::new(Point::new(x0, y0 + 12), Size::new(cw, 40))
        .into_styled(PrimitiveStyle::with_fill(Rgb888::new(20, 110, 70)))
        .draw(&mut c);
    let ink = MonoTextStyle::new(&FONT_10X20, Rgb888::new(20, 20, 30));
    let white = MonoTextStyle::new(&FONT_10X20, Rgb888::WHITE);
    let _ = Text::new("SAMPLE IDENTITY CARD", Point::new(x0 + 16, y0 + 38), white).draw(&mut c);
    if back {
        for (i, line) in ["ADDRESS: 1 SAMPLE ROAD", "ISSUED: 2024-01-01", "NOT A REAL DOCUMENT"].iter().enumerate() {
            let _ = Text::new(line, Point::new(x0 + 16, y0 + 90 + 28 * i as i32), ink).draw(&mut c);
        }
        for i in 0..48 {
            let bar =
                Rectangle::new(Point::new(x0 + 16 + i * 9, y0 + ch as i32 - 60), Size::new(1 + (i as u32 * 7) % 5, 44));
            let _ = bar.into_styled(PrimitiveStyle::with_fill(Rgb888::BLACK)).draw(&mut c);
        }
    } else {
        for (i, line) in ["SURNAME: SAMPLE", "GIVEN: ADA", "NO: 0000000000"].iter().enumerate() {
            let _ = Text::new(line, Point::new(x0 + cw as i32 / 3 + 10, y0 + 90 + 28 * i as i32), ink).draw(&mut c);
        }
    }
    let mut img = image::RgbImage::from_raw(w, h, c.rgb).expect("canvas size");
    if !back {
        // The portrait: the fixture's face region, scaled into the card's photo box.
        let (fw, fh) = face.dimensions();
        let crop = image::imageops::crop_imm(face, fw * 3 / 8, fh / 4, fw / 4, fh / 3).to_image();
        let photo = image::imageops::thumbnail(&crop, cw / 3 - 24, ch - 80);
        image::imageops::overlay(&mut img, &photo, (x0 + 12) as i64, (y0 + 64) as i64);
    }
    img
}

fn apply(img: &image::RgbImage, v: Variant) -> image::RgbImage {
    match v {
        Variant::Good => img.clone(),
        Variant::Dark => {
            let mut out = img.clone();
            out.pixels_mut().for_each(|p| p.0 = p.0.map(|c| c / 5));
            out
        }
        Variant::Blurred => image::imageops::fast_blur(img, 6.0),
        Variant::TwoFaces => {
            // The middle half of the picture (the person and some room), at 0.8 of its size,
            // twice: each face stays well over the 3 % of the frame under which a face counts as
            // a passer-by, so both are people at the kiosk.
            let (w, h) = img.dimensions();
            let strip = image::imageops::crop_imm(img, w / 4, 0, w / 2, h).to_image();
            let person = image::imageops::thumbnail(&strip, w * 2 / 5, h * 4 / 5);
            let mut out = image::RgbImage::from_pixel(w, h, image::Rgb([120, 118, 112]));
            image::imageops::overlay(&mut out, &person, (w / 20) as i64, (h / 10) as i64);
            image::imageops::overlay(&mut out, &person, (w * 11 / 20) as i64, (h / 10) as i64);
            out
        }
    }
}

impl FrameSource for SyntheticCamera {
    fn set_scene(&mut self, scene: Scene) {
        if scene != self.scene {
            let dims = self.face.dimensions();
            self.base = match scene {
                Scene::Face => apply(&self.face, self.variant),
                Scene::DocumentFront => apply(&render_card(&self.face, dims, false), self.variant),
                Scene::DocumentBack => apply(&render_card(&self.face, dims, true), self.variant),
            };
            self.scene = scene;
        }
    }

    fn prompt(&mut self, task: Option<Task>) {
        self.task = task;
    }

    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let t = self.n as f32 / self.fps as f32;
        self.n += 1;
        if let (Scene::Face, Subject::Head(..)) = (self.scene, &self.subject) {
            let img = self.render_head(t);
            let (w, h) = img.dimensions();
            return self.deliver(w, h, img.into_raw(), t);
        }
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
        self.deliver(w, h, data, t)
    }
}

impl SyntheticCamera {
    fn deliver(&self, w: u32, h: u32, data: Vec<u8>, t: f32) -> Result<Frame, CameraError> {
        let at = Duration::from_secs_f32(t);
        let data = match self.format {
            PixelFormat::Rgb8 => data,
            PixelFormat::Yuyv => rgb_to_yuyv(&Rgb { width: w, height: h, data }),
            PixelFormat::Mjpeg => {
                jpeg(&Rgb { width: w, height: h, data }, 85).map_err(|e| CameraError::Fixture(e.to_string()))?
            }
        };
        Ok(Frame { width: w, height: h, format: self.format, data, at })
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
