//! Glyph outlines (from read-fonts, re-exported by harfrust) filled into anti-aliased coverage
//! masks by ab_glyph_rasterizer, cached, and blended onto a [`Canvas`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ab_glyph_rasterizer::{point, Point, Rasterizer};
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use harfrust::font::glyph::outline::{DrawMemory, DrawOptions, PathSink};
use harfrust::GlyphId;

use super::fonts::{faces, FaceId};
use crate::display::Canvas;

/// Horizontal sub-pixel positions a glyph is drawn at (quarters of a pixel).
const SUBPIXEL: i32 = 4;
/// Masks kept before the cache starts over (a few screens' worth at every size).
const CACHE_LIMIT: usize = 6000;

/// A glyph's coverage, 0–255, with where its top-left sits from the pen position.
#[derive(Debug)]
pub struct Mask {
    pub left: i32,
    /// Rows above the baseline.
    pub top: i32,
    pub width: usize,
    pub height: usize,
    pub alpha: Vec<u8>,
}

#[derive(Default)]
struct Path(Vec<Segment>);

enum Segment {
    Line(Point, Point),
    Quad(Point, Point, Point),
    Cubic(Point, Point, Point, Point),
}

/// Collects an outline as closed segments.
#[derive(Default)]
struct Collect {
    path: Path,
    at: Point,
    start: Point,
}

impl PathSink for Collect {
    fn move_to(&mut self, x: f32, y: f32) {
        self.close();
        self.at = point(x, y);
        self.start = self.at;
    }
    fn line_to(&mut self, x: f32, y: f32) {
        let p = point(x, y);
        self.path.0.push(Segment::Line(self.at, p));
        self.at = p;
    }
    fn quad_to(&mut self, cx: f32, cy: f32, x: f32, y: f32) {
        let p = point(x, y);
        self.path.0.push(Segment::Quad(self.at, point(cx, cy), p));
        self.at = p;
    }
    fn curve_to(&mut self, c0x: f32, c0y: f32, c1x: f32, c1y: f32, x: f32, y: f32) {
        let p = point(x, y);
        self.path.0.push(Segment::Cubic(self.at, point(c0x, c0y), point(c1x, c1y), p));
        self.at = p;
    }
    fn close(&mut self) {
        if self.at != self.start {
            self.path.0.push(Segment::Line(self.at, self.start));
            self.at = self.start;
        }
    }
}

/// Rasterises glyph `id` of `face` at `scale` (px × 64), shifted right by `subpixel` quarters.
fn rasterise(face: FaceId, id: u32, scale: i32, subpixel: i32) -> Mask {
    let empty = Mask { left: 0, top: 0, width: 0, height: 0, alpha: Vec::new() };
    let font = &faces()[face as usize].font;
    let Some(glyph) = font.outline_glyphs().get(GlyphId::new(id)) else { return empty };
    let mut sink = Collect::default();
    let options = DrawOptions::new().with_ppem(Some(scale as f32 / 64.0));
    if glyph.draw(&options, DrawMemory::Scratch, &mut sink).is_err() {
        return empty;
    }
    sink.close();
    let dx = subpixel as f32 / SUBPIXEL as f32;
    let points = sink.path.0.iter().flat_map(|s| match s {
        Segment::Line(a, b) => vec![*a, *b],
        Segment::Quad(a, b, c) => vec![*a, *b, *c],
        Segment::Cubic(a, b, c, d) => vec![*a, *b, *c, *d],
    });
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in points {
        (x0, y0, x1, y1) = (x0.min(p.x + dx), y0.min(p.y), x1.max(p.x + dx), y1.max(p.y));
    }
    if x0 > x1 {
        return empty; // a space
    }
    let (left, top) = (x0.floor() as i32, y1.ceil() as i32);
    let (width, height) = ((x1.ceil() as i32 - left).max(1) as usize, (top - y0.floor() as i32).max(1) as usize);
    // Font space is y-up; the mask is y-down from its top-left.
    let map = |p: Point| point(p.x + dx - left as f32, top as f32 - p.y);
    let mut r = Rasterizer::new(width, height);
    for s in &sink.path.0 {
        match *s {
            Segment::Line(a, b) => r.draw_line(map(a), map(b)),
            Segment::Quad(a, b, c) => r.draw_quad(map(a), map(b), map(c)),
            Segment::Cubic(a, b, c, d) => r.draw_cubic(map(a), map(b), map(c), map(d)),
        }
    }
    let mut alpha = vec![0u8; width * height];
    r.for_each_pixel(|i, a| alpha[i] = (a.clamp(0.0, 1.0) * 255.0).round() as u8);
    Mask { left, top, width, height, alpha }
}

type Key = (FaceId, u32, i32, i32);

fn cache() -> &'static Mutex<HashMap<Key, Arc<Mask>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Mask>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The mask of a glyph, from the cache when it was drawn before.
pub fn mask(face: FaceId, id: u32, scale: i32, subpixel: i32) -> Arc<Mask> {
    let key = (face, id, scale, subpixel);
    if let Some(m) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return m.clone();
    }
    let m = Arc::new(rasterise(face, id, scale, subpixel));
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= CACHE_LIMIT {
        c.clear();
    }
    c.insert(key, m.clone());
    m
}

/// Draws glyph `id` with its origin at (`x`, `y`), both in 1/64 px, blended in `color`.
pub fn draw_glyph(c: &mut Canvas, face: FaceId, id: u32, scale: i32, x: i32, y: i32, color: Rgb888) {
    let subpixel = (x.rem_euclid(64) * SUBPIXEL + 32) / 64;
    let (mut px, py) = (x.div_euclid(64), (y + 32).div_euclid(64));
    let subpixel = if subpixel == SUBPIXEL {
        px += 1;
        0
    } else {
        subpixel
    };
    let m = mask(face, id, scale, subpixel);
    blend(c, &m, px + m.left, py - m.top, color);
}

/// Blends a coverage mask with its top-left at (`x`, `y`).
pub fn blend(c: &mut Canvas, m: &Mask, x: i32, y: i32, color: Rgb888) {
    let ink = [color.r() as u32, color.g() as u32, color.b() as u32];
    for row in 0..m.height {
        let cy = y + row as i32;
        if cy < 0 || cy >= c.height as i32 {
            continue;
        }
        for col in 0..m.width {
            let cx = x + col as i32;
            let a = m.alpha[row * m.width + col] as u32;
            if a == 0 || cx < 0 || cx >= c.width as i32 {
                continue;
            }
            let i = ((cy as u32 * c.width + cx as u32) * 3) as usize;
            for (d, k) in c.rgb[i..i + 3].iter_mut().zip(ink) {
                *d = ((k * a + *d as u32 * (255 - a) + 127) / 255) as u8;
            }
        }
    }
}
