//! Touch panels, keyboards and keypads through evdev (`/dev/input/eventN`).
//!
//! [`Decoder`] is the pure part: the kernel's `input_event` records in, [`Gesture`]s out. A
//! tap is one finger down and up again; it is reported on release with both points, in panel
//! pixels after [`Calibration`], so a target acts only when the finger leaves it where it
//! landed (sliding off cancels, as on a phone). Single-touch panels (`BTN_TOUCH`, `ABS_X/Y`)
//! and multitouch type B (`ABS_MT_SLOT`, tracking ids) are both read; a second finger on the
//! glass makes the touch no tap (a palm, a child's hand). Keys count on the way down, never on
//! auto-repeat; Enter on the way up, as a press or, down as long as the button's hold, a hold.
//! [`watch_all`] reads devices in threads and sends the gestures on a channel,
//! and takes up devices plugged in (or back) later.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Event types and codes from `linux/input-event-codes.h`.
mod code {
    pub const EV_SYN: u16 = 0x00;
    pub const EV_KEY: u16 = 0x01;
    pub const EV_ABS: u16 = 0x03;
    pub const SYN_REPORT: u16 = 0;
    pub const SYN_DROPPED: u16 = 3;
    pub const BTN_TOUCH: u16 = 0x14a;
    pub const ABS_X: u16 = 0x00;
    pub const ABS_Y: u16 = 0x01;
    pub const ABS_MT_SLOT: u16 = 0x2f;
    pub const ABS_MT_POSITION_X: u16 = 0x35;
    pub const ABS_MT_POSITION_Y: u16 = 0x36;
    pub const ABS_MT_TRACKING_ID: u16 = 0x39;
    pub const KEY_ESC: u16 = 1;
    pub const KEY_1: u16 = 2;
    pub const KEY_0: u16 = 11;
    pub const KEY_BACKSPACE: u16 = 14;
    pub const KEY_ENTER: u16 = 28;
    pub const KEY_SPACE: u16 = 57;
    pub const KEY_KP7: u16 = 71;
    pub const KEY_KP8: u16 = 72;
    pub const KEY_KP9: u16 = 73;
    pub const KEY_KP4: u16 = 75;
    pub const KEY_KP5: u16 = 76;
    pub const KEY_KP6: u16 = 77;
    pub const KEY_KP1: u16 = 79;
    pub const KEY_KP2: u16 = 80;
    pub const KEY_KP3: u16 = 81;
    pub const KEY_KP0: u16 = 82;
    pub const KEY_KPENTER: u16 = 96;
    pub const KEY_UP: u16 = 103;
    pub const KEY_LEFT: u16 = 105;
    pub const KEY_RIGHT: u16 = 106;
    pub const KEY_DOWN: u16 = 108;
}

/// A key that means something at the kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Enter, keypad Enter, Space: yes, keep, start.
    Enter,
    /// Esc, Backspace: no, retake, back.
    Back,
    /// Arrows: the previous or next choice (the language at idle).
    Previous,
    Next,
    /// A digit on the keyboard's row or the keypad: the nth choice.
    Digit(u8),
    /// Enter held as long as the button's hold (`input.hold_ms`): no, take again, as the legend
    /// under the buttons says for a kiosk with both. Not merely until it repeats: the kernel
    /// repeats after 250 ms, and a firm, slow press would decline a consent.
    EnterHeld,
}

impl Key {
    fn from_code(c: u16) -> Option<Key> {
        use code::*;
        Some(match c {
            KEY_ENTER | KEY_KPENTER | KEY_SPACE => Key::Enter,
            KEY_ESC | KEY_BACKSPACE => Key::Back,
            KEY_LEFT | KEY_UP => Key::Previous,
            KEY_RIGHT | KEY_DOWN => Key::Next,
            KEY_1..=10 => Key::Digit((c - KEY_1 + 1) as u8),
            KEY_0 | KEY_KP0 => Key::Digit(0),
            KEY_KP1 | KEY_KP2 | KEY_KP3 => Key::Digit((c - KEY_KP1 + 1) as u8),
            KEY_KP4 | KEY_KP5 | KEY_KP6 => Key::Digit((c - KEY_KP4 + 4) as u8),
            KEY_KP7 | KEY_KP8 | KEY_KP9 => Key::Digit((c - KEY_KP7 + 7) as u8),
            _ => return None,
        })
    }
}

