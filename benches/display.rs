//! Display benchmark; prints `metric <name> <value> <unit>` lines.
//!
//! For an ST7789 240×320 and an ILI9341 320×240 panel (through `Recorder`, the SPI test double,
//! which counts what would go over the wire): the bytes per live-preview frame while a person
//! sways in front of the synthetic camera (only changed areas are sent), the frame rate those
//! bytes allow at a 32 MHz SPI clock, the full-screen figure for comparison, and the time to
//! render and diff one frame here.
//!
//! And the time to render whole 800×480 screens (the 7" panel) with the Unicode text stack, in
//! English, Arabic and Amharic, warm (glyphs cached, as on a running kiosk) and cold (first
//! screen after start). The stripped aarch64 binary's size is printed by `scripts/arm.sh build`.
//!
//! Run: `cargo bench --bench display`

use std::time::Instant;

use kiosk_agent::camera::synthetic::SyntheticCamera;
use kiosk_agent::camera::FrameSource;
use kiosk_agent::display::screens::{FaceStep, Screen};
use kiosk_agent::display::spi::{Model, NoDelay, NoPin, Recorder, Sent, SpiPanel};
use kiosk_agent::display::Display;
use kiosk_agent::vision::decode::rgb;
use kiosk_agent::vision::encode::fit_long_side;

const SPI_HZ: f64 = 32_000_000.0;

/// p50 and p90 of `f`'s time over `n` runs, in ms.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut ms: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[n / 2], ms[n * 9 / 10])
}

fn full_screens() {
    use kiosk_agent::display::samples::screens;
    use kiosk_agent::display::screens::render;
    use kiosk_agent::display::{Canvas, Texts};
    let mut worst = 0.0f64;
    for code in ["en", "ar", "am"] {
        let t = Texts::load(code, None).unwrap();
        let cold = Instant::now();
        render(&screens()[2].1, &t, &mut Canvas::new(800, 480));
        println!("metric render_800x480_{code}_cold {:.1} ms", cold.elapsed().as_secs_f64() * 1000.0);
        for (name, screen) in screens().into_iter().filter(|(n, _)| ["idle", "consent", "liveness"].contains(n)) {
            let (p50, p90) = time(50, || render(&screen, &t, &mut Canvas::new(800, 480)));
            worst = worst.max(p50);
            println!("metric render_800x480_{code}_{name}_p50 {p50:.2} ms");
            println!("metric render_800x480_{code}_{name}_p90 {p90:.2} ms");
        }
    }
    println!("metric render_800x480_worst_p50 {worst:.2} ms");
}

fn main() {
    full_screens();
    let frames = std::env::var("DISPLAY_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    for (model, size, name) in
        [(Model::St7789, (240, 320), "st7789_240x320"), (Model::Ili9341, (320, 240), "ili9341_320x240")]
    {
        let rec = Recorder::default();
        let mut panel = SpiPanel::new(model, rec.clone(), rec.dc(), NoPin, size, &mut NoDelay).unwrap();
        let mut cam = SyntheticCamera::with_default_face();
        let mut bytes = Vec::new();
        let mut ms = Vec::new();
        for i in 0..frames + 1 {
            let f = cam.next_frame().unwrap();
            // The preview is scaled down before it is handed to the display (as the capture loop does).
            let small = fit_long_side(&rgb(&f).unwrap(), 320);
            let screen = Screen::Face {
                step: FaceStep::Liveness,
                hint: None,
                done: (i / 30) as u32 % 9,
                total: 9,
                preview: Some((small.width, small.height, small.data)),
            };
            rec.take();
            let t = Instant::now();
            panel.show(&screen).unwrap();
            let el = t.elapsed().as_secs_f64() * 1000.0;
            let sent: usize = rec
                .take()
                .iter()
                .map(|s| match s {
                    Sent::Data(d) => d.len(),
                    Sent::Command(_) => 1,
                })
                .sum();
            if i > 0 {
                bytes.push(sent);
                ms.push(el);
            }
        }
        bytes.sort();
        ms.sort_by(f64::total_cmp);
        let mean = bytes.iter().sum::<usize>() as f64 / bytes.len() as f64;
        let full = (size.0 * size.1 * 2) as f64;
        println!("metric {name}_preview_bytes_per_frame {mean:.0} B");
        println!("metric {name}_preview_bytes_p90 {} B", bytes[bytes.len() * 9 / 10]);
        println!("metric {name}_preview_fps_at_32mhz {:.1} fps", SPI_HZ / 8.0 / mean);
        println!("metric {name}_full_frame_fps_at_32mhz {:.1} fps", SPI_HZ / 8.0 / full);
        println!("metric {name}_render_and_diff_p50 {:.2} ms", ms[ms.len() / 2]);
    }
}
