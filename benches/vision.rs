//! Capture-pipeline benchmark; prints `metric <name> <value> <unit>` lines.
//!
//! - full analysis per frame (decode, gray at the working scale, brightness, the face model,
//!   head pose, face gates and face sharpness) of 1280×720 and 640×480 MJPEG and 640×480 YUYV
//!   fixture frames, median and p90 over many runs, single thread; its parts (decode, detection);
//!   the face model's network alone, its size, and the cold build time it adds (its ONNX parser
//!   and interpreter, `src/vision/{onnx,infer}.rs`, compiled alone by rustc as the release
//!   profile builds the crate: it adds no crate);
//! - head pose on the rendered head over −35…35° of yaw and −20…20° of pitch: the largest errors,
//!   absolute and as turns from the person's neutral pose, at two distances;
//! - a print against a head: the depth ([`kiosk_agent::vision::planar`]) a print held up and
//!   tilted through the asked turns shows, beside a head's;
//! - bytes of a selfie, a liveness frame and a whole Biometric KYC upload zip captured from the
//!   synthetic camera through the real capture loop;
//! - when `PYTHON` names an interpreter with OpenCV (scripts/test.sh sets one up), the same
//!   steps in Python + OpenCV (the same BlazeFace model through its DNN module, one thread) on
//!   the same frames and machine (benches/opencv_baseline.py).
//!
//! Run: `cargo bench --bench vision`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiosk_agent::camera::synthetic::{PrintMotion, SyntheticCamera};
use kiosk_agent::camera::{Frame, PixelFormat};
use kiosk_agent::display::{Canvas, Display, DisplayError};
use kiosk_agent::session::capture::{capture_face, capture_selfie_and_liveness};
use kiosk_agent::session::{CaptureSettings, ScriptedInput};
use kiosk_agent::smileid::job::*;
use kiosk_agent::smileid::package::{build_zip, info_json};
use kiosk_agent::smileid::signature::Signed;
use kiosk_agent::smileid::wire::PrepUploadResponse;
use kiosk_agent::vision::blazeface::FaceModel;
use kiosk_agent::vision::decode::gray;
use kiosk_agent::vision::quality::{analyze_face, prepare, Thresholds};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames").join(name)).unwrap()
}

/// Seconds rustc takes to build the face model's parser and interpreter from nothing, as a crate
/// of their own with the crate's release settings (opt-level 3, one codegen unit); or why that
/// cannot be done here.
fn cold_build_secs() -> Result<f64, String> {
    let deps = std::env::current_exe().map_err(|e| e.to_string())?.parent().unwrap().to_path_buf();
    let dir = std::env::temp_dir().join(format!("kiosk-cold-build-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/vision");
    let lib = format!(
        "pub mod vision {{ #[path = {:?}] pub mod onnx; #[path = {:?}] pub mod infer; }}",
        src.join("onnx.rs"),
        src.join("infer.rs")
    );
    std::fs::write(dir.join("lib.rs"), lib).map_err(|e| e.to_string())?;
    // Several thiserror builds may sit in deps (versions, feature sets): the one that compiles.
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&deps)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libthiserror-")))
        .filter(|p| p.extension().is_some_and(|x| x == "rlib"))
        .collect();
    candidates.sort();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut last = String::from("no thiserror build in the deps directory");
    for rlib in candidates {
        let t0 = Instant::now();
        let o = std::process::Command::new(&rustc)
            .args(["--edition", "2021", "--crate-type", "lib", "--crate-name", "face_model"])
            .args(["-C", "opt-level=3", "-C", "codegen-units=1", "-A", "warnings", "-L"])
            .arg(format!("dependency={}", deps.display()))
            .arg("--extern")
            .arg(format!("thiserror={}", rlib.display()))
            .arg("--out-dir")
            .arg(&dir)
            .arg(dir.join("lib.rs"))
            .output()
            .map_err(|e| format!("{rustc}: {e}"))?;
        let secs = t0.elapsed().as_secs_f64();
        if o.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(secs);
        }
        last = String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or_default().to_string();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(last)
}

/// Median and p90 in milliseconds of `runs` calls of `f`, after a warm-up.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..runs / 10 + 1 {
        f();
    }
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[runs / 2]), ms(v[runs * 9 / 10]))
}

fn report(name: &str, (p50, p90): (f64, f64)) {
    println!("metric {name}_p50 {p50:.2} ms");
    println!("metric {name}_p90 {p90:.2} ms");
}

