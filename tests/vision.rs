//! The capture pipeline on fixture frames (tests/fixtures/frames, from ../shared/vision: NASA's
//! public-domain astronaut portrait and CC0 scikit-image pictures) and on the synthetic camera in
//! each pixel format: good frames pass, each bad variant is rejected with the hint that fixes it,
//! the detector's boxes match the known face boxes, MJPEG without Huffman tables decodes, and a
//! whole liveness + selfie capture and a document capture finish with the sizes Smile ID expects.

use std::path::PathBuf;
use std::time::Duration;

use kiosk_agent::camera::synthetic::{PrintMotion, SyntheticCamera, Variant};
use kiosk_agent::camera::{Frame, FrameSource, PixelFormat, Scene};
use kiosk_agent::display::screens::{FaceStep, More, Problem};
use kiosk_agent::display::{Canvas, Display, DisplayError, Screen};
use kiosk_agent::session::active::Task;
use kiosk_agent::session::capture::{capture_document, capture_face, capture_selfie_and_liveness, FaceCapture};
use kiosk_agent::session::{Answer, CaptureSettings, Input, ScriptedInput, SessionError, SessionRequest};
use kiosk_agent::smileid::job::{IdInfo, JobOptions, JobType};
use kiosk_agent::vision::decode::{gray, rgb};
use kiosk_agent::vision::quality::{analyze_document, analyze_face, face_motion, prepare, Analysis, Hint, Thresholds};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mjpeg(name: &str) -> Frame {
    Frame { width: 0, height: 0, format: PixelFormat::Mjpeg, data: fixture(name), at: Duration::ZERO }
}

fn analyze(f: &Frame, t: &Thresholds) -> Analysis {
    analyze_face(&prepare(f).unwrap(), t)
}

fn hint(name: &str, t: &Thresholds) -> Option<Hint> {
    analyze(&mjpeg(name), t).hint
}

#[test]
fn good_frames_pass() {
    for f in ["640x480_large.jpg", "1280x720_large.jpg"] {
        assert_eq!(hint(f, &Thresholds::default()), None, "{f}");
    }
}

#[test]
fn bad_fixture_frames_get_the_right_hint() {
    let t = Thresholds::default();
    for (f, want) in [
        // Face under 10 % of the frame: the first gate it fails is its size.
        ("640x480_center.jpg", Hint::MoveCloser),
        ("1280x720_center.jpg", Hint::MoveCloser),
        ("640x480_left.jpg", Hint::MoveCloser),
        ("640x480_dark.jpg", Hint::MoreLight),
        ("1280x720_dark.jpg", Hint::MoreLight),
        ("640x480_overexposed.jpg", Hint::LessLight),
        ("1280x720_overexposed.jpg", Hint::LessLight),
        // A face cut off by the frame edge is found (the old cascade missed it); it is small too.
        ("640x480_topcut.jpg", Hint::MoveCloser),
        // A tiny far face (a bystander), no face: none is a usable frontal face.
        ("640x480_small.jpg", Hint::NoFace),
        ("640x480_noface.jpg", Hint::NoFace),
        ("1280x720_noface.jpg", Hint::NoFace),
    ] {
        assert_eq!(hint(f, &t), Some(want), "{f}");
    }
    // A profile (the face model may find it): never taken.
    for f in ["640x480_profile.jpg", "1280x720_profile.jpg"] {
        assert!(hint(f, &t).is_some(), "{f}");
    }
}

#[test]
fn with_a_smaller_face_allowed_blur_and_centring_are_the_next_gates() {
    // A kiosk with a wide-angle camera may allow 4 % faces; then the fixtures reach the later gates.
    let t = Thresholds { min_face_area: 0.04, ..Thresholds::default() };
    for (f, want) in [
        ("640x480_center.jpg", None),
        ("1280x720_center.jpg", None),
        ("640x480_motionblur.jpg", Some(Hint::HoldStill)),
        ("1280x720_motionblur.jpg", Some(Hint::HoldStill)),
        ("640x480_defocus.jpg", Some(Hint::HoldStill)),
        ("1280x720_defocus.jpg", Some(Hint::HoldStill)),
        ("640x480_left.jpg", Some(Hint::Centre)),
        ("1280x720_left.jpg", Some(Hint::Centre)),
    ] {
        assert_eq!(hint(f, &t), want, "{f}");
    }
}

