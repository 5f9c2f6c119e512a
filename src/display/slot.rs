//! One panel, two users: the screens between sessions and the session under way. Whoever
//! draws borrows the display from the slot and gives it back by dropping the loan, so an SPI
//! panel's GPIO lines or a framebuffer are opened once for the whole day. The slot remembers
//! what was last shown, for the touch panel to find the button under a finger.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::touch::{without_picture, Shown};
use super::{Canvas, Display, DisplayError, Screen, Texts};

pub struct DisplaySlot {
    display: Mutex<Option<Box<dyn Display + Send>>>,
    returned: Condvar,
    /// What was last shown, and since when.
    shown: Mutex<Option<(Shown, Instant)>>,
    /// The panel's pixels.
    pub size: (u32, u32),
}

impl DisplaySlot {
    pub fn new(display: Box<dyn Display + Send>) -> Arc<Self> {
        let size = display.size();
        Arc::new(DisplaySlot {
            display: Mutex::new(Some(display)),
            returned: Condvar::new(),
            shown: Mutex::new(None),
            size,
        })
    }

    /// The display, once whoever has it gives it back (waiting up to `wait`).
    pub fn borrow(self: &Arc<Self>, wait: Duration) -> Option<Loan> {
        let until = Instant::now() + wait;
        let mut d = self.display.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(display) = d.take() {
                return Some(Loan { slot: self.clone(), display: Some(display) });
            }
            let left = until.checked_duration_since(Instant::now())?;
            d = self.returned.wait_timeout(d, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The screen last shown through a loan, if any.
    pub fn shown(&self) -> Option<Shown> {
        self.shown.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.0.clone())
    }

    /// How long the screen last shown has been up: drawn again the same (a new camera picture
    /// behind the same words), it keeps its time; anything else on it, and its buttons may have
    /// moved.
    pub fn shown_for(&self) -> Option<Duration> {
        self.shown.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.1.elapsed())
    }
}

/// Two screens whose buttons are where they were: the same screen in the same language, or the
/// welcome redrawn in another language or with the link's line changed (its Start button stays
/// put: a person who has just picked their language may tap it at once).
fn same_buttons(was: &Shown, now: &Shown) -> bool {
    match (&was.screen, &now.screen) {
        (Screen::Idle { start: a, .. }, Screen::Idle { start: b, .. }) => a == b,
        (a, b) => a == b && was.texts.code == now.texts.code,
    }
}

/// A borrowed display; dropping it returns the display to its slot.
pub struct Loan {
    slot: Arc<DisplaySlot>,
    display: Option<Box<dyn Display + Send>>,
}

impl Loan {
    fn inner(&self) -> &(dyn Display + Send) {
        self.display.as_deref().expect("a loan holds its display until dropped")
    }

    fn inner_mut(&mut self) -> &mut (dyn Display + Send) {
        self.display.as_deref_mut().expect("a loan holds its display until dropped")
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        *self.slot.display.lock().unwrap_or_else(|e| e.into_inner()) = self.display.take();
        self.slot.returned.notify_all();
    }
}

impl Display for Loan {
    fn size(&self) -> (u32, u32) {
        self.inner().size()
    }

    fn present(&mut self, canvas: &Canvas, name: &str) -> Result<(), DisplayError> {
        self.inner_mut().present(canvas, name)
    }

    fn texts(&self) -> Arc<Texts> {
        self.inner().texts()
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        self.inner_mut().set_texts(texts)
    }

    fn live(&self) -> bool {
        self.inner().live()
    }

    fn px_per_mm(&self) -> f32 {
        self.inner().px_per_mm()
    }

    fn brand(&self) -> Arc<super::brand::Brand> {
        self.inner().brand()
    }

    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        // Drawn first: a display that opens its device at this screen ([`super::awaited`]) knows
        // the device's size and brand, which the touch targets are laid out with, only then.
        let drawn = self.inner_mut().show(screen);
        let shown = Shown {
            screen: without_picture(screen),
            texts: self.texts(),
            size: self.size(),
            px_per_mm: self.px_per_mm(),
            brand: self.brand(),
        };
        let mut last = self.slot.shown.lock().unwrap_or_else(|e| e.into_inner());
        let since = match last.as_ref() {
            Some((was, since)) if same_buttons(was, &shown) => *since,
            _ => Instant::now(),
        };
        *last = Some((shown, since));
        drawn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(Arc<Mutex<Vec<String>>>);

    impl Display for Named {
        fn size(&self) -> (u32, u32) {
            (32, 24)
        }
        fn present(&mut self, _c: &Canvas, name: &str) -> Result<(), DisplayError> {
            self.0.lock().unwrap().push(name.into());
            Ok(())
        }
    }

    #[test]
    fn one_borrower_at_a_time_and_the_display_comes_back() {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let slot = DisplaySlot::new(Box::new(Named(shown.clone())));
        let mut a = slot.borrow(Duration::ZERO).expect("free at first");
        assert!(slot.borrow(Duration::from_millis(20)).is_none(), "lent out");
        a.show(&Screen::Saved { online: false }).unwrap();
        let waiter = {
            let slot = slot.clone();
            std::thread::spawn(move || slot.borrow(Duration::from_secs(5)).map(|mut b| b.show(&Screen::Uploading)))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        assert!(waiter.join().unwrap().is_some(), "the waiter got it once it came back");
        assert_eq!(*shown.lock().unwrap(), ["saved", "uploading"]);
    }

    #[test]
    fn a_screen_drawn_again_the_same_keeps_its_time_on_screen() {
        use super::super::screens::{Legend, More, Side};
        let slot = DisplaySlot::new(Box::new(Named(Arc::new(Mutex::new(Vec::new())))));
        assert_eq!(slot.shown_for(), None, "nothing shown yet");
        let document =
            |review, preview| Screen::Document { side: Side::Front, hint: None, preview, review, legend: Legend::None };
        let mut loan = slot.borrow(Duration::ZERO).unwrap();
        loan.show(&document(false, None)).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        loan.show(&document(false, Some((2, 2, vec![0; 12])))).unwrap();
        assert!(slot.shown_for().unwrap() >= Duration::from_millis(60), "a new picture behind the same words");
        loan.show(&document(true, None)).unwrap();
        assert!(slot.shown_for().unwrap() < Duration::from_millis(60), "keeping the photo is a new question");
        let consent = |more| Screen::Consent { partner: "Bank".into(), more, legend: Legend::None, face_only: true };
        loan.show(&consent(More::Link)).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        loan.show(&consent(More::Open(0))).unwrap();
        assert!(slot.shown_for().unwrap() < Duration::from_millis(60), "the whole text has its buttons elsewhere");
        use super::super::screens::{Link, Start};
        let idle = |link| Screen::Idle { link, start: Start::Touch { languages: true } };
        loan.show(&idle(Link::Online)).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        loan.set_texts(Texts::load("fr", None).unwrap());
        loan.show(&idle(Link::Offline)).unwrap();
        assert!(slot.shown_for().unwrap() >= Duration::from_millis(60), "the welcome's Start stays put");
    }
}
