//! Whether a laid-out screen can be read: no text cut inside a word, over other text, under a
//! button it does not belong to, or off the panel. Screens shrink long texts to a floor; what
//! still does not fit is reported here, so a translation too long for a panel is found by
//! `check-config` and `display render`, not by a customer.

use std::sync::Arc;

use super::brand::Brand;
use super::canvas::TextBox;
use super::samples;
use super::touch::Target;
use super::{Canvas, Texts};

/// One thing wrong with a screen's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A word wider than its line, cut between its letters.
    Cut { text: String },
    /// Two texts drawn over each other.
    Overlap { text: String, other: String },
    /// A text running under a button (or a button's label out of it).
    UnderButton { text: String },
    /// A text running off the panel.
    OffPanel { text: String },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Cut { text } => write!(f, "a word of \"{text}…\" is too wide for its line and is cut"),
            Fault::Overlap { text, other } => write!(f, "\"{text}…\" is drawn over \"{other}…\""),
            Fault::UnderButton { text } => write!(f, "\"{text}…\" runs into a button"),
            Fault::OffPanel { text } => write!(f, "\"{text}…\" runs off the panel"),
        }
    }
}

/// Rounding in the layout: boxes may touch by this much.
const SLACK: i32 = 1;

fn overlaps(a: (i32, i32, i32, i32), b: (i32, i32, i32, i32)) -> bool {
    let (ax, ay, aw, ah) = a;
    let (bx, by, bw, bh) = b;
    ax + aw - SLACK > bx && bx + bw - SLACK > ax && ay + ah - SLACK > by && by + bh - SLACK > ay
}

fn inside(t: &TextBox, b: &Target) -> bool {
    t.x >= b.x - SLACK && t.y >= b.y - SLACK && t.x + t.w <= b.x + b.w + SLACK && t.y + t.h <= b.y + b.h + SLACK
}

fn rect(t: &TextBox) -> (i32, i32, i32, i32) {
    (t.x, t.y, t.w, t.h)
}

/// The faults of the screen drawn on `c`, each named by its text's beginning.
pub fn faults(c: &Canvas) -> Vec<Fault> {
    let mut out = Vec::new();
    let texts: Vec<&TextBox> = c.texts.iter().filter(|t| !t.excerpt.trim().is_empty()).collect();
    for (i, t) in texts.iter().enumerate() {
        let text = t.excerpt.clone();
        if t.cut {
            out.push(Fault::Cut { text: text.clone() });
        }
        if t.x < -SLACK || t.y < -SLACK || t.x + t.w > c.width as i32 + SLACK || t.y + t.h > c.height as i32 + SLACK {
            out.push(Fault::OffPanel { text: text.clone() });
        }
        for o in &texts[i + 1..] {
            if overlaps(rect(t), rect(o)) {
                out.push(Fault::Overlap { text: text.clone(), other: o.excerpt.clone() });
            }
        }
        if c.targets.iter().any(|b| overlaps(rect(t), (b.x, b.y, b.w, b.h)) && !inside(t, b)) {
            out.push(Fault::UnderButton { text });
        }
    }
    out
}

/// Every screen a person may see ([`samples::every_page`] for `partner`) of `texts` laid out at `size`
/// (and `diagonal`, else the usual panel's) in `brand` (a logo takes room): the screens' names
/// with their faults.
pub fn check(
    texts: &Texts,
    size: (u32, u32),
    diagonal: Option<f32>,
    brand: &Arc<Brand>,
    partner: &str,
) -> Vec<(&'static str, Fault)> {
    let mut out = Vec::new();
    let panel = || {
        let mut c = match diagonal {
            Some(d) => Canvas::for_panel(size.0, size.1, d),
            None => Canvas::new(size.0, size.1),
        };
        c.brand = brand.clone();
        c
    };
    for (name, screen) in samples::every_page(partner, texts, &panel()) {
        let mut c = panel();
        super::screens::render(&screen, texts, &mut c);
        out.extend(faults(&c).into_iter().map(|f| (name, f)));
    }
    out
}

/// [`check`]'s faults as an operator reads them: how many screens, and the first few.
pub fn describe(faults: &[(&str, Fault)]) -> String {
    let mut screens: Vec<&str> = faults.iter().map(|(s, _)| *s).collect();
    screens.dedup();
    let first: Vec<String> = faults.iter().take(4).map(|(s, f)| format!("{s}: {f}")).collect();
    let more = if faults.len() > 4 { format!("; and {} more fault(s)", faults.len() - 4) } else { String::new() };
    format!("{} screen(s) do not fit ({} fault(s)): {}{more}", screens.len(), faults.len(), first.join("; "))
}

