//! A display drawn on its own thread, so capture never waits for rendering or a slow bus: `show`
//! only leaves the screen in a one-place mailbox and returns. When screens come faster than the
//! panel takes them, the newest replaces the one waiting (a live preview wants the latest frame,
//! not a backlog). Errors are logged; the next screen tries again.

use std::sync::{Arc, Condvar, Mutex};

use super::{Canvas, Display, DisplayError, Screen, Texts};

struct Mailbox {
    next: Option<Screen>,
    texts: Arc<Texts>,
    closed: bool,
}

pub struct Threaded {
    size: (u32, u32),
    px_per_mm: f32,
    brand: Arc<super::brand::Brand>,
    shared: Arc<(Mutex<Mailbox>, Condvar)>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Threaded {
    pub fn new(mut inner: Box<dyn Display + Send>) -> Threaded {
        let size = inner.size();
        let px_per_mm = inner.px_per_mm();
        let brand = inner.brand();
        let shared =
            Arc::new((Mutex::new(Mailbox { next: None, texts: inner.texts(), closed: false }), Condvar::new()));
        let s = shared.clone();
        let worker = std::thread::Builder::new()
            .name("display".into())
            .spawn(move || loop {
                let (screen, texts) = {
                    let mut m = s.0.lock().unwrap_or_else(|e| e.into_inner());
                    while m.next.is_none() && !m.closed {
                        m = s.1.wait(m).unwrap_or_else(|e| e.into_inner());
                    }
                    match m.next.take() {
                        Some(screen) => (screen, m.texts.clone()),
                        None => return,
                    }
                };
                inner.set_texts(texts);
                if let Err(e) = inner.show(&screen) {
                    crate::log::warn(&e.to_string(), &[]);
                }
            })
            .expect("a thread can be started");
        Threaded { size, px_per_mm, brand, shared, worker: Some(worker) }
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        // Show what is waiting, then stop.
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.shared.1.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Display for Threaded {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn present(&mut self, _canvas: &Canvas, _name: &str) -> Result<(), DisplayError> {
        Ok(())
    }

    fn texts(&self) -> Arc<Texts> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).texts.clone()
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).texts = texts;
    }

    fn live(&self) -> bool {
        true
    }

    fn px_per_mm(&self) -> f32 {
        self.px_per_mm
    }

    fn brand(&self) -> Arc<super::brand::Brand> {
        self.brand.clone()
    }

    fn show(&mut self, screen: &Screen) -> Result<(), DisplayError> {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).next = Some(screen.clone());
        self.shared.1.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A display that takes 50 ms per frame, like a slow bus.
    struct Slow(Arc<Mutex<Vec<String>>>);
    impl Display for Slow {
        fn size(&self) -> (u32, u32) {
            (240, 320)
        }
        fn present(&mut self, _: &Canvas, name: &str) -> Result<(), DisplayError> {
            std::thread::sleep(Duration::from_millis(50));
            self.0.lock().unwrap().push(name.to_string());
            Ok(())
        }
    }

    #[test]
    fn show_returns_at_once_and_the_last_screen_is_drawn() {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let mut d = Threaded::new(Box::new(Slow(shown.clone())));
        let t = Instant::now();
        for i in 0..20 {
            d.show(&Screen::Face {
                step: crate::display::screens::FaceStep::Liveness,
                hint: None,
                done: i,
                total: 20,
                preview: None,
            })
            .unwrap();
        }
        d.show(&Screen::Review { images: 9 }).unwrap();
        assert!(t.elapsed() < Duration::from_millis(50), "show blocked for {:?}", t.elapsed());
        drop(d);
        let shown = shown.lock().unwrap();
        assert_eq!(shown.last().map(String::as_str), Some("review"), "{shown:?}");
        assert!(shown.len() < 21, "stale screens were skipped: {shown:?}");
    }
}
