//! Test helper for the VM (not part of the agent): a person's finger and keyboard through the
//! kernel's uinput. Makes one virtual device, a multitouch (type B) touch panel with keys, then
//! reads commands, one per line, from standard input until it closes:
//!
//!     uinput_feed WIDTH HEIGHT     the panel's pixels (raw units run 0..4095 across them)
//!
//!     tap SCREEN ACTION LANG       a finger on the centre of the button doing ACTION on SCREEN
//!                                  (idle, consent, review), as laid out in LANG at WIDTH×HEIGHT
//!     key NAME                     enter, esc, left, right or a digit, pressed and released
//!
//! It lays the screens out with the agent's own code (`display::touch`), the way a person aims
//! at what they see.
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;

use kiosk_agent::display::screens::{Legend, Link, More, Side, Start};
use kiosk_agent::display::touch::{targets, Action, Shown};
use kiosk_agent::display::{Canvas, Screen, Texts};

const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const EV_ABS: u16 = 3;
const BTN_TOUCH: u16 = 0x14a;
const ABS_X: u16 = 0;
const ABS_Y: u16 = 1;
const ABS_MT_SLOT: u16 = 0x2f;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;
const ABS_MT_TRACKING_ID: u16 = 0x39;
const KEYS: [(&str, u16); 14] = [
    ("esc", 1),
    ("1", 2),
    ("2", 3),
    ("3", 4),
    ("4", 5),
    ("5", 6),
    ("6", 7),
    ("7", 8),
    ("8", 9),
    ("9", 10),
    ("enter", 28),
    ("left", 105),
    ("right", 106),
    ("0", 11),
];
const RAW_MAX: i32 = 4095;

/// `_IOW('U', nr, size)`: uinput's ioctls, the same encoding on x86 and ARM.
fn iow(nr: u64, size: u64) -> u64 {
    (1 << 30) | (size << 16) | (0x55 << 8) | nr
}

fn ioctl_int(fd: i32, nr: u64, value: i32) {
    // SAFETY: the UI_SET_*BIT ioctls take an int by value.
    let r = unsafe { libc::ioctl(fd, iow(nr, 4) as _, value as libc::c_ulong) };
    assert!(r >= 0, "uinput ioctl {nr}: {}", std::io::Error::last_os_error());
}

fn ioctl_ptr(fd: i32, req: u64, data: &mut [u8]) {
    // SAFETY: the request's size is data's length; the kernel reads at most that.
    let r = unsafe { libc::ioctl(fd, req as _, data.as_mut_ptr()) };
    assert!(r >= 0, "uinput ioctl {req:#x}: {}", std::io::Error::last_os_error());
}

struct Device {
    file: std::fs::File,
    tracking: i32,
}

impl Device {
    fn create() -> Device {
        let file = std::fs::OpenOptions::new().write(true).open("/dev/uinput").expect("/dev/uinput (modprobe uinput)");
        let fd = file.as_raw_fd();
        ioctl_int(fd, 100, EV_KEY as i32); // UI_SET_EVBIT
        ioctl_int(fd, 100, EV_ABS as i32);
        ioctl_int(fd, 101, BTN_TOUCH as i32); // UI_SET_KEYBIT
        for (_, code) in KEYS {
            ioctl_int(fd, 101, code as i32);
        }
        ioctl_int(fd, 110, 1); // UI_SET_PROPBIT INPUT_PROP_DIRECT: a touch screen
        for (axis, max) in [
            (ABS_X, RAW_MAX),
            (ABS_Y, RAW_MAX),
            (ABS_MT_SLOT, 9),
            (ABS_MT_POSITION_X, RAW_MAX),
            (ABS_MT_POSITION_Y, RAW_MAX),
            (ABS_MT_TRACKING_ID, 65535),
        ] {
            ioctl_int(fd, 103, axis as i32); // UI_SET_ABSBIT
                                             // struct uinput_abs_setup: u16 code, (padding), input_absinfo (value, min, max, fuzz, flat, resolution).
            let mut setup = [0u8; 28];
            setup[0..2].copy_from_slice(&axis.to_ne_bytes());
            setup[12..16].copy_from_slice(&max.to_ne_bytes());
            ioctl_ptr(fd, iow(4, 28), &mut setup); // UI_ABS_SETUP
        }
        // struct uinput_setup: input_id (bustype, vendor, product, version), name[80], ff_effects_max.
        let mut setup = [0u8; 92];
        setup[0..2].copy_from_slice(&0x06u16.to_ne_bytes()); // BUS_VIRTUAL
        let name = b"kiosk test touch panel";
        setup[8..8 + name.len()].copy_from_slice(name);
        ioctl_ptr(fd, iow(3, 92), &mut setup); // UI_DEV_SETUP
                                               // SAFETY: UI_DEV_CREATE takes no argument.
        assert!(unsafe { libc::ioctl(fd, 0x5501 as _) } >= 0, "UI_DEV_CREATE: {}", std::io::Error::last_os_error());
        Device { file, tracking: 0 }
    }