#[test]
fn faces_are_found_where_the_manifest_says() {
    let manifest: serde_json::Value = serde_json::from_slice(&fixture("manifest.json")).unwrap();
    let mut checked = 0;
    for f in manifest["frames"].as_array().unwrap() {
        let name = f["file"].as_str().unwrap();
        let (w, h) = (f["width"].as_f64().unwrap() as f32, f["height"].as_f64().unwrap() as f32);
        let a = analyze(&mjpeg(name), &Thresholds::default());
        let want_luma = f["mean_luma"].as_f64().unwrap() as f32;
        assert!(
            (a.quality.mean_luma - want_luma).abs() < 3.0,
            "{name}: luma {} vs OpenCV {want_luma}",
            a.quality.mean_luma
        );
        if !f["expect_face"].as_bool().unwrap() {
            // The profile is a face, but never one to take.
            assert!(a.faces.is_empty() || a.hint.is_some(), "{name}: {a:?}");
            continue;
        }
        let Some(face) = a.face else { continue };
        let b: Vec<f32> = f["face_box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let (gx, gy, gw, gh) = (face.x * w, face.y * h, face.w * w, face.h * h);
        let ix = (gx + gw).min(b[0] + b[2]) - gx.max(b[0]);
        let iy = (gy + gh).min(b[1] + b[3]) - gy.max(b[1]);
        let inter = ix.max(0.0) * iy.max(0.0);
        let iou = inter / (gw * gh + b[2] * b[3] - inter);
        assert!(iou >= 0.4, "{name}: IoU {iou} between {:?} and {b:?}", (gx, gy, gw, gh));
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} faces compared");
}

#[test]
fn mjpeg_without_huffman_tables_decodes_like_the_original() {
    for size in ["640x480", "1280x720"] {
        let want = gray(&mjpeg(&format!("{size}_center.jpg")), 10_000).unwrap();
        for v in ["nodht_jfif", "nodht_avi1"] {
            let got = gray(&mjpeg(&format!("{size}_center_{v}.jpg")), 10_000).unwrap();
            assert_eq!(got, want, "{size} {v}");
        }
    }
}

#[test]
fn yuyv_fixture_matches_its_jpeg() {
    let f = Frame {
        width: 640,
        height: 480,
        format: PixelFormat::Yuyv,
        data: fixture("640x480_center.yuyv"),
        at: Duration::ZERO,
    };
    let (a, b) = (gray(&f, 640).unwrap(), gray(&mjpeg("640x480_center.jpg"), 640).unwrap());
    let diff: u64 = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    assert!(diff as f64 / (a.data.len() as f64) < 4.0, "mean |Δ| {}", diff as f64 / a.data.len() as f64);
    assert_eq!(analyze(&f, &Thresholds::default()).hint, Some(Hint::MoveCloser));
    assert_eq!(rgb(&f).unwrap().data.len(), 640 * 480 * 3);
}

#[test]
fn broken_mjpeg_is_refused_not_decoded() {
    let mut data = fixture("640x480_center.jpg");
    data.truncate(data.len() / 2);
    let f = Frame { width: 0, height: 0, format: PixelFormat::Mjpeg, data, at: Duration::ZERO };
    assert!(prepare(&f).err().expect("refused").to_string().contains("EOI"));
}

fn synthetic(v: Variant, format: PixelFormat) -> SyntheticCamera {
    SyntheticCamera::with_default_face().with_variant(v).with_format(format)
}

#[test]
fn synthetic_variants_get_the_right_hint_in_every_format() {
    let t = Thresholds::default();
    for format in [PixelFormat::Rgb8, PixelFormat::Yuyv, PixelFormat::Mjpeg] {
        for (v, want) in [
            (Variant::Good, None),
            (Variant::Dark, Some(Hint::MoreLight)),
            (Variant::Blurred, Some(Hint::HoldStill)),
            (Variant::TwoFaces, Some(Hint::OneFaceOnly)),
        ] {
            let mut cam = synthetic(v, format);
            // Several frames along the sway: the verdict must hold at every position.
            for i in 0..6 {
                let f = cam.next_frame().unwrap();
                assert_eq!(f.format, format);
                assert_eq!(analyze(&f, &t).hint, want, "{v:?} {format:?} frame {i}");
                for _ in 0..4 {
                    cam.next_frame().unwrap();
                }
            }
        }
        let mut cam = SyntheticCamera::new(&fixture("640x480_noface.jpg"), 30).unwrap().with_format(format);
        assert_eq!(analyze(&cam.next_frame().unwrap(), &t).hint, Some(Hint::NoFace), "{format:?}");
    }
}

/// Keeps every screen shown, to check what the person saw.
#[derive(Default)]
struct Screens(Vec<Screen>);

impl Display for Screens {
    fn size(&self) -> (u32, u32) {
        (240, 320)
    }
    fn present(&mut self, _: &Canvas, _: &str) -> Result<(), DisplayError> {
        Ok(())
    }
    fn show(&mut self, s: &Screen) -> Result<(), DisplayError> {
        self.0.push(s.clone());
        Ok(())
    }
}

fn jpeg_dims(j: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(j).unwrap();
    (img.width(), img.height())
}

#[test]
fn liveness_and_selfie_capture_finishes_in_every_format() {
    let s = CaptureSettings::default();
    for format in [PixelFormat::Yuyv, PixelFormat::Mjpeg] {
        let mut cam = synthetic(Variant::Good, format);
        let mut screens = Screens::default();
        let mut retries = 0;
        let images =
            capture_selfie_and_liveness(&mut cam, &mut screens, &ScriptedInput::accepting(), &s, &mut retries).unwrap();
        assert_eq!(images.len(), 9, "{format:?}");
        let mut boxes = Vec::new();
        for img in &images[..8] {
            assert_eq!(jpeg_dims(&img.jpeg), (320, 240));
            let f =
                Frame { width: 0, height: 0, format: PixelFormat::Mjpeg, data: img.jpeg.clone(), at: Duration::ZERO };
            let a = analyze_face(&prepare(&f).unwrap(), &Thresholds::default());
            boxes.push(a.face.expect("every liveness frame shows one face"));
        }
        for w in boxes.windows(2) {
            assert!(face_motion(&w[0], &w[1]) >= 0.02, "the head moved between liveness frames: {w:?}");
        }
        assert_eq!(jpeg_dims(&images[8].jpeg), (640, 480));
        let total: usize = images.iter().map(|i| i.jpeg.len()).sum();
        assert!(total < 200_000, "{total} bytes of images");
        assert!(screens.0.iter().any(|s| matches!(s, Screen::Face { done: 8, .. })), "progress shown");
    }
}

#[test]
fn a_bad_picture_ends_at_the_time_limit_with_its_reason() {
    let s = CaptureSettings { time_limit_secs: 3, ..CaptureSettings::default() };
    for (v, want) in [(Variant::Dark, Hint::MoreLight), (Variant::TwoFaces, Hint::OneFaceOnly)] {
        let mut cam = synthetic(v, PixelFormat::Mjpeg);
        let mut screens = Screens::default();
        let e =
            capture_selfie_and_liveness(&mut cam, &mut screens, &ScriptedInput::accepting(), &s, &mut 0).unwrap_err();
        match e {
            SessionError::TimedOut { hint, .. } => assert_eq!(hint, Some(want), "{v:?}"),
            e => panic!("{v:?}: {e}"),
        }
        // The debounced hint reached the screen.
        assert!(screens.0.iter().any(|s| matches!(s, Screen::Face { hint: Some(h), .. } if *h == want)), "{v:?}");
    }
}

#[test]
fn document_capture_checks_fill_and_sharpness_and_asks_to_confirm() {
    let s = CaptureSettings::default();
    let mut cam = synthetic(Variant::Good, PixelFormat::Mjpeg);
    let mut screens = Screens::default();
    // The person rejects the first photo of the front: it is taken again.
    let mut input = ScriptedInput { accept: true, confirmations: vec![false, true] };
    let mut retries = 0;
    let front = capture_document(&mut cam, &mut screens, &mut input, &s, Scene::DocumentFront, &mut retries).unwrap();
    assert!(input.confirmations.is_empty(), "both answers used");
    assert!(retries >= 1);
    assert_eq!(jpeg_dims(&front.jpeg), (640, 480));
    let reviews = screens.0.iter().filter(|s| matches!(s, Screen::Document { review: true, .. })).count();
    assert_eq!(reviews, 2, "two photos shown for review");

    let t = Thresholds::default();
    let mut face = synthetic(Variant::Good, PixelFormat::Rgb8);
    face.set_scene(Scene::Face);
    let doc = |cam: &mut SyntheticCamera| analyze_document(&prepare(&cam.next_frame().unwrap()).unwrap(), &t).hint;
    let mut blurred = synthetic(Variant::Blurred, PixelFormat::Rgb8);
    blurred.set_scene(Scene::DocumentBack);
    assert_eq!(doc(&mut blurred), Some(Hint::HoldStill));
    let mut dark = synthetic(Variant::Dark, PixelFormat::Rgb8);
    dark.set_scene(Scene::DocumentFront);
    assert_eq!(doc(&mut dark), Some(Hint::MoreLight));
    let mut good = synthetic(Variant::Good, PixelFormat::Rgb8);
    good.set_scene(Scene::DocumentBack);
    assert_eq!(doc(&mut good), None);
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let iy = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)
}

