//! The screen between sessions, all day: idle with the link in words and how to start, a
//! session's outcome for `display.outcome_secs`, and the camera, storage, paused and clock
//! screens when they apply. [`screen_for`] is the pure choice; [`run`] draws it whenever it
//! changes, on the display the sessions borrow. What the person does is routed here too: a
//! button's press or hold, a tap on an on-screen button, a key. They answer the session's
//! question, or at the idle screen start a walk-up session or change the language.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Backend, StartSession};
use crate::config::WalkUp;
use crate::display::screens::{Link, More, Problem, Start};
use crate::display::slot::DisplaySlot;
use crate::display::touch::{self, Action};
use crate::display::{Display, Screen, Texts};
use crate::input::evdev::{Gesture, Key, Point};
use crate::session::manager::{Ended, SessionState};
use crate::session::Answer;
use crate::smileid::job::{IdInfo, JobOptions, JobType};
use crate::uplink::service::LinkState;

use super::service::Service;

/// What the screen between sessions depends on.
#[derive(Debug, Clone)]
pub struct Facts {
    /// A session has the display.
    pub session_running: bool,
    /// How the last session ended, and whether its outcome is still due on screen.
    pub outcome: Option<(SessionState, bool)>,
    pub camera_missing: bool,
    /// No job could be saved now, and what the person is told.
    pub storage: Option<Problem>,
    pub link: LinkState,
    pub start: Start,
}

/// The screen to show, or `None` while a session draws its own.
pub fn screen_for(f: &Facts) -> Option<Screen> {
    if f.session_running {
        return None;
    }
    if let Some((state, camera_failed)) = f.outcome {
        let problem = match state {
            // Held uploads (paused, a wrong clock) leave the person done all the same; only a
            // link down makes "sent when the kiosk is online" the truth.
            SessionState::Queued => {
                let online = !matches!(f.link, LinkState::Down { .. } | LinkState::Unknown);
                return Some(Screen::Saved { online });
            }
            SessionState::Declined | SessionState::Abandoned | SessionState::Cancelled => Problem::Cancelled,
            SessionState::TimedOut => Problem::TimedOut,
            SessionState::Refused => Problem::NotLive,
            SessionState::Failed if camera_failed => Problem::CameraMissing,
            _ => Problem::SaveFailed,
        };
        return Some(Screen::Error { problem });
    }
    if f.camera_missing {
        return Some(Screen::Error { problem: Problem::CameraMissing });
    }
    if let Some(problem) = f.storage {
        return Some(Screen::Error { problem });
    }
    // Uploads held (refused credentials, a wrong clock) stop no one's verification, which is
    // kept: the welcome stays, its status line in red for staff.
    let link = match f.link {
        LinkState::Up => Link::Online,
        LinkState::Paused { .. } => Link::Paused,
        LinkState::ClockWrong { .. } => Link::ClockWrong,
        LinkState::Down { .. } => Link::Offline,
        // Not probed yet: saying "offline" for the probe's fraction of a second would be wrong
        // on most starts.
        LinkState::Unknown => Link::Checking,
    };
    Some(Screen::Idle { link, start: f.start })
}

/// How often the facts are looked at again (a press or a session's end shows within this).
const TICK: Duration = Duration::from_millis(200);

/// How long a language chosen at the welcome is kept when nobody starts: the next person
/// finds the kiosk's own language again.
pub const CHOICE_KEPT: Duration = Duration::from_secs(120);

/// Sooner than this after a screen appears, a press or tap on it is not a person's answer (nobody
/// reads a question and decides that fast, and phones take two taps 300 ms apart as one double
/// tap) but the tail of what they did on the screen before: the second press of a double press
/// that started a session would otherwise agree to a consent on screen for 16 ms.
pub const NOT_YET_READ: Duration = Duration::from_millis(500);

/// How often the costlier facts (the queue's counts, the disk, the camera's node) are looked at.
const SLOW_TICK: Duration = Duration::from_secs(2);

