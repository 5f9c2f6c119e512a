//! Paragraph layout: the Unicode bidirectional algorithm (unicode-bidi) orders each line,
//! runs are split where the face changes and shaped, and lines break at the opportunities of
//! UAX #14 (unicode-linebreak), greedily, measured on the shaped text.

use std::ops::Range;

use embedded_graphics::pixelcolor::Rgb888;
use unicode_bidi::{BidiInfo, Level};
use unicode_linebreak::{linebreaks, BreakOpportunity};

use super::fonts::{faces, pick, Weight};
use super::raster::draw_glyph;
use super::shape::{scale_for, shape, Run};
use crate::display::Canvas;

/// A type size and weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// The em size in pixels.
    pub px: f32,
    pub weight: Weight,
}

/// Where lines sit in their box. `Start` is the left edge for left-to-right languages and the
/// right edge for right-to-left ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Start,
    Centre,
    End,
}

/// One laid-out line: runs in visual order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub runs: Vec<Run>,
    /// In 1/64 px.
    pub width: i32,
}

/// A laid-out paragraph (or several, from `\n`).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub lines: Vec<Line>,
    pub rtl: bool,
    /// Above the first baseline, in px.
    pub ascent: i32,
    /// From one baseline to the next, in px.
    pub line_height: i32,
    /// A word was wider than the line and was cut between its characters.
    pub cut: bool,
    /// The text's beginning, to name it in a layout fault ([`crate::display::audit`]).
    pub excerpt: String,
    /// The em size it was set at, in px.
    pub px: f32,
}

/// Text to set: the language decides the paragraph direction and the OpenType language system.
#[derive(Debug, Clone, Copy)]
pub struct Setting<'a> {
    pub lang: &'a str,
    pub rtl: bool,
}

impl Block {
    /// No text: nothing drawn, no height.
    pub fn empty() -> Block {
        Block { lines: Vec::new(), rtl: false, ascent: 0, line_height: 0, cut: false, excerpt: String::new(), px: 0.0 }
    }

    pub fn height(&self) -> i32 {
        self.lines.len() as i32 * self.line_height
    }

    /// The widest line, in px.
    pub fn width(&self) -> i32 {
        self.lines.iter().map(|l| (l.width + 63) / 64).max().unwrap_or(0)
    }

    /// Draws the lines in the box of width `w` whose top-left is (`x`, `y`), and notes where
    /// on the canvas ([`Canvas::texts`]).
    pub fn draw(&self, c: &mut Canvas, x: i32, y: i32, w: i32, align: Align, color: Rgb888) {
        let (mut x0, mut x1) = (i32::MAX, i32::MIN);
        for (i, line) in self.lines.iter().enumerate() {
            let lw = (line.width + 63) / 64;
            let left = match (align, self.rtl) {
                (Align::Centre, _) => x + (w - lw) / 2,
                (Align::Start, false) | (Align::End, true) => x,
                (Align::Start, true) | (Align::End, false) => x + w - lw,
            };
            if lw > 0 {
                (x0, x1) = (x0.min(left), x1.max(left + lw));
            }
            let baseline = (y + self.ascent + i as i32 * self.line_height) * 64;
            let mut pen = left * 64;
            for run in &line.runs {
                for g in &run.glyphs {
                    draw_glyph(c, run.face, g.id, run.scale, pen + g.x_offset, baseline - g.y_offset, color);
                    pen += g.x_advance;
                }
            }
        }
        if x0 < x1 {
            c.texts.push(crate::display::canvas::TextBox {
                x: x0,
                y,
                w: x1 - x0,
                h: self.height(),
                cut: self.cut,
                excerpt: self.excerpt.clone(),
                px: self.px,
            });
        }
    }
}

/// Splits `range` of `text` into (range, rtl) pieces of one face each, in logical order.
fn items(text: &str, levels: &[Level], range: Range<usize>, weight: Weight) -> Vec<(Range<usize>, u8, bool)> {
    let mut out: Vec<(Range<usize>, u8, bool)> = Vec::new();
    for (i, c) in text[range.clone()].char_indices() {
        let at = range.start + i;
        let rtl = levels[at].is_rtl();
        let previous = out.last().filter(|(_, _, r)| *r == rtl).map(|(_, f, _)| *f);
        let face = pick(c, weight, previous).unwrap_or(if weight == Weight::Bold { 1 } else { 0 });
        match out.last_mut() {
            Some((r, f, d)) if *f == face && *d == rtl && r.end == at => r.end = at + c.len_utf8(),
            _ => out.push((at..at + c.len_utf8(), face, rtl)),
        }
    }
    out
}

