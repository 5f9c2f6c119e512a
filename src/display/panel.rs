//! Physical panel sizes: type and touch targets are sized in millimetres, so the renderer needs
//! a panel's pixels per millimetre. `[display] diagonal_inches` gives it; otherwise the
//! resolution names the usual panel of that size.

/// Panels kiosks are built with: (width, height, diagonal in inches), either orientation.
pub const KNOWN: &[(u32, u32, f32)] = &[
    (240, 320, 2.8),  // ILI9341 SPI
    (320, 480, 3.5),  // ILI9486 SPI
    (480, 800, 7.0),  // Raspberry Pi Touch Display; also sold as 5"
    (600, 1024, 7.0), // HDMI and DSI 7" panels
    (720, 1280, 7.0), // Raspberry Pi Touch Display 2
    (800, 1280, 10.1),
    (1080, 1920, 15.6),
];

/// The diagonal of the usual panel with this resolution, or a 96-dpi screen's for others.
pub fn guess_diagonal(width: u32, height: u32) -> f32 {
    let (a, b) = (width.min(height), width.max(height));
    KNOWN
        .iter()
        .find(|(w, h, _)| (*w, *h) == (a, b))
        .map(|k| k.2)
        .unwrap_or_else(|| ((width as f32).hypot(height as f32)) / 96.0)
}

/// Pixels per millimetre of a panel of `width`×`height` pixels and `diagonal` inches.
pub fn px_per_mm(width: u32, height: u32, diagonal: f32) -> f32 {
    (width as f32).hypot(height as f32) / (diagonal * 25.4)
}

/// A display as configured: screens are laid out for the panel's real pixels per millimetre
/// when its diagonal is known (`[display] diagonal_inches`), in the partner's brand
/// (`[display] accent`, `logo`).
pub struct Physical<D> {
    pub inner: D,
    pub diagonal: Option<f32>,
    pub brand: std::sync::Arc<super::brand::Brand>,
}

impl<D: super::Display> super::Display for Physical<D> {
    fn size(&self) -> (u32, u32) {
        self.inner.size()
    }
    fn present(&mut self, canvas: &super::Canvas, name: &str) -> Result<(), super::DisplayError> {
        self.inner.present(canvas, name)
    }
    fn texts(&self) -> std::sync::Arc<super::Texts> {
        self.inner.texts()
    }
    fn set_texts(&mut self, texts: std::sync::Arc<super::Texts>) {
        self.inner.set_texts(texts)
    }
    fn live(&self) -> bool {
        self.inner.live()
    }
    fn px_per_mm(&self) -> f32 {
        let (w, h) = self.size();
        px_per_mm(w, h, self.diagonal.unwrap_or_else(|| guess_diagonal(w, h)))
    }
    fn brand(&self) -> std::sync::Arc<super::brand::Brand> {
        self.brand.clone()
    }
    fn show(&mut self, screen: &super::Screen) -> Result<(), super::DisplayError> {
        let (w, h) = self.size();
        let mut c = super::Canvas::for_panel(w, h, self.diagonal.unwrap_or_else(|| guess_diagonal(w, h)));
        c.brand = self.brand.clone();
        super::screens::render(screen, &self.texts(), &mut c);
        self.present(&c, screen.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pi_touch_display_has_about_5_pixels_per_mm() {
        let d = guess_diagonal(800, 480);
        assert_eq!(d, 7.0);
        assert!((px_per_mm(800, 480, d) - 5.25).abs() < 0.01);
        assert_eq!(guess_diagonal(320, 240), 2.8);
        assert!((guess_diagonal(1920, 1200) - 23.6).abs() < 0.1);
    }
}