/// Draws the screen between sessions until `stop`.
pub fn run(service: Arc<Service>, slot: Arc<DisplaySlot>, stop: Arc<AtomicBool>) {
    let d = &service.config.display;
    let load = |code: &str| Texts::load(code, d.lang_dir.as_deref()).unwrap_or_else(|_| crate::display::english());
    let mut home = load(&d.language);
    let outcome_for = Duration::from_secs(d.outcome_secs);
    let input = &service.config.input;
    // What is on the panel: the screen and the language it was drawn in.
    let mut drawn: Option<(Screen, String)> = None;
    // Why the last screen could not be drawn, until one is.
    let mut failing: Option<String> = None;
    let mut slow: Option<(std::time::Instant, bool, Option<Problem>)> = None;
    // The screen as last seen: its device's nodes, `None` while it is gone or unplugged.
    let mut screen = d.screen_now();
    // The number of the last session seen ending: a new one forgets the language chosen.
    let mut ended_seen = service.sessions.last_ended().map(|e| e.number);
    while !stop.load(Ordering::Relaxed) {
        let ended = service.sessions.last_ended();
        let code = {
            let mut chosen = service.chosen_language.lock().unwrap_or_else(|e| e.into_inner());
            let new_end = ended.as_ref().map(|e| e.number) != ended_seen;
            let stale = chosen.as_ref().is_some_and(|c| c.1.elapsed() > CHOICE_KEPT);
            if new_end || (stale && service.sessions.active().is_none()) {
                *chosen = None;
                ended_seen = ended.as_ref().map(|e| e.number);
            }
            chosen.as_ref().map_or_else(|| d.language.clone(), |c| c.0.clone())
        };
        if home.code != code {
            home = load(&code);
        }
        // The queue's counts decode every record: on a Pi with a full queue, not 5 times a second.
        let (camera_missing, storage) = match slow {
            Some((at, c, s)) if at.elapsed() < SLOW_TICK => (c, s),
            _ => {
                // A screen that has just appeared, come back or been made anew is drawn on at
                // once: nothing has reached it.
                let now = d.screen_now();
                if now != screen {
                    match (&now, d.screen_missing_why()) {
                        (None, Some(why)) => crate::log::warn(
                            &format!("{why}: nothing is shown and sessions are refused until it is back"),
                            &[],
                        ),
                        _ => crate::log::info("the screen is there: the welcome is drawn on it", &[]),
                    }
                    drawn = None;
                    screen = now;
                }
                service.metrics.set_display_present(screen.is_some());
                let (c, s) = (service.camera_missing(), service.storage_problem());
                service.metrics.set_camera_present(!c);
                service.metrics.set_storage_writable(s != Some(Problem::OutOfService));
                service.metrics.set_storage_full(s == Some(Problem::StorageFull));
                if service.config.input.button().is_some() {
                    service.metrics.set_button_present(service.sessions.button.load(Ordering::Relaxed));
                }
                slow = Some((std::time::Instant::now(), c, s));
                (c, s)
            }
        };
        let facts = Facts {
            session_running: service.sessions.active().is_some(),
            outcome: ended.as_ref().filter(|e| e.at.elapsed() < outcome_for).map(|e| (e.state, e.camera_failed)),
            camera_missing,
            storage,
            link: service.link(),
            // Looked at each time: a touch panel or keyboard may come or go while the welcome
            // shows. With nothing a person can answer with, staff start the session.
            start: start_offered(
                input.walk_up,
                Answers {
                    touch: service.touch.load(Ordering::Relaxed),
                    button: service.sessions.button.load(Ordering::Relaxed),
                    keys: service.keys.load(Ordering::Relaxed),
                },
                d.offered().len() > 1,
            ),
        };
        match screen_for(&facts) {
            // The session draws; whatever it leaves is not ours to trust.
            None => drawn = None,
            Some(screen) => {
                // The outcome speaks the person's language; everything else the kiosk's.
                let texts = match (&screen, &ended) {
                    (Screen::Idle { .. }, _) | (_, None) => home.clone(),
                    (_, Some(Ended { texts, .. })) if facts.outcome.is_some() => {
                        texts.clone().unwrap_or_else(|| home.clone())
                    }
                    _ => home.clone(),
                };
                let now = (screen, texts.code.clone());
                if drawn.as_ref() != Some(&now) {
                    if let Some(mut display) = slot.borrow(TICK) {
                        display.set_texts(texts);
                        match display.show(&now.0) {
                            Ok(()) => {
                                drawn = Some(now);
                                failing = None;
                            }
                            // Tried again each tick: said once, not five times a second.
                            Err(e) => {
                                let e = e.to_string();
                                if failing.as_ref() != Some(&e) {
                                    crate::log::warn(&format!("the screen could not be drawn: {e}"), &[]);
                                    failing = Some(e);
                                }
                            }
                        }
                    }
                }
            }
        }
        std::thread::sleep(TICK);
    }
}

