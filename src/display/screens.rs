//! The screens of a visit, in the person's language, composed on the panel in millimetres
//! ([`super::style`]): centred compositions with a pictogram, a title and a few words; camera
//! steps put the picture beside the words on landscape panels (mirrored for right-to-left
//! languages) and under them on portrait ones.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, Line, Polyline, PrimitiveStyle};

use super::brand::Logo;
use super::pictograms::{self, Pictogram};
use super::style::{scale, Scale, PALETTE};
use super::text::Texts;
use super::touch::{Action, Target};
use super::typeset::{layout, Align, Block, Setting, Style};
use super::widgets::{
    band, band_fit, band_height, button, buttons, fit, link_width, progress, row_areas, status, status_height, Area,
    Button, Kind,
};
use super::Canvas;
use crate::vision::quality::Hint;

/// The uplink's state as the idle screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not probed yet (the first seconds after a start): no status line, its room kept.
    Checking,
    Online,
    Offline,
    Paused,
    ClockWrong,
}

/// What the on-screen buttons say of the hardware that answers them, under their labels: the
/// push button's "Press" and "Hold", a keypad's "Enter" and "Esc" (key names, as printed on
/// the keys), or nothing (a touch panel: the buttons themselves are tapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    None,
    Button,
    Keys,
}

/// How a person starts a verification at this kiosk: with the button or on the touch screen
/// (walk-up sessions), or through staff and the host application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Button,
    /// A keyboard or keypad and no touch panel: the Start button as a key's legend (Enter), and
    /// with `languages` the arrows either side of the language's name (the arrow keys).
    Keys {
        languages: bool,
    },
    /// A Start button on screen; with `languages`, arrows either side of the language's name.
    Touch {
        languages: bool,
    },
    /// Staff start the session (walk-ups off, or nothing to answer with); with `languages`, the
    /// person may still choose their language on the touch panel first.
    Staff {
        languages: bool,
    },
}

/// The consent screen's text: the short one, with a "Read more" link on touch panels, or the
/// whole text at a page (counted on: the screen wraps it to the pages the panel needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum More {
    No,
    Link,
    Open(u16),
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
    /// The kiosk cannot save a job for a reason staff must put right (a folder it may not write).
    OutOfService,
    Cancelled,
    SaveFailed,
    TimedOut,
    /// Liveness refused: the face did not turn as a person's does (a photo or a screen).
    NotLive,
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
        more: More,
        /// What the buttons say of the button or keys answering them.
        legend: Legend,
        /// Only the face is taken (SmartSelfie jobs): the short text does not speak of ID
        /// details.
        face_only: bool,
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
        /// What the buttons say of the button or keys answering them.
        legend: Legend,
    },
    Review {
        images: u32,
    },
    /// The job is kept; `online`: its upload follows at once.
    Saved {
        online: bool,
    },
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
            Screen::Consent { more: More::Open(_), .. } => "consent-more",
            Screen::Consent { .. } => "consent",
            Screen::Face { .. } => "capture",
            Screen::Document { review: false, .. } => "document",
            Screen::Document { review: true, .. } => "document-review",
            Screen::Review { .. } => "review",
            Screen::Saved { .. } => "saved",
            Screen::Uploading => "uploading",
            Screen::Result { .. } => "result",
            Screen::Error { .. } => "error",
        }
    }
}

/// A hint's language key while the card is in view: the card moves, not the person.
pub fn card_hint_key(h: Hint) -> &'static str {
    match h {
        Hint::MoveCloser => "hint_card_closer",
        Hint::MoveBack => "hint_card_back",
        Hint::Centre => "hint_card_centre",
        h => hint_key(h),
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
        Hint::LookStraight => "hint_straight",
        Hint::TurnLeft => "hint_turn_left",
        Hint::TurnRight => "hint_turn_right",
        Hint::LookUp => "hint_look_up",
        Hint::StartAgain => "hint_start_again",
    }
}

/// A hint in English, for logs and error messages.
pub fn hint_text(h: Hint) -> String {
    Texts::english().get(hint_key(h))
}

/// The pictogram that goes with a hint.
fn hint_icon(h: Hint) -> Pictogram {
    match h {
        Hint::MoreLight => Pictogram::Light,
        Hint::LessLight => Pictogram::TooBright,
        Hint::HoldStill => Pictogram::Still,
        Hint::MoveALittle => Pictogram::Turn,
        Hint::NoFace | Hint::Centre | Hint::LookStraight | Hint::StartAgain => Pictogram::Face,
        Hint::OneFaceOnly => Pictogram::One,
        Hint::MoveCloser => Pictogram::Closer,
        Hint::MoveBack => Pictogram::Back,
        Hint::TurnLeft => Pictogram::TurnLeft,
        Hint::TurnRight => Pictogram::TurnRight,
        Hint::LookUp => Pictogram::LookUp,
    }
}

/// Fits `p` into the box (keeping its aspect), mirrored when `mirror`; returns the drawn box.
fn picture(c: &mut Canvas, bx: Area, (pw, ph, rgb): &Preview, mirror: bool) -> Area {
    let scale = (bx.w as f32 / *pw as f32).min(bx.h as f32 / *ph as f32);
    let (w, h) = (((*pw as f32 * scale) as u32).max(1), ((*ph as f32 * scale) as u32).max(1));
    let x0 = bx.x as u32 + (bx.w as u32 - w.min(bx.w as u32)) / 2;
    let y0 = bx.y as u32 + (bx.h as u32 - h.min(bx.h as u32)) / 2;
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
    Area::new(x0 as i32, y0 as i32, w as i32, h as i32)
}

/// The camera area: the picture, or a dark stage with a pictogram of what to show.
fn stage(c: &mut Canvas, bx: Area, p: &Option<Preview>, mirror: bool, s: &Scale, empty: Pictogram) -> Area {
    match p {
        Some(p) => picture(c, bx, p, mirror),
        None => {
            // The shape a camera picture will have (4:3), until there is one.
            let (w, h) = (bx.w.min(bx.h * 4 / 3), bx.h.min(bx.w * 3 / 4));
            let bx = Area::new(bx.centre_x() - w / 2, bx.y + (bx.h - h) / 2, w, h);
            let _ = bx.rect().into_styled(PrimitiveStyle::with_fill(PALETTE.stage)).draw(c);
            let side = s.icon.min(bx.w.min(bx.h) * 2 / 3);
            pictograms::draw(c, empty, Point::new(bx.centre_x(), bx.y + bx.h / 2), side, PALETTE.line);
            bx
        }
    }
}

