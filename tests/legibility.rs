//! Legibility measured: Tesseract (Debian's tesseract-ocr with its language data) reads back
//! every text of a language set by our text stack, and the same texts set by HarfBuzz's own
//! renderer (`hb-view`) in the same font and size; our character error rate must be within
//! five points of hb-view's. Prints `metric ocr_cer_LANG` lines. Ignored in the plain suite
//! (it needs Tesseract and takes a minute); `scripts/test.sh` runs it.

use std::path::Path;
use std::process::Command;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use kiosk_agent::display::text::Texts;
use kiosk_agent::display::typeset::{layout, Align, Style, Weight};
use kiosk_agent::display::Canvas;
use unicode_normalization::UnicodeNormalization;

const PX: f32 = 28.0;
/// (language, Tesseract's model, the font hb-view sets it in).
const LANGUAGES: [(&str, &str, &str); 6] = [
    ("en", "eng", "NotoSans-Regular.ttf"),
    ("fr", "fra", "NotoSans-Regular.ttf"),
    ("sw", "swa", "NotoSans-Regular.ttf"),
    ("yo", "yor", "NotoSans-Regular.ttf"),
    ("am", "amh", "NotoSansEthiopic-Regular.ttf"),
    ("ar", "ara", "NotoSansArabic-Regular.ttf"),
];

/// The language's texts with their marks filled, one per line.
fn texts(t: &Texts) -> Vec<String> {
    t.entries()
        .filter(|(k, _)| *k != "language")
        .map(|(_, v)| v.replace("{partner}", "Bank").replace("{n}", "9").replace("{done}", "3").replace("{total}", "8"))
        .collect()
}

/// Our rendering: each text on its own line, black on white, no wrapping.
fn ours(t: &Texts, lines: &[String], out: &Path) {
    let st = Style { px: PX, weight: Weight::Regular };
    let blocks: Vec<_> = lines.iter().map(|l| layout(l, st, 4000, t.setting())).collect();
    let w = blocks.iter().map(|b| b.width()).max().unwrap() + 40;
    let h: i32 = blocks.iter().map(|b| b.height()).sum::<i32>() + 40;
    let mut c = Canvas::new(w as u32, h as u32);
    let _ = c.clear(Rgb888::WHITE);
    let mut y = 20;
    for b in &blocks {
        b.draw(&mut c, 20, y, w - 40, Align::Start, Rgb888::BLACK);
        y += b.height();
    }
    image::RgbImage::from_raw(c.width, c.height, c.rgb).unwrap().save(out).unwrap();
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}; scripts/test.sh installs it"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Characters compared: canonical decomposition, no white space (OCR's line and word breaks
/// are not what is measured).
fn chars(s: &str) -> Vec<char> {
    s.nfd().filter(|c| !c.is_whitespace()).collect()
}

fn cer(expected: &[char], got: &[char]) -> f64 {
    let mut prev: Vec<usize> = (0..=got.len()).collect();
    for (i, a) in expected.iter().enumerate() {
        let mut cur = vec![i + 1; got.len() + 1];
        for (j, b) in got.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(a != b)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[got.len()] as f64 / expected.len().max(1) as f64
}

#[test]
#[ignore = "needs tesseract-ocr and hb-view; scripts/test.sh runs it"]
fn tesseract_reads_our_screens_about_as_well_as_harfbuzz_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let fonts = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fonts");
    let mut worse = Vec::new();
    for (code, model, font) in LANGUAGES {
        let t = Texts::load(code, None).unwrap();
        let lines = texts(&t);
        let expected = chars(&lines.join("\n"));
        let (mine, theirs) = (dir.path().join(format!("{code}-ours.png")), dir.path().join(format!("{code}-hb.png")));
        ours(&t, &lines, &mine);
        let file = dir.path().join(format!("{code}.txt"));
        std::fs::write(&file, lines.join("\n")).unwrap();
        run(Command::new("hb-view")
            .arg(format!("--font-size={PX}"))
            .arg(format!("--language={code}"))
            .args(["--margin=20", "--background=#FFFFFF", "--foreground=#000000", "--output-format=png"])
            .arg(format!("--output-file={}", theirs.display()))
            .arg(fonts.join(font))
            .arg(format!("--text-file={}", file.display())));
        // One thread: OpenMP spinning on two cores made it slower, not faster.
        let read = |p: &Path| {
            run(Command::new("tesseract")
                .env("OMP_THREAD_LIMIT", "1")
                .arg(p)
                .args(["stdout", "-l", model, "--psm", "6"]))
        };
        let (a, b) = (cer(&expected, &chars(&read(&mine))), cer(&expected, &chars(&read(&theirs))));
        println!(
            "metric ocr_cer_{code} {:.1} % (hb-view {:.1} %, {} characters)",
            a * 100.0,
            b * 100.0,
            expected.len()
        );
        if a > b + 0.05 {
            worse.push(format!("{code}: {:.1} % against hb-view's {:.1} %", a * 100.0, b * 100.0));
        }
    }
    assert!(worse.is_empty(), "Tesseract reads our rendering worse than hb-view's: {worse:?}");
}