/// A point on the panel, in its pixels (origin top left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

/// What a person did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gesture {
    /// One finger down at `down` and up at `up`.
    Tap {
        down: Point,
        up: Point,
    },
    Key(Key),
    /// No person's act: what the devices being read can do changed (the first touch panel or
    /// keyboard read, the last one gone), so the screens offer what can be answered.
    Devices(Caps),
}

/// One axis's raw range as the device reports it (`EVIOCGABS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: i32,
    pub max: i32,
}

/// From the touch controller's numbers to panel pixels: the raw ranges (the device's own, or
/// `[input] touch_calibration`, whose min above max inverts an axis) and the rotation of the
/// glass against the picture, clockwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub x: Range,
    pub y: Range,
    pub rotation: u16,
    /// The panel's pixels (the picture's width and height).
    pub panel: (u32, u32),
}

impl Calibration {
    /// The panel pixel under the raw point, clamped to the panel.
    pub fn map(&self, raw_x: i32, raw_y: i32) -> Point {
        let unit = |v: i32, r: Range| {
            let span = (r.max - r.min) as f32;
            if span == 0.0 {
                0.0
            } else {
                ((v - r.min) as f32 / span).clamp(0.0, 1.0)
            }
        };
        let (u, v) = (unit(raw_x, self.x), unit(raw_y, self.y));
        // The glass turned clockwise by `rotation` against the picture.
        let (u, v) = match self.rotation {
            90 => (1.0 - v, u),
            180 => (1.0 - u, 1.0 - v),
            270 => (v, 1.0 - u),
            _ => (u, v),
        };
        let (w, h) = (self.panel.0.max(1) as f32, self.panel.1.max(1) as f32);
        Point { x: ((u * (w - 1.0)).round() as i32), y: ((v * (h - 1.0)).round() as i32) }
    }
}

/// One finger on the glass, in raw units.
#[derive(Debug, Clone, Copy, Default)]
struct Contact {
    x: i32,
    y: i32,
    active: bool,
}

/// The longest touch that still counts as a tap's worth of slots.
const SLOTS: usize = 10;

/// Kernel events in, gestures out. See the module docs.
#[derive(Debug, Clone)]
pub struct Decoder {
    calibration: Calibration,
    /// The state as of the last `SYN_REPORT`, and the one being built.
    slots: [Contact; SLOTS],
    pending: [Contact; SLOTS],
    slot: usize,
    /// Single-touch devices: `BTN_TOUCH` and `ABS_X/Y`.
    single: Contact,
    single_pending: Contact,
    /// The touch under way: where it landed, and whether a second finger spoilt it.
    touch: Option<(Point, bool)>,
    last: Point,
    /// After `SYN_DROPPED` everything up to the next report is discarded (the kernel's rule).
    dropped: bool,
    /// The device speaks multitouch: its slots are read, its single-touch emulation is not.
    multitouch: bool,
    /// When Enter went down: told as a press or a hold when it comes up.
    enter: Option<Instant>,
    /// Enter down this long is a hold.
    hold: Duration,
}

impl Decoder {
    pub fn new(calibration: Calibration, hold: Duration) -> Self {
        Decoder {
            calibration,
            slots: Default::default(),
            pending: Default::default(),
            slot: 0,
            single: Contact::default(),
            single_pending: Contact::default(),
            touch: None,
            last: Point { x: 0, y: 0 },
            dropped: false,
            multitouch: false,
            enter: None,
            hold,
        }
    }

