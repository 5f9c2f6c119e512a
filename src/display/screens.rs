//! The screens of a session, laid out relative to the panel size.

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Ellipse, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle};
use embedded_graphics::text::Text;

use super::Canvas;
use crate::vision::quality::Hint;

const BG: Rgb888 = Rgb888::new(16, 24, 40);
const FG: Rgb888 = Rgb888::new(240, 240, 240);
const ACCENT: Rgb888 = Rgb888::new(40, 170, 110);
const WARN: Rgb888 = Rgb888::new(230, 160, 40);
const BAD: Rgb888 = Rgb888::new(220, 70, 60);

/// Everything the agent can show.
#[derive(Debug, Clone)]
pub enum Screen {
    Welcome {
        queued: usize,
    },
    Consent {
        partner: String,
    },
    /// Face guidance with a live preview (RGB, any size: it is scaled to fit).
    Capture {
        title: String,
        hint: Option<Hint>,
        done: u32,
        total: u32,
        preview: Option<(u32, u32, Vec<u8>)>,
    },
    Review {
        images: u32,
    },
    Saved {
        job_id: String,
    },
    Uploading {
        step: String,
    },
    Result {
        success: bool,
        code: String,
        text: String,
    },
    Error {
        title: String,
        detail: String,
    },
}

impl Screen {
    /// Short file-name-safe name.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::Welcome { .. } => "welcome",
            Screen::Consent { .. } => "consent",
            Screen::Capture { .. } => "capture",
            Screen::Review { .. } => "review",
            Screen::Saved { .. } => "saved",
            Screen::Uploading { .. } => "uploading",
            Screen::Result { .. } => "result",
            Screen::Error { .. } => "error",
        }
    }
}

pub fn hint_text(h: Hint) -> &'static str {
    match h {
        Hint::MoreLight => "More light, please",
        Hint::LessLight => "Too bright: move out of direct light",
        Hint::HoldStill => "Hold still",
        Hint::MoveALittle => "Move your head a little",
        Hint::NoFace => "Look at the camera",
        Hint::OneFaceOnly => "Only one person, please",
        Hint::MoveCloser => "Come a little closer",
        Hint::MoveBack => "Move back a little",
        Hint::Centre => "Move to the centre",
    }
}

fn font_for(c: &Canvas) -> &'static MonoFont<'static> {
    if c.width >= 320 {
        &FONT_10X20
    } else {
        &FONT_6X10
    }
}

/// Draws word-wrapped text from `y`, returning the y below it.
fn paragraph(c: &mut Canvas, text: &str, y: i32, color: Rgb888, font: &'static MonoFont<'static>) -> i32 {
    let cw = font.character_size.width as i32;
    let lh = font.character_size.height as i32 + 4;
    let max_chars = ((c.width as i32 - 16) / cw).max(8) as usize;
    let style = MonoTextStyle::new(font, color);
    let mut y = y;
    let mut line = String::new();
    let flush = |c: &mut Canvas, line: &str, y: i32| {
        let _ = Text::new(line, Point::new(8, y + font.baseline as i32), style).draw(c);
    };
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > max_chars {
            flush(c, &line, y);
            y += lh;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        flush(c, &line, y);
        y += lh;
    }
    y
}

fn bar(c: &mut Canvas, y: i32, done: u32, total: u32) {
    let w = c.width as i32 - 16;
    let _ = Rectangle::new(Point::new(8, y), Size::new(w as u32, 10))
        .into_styled(PrimitiveStyle::with_stroke(FG, 1))
        .draw(c);
    let filled = if total == 0 { 0 } else { (w - 4) * done as i32 / total as i32 };
    if filled > 0 {
        let _ = Rectangle::new(Point::new(10, y + 2), Size::new(filled as u32, 6))
            .into_styled(PrimitiveStyle::with_fill(ACCENT))
            .draw(c);
    }
}