/// The oval the face should fill (about the gates' face size), centred in the picture.
fn oval(c: &mut Canvas, pic: Area, color: Rgb888, width: i32) {
    let oh = pic.h * 70 / 100;
    let ow = oh * 3 / 4;
    pictograms::ellipse(c, Point::new(pic.centre_x(), pic.y + pic.h / 2), ow / 2, oh / 2, width, color);
}

/// Large arrows on the picture beside the oval, the way the head should turn: the picture is a
/// mirror, so the person's left is the screen's left, in every language. "Look up" is an arrow
/// up on each side (above the oval there is no room for one a small panel shows as an arrow).
fn turn_arrow(c: &mut Canvas, pic: Area, hint: Option<Hint>, color: Rgb888, width: i32) {
    let (cx, cy) = (pic.centre_x(), pic.y + pic.h / 2);
    let reach = pic.h * 35 / 100 * 3 / 4 + pic.w / 40;
    let len = (pic.w / 2 - reach) * 4 / 5;
    // A head well wider than the shaft, and at most half the arrow, so a small panel's arrow
    // still reads as one (not as a funnel).
    let head = (pic.h / 9).max(width * 5 / 2).min(len / 2).max(4);
    let width = width.min(head * 2 / 3).max(2);
    // A dark edge round the light arrow: alone it all but vanished on a pale wall or skin. The
    // edge's tip sits further out, as a sharp tip's outline does (about twice the edge).
    let edge = (width / 3).max(2);
    let mut draw = |from: Point, to: Point| {
        let (dx, dy) = ((to.x - from.x) as f32, (to.y - from.y) as f32);
        let l = dx.hypot(dy).max(1.0);
        let out = |p: Point, k: f32| Point::new(p.x + (dx / l * k) as i32, p.y + (dy / l * k) as i32);
        let (back, ahead) = (out(from, -(edge as f32)), out(to, edge as f32 * 1.9));
        pictograms::arrow(c, back, ahead, head + edge * 2, PALETTE.ink, width + edge * 2);
        pictograms::arrow(c, from, to, head, color, width);
    };
    match hint {
        Some(Hint::TurnLeft) => draw(Point::new(cx - reach, cy), Point::new(cx - reach - len, cy)),
        Some(Hint::TurnRight) => draw(Point::new(cx + reach, cy), Point::new(cx + reach + len, cy)),
        Some(Hint::LookUp) => {
            let side = reach + (pic.w / 2 - reach) / 2;
            for x in [cx - side, cx + side] {
                draw(Point::new(x, cy + pic.h * 15 / 100), Point::new(x, cy - pic.h * 25 / 100));
            }
        }
        _ => {}
    }
}

/// Corner marks of an ID-1 card (85.6 × 54 mm) frame, centred in the picture.
fn card_frame(c: &mut Canvas, pic: Area, color: Rgb888, width: i32) {
    let w = pic.w * 80 / 100;
    let h = (w * 54 / 86).min(pic.h * 90 / 100);
    let (x0, y0) = (pic.centre_x() - w / 2, pic.y + pic.h / 2 - h / 2);
    let l = (w / 7).max(8);
    let style = PrimitiveStyle::with_stroke(color, width as u32);
    for (cx, cy, dx, dy) in [(x0, y0, 1, 1), (x0 + w, y0, -1, 1), (x0, y0 + h, 1, -1), (x0 + w, y0 + h, -1, -1)] {
        let _ = Line::new(Point::new(cx, cy), Point::new(cx + dx * l, cy)).into_styled(style).draw(c);
        let _ = Line::new(Point::new(cx, cy), Point::new(cx, cy + dy * l)).into_styled(style).draw(c);
    }
}

/// A centred message: a pictogram (or, on the welcome screen, the partner's logo in its place),
/// a title and a body, in the panel above `below` px. A logo given with `true` takes the body's
/// place where both cannot fit (a touch welcome, whose Start button says what to do).
#[allow(clippy::too_many_arguments)]
fn message(
    c: &mut Canvas,
    s: &Scale,
    set: Setting,
    icon: (Pictogram, Rgb888),
    logo: Option<(&Logo, bool)>,
    title: &str,
    body: &str,
    below: i32,
) {
    let (w, h, m) = (c.width as i32, c.height as i32, s.margin);
    let inner = Area::new(m, m, w - 2 * m, h - 2 * m - below);
    let mut title_b = fit(title, s.title, inner.w, (s.title.px as i32 * 3).min(inner.h), s, set);
    // The title gives way last, where even it cannot fit (a small landscape panel's welcome over
    // the Start button, the language row and a two-line status): the buttons say what to do.
    if title_b.height() > inner.h {
        title_b = Block::empty();
    }
    let mut body_b = fit(body, s.body, inner.w, inner.h / 2, s, set);
    // Where title and body cannot both fit (a welcome above the Start button and the language
    // row of a small panel), the title stays: the buttons under it say what to do.
    if title_b.height() + s.unit + body_b.height() > inner.h {
        body_b = Block::empty();
    }
    // The pictogram gives way when the words need the room. The partner's logo, which says
    // whose kiosk this is, takes the pictogram's height at most (or, where the pictogram gives
    // way, the room left, down to a line of type's height) and three fifths of the width.
    let fitted = |body_b: &Block| {
        let room = inner.h - title_b.height() - body_b.height() - 3 * s.unit;
        let icon_side = if room >= s.unit * 5 { s.icon.min(room) } else { 0 };
        let logo = logo
            .map(|(l, _)| (l, l.fitted(inner.w * 3 / 5, if icon_side > 0 { icon_side } else { room })))
            .filter(|(_, (_, lh))| *lh >= s.body.px as i32);
        (icon_side, logo)
    };
    let (mut icon_side, mut logo_at) = fitted(&body_b);
    if logo_at.is_none() && logo.is_some_and(|(_, over_body)| over_body) {
        body_b = Block::empty();
        (icon_side, logo_at) = fitted(&body_b);
    }
    let logo = logo_at;
    let mark_h = logo.map_or(icon_side, |(_, (_, lh))| lh);
    let gap = if mark_h > 0 { 2 * s.unit } else { 0 };
    let total = mark_h + gap + title_b.height() + s.unit + body_b.height();
    let mut y = inner.y + (inner.h - total).max(0) / 2;
    match logo {
        Some((l, (lw, lh))) => l.draw(c, inner.centre_x() - lw / 2, y, lw, lh),
        None if icon_side > 0 => {
            pictograms::draw(c, icon.0, Point::new(inner.centre_x(), y + icon_side / 2), icon_side, icon.1)
        }
        None => {}
    }
    y += mark_h + gap;
    title_b.draw(c, inner.x, y, inner.w, Align::Centre, PALETTE.ink);
    y += title_b.height() + s.unit;
    body_b.draw(c, inner.x, y, inner.w, Align::Centre, PALETTE.muted);
}

