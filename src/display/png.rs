//! Headless backend: every screen shown becomes `NN-name.png` in a directory.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Canvas, Display, DisplayError, Texts};

pub struct PngDisplay {
    dir: PathBuf,
    width: u32,
    height: u32,
    shown: u32,
    texts: Arc<Texts>,
    /// Paths written, in order.
    pub written: Vec<PathBuf>,
}

impl PngDisplay {
    pub fn new(dir: impl Into<PathBuf>, width: u32, height: u32) -> Result<Self, DisplayError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| DisplayError::Write { path: dir.display().to_string(), detail: e.to_string() })?;
        Ok(PngDisplay { dir, width, height, shown: 0, texts: super::english(), written: Vec::new() })
    }
}

impl Display for PngDisplay {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn texts(&self) -> Arc<Texts> {
        self.texts.clone()
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        self.texts = texts;
    }

    fn present(&mut self, c: &Canvas, name: &str) -> Result<(), DisplayError> {
        self.shown += 1;
        let path = self.dir.join(format!("{:02}-{name}.png", self.shown));
        let err =
            |e: &dyn std::fmt::Display| DisplayError::Write { path: path.display().to_string(), detail: e.to_string() };
        let img =
            image::RgbImage::from_raw(c.width, c.height, c.rgb.clone()).ok_or_else(|| err(&"canvas size mismatch"))?;
        img.save_with_format(&path, image::ImageFormat::Png).map_err(|e| err(&e))?;
        self.written.push(path);
        Ok(())
    }
}