/// A press or hold of the button: answers the session's question (consent, or keeping a
/// document photo: press yes, hold no); at the idle screen a press starts a walk-up session and
/// a hold goes to the next language.
pub fn on_button(service: &Service, slot: &DisplaySlot, press: bool) {
    // Held at the whole consent text, the button goes back (its legend says so).
    let no = if consent_open(slot) { Answer::Back } else { Answer::No };
    if answer(service, slot, if press { Answer::Yes } else { no }) {
        return;
    }
    // Only at the welcome: a press to dismiss an outcome starts nothing.
    if !welcome_shown(slot) {
        return;
    }
    if press {
        start_walk_up(service, slot);
    } else {
        choose_language(service, |i, n| (i + 1) % n);
    }
}

/// The screen has been up long enough for a press on it to be meant for it ([`NOT_YET_READ`]);
/// if not, the press is said in the log, for whoever wonders why it did nothing.
fn read(slot: &DisplaySlot) -> bool {
    let up = slot.shown_for().unwrap_or_default();
    if up < NOT_YET_READ {
        crate::log::info(
            &format!(
                "a press {} ms after the screen changed was not taken for an answer to it (a double press or tap)",
                up.as_millis()
            ),
            &[],
        );
    }
    up >= NOT_YET_READ
}

/// The welcome is on screen.
fn welcome_shown(slot: &DisplaySlot) -> bool {
    slot.shown().is_some_and(|s| matches!(s.screen, Screen::Idle { .. }))
}

/// A question is on screen (consent, or keeping a document photo): Esc answers it.
fn question_shown(slot: &DisplaySlot) -> bool {
    slot.shown().is_some_and(|s| matches!(s.screen, Screen::Consent { .. } | Screen::Document { review: true, .. }))
}

/// What a person did on the touch panel or the keys.
pub fn on_gesture(service: &Service, slot: &DisplaySlot, g: Gesture) {
    match g {
        Gesture::Tap { down, up } => on_tap(service, slot, down, up),
        Gesture::Key(Key::Enter) => on_button(service, slot, true),
        Gesture::Key(Key::EnterHeld) => on_button(service, slot, false),
        // From the whole consent text, Esc goes back to the short one; at a question it says
        // no; anywhere else in a session (the camera at work), it stops the session (a person
        // who changed their mind), as the host application's cancel does: nothing is kept. By
        // what the person sees, not by the session's state, which moves on a moment later.
        Gesture::Key(Key::Back) if question_shown(slot) => {
            answer(service, slot, if consent_open(slot) { Answer::Back } else { Answer::No });
        }
        // A second Esc right after the first asked for the photo again lands on the framing
        // screen: the tail of a double press, not a wish to stop the visit.
        Gesture::Key(Key::Back)
            if slot.shown().is_some_and(|s| matches!(s.screen, Screen::Document { review: false, .. }))
                && !read(slot) => {}
        Gesture::Key(Key::Back) => stop_session(service),
        // On the whole consent text, a page on or back; at the welcome, another language.
        Gesture::Key(Key::Previous) if consent_open(slot) => {
            answer(service, slot, Answer::Previous);
        }
        // At the short consent too: a person without a touch panel reads the whole text.
        Gesture::Key(Key::Next) if slot.shown().is_some_and(|s| matches!(s.screen, Screen::Consent { .. })) => {
            answer(service, slot, Answer::More);
        }
        Gesture::Key(Key::Previous) => choose_language(service, |i, n| (i + n - 1) % n),
        Gesture::Key(Key::Next) => choose_language(service, |i, n| (i + 1) % n),
        // The nth language offered, counting from 1; 0 is the tenth, as on a phone's keypad.
        Gesture::Key(Key::Digit(d)) => choose_language(service, |_, n| nth_language(d, n)),
        // As for the devices there at the start (`App::run`): the Start button, the language
        // arrows and "Read more" need a finger, "press the button" a button or keys.
        Gesture::Devices(can) => {
            service.touch.store(can.touch, Ordering::Relaxed);
            service.keys.store(can.keys, Ordering::Relaxed);
            service.sessions.read_more.store(can.touch, Ordering::Relaxed);
            service.sessions.keys.store(can.keys, Ordering::Relaxed);
        }
    }
}

