//! What the screens say, per language, from TOML files (`config/lang/*.toml`, built in; a
//! directory of files can add or replace languages). Every file must have every key, use only
//! characters the built-in fonts carry, and keep the `{name}` marks of the English text. Three
//! keys describe the file rather than a screen: `language` (its name in itself), `direction`
//! (`"ltr"` or `"rtl"`) and `reviewed` (whether a native speaker has checked it).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::typeset::{self, Setting, Weight};

/// The languages built into the binary.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("en", include_str!("../../config/lang/en.toml")),
    ("fr", include_str!("../../config/lang/fr.toml")),
    ("pt", include_str!("../../config/lang/pt.toml")),
    ("ar", include_str!("../../config/lang/ar.toml")),
    ("sw", include_str!("../../config/lang/sw.toml")),
    ("ha", include_str!("../../config/lang/ha.toml")),
    ("yo", include_str!("../../config/lang/yo.toml")),
    ("ig", include_str!("../../config/lang/ig.toml")),
    ("am", include_str!("../../config/lang/am.toml")),
    ("zu", include_str!("../../config/lang/zu.toml")),
];

/// The built-in language codes, in the order a person cycles through them.
pub fn built_in_codes() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(c, _)| *c)
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TextError {
    #[error("language file {file}: {detail}")]
    Invalid { file: String, detail: String },
    #[error("language {0:?} is not available (built in: en, fr, pt, ar, sw, ha, yo, ig, am, zu; add {0}.toml to [display] lang_dir)")]
    Unknown(String),
}

/// One language's texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Texts {
    pub code: String,
    /// Right-to-left: text is set from the right and layouts are mirrored.
    pub rtl: bool,
    /// A native speaker has checked the file.
    pub reviewed: bool,
    map: BTreeMap<String, String>,
}

/// What [`read`] makes of a file: its texts, (rtl, reviewed), and what is wrong with the rest.
type Read = (BTreeMap<String, String>, bool, Option<bool>, Vec<String>);

/// Splits a parsed file into its texts and its (rtl, reviewed) description; a value of the
/// wrong kind is a problem, and its key is left out (not also reported missing).
fn read(table: toml::Table) -> Read {
    let mut map = BTreeMap::new();
    let (mut rtl, mut reviewed, mut problems) = (false, None, Vec::new());
    for (k, v) in table {
        match (k.as_str(), v) {
            ("direction", toml::Value::String(d)) if d == "ltr" || d == "rtl" => rtl = d == "rtl",
            ("direction", v) => problems.push(format!("direction must be \"ltr\" or \"rtl\", not {v}")),
            ("reviewed", toml::Value::Boolean(b)) => reviewed = Some(b),
            ("reviewed", v) => problems.push(format!("reviewed must be true or false, not {v}")),
            (_, toml::Value::String(s)) => {
                map.insert(k, s);
            }
            (_, v) => {
                problems.push(format!("key {k:?} must be a text in quotes, not {}", v.type_str()));
                map.insert(k, String::new());
            }
        }
    }
    (map, rtl, reviewed, problems)
}

/// Texts of screens that are gone (uploads held now keep the welcome, with a status line): an
/// operator's file written for an earlier version still loads.
const RETIRED_KEYS: [&str; 4] = ["error_clock_title", "error_clock_body", "error_paused_title", "error_paused_body"];

/// Texts added since operators may have written their files, each with the older text a file
/// without it falls back to (a document's hints once said what the selfie's say).
const ADDED_KEYS: [(&str, &str); 6] = [
    ("hint_card_closer", "hint_closer"),
    ("hint_card_back", "hint_back"),
    ("hint_card_centre", "hint_centre"),
    ("consent_selfie", "consent_body"),
    ("error_service_title", "error_save_title"),
    ("error_service_body", "error_camera_body"),
];

fn marks(s: &str) -> Vec<&str> {
    s.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(m, _)| m)).collect()
}