/// Splits the panel for a camera step: (words, picture). Landscape panels put the picture on the
/// left and the words on the right, mirrored for right-to-left languages; portrait panels put the
/// words on top.
fn split(c: &Canvas, s: &Scale, text_h: i32, rtl: bool) -> (Area, Area) {
    let (w, h, m) = (c.width as i32, c.height as i32, s.margin);
    let outer = Area::new(0, 0, w, h);
    if w <= h {
        return split_portrait(c, s, text_h);
    }
    {
        // Small landscape panels keep more than half the width for the words: a hint's longest
        // word must fit the column at the smallest type.
        let share = if s.compact { 44 } else { 56 };
        let pw = ((h - 2 * m) * 4 / 3).min(w * share / 100);
        let pic = Area::new(m, m, pw, h - 2 * m).mirrored(outer, rtl);
        let col = Area::new(pw + 2 * m, m, w - pw - 3 * m, h - 2 * m).mirrored(outer, rtl);
        (col, pic)
    }
}

/// Words on top (`text_h` tall), the picture under them.
fn split_portrait(c: &Canvas, s: &Scale, text_h: i32) -> (Area, Area) {
    let (w, h, m) = (c.width as i32, c.height as i32, s.margin);
    (Area::new(m, m, w - 2 * m, text_h), Area::new(m, text_h + 2 * m, w - 2 * m, h - text_h - 3 * m))
}

/// The room kept under a portrait picture for its band: two lines' worth whatever the hint, so
/// the picture does not jump when the hint changes (and an SPI panel resends only the band).
fn band_room(s: &Scale, msg: &str, w: i32, set: Setting) -> i32 {
    band_height(msg, s, w, set).max(band_height("x\nx", s, w, set)) + s.unit
}

/// Where a hint band goes on a portrait panel: under the picture when it fits there, else over
/// the picture's lower edge (never over the face in its middle).
fn under_picture(s: &Scale, msg: &str, pic: Area, drawn: Area, bottom: i32, set: Setting) -> Area {
    let bw = pic.w;
    let bh = band_height(msg, s, bw, set);
    let y = if drawn.bottom() + s.unit + bh <= bottom { drawn.bottom() + s.unit } else { bottom - bh };
    Area::new(pic.x, y, bw, 0)
}

/// The scale for a band of `msg` that must fit in `room` px: the small size when the body
/// size would not, or would cut a word.
fn shrunk(s: &Scale, msg: &str, w: i32, room: i32, set: Setting) -> Scale {
    let f = band_fit(msg, s, w, set);
    if f.height > room || f.words.cut {
        Scale { body: s.small, ..*s }
    } else {
        *s
    }
}

/// The language's own name between arrows to the previous and next language offered (the
/// arrows point outwards, mirrored for right-to-left languages); returns the row's top.
fn language_row(c: &mut Canvas, t: &Texts, s: &Scale, row: Area, set: Setting) -> i32 {
    let bw = (s.target * 3 / 2).min(row.w / 4);
    // (where, points left, what it does). Not mirrored for a right-to-left language: the row
    // goes from one script to another, and the button under the finger must keep going the
    // same way through the list.
    let arrows = [
        (Area::new(row.x, row.y, bw, row.h), true, Action::PreviousLanguage),
        (Area::new(row.x + row.w - bw, row.y, bw, row.h), false, Action::NextLanguage),
    ];
    for (at, left, action) in arrows {
        let b = Button { label: "", gesture: None, kind: Kind::Secondary, action };
        button(c, &b, s, at, set);
        // A chevron pointing outwards, drawn: a glyph would be text-sized.
        let (cx, cy, r) = (at.centre_x(), at.y + at.h / 2, (at.h / 5).max(3));
        let dx = if left { -r / 2 } else { r / 2 };
        let style = PrimitiveStyle::with_stroke(c.brand.accent, (s.unit / 2).max(2) as u32);
        for end in [cy - r, cy + r] {
            let _ = Line::new(Point::new(cx + dx, cy), Point::new(cx - dx, end)).into_styled(style).draw(c);
        }
    }
    let inner = row.w - 2 * bw - 2 * s.unit;
    let name = fit(&t.get("language"), s.body, inner, row.h, s, set);
    name.draw(c, row.x + bw + s.unit, row.y + (row.h - name.height()) / 2, inner, Align::Centre, PALETTE.ink);
    row.y
}