/// The face model against the LBP cascade it replaced, on the 22 fixture frames: a hit is the
/// best box within IoU 0.4 of the true face; the frames without a face must stay empty.
#[test]
fn the_face_model_finds_at_least_the_faces_the_cascade_found() {
    use kiosk_agent::vision::blazeface::FaceModel;
    use kiosk_agent::vision::face::Detector;
    let manifest: serde_json::Value = serde_json::from_slice(&fixture("manifest.json")).unwrap();
    let (mut model_hits, mut cascade_hits, mut frames) = (0, 0, 0);
    for f in manifest["frames"].as_array().unwrap() {
        let name = f["file"].as_str().unwrap();
        if name.contains("nodht") {
            continue;
        }
        frames += 1;
        let frame = mjpeg(name);
        let p = prepare(&frame).unwrap();
        // Boxes in the frame's pixels (the analysis reads it box-downscaled).
        let (w, h) = (p.size.0 as f32, p.size.1 as f32);
        let model: Vec<[f32; 4]> =
            FaceModel::shared().detect(&p.rgb).iter().map(|d| [d.x * w, d.y * h, d.w * w, d.h * h]).collect();
        let k = w / p.detect.width as f32;
        let cascade: Vec<[f32; 4]> =
            Detector::default().detect(&p.detect).iter().map(|b| [b.x * k, b.y * k, b.w * k, b.h * k]).collect();
        let Some(truth) = f["face_box"].as_array() else {
            // camera.png's profile is a face (the model may find it); coffee has none.
            if f["variant"] == "noface" {
                assert!(model.is_empty() && cascade.is_empty(), "{name}: {model:?} {cascade:?}");
            }
            continue;
        };
        let t: Vec<f32> = truth.iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let hit = |boxes: &[[f32; 4]]| boxes.iter().any(|b| iou(*b, [t[0], t[1], t[2], t[3]]) >= 0.4);
        model_hits += hit(&model) as u32;
        cascade_hits += hit(&cascade) as u32;
        assert!(model.len() <= 1, "{name}: one person, {} faces", model.len());
    }
    assert_eq!(frames, 22);
    assert!(model_hits >= cascade_hits, "face model {model_hits} hits, cascade {cascade_hits}");
    assert!(model_hits >= 16, "face model {model_hits} of 18 faces");
}

