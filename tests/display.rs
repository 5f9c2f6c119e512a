//! Golden pictures of every screen in every built-in language at every supported panel size
//! (tests/golden/LANG/WxH/NAME.png), compared pixel for pixel. After a deliberate change to the
//! screens, regenerate them with `UPDATE_GOLDEN=1 cargo test --test display` and look at them.

use std::path::PathBuf;

use kiosk_agent::display::screens::{render, FaceStep, Link, Problem, Screen, Side};
use kiosk_agent::display::text::{Texts, BUILT_IN};
use kiosk_agent::display::Canvas;
use kiosk_agent::vision::quality::Hint;

pub const SIZES: [(u32, u32); 4] = [(240, 320), (320, 240), (480, 320), (800, 480)];

/// A stand-in camera picture: a head-and-shoulders silhouette, so goldens stay small.
fn preview() -> (u32, u32, Vec<u8>) {
    let (w, h) = (160u32, 120u32);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 - 80.0, y as f32 - 55.0);
            let head = (dx / 26.0).powi(2) + (dy / 34.0).powi(2) <= 1.0;
            let body = y > 95 && (dx / 60.0).powi(2) + ((y as f32 - 125.0) / 30.0).powi(2) <= 1.0;
            let px = if head {
                [196, 150, 120]
            } else if body {
                [60, 70, 110]
            } else {
                [150 + (x / 8) as u8, 150 + (y / 8) as u8, 140]
            };
            rgb.extend_from_slice(&px);
        }
    }
    (w, h, rgb)
}

pub fn screens() -> Vec<(&'static str, Screen)> {
    let p = Some(preview());
    vec![
        ("idle", Screen::Idle { queued: 3, link: Link::Offline }),
        ("idle-online", Screen::Idle { queued: 0, link: Link::Online }),
        ("consent", Screen::Consent { partner: "Example Bank".into() }),
        (
            "liveness",
            Screen::Face {
                step: FaceStep::Liveness,
                hint: Some(Hint::MoveCloser),
                done: 3,
                total: 9,
                preview: p.clone(),
            },
        ),
        ("liveness-ok", Screen::Face { step: FaceStep::Liveness, hint: None, done: 5, total: 9, preview: p.clone() }),
        (
            "selfie",
            Screen::Face { step: FaceStep::Selfie, hint: Some(Hint::HoldStill), done: 8, total: 9, preview: p.clone() },
        ),
        (
            "document-front",
            Screen::Document { side: Side::Front, hint: Some(Hint::MoveCloser), preview: p.clone(), review: false },
        ),
        ("document-back", Screen::Document { side: Side::Back, hint: None, preview: None, review: false }),
        ("document-review", Screen::Document { side: Side::Front, hint: None, preview: p, review: true }),
        ("review", Screen::Review { images: 9 }),
        ("saved", Screen::Saved { job_id: "kiosk-1764028800000-3f2a1b9c0d4e".into() }),
        ("uploading", Screen::Uploading { done: 1, total: 3 }),
        ("result-ok", Screen::Result { success: true, code: "1020".into(), text: "Exact Match".into() }),
        ("result-fail", Screen::Result { success: false, code: "1022".into(), text: "No Match".into() }),
        ("error-camera", Screen::Error { problem: Problem::CameraMissing }),
        ("error-storage", Screen::Error { problem: Problem::StorageFull }),
        ("error-clock", Screen::Error { problem: Problem::ClockWrong }),
        ("error-paused", Screen::Error { problem: Problem::QueuePaused }),
        ("cancelled", Screen::Error { problem: Problem::Cancelled }),
        ("timed-out", Screen::Error { problem: Problem::TimedOut }),
    ]
}

#[test]
fn every_screen_matches_its_golden_picture() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (code, _) in BUILT_IN {
        let t = Texts::load(code, None).unwrap();
        for (w, h) in SIZES {
            let dir = root.join(code).join(format!("{w}x{h}"));
            for (name, screen) in screens() {
                let mut c = Canvas::new(w, h);
                render(&screen, &t, &mut c);
                let path = dir.join(format!("{name}.png"));
                if update {
                    std::fs::create_dir_all(&dir).unwrap();
                    image::RgbImage::from_raw(w, h, c.rgb.clone()).unwrap().save(&path).unwrap();
                    continue;
                }
                let golden = image::open(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}; create it with UPDATE_GOLDEN=1", path.display()))
                    .to_rgb8();
                compared += 1;
                if golden.as_raw() != &c.rgb {
                    mismatches.push(path.display().to_string());
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "screens differ from their goldens: {mismatches:#?}");
    assert!(update || compared == BUILT_IN.len() * SIZES.len() * screens().len());
}

#[test]
fn text_stays_inside_the_panel_and_off_the_edges() {
    // Every screen draws something in its margins' interior and leaves the outermost pixel
    // columns background: text that runs off the panel would touch them.
    for (code, _) in BUILT_IN {
        let t = Texts::load(code, None).unwrap();
        for (w, h) in SIZES {
            for (name, screen) in screens() {
                let mut c = Canvas::new(w, h);
                render(&screen, &t, &mut c);
                let bg = c.pixel(0, 0);
                for y in 0..h {
                    assert_eq!(
                        c.pixel(w - 1, y),
                        bg,
                        "{code} {w}x{h} {name}: something touches the right edge at y={y}"
                    );
                    assert_eq!(c.pixel(0, y), bg, "{code} {w}x{h} {name}: something touches the left edge at y={y}");
                }
                for x in 0..w {
                    assert_eq!(c.pixel(x, h - 1), bg, "{code} {w}x{h} {name}: something touches the bottom at x={x}");
                }
                let lit = c.rgb.chunks(3).filter(|p| p[0] > 200 && p[1] > 200).count();
                assert!(lit > 50, "{code} {w}x{h} {name} shows no text");
            }
        }
    }
}