/// The whole consent text is on screen.
fn consent_open(slot: &DisplaySlot) -> bool {
    slot.shown().is_some_and(|s| matches!(s.screen, Screen::Consent { more: More::Open(_), .. }))
}

/// A tap: the on-screen button it began and ended on acts.
fn on_tap(service: &Service, slot: &DisplaySlot, down: Point, up: Point) {
    let Some(shown) = slot.shown() else { return };
    match touch::hit(&touch::targets(&shown), down, up) {
        Some(Action::Yes | Action::Keep) => {
            answer(service, slot, Answer::Yes);
        }
        Some(Action::No | Action::Retake) => {
            answer(service, slot, Answer::No);
        }
        Some(Action::More) => {
            answer(service, slot, Answer::More);
        }
        Some(Action::Back) => {
            answer(service, slot, Answer::Back);
        }
        Some(Action::PreviousPage) => {
            answer(service, slot, Answer::Previous);
        }
        Some(Action::Start) => start_walk_up(service, slot),
        Some(Action::PreviousLanguage) => choose_language(service, |i, n| (i + n - 1) % n),
        Some(Action::NextLanguage) => choose_language(service, |i, n| (i + 1) % n),
        None => {}
    }
}

/// Answers the running session's question, once it is on screen and has been read; true when a
/// session is running (asking or not: nothing else happens while one runs).
fn answer(service: &Service, slot: &DisplaySlot, answer: Answer) -> bool {
    let Some(id) = service.sessions.active() else { return false };
    // By what the person sees: the session asks a moment before its question is drawn.
    if asking(service) && question_shown(slot) && read(slot) {
        service.sessions.answer(&id, answer);
    }
    true
}

/// The running session asks the person something (consent, or keep the document photo).
fn asking(service: &Service) -> bool {
    let view = service.sessions.active().and_then(|id| service.sessions.view(&id));
    view.is_some_and(|v| v.state == SessionState::AwaitingConsent || v.step == "document_review")
}

/// Stops the running session, unless its job is already being saved.
fn stop_session(service: &Service) {
    let Some(id) = service.sessions.active() else { return };
    if service.sessions.stop(&id) {
        crate::log::info("the person stopped the session at the kiosk (Esc)", &[("session_id", &id)]);
    }
}

/// The language a digit key picks among `n`: the nth, counting from 1, 0 being the tenth as on a
/// phone's keypad; past the last, the last.
fn nth_language(digit: u8, n: usize) -> usize {
    let nth = if digit == 0 { 10 } else { digit as usize };
    nth.min(n).max(1) - 1
}