/// What `check-config` says of the configured languages on the configured panel (on a
/// framebuffer, whose size only the driver knows, the sizes layouts are made for): one line per
/// language and size that does not fit. The config was checked: what cannot load is skipped.
pub fn check_config(d: &crate::config::DisplayConfig, partner: &str) -> Vec<String> {
    let sizes = match d.backend {
        crate::config::DisplayBackend::Framebuffer => samples::SIZES.to_vec(),
        _ => vec![(d.width, d.height)],
    };
    let Ok(brand) = d.brand().map(Arc::new) else { return Vec::new() };
    let mut out = Vec::new();
    for lang in d.offered() {
        let Ok(texts) = Texts::load(lang, d.lang_dir.as_deref()) else { continue };
        for (w, h) in &sizes {
            let faults = check(&texts, (*w, *h), d.diagonal_inches, &brand, partner);
            if !faults.is_empty() {
                // The preview as the service would show it: the same files, size and diagonal.
                let mut preview =
                    format!("kiosk-agent display render --language {lang} --size {w}x{h} --partner {partner:?}");
                if let Some(dir) = &d.lang_dir {
                    preview += &format!(" --lang-dir {}", dir.display());
                }
                if let Some(inches) = d.diagonal_inches {
                    preview += &format!(" --diagonal {inches}");
                }
                let own = d.lang_dir.as_ref().is_some_and(|dir| dir.join(format!("{lang}.toml")).is_file());
                // The texts fit with a short name: it is the partner's that does not.
                let name = check(&texts, (*w, *h), d.diagonal_inches, &brand, samples::EXAMPLE_PARTNER).is_empty();
                let fix = if name {
                    "the partner's name is too long for the consent on this panel: give [smileid] partner_name a shorter form of it"
                } else if own {
                    "shorten those texts in the language file"
                } else {
                    "the built-in texts do not fit a panel this small: check that diagonal_inches is the panel's, or override the texts named in a language file in lang_dir"
                };
                out.push(format!(
                    "language {lang} on a {w}x{h} panel: {}; {fix}; see where with `{preview} --out DIR`",
                    describe(&faults)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::display::text::{built_in_codes, BUILT_IN};

    #[test]
    fn every_built_in_language_fits_every_panel_layouts_are_made_for() {
        let mut bad = Vec::new();
        for lang in built_in_codes() {
            let t = Texts::load(lang, None).unwrap();
            for size in samples::SIZES {
                for (screen, f) in check(&t, size, None, &Brand::builtin(), samples::EXAMPLE_PARTNER) {
                    bad.push(format!("{lang} {}x{} {screen}: {f}", size.0, size.1));
                }
            }
        }
        assert!(bad.is_empty(), "{} faults:\n{}", bad.len(), bad.join("\n"));
    }

    #[test]
    fn the_partners_own_name_is_laid_out_not_the_examples() {
        let t = Texts::load("fr", None).unwrap();
        let small = (240, 320);
        assert!(check(&t, small, None, &Brand::builtin(), "Banque Régionale de l'Ouest").is_empty());
        let long = "Banque Régionale de Solidarité de l'Afrique de l'Ouest Donaudampfschifffahrtsgesellschaft";
        let faults = check(&t, small, None, &Brand::builtin(), long);
        assert!(faults.iter().any(|(screen, _)| screen.starts_with("consent")), "{faults:?}");
        // check-config says it is the name, not the built-in texts, that does not fit.
        let warnings = check_config(&crate::config::DisplayConfig::default(), long);
        assert!(!warnings.is_empty() && warnings.iter().all(|w| w.contains("[smileid] partner_name")), "{warnings:?}");
    }

    #[test]
    fn a_text_too_long_for_the_panel_is_found() {
        let mut en: toml::Table = toml::from_str(BUILT_IN[0].1).unwrap();
        let long = "Donaudampfschifffahrtsgesellschaftskapitänswitwe ".repeat(30);
        en.insert("consent_body".into(), long.into());
        let t = Texts::parse("en", &toml::to_string(&en).unwrap(), "en.toml").unwrap();
        let faults = check(&t, (320, 240), None, &Brand::builtin(), samples::EXAMPLE_PARTNER);
        assert!(faults.iter().any(|(s, f)| *s == "consent" && matches!(f, Fault::Cut { .. })), "{faults:?}");
        assert!(faults.iter().any(|(s, f)| *s == "consent" && matches!(f, Fault::UnderButton { .. })), "{faults:?}");
    }
}