/// The consent screen with the text of `key`: its pages, or none when that text did not fit its
/// room. The whole text ([`More::Open`]) is not shrunk to fit, as the short one is: a person who
/// opened it is there to read it. It is set at the body size, or on a small panel where it takes
/// more than one page at the small size, in pages where it is longer than the panel.
fn consent(c: &mut Canvas, t: &Texts, partner: &str, more: More, legend: Legend, key: &str) -> Option<usize> {
    let s = scale(c);
    let set = t.setting();
    let (m, w, h) = (s.margin, c.width as i32, c.height as i32);
    let full = Area::new(m, m, w - 2 * m, h - 2 * m);
    let (press, hold) = gestures(t, legend);
    let open = matches!(more, More::Open(_));
    let (yes, no) = (t.get("button_yes"), t.get(if open { "button_back" } else { "button_no" }));
    let list = [
        Button { label: &yes, gesture: press.as_deref(), kind: Kind::Primary, action: Action::Yes },
        Button {
            label: &no,
            gesture: hold.as_deref(),
            kind: Kind::Secondary,
            action: if open { Action::Back } else { Action::No },
        },
    ];
    let areas = row_areas(&list, &s, full.x, full.w, h - m, full.h / 2, set);
    let top = areas.iter().map(|a| a.y).min().unwrap_or(h - m);
    // On small panels the title keeps to one line, leaving the room to what is agreed to.
    let title_max = if s.compact { (s.title.px * 1.5) as i32 } else { full.h / 4 };
    let mut title = fit(&t.get("consent_title"), s.title, full.w, title_max, &s, set);
    let text = t.fmt(key, &[("partner", partner)]);
    if let More::Open(page) = more {
        for (b, &a) in list.iter().zip(&areas) {
            button(c, b, &s, a, set);
        }
        // The room under a title `h` tall.
        let room = |h: i32| top - m - h - 3 * s.unit;
        // One page, under the title or where it gives way; else pages under the title. A small
        // panel sets a text too long for it in the small size, and in pages without the title.
        let mut body = layout(&text, s.body, full.w, set);
        if body.height() > room(0) && s.compact {
            body = layout(&text, s.small, full.w, set);
        }
        let paged = body.height() > room(0);
        if (!paged && body.height() > room(title.height())) || (paged && s.compact) {
            title = Block::empty();
        }
        let room = room(title.height());
        if !paged {
            let y = m + (top - 2 * s.unit - m - (title.height() + s.unit + body.height())).max(0) / 2;
            title.draw(c, full.x, y, full.w, Align::Centre, PALETTE.ink);
            body.draw(c, full.x, y + title.height() + s.unit, full.w, Align::Start, PALETTE.ink);
            return (!body.cut).then_some(1);
        }
        // Every page takes the same box, the last one's lines at its top, so the page turner
        // stays where the finger is; the lines are shared out evenly (no one-word last page).
        let lh = body.line_height.max(1);
        let most = (room - s.target - s.unit) / lh;
        if most < 1 {
            return None;
        }
        let pages = body.lines.len().div_ceil(most as usize);
        let per = body.lines.len().div_ceil(pages);
        let page = page as usize % pages;
        let lines = body.lines[(page * per).min(body.lines.len())..((page + 1) * per).min(body.lines.len())].to_vec();
        let text_h = per as i32 * lh;
        let group = title.height() + s.unit + text_h + s.unit + s.target;
        let y = m + (top - 2 * s.unit - m - group).max(0) / 2;
        title.draw(c, full.x, y, full.w, Align::Centre, PALETTE.ink);
        let body_y = y + title.height() + s.unit;
        Block { lines, ..body.clone() }.draw(c, full.x, body_y, full.w, Align::Start, PALETTE.ink);
        // "2 of 3" in the person's words: "2 / 3" set right to left reads "3 / 2".
        let label = t.fmt("progress", &[("done", &(page + 1).to_string()), ("total", &pages.to_string())]);
        page_turner(c, &s, full, body_y + text_h + s.unit, &label, (page, pages), set);
        return (!body.cut).then_some(pages);
    }
    // What is agreed to comes first: where it cannot fit under the title, the title goes.
    // "Read more" under the text, as tall as a finger needs, where the text keeps two lines'
    // room; the text, with the buttons' row at `top`, and whether the link is under it.
    let link_room = s.target + s.unit;
    let plan = |top: i32, wanted: bool| {
        let under_title = top - m - title.height() - 3 * s.unit;
        let title = match fit(&text, s.body, full.w, under_title, &s, set).height() > under_title {
            true => Block::empty(),
            false => title.clone(),
        };
        let room = top - m - title.height() - 3 * s.unit;
        let link = wanted && room - link_room >= (s.body.px * 2.6) as i32;
        let body = fit(&text, s.body, full.w, room - if link { link_room } else { 0 }, &s, set);
        match link && body.height() > room - link_room {
            // Not both: the short text, which is what is agreed to, keeps the room.
            true => (title, fit(&text, s.body, full.w, room, &s, set), room, false),
            false => (title, body, room - if link { link_room } else { 0 }, link),
        }
    };
    let (title, mut body, room, link) = plan(top, more == More::Link);
    for (b, &a) in list.iter().zip(&areas) {
        button(c, b, &s, a, set);
    }
    // No room for it under the text (a small panel): the text itself opens the whole text, an
    // "i" after its last line saying so, so that a person can always read it all.
    let mark = s.body.px as i32;
    let mut in_text = more == More::Link && !link;
    if in_text && body.lines.last().is_some_and(|l| (l.width + 63) / 64 + 2 * (mark + s.unit) > full.w) {
        let narrow = fit(&text, Style { px: body.px, ..s.body }, full.w - 2 * (mark + s.unit), room, &s, set);
        // Where even the narrower text has no room for the mark (the room less the gaps around
        // it), the short text is kept whole: what is agreed to comes first.
        match narrow.height() <= room + 2 * s.unit {
            true => body = narrow,
            false => in_text = false,
        }
    }
    let label = t.get("button_read_more");
    let link_h = if link { s.target } else { 0 };
    let group = title.height() + s.unit + body.height() + if link_h > 0 { s.unit + link_h } else { 0 };
    let y = m + (top - 2 * s.unit - m - group).max(0) / 2;
    title.draw(c, full.x, y, full.w, Align::Centre, PALETTE.ink);
    let body_y = y + title.height() + s.unit;
    body.draw(c, full.x, body_y, full.w, Align::Centre, PALETTE.ink);
    if let Some(last) = body.lines.last().filter(|_| in_text) {
        let lw = (last.width + 63) / 64;
        let x = if set.rtl { full.centre_x() - lw / 2 - s.unit - mark } else { full.centre_x() + lw / 2 + s.unit };
        let y = body_y + body.height() - body.line_height;
        info_mark(c, Area::new(x, y + (body.line_height - mark) / 2, mark, mark));
        c.targets.push(Target { x: full.x, y: body_y, w: full.w, h: body.height(), action: Action::More });
    }
    if link_h > 0 {
        let b = Button { label: &label, gesture: None, kind: Kind::Link, action: Action::More };
        let lw = (link_width(&b, &s, set) + 4 * s.unit).min(full.w);
        let at = Area::new(full.centre_x() - lw / 2, body_y + body.height() + s.unit, lw, link_h);
        button(c, &b, &s, at, set);
    }
    (body.height() <= room).then_some(1)
}

/// How many pages `screen` has on a panel like `like`: the whole consent may take several.
pub fn pages(screen: &Screen, t: &Texts, like: &Canvas) -> usize {
    let Screen::Consent { partner, more: More::Open(_), legend, .. } = screen else { return 1 };
    let mut scratch = Canvas::new(like.width, like.height);
    scratch.px_per_mm = like.px_per_mm;
    scratch.brand = like.brand.clone();
    consent(&mut scratch, t, partner, More::Open(0), *legend, "consent_more").unwrap_or(1)
}