/// `img` turned by `deg` about its centre (bilinear; uncovered corners gray).
fn rotated(img: &kiosk_agent::vision::decode::Rgb, deg: f32) -> kiosk_agent::vision::decode::Rgb {
    let (w, h) = (img.width as f32, img.height as f32);
    let (s, c) = deg.to_radians().sin_cos();
    let mut data = vec![128u8; img.data.len()];
    for y in 0..img.height {
        for x in 0..img.width {
            let (dx, dy) = (x as f32 - w / 2.0, y as f32 - h / 2.0);
            let (sx, sy) = (c * dx + s * dy + w / 2.0, -s * dx + c * dy + h / 2.0);
            if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
                continue;
            }
            let (x0, y0, fx, fy) = (sx as usize, sy as usize, sx.fract(), sy.fract());
            for ch in 0..3 {
                let at = |xx: usize, yy: usize| img.data[(yy * img.width as usize + xx) * 3 + ch] as f32;
                let v = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                    + at(x0 + 1, y0) * fx * (1.0 - fy)
                    + at(x0, y0 + 1) * (1.0 - fx) * fy
                    + at(x0 + 1, y0 + 1) * fx * fy;
                data[(y as usize * img.width as usize + x as usize) * 3 + ch] = v as u8;
            }
        }
    }
    kiosk_agent::vision::decode::Rgb { width: img.width, height: img.height, data }
}

/// A head tilted up to 30° either way is still found, and its roll is measured (the cascade lost
/// faces past about 20°).
#[test]
fn faces_rolled_thirty_degrees_are_found_and_their_roll_measured() {
    use kiosk_agent::vision::blazeface::FaceModel;
    use kiosk_agent::vision::pose::estimate;
    let upright = rgb(&mjpeg("640x480_center.jpg")).unwrap();
    let base = estimate(&FaceModel::shared().detect(&upright)[0], 640, 480).roll;
    for deg in [-30.0f32, -20.0, -10.0, 10.0, 20.0, 30.0] {
        let img = rotated(&upright, deg);
        let found = FaceModel::shared().detect(&img);
        assert_eq!(found.len(), 1, "rolled {deg}°: {found:?}");
        let roll = estimate(&found[0], 640, 480).roll - base;
        assert!((roll - deg).abs() < 8.0, "rolled {deg}°, measured {roll}°");
    }
}

