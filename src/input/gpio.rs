//! A push button on a GPIO line, read through the kernel's GPIO character device
//! (`/dev/gpiochipN`) with linux-embedded-hal's `CdevPin`. A thread samples the line every
//! 5 ms and sends debounced events; it ends when the receiver is dropped.

use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use embedded_hal::digital::InputPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;

use super::{Debounce, Event};

#[derive(Debug, thiserror::Error)]
#[error("button on {chip} line {line}: {detail}; check [input] chip/line and that the service user is in group gpio")]
pub struct GpioError {
    pub chip: String,
    pub line: u32,
    pub detail: String,
}

/// Where the button is and how it is wired.
#[derive(Debug, Clone)]
pub struct ButtonSettings {
    pub chip: String,
    pub line: u32,
    /// Pressed reads low (a button to ground with a pull-up, the usual wiring).
    pub active_low: bool,
    pub settle: Duration,
    pub hold: Duration,
}

/// The label of whoever holds the line (the agent requests it as "kiosk-agent"), if anyone.
pub fn holder(chip: &str, line: u32) -> Option<String> {
    let info = Chip::new(chip).ok()?.get_line(line).ok()?.info().ok()?;
    info.consumer().map(str::to_owned)
}

/// Requests the line as an input and starts the sampling thread.
pub fn watch(s: &ButtonSettings) -> Result<Receiver<Event>, GpioError> {
    let err = |e: &dyn std::fmt::Display| GpioError { chip: s.chip.clone(), line: s.line, detail: e.to_string() };
    let mut chip = Chip::new(&s.chip).map_err(|e| err(&e))?;
    let line = chip.get_line(s.line).map_err(|e| err(&e))?;
    // Requested without ACTIVE_LOW: CdevPin reports the physical level either way (it undoes the
    // kernel's inversion), so the wiring is applied here, once.
    let handle = line.request(LineRequestFlags::INPUT, 0, "kiosk-agent").map_err(|e| err(&e))?;
    let active_low = s.active_low;
    let mut pin = CdevPin::new(handle).map_err(|e| err(&e))?;
    let (tx, rx) = channel();
    let mut debounce = Debounce::new(s.settle, s.hold);
    let name = format!("{} line {}", s.chip, s.line);
    std::thread::Builder::new()
        .name("button".into())
        .spawn(move || {
            let start = Instant::now();
            loop {
                match pin.is_high().map(|high| high != active_low) {
                    Ok(down) => {
                        if let Some(ev) = debounce.sample(down, start.elapsed()) {
                            if tx.send(ev).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        crate::log::warn(&format!("button {name}: {e:?}; no more button input"), &[]);
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .map_err(|e| err(&e))?;
    Ok(rx)
}