/// Under a page of the whole consent: `label` ("2 of 3") and a chevron pointing on in reading order, a
/// button whose tap shows the next page (after the last, the first), and on its reading side a
/// square button back to the page before. The back button's room is kept on the first page,
/// where it is not drawn, so the button on stays where the finger is on every page.
fn page_turner(
    c: &mut Canvas,
    s: &Scale,
    full: Area,
    y: i32,
    label: &str,
    (page, pages): (usize, usize),
    set: Setting,
) {
    let b = Button { label, gesture: None, kind: Kind::Secondary, action: Action::More };
    let size = s.target / 3;
    let (back_w, gap) = (s.target, 2 * s.unit);
    // As much room on each side of the centred label as the chevron takes on one.
    let bw = (link_width(&b, s, set) + 2 * (size + 3 * s.unit)).min(full.w - back_w - gap);
    let x0 = full.centre_x() - (back_w + gap + bw) / 2;
    let (on_x, back_x) = if set.rtl { (x0, x0 + bw + gap) } else { (x0 + back_w + gap, x0) };
    // Pointing on (right, or left for right-to-left languages), or back.
    let on = if set.rtl { -1 } else { 1 };
    let at = Area::new(on_x, y, bw, s.target);
    button(c, &b, s, at, set);
    // On the last page nothing points on: there is no more (a tap still goes round to the first).
    if page + 1 < pages {
        let tip = if set.rtl { at.x + 2 * s.unit } else { at.x + at.w - 2 * s.unit };
        chevron(c, s, tip, at.y + at.h / 2, on);
    }
    if page > 0 {
        let back = Button { label: "", gesture: None, kind: Kind::Secondary, action: Action::PreviousPage };
        let at = Area::new(back_x, y, back_w, s.target);
        button(c, &back, s, at, set);
        chevron(c, s, at.centre_x() - on * size / 4, at.y + at.h / 2, -on);
    }
}

/// An "i" in a circle filling `at`: there is more to read.
fn info_mark(c: &mut Canvas, at: Area) {
    let ink = c.brand.accent;
    let (cx, cy, d) = (at.centre_x(), at.y + at.h / 2, at.h.min(at.w));
    let stroke = (d / 10).max(2);
    let _ = Circle::with_center(Point::new(cx, cy), (d - stroke) as u32)
        .into_styled(PrimitiveStyle::with_stroke(ink, stroke as u32))
        .draw(c);
    let _ = Circle::with_center(Point::new(cx, cy - d / 5), (d / 7).max(2) as u32)
        .into_styled(PrimitiveStyle::with_fill(ink))
        .draw(c);
    let _ = Line::new(Point::new(cx, cy - d / 14), Point::new(cx, cy + d / 4))
        .into_styled(PrimitiveStyle::with_stroke(ink, (d / 8).max(2) as u32))
        .draw(c);
}

/// A chevron a third of a target tall, its tip at (`tip`, `cy`), pointing right (`dir` 1) or
/// left (-1).
fn chevron(c: &mut Canvas, s: &Scale, tip: i32, cy: i32, dir: i32) {
    let size = s.target / 3;
    let back = tip - dir * size / 2;
    let points = [Point::new(back, cy - size / 2), Point::new(tip, cy), Point::new(back, cy + size / 2)];
    let _ = Polyline::new(&points)
        .into_styled(PrimitiveStyle::with_stroke(c.brand.accent, (s.unit / 2).max(2) as u32))
        .draw(c);
}

/// The legend under the yes and no buttons' labels: "Press" and "Hold", "Enter" and "Esc", or
/// none.
fn gestures(t: &Texts, legend: Legend) -> (Option<String>, Option<String>) {
    match legend {
        Legend::Button => (Some(t.get("button_press")), Some(t.get("button_hold"))),
        Legend::Keys => (Some("Enter".into()), Some("Esc".into())),
        Legend::None => (None, None),
    }
}

