//! The kiosk's clocks, read at the edges and handed to the pure cores as inputs.
//!
//! Wall time (`CLOCK_REALTIME`) is evidence, not authority: a Pi without an RTC boots with a
//! stale date, and an operator or NTP can move it by days. Boot time (`CLOCK_BOOTTIME`) only
//! moves forward within one boot (suspend included), so intervals measured on it cannot jump.
//! The queue decides nothing by wall time until a server has confirmed it (see
//! `queue::Queue::confirm_clock`), and measures ages within a boot on boot time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A point on one boot's monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootStamp {
    /// `/proc/sys/kernel/random/boot_id`: a new value every boot.
    pub boot_id: String,
    /// Milliseconds of `CLOCK_BOOTTIME`.
    pub ms: i64,
}

impl BootStamp {
    /// Milliseconds from `earlier` to `self`, when both are on the same boot.
    pub fn since(&self, earlier: &BootStamp) -> Option<i64> {
        (self.boot_id == earlier.boot_id).then(|| self.ms - earlier.ms)
    }
}

/// Where time comes from: the system, or a test's hand.
pub trait Clock: Send + Sync {
    /// Unix milliseconds by the wall clock (possibly wrong).
    fn wall_ms(&self) -> i64;
    /// The monotonic boot clock.
    fn boot(&self) -> BootStamp;
}

/// The real clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

fn boot_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
    })
    .clone()
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        crate::smileid::timestamp::UnixMillis::now().0
    }

    fn boot(&self) -> BootStamp {
        BootStamp { boot_id: boot_id(), ms: boot_ms() }
    }
}

/// Milliseconds of `CLOCK_BOOTTIME`: for intervals that NTP or an operator setting the clock
/// must not stretch (the watchdog's heartbeat).
pub fn boot_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-parameter for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // time_t and long are 32 bits on armv7: widen on every target.
    #[allow(clippy::useless_conversion)]
    let ms = i64::from(ts.tv_sec) * 1000 + i64::from(ts.tv_nsec) / 1_000_000;
    ms
}

/// A clock moved by hand, for tests: wall and boot time advance together unless the wall
/// clock is set on its own (a clock jump), and a reboot gives a new boot id.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    wall: Arc<AtomicI64>,
    boot: Arc<AtomicI64>,
    boots: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(wall_ms: i64) -> Self {
        let c = ManualClock::default();
        c.wall.store(wall_ms, Ordering::SeqCst);
        c.boot.store(1_000, Ordering::SeqCst);
        c
    }

    /// Real time passes: both clocks move.
    pub fn advance(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
        self.boot.fetch_add(ms, Ordering::SeqCst);
    }

    /// The wall clock is set (NTP, an operator, a dead RTC): only it moves.
    pub fn jump(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
    }

    /// A reboot: a new boot id and the boot clock from zero.
    pub fn reboot(&self) {
        self.boots.fetch_add(1, Ordering::SeqCst);
        self.boot.store(1_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn boot(&self) -> BootStamp {
        BootStamp {
            boot_id: format!("manual-{}", self.boots.load(Ordering::SeqCst)),
            ms: self.boot.load(Ordering::SeqCst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_moves_forward_and_knows_its_boot() {
        let c = SystemClock;
        let (a, b) = (c.boot(), c.boot());
        assert!(!a.boot_id.is_empty());
        assert!(b.since(&a).is_some_and(|d| d >= 0));
        let m = ManualClock::new(10_000);
        let t0 = m.boot();
        m.jump(-86_400_000);
        assert_eq!(m.boot().since(&t0), Some(0), "a wall-clock jump does not move boot time");
        m.reboot();
        assert_eq!(m.boot().since(&t0), None);
    }
}