    /// Feeds one event, read `at`; returns a gesture when one is complete.
    pub fn event(&mut self, kind: u16, code: u16, value: i32, at: Instant) -> Option<Gesture> {
        use code::*;
        if self.dropped {
            if kind == EV_SYN && code == SYN_REPORT {
                self.dropped = false;
                // What was lost may have been Enter's release: its press is no hold now.
                self.enter = None;
                // What was lost may have been a release: the touch under way is no tap.
                self.pending = self.slots;
                self.single_pending = self.single;
                if self.touch.is_some() {
                    self.touch = Some((self.last, true));
                }
            }
            return None;
        }
        match (kind, code) {
            (EV_SYN, SYN_DROPPED) => {
                self.dropped = true;
                None
            }
            (EV_SYN, SYN_REPORT) => self.report(),
            (EV_KEY, BTN_TOUCH) => {
                self.single_pending.active = value != 0;
                None
            }
            // Enter is told on its way up, pressed or held; the other keys on the way down.
            (EV_KEY, c) if Key::from_code(c) == Some(Key::Enter) => match value {
                1 => {
                    self.enter = Some(at);
                    None
                }
                // The kernel's repeats: the hold is timed, not counted.
                2 => None,
                _ => self.enter.take().map(|down| {
                    Gesture::Key(if at.saturating_duration_since(down) >= self.hold {
                        Key::EnterHeld
                    } else {
                        Key::Enter
                    })
                }),
            },
            (EV_KEY, c) if value == 1 => Key::from_code(c).map(Gesture::Key),
            (EV_ABS, ABS_MT_SLOT..=ABS_MT_TRACKING_ID) if !self.multitouch => {
                self.multitouch = true;
                self.event(kind, code, value, at)
            }
            (EV_ABS, ABS_MT_SLOT) => {
                self.slot = (value.max(0) as usize).min(SLOTS - 1);
                None
            }
            (EV_ABS, ABS_MT_TRACKING_ID) => {
                self.pending[self.slot].active = value >= 0;
                None
            }
            (EV_ABS, ABS_MT_POSITION_X) => {
                self.pending[self.slot].x = value;
                None
            }
            (EV_ABS, ABS_MT_POSITION_Y) => {
                self.pending[self.slot].y = value;
                None
            }
            (EV_ABS, ABS_X) => {
                self.single_pending.x = value;
                None
            }
            (EV_ABS, ABS_Y) => {
                self.single_pending.y = value;
                None
            }
            _ => None,
        }
    }

    /// A complete frame: where the fingers are now.
    fn report(&mut self) -> Option<Gesture> {
        self.slots = self.pending;
        self.single = self.single_pending;
        let mt: Vec<&Contact> = self.slots.iter().filter(|c| c.active).collect();
        // A multitouch device reports both kinds; its slots say more.
        let (count, first) = if self.multitouch {
            (mt.len(), mt.first().map(|c| (c.x, c.y)))
        } else {
            (self.single.active as usize, self.single.active.then_some((self.single.x, self.single.y)))
        };
        match (count, self.touch) {
            (0, None) => None,
            (0, Some((down, spoilt))) => {
                self.touch = None;
                (!spoilt).then_some(Gesture::Tap { down, up: self.last })
            }
            (n, touch) => {
                if let Some((x, y)) = first {
                    self.last = self.calibration.map(x, y);
                }
                self.touch = match touch {
                    None => Some((self.last, n > 1)),
                    Some((down, spoilt)) => Some((down, spoilt || n > 1)),
                };
                None
            }
        }
    }
}

/// Bytes of one `struct input_event`: a `timeval` of two longs, then u16 type, u16 code, i32
/// value (24 on 64-bit, 16 on 32-bit ARM, whose kernel ABI keeps 32-bit fields here).
pub const EVENT_BYTES: usize = 2 * std::mem::size_of::<libc::c_ulong>() + 8;

/// When the kernel stamped one event record (its `timeval`; zero from something that is not
/// a device, such as a FIFO).
pub fn stamp(record: &[u8]) -> Duration {
    const L: usize = std::mem::size_of::<libc::c_ulong>();
    let long = |i: usize| {
        let mut b = [0u8; 8];
        b[..L].copy_from_slice(&record[i..i + L]);
        u64::from_ne_bytes(b) as u128
    };
    let micros = long(0) * 1_000_000 + long(L);
    Duration::from_micros(micros.min(u64::MAX as u128) as u64)
}