impl Texts {
    /// Parses and checks one language file against the English reference.
    pub fn parse(code: &str, toml_text: &str, file: &str) -> Result<Texts, TextError> {
        let bad = |detail: String| TextError::Invalid { file: file.into(), detail };
        let table: toml::Table = toml::from_str(toml_text).map_err(|e| bad(e.to_string()))?;
        let (mut map, rtl, reviewed, mut problems) = read(table);
        for (added, older) in ADDED_KEYS {
            if let (false, Some(t)) = (map.contains_key(added), map.get(older).cloned()) {
                map.insert(added.into(), t);
            }
        }
        // Every problem of the file at once: a translator fixes them in one pass, not one a run.
        if reviewed.is_none() {
            problems.push("add reviewed = true or false: whether a native speaker has checked this file".into());
        }
        if code != "en" {
            let en = Texts::english();
            for (k, v) in &en.map {
                let Some(t) = map.get(k) else {
                    problems.push(format!("key {k:?} is missing"));
                    continue;
                };
                let (mut a, mut b) = (marks(v), marks(t));
                a.sort();
                b.sort();
                // (Empty: a value that was not a text, said above.)
                if a != b && !t.is_empty() {
                    problems.push(format!("key {k:?} must use the marks {a:?}, not {b:?}"));
                }
            }
            for k in map.keys().filter(|k| !en.map.contains_key(*k) && !RETIRED_KEYS.contains(&k.as_str())) {
                problems.push(format!("key {k:?} is not a known text"));
            }
        }
        for (k, v) in &map {
            if let Some(c) =
                v.chars().find(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
            {
                problems.push(format!(
                    "key {k:?}: U+{:04X} is a control or bidi override character; write the text without it",
                    c as u32
                ));
                continue;
            }
            let missing = typeset::uncovered(v, Weight::Regular).or_else(|| typeset::uncovered(v, Weight::Bold));
            if let Some(c) = missing {
                problems.push(format!(
                    "key {k:?}: the built-in fonts have no glyph for {c:?} (U+{:04X}); they cover Latin, Ethiopic and Arabic script",
                    c as u32
                ));
            }
        }
        match problems.len() {
            0 => {}
            1 => return Err(bad(problems.remove(0))),
            n => return Err(bad(format!("{n} problems: {}", problems.join("; ")))),
        }
        Ok(Texts { code: code.into(), rtl, reviewed: reviewed.unwrap_or(false), map })
    }

    pub fn english() -> Texts {
        Texts::parse("en", BUILT_IN[0].1, "config/lang/en.toml").expect("the built-in English file is valid")
    }

    /// The layout settings for this language's text.
    pub fn setting(&self) -> Setting<'_> {
        Setting { lang: &self.code, rtl: self.rtl }
    }

    /// A built-in language, or one from `dir/<code>.toml` (which wins when both exist).
    pub fn load(code: &str, dir: Option<&Path>) -> Result<Arc<Texts>, TextError> {
        if let Some(d) = dir {
            let p = d.join(format!("{code}.toml"));
            match std::fs::read_to_string(&p) {
                Ok(s) => return Texts::parse(code, &s, &p.display().to_string()).map(Arc::new),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // An operator's file that cannot be read must not quietly give way to the
                // built-in text it was written to replace.
                Err(e) => {
                    return Err(TextError::Invalid {
                        file: p.display().to_string(),
                        detail: format!("cannot read it ({e}); check it is a UTF-8 text file the service may read"),
                    })
                }
            }
        }
        let (_, s) = BUILT_IN.iter().find(|(c, _)| *c == code).ok_or_else(|| TextError::Unknown(code.into()))?;
        Texts::parse(code, s, &format!("config/lang/{code}.toml")).map(Arc::new)
    }

    /// The texts for a language tag as a host application's platform writes it ("fr-FR",
    /// "FR", "pt_BR"): the tag itself, then lower-cased, then shorter by a subtag at a time
    /// (RFC 4647's lookup), so "pt-BR" finds an operator's pt-br.toml, else pt.
    pub fn lookup(tag: &str, dir: Option<&Path>) -> Result<Arc<Texts>, TextError> {
        match Texts::load(tag, dir) {
            Err(TextError::Unknown(_)) => {}
            other => return other,
        }
        let mut candidate = tag.to_ascii_lowercase().replace('_', "-");
        loop {
            if candidate != tag {
                match Texts::load(&candidate, dir) {
                    Err(TextError::Unknown(_)) => {}
                    other => return other,
                }
            }
            match candidate.rfind('-') {
                Some(i) => candidate.truncate(i),
                None => return Err(TextError::Unknown(tag.into())),
            }
        }
    }

