//! What the person sees: screens drawn with embedded-graphics onto a [`Canvas`], shown by a
//! [`Display`] backend. The headless PNG backend is here; framebuffer and SPI panels join with
//! the display issue.

pub mod canvas;
pub mod png;
pub mod screens;

pub use canvas::Canvas;
pub use screens::Screen;

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("cannot write screen image {path}: {detail}; check the output directory is writable")]
    Write { path: String, detail: String },
}

/// A place screens are shown.
pub trait Display {
    /// Pixel size of the panel.
    fn size(&self) -> (u32, u32);
    /// Shows a fully rendered frame.
    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError>;

    /// Renders `screen` at this display's size and shows it.
    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        let (w, h) = self.size();
        let mut c = Canvas::new(w, h);
        screens::render(screen, &mut c);
        self.present(&c, screen.name())
    }
}
