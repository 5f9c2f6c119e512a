//! The person's answers from a button: a short press means yes, holding it means no.
//! [`Debounce`] is the pure part (samples in, events out); [`gpio`] reads a real button on a
//! GPIO character device (linux-embedded-hal's `CdevPin`) in its own thread; [`ButtonInput`]
//! turns the events into the session's consent and review answers. [`evdev`] reads touch
//! panels, keyboards and keypads.

pub mod evdev;
pub mod gpio;

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::camera::Scene;
use crate::session::{Input, Review};

/// What the button did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Pressed and released before the hold time.
    Press,
    /// Held down for the hold time (reported once, while still held).
    Hold,
}

/// Turns raw pin samples into presses and holds. A level must stay the same for `settle` before
/// it counts (contact bounce), and one press gives one event. A button already down when
/// sampling starts gives nothing until it is released: that press began before anyone was
/// listening, and its release alone must not read as "yes".
#[derive(Debug, Clone)]
pub struct Debounce {
    pub settle: Duration,
    pub hold: Duration,
    raw: bool,
    raw_since: Duration,
    stable: bool,
    pressed_at: Option<Duration>,
    held: bool,
    /// The first settled level has been seen (until then `stable` is a guess).
    known: bool,
}

impl Debounce {
    pub fn new(settle: Duration, hold: Duration) -> Self {
        Debounce {
            settle,
            hold,
            raw: false,
            raw_since: Duration::ZERO,
            stable: false,
            pressed_at: None,
            held: false,
            known: false,
        }
    }

    /// Feeds one sample (`down`: the button is pressed) taken at `at`.
    pub fn sample(&mut self, down: bool, at: Duration) -> Option<Event> {
        if down != self.raw {
            self.raw = down;
            self.raw_since = at;
        }
        if !self.known && at.saturating_sub(self.raw_since) >= self.settle {
            // The first settled level is where the button was, not something it did.
            self.known = true;
            self.stable = self.raw;
            self.held = self.raw;
            return None;
        }
        if self.known && self.raw != self.stable && at.saturating_sub(self.raw_since) >= self.settle {
            self.stable = self.raw;
            if self.stable {
                self.pressed_at = Some(self.raw_since);
                self.held = false;
            } else {
                let was_held = self.held;
                self.pressed_at = None;
                if !was_held {
                    return Some(Event::Press);
                }
            }
        }
        if let Some(t) = self.pressed_at {
            if self.stable && !self.held && at.saturating_sub(t) >= self.hold {
                self.held = true;
                return Some(Event::Hold);
            }
        }
        None
    }
}

/// The session's answers from button events.
pub struct ButtonInput {
    events: Receiver<Event>,
    /// No answer for this long: consent counts as declined (the person walked away).
    pub timeout: Duration,
}

impl ButtonInput {
    pub fn new(events: Receiver<Event>, timeout: Duration) -> Self {
        ButtonInput { events, timeout }
    }

    /// Press: yes, hold: no; `Err` when nobody answered in time, or the button can no longer
    /// be read (`Disconnected`).
    fn answer(&mut self) -> Result<bool, RecvTimeoutError> {
        // Presses made before the question was shown are not answers to it.
        while self.events.try_recv().is_ok() {}
        self.events.recv_timeout(self.timeout).map(|e| e == Event::Press)
    }
}

impl Input for ButtonInput {
    fn button(&self) -> bool {
        true
    }
    fn consent(&mut self) -> bool {
        // Said in the log so that whoever is beside the kiosk (or a test) knows it is listening.
        crate::log::info("waiting at the consent screen for the button: press to agree, hold to decline", &[]);
        self.answer().unwrap_or(false)
    }
    fn confirm(&mut self, _scene: Scene) -> Review {
        match self.answer() {
            Ok(true) => Review::Keep,
            Ok(false) => Review::Retake,
            Err(RecvTimeoutError::Timeout) => Review::Gone,
            // The button gone mid-session: nobody can answer, and the photo passed every check.
            Err(RecvTimeoutError::Disconnected) => Review::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(d: &mut Debounce, samples: &[(u64, bool)]) -> Vec<(u64, Event)> {
        samples.iter().filter_map(|&(ms, down)| d.sample(down, Duration::from_millis(ms)).map(|e| (ms, e))).collect()
    }

    #[test]
    fn bounce_gives_one_press() {
        let mut d = Debounce::new(Duration::from_millis(20), Duration::from_millis(800));
        // Contact bounce on press and on release, 5 ms sampling.
        let mut s: Vec<(u64, bool)> = (0..100).step_by(5).map(|t| (t, false)).collect();
        s.extend([(100, true), (105, false), (110, true), (115, false), (120, true)]);
        s.extend((125..=300).step_by(5).map(|t| (t, true)));
        s.extend([(305, false), (310, true), (315, false)]);
        s.extend((320..=400).step_by(5).map(|t| (t, false)));
        assert_eq!(run(&mut d, &s), vec![(335, Event::Press)]);
    }

    #[test]
    fn holding_gives_one_hold_and_no_press() {
        let mut d = Debounce::new(Duration::from_millis(20), Duration::from_millis(800));
        let mut s: Vec<(u64, bool)> = (0..100).step_by(10).map(|t| (t, false)).collect();
        s.extend((100..=1300).step_by(10).map(|t| (t, true)));
        s.extend((1310..=1500).step_by(10).map(|t| (t, false)));
        assert_eq!(run(&mut d, &s), vec![(900, Event::Hold)]);
    }

    #[test]
    fn a_press_under_way_when_sampling_starts_is_not_an_answer() {
        let mut d = Debounce::new(Duration::from_millis(20), Duration::from_millis(800));
        // Down from the first sample, released after 500 ms (short of a hold), then a real press.
        let mut s: Vec<(u64, bool)> = (0..500).step_by(10).map(|t| (t, true)).collect();
        s.extend((500..700).step_by(10).map(|t| (t, false)));
        s.extend((700..900).step_by(10).map(|t| (t, true)));
        s.extend((900..1100).step_by(10).map(|t| (t, false)));
        assert_eq!(run(&mut d, &s), vec![(920, Event::Press)]);
    }

    #[test]
    fn glitches_shorter_than_settle_are_ignored() {
        let mut d = Debounce::new(Duration::from_millis(20), Duration::from_millis(800));
        let s: Vec<(u64, bool)> = (0..=500).step_by(5).map(|t| (t, t % 100 == 0)).collect();
        assert!(run(&mut d, &s).is_empty());
    }

    #[test]
    fn button_answers_consent_and_review() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut input = ButtonInput::new(rx, Duration::from_millis(200));
        let answer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(Event::Hold).unwrap();
            tx
        });
        assert!(!input.consent(), "hold declines");
        let tx = answer.join().unwrap();
        assert!(!input.consent(), "no answer within the timeout declines");
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(Event::Press).unwrap();
            tx
        });
        assert_eq!(input.confirm(Scene::DocumentFront), Review::Keep);
        let tx = t.join().unwrap();
        assert_eq!(input.confirm(Scene::DocumentFront), Review::Gone, "nobody answered the review");
        // The button no longer read: nobody can answer, and the photo passed every check.
        drop(tx);
        assert_eq!(input.confirm(Scene::DocumentFront), Review::Keep);
    }
}