/// Draws `screen` onto `c` in the language `t`.
pub fn render(screen: &Screen, t: &Texts, c: &mut Canvas) {
    let _ = c.clear(PALETTE.bg);
    let s = scale(c);
    let accent = c.brand.accent;
    let set = t.setting();
    let (m, w, h) = (s.margin, c.width as i32, c.height as i32);
    let full = Area::new(m, m, w - 2 * m, h - 2 * m);
    let line = (s.unit / 2).max(2);
    match screen {
        Screen::Idle { link, start } => {
            let (key, dot) = match link {
                Link::Checking => ("link_online", None),
                Link::Online => ("link_online", Some(PALETTE.ok)),
                Link::Offline => ("link_offline", Some(PALETTE.warn)),
                Link::Paused => ("link_paused", Some(PALETTE.bad)),
                Link::ClockWrong => ("link_clock", Some(PALETTE.bad)),
            };
            let status_h = status_height(&t.get(key), &s, full.w, set) + 2 * s.unit;
            let how = match start {
                Start::Button | Start::Keys { .. } => "welcome_body",
                Start::Touch { .. } => "welcome_touch",
                Start::Staff { .. } => "welcome_staff",
            };
            let mut below = status_h;
            // As wide as a thumb needs and centred, above the link status.
            let bw = (full.w / 2).max(s.target * 4).min(full.w);
            let x = full.x + (full.w - bw) / 2;
            let languages = match *start {
                Start::Touch { languages } | Start::Keys { languages } => {
                    let label = t.get("button_start");
                    // On a keypad the button is the Enter key's: its name under the label.
                    let key = matches!(start, Start::Keys { .. }).then_some("Enter");
                    let list = [Button { label: &label, gesture: key, kind: Kind::Primary, action: Action::Start }];
                    let top = buttons(c, &list, &s, x, bw, h - m - status_h, full.h / 3, set);
                    below = h - m - top + 2 * s.unit;
                    languages
                }
                Start::Staff { languages } => languages,
                Start::Button => false,
            };
            if languages {
                let top = language_row(c, t, &s, Area::new(x, h - m - below - s.target, bw, s.target), set);
                below = h - m - top + 2 * s.unit;
            }
            let brand = c.brand.clone();
            let (title, body) = (t.get("welcome_title"), t.get(how));
            let logo = brand.logo.as_ref().map(|l| (l, matches!(start, Start::Touch { .. } | Start::Keys { .. })));
            message(c, &s, set, (Pictogram::Face, accent), logo, &title, &body, below);
            if let Some(dot) = dot {
                status(c, &t.get(key), dot, &s, full, set);
            }
        }
        Screen::Consent { partner, more, legend, face_only } => {
            // "Read more" only where the whole text can be set, in pages if need be, unshrunk;
            // where it cannot (a word wider than the panel, no room for a page), the whole-text
            // view, unreachable, keeps the short text.
            let mut more = *more;
            if more == More::Link {
                let mut scratch = Canvas::new(c.width, c.height);
                scratch.px_per_mm = c.px_per_mm;
                scratch.brand = c.brand.clone();
                if consent(&mut scratch, t, partner, More::Open(0), *legend, "consent_more").is_none() {
                    more = More::No;
                }
            }
            let open = matches!(more, More::Open(_));
            let short = if *face_only { "consent_selfie" } else { "consent_body" };
            if consent(c, t, partner, more, *legend, if open { "consent_more" } else { short }).is_none() && open {
                let _ = c.clear(PALETTE.bg);
                c.targets.clear();
                c.texts.clear();
                consent(c, t, partner, more, *legend, short);
            }
        }
        Screen::Face { step, hint, done, total, preview } => {
            // "Slowly move your head" only while a move is asked: over "Hold still", or a hint
            // about the light or the framing, it would say the opposite of the hint.
            let moving = matches!(
                hint,
                None | Some(Hint::TurnLeft | Hint::TurnRight | Hint::LookUp | Hint::MoveALittle | Hint::LookStraight)
            );
            let title = t.get(if *step == FaceStep::Liveness && moving { "liveness_title" } else { "selfie_title" });
            let title_h = fit(&title, s.title, full.w, s.title.px as i32 * 3, &s, set).height();
            let (col, mut pic) = split(c, &s, title_h + s.unit * 3, set.rtl);
            let title_b = fit(&title, s.title, col.w, if w > h { col.h / 2 } else { title_h }, &s, set);
            title_b.draw(c, col.x, col.y, col.w, Align::Centre, PALETTE.ink);
            let y = col.y + title_b.height() + s.unit;
            let bar_h = s.unit.max(4);
            progress(c, Area::new(col.x, y, col.w, bar_h), *done, *total, set.rtl);
            let progress_text = t.fmt("progress", &[("done", &done.to_string()), ("total", &total.to_string())]);
            let (msg, icon, colors) = match hint {
                Some(hn) => (t.get(hint_key(*hn)), hint_icon(*hn), (PALETTE.warn_bg, PALETTE.ink)),
                // Green and a tick only once something is done: before the first photo (and the
                // first look at the face) nothing has gone right yet.
                None if *done == 0 => (progress_text, Pictogram::Face, (PALETTE.warn_bg, PALETTE.ink)),
                // Going well is green whatever the partner's accent (a red one would say "wrong").
                None => (progress_text, Pictogram::Tick, (PALETTE.ok, Rgb888::WHITE)),
            };
            // Portrait: the band goes under the picture, which gives it room (never over the
            // face), in the small size where the body size would take more than half of it.
            let band_scale = if w <= h { shrunk(&s, &msg, pic.w, pic.h / 2, set) } else { s };
            if w <= h {
                pic.h -= band_room(&band_scale, &msg, pic.w, set);
            }
            // Landscape: in the column under the progress, or, where a small panel's column has
            // no room left for a long hint, across the foot of the panel, the picture (and so the
            // face and its oval) made shorter to stay clear of it.
            let in_column = Area::new(col.x, y + bar_h + 2 * s.unit, col.w, 0);
            let column_scale = shrunk(&s, &msg, col.w, col.bottom() - in_column.y, set);
            let across =
                (w > h && in_column.y + band_height(&msg, &column_scale, col.w, set) > col.bottom()).then(|| {
                    let small = shrunk(&s, &msg, full.w, h - m - in_column.y, set);
                    let top = (h - m - band_height(&msg, &small, full.w, set)).max(in_column.y);
                    (Area::new(full.x, top, full.w, 0), small)
                });
            if let Some((at, _)) = &across {
                pic.h = pic.h.min(at.y - s.unit - pic.y).max(8);
            }
            let drawn = stage(c, pic, preview, true, &s, Pictogram::Face);
            oval(c, drawn, if hint.is_some() || *done == 0 { PALETTE.warn_bg } else { PALETTE.ok }, line * 2);
            turn_arrow(c, drawn, *hint, PALETTE.warn_bg, line * 3);
            match across {
                Some((at, small)) => {
                    band(c, &msg, icon, at, &small, colors, set);
                }
                None if w > h => {
                    band(c, &msg, icon, in_column, &column_scale, colors, set);
                }
                None => {
                    let at = under_picture(&band_scale, &msg, pic, drawn, h - m, set);
                    band(c, &msg, icon, at, &band_scale, colors, set);
                }
            }
        }
        Screen::Document { side, hint, preview, review, legend } => {
            let key = match (review, side) {
                (true, _) => "doc_review_title",
                (false, Side::Front) => "doc_front_title",
                (false, Side::Back) => "doc_back_title",
            };
            let title = t.get(key);
            // A small panel's review keeps its title to one line: the photo needs the room.
            let title_lines = if *review && s.compact { 1.5 } else { 3.0 };
            let title_h = fit(&title, s.title, full.w, (s.title.px * title_lines) as i32, &s, set).height();
            let (col, pic) = split(c, &s, title_h + s.unit, set.rtl);
            let (keep, retake) = (t.get("button_keep"), t.get("button_retake"));
            let (press, hold) = gestures(t, *legend);
            let list = [
                Button { label: &keep, gesture: press.as_deref(), kind: Kind::Primary, action: Action::Keep },
                Button { label: &retake, gesture: hold.as_deref(), kind: Kind::Secondary, action: Action::Retake },
            ];
            // Portrait and small panels: the buttons go across the bottom, the photo between them
            // and the title, as large as it can be.
            let across = *review && (h > w || s.compact);
            let (col, mut pic) = if across { split_portrait(c, &s, title_h) } else { (col, pic) };
            if across {
                let top = buttons(c, &list, &s, full.x, full.w, h - m, full.h / 3, set);
                pic.h = (top - s.unit * 2 - pic.y).max(8);
            }
            // Landscape review: the buttons stack at the foot of the column, the title takes the rest.
            let column_top = if *review && !across {
                buttons(c, &list, &s, col.x, col.w, col.bottom(), col.h, set)
            } else {
                col.bottom()
            };
            let title_max = if across || w <= h {
                title_h
            } else if *review {
                column_top - col.y - 2 * s.unit
            } else {
                col.h / 2
            };
            let title_b = fit(&title, s.title, col.w, title_max, &s, set);
            title_b.draw(c, col.x, col.y, col.w, Align::Centre, PALETTE.ink);
            let y = col.y + title_b.height() + 2 * s.unit;
            let hint_msg = hint.filter(|_| !*review).map(|hn| t.get(card_hint_key(hn)));
            if !*review && w <= h {
                pic.h -= band_room(&s, hint_msg.as_deref().unwrap_or(""), pic.w, set);
            }
            let drawn = stage(c, pic, preview, false, &s, Pictogram::Card);
            if !*review {
                card_frame(c, drawn, if hint.is_some() { PALETTE.warn_bg } else { PALETTE.ok }, line * 2);
                if let Some(hn) = hint {
                    let colors = (PALETTE.warn_bg, PALETTE.ink);
                    let msg = hint_msg.clone().unwrap_or_default();
                    let at = if w > h {
                        Area::new(col.x, y, col.w, 0)
                    } else {
                        under_picture(&s, &msg, pic, drawn, h - m, set)
                    };
                    // The card is what moves: a person's pictogram here would say the opposite.
                    let icon = match hint_icon(*hn) {
                        light @ (Pictogram::Light | Pictogram::TooBright) => light,
                        _ => Pictogram::Card,
                    };
                    band(c, &msg, icon, at, &shrunk(&s, &msg, at.w, h - m - at.y, set), colors, set);
                }
            }
        }
        Screen::Review { images } => {
            let body = t.fmt("review_body", &[("n", &images.to_string())]);
            message(c, &s, set, (Pictogram::Tick, PALETTE.ok), None, &t.get("review_title"), &body, 0);
        }
        // No references, codes or counts here: they mean nothing to the person at the screen
        // (they go to the log and the API).
        // Online, the upload follows at once: "as soon as the kiosk is online" would puzzle.
        Screen::Saved { online } => {
            let body = t.get(if *online { "result_ok_body" } else { "saved_body" });
            message(c, &s, set, (Pictogram::Tick, PALETTE.ok), None, &t.get("saved_title"), &body, 0)
        }
        Screen::Uploading => message(
            c,
            &s,
            set,
            (Pictogram::Upload, accent),
            None,
            &t.get("uploading_title"),
            &t.get("uploading_body"),
            0,
        ),
        Screen::Result { success } => {
            let (title, body, icon) = if *success {
                ("result_ok", "result_ok_body", (Pictogram::Tick, PALETTE.ok))
            } else {
                ("result_fail", "result_fail_body", (Pictogram::Cross, PALETTE.bad))
            };
            message(c, &s, set, icon, None, &t.get(title), &t.get(body), 0);
        }
        Screen::Error { problem } => {
            let (title, body, icon) = match problem {
                Problem::CameraMissing => ("error_camera_title", "error_camera_body", Pictogram::Camera),
                Problem::StorageFull => ("error_storage_title", "error_storage_body", Pictogram::Storage),
                Problem::OutOfService => ("error_service_title", "error_service_body", Pictogram::Warning),
                Problem::Cancelled => ("cancelled_title", "cancelled_body", Pictogram::Cross),
                Problem::SaveFailed => ("error_save_title", "error_save_body", Pictogram::Warning),
                Problem::TimedOut => ("timeout_title", "timeout_body", Pictogram::Clock),
                Problem::NotLive => ("notlive_title", "notlive_body", Pictogram::Turn),
            };
            let color = if *problem == Problem::Cancelled { PALETTE.muted } else { PALETTE.bad };
            message(c, &s, set, (icon, color), None, &t.get(title), &t.get(body), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink_columns(c: &Canvas, y0: u32, y1: u32) -> (u32, u32) {
        let bg = c.pixel(0, 0);
        let xs: Vec<u32> = (0..c.width).filter(|&x| (y0..y1).any(|y| c.pixel(x, y) != bg)).collect();
        (xs[0], *xs.last().unwrap())
    }

    #[test]
    fn the_liveness_title_asks_for_a_move_only_when_the_hint_does() {
        let t = Texts::english();
        let title_of = |hint| {
            let mut c = Canvas::new(800, 480);
            render(&Screen::Face { step: FaceStep::Liveness, hint, done: 4, total: 9, preview: None }, &t, &mut c);
            let title = |key| {
                let start: String = t.get(key).chars().take(12).collect();
                c.texts.iter().any(|b| b.excerpt.starts_with(&start))
            };
            (title("liveness_title"), title("selfie_title"))
        };
        for hint in [None, Some(Hint::TurnLeft), Some(Hint::LookUp), Some(Hint::MoveALittle)] {
            assert_eq!(title_of(hint), (true, false), "{hint:?}");
        }
        for hint in [Hint::HoldStill, Hint::MoreLight, Hint::Centre, Hint::MoveBack, Hint::StartAgain] {
            assert_eq!(title_of(Some(hint)), (false, true), "{hint:?}");
        }
    }

    #[test]
    fn the_consent_pages_are_counted_in_the_persons_words() {
        for (code, want) in [("en", "1 of "), ("ar", "1 من "), ("fr", "1 sur ")] {
            let t = Texts::load(code, None).unwrap();
            let mut c = Canvas::new(240, 320);
            let partner = crate::display::samples::EXAMPLE_PARTNER.to_string();
            render(
                &Screen::Consent { partner, more: More::Open(0), legend: Legend::None, face_only: false },
                &t,
                &mut c,
            );
            assert!(c.texts.iter().any(|b| b.excerpt.starts_with(want)), "{code}: {:?}", c.texts);
        }
    }

    #[test]
    fn right_to_left_languages_mirror_the_camera_layout() {
        let screen = Screen::Face { step: FaceStep::Selfie, hint: None, done: 1, total: 4, preview: None };
        let (mut ltr, mut rtl) = (Canvas::new(800, 480), Canvas::new(800, 480));
        render(&screen, &Texts::english(), &mut ltr);
        render(&screen, &Texts::load("ar", None).unwrap(), &mut rtl);
        // The dark stage is on the left in English and on the right in Arabic.
        let dark = |c: &Canvas, x: u32| c.pixel(x, 240) == [31, 41, 55];
        assert!(dark(&ltr, 60) && !dark(&ltr, 740));
        assert!(dark(&rtl, 740) && !dark(&rtl, 60));
    }

    #[test]
    fn the_partners_logo_is_on_every_welcome_with_room_for_a_line_of_type() {
        // 300×100 in a colour no screen uses.
        use super::super::brand::Brand;
        let logo = Logo { width: 300, height: 100, rgba: [200, 0, 200, 255].repeat(300 * 100) };
        let brand = std::sync::Arc::new(Brand { logo: Some(logo), ..(*Brand::builtin()).clone() });
        let touch = Start::Touch { languages: false };
        for (size, starts) in [
            ((800, 480), &[Start::Button, Start::Staff { languages: false }, touch][..]),
            ((480, 320), &[Start::Button, Start::Staff { languages: false }, touch]),
            ((320, 240), &[Start::Button, Start::Staff { languages: false }]),
            ((240, 320), &[Start::Button, Start::Staff { languages: false }]),
        ] {
            for &start in starts {
                let mut c = Canvas::new(size.0, size.1);
                c.brand = brand.clone();
                render(&Screen::Idle { link: Link::Offline, start }, &Texts::english(), &mut c);
                let shown = (0..c.height).filter(|&y| (0..c.width).any(|x| c.pixel(x, y) == [200, 0, 200])).count();
                assert!(shown >= 12, "{size:?} {start:?}: the logo is {shown} px tall");
            }
        }
    }

    #[test]
    fn the_whole_consent_is_read_at_the_body_size_on_a_7_inch_panel() {
        for code in crate::display::text::built_in_codes() {
            let t = Texts::load(code, None).unwrap();
            for legend in [Legend::Button, Legend::Keys, Legend::None] {
                let mut c = Canvas::new(800, 480);
                let body = scale(&c).body.px;
                let partner = crate::display::samples::EXAMPLE_PARTNER.to_string();
                render(&Screen::Consent { partner, more: More::Open(0), legend, face_only: false }, &t, &mut c);
                let start: String = t.fmt("consent_more", &[("partner", "Example Bank")]).chars().take(16).collect();
                let text = c.texts.iter().find(|b| b.excerpt.starts_with(&start)).expect("the consent is drawn");
                assert_eq!(text.px, body, "{code}: the whole consent is set at {} px, not the body's {body}", text.px);
            }
        }
    }

    /// On every panel and in every language, a person on a touch panel can open the whole
    /// consent text: "Read more" under the short text, or where there is no room for it, the
    /// short text itself (an "i" after it), a target of a finger's size at least.
    #[test]
    fn the_whole_consent_can_be_opened_on_every_panel() {
        for (code, _) in crate::display::text::BUILT_IN {
            let t = Texts::load(code, None).unwrap();
            for face_only in [false, true] {
                for size in [(240, 320), (320, 240), (480, 320), (800, 480), (1280, 720)] {
                    let mut c = Canvas::new(size.0, size.1);
                    let screen = Screen::Consent {
                        partner: "Example Bank".into(),
                        more: More::Link,
                        legend: Legend::None,
                        face_only,
                    };
                    render(&screen, &t, &mut c);
                    let more = c.targets.iter().find(|t| t.action == Action::More);
                    let more = more.unwrap_or_else(|| panic!("{code} {size:?}: no way to the whole text"));
                    assert!(more.h as f32 / c.px_per_mm >= 8.9, "{code} {size:?}: {more:?}");
                    assert!(crate::display::audit::faults(&c).is_empty(), "{code} {size:?}");
                }
            }
        }
    }

    /// The language arrows keep their places in a right-to-left language: the button under the
    /// finger goes on through the list whatever script the language shown is in. Staff-started
    /// kiosks show them too, on a touch panel.
    #[test]
    fn the_language_arrows_do_not_turn_round_in_arabic() {
        for start in [Start::Touch { languages: true }, Start::Staff { languages: true }] {
            for code in ["en", "ar"] {
                let mut c = Canvas::new(800, 480);
                render(&Screen::Idle { link: Link::Online, start }, &Texts::load(code, None).unwrap(), &mut c);
                let at = |a| c.targets.iter().find(|t| t.action == a).map(|t| t.x);
                let (back, on) = (at(Action::PreviousLanguage), at(Action::NextLanguage));
                assert!(back.zip(on).is_some_and(|(b, o)| b < o), "{start:?} {code}: {back:?} {on:?}");
            }
        }
        let mut c = Canvas::new(800, 480);
        render(
            &Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } },
            &Texts::english(),
            &mut c,
        );
        assert!(c.targets.is_empty(), "{:?}", c.targets);
    }

    #[test]
    fn the_whole_consent_turns_its_pages_on_a_small_panel() {
        let t = Texts::english();
        let open = |page| Screen::Consent {
            partner: "Example Bank".into(),
            more: More::Open(page),
            legend: Legend::None,
            face_only: false,
        };
        assert_eq!(pages(&open(0), &t, &Canvas::new(800, 480)), 1);
        let small = Canvas::new(240, 320);
        let n = pages(&open(0), &t, &small);
        assert!((2..=4).contains(&n), "{n} pages");
        let draw = |page| {
            let mut c = Canvas::new(240, 320);
            render(&open(page), &t, &mut c);
            c
        };
        let turner = |c: &Canvas| *c.targets.iter().find(|t| t.action == Action::More).expect("a page turner");
        let first = draw(0);
        let at = turner(&first);
        assert!(at.h as f32 / first.px_per_mm >= 8.9 && at.w >= at.h);
        // The words above the turner differ from page to page; the turner stays under the
        // finger, on the last page too, and no text runs into it or the buttons.
        let words = |c: &Canvas| c.rgb[..(at.y as usize * 240 * 3)].to_vec();
        for page in 1..n as u16 {
            let c = draw(page);
            assert_ne!(words(&c), words(&first), "page {page} shows the first page's words");
            assert_eq!(turner(&c), at, "page {page}");
            assert!(
                crate::display::audit::faults(&c).is_empty(),
                "page {page}: {:?}",
                crate::display::audit::faults(&c)
            );
        }
        // Past the last page, the first again.
        assert_eq!(draw(n as u16).rgb, first.rgb);
        // A button back to the page before, from the second page on, on the reading side of
        // the turner (the right for Arabic), as large as a finger needs and apart from it.
        let back = |c: &Canvas| c.targets.iter().find(|t| t.action == Action::PreviousPage).copied();
        assert_eq!(back(&first), None, "a back button on the first page");
        let second = draw(1);
        let b = back(&second).expect("a back button on the second page");
        assert!(b.h as f32 / second.px_per_mm >= 8.9 && b.w >= b.h, "{b:?}");
        assert!(b.y == at.y && b.x + b.w < at.x, "{b:?} beside {at:?}");
        let ar = Texts::load("ar", None).unwrap();
        let mut c = Canvas::new(240, 320);
        render(&open(1), &ar, &mut c);
        let (on, b) = (turner(&c), back(&c).expect("a back button in Arabic"));
        assert!(b.x > on.x + on.w, "{b:?} is not right of {on:?}");
        // Set in the small size: fewer pages to turn on a 2.8" panel.
        let small = scale(&first).small.px;
        assert!(first.texts.iter().any(|b| b.px == small), "{:?}", first.texts);
    }

    #[test]
    fn messages_are_centred() {
        let mut c = Canvas::new(800, 480);
        render(&Screen::Saved { online: false }, &Texts::english(), &mut c);
        let (l, r) = ink_columns(&c, 0, 480);
        assert!((l as i32 + r as i32 - 800).abs() < 24, "{l}..{r}");
    }
}
