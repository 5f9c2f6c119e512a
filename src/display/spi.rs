//! Small SPI panels (ST7789, ILI9341) through mipidsi, over linux-embedded-hal's spidev and
//! GPIO character-device pins. Frames are converted to RGB565 and only what changed since the
//! last frame is sent: the panel is cut into bands of rows and each band that changed is sent
//! as one window spanning its changed columns. Pixel data goes out in writes of at most
//! [`CHUNK`] bytes (spidev's default buffer limit).
//!
//! [`Recorder`] is a test double of the SPI bus and the D/C pin that records what a panel would
//! receive as a transcript; tests and `benches/display.rs` use it (no SPI panel runs here).

use std::sync::Arc;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::SpiDevice;
use mipidsi::interface::SpiInterface;
use mipidsi::models::{ILI9341Rgb565, ST7789};
use mipidsi::options::{ColorInversion, Orientation, Rotation};

use super::fb::rgb565;
use super::{Canvas, Display, DisplayError, Texts};

/// Largest single SPI write.
pub const CHUNK: usize = 4096;
/// Rows per band when looking for changes.
const BAND: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    St7789,
    Ili9341,
}

/// An output pin that is not wired (panels without a reset line).
pub struct NoPin;
impl PinErrorType for NoPin {
    type Error = core::convert::Infallible;
}
impl OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

type Iface<SPI, DC> = SpiInterface<'static, SPI, DC>;

enum Driver<SPI: SpiDevice, DC: OutputPin, RST: OutputPin> {
    St7789(mipidsi::Display<Iface<SPI, DC>, ST7789, RST>),
    Ili9341(mipidsi::Display<Iface<SPI, DC>, ILI9341Rgb565, RST>),
}

/// Bytes and windows sent, for the bench and the doctor.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SpiStats {
    pub frames: u64,
    pub windows: u64,
    pub pixel_bytes: u64,
}

pub struct SpiPanel<SPI: SpiDevice, DC: OutputPin, RST: OutputPin> {
    driver: Driver<SPI, DC, RST>,
    width: u32,
    height: u32,
    last: Option<Vec<u16>>,
    texts: Arc<Texts>,
    pub stats: SpiStats,
}

fn spi_err(detail: impl std::fmt::Debug) -> DisplayError {
    DisplayError::Device { device: "SPI panel".into(), detail: format!("{detail:?}") }
}

impl<SPI: SpiDevice, DC: OutputPin, RST: OutputPin> SpiPanel<SPI, DC, RST> {
    /// Resets and initialises the panel (16-bit colour, portrait `width`×`height`).
    pub fn new(
        model: Model,
        spi: SPI,
        dc: DC,
        rst: RST,
        (width, height): (u32, u32),
        delay: &mut impl DelayNs,
    ) -> Result<Self, DisplayError> {
        // One buffer per panel, alive as long as the process: the interface borrows it for 'static.
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; CHUNK].into_boxed_slice());
        let di = SpiInterface::new(spi, dc, buffer);
        // The controllers are portrait natively: a landscape panel is the same panel turned 90°.
        let landscape = width > height;
        let (w, h) = if landscape { (height as u16, width as u16) } else { (width as u16, height as u16) };
        let orientation = if landscape { Orientation::new().rotate(Rotation::Deg90) } else { Orientation::new() };
        let driver = match model {
            Model::St7789 => Driver::St7789(
                mipidsi::Builder::new(ST7789, di)
                    .display_size(w, h)
                    .orientation(orientation)
                    .invert_colors(ColorInversion::Inverted)
                    .reset_pin(rst)
                    .init(delay)
                    .map_err(spi_err)?,
            ),
            Model::Ili9341 => Driver::Ili9341(
                mipidsi::Builder::new(ILI9341Rgb565, di)
                    .display_size(w, h)
                    .orientation(orientation)
                    .reset_pin(rst)
                    .init(delay)
                    .map_err(spi_err)?,
            ),
        };
        Ok(SpiPanel { driver, width, height, last: None, texts: super::english(), stats: SpiStats::default() })
    }

    fn window(&mut self, (x0, y0, x1, y1): (usize, usize, usize, usize), px: &[u16]) -> Result<(), DisplayError> {
        let w = self.width as usize;
        let colors = (y0..=y1)
            .flat_map(|y| px[y * w + x0..=y * w + x1].iter().copied())
            .map(|v| embedded_graphics::pixelcolor::Rgb565::from(embedded_graphics::pixelcolor::raw::RawU16::new(v)));
        let (a, b, c, d) = (x0 as u16, y0 as u16, x1 as u16, y1 as u16);
        match &mut self.driver {
            Driver::St7789(p) => p.set_pixels(a, b, c, d, colors).map_err(spi_err)?,
            Driver::Ili9341(p) => p.set_pixels(a, b, c, d, colors).map_err(spi_err)?,
        }
        self.stats.windows += 1;
        self.stats.pixel_bytes += ((x1 - x0 + 1) * (y1 - y0 + 1) * 2) as u64;
        Ok(())
    }
}