/// The flatness check on rendered pictures: the portrait as a print held up, turned and tilted
/// (perspective), stays on one plane; the same face on a head turning as Smile ID's active
/// liveness asks (27° left and right, 17° up) does not.
#[test]
fn a_print_turned_is_flat_and_a_turning_head_is_not() {
    use kiosk_agent::camera::head::{room, Head};
    use kiosk_agent::vision::blazeface::FaceModel;
    use kiosk_agent::vision::planar::{flatness, Points};
    let mut head = Head::bundled();
    let keypoints = |head: &Head, pose: (f32, f32, f32), at: (f32, f32)| -> Points {
        let mut frame = room(640, 480);
        head.draw(&mut frame, pose, at, 10.0);
        let found = FaceModel::shared().detect(&frame);
        assert_eq!(found.len(), 1, "{pose:?} flat {}", head.flat);
        found[0].keypoints.map(|(x, y)| (x * 640.0, y * 480.0))
    };
    let turns = [(27.0, 0.0, 0.0), (-27.0, 0.0, 0.0), (0.0, 17.0, 0.0)];
    let real_ref = keypoints(&head, (0.0, 0.0, 0.0), (320.0, 220.0));
    let real: Vec<Points> = turns.iter().map(|&t| keypoints(&head, t, (320.0, 220.0))).collect();
    head.flat = true;
    let print_ref = keypoints(&head, (0.0, 0.0, 0.0), (320.0, 220.0));
    let moves = [(30.0, 0.0, 0.0), (-30.0, 5.0, 10.0), (0.0, 20.0, 0.0), (15.0, -15.0, -10.0)];
    let print: Vec<Points> = moves.iter().map(|&t| keypoints(&head, t, (300.0, 230.0))).collect();
    let (flat, live) = (flatness(&print_ref, &print).unwrap(), flatness(&real_ref, &real).unwrap());
    assert!(flat < live, "print {flat}, head {live}");
}

/// Active liveness with a short time for the turns, so that prints reach their verdict quickly.
fn active_settings() -> CaptureSettings {
    let mut s = CaptureSettings { time_limit_secs: 40, ..CaptureSettings::default() };
    s.active.timeout_secs = 5;
    s
}

#[test]
fn the_turning_head_passes_active_liveness_in_the_order_asked() {
    let s = CaptureSettings::default();
    for format in [PixelFormat::Mjpeg, PixelFormat::Yuyv, PixelFormat::Rgb8] {
        let mut cam = synthetic(Variant::Good, format);
        let mut screens = Screens::default();
        let c = capture_face(&mut cam, &mut screens, &ScriptedInput::accepting(), &s, &mut 0).unwrap();
        assert_eq!(c.images.len(), 9);
        let (tasks, timed_out) = c.tasks.expect("active liveness by default");
        assert!(!timed_out);
        assert!(tasks.iter().all(|t| t.took_ms.is_some_and(|ms| ms < 5_000)), "{tasks:?}");
        // Each asked turn was on screen, in the order asked, before the next one.
        let shown: Vec<Hint> = screens
            .0
            .iter()
            .filter_map(|s| match s {
                Screen::Face { hint: Some(h @ (Hint::TurnLeft | Hint::TurnRight | Hint::LookUp)), .. } => Some(*h),
                _ => None,
            })
            .fold(Vec::new(), |mut v, h| {
                if v.last() != Some(&h) {
                    v.push(h)
                }
                v
            });
        let asked: Vec<Hint> = tasks
            .iter()
            .map(|t| match t.task {
                Task::TurnLeft => Hint::TurnLeft,
                Task::TurnRight => Hint::TurnRight,
                Task::LookUp => Hint::LookUp,
            })
            .collect();
        assert_eq!(shown, asked, "{format:?}");
        assert!(!screens.0.iter().any(|s| matches!(s, Screen::Face { hint: Some(Hint::StartAgain), .. })));
        // A turn is never asked for under the selfie's "look straight at the camera".
        let torn = screens.0.iter().find(|s| {
            matches!(
                s,
                Screen::Face {
                    step: FaceStep::Selfie,
                    hint: Some(Hint::TurnLeft | Hint::TurnRight | Hint::LookUp),
                    ..
                }
            )
        });
        assert!(torn.is_none(), "{format:?}: {:?}", torn.map(|s| s.name()));
        let depth = c.flatness.unwrap();
        assert!(depth >= 2.0 * s.active.min_depth, "a head leaves the plane: {depth}");
    }
}