/// Splits one event record into (type, code, value).
pub fn parse(record: &[u8]) -> (u16, u16, i32) {
    let at = EVENT_BYTES - 8;
    let u16_at = |i: usize| u16::from_ne_bytes([record[i], record[i + 1]]);
    let value = i32::from_ne_bytes([record[at + 4], record[at + 5], record[at + 6], record[at + 7]]);
    (u16_at(at), u16_at(at + 2), value)
}

#[derive(Debug, thiserror::Error)]
pub enum EvdevError {
    #[error("input device {path}: {source}; check [input] evdev and that the service user is in group input")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory named as a device: a mistake in the config, not a device missing.
    #[error("input device {path}: not an input device (a character device under /dev/input); name one in [input] evdev, or \"auto\"")]
    NotADevice { path: String },
}

/// A file or directory where a device is named is refused. (A FIFO stands in for a device in
/// tests; a file would be read, end, and be opened again at every scan.)
fn device_kind(path: &Path, m: &std::fs::Metadata) -> Result<(), EvdevError> {
    use std::os::unix::fs::FileTypeExt;
    let kind = m.file_type();
    match kind.is_char_device() || kind.is_fifo() {
        true => Ok(()),
        false => Err(EvdevError::NotADevice { path: path.display().to_string() }),
    }
}

/// Whether `path`, if there, could be a device: what check-config can tell without opening it
/// (a missing one may be unplugged, and only the service's user may be allowed to open it).
pub fn check_path(path: &Path) -> Result<(), EvdevError> {
    std::fs::metadata(path).map_or(Ok(()), |m| device_kind(path, &m))
}

/// Opens the device at `path` for reading; a file or directory is refused.
pub fn open(path: &Path) -> Result<std::fs::File, EvdevError> {
    let err = |source| EvdevError::Open { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(err)?;
    device_kind(path, &file.metadata().map_err(err)?)?;
    Ok(file)
}

/// What a device can do, from its capability bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub touch: bool,
    pub keys: bool,
}

fn ioctl_read(fd: i32, dir_read_nr: u64, buf: &mut [u8]) -> bool {
    // _IOC(_IOC_READ, 'E', nr, len): the kernel's encoding, the same on x86 and ARM.
    let req = (2u64 << 30) | ((buf.len() as u64) << 16) | ((b'E' as u64) << 8) | dir_read_nr;
    // SAFETY: the request asks the kernel to write at most buf.len() bytes into buf.
    unsafe { libc::ioctl(fd, req as _, buf.as_mut_ptr()) >= 0 }
}

fn bit(bits: &[u8], n: u16) -> bool {
    bits.get(n as usize / 8).is_some_and(|b| b & (1 << (n % 8)) != 0)
}

/// The device's capabilities (`EVIOCGBIT`).
pub fn caps(file: &std::fs::File) -> Caps {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut abs = [0u8; 8];
    let mut keys = [0u8; 96];
    let has_abs = ioctl_read(fd, 0x20 + code::EV_ABS as u64, &mut abs);
    let has_keys = ioctl_read(fd, 0x20 + code::EV_KEY as u64, &mut keys);
    let positions = bit(&abs, code::ABS_MT_POSITION_X) || bit(&abs, code::ABS_X);
    Caps {
        touch: has_abs && has_keys && positions && bit(&keys, code::BTN_TOUCH),
        keys: has_keys && (bit(&keys, code::KEY_ENTER) || bit(&keys, code::KEY_KPENTER)),
    }
}

/// The device's range on an axis (`EVIOCGABS`).
pub fn range(file: &std::fs::File, axis: u16) -> Option<Range> {
    use std::os::fd::AsRawFd;
    // struct input_absinfo: value, minimum, maximum, fuzz, flat, resolution (six i32).
    let mut info = [0u8; 24];
    if !ioctl_read(file.as_raw_fd(), 0x40 + axis as u64, &mut info) {
        return None;
    }
    let at = |i: usize| i32::from_ne_bytes([info[i], info[i + 1], info[i + 2], info[i + 3]]);
    Some(Range { min: at(4), max: at(8) })
}

/// How the touch panel's numbers are turned into pixels (`[input]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TouchSettings {
    /// `[x_min, x_max, y_min, y_max]` in raw units, instead of the device's ranges.
    pub calibration: Option<[i32; 4]>,
    pub rotation: u16,
    pub panel: (u32, u32),
    /// Enter held this long is the button's hold (`input.hold_ms`).
    pub hold: Duration,
}