fn preview(c: &mut Canvas, top: i32, bottom: i32, (pw, ph, rgb): &(u32, u32, Vec<u8>)) {
    let avail_h = (bottom - top).max(1) as u32;
    let avail_w = c.width - 16;
    // Fit, keep aspect, mirror horizontally: people expect a mirror.
    let scale = (avail_w as f32 / *pw as f32).min(avail_h as f32 / *ph as f32);
    let (w, h) = ((*pw as f32 * scale) as u32, (*ph as f32 * scale) as u32);
    let x0 = (c.width - w) / 2;
    for y in 0..h {
        let sy = ((y as f32 / scale) as u32).min(ph - 1);
        for x in 0..w {
            let sx = pw - 1 - ((x as f32 / scale) as u32).min(pw - 1);
            let s = ((sy * pw + sx) * 3) as usize;
            let d = (((top as u32 + y) * c.width + x0 + x) * 3) as usize;
            c.rgb[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    }
    // The face oval the person should fill: centred, about 45 % of the preview height.
    let oh = h * 45 / 100;
    let ow = oh * 3 / 4;
    let style = PrimitiveStyleBuilder::new().stroke_color(ACCENT).stroke_width(3).build();
    let _ = Ellipse::new(Point::new((c.width / 2 - ow / 2) as i32, top + (h / 2 - oh / 2) as i32), Size::new(ow, oh))
        .into_styled(style)
        .draw(c);
}

/// Draws `screen` onto `c`.
pub fn render(screen: &Screen, c: &mut Canvas) {
    let _ = c.clear(BG);
    let font = font_for(c);
    let small = &FONT_6X10;
    let h = c.height as i32;
    match screen {
        Screen::Welcome { queued } => {
            let y = paragraph(c, "Welcome", 12, ACCENT, font);
            let y = paragraph(c, "Press the button to verify your identity.", y + 8, FG, font);
            paragraph(c, &format!("Jobs waiting to upload: {queued}"), y + 8, FG, small);
        }
        Screen::Consent { partner } => {
            let y = paragraph(c, "Your consent", 12, ACCENT, font);
            let y = paragraph(c, &format!("{partner} will take photos of your face and check your ID details with Smile ID to verify who you are."), y + 6, FG, font);
            paragraph(c, "Button: I agree     Hold: No, cancel", y + 10, WARN, font);
        }
        Screen::Capture { title, hint, done, total, preview: pv } => {
            let y = paragraph(c, title, 8, FG, font);
            bar(c, y + 2, *done, *total);
            let footer = h - font.character_size.height as i32 - 12;
            if let Some(p) = pv {
                preview(c, y + 18, footer - 4, p);
            }
            let (text, color) = match hint {
                Some(hint) => (hint_text(*hint).to_string(), WARN),
                None => (format!("{done} of {total}"), ACCENT),
            };
            paragraph(c, &text, footer, color, font);
        }
        Screen::Review { images } => {
            let y = paragraph(c, "All done", 12, ACCENT, font);
            paragraph(c, &format!("{images} photos taken. Thank you."), y + 6, FG, font);
        }
        Screen::Saved { job_id } => {
            let y = paragraph(c, "Saved", 12, ACCENT, font);
            let y = paragraph(
                c,
                "Your verification is saved and will upload as soon as the kiosk is online.",
                y + 6,
                FG,
                font,
            );
            paragraph(c, &format!("Reference: {job_id}"), y + 8, FG, small);
        }
        Screen::Uploading { step } => {
            let y = paragraph(c, "Uploading", 12, ACCENT, font);
            paragraph(c, step, y + 6, FG, font);
        }
        Screen::Result { success, code, text } => {
            let (title, color) = if *success { ("Verified", ACCENT) } else { ("Not verified", BAD) };
            let y = paragraph(c, title, 12, color, font);
            paragraph(c, &format!("{text} ({code})"), y + 6, FG, font);
        }
        Screen::Error { title, detail } => {
            let y = paragraph(c, title, 12, BAD, font);
            paragraph(c, detail, y + 6, FG, font);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_screen_draws_text_on_every_size() {
        let screens = [
            Screen::Welcome { queued: 2 },
            Screen::Consent { partner: "Bank".into() },
            Screen::Capture {
                title: "Look at the camera".into(),
                hint: Some(Hint::MoreLight),
                done: 3,
                total: 8,
                preview: Some((4, 3, vec![200; 36])),
            },
            Screen::Review { images: 9 },
            Screen::Saved { job_id: "j".into() },
            Screen::Uploading { step: "Sending".into() },
            Screen::Result { success: true, code: "1020".into(), text: "Exact Match".into() },
            Screen::Error { title: "Camera missing".into(), detail: "Check the cable".into() },
        ];
        for (w, h) in [(240, 320), (320, 240), (480, 320), (800, 480)] {
            for s in &screens {
                let mut c = Canvas::new(w, h);
                render(s, &mut c);
                let lit = c.rgb.chunks(3).filter(|p| p[0] > 200 && p[1] > 200).count();
                assert!(lit > 50, "{} at {w}x{h} shows no text", s.name());
            }
        }
    }
}