/// One person, then an empty room, then another (or the same one back): the bundled portrait's
/// person starts the turns and, during the second, is out of view for `gap` frames; then
/// `second`, from a documented face frame, steps in at the same place, or with `None` the first
/// comes back. Each frame carries a corner mark saying whose it is.
struct Swap {
    first: SyntheticCamera,
    second: Option<SyntheticCamera>,
    gap: u64,
    /// Frames delivered, and the one at which the first person stepped away.
    n: u64,
    left_at: Option<u64>,
    asked: Vec<Task>,
}

/// The corner mark's colours: the first person's frames, the empty room's, the second's.
const MARKS: [[u8; 3]; 3] = [[0, 200, 0], [0, 0, 200], [200, 0, 0]];

impl FrameSource for Swap {
    fn set_scene(&mut self, scene: Scene) {
        self.first.set_scene(scene);
        self.second.iter_mut().for_each(|c| c.set_scene(scene));
    }
    fn prompt(&mut self, task: Option<Task>) {
        if let Some(t) = task.filter(|t| self.asked.last() != Some(t)) {
            self.asked.push(t);
        }
        self.first.prompt(task);
        self.second.iter_mut().for_each(|c| c.prompt(task));
    }
    fn next_frame(&mut self) -> Result<Frame, kiosk_agent::camera::CameraError> {
        let n = self.n;
        self.n += 1;
        // The first person steps away while doing their second turn.
        if self.left_at.is_none() && self.asked.len() >= 2 {
            self.left_at = Some(n);
        }
        let (mut f, who) = match self.left_at.map(|at| n - at) {
            None => (self.first.next_frame()?, 0),
            Some(gap) if gap < self.gap => {
                let r = kiosk_agent::camera::head::room(640, 480);
                (Frame { width: 640, height: 480, format: PixelFormat::Rgb8, data: r.data, at: Duration::ZERO }, 1)
            }
            Some(_) => match self.second.as_mut() {
                Some(c) => (c.next_frame()?, 2),
                None => (self.first.next_frame()?, 0),
            },
        };
        for y in 0..24 {
            for x in 0..24 {
                let i = (y * 640 + x) * 3;
                f.data[i..i + 3].copy_from_slice(&MARKS[who]);
            }
        }
        f.at = Duration::from_millis(n * 1000 / 15);
        Ok(f)
    }
}

impl Swap {
    fn new(second: Option<SyntheticCamera>, gap: Duration) -> Swap {
        let gap = gap.as_millis() as u64 * 15 / 1000;
        Swap { first: SyntheticCamera::with_default_face(), second, gap, n: 0, left_at: None, asked: Vec::new() }
    }

    /// Captures through it; the images kept, whose each one is (an index into [`MARKS`]), the
    /// tasks' outcome and how many times "starting again" was shown.
    fn capture(mut self) -> (Vec<(String, usize)>, FaceCapture, usize) {
        let s = CaptureSettings::default();
        let mut screens = Screens::default();
        let c = capture_face(&mut self, &mut screens, &ScriptedInput::accepting(), &s, &mut 0).unwrap();
        assert!(self.left_at.is_some(), "the first person never left");
        let whose = c
            .images
            .iter()
            .map(|img| {
                let px = image::load_from_memory(&img.jpeg).unwrap().to_rgb8().get_pixel(2, 2).0;
                let d = |w: usize| (0..3).map(|k| (px[k] as i32 - MARKS[w][k] as i32).abs()).sum::<i32>();
                (img.file_name.clone(), (0..3).min_by_key(|&w| d(w)).unwrap())
            })
            .collect();
        let notice: Vec<bool> =
            screens.0.iter().map(|s| matches!(s, Screen::Face { hint: Some(Hint::StartAgain), .. })).collect();
        let episodes = notice.iter().enumerate().filter(|&(i, &on)| on && (i == 0 || !notice[i - 1])).count();
        (whose, c, episodes)
    }
}

#[test]
fn a_person_who_leaves_mid_capture_and_another_who_steps_in_start_it_again() {
    let second = SyntheticCamera::person(&fixture("640x480_center.jpg"), 15).unwrap();
    let (whose, c, restarts) = Swap::new(Some(second), Duration::from_secs(3)).capture();
    // Every image kept is the second person's: nothing of the first survives the restart.
    assert_eq!(whose.len(), 9);
    for (name, who) in &whose {
        assert_eq!(*who, 2, "{name} is not the second person's");
    }
    // The second person did all three turns, and was told once that the capture starts again.
    let (tasks, timed_out) = c.tasks.unwrap();
    assert!(!timed_out && tasks.iter().all(|t| t.took_ms.is_some()), "{tasks:?}");
    assert_eq!(restarts, 1, "'starting again' shown {restarts} times");
}

