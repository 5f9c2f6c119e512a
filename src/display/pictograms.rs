//! Pictograms for the steps and outcomes, drawn from primitives so they scale to any panel:
//! they carry the meaning for a person who reads slowly or not at all.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, Line, PrimitiveStyle, Rectangle, RoundedRectangle, Triangle};

use super::Canvas;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pictogram {
    /// A face inside the capture oval.
    Face,
    /// An identity card.
    Card,
    /// A sun: more light (or, crossed, less).
    Light,
    TooBright,
    /// A head between two stops: hold still.
    Still,
    /// Arrows pointing in: come closer; out: move back.
    Closer,
    Back,
    /// A head with arrows to both sides: turn your head.
    Turn,
    /// A head and one large arrow: turn to the left or right as the person sees the screen
    /// (never mirrored for right-to-left languages: it is a direction in the room), or look up.
    TurnLeft,
    TurnRight,
    LookUp,
    /// One person, not two.
    One,
    Tick,
    Cross,
    Warning,
    Upload,
    Clock,
    Camera,
    Storage,
}

fn stroke(color: Rgb888, w: i32) -> PrimitiveStyle<Rgb888> {
    PrimitiveStyle::with_stroke(color, w.max(1) as u32)
}

fn fill(color: Rgb888) -> PrimitiveStyle<Rgb888> {
    PrimitiveStyle::with_fill(color)
}

fn circle(c: &mut Canvas, centre: Point, r: i32, style: PrimitiveStyle<Rgb888>) {
    let _ = Circle::with_center(centre, (2 * r).max(1) as u32).into_styled(style).draw(c);
}

fn line(c: &mut Canvas, a: Point, b: Point, color: Rgb888, w: i32) {
    let _ = Line::new(a, b).into_styled(stroke(color, w)).draw(c);
}

/// A head and shoulders, `s` tall, centred at `o`.
fn head(c: &mut Canvas, o: Point, s: i32, color: Rgb888) {
    circle(c, o - Point::new(0, s / 6), s / 5, fill(color));
    let shoulders = Rectangle::new(o + Point::new(-s / 3, s / 10), Size::new((2 * s / 3) as u32, (s / 4) as u32));
    let _ = RoundedRectangle::with_equal_corners(shoulders, Size::new((s / 6) as u32, (s / 6) as u32))
        .into_styled(fill(color))
        .draw(c);
}

/// An arrow from `a` to `b` with a head of `h` pixels.
pub fn arrow(c: &mut Canvas, a: Point, b: Point, h: i32, color: Rgb888, w: i32) {
    let (dx, dy) = ((b.x - a.x) as f32, (b.y - a.y) as f32);
    let len = dx.hypot(dy).max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let h = h as f32;
    // The shaft ends inside the head: a shaft wider than the head's narrowing tip would show
    // past it.
    let end = Point::new((b.x as f32 - ux * h * 0.6) as i32, (b.y as f32 - uy * h * 0.6) as i32);
    line(c, a, end, color, w);
    let p1 = Point::new((b.x as f32 - ux * h - uy * h * 0.6) as i32, (b.y as f32 - uy * h + ux * h * 0.6) as i32);
    let p2 = Point::new((b.x as f32 - ux * h + uy * h * 0.6) as i32, (b.y as f32 - uy * h - ux * h * 0.6) as i32);
    let _ = Triangle::new(b, p1, p2).into_styled(fill(color)).draw(c);
}

