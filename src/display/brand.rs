//! Partner branding: the accent colour (buttons, links, the oval, progress) and a logo at the top
//! of the welcome screen, from `[display] accent` and `logo`. An accent is refused unless text in
//! it reads on the screen's background (4.5:1, WCAG AA); white labels on it then read too.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::RgbColor;

use super::style::PALETTE;
use super::Canvas;

/// The built-in accent, a deep teal.
pub const BUILTIN_ACCENT: Rgb888 = Rgb888::new(0, 105, 92);
/// Labels, links and the buttons' own words in the accent need this contrast on the background.
pub const MIN_CONTRAST: f32 = 4.5;
/// A logo file's limits: a logo is small, and it is decoded at start-up.
pub const LOGO_MAX_BYTES: u64 = 2 * 1024 * 1024;
pub const LOGO_MAX_SIDE: u32 = 2048;

#[derive(Debug, Clone, PartialEq)]
pub struct Brand {
    pub accent: Rgb888,
    /// Words on the accent (white: any accepted accent reads under it).
    pub on_accent: Rgb888,
    pub logo: Option<Logo>,
}

/// A decoded logo, straight (not premultiplied) RGBA, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Logo {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("{value:?} is not a colour; write it as \"#RRGGBB\", e.g. \"#00695C\"")]
    Colour { value: String },
    #[error(
        "{value} reads at only {ratio:.1}:1 on the screen's background, and buttons and links show words in it; \
         choose a darker shade with at least {MIN_CONTRAST}:1 (the built-in accent is #00695C)"
    )]
    Contrast { value: String, ratio: f32 },
    #[error("cannot use the logo {path}: {detail}")]
    Logo { path: String, detail: String },
}

impl Brand {
    /// The kiosk's own look: the built-in accent, no logo.
    pub fn builtin() -> Arc<Brand> {
        static BUILTIN: OnceLock<Arc<Brand>> = OnceLock::new();
        BUILTIN.get_or_init(|| Arc::new(Brand { accent: BUILTIN_ACCENT, on_accent: Rgb888::WHITE, logo: None })).clone()
    }

    /// A partner's look: `accent` as "#RRGGBB" (the built-in one when unset) and a logo file
    /// (PNG or JPEG; transparency is kept).
    pub fn new(accent: Option<&str>, logo: Option<&Path>) -> Result<Brand, BrandError> {
        let accent = match accent {
            None => BUILTIN_ACCENT,
            Some(value) => {
                let c = parse_colour(value).ok_or_else(|| BrandError::Colour { value: value.into() })?;
                let ratio = contrast(c, PALETTE.bg);
                if ratio < MIN_CONTRAST {
                    return Err(BrandError::Contrast { value: value.into(), ratio });
                }
                c
            }
        };
        let logo = logo.map(Logo::load).transpose()?;
        Ok(Brand { accent, on_accent: Rgb888::WHITE, logo })
    }
}

impl Brand {
    /// The accent is a red, the colour the screens give what went wrong ("Not verified", a
    /// missing camera): buttons and the welcome in it may read as warnings. Said, not refused:
    /// many banks' colour is red.
    pub fn accent_reads_as_error(&self) -> bool {
        let (r, g, b) = (self.accent.r() as f32, self.accent.g() as f32, self.accent.b() as f32);
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        if max - min < 0.35 * max || r < max {
            return false;
        }
        // Hue within 20° of red, on either side.
        let hue = 60.0 * (g - b) / (max - min);
        hue.abs() <= 20.0
    }
}

/// "#RRGGBB" (the "#" optional, either case).
pub fn parse_colour(s: &str) -> Option<Rgb888> {
    let hex = s.trim().strip_prefix('#').unwrap_or(s.trim());
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(Rgb888::new((v >> 16) as u8, (v >> 8) as u8, v as u8))
}