    /// The text for `key` with its `{name}` marks filled from `args`.
    pub fn fmt(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.map.get(key).cloned().unwrap_or_else(|| key.to_string());
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    /// Every text of the file as (key, text), marks unfilled.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> String {
        self.fmt(key, &[])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_platforms_language_tag_finds_its_language() {
        for (tag, code) in [("fr-FR", "fr"), ("FR", "fr"), ("pt_BR", "pt"), ("sw-Latn-KE", "sw"), ("en", "en")] {
            assert_eq!(super::Texts::lookup(tag, None).unwrap().code, code, "{tag}");
        }
        let e = super::Texts::lookup("xx-YY", None).unwrap_err().to_string();
        assert!(e.contains("\"xx-YY\" is not available"), "{e}");
    }

    use super::*;

    #[test]
    fn every_built_in_language_is_complete_and_drawable() {
        for (code, _) in BUILT_IN {
            let t = Texts::load(code, None).unwrap();
            assert_eq!(t.map.len(), Texts::english().map.len(), "{code}");
            assert_eq!(t.rtl, *code == "ar", "{code}");
        }
        assert_eq!(BUILT_IN.len(), 10);
        assert_eq!(Texts::load("fr", None).unwrap().fmt("progress", &[("done", "3"), ("total", "8")]), "3 sur 8");
        assert!(Texts::english().reviewed && !Texts::load("yo", None).unwrap().reviewed);
    }

    #[test]
    fn bad_language_files_name_the_problem() {
        let en = BUILT_IN[0].1;
        // A file from an earlier version, with the texts of a retired screen, still loads.
        let older = en.replace("welcome_title =", "error_paused_title = \"Uploads paused\"\nwelcome_title =");
        assert!(older != en && Texts::parse("xx", &older, "xx.toml").is_ok());
        // One without the card's own hints says the selfie's, as that version did.
        let uncarded: String = en.lines().filter(|l| !l.starts_with("hint_card_")).map(|l| format!("{l}\n")).collect();
        let t = Texts::parse("xx", &uncarded, "xx.toml").unwrap();
        assert!(uncarded.len() < en.len() && t.get("hint_card_closer") == t.get("hint_closer"));
        let missing = en.replace("welcome_title = \"Welcome\"\n", "");
        assert!(Texts::parse("xx", &missing, "xx.toml").unwrap_err().to_string().contains("welcome_title"));
        let glyph = en.replace("\"Welcome\"", "\"Karibu \u{263A}\"");
        assert!(Texts::parse("xx", &glyph, "xx.toml").unwrap_err().to_string().contains("U+263A"));
        let bidi = en.replace("\"Welcome\"", "\"Wel\u{202E}come\"");
        assert!(Texts::parse("xx", &bidi, "xx.toml").unwrap_err().to_string().contains("U+202E"));
        let review = en.replace("reviewed = true\n", "");
        assert!(Texts::parse("xx", &review, "xx.toml").unwrap_err().to_string().contains("reviewed"));
        let dir = en.replace("direction = \"ltr\"", "direction = \"up\"");
        assert!(Texts::parse("xx", &dir, "xx.toml").unwrap_err().to_string().contains("direction"));
        let mark = en.replace("{n} photos", "{count} photos");
        assert!(Texts::parse("xx", &mark, "xx.toml").unwrap_err().to_string().contains("marks"));
        assert_eq!(Texts::load("zz", None).unwrap_err(), TextError::Unknown("zz".into()));
        // Every problem at once, for a translator to fix in one pass.
        let many =
            missing.replace("saved_body = ", "saved_bodyy = ").replace("\"Uploading\"", "\"Uploading \u{1F600}\"");
        let e = Texts::parse("xx", &many, "xx.toml").unwrap_err().to_string();
        for part in ["4 problems", "welcome_title", "\"saved_body\" is missing", "saved_bodyy", "U+1F600"] {
            assert!(e.contains(part), "{part} in {e}");
        }
        // A value of the wrong kind hides nothing else either, and is said once.
        let kinds =
            many.replace("direction = \"ltr\"", "direction = \"ttb\"").replace("review_body = ", "review_body = 5 #");
        let e = Texts::parse("xx", &kinds, "xx.toml").unwrap_err().to_string();
        for part in ["6 problems", "direction", "\"review_body\" must be a text", "U+1F600"] {
            assert!(e.contains(part), "{part} in {e}");
        }
        assert_eq!(e.matches("review_body").count(), 1, "{e}");
    }
}
