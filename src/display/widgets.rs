//! The pieces screens are made of: text in a box, buttons, bands with a pictogram, a progress
//! bar, the link status. Each returns where it ended so screens stack them on the grid.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, RoundedRectangle};

use super::pictograms::{self, Pictogram};
use super::style::{Scale, BODY_FLOOR_MM, PALETTE};
use super::touch::{Action, Target};
use super::typeset::{layout, Align, Block, Setting, Style};
use super::Canvas;

/// A box on the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Area {
    pub fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Area { x, y, w: w.max(1), h: h.max(1) }
    }
    pub fn bottom(&self) -> i32 {
        self.y + self.h
    }
    pub fn centre_x(&self) -> i32 {
        self.x + self.w / 2
    }
    pub fn rect(&self) -> Rectangle {
        Rectangle::new(Point::new(self.x, self.y), Size::new(self.w as u32, self.h as u32))
    }
    /// This area mirrored inside `outer` (for right-to-left layouts) when `mirror`.
    pub fn mirrored(self, outer: Area, mirror: bool) -> Area {
        if mirror {
            Area { x: outer.x + outer.w - (self.x - outer.x) - self.w, ..self }
        } else {
            self
        }
    }
}

/// Lays `text` out at `st`, shrinking it (not below the body floor) until it is at most
/// `max_h` tall and no word is wider than the line: a long translation gets smaller type
/// rather than running off the panel or breaking inside a word.
pub fn fit(text: &str, st: Style, w: i32, max_h: i32, s: &Scale, set: Setting) -> Block {
    let floor = (BODY_FLOOR_MM * s.px_per_mm).min(st.px);
    let mut st = st;
    loop {
        let b = layout(text, st, w, set);
        if (b.height() <= max_h && !b.cut) || st.px <= floor {
            return b;
        }
        st.px = (st.px * 0.92).max(floor).floor();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Primary,
    Secondary,
    /// Underlined accent words on the background: a lesser choice ("Read more").
    Link,
}

/// A button: its label, for kiosks with a physical button the gesture that chooses it, and
/// what a touch on it does.
pub struct Button<'a> {
    pub label: &'a str,
    pub gesture: Option<&'a str>,
    pub kind: Kind,
    pub action: Action,
}

/// A button's label: bold body text, or bold small text on small panels (two buttons side by
/// side then keep their words whole).
fn label_style(s: &Scale) -> Style {
    Style { weight: s.title.weight, ..if s.compact { s.small } else { s.body } }
}

/// The room a label keeps from its button's sides: half the grid on small panels, where two
/// buttons side by side leave a word little room.
fn side_pad(s: &Scale) -> i32 {
    if s.compact {
        s.unit / 2
    } else {
        s.unit
    }
}

fn button_height(b: &Button, s: &Scale, w: i32, set: Setting) -> i32 {
    let (pad, inner) = (s.unit, w - 2 * side_pad(s));
    let label = layout(b.label, label_style(s), inner, set).height();
    let gesture = b.gesture.map(|g| layout(g, s.small, inner, set).height()).unwrap_or(0);
    (label + gesture + 2 * pad).max(s.target)
}

/// Draws one button filling `at`, and leaves its target on the canvas.
pub fn button(c: &mut Canvas, b: &Button, s: &Scale, at: Area, set: Setting) {
    c.targets.push(Target { x: at.x, y: at.y, w: at.w, h: at.h, action: b.action });
    let radius = Size::new(s.unit as u32 * 2, s.unit as u32 * 2);
    let (fill, ink) = match b.kind {
        Kind::Primary => (c.brand.accent, c.brand.on_accent),
        Kind::Secondary => (PALETTE.surface, c.brand.accent),
        Kind::Link => (PALETTE.bg, c.brand.accent),
    };
    if b.kind != Kind::Link {
        let style = PrimitiveStyleBuilder::new()
            .fill_color(fill)
            .stroke_color(c.brand.accent)
            .stroke_width((s.unit / 2).max(2) as u32)
            .build();
        let _ = RoundedRectangle::with_equal_corners(at.rect(), radius).into_styled(style).draw(c);
    }
    let pad = side_pad(s);
    let inner = at.w - 2 * pad;
    let label = layout(b.label, label_style(s), inner, set);
    let gesture = b.gesture.map(|g| layout(g, s.small, inner, set));
    let total = label.height() + gesture.as_ref().map(Block::height).unwrap_or(0);
    let y = at.y + (at.h - total) / 2;
    label.draw(c, at.x + pad, y, inner, Align::Centre, ink);
    if b.kind == Kind::Link {
        // Under the whole line box, not at the baseline: a line there runs through the dots under
        // Igbo's ụ and Yoruba's ẹ, and through descenders (reading "Gukwuo" for "Gụkwuo").
        let (lw, base) = (label.width().min(inner), y + label.height() + (s.unit / 4).max(1));
        let x0 = at.x + pad + (inner - lw) / 2;
        let _ = embedded_graphics::primitives::Line::new(Point::new(x0, base), Point::new(x0 + lw, base))
            .into_styled(PrimitiveStyle::with_stroke(ink, (s.unit / 4).max(1) as u32))
            .draw(c);
    }
    if let Some(g) = gesture {
        g.draw(c, at.x + pad, y + label.height(), inner, Align::Centre, ink);
    }
}

