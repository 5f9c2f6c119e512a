//! What a touch on the panel means. Screens leave a [`Target`] on the canvas for each button
//! they draw; [`targets`] lays a screen out again (at the size and density it was shown) to
//! find them, and [`hit`] picks the one a tap began and ended on.

use std::sync::Arc;

use super::{screens, Canvas, Screen, Texts};
use crate::input::evdev::Point;

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Consent: agree, or not.
    Yes,
    No,
    /// A document photo: keep it, or take it again.
    Keep,
    Retake,
    /// Idle: start a verification.
    Start,
    /// Consent: the whole text (or its next page), back from it, and its page before.
    More,
    Back,
    PreviousPage,
    /// Idle: the language before or after the one shown, among those offered.
    PreviousLanguage,
    NextLanguage,
}

/// A button's box on the panel, in pixels, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    pub action: Action,
}

impl Target {
    pub fn contains(&self, p: Point) -> bool {
        p.x >= self.x && p.y >= self.y && p.x < self.x + self.w && p.y < self.y + self.h
    }
}

/// What is on the panel, enough to lay it out again: the screen (without its camera picture,
/// which moves no button), the language, the panel's pixels and density.
#[derive(Debug, Clone)]
pub struct Shown {
    pub screen: Screen,
    pub texts: Arc<Texts>,
    pub size: (u32, u32),
    pub px_per_mm: f32,
    /// A logo moves the welcome screen's words and buttons.
    pub brand: Arc<super::brand::Brand>,
}

/// The screen without its camera picture.
pub fn without_picture(screen: &Screen) -> Screen {
    match screen {
        &Screen::Face { step, hint, done, total, .. } => Screen::Face { step, hint, done, total, preview: None },
        &Screen::Document { side, hint, review, legend, .. } => {
            Screen::Document { side, hint, review, legend, preview: None }
        }
        other => other.clone(),
    }
}

/// The buttons of a shown screen.
pub fn targets(shown: &Shown) -> Vec<Target> {
    let (w, h) = shown.size;
    let mut c = Canvas::new(w, h);
    c.px_per_mm = shown.px_per_mm;
    c.brand = shown.brand.clone();
    screens::render(&shown.screen, &shown.texts, &mut c);
    c.targets
}

/// The action of the button a tap began and ended on; none when it slid off or missed.
pub fn hit(targets: &[Target], down: Point, up: Point) -> Option<Action> {
    targets.iter().find(|t| t.contains(down) && t.contains(up)).map(|t| t.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centre(t: &Target) -> Point {
        Point { x: t.x + t.w / 2, y: t.y + t.h / 2 }
    }

    #[test]
    fn consent_buttons_are_found_where_they_are_drawn_in_both_directions() {
        for code in ["en", "ar"] {
            let texts = Texts::load(code, None).unwrap();
            for size in [(800, 480), (240, 320)] {
                let shown = Shown {
                    screen: Screen::Consent {
                        partner: "Bank".into(),
                        more: super::super::screens::More::Link,
                        legend: screens::Legend::None,
                        face_only: false,
                    },
                    texts: texts.clone(),
                    size,
                    px_per_mm: Canvas::new(size.0, size.1).px_per_mm,
                    brand: crate::display::brand::Brand::builtin(),
                };
                let t = targets(&shown);
                let yes = t.iter().find(|t| t.action == Action::Yes).expect("a yes button");
                let no = t.iter().find(|t| t.action == Action::No).expect("a no button");
                assert_eq!(hit(&t, centre(yes), centre(yes)), Some(Action::Yes), "{code} {size:?}");
                assert_eq!(hit(&t, centre(no), centre(no)), Some(Action::No));
                assert_eq!(hit(&t, centre(yes), centre(no)), None, "slid from one to the other");
                assert_eq!(hit(&t, Point { x: 0, y: 0 }, Point { x: 0, y: 0 }), None);
                // The agreeing button is on the reading side when they sit side by side.
                if yes.y == no.y {
                    assert_eq!(yes.x < no.x, code == "en", "{code} {size:?}");
                }
                // At least the 9 mm touch target.
                assert!(yes.h as f32 >= 9.0 * shown.px_per_mm - 1.0, "{code} {size:?} {}", yes.h);
            }
        }
    }

    #[test]
    fn screens_without_choices_have_no_targets() {
        let shown = Shown {
            screen: Screen::Saved { online: false },
            texts: crate::display::english(),
            size: (800, 480),
            px_per_mm: 5.0,
            brand: crate::display::brand::Brand::builtin(),
        };
        assert!(targets(&shown).is_empty());
    }
}
