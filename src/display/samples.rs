//! A sample of every screen, for the golden pictures, `kiosk-agent display test` and the
//! display bench.

use std::path::{Path, PathBuf};

use super::screens::{render, FaceStep, Legend, Link, More, Problem, Screen, Side, Start};
use super::{Canvas, DisplayError, Texts};
use crate::vision::quality::Hint;

/// The panel sizes layouts are made for (and golden pictures exist for).
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
                [150 + (x / 40) as u8 * 8, 150 + (y / 40) as u8 * 8, 140]
            };
            rgb.extend_from_slice(&px);
        }
    }
    (w, h, rgb)
}

/// The partner the sample consent names (`display render --partner` names another).
pub const EXAMPLE_PARTNER: &str = "Example Bank";

pub fn screens() -> Vec<(&'static str, Screen)> {
    let p = Some(preview());
    vec![
        ("idle", Screen::Idle { link: Link::Offline, start: Start::Button }),
        ("idle-online", Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } }),
        ("idle-paused", Screen::Idle { link: Link::Paused, start: Start::Touch { languages: false } }),
        ("idle-touch", Screen::Idle { link: Link::Online, start: Start::Touch { languages: true } }),
        ("idle-keys", Screen::Idle { link: Link::Online, start: Start::Keys { languages: true } }),
        (
            "consent",
            Screen::Consent {
                partner: EXAMPLE_PARTNER.into(),
                more: More::No,
                legend: Legend::Button,
                face_only: false,
            },
        ),
        (
            "consent-touch",
            Screen::Consent {
                partner: EXAMPLE_PARTNER.into(),
                more: More::Link,
                legend: Legend::None,
                face_only: false,
            },
        ),
        (
            "consent-keys",
            Screen::Consent {
                partner: EXAMPLE_PARTNER.into(),
                more: More::Link,
                legend: Legend::Keys,
                face_only: false,
            },
        ),
        (
            "consent-more",
            Screen::Consent {
                partner: EXAMPLE_PARTNER.into(),
                more: More::Open(0),
                legend: Legend::None,
                face_only: false,
            },
        ),
        (
            "consent-selfie",
            Screen::Consent {
                partner: EXAMPLE_PARTNER.into(),
                more: More::Link,
                legend: Legend::None,
                face_only: true,
            },
        ),
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
            "liveness-turn",
            Screen::Face {
                step: FaceStep::Liveness,
                hint: Some(Hint::TurnLeft),
                done: 2,
                total: 9,
                preview: p.clone(),
            },
        ),
        (
            "liveness-up",
            Screen::Face { step: FaceStep::Liveness, hint: Some(Hint::LookUp), done: 5, total: 9, preview: p.clone() },
        ),
        (
            "selfie",
            Screen::Face { step: FaceStep::Selfie, hint: Some(Hint::HoldStill), done: 8, total: 9, preview: p.clone() },
        ),
        (
            "document-front",
            Screen::Document {
                side: Side::Front,
                hint: Some(Hint::MoveCloser),
                preview: p.clone(),
                review: false,
                legend: Legend::None,
            },
        ),
        (
            "document-back",
            Screen::Document { side: Side::Back, hint: None, preview: None, review: false, legend: Legend::None },
        ),
        (
            "document-review",
            Screen::Document {
                side: Side::Front,
                hint: None,
                preview: p.clone(),
                review: true,
                legend: Legend::Button,
            },
        ),
        (
            "document-review-touch",
            Screen::Document { side: Side::Front, hint: None, preview: p, review: true, legend: Legend::None },
        ),
        ("review", Screen::Review { images: 9 }),
        ("saved", Screen::Saved { online: false }),
        ("saved-online", Screen::Saved { online: true }),
        ("uploading", Screen::Uploading),
        ("result-ok", Screen::Result { success: true }),
        ("result-fail", Screen::Result { success: false }),
        ("error-camera", Screen::Error { problem: Problem::CameraMissing }),
        ("error-storage", Screen::Error { problem: Problem::StorageFull }),
        ("error-service", Screen::Error { problem: Problem::OutOfService }),
        ("cancelled", Screen::Error { problem: Problem::Cancelled }),
        ("timed-out", Screen::Error { problem: Problem::TimedOut }),
        ("not-live", Screen::Error { problem: Problem::NotLive }),
    ]
}