/// The width of a button's label on one line.
pub fn link_width(b: &Button, s: &Scale, set: Setting) -> i32 {
    layout(b.label, label_style(s), i32::MAX / 128, set).width()
}

/// True when every word of the button's texts fits in `inner` px: a label may wrap between
/// words, never inside one.
fn words_fit(b: &Button, s: &Scale, inner: i32, set: Setting) -> bool {
    let label = label_style(s);
    let fits =
        |text: &str, st: Style| text.split_whitespace().all(|w| layout(w, st, i32::MAX / 128, set).width() <= inner);
    fits(b.label, label) && b.gesture.is_none_or(|g| fits(g, s.small))
}

/// A row of buttons ending at `bottom`; returns the row's top. Side by side when every word of
/// every label fits its button (labels wrap between words); else stacked full width, unless
/// that would be taller than `max_h`. The first button is on the reading side (left, or right
/// for right-to-left languages).
#[allow(clippy::too_many_arguments)]
pub fn buttons(
    c: &mut Canvas,
    list: &[Button],
    s: &Scale,
    x: i32,
    w: i32,
    bottom: i32,
    max_h: i32,
    set: Setting,
) -> i32 {
    let areas = row_areas(list, s, x, w, bottom, max_h, set);
    for (b, &a) in list.iter().zip(&areas) {
        button(c, b, s, a, set);
    }
    areas.iter().map(|a| a.y).min().unwrap_or(bottom)
}

/// Where [`buttons`] puts each button of `list`, drawing nothing.
pub fn row_areas(list: &[Button], s: &Scale, x: i32, w: i32, bottom: i32, max_h: i32, set: Setting) -> Vec<Area> {
    let n = list.len().max(1) as i32;
    let gap = s.unit * 2;
    let each = (w - gap * (n - 1)) / n;
    // Stacked buttons keep the same gap as side by side: a finger that misses one by a few
    // millimetres must not land on the other.
    let stacked: i32 = list.iter().map(|b| button_height(b, s, w, set) + gap).sum::<i32>() - gap;
    // Side by side also wants each label in two lines at most: three-line labels in two narrow
    // columns read worse than two full-width buttons.
    let inner = each - 2 * side_pad(s);
    let short = |b: &Button| layout(b.label, label_style(s), inner, set).lines.len() <= 2;
    if list.iter().all(|b| words_fit(b, s, inner, set) && short(b)) || stacked > max_h {
        let h = list.iter().map(|b| button_height(b, s, each, set)).max().unwrap_or(s.target);
        (0..list.len())
            .map(|i| {
                Area::new(x + i as i32 * (each + gap), bottom - h, each, h).mirrored(Area::new(x, 0, w, 1), set.rtl)
            })
            .collect()
    } else {
        let mut y = bottom + gap;
        let mut out: Vec<Area> = list
            .iter()
            .rev()
            .map(|b| {
                let h = button_height(b, s, w, set);
                y -= h + gap;
                Area::new(x, y, w, h)
            })
            .collect();
        out.reverse();
        out
    }
}

/// A band laid out `w` px wide, decided once (a band is drawn with every camera frame): its
/// pictogram's side (none in a narrow band, nor where a word would not fit beside it), where its
/// words start from the reading-side edge and how wide they are, the words, and its height.
pub struct BandFit {
    pub icon: i32,
    offset: i32,
    inner: i32,
    pub words: Block,
    pub height: i32,
}

