//! Shaping one run (one face, one direction) with harfrust, HarfBuzz's shaper ported to Rust.
//! Positions are in 1/64 px at the run's size, as HarfBuzz gives them for a font scaled to
//! `size × 64` (`hb-shape --font-size=<size × 64>`: the tests compare the two).

use std::str::FromStr;

use harfrust::{Buffer, Direction, Language, ShapeOptions, ShaperFont};

use super::fonts::{faces, FaceId};

/// A shaped glyph. `cluster` is the byte offset in the run's text of the character it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyph {
    pub id: u32,
    pub cluster: u32,
    pub x_advance: i32,
    pub x_offset: i32,
    pub y_offset: i32,
}

/// Glyphs of one face and direction, in visual (left to right) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The text shaped (for checks against HarfBuzz and for logs).
    pub text: String,
    pub face: FaceId,
    /// The scale the run was shaped at: size in px × 64.
    pub scale: i32,
    pub rtl: bool,
    pub glyphs: Vec<Glyph>,
}

impl Run {
    /// Width in 1/64 px.
    pub fn advance(&self) -> i32 {
        self.glyphs.iter().map(|g| g.x_advance).sum()
    }
}

/// The scale a size in px is shaped and drawn at.
pub fn scale_for(px: f32) -> i32 {
    (px * 64.0).round().max(64.0) as i32
}

/// Shapes `text` in `face` at `scale`, right to left when `rtl`, with the OpenType language
/// system of `lang` (an ISO 639 code) where the font has one.
pub fn shape(text: &str, face: FaceId, scale: i32, rtl: bool, lang: &str) -> Run {
    let font = &faces()[face as usize].font;
    let shaper = ShaperFont::new(font).with_scale(scale);
    let mut buffer = Buffer::new();
    buffer.push_str(text);
    buffer.set_direction(if rtl { Direction::RightToLeft } else { Direction::LeftToRight });
    buffer.set_language(Language::from_str(lang).ok());
    buffer.guess_segment_properties();
    // The only errors are a missing direction or a plan for other text: neither happens here.
    let shaped = harfrust::shape(&shaper, &mut buffer, ShapeOptions::new()).is_ok();
    let glyphs = if shaped {
        buffer
            .glyph_infos()
            .iter()
            .zip(buffer.glyph_positions())
            .map(|(i, p)| Glyph {
                id: i.glyph_id,
                cluster: i.cluster,
                x_advance: p.x_advance,
                x_offset: p.x_offset,
                y_offset: p.y_offset,
            })
            .collect()
    } else {
        Vec::new()
    };
    Run { text: text.to_string(), face, scale, rtl, glyphs }
}