/// At the idle screen, another of the offered languages: `pick(current index, count)`.
fn choose_language(service: &Service, pick: impl Fn(usize, usize) -> usize) {
    let d = &service.config.display;
    let offered = d.offered();
    if service.sessions.active().is_some() || offered.len() < 2 {
        return;
    }
    let mut chosen = service.chosen_language.lock().unwrap_or_else(|e| e.into_inner());
    let now = chosen.as_ref().and_then(|c| offered.iter().position(|o| **o == c.0)).unwrap_or(0);
    let next = offered[pick(now, offered.len()).min(offered.len() - 1)].to_string();
    crate::log::info(&format!("language chosen at the kiosk: {next}"), &[]);
    *chosen = Some((next, std::time::Instant::now()));
}

/// What a person at the kiosk can answer with now: a touch panel, the GPIO button, keys.
#[derive(Debug, Clone, Copy)]
struct Answers {
    touch: bool,
    button: bool,
    keys: bool,
}

/// How the welcome asks a person to start: on the touch panel being read, with the button or
/// the keys, or through staff when walk-ups are off or nothing could answer. The language
/// arrows are offered where a finger or the arrow keys can work them.
fn start_offered(walk_up: WalkUp, can: Answers, languages: bool) -> Start {
    let arrows = languages && (can.touch || can.keys);
    match (walk_up, can) {
        (WalkUp::Off, _) => Start::Staff { languages: arrows },
        (_, Answers { touch: true, .. }) => Start::Touch { languages },
        (_, Answers { button: true, .. }) => Start::Button,
        (_, Answers { keys: true, .. }) => Start::Keys { languages },
        _ => Start::Staff { languages: false },
    }
}