/// Windows covering what differs between `old` and `new` (row bands, changed columns only).
pub fn changed_windows(old: Option<&[u16]>, new: &[u16], width: usize) -> Vec<(usize, usize, usize, usize)> {
    let height = new.len() / width;
    let Some(old) = old else { return vec![(0, 0, width - 1, height - 1)] };
    let mut out = Vec::new();
    for y0 in (0..height).step_by(BAND) {
        let y1 = (y0 + BAND).min(height) - 1;
        let (mut lo, mut hi) = (usize::MAX, 0);
        let (mut top, mut bottom) = (usize::MAX, 0);
        for y in y0..=y1 {
            let (a, b) = (&old[y * width..][..width], &new[y * width..][..width]);
            if let Some(first) = a.iter().zip(b).position(|(p, q)| p != q) {
                let last = width - 1 - a.iter().rev().zip(b.iter().rev()).position(|(p, q)| p != q).unwrap_or(0);
                lo = lo.min(first);
                hi = hi.max(last);
                top = top.min(y);
                bottom = y;
            }
        }
        if lo != usize::MAX {
            out.push((lo, top, hi, bottom));
        }
    }
    out
}

impl<SPI, DC, RST> Display for SpiPanel<SPI, DC, RST>
where
    SPI: SpiDevice + Send,
    DC: OutputPin + Send,
    RST: OutputPin + Send,
{
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn texts(&self) -> Arc<Texts> {
        self.texts.clone()
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        self.texts = texts;
    }

    fn present(&mut self, c: &Canvas, _name: &str) -> Result<(), DisplayError> {
        let px: Vec<u16> = c.rgb.chunks_exact(3).map(|p| rgb565(p[0], p[1], p[2])).collect();
        for win in changed_windows(self.last.as_deref(), &px, self.width as usize) {
            self.window(win, &px)?;
        }
        self.stats.frames += 1;
        self.last = Some(px);
        Ok(())
    }
}

/// The real panel: `/dev/spidevB.C` at `hz`, D/C and optional reset on GPIO lines of `chip`.
pub fn open(
    model: Model,
    spidev: &str,
    hz: u32,
    chip: &str,
    dc_line: u32,
    rst_line: Option<u32>,
    size: (u32, u32),
) -> Result<Box<dyn Display + Send>, DisplayError> {
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};
    let dev = |d: &str, e: &dyn std::fmt::Display| DisplayError::Device { device: d.into(), detail: e.to_string() };
    crate::input::gpio::char_device(spidev, "an SPI device (/dev/spidevB.C)").map_err(|e| dev(spidev, &e))?;
    crate::input::gpio::char_device(chip, "a GPIO chip (/dev/gpiochipN)").map_err(|e| dev(chip, &e))?;
    let mut spi = SpidevDevice::open(spidev).map_err(|e| dev(spidev, &e))?;
    let opts = SpidevOptions::new().bits_per_word(8).max_speed_hz(hz).mode(SpiModeFlags::SPI_MODE_0).build();
    spi.configure(&opts).map_err(|e| dev(spidev, &e))?;
    let mut gpio = Chip::new(chip).map_err(|e| dev(chip, &e))?;
    let mut out_pin = |line: u32| -> Result<CdevPin, DisplayError> {
        let h = gpio
            .get_line(line)
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, 1, "kiosk-agent"))
            .map_err(|e| dev(chip, &e))?;
        CdevPin::new(h).map_err(|e| dev(chip, &e))
    };
    let dc = out_pin(dc_line)?;
    let mut delay = Delay;
    Ok(match rst_line {
        Some(l) => Box::new(SpiPanel::new(model, spi, dc, out_pin(l)?, size, &mut delay)?),
        None => Box::new(SpiPanel::new(model, spi, dc, NoPin, size, &mut delay)?),
    })
}

#[cfg(feature = "sandbox")]
pub use super::recorder::{transcript, NoDelay, Recorder, RecorderDc, Sent};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_frames_send_nothing_and_changes_send_their_band() {
        let w = 40;
        let a = vec![0u16; w * 40];
        assert_eq!(changed_windows(None, &a, w), vec![(0, 0, 39, 39)]);
        assert!(changed_windows(Some(&a), &a, w).is_empty());
        let mut b = a.clone();
        b[20 * w + 5] = 1;
        b[22 * w + 30] = 1;
        assert_eq!(changed_windows(Some(&a), &b, w), vec![(5, 20, 30, 22)]);
    }
}