pub fn band_fit(text: &str, s: &Scale, w: i32, set: Setting) -> BandFit {
    let (unit, side) = (s.unit, (s.body.px * 2.0) as i32);
    let words = |inner: i32| layout(text, Style { weight: s.title.weight, ..s.body }, inner, set);
    let beside = ((w as f32) >= s.body.px * 9.0).then(|| words(w - 3 * unit - side)).filter(|b| !b.cut);
    let (icon, offset, inner, words) = match beside {
        Some(b) => (side, 2 * unit + side, w - 3 * unit - side, b),
        None => (0, unit, w - 2 * unit, words(w - 2 * unit)),
    };
    let height = (words.height() + 2 * unit).max(icon + 2 * unit).max(s.target);
    BandFit { icon, offset, inner, words, height }
}

/// The height [`band`] takes for `text` in `w` px.
pub fn band_height(text: &str, s: &Scale, w: i32, set: Setting) -> i32 {
    band_fit(text, s, w, set).height
}

/// A band with a pictogram on the reading side and a line or two of text; returns its bottom.
pub fn band(
    c: &mut Canvas,
    text: &str,
    icon: Pictogram,
    at: Area,
    s: &Scale,
    colors: (Rgb888, Rgb888),
    set: Setting,
) -> i32 {
    let (fill, ink) = colors;
    let pad = s.unit;
    let BandFit { icon: icon_side, offset, inner, words: block, height: h } = band_fit(text, s, at.w, set);
    let r = Size::new(s.unit as u32 * 2, s.unit as u32 * 2);
    let _ = RoundedRectangle::with_equal_corners(Area::new(at.x, at.y, at.w, h).rect(), r)
        .into_styled(PrimitiveStyle::with_fill(fill))
        .draw(c);
    let outer = Area::new(at.x, at.y, at.w, h);
    if icon_side > 0 {
        let icon_area = Area::new(at.x + pad, at.y, icon_side, h).mirrored(outer, set.rtl);
        pictograms::draw(c, icon, Point::new(icon_area.centre_x(), at.y + h / 2), icon_side, ink);
    }
    let text_area = Area::new(at.x + offset, at.y, inner, h).mirrored(outer, set.rtl);
    block.draw(c, text_area.x, at.y + (h - block.height()) / 2, inner, Align::Start, ink);
    at.y + h
}

/// A progress bar filling from the reading side; returns its bottom.
pub fn progress(c: &mut Canvas, at: Area, done: u32, total: u32, rtl: bool) -> i32 {
    let r = Size::new(at.h as u32 / 2, at.h as u32 / 2);
    let _ =
        RoundedRectangle::with_equal_corners(at.rect(), r).into_styled(PrimitiveStyle::with_fill(PALETTE.line)).draw(c);
    let filled = if total == 0 { 0 } else { at.w * done.min(total) as i32 / total as i32 };
    if filled > 0 {
        let bar = Area::new(at.x, at.y, filled.max(at.h), at.h).mirrored(at, rtl);
        let _ = RoundedRectangle::with_equal_corners(bar.rect(), r)
            .into_styled(PrimitiveStyle::with_fill(c.brand.accent))
            .draw(c);
    }
    at.bottom()
}

/// The height [`status`] takes in `w` px.
pub fn status_height(label: &str, s: &Scale, w: i32, set: Setting) -> i32 {
    layout(label, s.small, w - s.small.px as i32 * 2, set).height()
}

/// A dot and a short text, centred at the bottom of `at`.
pub fn status(c: &mut Canvas, label: &str, dot: Rgb888, s: &Scale, at: Area, set: Setting) {
    let (centre_x, w, bottom) = (at.centre_x(), at.w, at.bottom());
    let block = layout(label, s.small, w - s.small.px as i32 * 2, set);
    let d = (s.small.px * 0.6) as i32;
    let total = block.width() + d + s.unit;
    let y = bottom - block.height();
    let row = Area::new(centre_x - total / 2, y, total, block.height());
    let dot_area = Area::new(row.x, y, d, block.height()).mirrored(row, set.rtl);
    let _ = Circle::with_center(Point::new(dot_area.centre_x(), y + block.height() / 2), d as u32)
        .into_styled(PrimitiveStyle::with_fill(dot))
        .draw(c);
    let text_area = Area::new(row.x + d + s.unit, y, block.width(), block.height()).mirrored(row, set.rtl);
    block.draw(c, text_area.x, y, text_area.w, Align::Start, PALETTE.muted);
}