/// Starts a walk-up session, when the kiosk offers them, nothing is in the way and the welcome
/// has been read (a double tap on an outcome's last moment starts nothing).
fn start_walk_up(service: &Service, slot: &DisplaySlot) {
    let walk_up = &service.config.input;
    let job_type = match walk_up.walk_up {
        WalkUp::Off => return,
        WalkUp::SmartSelfie => JobType::SmartSelfieEnrollment,
        WalkUp::Document => JobType::DocumentVerification,
    };
    // A press at an error screen starts nothing: the person could not finish.
    if service.sessions.active().is_some() || service.camera_missing() || service.storage_problem().is_some() {
        return;
    }
    if !read(slot) {
        return;
    }
    let language = service.chosen_language.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| c.0.clone());
    let req = StartSession {
        job_type,
        user_id: format!("walkup-{}", crate::session::new_job_id().trim_start_matches("kiosk-")),
        job_id: None,
        extra: Default::default(),
        id_info: IdInfo {
            country: walk_up.walk_up_country.clone(),
            id_type: walk_up.walk_up_id_type.clone(),
            ..Default::default()
        },
        options: JobOptions::default(),
        document_back: job_type.is_document() && walk_up.walk_up_back(),
        language,
        owner: None,
    };
    match service.start_session(req) {
        Ok(v) => crate::log::info(
            &format!("walk-up session started at the button: {}", v.job_id),
            &[("JOB_ID", &v.job_id), ("STAGE", "session")],
        ),
        Err(e) => crate::log::warn(&format!("walk-up session refused: {}", e.error), &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> Facts {
        Facts {
            session_running: false,
            outcome: None,
            camera_missing: false,
            storage: None,
            link: LinkState::Up,
            start: Start::Staff { languages: false },
        }
    }

    #[test]
    fn the_welcome_offers_only_what_a_person_can_answer_with() {
        let doc = WalkUp::Document;
        let can = |touch, button, keys| Answers { touch, button, keys };
        assert_eq!(start_offered(doc, can(true, true, false), true), Start::Touch { languages: true });
        assert_eq!(start_offered(doc, can(true, false, false), false), Start::Touch { languages: false });
        assert_eq!(start_offered(doc, can(false, true, true), true), Start::Button);
        // A keypad alone: Enter starts, and the arrow keys work the language row.
        assert_eq!(start_offered(doc, can(false, false, true), true), Start::Keys { languages: true });
        // The panel gone and no button or keys: not a button that is not there.
        assert_eq!(start_offered(doc, can(false, false, false), true), Start::Staff { languages: false });
        assert_eq!(start_offered(WalkUp::Off, can(true, true, false), true), Start::Staff { languages: true });
        assert_eq!([nth_language(1, 10), nth_language(9, 10), nth_language(0, 10)], [0, 8, 9]);
        assert_eq!([nth_language(0, 3), nth_language(5, 3), nth_language(2, 3)], [2, 2, 1]);
        assert_eq!(start_offered(WalkUp::Off, can(true, true, false), false), Start::Staff { languages: false });
        assert_eq!(start_offered(WalkUp::Off, can(false, true, false), true), Start::Staff { languages: false });
        assert_eq!(start_offered(WalkUp::Off, can(false, false, true), true), Start::Staff { languages: true });
    }

    #[test]
    fn a_session_draws_its_own_screens() {
        assert_eq!(screen_for(&Facts { session_running: true, camera_missing: true, ..idle() }), None);
    }

    #[test]
    fn the_outcome_comes_before_anything_else_then_idle() {
        let saved = Facts { outcome: Some((SessionState::Queued, false)), link: LinkState::Unknown, ..idle() };
        assert_eq!(screen_for(&saved), Some(Screen::Saved { online: false }), "sent later");
        let sent = Facts { link: LinkState::Up, ..saved.clone() };
        assert_eq!(screen_for(&sent), Some(Screen::Saved { online: true }), "sent now");
        // An upload refused a moment later does not change what the person reads.
        let held = Facts { link: LinkState::Paused { error: "401".into(), retry_at: 0 }, ..saved };
        assert_eq!(screen_for(&held), Some(Screen::Saved { online: true }), "kept, the person is done");
        for (state, cam, problem) in [
            (SessionState::Declined, false, Problem::Cancelled),
            (SessionState::Abandoned, false, Problem::Cancelled),
            (SessionState::Cancelled, false, Problem::Cancelled),
            (SessionState::TimedOut, false, Problem::TimedOut),
            (SessionState::Refused, false, Problem::NotLive),
            (SessionState::Failed, true, Problem::CameraMissing),
            (SessionState::Failed, false, Problem::SaveFailed),
        ] {
            let f = Facts { outcome: Some((state, cam)), storage: Some(Problem::StorageFull), ..idle() };
            assert_eq!(screen_for(&f), Some(Screen::Error { problem }), "{state:?}");
        }
        assert_eq!(
            screen_for(&idle()),
            Some(Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } })
        );
    }

    #[test]
    fn problems_replace_idle_in_order_of_what_they_stop() {
        let down = LinkState::Down { error: "x".into() };
        let walk_up = Facts { link: down.clone(), start: Start::Button, ..idle() };
        assert_eq!(screen_for(&walk_up), Some(Screen::Idle { link: Link::Offline, start: Start::Button }));
        let starting = Facts { link: LinkState::Unknown, ..walk_up };
        assert_eq!(screen_for(&starting), Some(Screen::Idle { link: Link::Checking, start: Start::Button }));
        let paused = LinkState::Paused { error: "401".into(), retry_at: 0 };
        let cases = [
            (Facts { camera_missing: true, storage: Some(Problem::StorageFull), ..idle() }, Problem::CameraMissing),
            (Facts { storage: Some(Problem::StorageFull), link: paused.clone(), ..idle() }, Problem::StorageFull),
        ];
        for (f, problem) in cases {
            assert_eq!(screen_for(&f), Some(Screen::Error { problem }), "{f:?}");
        }
        // Held uploads keep the welcome (a walk-up still works, and is kept): a status line.
        let held =
            [(paused, Link::Paused), (LinkState::ClockWrong { skew_secs: 900, at_least: false }, Link::ClockWrong)];
        for (state, link) in held {
            let f = Facts { link: state, start: Start::Button, ..idle() };
            assert_eq!(screen_for(&f), Some(Screen::Idle { link, start: Start::Button }));
        }
    }
}
