//! Golden pictures of every screen in every built-in language at every supported panel size
//! (tests/golden/LANG/WxH/NAME.png), compared pixel for pixel. After a deliberate change to the
//! screens, regenerate them with `UPDATE_GOLDEN=1 cargo test --test display` and look at them.

use std::path::PathBuf;

use kiosk_agent::display::samples::{screens, SIZES};
use kiosk_agent::display::screens::render;
use kiosk_agent::display::text::{Texts, BUILT_IN};
use kiosk_agent::display::Canvas;

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
                    save_png(&path, w, h, &c.rgb);
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
                let drawn = c.rgb.chunks(3).filter(|p| *p != bg.as_slice()).count();
                assert!(drawn > 500, "{code} {w}x{h} {name} shows nothing");
            }
        }
    }
}

/// Writes a golden with the best compression: there are 800 of them in the repository.
fn save_png(path: &std::path::Path, w: u32, h: u32, rgb: &[u8]) {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    PngEncoder::new_with_quality(file, CompressionType::Best, FilterType::Adaptive)
        .write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
}
