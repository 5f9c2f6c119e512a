//! The fonts built into the binary (Noto subsets made by `scripts/fonts.sh`) and which of them
//! draws a character.

use std::sync::OnceLock;

use harfrust::Font;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weight {
    Regular,
    Bold,
}

/// Which face a glyph comes from: an index into [`faces`].
pub type FaceId = u8;

/// One font file, parsed, with the metrics layout needs (in font units).
pub struct Face {
    pub name: &'static str,
    pub weight: Weight,
    pub font: Font,
    pub upem: f32,
    /// Above the baseline, positive.
    pub ascent: f32,
    /// Below the baseline, positive.
    pub descent: f32,
    /// Height of a capital letter (Latin) or of the script's typical letter.
    pub cap_height: f32,
    /// How much larger than the nominal size this face is set, so that its letters look as
    /// large as Noto Sans' (Ethiopic and Arabic letters are drawn small on their em).
    pub adjust: f32,
}

/// The size adjustment of a face by its file name (see [`Face::adjust`]).
fn adjust(name: &str) -> f32 {
    if name.starts_with("NotoSansEthiopic") {
        1.12
    } else if name.starts_with("NotoSansArabic") {
        1.15
    } else {
        1.0
    }
}

/// The built-in files: (name, weight, deflated bytes: [`crate::assets::inflate`]), in the order
/// they are tried for a character.
pub const FILES: &[(&str, Weight, &[u8])] = &[
    ("NotoSans-Regular.ttf", Weight::Regular, crate::packed!("fonts/NotoSans-Regular.ttf")),
    ("NotoSans-Bold.ttf", Weight::Bold, crate::packed!("fonts/NotoSans-Bold.ttf")),
    ("NotoSansEthiopic-Regular.ttf", Weight::Regular, crate::packed!("fonts/NotoSansEthiopic-Regular.ttf")),
    ("NotoSansEthiopic-Bold.ttf", Weight::Bold, crate::packed!("fonts/NotoSansEthiopic-Bold.ttf")),
    ("NotoSansArabic-Regular.ttf", Weight::Regular, crate::packed!("fonts/NotoSansArabic-Regular.ttf")),
    ("NotoSansArabic-Bold.ttf", Weight::Bold, crate::packed!("fonts/NotoSansArabic-Bold.ttf")),
];

/// All built-in faces, parsed once.
pub fn faces() -> &'static [Face] {
    static FACES: OnceLock<Vec<Face>> = OnceLock::new();
    FACES.get_or_init(|| {
        FILES
            .iter()
            .map(|&(name, weight, bytes)| {
                let font =
                    Font::new(crate::assets::inflate(bytes), 0).expect("the built-in fonts parse (assets/fonts/)");
                let m = font.metrics();
                let upem = m.units_per_em as f32;
                let line = m.hhea_line.or(m.typo_line).expect("the built-in fonts have line metrics");
                // Arabic's line box makes room for stacks of marks no kiosk text has; lines are
                // spaced for what the texts use (a mark over a tall letter may reach the line above's
                // descent).
                let ascent = line.ascender.to_f32().min(upem * 1.1);
                let descent = (-line.descender.to_f32()).min(upem * 0.45);
                let cap_height = m.cap_height.map(|c| c.to_f32()).filter(|c| *c > 0.0).unwrap_or(upem * 0.7);
                Face { name, weight, font, upem, ascent, descent, cap_height, adjust: adjust(name) }
            })
            .collect()
    })
}

/// True when `c` takes the face of the text around it: spaces, punctuation, digits, joiners and
/// combining marks, which every face carries but must not split a word's run.
pub fn is_neutral(c: char) -> bool {
    matches!(c as u32,
        0x20..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E | 0xA0..=0xBF | 0xD7 | 0xF7
        | 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200B..=0x206F | 0xFE00..=0xFE0F)
}

/// True for marks that sit on the character before them: a line never breaks before one.
pub fn is_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670
        | 0x06D6..=0x06DC | 0x06DF..=0x06E4 | 0x06E7..=0x06E8 | 0x06EA..=0x06ED
        | 0x135D..=0x135F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200C..=0x200D | 0x20D0..=0x20FF
        | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F)
}

/// True when a built-in face of `weight` has a glyph for `c`.
pub fn covers(c: char, weight: Weight) -> bool {
    pick(c, weight, None).is_some()
}

/// The face that draws `c`: the previous run's face when `c` is neutral and it has the glyph,
/// else the first face of `weight` that has it.
pub fn pick(c: char, weight: Weight, previous: Option<FaceId>) -> Option<FaceId> {
    let all = faces();
    let has = |i: usize| all[i].font.charmap().map_unicode(c as u32).is_some();
    if let Some(p) = previous {
        if is_neutral(c) && has(p as usize) {
            return Some(p);
        }
    }
    (0..all.len()).find(|&i| all[i].weight == weight && has(i)).map(|i| i as FaceId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_script_has_its_face_and_neutrals_stay_with_the_word() {
        let name = |c, prev| faces()[pick(c, Weight::Regular, prev).unwrap() as usize].name;
        assert_eq!(name('ẹ', None), "NotoSans-Regular.ttf");
        assert_eq!(name('ɓ', None), "NotoSans-Regular.ttf");
        assert_eq!(name('እ', None), "NotoSansEthiopic-Regular.ttf");
        assert_eq!(name('م', None), "NotoSansArabic-Regular.ttf");
        let arabic = pick('م', Weight::Regular, None);
        assert_eq!(name(' ', arabic), "NotoSansArabic-Regular.ttf");
        assert_eq!(faces()[pick('A', Weight::Bold, None).unwrap() as usize].name, "NotoSans-Bold.ttf");
        assert!(!covers('\u{4E2D}', Weight::Regular), "no CJK is built in");
    }
}