/// Width of `range` set as one line, in 1/64 px.
fn measure(text: &str, levels: &[Level], range: Range<usize>, style: Style, set: Setting) -> i32 {
    items(text, levels, range, style.weight)
        .into_iter()
        .map(|(r, f, rtl)| shape(&text[r], f, face_scale(style, f), rtl, set.lang).advance())
        .sum()
}

/// The scale face `f` is set at for `style`.
fn face_scale(style: Style, f: u8) -> i32 {
    scale_for(style.px * faces()[f as usize].adjust)
}

/// Trims trailing white space from a line's range.
fn trimmed(text: &str, r: Range<usize>) -> Range<usize> {
    r.start..r.start + text[r.clone()].trim_end().len()
}

/// Breaks one paragraph into line ranges no wider than `max` (1/64 px) where the text allows;
/// a word wider than the line is cut between characters (never before a mark), and said so.
fn break_lines(text: &str, levels: &[Level], max: i32, style: Style, set: Setting) -> (Vec<Range<usize>>, bool) {
    let fits = |r: Range<usize>| measure(text, levels, trimmed(text, r), style, set) <= max;
    let (mut lines, mut cut_any) = (Vec::new(), false);
    let (mut start, mut fit) = (0usize, None::<usize>);
    for (pos, opportunity) in linebreaks(text) {
        if !fits(start..pos) {
            if let Some(f) = fit.take() {
                lines.push(start..f);
                start = f;
            }
            // Still too wide: one word longer than the line.
            while !fits(start..pos) {
                let mut cut = start;
                for (i, c) in text[start..pos].char_indices().skip(1) {
                    if super::fonts::is_mark(c) {
                        continue;
                    }
                    if !fits(start..start + i) {
                        break;
                    }
                    cut = start + i;
                }
                if cut == start {
                    break; // not even one character fits: let it overflow
                }
                lines.push(start..cut);
                start = cut;
                cut_any = true;
            }
        }
        if opportunity == BreakOpportunity::Mandatory && pos < text.len() {
            lines.push(start..pos);
            start = pos;
            fit = None;
        } else {
            fit = Some(pos);
        }
    }
    if start < text.len() {
        lines.push(start..text.len());
    }
    (lines, cut_any)
}

/// Lays out `text` in lines at most `max_width` px wide.
pub fn layout(text: &str, style: Style, max_width: i32, set: Setting) -> Block {
    let base = if set.rtl { Level::rtl() } else { Level::ltr() };
    let mut lines = Vec::new();
    let mut used = Vec::new();
    let mut cut = false;
    for para in text.split('\n') {
        let bidi = BidiInfo::new(para, Some(base));
        let Some(info) = bidi.paragraphs.first() else {
            lines.push(Line { runs: Vec::new(), width: 0 });
            continue;
        };
        let (ranges, cut_here) = break_lines(para, &bidi.levels, max_width.max(1) * 64, style, set);
        cut |= cut_here;
        for range in ranges {
            let range = trimmed(para, range);
            if range.is_empty() {
                lines.push(Line { runs: Vec::new(), width: 0 });
                continue;
            }
            let (levels, visual) = bidi.visual_runs(info, range);
            let mut runs = Vec::new();
            for v in visual {
                let mut pieces: Vec<Run> = items(para, &levels, v, style.weight)
                    .into_iter()
                    .map(|(r, f, rtl)| shape(&para[r], f, face_scale(style, f), rtl, set.lang))
                    .collect();
                if pieces.first().is_some_and(|p| p.rtl) {
                    pieces.reverse();
                }
                runs.extend(pieces);
            }
            used.extend(runs.iter().map(|r| r.face));
            let width = runs.iter().map(Run::advance).sum();
            lines.push(Line { runs, width });
        }
    }
    if used.is_empty() {
        used.push(0);
    }
    let em = |v: f32, f: &super::fonts::Face| v * style.px * f.adjust / f.upem;
    let ascent = used.iter().map(|&f| em(faces()[f as usize].ascent, &faces()[f as usize])).fold(0.0, f32::max);
    let descent = used.iter().map(|&f| em(faces()[f as usize].descent, &faces()[f as usize])).fold(0.0, f32::max);
    Block {
        lines,
        rtl: set.rtl,
        ascent: ascent.ceil() as i32,
        line_height: (ascent + descent).ceil() as i32,
        cut,
        excerpt: text.chars().take(32).collect(),
        px: style.px,
    }
}
