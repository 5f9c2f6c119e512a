//! Headless backend: every screen shown becomes `NN-name.png` in a directory. For demos and
//! tests only (the config refuses it on the production environment): the files hold live face
//! previews, so the directory is 0700 and the files 0600.

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
        crate::store::private_dir(&dir)
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
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| err(&e))?;
        // Private, but not fsynced: a screen is not worth a flash write barrier.
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path);
        f.as_mut().map_err(|e| err(e))?.write_all(&png).map_err(|e| err(&e))?;
        self.written.push(path);
        Ok(())
    }
}
