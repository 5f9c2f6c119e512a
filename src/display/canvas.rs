//! An RGB888 frame buffer that embedded-graphics draws into.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;

pub struct Canvas {
    pub width: u32,
    pub height: u32,
    /// Packed RGB, row-major.
    pub rgb: Vec<u8>,
    /// Pixels per millimetre on the panel: type and touch targets are sized in millimetres.
    pub px_per_mm: f32,
    /// The buttons drawn so far, for the touch panel ([`super::touch`]).
    pub targets: Vec<super::touch::Target>,
    /// The partner's accent and logo ([`super::brand`]).
    pub brand: std::sync::Arc<super::brand::Brand>,
    /// Where text was drawn, for the layout check ([`super::audit`]).
    pub texts: Vec<TextBox>,
}

/// The box a text's lines took on the canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBox {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    /// A word in it was cut between characters: it was wider than the line.
    pub cut: bool,
    pub excerpt: String,
    /// The em size its text was set at, in px.
    pub px: f32,
}

impl Canvas {
    /// A canvas for the usual panel of this resolution ([`super::panel::guess_diagonal`]).
    pub fn new(width: u32, height: u32) -> Self {
        Self::for_panel(width, height, super::panel::guess_diagonal(width, height))
    }

    /// A canvas for a panel of `diagonal` inches.
    pub fn for_panel(width: u32, height: u32, diagonal: f32) -> Self {
        let px_per_mm = super::panel::px_per_mm(width, height, diagonal);
        Canvas {
            width,
            height,
            rgb: vec![0; (width * height * 3) as usize],
            px_per_mm,
            targets: Vec::new(),
            brand: super::brand::Brand::builtin(),
            texts: Vec::new(),
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let i = ((p.y as u32 * self.width + p.x as u32) * 3) as usize;
                self.rgb[i] = c.r();
                self.rgb[i + 1] = c.g();
                self.rgb[i + 2] = c.b();
            }
        }
        Ok(())
    }
}
