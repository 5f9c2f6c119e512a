//! A display whose device is not there yet (a loose HDMI cable, a panel driver loading late).
//! It draws nothing, and opens the device at the first screen shown after it appears, so the
//! rest of the agent (uploads, the control API, health, metrics) runs meanwhile.

use std::sync::Arc;

use super::{brand::Brand, Canvas, Display, DisplayError, Screen, Texts};

/// Opens the device: `None` while it is not there.
pub type Opener = Box<dyn FnMut() -> Option<Result<Box<dyn Display + Send>, DisplayError>> + Send>;

pub struct Awaited {
    open: Opener,
    inner: Option<Box<dyn Display + Send>>,
    /// Until the device is there: the configured size and the language asked for.
    size: (u32, u32),
    texts: Arc<Texts>,
}

impl Awaited {
    pub fn new(size: (u32, u32), texts: Arc<Texts>, open: Opener) -> Self {
        Awaited { open, inner: None, size, texts }
    }

    /// The device, opened once it is there.
    fn attached(&mut self) -> Result<Option<&mut Box<dyn Display + Send>>, DisplayError> {
        if self.inner.is_none() {
            if let Some(opened) = (self.open)() {
                let mut d = opened?;
                d.set_texts(self.texts.clone());
                crate::log::info(
                    &format!("the display is there now ({}x{}); the screens start", d.size().0, d.size().1),
                    &[],
                );
                self.inner = Some(d);
            }
        }
        Ok(self.inner.as_mut())
    }
}

impl Display for Awaited {
    fn size(&self) -> (u32, u32) {
        self.inner.as_ref().map_or(self.size, |d| d.size())
    }

    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError> {
        match self.attached()? {
            // A frame drawn for the size assumed while waiting does not fit the device found.
            Some(d) if d.size() == (canvas.width, canvas.height) => d.present(canvas, name),
            _ => Ok(()),
        }
    }

    fn texts(&self) -> Arc<Texts> {
        self.inner.as_ref().map_or_else(|| self.texts.clone(), |d| d.texts())
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        if let Some(d) = &mut self.inner {
            d.set_texts(texts.clone());
        }
        self.texts = texts;
    }

    fn live(&self) -> bool {
        self.inner.as_ref().is_some_and(|d| d.live())
    }

    fn px_per_mm(&self) -> f32 {
        match &self.inner {
            Some(d) => d.px_per_mm(),
            None => super::panel::px_per_mm(
                self.size.0,
                self.size.1,
                super::panel::guess_diagonal(self.size.0, self.size.1),
            ),
        }
    }

    fn brand(&self) -> Arc<Brand> {
        self.inner.as_ref().map_or_else(Brand::builtin, |d| d.brand())
    }

    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        match self.attached()? {
            Some(d) => d.show(screen),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    struct Panel(Arc<Mutex<Vec<String>>>);

    impl Display for Panel {
        fn size(&self) -> (u32, u32) {
            (64, 48)
        }
        fn present(&mut self, _c: &Canvas, name: &str) -> Result<(), DisplayError> {
            self.0.lock().unwrap().push(name.into());
            Ok(())
        }
    }

    #[test]
    fn nothing_is_drawn_until_the_device_is_there_then_it_is_opened_once() {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let there = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(Mutex::new(0));
        let open: Opener = {
            let (shown, there, opened) = (shown.clone(), there.clone(), opened.clone());
            Box::new(move || {
                there.load(Ordering::Relaxed).then(|| {
                    *opened.lock().unwrap() += 1;
                    Ok(Box::new(Panel(shown.clone())) as Box<dyn Display + Send>)
                })
            })
        };
        let mut d = Awaited::new((32, 24), crate::display::english(), open);
        d.show(&Screen::Uploading).unwrap();
        assert_eq!(d.size(), (32, 24));
        assert!(shown.lock().unwrap().is_empty());
        there.store(true, Ordering::Relaxed);
        d.show(&Screen::Uploading).unwrap();
        d.show(&Screen::Saved { online: true }).unwrap();
        assert_eq!(d.size(), (64, 48), "the device's own size once it is there");
        assert_eq!(*shown.lock().unwrap(), ["uploading", "saved"]);
        assert_eq!(*opened.lock().unwrap(), 1);
    }
}
