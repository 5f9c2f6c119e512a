//! Setting Unicode text on a [`Canvas`](super::Canvas): built-in Noto fonts ([`fonts`]), shaping
//! with harfrust ([`shape`]), bidirectional ordering and line breaking ([`lines`]), anti-aliased
//! glyphs ([`raster`]). Pure Rust, no system fonts or fontconfig: what a kiosk shows does not
//! depend on what its image happens to have installed.

pub mod fonts;
pub mod lines;
pub mod raster;
pub mod shape;

pub use fonts::Weight;
pub use lines::{layout, Align, Block, Setting, Style};

/// The first character of `text` no built-in face of `weight` can draw.
pub fn uncovered(text: &str, weight: Weight) -> Option<char> {
    text.chars().filter(|c| !c.is_control()).find(|&c| !fonts::covers(c, weight))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::display::Canvas;
    use embedded_graphics::pixelcolor::{Rgb888, RgbColor};

    const LTR: Setting = Setting { lang: "en", rtl: false };
    const RTL: Setting = Setting { lang: "ar", rtl: true };

    fn ink(c: &Canvas) -> (u32, u32) {
        let xs: Vec<u32> = (0..c.width).filter(|&x| (0..c.height).any(|y| c.pixel(x, y)[0] > 128)).collect();
        (*xs.first().unwrap(), *xs.last().unwrap())
    }

    #[test]
    fn lines_break_within_the_width_and_align() {
        let st = Style { px: 24.0, weight: Weight::Regular };
        let b = layout("Look straight at the camera and hold still", st, 200, LTR);
        assert!(b.lines.len() >= 2, "{}", b.lines.len());
        assert!(b.lines.iter().all(|l| l.width <= 200 * 64));
        let mut c = Canvas::new(300, b.height() as u32 + 4);
        b.draw(&mut c, 50, 0, 200, Align::Start, Rgb888::WHITE);
        let (left, right) = ink(&c);
        assert!((50..56).contains(&left), "{left}");
        assert!(right < 250, "{right}");
    }

    #[test]
    fn right_to_left_text_sits_on_the_right_and_reads_right_to_left() {
        let st = Style { px: 28.0, weight: Weight::Regular };
        let b = layout("مرحبا بك", st, 400, RTL);
        assert!(b.rtl && b.lines.len() == 1);
        let run = &b.lines[0].runs[0];
        assert!(run.rtl);
        // Visual order: the last word's glyphs come first.
        let clusters: Vec<u32> = run.glyphs.iter().map(|g| g.cluster).collect();
        assert!(clusters.first() > clusters.last(), "{clusters:?}");
        let mut c = Canvas::new(420, 60);
        b.draw(&mut c, 10, 0, 400, Align::Start, Rgb888::WHITE);
        let (left, right) = ink(&c);
        assert!(right > 400 && left > 200, "{left}..{right}");
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut() {
        let st = Style { px: 20.0, weight: Weight::Regular };
        let b = layout("Ọ̀gbẹ́ni-Ọ̀gbẹ́ni-Ọ̀gbẹ́ni-Ọ̀gbẹ́ni", st, 80, Setting { lang: "yo", rtl: false });
        assert!(b.lines.len() > 2);
        assert!(
            b.lines.iter().all(|l| l.width <= 80 * 64),
            "{:?}",
            b.lines.iter().map(|l| l.width / 64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn coverage_names_what_no_font_has() {
        assert_eq!(uncovered("Ẹ káàbọ̀ · እንኳን · مرحبا · ɓɗƙ · œ", Weight::Regular), None);
        assert_eq!(uncovered("Karibu ☺", Weight::Regular), Some('☺'));
    }
}