/// A face that changes with too little of the time limit left for new turns ends the capture
/// then, as timed out, rather than restarting turns that would time out and be refused.
#[test]
fn a_face_that_changes_too_late_for_new_turns_ends_the_capture_as_timed_out() {
    let mut s = CaptureSettings { time_limit_secs: 24, ..Default::default() };
    s.active.timeout_secs = 9;
    let second = SyntheticCamera::person(&fixture("640x480_center.jpg"), 15).unwrap();
    let mut cam = Swap::new(Some(second), Duration::from_secs(3));
    let r = capture_face(&mut cam, &mut Screens::default(), &ScriptedInput::accepting(), &s, &mut 0);
    assert!(matches!(r, Err(SessionError::TimedOut { .. })), "{:?}", r.map(|c| c.images.len()));
    // It ended at the change (the second person's first frames), not at the limit.
    let (left, ended) = (cam.left_at.unwrap(), cam.n);
    assert!(ended - left < cam.gap + 15, "ended {} frames after the first person left", ended - left);
}

/// A head turned out of the detector's sight for a second and a half (or a glance down at the
/// kiosk) and back: the same person goes on, nothing is dropped.
#[test]
fn a_person_out_of_sight_for_a_moment_goes_on_where_they_were() {
    let (whose, c, restarts) = Swap::new(None, Duration::from_millis(1500)).capture();
    assert_eq!(restarts, 0, "'starting again' shown {restarts} times");
    assert_eq!(whose.len(), 9);
    assert!(whose.iter().all(|(_, who)| *who == 0), "{whose:?}");
    let (tasks, timed_out) = c.tasks.unwrap();
    assert!(!timed_out && tasks.iter().all(|t| t.took_ms.is_some()), "{tasks:?}");
}

/// The bundled person doing the turns, and for four seconds of their second turn a bystander
/// (the face of a documented frame, as large) in view at the frame's left edge.
struct Bystander {
    person: SyntheticCamera,
    by: image::RgbImage,
    n: u64,
    came_at: Option<u64>,
    asked: usize,
}

impl FrameSource for Bystander {
    fn set_scene(&mut self, scene: Scene) {
        self.person.set_scene(scene);
    }
    fn prompt(&mut self, task: Option<Task>) {
        self.asked += task.is_some() as usize;
        self.person.prompt(task);
    }
    fn next_frame(&mut self) -> Result<Frame, kiosk_agent::camera::CameraError> {
        let n = self.n;
        self.n += 1;
        let mut f = self.person.next_frame()?;
        assert_eq!((f.format, f.width), (PixelFormat::Rgb8, 640));
        if self.came_at.is_none() && self.asked >= 2 {
            self.came_at = Some(n);
        }
        if self.came_at.is_some_and(|at| n - at < 60) {
            for (x, y, px) in self.by.enumerate_pixels() {
                let i = ((y + 140) * 640 + x) as usize * 3;
                f.data[i..i + 3].copy_from_slice(&px.0);
            }
        }
        Ok(f)
    }
}

#[test]
fn a_bystander_in_view_for_a_while_does_not_restart_the_capture() {
    // The documented frame's face is at (248, 130) 144 px square: cropped with a margin.
    let frame = image::load_from_memory(&fixture("640x480_center.jpg")).unwrap().to_rgb8();
    let by = image::imageops::crop_imm(&frame, 220, 102, 200, 200).to_image();
    let mut cam = Bystander { person: SyntheticCamera::with_default_face(), by, n: 0, came_at: None, asked: 0 };
    let mut screens = Screens::default();
    let c =
        capture_face(&mut cam, &mut screens, &ScriptedInput::accepting(), &CaptureSettings::default(), &mut 0).unwrap();
    assert!(cam.came_at.is_some(), "the bystander never came");
    // The bystander was seen (the person was asked to be alone), and nothing restarted.
    let hints: Vec<_> =
        screens.0.iter().filter_map(|s| if let Screen::Face { hint, .. } = s { *hint } else { None }).collect();
    assert!(hints.contains(&Hint::OneFaceOnly), "the bystander was not seen: {hints:?}");
    assert!(!hints.contains(&Hint::StartAgain), "the capture restarted: {hints:?}");
    let (tasks, timed_out) = c.tasks.unwrap();
    assert!(!timed_out && tasks.iter().all(|t| t.took_ms.is_some()), "{tasks:?}");
    assert_eq!(c.images.len(), 9);
}