/// The rest of what a person may see, beyond the golden [`screens`]: every hint on the face and
/// card screens, the welcome with a wrong clock, and a job that could not be saved. Checked for
/// fit and written by `display render` with them, so a translator sees every text in place.
pub fn variants() -> Vec<(&'static str, Screen)> {
    let p = Some(preview());
    let face =
        |hint| Screen::Face { step: FaceStep::Liveness, hint: Some(hint), done: 4, total: 9, preview: p.clone() };
    let card = |hint| Screen::Document {
        side: Side::Front,
        hint: Some(hint),
        preview: p.clone(),
        review: false,
        legend: Legend::None,
    };
    let mut out = vec![
        ("idle-clock", Screen::Idle { link: Link::ClockWrong, start: Start::Touch { languages: true } }),
        ("error-save", Screen::Error { problem: Problem::SaveFailed }),
    ];
    out.extend([
        ("hint-more-light", face(Hint::MoreLight)),
        ("hint-less-light", face(Hint::LessLight)),
        ("hint-no-face", face(Hint::NoFace)),
        ("hint-one-face", face(Hint::OneFaceOnly)),
        ("hint-back", face(Hint::MoveBack)),
        ("hint-centre", face(Hint::Centre)),
        ("hint-move", face(Hint::MoveALittle)),
        ("hint-straight", face(Hint::LookStraight)),
        ("hint-turn-right", face(Hint::TurnRight)),
        ("hint-start-again", face(Hint::StartAgain)),
        ("card-hint-back", card(Hint::MoveBack)),
        ("card-hint-centre", card(Hint::Centre)),
        ("card-hint-more-light", card(Hint::MoreLight)),
        ("card-hint-hold-still", card(Hint::HoldStill)),
    ]);
    out
}

/// Every screen a person may see: [`screens`] and their [`variants`].
pub fn all() -> Vec<(&'static str, Screen)> {
    let mut out = screens();
    out.extend(variants());
    out
}

/// [`all`], the consent naming `partner` (the configured `partner_name`) instead of the example.
pub fn all_for(partner: &str) -> Vec<(&'static str, Screen)> {
    all()
        .into_iter()
        .map(|(name, screen)| match screen {
            Screen::Consent { more, legend, face_only, .. } => {
                (name, Screen::Consent { partner: partner.into(), more, legend, face_only })
            }
            screen => (name, screen),
        })
        .collect()
}

/// The whole consent's pages after its first, as they are named.
const MORE_PAGES: [&str; 7] = [
    "consent-more-2",
    "consent-more-3",
    "consent-more-4",
    "consent-more-5",
    "consent-more-6",
    "consent-more-7",
    "consent-more-8",
];

/// [`all_for`] `partner` on a panel like `like` in `texts`, with the whole consent's further
/// pages (a small panel shows it in several; the first eight, all laid out alike).
pub fn every_page(partner: &str, texts: &Texts, like: &Canvas) -> Vec<(&'static str, Screen)> {
    let mut out = Vec::new();
    for (name, screen) in all_for(partner) {
        let pages = super::screens::pages(&screen, texts, like);
        let next: Vec<_> = match &screen {
            Screen::Consent { partner, legend, face_only, .. } => MORE_PAGES
                .iter()
                .zip(1..pages)
                .map(|(n, p)| {
                    (
                        *n,
                        Screen::Consent {
                            partner: partner.clone(),
                            more: More::Open(p as u16),
                            legend: *legend,
                            face_only: *face_only,
                        },
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        out.push((name, screen));
        out.extend(next);
    }
    out
}

/// Renders every screen a person may see ([`every_page`] for `partner`) in `texts` at `size`, in
/// `brand`, and writes them to `dir` as NAME.png.
pub fn render_to(
    texts: &Texts,
    (w, h): (u32, u32),
    diagonal: Option<f32>,
    brand: &std::sync::Arc<super::brand::Brand>,
    partner: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, DisplayError> {
    let err = |p: &Path, e: &dyn std::fmt::Display| DisplayError::Write {
        path: p.display().to_string(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
    let mut written = Vec::new();
    let panel = || {
        let mut c = match diagonal {
            Some(d) => Canvas::for_panel(w, h, d),
            None => Canvas::new(w, h),
        };
        c.brand = brand.clone();
        c
    };
    for (name, screen) in every_page(partner, texts, &panel()) {
        let mut c = panel();
        render(&screen, texts, &mut c);
        let path = dir.join(format!("{name}.png"));
        let img = image::RgbImage::from_raw(w, h, c.rgb).ok_or_else(|| err(&path, &"canvas size mismatch"))?;
        img.save(&path).map_err(|e| err(&path, &e))?;
        written.push(path);
    }
    Ok(written)
}
