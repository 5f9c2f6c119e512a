//! A display whose device comes and goes (a loose HDMI cable, a panel driver loading late or
//! unbound, a USB panel unplugged). It draws nothing while the device is not there, opens it at
//! the first screen shown after it appears, and opens it again when the driver has made it anew
//! (the old mapping would draw into nothing), so the rest of the agent (uploads, the control
//! API, health, metrics) runs meanwhile.

use std::sync::Arc;

use super::{brand::Brand, Canvas, Display, DisplayError, Screen, Texts};

/// Opens the device.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn Display + Send>, DisplayError> + Send>;

/// The device's nodes as they are now (ids that change when the node is made anew), or `None`
/// while one is not there.
pub type Nodes = Box<dyn Fn() -> Option<Vec<u64>> + Send>;

pub struct Awaited {
    open: Opener,
    nodes: Nodes,
    /// The device, with the nodes it was opened on.
    inner: Option<(Box<dyn Display + Send>, Vec<u64>)>,
    /// Until the device is there: the configured size and the language asked for.
    size: (u32, u32),
    texts: Arc<Texts>,
}

impl Awaited {
    pub fn new(size: (u32, u32), texts: Arc<Texts>, open: Opener, nodes: Nodes) -> Self {
        Awaited { open, nodes, inner: None, size, texts }
    }

    /// Opens the device if it is there and not open yet; lets go of one that has gone.
    pub fn attach(&mut self) -> Result<(), DisplayError> {
        self.attached().map(|_| ())
    }

    /// The device, opened once it is there.
    fn attached(&mut self) -> Result<Option<&mut Box<dyn Display + Send>>, DisplayError> {
        let now = (self.nodes)();
        if self.inner.as_ref().is_some_and(|(_, was)| now.as_ref() != Some(was)) {
            crate::log::info(
                "the display's device has gone or was made anew: it is let go, and opened again once there",
                &[],
            );
            self.inner = None;
        }
        if let (None, Some(nodes)) = (&self.inner, now) {
            let mut d = (self.open)()?;
            d.set_texts(self.texts.clone());
            crate::log::info(
                &format!("the display is there now ({}x{}); the screens start", d.size().0, d.size().1),
                &[],
            );
            self.inner = Some((d, nodes));
        }
        Ok(self.inner.as_mut().map(|(d, _)| d))
    }

    fn device(&self) -> Option<&(dyn Display + Send)> {
        self.inner.as_ref().map(|(d, _)| d.as_ref())
    }
}

impl Display for Awaited {
    fn size(&self) -> (u32, u32) {
        self.device().map_or(self.size, |d| d.size())
    }

    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError> {
        match self.attached()? {
            // A frame drawn for the size assumed while waiting does not fit the device found.
            Some(d) if d.size() == (canvas.width, canvas.height) => d.present(canvas, name),
            _ => Ok(()),
        }
    }

    fn texts(&self) -> Arc<Texts> {
        self.device().map_or_else(|| self.texts.clone(), |d| d.texts())
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        if let Some((d, _)) = &mut self.inner {
            d.set_texts(texts.clone());
        }
        self.texts = texts;
    }

    fn live(&self) -> bool {
        self.device().is_some_and(|d| d.live())
    }

    fn px_per_mm(&self) -> f32 {
        match self.device() {
            Some(d) => d.px_per_mm(),
            None => super::panel::px_per_mm(
                self.size.0,
                self.size.1,
                super::panel::guess_diagonal(self.size.0, self.size.1),
            ),
        }
    }

    fn brand(&self) -> Arc<Brand> {
        self.device().map_or_else(Brand::builtin, |d| d.brand())
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
    use std::sync::Mutex;

    /// A device opened as the `n`th, noting each screen as "n:name".
    struct Panel(usize, Arc<Mutex<Vec<String>>>);

    impl Display for Panel {
        fn size(&self) -> (u32, u32) {
            (64, 48)
        }
        fn present(&mut self, _c: &Canvas, name: &str) -> Result<(), DisplayError> {
            self.1.lock().unwrap().push(format!("{}:{name}", self.0));
            Ok(())
        }
    }

    #[test]
    fn a_device_is_opened_once_there_let_go_when_gone_and_opened_again_when_made_anew() {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let node: Arc<Mutex<Option<Vec<u64>>>> = Arc::default();
        let opened = Arc::new(Mutex::new(0));
        let open: Opener = {
            let (shown, opened) = (shown.clone(), opened.clone());
            Box::new(move || {
                let mut n = opened.lock().unwrap();
                *n += 1;
                Ok(Box::new(Panel(*n, shown.clone())) as Box<dyn Display + Send>)
            })
        };
        let nodes: Nodes = {
            let node = node.clone();
            Box::new(move || node.lock().unwrap().clone())
        };
        let mut d = Awaited::new((32, 24), crate::display::english(), open, nodes);
        let set = |ids: Option<Vec<u64>>| *node.lock().unwrap() = ids;
        d.show(&Screen::Uploading).unwrap();
        assert_eq!(d.size(), (32, 24));
        assert!(shown.lock().unwrap().is_empty(), "nothing drawn before the device is there");
        set(Some(vec![29, 7]));
        d.show(&Screen::Uploading).unwrap();
        d.show(&Screen::Saved { online: true }).unwrap();
        assert_eq!(d.size(), (64, 48), "the device's own size once it is there");
        set(None);
        d.show(&Screen::Uploading).unwrap();
        assert_eq!(d.size(), (32, 24), "a device gone is let go");
        set(Some(vec![29, 8]));
        d.show(&Screen::Uploading).unwrap();
        // Unbound and bound again between two screens: the same path, another node.
        set(Some(vec![29, 9]));
        d.show(&Screen::Saved { online: true }).unwrap();
        assert_eq!(*shown.lock().unwrap(), ["1:uploading", "1:saved", "2:uploading", "3:saved"]);
    }
}
