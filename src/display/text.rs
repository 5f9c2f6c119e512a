//! What the screens say, per language, from TOML files (`config/lang/*.toml`, built in; a
//! directory of files can add or replace languages). Every file must have every key, use only
//! characters the fonts carry (ISO 8859-1), and keep the `{name}` marks of the English text.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The languages built into the binary.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("en", include_str!("../../config/lang/en.toml")),
    ("fr", include_str!("../../config/lang/fr.toml")),
    ("sw", include_str!("../../config/lang/sw.toml")),
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TextError {
    #[error("language file {file}: {detail}")]
    Invalid { file: String, detail: String },
    #[error("language {0:?} is not available (built in: en, fr, sw; add config/lang/{0}.toml)")]
    Unknown(String),
}

/// One language's texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Texts {
    pub code: String,
    map: BTreeMap<String, String>,
}

/// True for the characters the ISO 8859-1 fonts draw.
pub fn drawable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0xFF)
}

fn marks(s: &str) -> Vec<&str> {
    s.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(m, _)| m)).collect()
}

impl Texts {
    /// Parses and checks one language file against the English reference.
    pub fn parse(code: &str, toml_text: &str, file: &str) -> Result<Texts, TextError> {
        let bad = |detail: String| TextError::Invalid { file: file.into(), detail };
        let map: BTreeMap<String, String> = toml::from_str(toml_text).map_err(|e| bad(e.to_string()))?;
        if code != "en" {
            let en = Texts::english();
            for (k, v) in &en.map {
                let Some(t) = map.get(k) else { return Err(bad(format!("key {k:?} is missing"))) };
                let (mut a, mut b) = (marks(v), marks(t));
                a.sort();
                b.sort();
                if a != b {
                    return Err(bad(format!("key {k:?} must use the marks {a:?}, not {b:?}")));
                }
            }
            if let Some(k) = map.keys().find(|k| !en.map.contains_key(*k)) {
                return Err(bad(format!("key {k:?} is not a known text")));
            }
        }
        for (k, v) in &map {
            if let Some(c) = v.chars().find(|c| !drawable(*c)) {
                return Err(bad(format!("key {k:?}: the fonts have no glyph for {c:?} (U+{:04X})", c as u32)));
            }
        }
        Ok(Texts { code: code.into(), map })
    }

    pub fn english() -> Texts {
        let map = toml::from_str(BUILT_IN[0].1).expect("the built-in English file parses");
        Texts { code: "en".into(), map }
    }

    /// A built-in language, or one from `dir/<code>.toml` (which wins when both exist).
    pub fn load(code: &str, dir: Option<&Path>) -> Result<Arc<Texts>, TextError> {
        if let Some(d) = dir {
            let p = d.join(format!("{code}.toml"));
            if let Ok(s) = std::fs::read_to_string(&p) {
                return Texts::parse(code, &s, &p.display().to_string()).map(Arc::new);
            }
        }
        let (_, s) = BUILT_IN.iter().find(|(c, _)| *c == code).ok_or_else(|| TextError::Unknown(code.into()))?;
        Texts::parse(code, s, &format!("config/lang/{code}.toml")).map(Arc::new)
    }

    /// The text for `key` with its `{name}` marks filled from `args`.
    pub fn fmt(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.map.get(key).cloned().unwrap_or_else(|| key.to_string());
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    pub fn get(&self, key: &str) -> String {
        self.fmt(key, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_language_is_complete_and_drawable() {
        for (code, _) in BUILT_IN {
            let t = Texts::load(code, None).unwrap();
            assert_eq!(t.map.len(), Texts::english().map.len(), "{code}");
        }
        assert_eq!(Texts::load("fr", None).unwrap().fmt("progress", &[("done", "3"), ("total", "8")]), "3 sur 8");
    }

    #[test]
    fn bad_language_files_name_the_problem() {
        let en = BUILT_IN[0].1;
        let missing = en.replace("welcome_title = \"Welcome\"\n", "");
        assert!(Texts::parse("xx", &missing, "xx.toml").unwrap_err().to_string().contains("welcome_title"));
        let glyph = en.replace("\"Welcome\"", "\"Karibu \u{263A}\"");
        assert!(Texts::parse("xx", &glyph, "xx.toml").unwrap_err().to_string().contains("U+263A"));
        let mark = en.replace("{n} photos", "{count} photos");
        assert!(Texts::parse("xx", &mark, "xx.toml").unwrap_err().to_string().contains("marks"));
        assert_eq!(Texts::load("zz", None).unwrap_err(), TextError::Unknown("zz".into()));
    }
}
