//! Design tokens: the colours, the type scale and the spacing grid, in millimetres on the
//! panel ([`Canvas::px_per_mm`]), so a 2.8" SPI panel and a 7" touch display show the same
//! physical sizes where they fit.

use embedded_graphics::pixelcolor::Rgb888;

use super::typeset::{Style, Weight};
use super::Canvas;

/// Colours. Text on `bg` and `surface` has a contrast ratio of at least 7:1 (WCAG AAA). The
/// accent is the partner's ([`super::brand`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Palette {
    pub bg: Rgb888,
    pub surface: Rgb888,
    pub ink: Rgb888,
    pub muted: Rgb888,
    pub line: Rgb888,
    pub warn: Rgb888,
    pub warn_bg: Rgb888,
    pub bad: Rgb888,
    pub ok: Rgb888,
    /// Around a camera picture.
    pub stage: Rgb888,
}

pub const PALETTE: Palette = Palette {
    bg: Rgb888::new(246, 247, 249),
    surface: Rgb888::new(255, 255, 255),
    ink: Rgb888::new(17, 24, 39),
    muted: Rgb888::new(64, 72, 88),
    line: Rgb888::new(203, 208, 216),
    warn: Rgb888::new(161, 72, 8),
    warn_bg: Rgb888::new(255, 241, 204),
    bad: Rgb888::new(185, 28, 28),
    ok: Rgb888::new(0, 125, 70),
    stage: Rgb888::new(31, 41, 55),
};

/// Sizes for one panel, in pixels, from millimetre tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub px_per_mm: f32,
    pub title: Style,
    pub body: Style,
    pub small: Style,
    /// The spacing grid's unit.
    pub unit: i32,
    pub margin: i32,
    /// The smallest touch target's side (9 mm).
    pub target: i32,
    /// Pictograms' size.
    pub icon: i32,
    /// Small panels (2.8"–3.5") get the compact scale.
    pub compact: bool,
}

/// The smallest a body text may shrink to when a translation is long, in mm of em.
pub const BODY_FLOOR_MM: f32 = 3.0;

/// The type scale: em sizes in mm. Body text on the full scale is 5 mm of em, which puts Noto
/// Sans' capitals at 3.6 mm; the compact scale (panels under 70 mm across their short side)
/// trades size for words per line.
pub fn scale(c: &Canvas) -> Scale {
    let mm = c.px_per_mm;
    let short = c.width.min(c.height) as f32 / mm;
    let compact = short < 70.0;
    let (title, body, small, unit, margin, icon) =
        if compact { (4.6, 3.6, 3.0, 1.5, 2.5, 11.0) } else { (7.0, 5.0, 4.0, 2.0, 5.0, 18.0) };
    let st = |em: f32, weight| Style { px: (em * mm).round(), weight };
    let px = |v: f32| (v * mm).round() as i32;
    Scale {
        px_per_mm: mm,
        title: st(title, Weight::Bold),
        body: st(body, Weight::Regular),
        small: st(small, Weight::Regular),
        unit: px(unit),
        margin: px(margin),
        target: px(9.0),
        icon: px(icon),
        compact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::display::typeset::fonts::faces;

    #[test]
    fn body_capitals_are_at_least_3_5_mm_on_a_7_inch_panel_and_targets_9_mm() {
        let c = Canvas::new(800, 480);
        let s = scale(&c);
        let latin = &faces()[0];
        let cap_mm = s.body.px * latin.cap_height / latin.upem / c.px_per_mm;
        assert!(cap_mm >= 3.5, "{cap_mm} mm");
        assert!(s.target as f32 / c.px_per_mm >= 8.9);
        let small = scale(&Canvas::new(240, 320));
        assert!(small.compact && small.body.px >= 18.0, "{:?}", small.body);
    }
}