/// An anti-aliased elliptical ring `width` px wide, radii `rx`, `ry` (embedded-graphics'
/// ellipse overflows its arithmetic on panel-sized ellipses).
pub fn ellipse(c: &mut Canvas, o: Point, rx: i32, ry: i32, width: i32, color: Rgb888) {
    let (rx, ry, half) = (rx.max(1) as f32, ry.max(1) as f32, width as f32 / 2.0);
    let reach = half.ceil() as i32 + 1;
    let (x0, x1) = ((o.x - rx as i32 - reach).max(0), (o.x + rx as i32 + reach).min(c.width as i32 - 1));
    let (y0, y1) = ((o.y - ry as i32 - reach).max(0), (o.y + ry as i32 + reach).min(c.height as i32 - 1));
    let ink = [color.r() as f32, color.g() as f32, color.b() as f32];
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = ((x - o.x) as f32, (y - o.y) as f32);
            let f = dx * dx / (rx * rx) + dy * dy / (ry * ry) - 1.0;
            let g = 2.0 * (dx * dx / rx.powi(4) + dy * dy / ry.powi(4)).sqrt();
            // Distance to the curve, to first order.
            let d = if g > 0.0 { f / g } else { rx.min(ry) };
            let a = (half - d.abs() + 0.5).clamp(0.0, 1.0);
            if a > 0.0 {
                let i = ((y as u32 * c.width + x as u32) * 3) as usize;
                for (d, k) in c.rgb[i..i + 3].iter_mut().zip(ink) {
                    *d = (k * a + *d as f32 * (1.0 - a)).round() as u8;
                }
            }
        }
    }
}