/// The devices to read: `auto` stands for every `/dev/input/event*` with a touch panel or an
/// Enter key. Links (by-id, by-path) are followed to their eventN, so a device named twice is
/// read once.
pub fn resolve(entries: &[String]) -> Vec<PathBuf> {
    resolve_except(entries, &Reading::new(), &mut HashMap::new())
}

/// As [`resolve`], leaving out `skip` (devices read already) and, for `auto`, those in
/// `not_ours` (opened once and found with neither a panel nor keys: a mouse, the power button),
/// which are not opened again while the same device, by its number, is there.
fn resolve_except(entries: &[String], skip: &Reading, not_ours: &mut HashMap<PathBuf, u64>) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in entries {
        if e == "auto" {
            let mut found = Vec::new();
            let nodes = std::fs::read_dir("/dev/input").into_iter().flatten().flatten().map(|d| d.path());
            for p in nodes.filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("event"))) {
                let number = std::fs::metadata(&p).map_or(0, |m| m.rdev());
                if skip.contains_key(&p) || not_ours.get(&p) == Some(&number) {
                    continue;
                }
                match std::fs::File::open(&p).map(|f| caps(&f)) {
                    Ok(c) if c.touch || c.keys => found.push(p),
                    Ok(_) => drop(not_ours.insert(p, number)),
                    // Not readable (yet: udev may not have set its group): tried again.
                    Err(_) => {}
                }
            }
            found.sort();
            out.extend(found);
        } else {
            let p = std::fs::canonicalize(e).unwrap_or_else(|_| PathBuf::from(e));
            if !skip.contains_key(&p) {
                out.push(p);
            }
        }
    }
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// The devices being read, each with what it can do.
type Reading = HashMap<PathBuf, Caps>;

/// What the devices in `r` can do together.
fn can_do(r: &Reading) -> Caps {
    Caps { touch: r.values().any(|c| c.touch), keys: r.values().any(|c| c.keys) }
}

/// Changes `r` and, if that changes what the devices read can do, says so on `tx`. Under the
/// lock, so that the news of a device going and coming back arrive in that order. (The receiver
/// may be gone already; nothing is left to tell then.)
fn update<R>(reading: &Mutex<Reading>, tx: &Sender<Gesture>, change: impl FnOnce(&mut Reading) -> R) {
    let mut r = reading.lock().unwrap_or_else(|e| e.into_inner());
    let before = can_do(&r);
    change(&mut r);
    let after = can_do(&r);
    if after != before {
        let _ = tx.send(Gesture::Devices(after));
    }
}

/// How often devices are looked for again: one plugged in, or back after being unplugged or a
/// USB reset, is read within this.
pub const RESCAN: Duration = Duration::from_secs(2);

/// Reads the devices `entries` name, now and as they come and go, each on its own thread; what
/// was opened at the start, with what it can do. A named device that is not there at the start
/// (a keypad unplugged at boot) is logged and waited for: the kiosk runs without it, as it does
/// when one is unplugged later. One that is there but cannot be read (no permission, a file) is
/// an error: nothing but the config or the system's setup would change that. Afterwards, every
/// [`RESCAN`] until `stop`, a device that went away is opened again once it is back, and `auto`
/// takes up touch panels and keyboards plugged in. A change in what the devices read can do together (the first touch
/// panel or keyboard, the last one gone) sends [`Gesture::Devices`]. (A reader blocked on a
/// quiet device ends with the process, not with `stop`.)
pub fn watch_all(
    entries: &[String],
    touch: TouchSettings,
    tx: Sender<Gesture>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<(PathBuf, Caps)>, EvdevError> {
    let reading: Arc<Mutex<Reading>> = Default::default();
    let mut opened = Vec::new();
    for path in resolve(entries) {
        match watch(&path, touch, tx.clone(), reading.clone()) {
            Ok(caps) => opened.push((path, caps)),
            Err(EvdevError::Open { source, .. }) if absent(&source) => crate::log::warn(
                &format!("input device {}: not there ({source}); it is read once it is plugged in", path.display()),
                &[],
            ),
            Err(e) => return Err(e),
        }
    }
    let entries = entries.to_vec();
    let mut not_ours = HashMap::new();
    std::thread::Builder::new()
        .name("evdev-scan".into())
        .spawn(move || loop {
            std::thread::sleep(RESCAN);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let skip = reading.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for path in resolve_except(&entries, &skip, &mut not_ours) {
                // Not there (yet): looked for again at the next scan. (A named FIFO, as the
                // tests use, is opened here only once a writer comes.)
                let _ = watch(&path, touch, tx.clone(), reading.clone());
            }
        })
        .map_err(|source| EvdevError::Open { path: "/dev/input".into(), source })?;
    Ok(opened)
}

/// The device node is not there (unplugged), as opposed to there and refused.
fn absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENXIO))
}