struct NoDisplay;
impl Display for NoDisplay {
    fn size(&self) -> (u32, u32) {
        (240, 320)
    }
    fn present(&mut self, _: &Canvas, _: &str) -> Result<(), DisplayError> {
        Ok(())
    }
}

fn main() {
    let runs = std::env::var("VISION_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let t = Thresholds::default();
    let frames = [
        (
            "mjpeg_1280x720",
            Frame {
                width: 1280,
                height: 720,
                format: PixelFormat::Mjpeg,
                data: fixture("1280x720_center.jpg"),
                at: Duration::ZERO,
            },
        ),
        (
            "mjpeg_1280x720_large_face",
            Frame {
                width: 1280,
                height: 720,
                format: PixelFormat::Mjpeg,
                data: fixture("1280x720_large.jpg"),
                at: Duration::ZERO,
            },
        ),
        (
            "mjpeg_640x480",
            Frame {
                width: 640,
                height: 480,
                format: PixelFormat::Mjpeg,
                data: fixture("640x480_center.jpg"),
                at: Duration::ZERO,
            },
        ),
        (
            "yuyv_640x480",
            Frame {
                width: 640,
                height: 480,
                format: PixelFormat::Yuyv,
                data: fixture("640x480_center.yuyv"),
                at: Duration::ZERO,
            },
        ),
    ];
    for (name, f) in &frames {
        report(
            &format!("analysis_{name}"),
            time(runs, || {
                let p = prepare(f).unwrap();
                std::hint::black_box(analyze_face(&p, &t));
            }),
        );
        report(
            &format!("decode_{name}"),
            time(runs, || {
                std::hint::black_box(gray(f, 640).unwrap());
            }),
        );
        let p = prepare(f).unwrap();
        report(
            &format!("detect_{name}"),
            time(runs, || {
                std::hint::black_box(FaceModel::shared().detect(&p.rgb));
            }),
        );
    }

    // The face model alone (the part OpenCV's DNN module runs in the baseline), and what it adds
    // to the binary: the model's bytes (the interpreter is a few hundred lines, no crate).
    let model = FaceModel::shared();
    report("face_model", time(runs, || drop(std::hint::black_box(model.raw(vec![0.1; 128 * 128 * 3]).unwrap()))));
    println!("metric face_model_bytes {} B", kiosk_agent::vision::blazeface::model().len());
    println!("metric face_model_bytes_in_binary {} B", kiosk_agent::vision::blazeface::MODEL_PACKED.len());
    match cold_build_secs() {
        Ok(s) => println!("metric face_model_cold_build {s:.1} s (parser and interpreter, rustc -O, one unit)"),
        Err(e) => println!("face_model_cold_build: not measured: {e}"),
    }

    // Head pose on the rendered head (src/camera/head.rs) over −35…35° yaw × −20…20° pitch, 5°
    // apart: the largest error of each angle, the yaw error with the head level, and the errors
    // of turns measured from the person's own neutral pose (what active liveness uses). At the
    // kiosk's distance (the synthetic camera's: face box about 15 % of the frame) and at the
    // far end of the size gate (about 10 %).
    let head = kiosk_agent::camera::head::Head::bundled();
    for (name, scale) in [("", 15.0), ("_far", 10.0)] {
        let measure = |yaw: f32, pitch: f32| {
            let mut frame = kiosk_agent::camera::head::room(640, 480);
            head.draw(&mut frame, (yaw, pitch, 0.0), (320.0, 206.0), scale);
            model.detect(&frame).first().map(|d| kiosk_agent::vision::pose::estimate(d, 640, 480))
        };
        let neutral = measure(0.0, 0.0).expect("the frontal head is found");
        let (mut yaw_err, mut pitch_err, mut level_yaw_err, mut missed) = (0f32, 0f32, 0f32, 0);
        let (mut rel_yaw, mut rel_pitch) = (0f32, 0f32);
        for yaw in (-35..=35).step_by(5) {
            for pitch in (-20..=20).step_by(5) {
                let (y, p) = (yaw as f32, pitch as f32);
                let Some(e) = measure(y, p) else {
                    missed += 1;
                    continue;
                };
                yaw_err = yaw_err.max((e.yaw - y).abs());
                pitch_err = pitch_err.max((e.pitch - p).abs());
                rel_yaw = rel_yaw.max((e.yaw - neutral.yaw - y).abs());
                rel_pitch = rel_pitch.max((e.pitch - neutral.pitch - p).abs());
                if pitch == 0 {
                    level_yaw_err = level_yaw_err.max((e.yaw - y).abs());
                }
            }
        }
        println!("metric pose_yaw_error_max{name} {yaw_err:.1} deg");
        println!("metric pose_pitch_error_max{name} {pitch_err:.1} deg");
        println!("metric pose_yaw_error_max_level{name} {level_yaw_err:.1} deg");
        println!("metric pose_turn_yaw_error_max{name} {rel_yaw:.1} deg");
        println!("metric pose_turn_pitch_error_max{name} {rel_pitch:.1} deg");
        println!("metric pose_heads_missed{name} {missed} of 135");
    }

    // Active liveness through the real capture loop: the depth a head's turns show, and the most
    // a print of the same face shows, slid about or tilted through the asked turns (refused under
    // capture.active.min_depth).
    let mut s = CaptureSettings { time_limit_secs: 40, ..CaptureSettings::default() };
    s.active.timeout_secs = 5;
    let depth =
        |cam: &mut SyntheticCamera| match capture_face(cam, &mut NoDisplay, &ScriptedInput::accepting(), &s, &mut 0) {
            Ok(c) => c.flatness.unwrap_or(0.0),
            Err(kiosk_agent::session::SessionError::NotLive { flatness, .. }) => flatness,
            Err(e) => panic!("{e}"),
        };
    let head_depth = (0..3).map(|_| depth(&mut SyntheticCamera::with_default_face())).fold(f32::MAX, f32::min);
    let print_depth = [PrintMotion::Sway, PrintMotion::Tilt]
        .map(|m| depth(&mut SyntheticCamera::with_default_print(m)))
        .into_iter()
        .fold(0f32, f32::max);
    println!("metric liveness_depth_head_min {head_depth:.3} eye_distances");
    println!("metric liveness_depth_print_max {print_depth:.3} eye_distances");
    println!("metric liveness_min_depth {:.3} eye_distances", s.active.min_depth);

    // Upload sizes from a real capture on the synthetic camera (MJPEG, as a UVC camera sends).
    let mut cam = SyntheticCamera::with_default_face().with_format(PixelFormat::Mjpeg);
    let s = CaptureSettings::default();
    let images =
        capture_selfie_and_liveness(&mut cam, &mut NoDisplay, &ScriptedInput::accepting(), &s, &mut 0).unwrap();
    let selfie = images.iter().find(|i| i.image_type == ImageType::SelfieFile).unwrap().jpeg.len();
    let liveness: Vec<usize> =
        images.iter().filter(|i| i.image_type == ImageType::LivenessFile).map(|i| i.jpeg.len()).collect();
    println!("metric selfie_bytes {selfie} B");
    println!("metric liveness_frame_bytes {} B", liveness.iter().sum::<usize>() / liveness.len());
    let mut images = images;
    images.rotate_right(1);
    let job = Job {
        partner_params: PartnerParams {
            user_id: "bench-user".into(),
            job_id: "kiosk-bench-0001".into(),
            job_type: JobType::BiometricKyc,
            extra: Default::default(),
        },
        id_info: IdInfo {
            country: Some("NG".into()),
            id_type: Some("NIN_V2".into()),
            id_number: Some("00000000000".into()),
            first_name: Some("Ada".into()),
            entered: Some(true),
            ..Default::default()
        },
        options: JobOptions::default(),
        images,
        consent: None,
        metadata: Vec::new(),
    };
    let signed = Signed { timestamp: "2026-11-25T00:00:00.000Z".into(), signature: "x".repeat(44) };
    let prep = PrepUploadResponse {
        upload_url: "https://example.invalid/upload".into(),
        ref_id: String::new(),
        smile_job_id: "0000000001".into(),
        camera_config: serde_json::Value::Null,
        code: "2202".into(),
    };
    let zip = build_zip(&info_json(&job, "1", &signed, false, &prep), &job).unwrap();
    println!("metric bkyc_bundle_bytes {} B", zip.len());

    if let Ok(py) = std::env::var("PYTHON") {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/opencv_baseline.py");
        let st = std::process::Command::new(py)
            .arg(script)
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames"))
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/blazeface_short_128.onnx"))
            .arg(runs.to_string())
            .status();
        if !st.is_ok_and(|s| s.success()) {
            println!("(OpenCV baseline not run: PYTHON has no cv2)");
        }
    }
}
