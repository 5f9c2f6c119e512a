//! The screens of a visit, in the person's language, laid out for the panel: portrait panels
//! stack text over the camera preview, landscape ones put the preview left and the words right.
//! Fonts are embedded-graphics' ISO 8859-1 mono fonts (from the public-domain X11 misc-fixed
//! set), doubled on large panels.

use embedded_graphics::mono_font::iso_8859_1::{FONT_10X20, FONT_6X10, FONT_7X13, FONT_9X15};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, Ellipse, Line, PrimitiveStyle, Rectangle, RoundedRectangle};
use embedded_graphics::text::Text;

use super::text::Texts;
use super::Canvas;
use crate::vision::quality::Hint;

const BG: Rgb888 = Rgb888::new(16, 24, 40);
const FG: Rgb888 = Rgb888::new(240, 240, 240);
const DIM: Rgb888 = Rgb888::new(150, 160, 175);
const ACCENT: Rgb888 = Rgb888::new(40, 170, 110);
const WARN: Rgb888 = Rgb888::new(230, 160, 40);
const BAD: Rgb888 = Rgb888::new(220, 70, 60);
const INK: Rgb888 = Rgb888::new(16, 24, 40);

/// The uplink's state as the idle screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Online,
    Offline,
    Paused,
    ClockWrong,
}

/// How a person starts a verification at this kiosk: with the button (walk-up sessions), or
/// through staff and the host application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Button,
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceStep {
    Liveness,
    Selfie,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Front,
    Back,
}

/// What went wrong, for the error screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    CameraMissing,
    StorageFull,
    ClockWrong,
    QueuePaused,
    Cancelled,
    SaveFailed,
    TimedOut,
}

/// A camera picture to show: packed RGB.
pub type Preview = (u32, u32, Vec<u8>);

/// Everything the agent can show.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// Between customers: a welcome, how to start, and whether the kiosk is online, in words.
    Idle {
        link: Link,
        start: Start,
    },
    Consent {
        partner: String,
    },
    /// Face guidance: mirrored preview with the oval, the hint, liveness progress.
    Face {
        step: FaceStep,
        hint: Option<Hint>,
        done: u32,
        total: u32,
        preview: Option<Preview>,
    },
    /// Document framing; `review` shows the photo taken and asks to keep or retake it.
    Document {
        side: Side,
        hint: Option<Hint>,
        preview: Option<Preview>,
        review: bool,
    },
    Review {
        images: u32,
    },
    Saved,
    Uploading,
    Result {
        success: bool,
    },
    Error {
        problem: Problem,
    },
}

impl Screen {
    /// Short file-name-safe name.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::Idle { .. } => "idle",
            Screen::Consent { .. } => "consent",
            Screen::Face { .. } => "capture",
            Screen::Document { review: false, .. } => "document",
            Screen::Document { review: true, .. } => "document-review",
            Screen::Review { .. } => "review",
            Screen::Saved => "saved",
            Screen::Uploading => "uploading",
            Screen::Result { .. } => "result",
            Screen::Error { .. } => "error",
        }
    }
}

/// The language key of a hint.
pub fn hint_key(h: Hint) -> &'static str {
    match h {
        Hint::MoreLight => "hint_more_light",
        Hint::LessLight => "hint_less_light",
        Hint::HoldStill => "hint_hold_still",
        Hint::MoveALittle => "hint_move",
        Hint::NoFace => "hint_no_face",
        Hint::OneFaceOnly => "hint_one_face",
        Hint::MoveCloser => "hint_closer",
        Hint::MoveBack => "hint_back",
        Hint::Centre => "hint_centre",
    }
}

/// A hint in English, for logs and error messages.
pub fn hint_text(h: Hint) -> String {
    Texts::english().get(hint_key(h))
}

/// A font at an integer scale.
#[derive(Clone, Copy)]
struct Style {
    font: &'static MonoFont<'static>,
    scale: u32,
}

impl Style {
    fn char_w(&self) -> i32 {
        (self.font.character_size.width * self.scale) as i32
    }
    fn line_h(&self) -> i32 {
        ((self.font.character_size.height + 3) * self.scale) as i32
    }
}

