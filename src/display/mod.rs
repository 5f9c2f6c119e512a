//! What the person sees: screens drawn with embedded-graphics onto a [`Canvas`] in the
//! person's language ([`text`]), shown by a [`Display`] backend.

pub mod audit;
pub mod awaited;
pub mod brand;
pub mod canvas;
pub mod fb;
pub mod panel;
pub mod pictograms;
pub mod png;
#[cfg(feature = "sandbox")]
pub mod recorder;
pub mod samples;
pub mod screens;
pub mod slot;
pub mod spi;
pub mod style;
pub mod text;
pub mod threaded;
pub mod touch;
pub mod typeset;
pub mod widgets;

use std::sync::{Arc, OnceLock};

pub use canvas::Canvas;
pub use screens::Screen;
pub use text::Texts;

/// English, the language a display starts in.
pub fn english() -> Arc<Texts> {
    static EN: OnceLock<Arc<Texts>> = OnceLock::new();
    EN.get_or_init(|| Arc::new(Texts::english())).clone()
}

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("cannot write screen image {path}: {detail}; check the output directory is writable")]
    Write { path: String, detail: String },
    #[error("display {device}: {detail}; check the [display] settings and that the service user may open it")]
    Device { device: String, detail: String },
}

/// A place screens are shown.
pub trait Display {
    /// Pixel size of the panel.
    fn size(&self) -> (u32, u32);
    /// Shows a fully rendered frame.
    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError>;

    /// The language screens are drawn in.
    fn texts(&self) -> Arc<Texts> {
        english()
    }
    /// Switches the language (for the next person); displays without a language stay English.
    fn set_texts(&mut self, _texts: Arc<Texts>) {}
    /// True for screens a person watches (the preview is refreshed on every frame, up to 15 fps);
    /// false for file-backed displays, which get a new picture only when something changes.
    fn live(&self) -> bool {
        false
    }
    /// Pixels per millimetre: the usual panel of this resolution unless the diagonal is known.
    fn px_per_mm(&self) -> f32 {
        let (w, h) = self.size();
        panel::px_per_mm(w, h, panel::guess_diagonal(w, h))
    }

    /// The partner's accent and logo; the kiosk's own unless configured ([`panel::Physical`]).
    fn brand(&self) -> Arc<brand::Brand> {
        brand::Brand::builtin()
    }

    /// Renders `screen` at this display's size and shows it.
    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        let (w, h) = self.size();
        let mut c = Canvas::new(w, h);
        c.brand = self.brand();
        screens::render(screen, &self.texts(), &mut c);
        self.present(&c, screen.name())
    }
}

impl<T: Display + ?Sized> Display for Box<T> {
    fn size(&self) -> (u32, u32) {
        (**self).size()
    }
    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError> {
        (**self).present(canvas, name)
    }
    fn texts(&self) -> Arc<Texts> {
        (**self).texts()
    }
    fn set_texts(&mut self, texts: Arc<Texts>) {
        (**self).set_texts(texts)
    }
    fn live(&self) -> bool {
        (**self).live()
    }
    fn px_per_mm(&self) -> f32 {
        (**self).px_per_mm()
    }
    fn brand(&self) -> Arc<brand::Brand> {
        (**self).brand()
    }
    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        (**self).show(screen)
    }
}
