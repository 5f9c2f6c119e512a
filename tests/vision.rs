//! Quality gates on the fixture webcam frames (tests/fixtures/frames, from ../shared/vision;
//! faces from NASA's public-domain astronaut portrait): good frames pass, each bad variant is
//! rejected with the hint that fixes it, and the gate's measurements track the manifest's
//! OpenCV figures for brightness.

use std::path::PathBuf;

use kiosk_agent::camera::{Frame, PixelFormat};
use kiosk_agent::vision::quality::{gate, measure, Gray, Hint, Thresholds};

fn frame(name: &str) -> Frame {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames").join(name);
    let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8();
    Frame {
        width: img.width(),
        height: img.height(),
        format: PixelFormat::Rgb8,
        data: img.into_raw(),
        at: Default::default(),
    }
}

fn verdict(name: &str) -> Result<(), Hint> {
    let q = measure(&Gray::from_frame(&frame(name)));
    gate(&q, &Thresholds::default())
}

#[test]
fn good_frames_pass() {
    for f in ["640x480_center.jpg", "640x480_large.jpg", "1280x720_center.jpg"] {
        assert_eq!(verdict(f), Ok(()), "{f}");
    }
}

#[test]
fn bad_frames_get_the_right_hint() {
    for (f, hint) in [
        ("640x480_dark.jpg", Hint::MoreLight),
        ("1280x720_dark.jpg", Hint::MoreLight),
        ("640x480_overexposed.jpg", Hint::LessLight),
        ("640x480_motionblur.jpg", Hint::HoldStill),
        ("640x480_defocus.jpg", Hint::HoldStill),
        ("1280x720_motionblur.jpg", Hint::HoldStill),
    ] {
        assert_eq!(verdict(f), Err(hint), "{f}");
    }
}

#[test]
fn luma_agrees_with_the_opencv_baseline() {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames/manifest.json")).unwrap(),
    )
    .unwrap();
    for f in manifest["frames"].as_array().unwrap() {
        let name = f["file"].as_str().unwrap();
        let q = measure(&Gray::from_frame(&frame(name)));
        let want = f["mean_luma"].as_f64().unwrap() as f32;
        assert!((q.mean_luma - want).abs() < 3.0, "{name}: luma {} vs OpenCV {want}", q.mean_luma);
    }
}
