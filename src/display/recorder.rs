//! Test double of an SPI panel's bus and D/C pin (feature `sandbox`): records what the panel
//! would receive, for the SPI tests and the display bench. Not in the packaged binary.

use std::sync::{Arc, Mutex};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{ErrorType as SpiErrorType, Operation, SpiDevice};

/// One thing the panel received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A byte with D/C low: a command.
    Command(u8),
    /// Bytes with D/C high: parameters or pixels.
    Data(Vec<u8>),
}

/// Test double of the SPI bus and D/C pin: records what the panel would receive, in order.
#[derive(Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Vec<Sent>>>,
    dc_high: Arc<Mutex<bool>>,
}

impl Recorder {
    pub fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// The D/C pin that goes with this bus.
    pub fn dc(&self) -> RecorderDc {
        RecorderDc(self.dc_high.clone())
    }
}

impl SpiErrorType for Recorder {
    type Error = core::convert::Infallible;
}

impl SpiDevice for Recorder {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Self::Error> {
        let dc = *self.dc_high.lock().unwrap_or_else(|e| e.into_inner());
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        for op in ops {
            if let Operation::Write(bytes) = op {
                if dc {
                    log.push(Sent::Data(bytes.to_vec()));
                } else {
                    log.extend(bytes.iter().map(|b| Sent::Command(*b)));
                }
            }
        }
        Ok(())
    }
}

/// The recorder's D/C pin.
pub struct RecorderDc(Arc<Mutex<bool>>);
impl PinErrorType for RecorderDc {
    type Error = core::convert::Infallible;
}
impl OutputPin for RecorderDc {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }
}

/// A delay that returns at once (the recorder has no timing).
pub struct NoDelay;
impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

/// Renders a transcript as text: one line per command with its parameters, pixel runs summed.
pub fn transcript(sent: &[Sent]) -> String {
    let mut out = String::new();
    for s in sent {
        match s {
            Sent::Command(c) => out.push_str(&format!("\ncmd {c:02x}")),
            Sent::Data(d) if d.len() <= 8 => {
                out.push_str(&d.iter().map(|b| format!(" {b:02x}")).collect::<String>());
            }
            Sent::Data(d) => out.push_str(&format!(" [{} bytes]", d.len())),
        }
    }
    out.trim_start().to_string() + "\n"
}