/// Draws `p` in a square of side `size` centred at `o`.
pub fn draw(c: &mut Canvas, p: Pictogram, o: Point, size: i32, color: Rgb888) {
    let s = size.max(12);
    let w = (s / 14).max(2);
    match p {
        Pictogram::Face => {
            ellipse(c, o, s * 31 / 100, s * 43 / 100, w, color);
            head(c, o + Point::new(0, s / 10), s * 6 / 10, color);
        }
        Pictogram::Card => {
            let r = Rectangle::with_center(o, Size::new((s * 9 / 10) as u32, (s * 57 / 100) as u32));
            let _ = RoundedRectangle::with_equal_corners(r, Size::new((s / 12) as u32, (s / 12) as u32))
                .into_styled(stroke(color, w))
                .draw(c);
            head(c, o + Point::new(-s * 2 / 10, s / 40), s * 3 / 10, color);
            for i in 0..3 {
                let y = o.y - s / 10 + i * s / 9;
                line(c, Point::new(o.x + s / 20, y), Point::new(o.x + s * 3 / 10, y), color, w);
            }
        }
        Pictogram::Light | Pictogram::TooBright => {
            circle(c, o, s / 6, fill(color));
            for i in 0..8 {
                let a = i as f32 * std::f32::consts::FRAC_PI_4;
                let (r0, r1) = (s as f32 * 0.26, s as f32 * 0.42);
                let at = |r: f32| o + Point::new((a.cos() * r) as i32, (a.sin() * r) as i32);
                line(c, at(r0), at(r1), color, w);
            }
            if p == Pictogram::TooBright {
                line(
                    c,
                    o + Point::new(-s * 4 / 10, s * 4 / 10),
                    o + Point::new(s * 4 / 10, -s * 4 / 10),
                    color,
                    w * 3 / 2,
                );
            }
        }
        Pictogram::Still => {
            head(c, o, s * 7 / 10, color);
            for dx in [-s * 45 / 100, s * 45 / 100] {
                line(c, o + Point::new(dx, -s / 3), o + Point::new(dx, s / 3), color, w);
            }
        }
        Pictogram::Closer | Pictogram::Back => {
            head(c, o, s / 2, color);
            let (near, far) = (s * 30 / 100, s * 48 / 100);
            for d in [-1, 1] {
                let (a, b) = if p == Pictogram::Closer { (far, near) } else { (near, far) };
                arrow(c, o + Point::new(d * a, 0), o + Point::new(d * b, 0), s / 10, color, w);
            }
        }
        Pictogram::Turn => {
            head(c, o + Point::new(0, s / 12), s / 2, color);
            let y = o.y - s * 3 / 10;
            arrow(c, Point::new(o.x + s / 10, y), Point::new(o.x + s * 45 / 100, y), s / 9, color, w);
            arrow(c, Point::new(o.x - s / 10, y), Point::new(o.x - s * 45 / 100, y), s / 9, color, w);
        }
        Pictogram::TurnLeft | Pictogram::TurnRight => {
            let side = if p == Pictogram::TurnLeft { -1 } else { 1 };
            head(c, o + Point::new(-side * s / 8, s / 12), s / 2, color);
            let y = o.y - s / 12;
            let (a, b) = (Point::new(o.x + side * s / 10, y), Point::new(o.x + side * s * 46 / 100, y));
            arrow(c, a, b, s / 6, color, w * 2);
        }
        Pictogram::LookUp => {
            head(c, o + Point::new(0, s / 5), s / 2, color);
            arrow(c, Point::new(o.x, o.y - s / 20), Point::new(o.x, o.y - s * 46 / 100), s / 6, color, w * 2);
        }
        Pictogram::One => {
            head(c, o, s * 7 / 10, color);
            circle(c, o, s * 46 / 100, stroke(color, w));
        }
        Pictogram::Tick | Pictogram::Cross => {
            circle(c, o, s / 2 - w, stroke(color, w * 3 / 2));
            let k = s / 5;
            if p == Pictogram::Tick {
                line(c, o + Point::new(-k, 0), o + Point::new(-k / 4, k * 3 / 4), color, w * 2);
                line(c, o + Point::new(-k / 4, k * 3 / 4), o + Point::new(k, -k * 3 / 4), color, w * 2);
            } else {
                line(c, o + Point::new(-k, -k), o + Point::new(k, k), color, w * 2);
                line(c, o + Point::new(-k, k), o + Point::new(k, -k), color, w * 2);
            }
        }
        Pictogram::Warning => {
            let h = s * 85 / 100;
            let top = o + Point::new(0, -h / 2);
            let (l, r) = (o + Point::new(-s / 2, h / 2), o + Point::new(s / 2, h / 2));
            let _ = Triangle::new(top, l, r).into_styled(stroke(color, w * 3 / 2)).draw(c);
            line(c, o + Point::new(0, -h / 6), o + Point::new(0, h / 6), color, w * 2);
            circle(c, o + Point::new(0, h * 3 / 10), w, fill(color));
        }
        Pictogram::Upload => {
            // An arrow rising out of a tray.
            let (l, r, y) = (o.x - s * 4 / 10, o.x + s * 4 / 10, o.y + s * 4 / 10);
            line(c, Point::new(l, o.y + s / 10), Point::new(l, y), color, w);
            line(c, Point::new(l, y), Point::new(r, y), color, w);
            line(c, Point::new(r, y), Point::new(r, o.y + s / 10), color, w);
            arrow(c, o + Point::new(0, s / 4), o + Point::new(0, -s * 4 / 10), s / 5, color, w * 3 / 2);
        }
        Pictogram::Clock => {
            circle(c, o, s * 45 / 100, stroke(color, w));
            line(c, o, o + Point::new(0, -s / 4), color, w);
            line(c, o, o + Point::new(s / 6, s / 10), color, w);
        }
        Pictogram::Camera => {
            let body =
                Rectangle::with_center(o + Point::new(0, s / 12), Size::new((s * 8 / 10) as u32, (s / 2) as u32));
            let _ = RoundedRectangle::with_equal_corners(body, Size::new((s / 10) as u32, (s / 10) as u32))
                .into_styled(stroke(color, w))
                .draw(c);
            circle(c, o + Point::new(0, s / 12), s / 7, stroke(color, w));
            line(c, o + Point::new(-s * 4 / 10, s * 4 / 10), o + Point::new(s * 4 / 10, -s * 4 / 10), color, w);
        }
        Pictogram::Storage => {
            // A memory card: a notched outline with its contacts, and a full bar across it.
            let (l, r, t, btm) = (o.x - s * 3 / 10, o.x + s * 3 / 10, o.y - s * 4 / 10, o.y + s * 4 / 10);
            let notch = s / 6;
            for (a, b) in [
                ((l, t + notch), (l + notch, t)),
                ((l + notch, t), (r, t)),
                ((r, t), (r, btm)),
                ((r, btm), (l, btm)),
                ((l, btm), (l, t + notch)),
            ] {
                line(c, Point::new(a.0, a.1), Point::new(b.0, b.1), color, w);
            }
            for i in 0..4 {
                let x = l + notch + s / 20 + i * s / 9;
                line(c, Point::new(x, t + s / 10), Point::new(x, t + s / 4), color, w);
            }
            let full =
                Rectangle::new(Point::new(l + w, o.y + s / 10), Size::new((r - l - 2 * w) as u32, (s / 4) as u32));
            let _ = full.into_styled(fill(color)).draw(c);
        }
    }
}