/// WCAG 2 contrast ratio of two colours, 1 to 21.
pub fn contrast(a: Rgb888, b: Rgb888) -> f32 {
    fn luminance(c: Rgb888) -> f32 {
        let lin = |v: u8| {
            let v = v as f32 / 255.0;
            if v <= 0.040_45 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(c.r()) + 0.7152 * lin(c.g()) + 0.0722 * lin(c.b())
    }
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

impl Logo {
    pub fn load(path: &Path) -> Result<Logo, BrandError> {
        let err = |detail: String| BrandError::Logo { path: path.display().to_string(), detail };
        let len = std::fs::metadata(path)
            .map_err(|e| err(format!("{e}; check the path and that the service user may read it")))?
            .len();
        if len > LOGO_MAX_BYTES {
            return Err(err(format!("{len} bytes; a logo must be at most {LOGO_MAX_BYTES} bytes (export it smaller)")));
        }
        let bytes = std::fs::read(path).map_err(|e| err(format!("{e}; check that the service user may read it")))?;
        Logo::decode(&bytes).map_err(err)
    }

    /// A PNG or JPEG image.
    pub fn decode(bytes: &[u8]) -> Result<Logo, String> {
        let format = image::guess_format(bytes).map_err(|_| "not a PNG or JPEG image".to_string())?;
        if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
            return Err(format!("a {format:?} image; save the logo as PNG (or JPEG)"));
        }
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(LOGO_MAX_SIDE);
        limits.max_image_height = Some(LOGO_MAX_SIDE);
        reader.limits(limits);
        let img = reader
            .decode()
            .map_err(|e| {
                format!("{e}; a logo must be a valid PNG or JPEG of at most {LOGO_MAX_SIDE}×{LOGO_MAX_SIDE} pixels")
            })?
            .to_rgba8();
        let (width, height) = img.dimensions();
        if width == 0 || height == 0 {
            return Err("an empty image".into());
        }
        Ok(Logo { width, height, rgba: img.into_raw() })
    }

    /// The size it is drawn at inside `max_w`×`max_h`: the whole logo, its proportions kept, never
    /// enlarged beyond twice its own pixels (a blurred logo is worse than a small one).
    pub fn fitted(&self, max_w: i32, max_h: i32) -> (i32, i32) {
        let (lw, lh) = (self.width as f32, self.height as f32);
        let k = (max_w.max(0) as f32 / lw).min(max_h.max(0) as f32 / lh).min(2.0);
        ((lw * k).floor() as i32, (lh * k).floor() as i32)
    }

    /// Draws the logo `w`×`h` with its top-left at (`x`, `y`), each pixel the average of the logo
    /// pixels it covers, blended over what is on the canvas.
    pub fn draw(&self, c: &mut Canvas, x: i32, y: i32, w: i32, h: i32) {
        if w <= 0 || h <= 0 {
            return;
        }
        let (sw, sh) = (self.width as i64, self.height as i64);
        for ty in 0..h {
            let py = y + ty;
            if py < 0 || py >= c.height as i32 {
                continue;
            }
            let (y0, y1) = span(ty as i64, h as i64, sh);
            for tx in 0..w {
                let px = x + tx;
                if px < 0 || px >= c.width as i32 {
                    continue;
                }
                let (x0, x1) = span(tx as i64, w as i64, sw);
                // Premultiplied sums, so transparent pixels lend no colour to the edges.
                let (mut r, mut g, mut b, mut a, mut n) = (0u64, 0u64, 0u64, 0u64, 0u64);
                for sy in y0..y1 {
                    for sx in x0..x1 {
                        let i = ((sy * sw + sx) * 4) as usize;
                        let pa = self.rgba[i + 3] as u64;
                        r += self.rgba[i] as u64 * pa;
                        g += self.rgba[i + 1] as u64 * pa;
                        b += self.rgba[i + 2] as u64 * pa;
                        a += pa;
                        n += 1;
                    }
                }
                if a == 0 {
                    continue;
                }
                let o = ((py as u32 * c.width + px as u32) * 3) as usize;
                let alpha = a as f32 / (n * 255) as f32;
                for (k, sum) in [r, g, b].into_iter().enumerate() {
                    let src = sum as f32 / a as f32;
                    let dst = c.rgb[o + k] as f32;
                    c.rgb[o + k] = (src * alpha + dst * (1.0 - alpha)).round() as u8;
                }
            }
        }
    }
}

/// The source pixels [start, end) that target pixel `t` of `n` covers in a row of `len`.
fn span(t: i64, n: i64, len: i64) -> (i64, i64) {
    let start = t * len / n;
    let end = ((t + 1) * len / n).max(start + 1).min(len);
    (start.min(len - 1), end)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_red_accent_is_told_from_the_others() {
        let reads = |hex: &str| Brand::new(Some(hex), None).unwrap().accent_reads_as_error();
        for red in ["#B00020", "#B91C1C", "#C8102E", "#A6192E"] {
            assert!(reads(red), "{red}");
        }
        for other in ["#0B3D91", "#00695C", "#6A1B9A", "#8B4513", "#555555", "#9C4A00"] {
            assert!(!reads(other), "{other}");
        }
    }

    use super::*;

    fn png(w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba(px(x, y)));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn accents_must_read_on_the_background() {
        assert_eq!(parse_colour("#00695C"), Some(BUILTIN_ACCENT));
        assert_eq!(parse_colour("00695c"), Some(BUILTIN_ACCENT));
        for bad in ["", "#0069", "#00695G", "teal", "#00695C00"] {
            assert!(matches!(Brand::new(Some(bad), None), Err(BrandError::Colour { .. })), "{bad}");
        }
        // A bank's dark blue passes; a light yellow (1.5:1) is refused, naming its contrast.
        let blue = Brand::new(Some("#0B3D91"), None).unwrap();
        assert_eq!(blue.accent, Rgb888::new(11, 61, 145));
        let e = Brand::new(Some("#F5C518"), None).unwrap_err();
        assert!(matches!(e, BrandError::Contrast { ratio, .. } if ratio < 2.0), "{e}");
        assert!(e.to_string().contains("darker"), "{e}");
        assert!((contrast(Rgb888::BLACK, Rgb888::WHITE) - 21.0).abs() < 0.01);
        // Any accepted accent carries white labels at 4.5:1 or more.
        assert!(contrast(blue.accent, blue.on_accent) >= MIN_CONTRAST);
    }

    #[test]
    fn logos_keep_their_proportions_and_their_transparency() {
        // 40×20: the left half opaque red, the right half transparent.
        let bytes = png(40, 20, |x, _| if x < 20 { [255, 0, 0, 255] } else { [0, 0, 255, 0] });
        let logo = Logo::decode(&bytes).unwrap();
        assert_eq!((logo.width, logo.height), (40, 20));
        assert_eq!(logo.fitted(20, 100), (20, 10), "width-bound");
        assert_eq!(logo.fitted(1000, 1000), (80, 40), "enlarged at most twice");
        let mut c = Canvas::new(100, 50);
        let _ = embedded_graphics::draw_target::DrawTarget::clear(&mut c, Rgb888::new(250, 250, 250));
        logo.draw(&mut c, 10, 10, 20, 10);
        assert_eq!(c.pixel(12, 12), [255, 0, 0], "opaque half");
        assert_eq!(c.pixel(27, 12), [250, 250, 250], "the transparent half shows the background");
        assert_eq!(c.pixel(35, 12), [250, 250, 250], "nothing outside the box");
    }

    #[test]
    fn a_logo_that_is_not_an_image_or_too_large_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.png");
        let e = Logo::load(&missing).unwrap_err().to_string();
        assert!(e.contains("none.png") && e.contains("check the path"), "{e}");
        let text = dir.path().join("logo.png");
        std::fs::write(&text, "<svg/>").unwrap();
        assert!(Logo::load(&text).unwrap_err().to_string().contains("not a PNG or JPEG"));
        let huge = dir.path().join("huge.png");
        std::fs::write(&huge, png(LOGO_MAX_SIDE + 1, 1, |_, _| [0, 0, 0, 255])).unwrap();
        assert!(Logo::load(&huge).unwrap_err().to_string().contains("at most"), "too wide");
    }
}
