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
    let info = open_chip(chip).ok()?.get_line(line).ok()?.info().ok()?;
    info.consumer().map(str::to_owned)
}

/// The GPIO chip at `path`.
fn open_chip(path: &str) -> Result<Chip, String> {
    char_device(path, "a GPIO chip (/dev/gpiochipN)")?;
    Chip::new(path).map_err(|e| e.to_string())
}

/// That `path` is a character device (`what`, for the message), before it is opened: opening a
/// FIFO put there by mistake would wait for a writer for ever, and the button, the panel or
/// `doctor` with it.
pub(crate) fn char_device(path: &str, what: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?.file_type();
    if kind.is_char_device() {
        return Ok(());
    }
    let is = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "not a device"
    };
    Err(format!("{path} is {is}, not {what}"))
}

/// The line requested as an input.
fn open(s: &ButtonSettings) -> Result<CdevPin, GpioError> {
    let err = |e: &dyn std::fmt::Display| GpioError { chip: s.chip.clone(), line: s.line, detail: e.to_string() };
    let mut chip = open_chip(&s.chip).map_err(|e| err(&e))?;
    let line = chip.get_line(s.line).map_err(|e| err(&e))?;
    // Requested without ACTIVE_LOW: CdevPin reports the physical level either way (it undoes the
    // kernel's inversion), so the wiring is applied where it is sampled, once.
    let handle = line.request(LineRequestFlags::INPUT, 0, "kiosk-agent").map_err(|e| err(&e))?;
    CdevPin::new(handle).map_err(|e| err(&e))
}

/// How often a button that could not be read is looked for again.
const AGAIN: Duration = Duration::from_secs(2);

/// For the service: the button's events, read for as long as the receiver lives, and in
/// `present` whether it is read now. A button missing at the start, or failing later (a loose
/// ribbon, the line taken), is said once and read again when it is back; the kiosk runs
/// meanwhile (its screens then offer no button).
pub fn supervise(s: &ButtonSettings, present: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Receiver<Event> {
    use std::sync::atomic::Ordering;
    let (tx, rx) = channel();
    let (s, there) = (s.clone(), present.clone());
    let spawned = std::thread::Builder::new().name("button".into()).spawn(move || {
        let mut said = false;
        loop {
            let mut pin = match open(&s) {
                Ok(p) => p,
                Err(e) => {
                    if !std::mem::replace(&mut said, true) {
                        crate::log::warn(
                            &format!("{e}; the kiosk runs without it, and reads it as soon as it can"),
                            &[],
                        );
                    }
                    std::thread::sleep(AGAIN);
                    continue;
                }
            };
            if std::mem::replace(&mut said, false) {
                crate::log::info(&format!("button on {} line {} read again", s.chip, s.line), &[]);
            }
            there.store(true, Ordering::Relaxed);
            let Some(failed) = sample(&mut pin, &s, &tx) else { return };
            there.store(false, Ordering::Relaxed);
            said = true;
            crate::log::warn(
                &format!("button on {} line {}: {failed}; read again as soon as it can be", s.chip, s.line),
                &[],
            );
            std::thread::sleep(AGAIN);
        }
    });
    if let Err(e) = spawned {
        crate::log::error(&format!("the button cannot be read: no thread ({e})"), &[]);
    }
    rx
}

/// Samples `pin` every 5 ms and sends its debounced events, until the receiver is gone (`None`)
/// or a read fails (why).
fn sample(pin: &mut CdevPin, s: &ButtonSettings, tx: &std::sync::mpsc::Sender<Event>) -> Option<String> {
    let mut debounce = Debounce::new(s.settle, s.hold);
    let start = Instant::now();
    loop {
        match pin.is_high().map(|high| high != s.active_low) {
            Ok(down) => {
                if let Some(ev) = debounce.sample(down, start.elapsed()) {
                    tx.send(ev).ok()?;
                }
            }
            Err(e) => return Some(format!("{e:?}")),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Requests the line as an input and starts the sampling thread (for a command run by hand: a
/// button that cannot be read is an error).
pub fn watch(s: &ButtonSettings) -> Result<Receiver<Event>, GpioError> {
    let err = |e: &dyn std::fmt::Display| GpioError { chip: s.chip.clone(), line: s.line, detail: e.to_string() };
    let mut pin = open(s)?;
    let (tx, rx) = channel();
    let s = s.clone();
    std::thread::Builder::new()
        .name("button".into())
        .spawn(move || {
            if let Some(why) = sample(&mut pin, &s, &tx) {
                crate::log::warn(&format!("button {} line {}: {why}; no more button input", s.chip, s.line), &[]);
            }
        })
        .map_err(|e| err(&e))?;
    Ok(rx)
}