/// Type sizes for a panel: small (≤ 320×240), medium (≤ 480×320), large.
struct Layout {
    title: Style,
    body: Style,
    small: Style,
    margin: i32,
}

fn layout(c: &Canvas) -> Layout {
    let area = c.width * c.height;
    let s = |font, scale| Style { font, scale };
    if area <= 320 * 240 {
        Layout { title: s(&FONT_10X20, 1), body: s(&FONT_7X13, 1), small: s(&FONT_6X10, 1), margin: 6 }
    } else if area <= 480 * 320 {
        Layout { title: s(&FONT_10X20, 1), body: s(&FONT_9X15, 1), small: s(&FONT_7X13, 1), margin: 10 }
    } else {
        Layout { title: s(&FONT_10X20, 2), body: s(&FONT_10X20, 1), small: s(&FONT_9X15, 1), margin: 16 }
    }
}

/// Draws `text` with its top-left at `p`, scaled by whole pixels.
fn draw_text(c: &mut Canvas, text: &str, p: Point, st: Style, color: Rgb888) {
    let base = Point::new(0, st.font.baseline as i32);
    if st.scale == 1 {
        let _ = Text::new(text, p + base, MonoTextStyle::new(st.font, color)).draw(c);
        return;
    }
    let mut tmp =
        Canvas::new(st.font.character_size.width * text.chars().count() as u32, st.font.character_size.height);
    let _ = Text::new(text, base, MonoTextStyle::new(st.font, Rgb888::WHITE)).draw(&mut tmp);
    let k = st.scale as i32;
    for y in 0..tmp.height {
        for x in 0..tmp.width {
            if tmp.pixel(x, y)[0] > 127 {
                let r = Rectangle::new(p + Point::new(x as i32 * k, y as i32 * k), Size::new(st.scale, st.scale));
                let _ = r.into_styled(PrimitiveStyle::with_fill(color)).draw(c);
            }
        }
    }
}

