//! The SPI panel path (mipidsi over the `SpiDevice`/`OutputPin` traits) against `Recorder`, a
//! test double that records what a panel would receive: the init sequences are compared with
//! recorded transcripts (tests/golden/spi/, regenerated with UPDATE_GOLDEN=1 after a deliberate
//! change), every write is at most 4096 bytes, and only changed areas are sent again.

use std::path::PathBuf;

use kiosk_agent::display::samples::screens;
use kiosk_agent::display::screens::{FaceStep, Screen};
use kiosk_agent::display::spi::{transcript, Model, NoDelay, NoPin, Recorder, Sent, SpiPanel, CHUNK};
use kiosk_agent::display::Display;
use kiosk_agent::vision::quality::Hint;

fn panel(
    model: Model,
    size: (u32, u32),
) -> (SpiPanel<Recorder, kiosk_agent::display::spi::RecorderDc, NoPin>, Recorder) {
    let rec = Recorder::default();
    let p = SpiPanel::new(model, rec.clone(), rec.dc(), NoPin, size, &mut NoDelay).unwrap();
    (p, rec)
}

fn data_bytes(sent: &[Sent]) -> usize {
    sent.iter().map(|s| if let Sent::Data(d) = s { d.len() } else { 0 }).sum()
}

#[test]
fn init_sequences_match_the_recorded_transcripts() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (model, size, name) in
        [(Model::St7789, (240, 320), "st7789-240x320"), (Model::Ili9341, (320, 240), "ili9341-320x240")]
    {
        let (_p, rec) = panel(model, size);
        let got = transcript(&rec.take());
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/spi/{name}-init.txt"));
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(got, want, "{name}");
        // Sanity of what was recorded: wake, 16-bit colour, display on.
        for must in ["cmd 11", "cmd 3a 55", "cmd 29"] {
            assert!(got.contains(must), "{name}: no {must:?} in\n{got}");
        }
    }
}

#[test]
fn frames_are_sent_in_chunks_and_only_where_they_changed() {
    let (mut p, rec) = panel(Model::St7789, (240, 320));
    rec.take();
    let face = |hint| Screen::Face { step: FaceStep::Liveness, hint, done: 3, total: 9, preview: None };
    p.show(&face(Some(Hint::MoveCloser))).unwrap();
    let first = rec.take();
    let text = transcript(&first);
    assert!(text.starts_with("cmd 2a 00 00 00 ef\ncmd 2b 00 00 01 3f\ncmd 2c"), "full-screen window first:\n{text}");
    assert_eq!(data_bytes(&first) - 8, 240 * 320 * 2, "one full frame of RGB565");
    for s in &first {
        if let Sent::Data(d) = s {
            assert!(d.len() <= CHUNK, "a write of {} bytes", d.len());
        }
    }

    p.show(&face(Some(Hint::MoveCloser))).unwrap();
    assert!(rec.take().is_empty(), "an unchanged frame sends nothing");

    p.show(&face(Some(Hint::HoldStill))).unwrap();
    let changed = rec.take();
    let bytes = data_bytes(&changed);
    assert!(bytes > 0 && bytes < 240 * 320 * 2 / 4, "a new hint resends a band, not the screen: {bytes} bytes");
    assert!(transcript(&changed).contains("cmd 2c"));
    assert_eq!(p.stats.frames, 3);
}

#[test]
fn every_screen_can_be_shown_on_both_panels() {
    for (model, size) in [(Model::St7789, (240, 320)), (Model::Ili9341, (320, 240))] {
        let (mut p, rec) = panel(model, size);
        for (name, s) in screens() {
            p.show(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(data_bytes(&rec.take()) > 240 * 320 * 2, "{model:?}");
    }
}
