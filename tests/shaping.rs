//! Shaping checked against HarfBuzz: every text of every built-in language, laid out as the
//! 7" panel's screens lay it out (title and body sizes), is shaped run by run; each run's glyph
//! ids, clusters, advances and offsets must equal what `hb-shape` (Debian's libharfbuzz-bin)
//! gives for the same text, font file, direction, language and scale (size × 64).

use std::collections::BTreeMap;
use std::process::Command;

use kiosk_agent::display::style::scale;
use kiosk_agent::display::text::{Texts, BUILT_IN};
use kiosk_agent::display::typeset::fonts::FILES;
use kiosk_agent::display::typeset::layout;
use kiosk_agent::display::Canvas;

/// One hb-shape glyph, in its JSON output.
#[derive(serde::Deserialize, Debug)]
struct HbGlyph {
    g: u32,
    cl: u32,
    dx: i32,
    dy: i32,
    ax: i32,
}

/// A glyph as both sides give it: id, cluster, x advance, x offset, y offset.
type G = (u32, u32, i32, i32, i32);
/// How runs were shaped: face, right to left, language, scale.
type How = (u8, bool, String, i32);

#[test]
fn every_built_in_text_shapes_as_harfbuzz_shapes_it() {
    let hb = Command::new("hb-shape").arg("--version").output();
    assert!(hb.is_ok(), "hb-shape is missing: apt-get install libharfbuzz-bin (scripts/test.sh does)");
    let dir = tempfile::tempdir().unwrap();
    let s = scale(&Canvas::new(800, 480));
    // (face, rtl, lang, scale) → the runs shaped that way, with our glyphs.
    let mut groups: BTreeMap<How, Vec<(String, Vec<G>)>> = BTreeMap::new();
    for (code, _) in BUILT_IN {
        let t = Texts::load(code, None).unwrap();
        for (_, text) in t.entries() {
            for style in [s.title, s.body] {
                for line in layout(text, style, 700, t.setting()).lines {
                    for run in line.runs {
                        let glyphs = run.glyphs.iter().map(|g| (g.id, g.cluster, g.x_advance, g.x_offset, g.y_offset));
                        groups
                            .entry((run.face, run.rtl, code.to_string(), run.scale))
                            .or_default()
                            .push((run.text.clone(), glyphs.collect()));
                    }
                }
            }
        }
    }
    let (mut runs, mut glyphs, mut differ) = (0, 0, Vec::new());
    for ((face, rtl, lang, scale), list) in &groups {
        let (name, _, bytes) = FILES[*face as usize];
        let font = dir.path().join(name);
        std::fs::write(&font, kiosk_agent::assets::inflate(bytes)).unwrap();
        let texts = dir.path().join("runs.txt");
        let mut body = String::new();
        for (text, _) in list {
            body.push_str(text);
            body.push('\n');
        }
        std::fs::write(&texts, body).unwrap();
        let out = Command::new("hb-shape")
            .arg(format!("--font-size={scale}"))
            .arg(format!("--direction={}", if *rtl { "rtl" } else { "ltr" }))
            .arg(format!("--language={lang}"))
            .args(["--output-format=json", "--no-glyph-names", "--utf8-clusters"])
            .arg(&font)
            .arg(format!("--text-file={}", texts.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "hb-shape: {}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(lines.len(), list.len(), "hb-shape gave one line per run");
        for ((text, ours), line) in list.iter().zip(lines) {
            let theirs: Vec<HbGlyph> = serde_json::from_str(line).unwrap();
            let theirs: Vec<G> = theirs.iter().map(|g| (g.g, g.cl, g.ax, g.dx, g.dy)).collect();
            runs += 1;
            glyphs += ours.len();
            if &theirs != ours {
                differ.push(format!("{lang} {name} {scale} {text:?}:\n  ours {ours:?}\n  hb   {theirs:?}"));
            }
        }
    }
    println!("metric shaping_runs_checked {runs} runs");
    println!("metric shaping_glyphs_checked {glyphs} glyphs");
    assert!(runs > 1000, "only {runs} runs were compared");
    assert!(differ.is_empty(), "{} of {runs} runs differ from HarfBuzz:\n{}", differ.len(), differ.join("\n"));
}