/// Every flat photo, held at a kiosk's distance and slid about or tilted in 3-D as the screen
/// asks, is refused: the astronaut and the documented face frames (tests/fixtures/frames).
#[test]
fn every_flat_photo_is_refused_swayed_or_tilted() {
    let s = active_settings();
    let mut photos = vec![("astronaut", kiosk_agent::camera::synthetic::FIXTURE_FACE.to_vec())];
    for f in ["640x480_center.jpg", "640x480_left.jpg", "640x480_large.jpg", "1280x720_center.jpg"] {
        photos.push((f, fixture(f)));
    }
    let cases: Vec<_> =
        photos.iter().flat_map(|(n, b)| [PrintMotion::Sway, PrintMotion::Tilt].map(|m| (*n, b.clone(), m))).collect();
    let run = |(name, bytes, motion): (&str, Vec<u8>, PrintMotion)| {
        let mut cam =
            SyntheticCamera::new(&bytes, 15).unwrap().with_print_motion(motion).with_format(PixelFormat::Mjpeg);
        let mut screens = Screens::default();
        let r = capture_face(&mut cam, &mut screens, &ScriptedInput::accepting(), &s, &mut 0);
        match r {
            Err(SessionError::NotLive { flatness, .. }) => {
                assert!(flatness < s.active.min_depth);
                // The person reads why, in words.
                assert!(matches!(screens.0.last(), Some(Screen::Error { problem: Problem::NotLive })), "{name}");
            }
            Err(e) => panic!("{name} {motion:?}: refused, but not as flat: {e}"),
            Ok(c) => panic!("{name} {motion:?}: accepted, flatness {:?} tasks {:?}", c.flatness, c.tasks.map(|t| t.1)),
        }
    };
    // Two at a time: the machine's two cores.
    let (a, b) = cases.split_at(cases.len() / 2);
    std::thread::scope(|sc| {
        let h = sc.spawn(|| a.iter().cloned().for_each(run));
        b.iter().cloned().for_each(run);
        h.join().unwrap();
    });
}

/// A camera unplugged for the whole capture: "camera missing" on screen while it is looked for,
/// and at the time limit the session fails as the camera's fault (its outcome screen says the
/// camera, the API's error names it), not "time is up" told to the person.
#[test]
fn a_camera_gone_until_the_time_limit_fails_as_the_camera_not_the_person() {
    struct Unplugged;
    impl FrameSource for Unplugged {
        fn next_frame(&mut self) -> Result<Frame, kiosk_agent::camera::CameraError> {
            Err(kiosk_agent::camera::CameraError::Unavailable("/dev/video0".into(), "No such device".into()))
        }
    }
    let s = CaptureSettings { time_limit_secs: 1, ..CaptureSettings::default() };
    let mut screens = Screens::default();
    let Err(e) = capture_face(&mut Unplugged, &mut screens, &ScriptedInput::accepting(), &s, &mut 0) else {
        panic!("captured with no camera")
    };
    assert!(matches!(e, SessionError::Camera(_)), "{e}");
    assert!(e.to_string().contains("/dev/video0"), "{e}");
    assert_eq!(screens.0, [Screen::Error { problem: Problem::CameraMissing }]);
}

/// A touch panel's person: reads the whole consent, turns its pages on and back, goes back to
/// the short text, says no.
struct Reader(Vec<Answer>);

impl Input for Reader {
    fn consent(&mut self) -> bool {
        false
    }
    fn touch(&self) -> bool {
        true
    }
    fn consent_answer(&mut self) -> Answer {
        self.0.remove(0)
    }
}

#[test]
fn the_whole_consent_is_read_page_by_page_and_back() {
    let req = SessionRequest {
        partner_name: "Example Bank".into(),
        user_id: "u".into(),
        job_id: kiosk_agent::session::new_job_id(),
        job_type: JobType::SmartSelfieEnrollment,
        id_info: IdInfo::default(),
        options: JobOptions::default(),
        extra: Default::default(),
        document_back: false,
        texts: None,
        owner: None,
    };
    let mut cam = synthetic(Variant::Good, PixelFormat::Mjpeg);
    let mut screens = Screens::default();
    let mut reader = Reader(vec![Answer::More, Answer::More, Answer::More, Answer::Previous, Answer::Back, Answer::No]);
    let e =
        kiosk_agent::session::run(&req, &mut cam, &mut screens, &mut reader, &CaptureSettings::default()).unwrap_err();
    assert!(matches!(e, SessionError::Declined), "{e}");
    let views: Vec<More> = screens
        .0
        .iter()
        .filter_map(|s| match s {
            Screen::Consent { more, .. } => Some(*more),
            _ => None,
        })
        .collect();
    assert_eq!(views, [More::Link, More::Open(0), More::Open(1), More::Open(2), More::Open(1), More::Link]);
    assert!(reader.0.is_empty());
}