/// Opens `path` and reads it in a thread, listed in `reading` until the receiver goes away or
/// the device does; returns what it can do. Without ranges from the device (a pipe standing in
/// for one in tests) the calibration must come from the config, and a configured calibration
/// makes it a touch panel.
fn watch(
    path: &Path,
    touch: TouchSettings,
    tx: Sender<Gesture>,
    reading: Arc<Mutex<Reading>>,
) -> Result<Caps, EvdevError> {
    let mut file = open(path)?;
    let mut found = caps(&file);
    // Something that says nothing of itself (a FIFO) is the touch panel the calibration is for.
    found.touch |= found == Caps::default() && touch.calibration.is_some();
    let ranges = match touch.calibration {
        Some([x0, x1, y0, y1]) => Some((Range { min: x0, max: x1 }, Range { min: y0, max: y1 })),
        None => {
            let mt = range(&file, code::ABS_MT_POSITION_X).zip(range(&file, code::ABS_MT_POSITION_Y));
            mt.or_else(|| range(&file, code::ABS_X).zip(range(&file, code::ABS_Y)))
        }
    };
    let (x, y) = ranges.unwrap_or((Range { min: 0, max: 0 }, Range { min: 0, max: 0 }));
    let mut decoder = Decoder::new(Calibration { x, y, rotation: touch.rotation, panel: touch.panel }, touch.hold);
    let name = path.display().to_string();
    let what = if found.touch { "a touch panel" } else { "keys" };
    crate::log::info(&format!("reading input device {name} ({what})"), &[]);
    update(&reading, &tx, |r| r.insert(path.to_path_buf(), found));
    let tx_gone = tx.clone();
    let mut read = move || {
        let mut buf = vec![0u8; EVENT_BYTES * 64];
        let mut have = 0;
        let mut origin: Option<(Duration, Instant)> = None;
        loop {
            match file.read(&mut buf[have..]) {
                Ok(0) => return Some("closed".to_string()),
                Ok(n) => have += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(e.to_string()),
            }
            let whole = have / EVENT_BYTES * EVENT_BYTES;
            for record in buf[..whole].chunks_exact(EVENT_BYTES) {
                let (kind, code, value) = parse(record);
                // Timed by the kernel's stamps, mapped onto this clock from the first: a press
                // and its release read together (this thread held up) keep the time between
                // them. What stamps nothing (a FIFO) is timed as read.
                let at = match stamp(record) {
                    Duration::ZERO => Instant::now(),
                    t => {
                        let (t0, i0) = *origin.get_or_insert((t, Instant::now()));
                        i0 + t.saturating_sub(t0)
                    }
                };
                if let Some(g) = decoder.event(kind, code, value, at) {
                    if tx.send(g).is_err() {
                        return None;
                    }
                }
            }
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
    };
    let (path_after, reading_after) = (path.to_path_buf(), reading.clone());
    let (tx_after, path) = (tx_gone.clone(), path.to_path_buf());
    std::thread::Builder::new()
        .name("evdev".into())
        .spawn(move || {
            if let Some(why) = read() {
                crate::log::warn(
                    &format!("input device {name}: {why} (unplugged?); it is read again when it is back"),
                    &[],
                );
            }
            // Unplugged, or its cable failed: the screens stop offering what it answered.
            update(&reading, &tx_gone, |r| r.remove(&path));
        })
        .map_err(|e| {
            // Not read after all: looked for again at the next scan.
            update(&reading_after, &tx_after, |r| r.remove(&path_after));
            EvdevError::Open { path: path_after.display().to_string(), source: e }
        })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::code::*;
    use super::*;

    fn cal(rotation: u16) -> Calibration {
        Calibration { x: Range { min: 0, max: 4095 }, y: Range { min: 0, max: 4095 }, rotation, panel: (800, 480) }
    }

    fn feed(d: &mut Decoder, events: &[(u16, u16, i32)]) -> Vec<Gesture> {
        feed_at(d, events, Instant::now())
    }

    fn feed_at(d: &mut Decoder, events: &[(u16, u16, i32)], at: Instant) -> Vec<Gesture> {
        events.iter().filter_map(|&(t, c, v)| d.event(t, c, v, at)).collect()
    }

    const HOLD: Duration = Duration::from_millis(800);

    const SYN: (u16, u16, i32) = (EV_SYN, SYN_REPORT, 0);

    #[test]
    fn calibration_maps_corners_for_each_rotation() {
        let corners = |r| {
            let c = cal(r);
            [c.map(0, 0), c.map(4095, 0), c.map(4095, 4095), c.map(0, 4095)]
        };
        let p = |x, y| Point { x, y };
        assert_eq!(corners(0), [p(0, 0), p(799, 0), p(799, 479), p(0, 479)]);
        assert_eq!(corners(90), [p(799, 0), p(799, 479), p(0, 479), p(0, 0)]);
        assert_eq!(corners(180), [p(799, 479), p(0, 479), p(0, 0), p(799, 0)]);
        assert_eq!(corners(270), [p(0, 479), p(0, 0), p(799, 0), p(799, 479)]);
        // Min above max inverts the axis; points outside the range are clamped to the panel.
        let inverted = Calibration { x: Range { min: 4000, max: 100 }, ..cal(0) };
        assert_eq!(inverted.map(100, 0), p(799, 0));
        assert_eq!(inverted.map(5000, 9999), p(0, 479));
        assert_eq!(cal(0).map(2048, 2048), p(400, 240));
    }

    #[test]
    fn single_touch_tap_reports_both_points_on_release() {
        let mut d = Decoder::new(cal(0), HOLD);
        let g = feed(
            &mut d,
            &[
                (EV_KEY, BTN_TOUCH, 1),
                (EV_ABS, ABS_X, 1024),
                (EV_ABS, ABS_Y, 2048),
                SYN,
                (EV_ABS, ABS_X, 1100),
                SYN,
                (EV_KEY, BTN_TOUCH, 0),
                SYN,
            ],
        );
        assert_eq!(g, [Gesture::Tap { down: Point { x: 200, y: 240 }, up: Point { x: 215, y: 240 } }]);
    }

    #[test]
    fn multitouch_type_b_tap_and_a_second_finger_spoils_it() {
        let mut d = Decoder::new(cal(0), HOLD);
        let tap = [
            (EV_ABS, ABS_MT_SLOT, 0),
            (EV_ABS, ABS_MT_TRACKING_ID, 7),
            (EV_ABS, ABS_MT_POSITION_X, 4095),
            (EV_ABS, ABS_MT_POSITION_Y, 0),
            (EV_KEY, BTN_TOUCH, 1),
            (EV_ABS, ABS_X, 4095),
            (EV_ABS, ABS_Y, 0),
            SYN,
            (EV_ABS, ABS_MT_TRACKING_ID, -1),
            (EV_KEY, BTN_TOUCH, 0),
            SYN,
        ];
        let corner = Point { x: 799, y: 0 };
        assert_eq!(feed(&mut d, &tap), [Gesture::Tap { down: corner, up: corner }]);
        let two = [
            (EV_ABS, ABS_MT_SLOT, 0),
            (EV_ABS, ABS_MT_TRACKING_ID, 8),
            (EV_ABS, ABS_MT_POSITION_X, 100),
            (EV_ABS, ABS_MT_POSITION_Y, 100),
            SYN,
            (EV_ABS, ABS_MT_SLOT, 1),
            (EV_ABS, ABS_MT_TRACKING_ID, 9),
            (EV_ABS, ABS_MT_POSITION_X, 3000),
            (EV_ABS, ABS_MT_POSITION_Y, 3000),
            SYN,
            (EV_ABS, ABS_MT_TRACKING_ID, -1),
            SYN,
            (EV_ABS, ABS_MT_SLOT, 0),
            (EV_ABS, ABS_MT_TRACKING_ID, -1),
            SYN,
        ];
        assert!(feed(&mut d, &two).is_empty(), "two fingers make no tap");
        assert_eq!(feed(&mut d, &tap), [Gesture::Tap { down: corner, up: corner }], "and the next tap counts");
    }

    #[test]
    fn dropped_events_make_the_touch_under_way_no_tap() {
        let mut d = Decoder::new(cal(0), HOLD);
        let g = feed(
            &mut d,
            &[
                (EV_KEY, BTN_TOUCH, 1),
                (EV_ABS, ABS_X, 10),
                (EV_ABS, ABS_Y, 10),
                SYN,
                (EV_SYN, SYN_DROPPED, 0),
                (EV_KEY, BTN_TOUCH, 0),
                SYN,
                (EV_KEY, BTN_TOUCH, 0),
                SYN,
            ],
        );
        assert!(g.is_empty(), "{g:?}");
    }

    #[test]
    fn keys_count_on_the_way_down_only() {
        let mut d = Decoder::new(cal(0), HOLD);
        let g = feed(
            &mut d,
            &[
                (EV_KEY, KEY_ENTER, 1),
                (EV_KEY, KEY_ENTER, 0),
                (EV_KEY, KEY_ESC, 1),
                (EV_KEY, KEY_RIGHT, 1),
                (EV_KEY, KEY_UP, 1),
                (EV_KEY, KEY_1 + 2, 1),
                (EV_KEY, KEY_KP7, 1),
                (EV_KEY, KEY_0, 1),
                (EV_KEY, 30, 1), // 'a': nothing
            ],
        );
        use Key::*;
        let keys: Vec<Gesture> =
            [Enter, Back, Next, Previous, Digit(3), Digit(7), Digit(0)].into_iter().map(Gesture::Key).collect();
        assert_eq!(g, keys);
        // Enter held as long as the button's hold is the hold, told once, when it comes up; a
        // slow press that the kernel repeats is still a press.
        let t = Instant::now();
        let down = [(EV_KEY, KEY_ENTER, 1), (EV_KEY, KEY_ENTER, 2), (EV_KEY, KEY_ENTER, 2)];
        for (up, want) in [(Duration::from_millis(500), Enter), (HOLD, EnterHeld)] {
            let g = feed_at(&mut d, &down, t);
            assert!(g.is_empty(), "{g:?}");
            assert_eq!(feed_at(&mut d, &[(EV_KEY, KEY_ENTER, 0)], t + up), [Gesture::Key(want)], "up after {up:?}");
        }
        // Events lost between a press and its release: no hold is made up from the gap.
        feed_at(&mut d, &[(EV_KEY, KEY_ENTER, 1), (EV_SYN, SYN_DROPPED, 0), SYN], t);
        assert!(feed_at(&mut d, &[(EV_KEY, KEY_ENTER, 0), SYN], t + HOLD).is_empty());
    }

    #[test]
    fn records_split_as_the_kernel_lays_them_out() {
        let mut r = vec![0u8; EVENT_BYTES];
        const L: usize = std::mem::size_of::<libc::c_ulong>();
        r[..L].copy_from_slice(&(12 as libc::c_ulong).to_ne_bytes());
        r[L..2 * L].copy_from_slice(&(250_000 as libc::c_ulong).to_ne_bytes());
        assert_eq!(stamp(&r), Duration::from_millis(12_250));
        let at = EVENT_BYTES - 8;
        r[at..at + 2].copy_from_slice(&EV_ABS.to_ne_bytes());
        r[at + 2..at + 4].copy_from_slice(&ABS_MT_TRACKING_ID.to_ne_bytes());
        r[at + 4..].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(parse(&r), (EV_ABS, ABS_MT_TRACKING_ID, -1));
    }
}