    fn emit(&mut self, events: &[(u16, u16, i32)]) {
        let n = kiosk_agent::input::evdev::EVENT_BYTES;
        let mut out = Vec::new();
        for &(kind, code, value) in events.iter().chain([&(EV_SYN, 0, 0)]) {
            let mut r = vec![0u8; n];
            r[n - 8..n - 6].copy_from_slice(&kind.to_ne_bytes());
            r[n - 6..n - 4].copy_from_slice(&code.to_ne_bytes());
            r[n - 4..].copy_from_slice(&value.to_ne_bytes());
            out.extend(r);
        }
        self.file.write_all(&out).expect("uinput write");
    }

    /// A finger down at raw (x, y), a moment, and up: one contact in slot 0.
    fn tap(&mut self, x: i32, y: i32) {
        self.tracking += 1;
        let id = self.tracking;
        self.emit(&[
            (EV_ABS, ABS_MT_SLOT, 0),
            (EV_ABS, ABS_MT_TRACKING_ID, id),
            (EV_ABS, ABS_MT_POSITION_X, x),
            (EV_ABS, ABS_MT_POSITION_Y, y),
            (EV_KEY, BTN_TOUCH, 1),
            (EV_ABS, ABS_X, x),
            (EV_ABS, ABS_Y, y),
        ]);
        std::thread::sleep(std::time::Duration::from_millis(120));
        self.emit(&[(EV_ABS, ABS_MT_TRACKING_ID, -1), (EV_KEY, BTN_TOUCH, 0)]);
    }

    fn key(&mut self, code: u16) {
        self.emit(&[(EV_KEY, code, 1)]);
        self.emit(&[(EV_KEY, code, 0)]);
    }
}

fn screen(name: &str) -> Screen {
    match name {
        "idle" => Screen::Idle { link: Link::Offline, start: Start::Touch { languages: true } },
        "consent" => {
            Screen::Consent { partner: "This service".into(), more: More::Link, legend: Legend::None, face_only: false }
        }
        "review" => {
            Screen::Document { side: Side::Front, hint: None, preview: None, review: true, legend: Legend::None }
        }
        other => panic!("no screen {other:?}: idle, consent or review"),
    }
}

fn action(name: &str) -> Action {
    match name {
        "yes" => Action::Yes,
        "no" => Action::No,
        "keep" => Action::Keep,
        "retake" => Action::Retake,
        "start" => Action::Start,
        other => panic!("no action {other:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (w, h): (u32, u32) = match (args.get(1).map(|a| a.parse()), args.get(2).map(|a| a.parse())) {
        (Some(Ok(w)), Some(Ok(h))) => (w, h),
        _ => panic!("usage: uinput_feed WIDTH HEIGHT < commands"),
    };
    let mut dev = Device::create();
    eprintln!("uinput_feed: touch panel and keys created for {w}x{h}");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["tap", screen_name, action_name, lang] => {
                let texts = Texts::load(lang, None).expect("a built-in language");
                let px_per_mm = Canvas::new(w, h).px_per_mm;
                let shown = Shown {
                    screen: screen(screen_name),
                    texts,
                    size: (w, h),
                    px_per_mm,
                    brand: kiosk_agent::display::brand::Brand::builtin(),
                };
                let a = action(action_name);
                let t = targets(&shown).into_iter().find(|t| t.action == a).expect("the button is on that screen");
                let (cx, cy) = (t.x + t.w / 2, t.y + t.h / 2);
                let raw = |v: i32, size: u32| v * RAW_MAX / (size as i32 - 1);
                dev.tap(raw(cx, w), raw(cy, h));
                eprintln!("uinput_feed: tapped {action_name} on {screen_name} at ({cx}, {cy})");
            }
            ["key", name] => {
                let code = KEYS.iter().find(|(n, _)| n == name).map(|(_, c)| *c).expect("a known key");
                dev.key(code);
                eprintln!("uinput_feed: pressed {name}");
            }
            [] => {}
            _ => panic!("unknown command {line:?}"),
        }
    }
    // SAFETY: UI_DEV_DESTROY takes no argument.
    unsafe { libc::ioctl(dev.file.as_raw_fd(), 0x5502 as _) };
}