/// Word-wraps `text` into `width` pixels. Spaces break lines; no-break spaces (French
/// punctuation) do not.
fn wrap(text: &str, st: Style, width: i32) -> Vec<String> {
    let max = (width / st.char_w()).max(4) as usize;
    let mut lines = Vec::new();
    let mut line = String::new();
    // Words longer than a line are cut (narrow columns, long compounds) rather than run off.
    let words = text.split(' ').filter(|w| !w.is_empty()).flat_map(|w| {
        let chars: Vec<char> = w.chars().collect();
        chars.chunks(max).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>()
    });
    for word in words {
        let word = word.as_str();
        let (n, w) = (line.chars().count(), word.chars().count());
        if n > 0 && n + 1 + w > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draws wrapped text in the box from `x` (width `w`) at `y`; returns the y below it.
fn paragraph(c: &mut Canvas, text: &str, x: i32, y: i32, w: i32, st: Style, color: Rgb888) -> i32 {
    let mut y = y;
    for line in wrap(text, st, w) {
        draw_text(c, &line, Point::new(x, y), st, color);
        y += st.line_h();
    }
    y
}

/// Where a band goes: left edge, top, width.
#[derive(Clone, Copy)]
struct Slot {
    x: i32,
    y: i32,
    w: i32,
}

/// Text centred in a filled band; returns the band's bottom.
fn band(c: &mut Canvas, text: &str, Slot { x, y, w }: Slot, st: Style, fill: Rgb888, ink: Rgb888) -> i32 {
    let lines = wrap(text, st, w - 12);
    let h = lines.len() as i32 * st.line_h() + 8;
    let r = RoundedRectangle::with_equal_corners(
        Rectangle::new(Point::new(x, y), Size::new(w as u32, h as u32)),
        Size::new(6, 6),
    );
    let _ = r.into_styled(PrimitiveStyle::with_fill(fill)).draw(c);
    for (i, line) in lines.iter().enumerate() {
        let tw = line.chars().count() as i32 * st.char_w();
        draw_text(c, line, Point::new(x + (w - tw) / 2, y + 4 + i as i32 * st.line_h()), st, ink);
    }
    y + h
}

fn bar(c: &mut Canvas, x: i32, y: i32, w: i32, done: u32, total: u32) -> i32 {
    let h = 10;
    let _ = Rectangle::new(Point::new(x, y), Size::new(w as u32, h))
        .into_styled(PrimitiveStyle::with_stroke(DIM, 1))
        .draw(c);
    let filled = if total == 0 { 0 } else { (w - 4) * done.min(total) as i32 / total as i32 };
    if filled > 0 {
        let _ = Rectangle::new(Point::new(x + 2, y + 2), Size::new(filled as u32, h - 4))
            .into_styled(PrimitiveStyle::with_fill(ACCENT))
            .draw(c);
    }
    y + h as i32
}

/// Fits `p` into the box (keeping its aspect), mirrored when `mirror`; returns the drawn box.
fn picture(c: &mut Canvas, bx: Rectangle, (pw, ph, rgb): &Preview, mirror: bool) -> Rectangle {
    let scale = (bx.size.width as f32 / *pw as f32).min(bx.size.height as f32 / *ph as f32);
    let (w, h) = (((*pw as f32 * scale) as u32).max(1), ((*ph as f32 * scale) as u32).max(1));
    let x0 = bx.top_left.x as u32 + (bx.size.width - w) / 2;
    let y0 = bx.top_left.y as u32 + (bx.size.height - h) / 2;
    for y in 0..h {
        let sy = ((y as f32 / scale) as u32).min(ph - 1);
        for x in 0..w {
            let sx = ((x as f32 / scale) as u32).min(pw - 1);
            let sx = if mirror { pw - 1 - sx } else { sx };
            let s = ((sy * pw + sx) * 3) as usize;
            let d = (((y0 + y) * c.width + x0 + x) * 3) as usize;
            if s + 3 <= rgb.len() && d + 3 <= c.rgb.len() {
                c.rgb[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
            }
        }
    }
    Rectangle::new(Point::new(x0 as i32, y0 as i32), Size::new(w, h))
}

/// The preview area: a dark box when there is no picture yet.
fn preview_box(c: &mut Canvas, bx: Rectangle, p: &Option<Preview>, mirror: bool) -> Rectangle {
    match p {
        Some(p) => picture(c, bx, p, mirror),
        None => {
            let (w, h) = (bx.size.width.min(bx.size.height * 4 / 3), bx.size.height.min(bx.size.width * 3 / 4));
            let r = Rectangle::new(
                bx.top_left + Point::new(((bx.size.width - w) / 2) as i32, ((bx.size.height - h) / 2) as i32),
                Size::new(w, h),
            );
            let _ = r.into_styled(PrimitiveStyle::with_fill(Rgb888::new(40, 48, 64))).draw(c);
            r
        }
    }
}

/// The oval the face should fill (about the gates' face size), centred in the picture.
fn oval(c: &mut Canvas, pic: Rectangle, color: Rgb888) {
    let oh = pic.size.height * 62 / 100;
    let ow = oh * 3 / 4;
    let center = pic.center();
    let e = Ellipse::new(Point::new(center.x - ow as i32 / 2, center.y - oh as i32 / 2), Size::new(ow, oh));
    let _ = e.into_styled(PrimitiveStyle::with_stroke(color, 3)).draw(c);
}

/// Corner marks of an ID-1 card (85.6 × 54 mm) frame, centred in the picture.
fn card_frame(c: &mut Canvas, pic: Rectangle, color: Rgb888) {
    let w = pic.size.width as i32 * 80 / 100;
    let h = w * 54 / 86;
    let (x0, y0) = (pic.center().x - w / 2, pic.center().y - h / 2);
    let l = (w / 8).max(8);
    let style = PrimitiveStyle::with_stroke(color, 3);
    for (cx, cy, dx, dy) in [(x0, y0, 1, 1), (x0 + w, y0, -1, 1), (x0, y0 + h, 1, -1), (x0 + w, y0 + h, -1, -1)] {
        let _ = Line::new(Point::new(cx, cy), Point::new(cx + dx * l, cy)).into_styled(style).draw(c);
        let _ = Line::new(Point::new(cx, cy), Point::new(cx, cy + dy * l)).into_styled(style).draw(c);
    }
}

/// The two-button legend: press for yes, hold for no.
/// The two-button legend (press for yes, hold for no), ending at `at.y`: side by side, or
/// stacked when `stacked` (narrow columns).
fn buttons(c: &mut Canvas, t: &Texts, (yes, no): (&str, &str), at: Slot, st: Style, stacked: bool) {
    let labels = [
        (format!("{}: {}", t.get("button_press"), t.get(yes)), ACCENT),
        (format!("{}: {}", t.get("button_hold"), t.get(no)), DIM),
    ];
    let bw = if stacked { at.w } else { (at.w - 8) / 2 };
    let height = |text: &str| wrap(text, st, bw - 12).len() as i32 * st.line_h() + 8;
    if stacked {
        let total = height(&labels[0].0) + 6 + height(&labels[1].0);
        let mut y = at.y - total;
        for (text, fill) in &labels {
            y = band(c, text, Slot { x: at.x, y, w: bw }, st, *fill, INK) + 6;
        }
    } else {
        let tallest = height(&labels[0].0).max(height(&labels[1].0));
        for (i, (text, fill)) in labels.iter().enumerate() {
            band(c, text, Slot { x: at.x + i as i32 * (bw + 8), y: at.y - tallest, w: bw }, st, *fill, INK);
        }
    }
}

fn hint_band(c: &mut Canvas, t: &Texts, hint: Option<Hint>, ok_text: &str, at: Slot, st: Style) -> i32 {
    match hint {
        Some(h) => band(c, &t.get(hint_key(h)), at, st, WARN, INK),
        None => band(c, ok_text, at, st, ACCENT, INK),
    }
}

/// Splits the panel: (text column, picture box). Portrait panels get the text on top.
fn split(c: &Canvas, l: &Layout, text_h: i32) -> (Rectangle, Rectangle) {
    let (w, h, m) = (c.width as i32, c.height as i32, l.margin);
    if w > h {
        let pw = ((h - 2 * m) * 4 / 3).min(w * 58 / 100);
        (
            Rectangle::new(Point::new(pw + 2 * m, m), Size::new((w - pw - 3 * m) as u32, (h - 2 * m) as u32)),
            Rectangle::new(Point::new(m, m), Size::new(pw as u32, (h - 2 * m) as u32)),
        )
    } else {
        (
            Rectangle::new(Point::new(m, m), Size::new((w - 2 * m) as u32, text_h as u32)),
            Rectangle::new(
                Point::new(m, text_h + 2 * m),
                Size::new((w - 2 * m) as u32, (h - text_h - 3 * m).max(8) as u32),
            ),
        )
    }
}

fn status_dot(c: &mut Canvas, link: Link, x: i32, y: i32, d: u32) {
    let color = match link {
        Link::Online => ACCENT,
        Link::Offline => WARN,
        Link::Paused | Link::ClockWrong => BAD,
    };
    let _ = Circle::new(Point::new(x, y), d).into_styled(PrimitiveStyle::with_fill(color)).draw(c);
}

fn tick(c: &mut Canvas, center: Point, r: i32, ok: bool) {
    let color = if ok { ACCENT } else { BAD };
    let _ = Circle::new(center - Point::new(r, r), (2 * r) as u32)
        .into_styled(PrimitiveStyle::with_stroke(color, 4))
        .draw(c);
    let style = PrimitiveStyle::with_stroke(color, 5);
    if ok {
        let _ = Line::new(center + Point::new(-r / 2, 0), center + Point::new(-r / 8, r / 2 - 2))
            .into_styled(style)
            .draw(c);
        let _ = Line::new(center + Point::new(-r / 8, r / 2 - 2), center + Point::new(r / 2, -r / 3))
            .into_styled(style)
            .draw(c);
    } else {
        let k = r / 2 - 2;
        let _ = Line::new(center + Point::new(-k, -k), center + Point::new(k, k)).into_styled(style).draw(c);
        let _ = Line::new(center + Point::new(-k, k), center + Point::new(k, -k)).into_styled(style).draw(c);
    }
}

/// Draws `screen` onto `c` in the language `t`.
pub fn render(screen: &Screen, t: &Texts, c: &mut Canvas) {
    let _ = c.clear(BG);
    let l = layout(c);
    let (m, w, h) = (l.margin, c.width as i32, c.height as i32);
    let tw = w - 2 * m;
    match screen {
        Screen::Idle { link, start } => {
            let y = paragraph(c, &t.get("welcome_title"), m, m + 4, tw, l.title, ACCENT);
            let how = if *start == Start::Button { "welcome_body" } else { "welcome_staff" };
            paragraph(c, &t.get(how), m, y + 8, tw, l.body, FG);
            let key = match link {
                Link::Online => "link_online",
                Link::Offline => "link_offline",
                Link::Paused => "link_paused",
                Link::ClockWrong => "link_clock",
            };
            let line = l.small.line_h();
            let y0 = h - m - 2 * line;
            status_dot(c, *link, m, y0 + 2, (line - 6).max(6) as u32);
            paragraph(c, &t.get(key), m + line, y0, tw - line, l.small, DIM);
        }
        Screen::Consent { partner } => {
            let y = paragraph(c, &t.get("consent_title"), m, m + 4, tw, l.title, ACCENT);
            paragraph(c, &t.fmt("consent_body", &[("partner", partner)]), m, y + 6, tw, l.body, FG);
            buttons(c, t, ("button_yes", "button_no"), Slot { x: m, y: h - m, w: tw }, l.body, false);
        }
        Screen::Face { step, hint, done, total, preview } => {
            let title = t.get(if *step == FaceStep::Liveness { "liveness_title" } else { "selfie_title" });
            let text_h = l.title.line_h() * 2 + 14;
            let (col, pic) = split(c, &l, text_h);
            let cw = col.size.width as i32;
            let y = paragraph(c, &title, col.top_left.x, col.top_left.y, cw, l.title, FG);
            let y = bar(c, col.top_left.x, y + 2, cw, *done, *total);
            let drawn = preview_box(c, pic, preview, true);
            oval(c, drawn, if hint.is_some() { WARN } else { ACCENT });
            let progress = t.fmt("progress", &[("done", &done.to_string()), ("total", &total.to_string())]);
            if w > h {
                // The column is narrow on small panels: the hint drops to the body size there.
                let st = if c.width * c.height <= 320 * 240 { l.body } else { l.title };
                hint_band(c, t, *hint, &progress, Slot { x: col.top_left.x, y: y + 10, w: cw }, st);
            } else {
                // Portrait: the hint sits over the bottom of the picture, where the eye already is.
                let bh = l.body.line_h() + 8;
                hint_band(c, t, *hint, &progress, Slot { x: m, y: h - m - bh, w: tw }, l.body);
            }
        }
        Screen::Document { side, hint, preview, review } => {
            let key = match (review, side) {
                (true, _) => "doc_review_title",
                (false, Side::Front) => "doc_front_title",
                (false, Side::Back) => "doc_back_title",
            };
            let text_h = l.title.line_h() * 2 + 8;
            let (col, mut pic) = split(c, &l, text_h);
            if *review && h > w {
                // Portrait: keep the photo clear of the buttons below it.
                pic.size.height = pic.size.height.saturating_sub((l.body.line_h() * 2 + 16) as u32);
            }
            let cw = col.size.width as i32;
            let y = paragraph(c, &t.get(key), col.top_left.x, col.top_left.y, cw, l.title, FG);
            let drawn = preview_box(c, pic, preview, false);
            if *review {
                let at = if w > h {
                    Slot { x: col.top_left.x, y: col.top_left.y + col.size.height as i32, w: cw }
                } else {
                    Slot { x: m, y: h - m, w: tw }
                };
                buttons(c, t, ("button_keep", "button_retake"), at, l.body, w > h);
            } else {
                card_frame(c, drawn, if hint.is_some() { WARN } else { ACCENT });
                if let Some(hn) = hint {
                    let at = if w > h {
                        Slot { x: col.top_left.x, y: y + 10, w: cw }
                    } else {
                        Slot { x: m, y: h - m - l.body.line_h() - 8, w: tw }
                    };
                    band(c, &t.get(hint_key(*hn)), at, l.body, WARN, INK);
                }
            }
        }
        Screen::Review { images } => {
            tick(c, Point::new(w / 2, h / 3), (h / 8).max(16), true);
            let y = paragraph(c, &t.get("review_title"), m, h / 3 + h / 8 + 10, tw, l.title, ACCENT);
            paragraph(c, &t.fmt("review_body", &[("n", &images.to_string())]), m, y + 6, tw, l.body, FG);
        }
        // No references, codes or counts here: they mean nothing to the person at the screen
        // (they go to the log and the API).
        Screen::Saved => {
            tick(c, Point::new(w / 2, h / 3), (h / 8).max(16), true);
            let y = paragraph(c, &t.get("saved_title"), m, h / 3 + h / 8 + 10, tw, l.title, ACCENT);
            paragraph(c, &t.get("saved_body"), m, y + 6, tw, l.body, FG);
        }
        Screen::Uploading => {
            let y = paragraph(c, &t.get("uploading_title"), m, m + 4, tw, l.title, ACCENT);
            paragraph(c, &t.get("uploading_body"), m, y + 6, tw, l.body, FG);
        }
        Screen::Result { success } => {
            tick(c, Point::new(w / 2, h / 3), (h / 8).max(16), *success);
            let (title, body, color) = if *success {
                ("result_ok", "result_ok_body", ACCENT)
            } else {
                ("result_fail", "result_fail_body", BAD)
            };
            let y = paragraph(c, &t.get(title), m, h / 3 + h / 8 + 10, tw, l.title, color);
            paragraph(c, &t.get(body), m, y + 6, tw, l.body, FG);
        }
        Screen::Error { problem } => {
            let (title, body) = match problem {
                Problem::CameraMissing => ("error_camera_title", "error_camera_body"),
                Problem::StorageFull => ("error_storage_title", "error_storage_body"),
                Problem::ClockWrong => ("error_clock_title", "error_clock_body"),
                Problem::QueuePaused => ("error_paused_title", "error_paused_body"),
                Problem::Cancelled => ("cancelled_title", "cancelled_body"),
                Problem::SaveFailed => ("error_save_title", "error_save_body"),
                Problem::TimedOut => ("timeout_title", "timeout_body"),
            };
            let color = if *problem == Problem::Cancelled { DIM } else { BAD };
            let y = paragraph(c, &t.get(title), m, m + 4, tw, l.title, color);
            paragraph(c, &t.get(body), m, y + 8, tw, l.body, FG);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_respects_no_break_spaces_and_width() {
        let st = Style { font: &FONT_10X20, scale: 1 };
        let lines = wrap("Trop lumineux\u{a0}: évitez la lumière directe", st, 150);
        assert!(lines.iter().all(|l| l.chars().count() <= 15), "{lines:?}");
        assert!(lines[0].ends_with("\u{a0}:"), "{lines:?}");
    }

    #[test]
    fn words_longer_than_a_line_are_cut() {
        let st = Style { font: &FONT_10X20, scale: 1 };
        assert_eq!(wrap("Approchez-vous un peu", st, 100), ["Approchez-", "vous un", "peu"]);
    }

    #[test]
    fn scaled_text_is_twice_as_tall() {
        let mut a = Canvas::new(100, 60);
        let mut b = Canvas::new(100, 60);
        draw_text(&mut a, "H", Point::zero(), Style { font: &FONT_10X20, scale: 1 }, FG);
        draw_text(&mut b, "H", Point::zero(), Style { font: &FONT_10X20, scale: 2 }, FG);
        let rows = |c: &Canvas| (0..c.height).filter(|&y| (0..c.width).any(|x| c.pixel(x, y)[0] > 200)).count();
        assert_eq!(rows(&b), 2 * rows(&a));
    }
}
