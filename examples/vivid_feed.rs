//! Test helper for the VM (not part of the agent): feeds the synthetic camera's moving face into
//! vivid's video output, with vivid's output-to-capture loopback on, so that the agent's real
//! V4L2 capture path sees a person. Prints the devices, inputs and controls it found.
//!
//!     vivid_feed SECONDS                 feed the portrait, slid about, for SECONDS
//!     vivid_feed SECONDS --follow FILE   feed a 3-D head that turns as FILE says
//!     vivid_feed set NAME VALUE          set one of vivid's integer controls on the capture node
//!
//! With `--follow`, FILE's last word is what the screen asks now, as the person in front of the
//! kiosk reads it (`turn_left`, `turn_right`, `look_up`; anything else: look ahead), written
//! by the test from the host application's view of the session; no FILE, no session: the
//! person looks ahead and stands still.
use std::time::{Duration, Instant};

use kiosk_agent::camera::synthetic::SyntheticCamera;
use kiosk_agent::camera::{FrameSource, PixelFormat};
use kiosk_agent::session::active::Task;
use v4l::capability::Flags;
use v4l::control::{Control, Value};
use v4l::video::Output;
use v4l::{Device, Format, FourCC};

fn set_index(dev: &Device, req: v4l::v4l2::vidioc::_IOC_TYPE, mut index: i32) -> std::io::Result<()> {
    // SAFETY: VIDIOC_S_INPUT / VIDIOC_S_OUTPUT take a pointer to an int index.
    unsafe { v4l::v4l2::ioctl(dev.handle().fd(), req, &mut index as *mut i32 as *mut std::os::raw::c_void) }
}

fn set_control(name: &str, value: i64) {
    let path = kiosk_agent::camera::v4l2::device_paths()
        .into_iter()
        .find(|p| {
            Device::with_path(p)
                .is_ok_and(|d| d.query_caps().is_ok_and(|c| c.capabilities.contains(Flags::VIDEO_CAPTURE)))
        })
        .expect("a vivid capture node");
    let dev = Device::with_path(&path).unwrap();
    let c = dev
        .query_controls()
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no control {name:?}"));
    dev.set_control(Control { id: c.id, value: Value::Integer(value) }).expect("set the control");
    println!("{path}: {name} = {value}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("set") {
        set_control(&args[2], args[3].parse().expect("an integer value"));
        return;
    }
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let follow = match args.get(2).map(String::as_str) {
        Some("--follow") => Some(std::path::PathBuf::from(args.get(3).expect("--follow FILE"))),
        Some(other) => panic!("unknown argument {other:?}"),
        None => None,
    };
    let (mut cap, mut out) = (None, None);
    for p in kiosk_agent::camera::v4l2::device_paths() {
        let Ok(d) = Device::with_path(&p) else { continue };
        let caps = d.query_caps().unwrap();
        println!("{p}: {} {:?}", caps.card, caps.capabilities);
        if caps.capabilities.contains(Flags::VIDEO_CAPTURE) && cap.is_none() {
            cap = Some((p.clone(), d));
        } else if caps.capabilities.contains(Flags::VIDEO_OUTPUT) && out.is_none() {
            out = Some((p.clone(), d));
        }
    }
    let (cap_path, cap) = cap.expect("a vivid capture node");
    let (out_path, out) = out.expect("a vivid output node");
    for c in cap.query_controls().unwrap_or_default() {
        println!("control {:#x} {:?}", c.id, c.name);
    }
    let lp = cap.query_controls().unwrap().into_iter().find(|c| c.name == "Loop Video").expect("Loop Video control");
    cap.set_control(Control { id: lp.id, value: Value::Boolean(true) }).expect("set Loop Video");
    // Capture input 2 and output 0 are vivid's S-Video pair, the loopback's path.
    set_index(&cap, v4l::v4l2::vidioc::VIDIOC_S_INPUT, 2).expect("select S-Video input");
    set_index(&out, v4l::v4l2::vidioc::VIDIOC_S_OUTPUT, 0).expect("select S-Video output");
    // Without a screen to follow, the portrait slid about (for `liveness = "motion"`); with one,
    // the person who turns their head as asked (active liveness).
    let mut cam = match &follow {
        None => SyntheticCamera::new(kiosk_agent::camera::synthetic::FIXTURE_FACE, 30).expect("the bundled fixture"),
        // Five frames a second of the head's own clock: an emulated CPU draws a few a second,
        // and the head must turn in real time at a person's pace, not a fifth of it.
        Some(_) => SyntheticCamera::person(kiosk_agent::camera::synthetic::FIXTURE_FACE, 5).expect("a face in it"),
    }
    .with_format(PixelFormat::Yuyv);
    let asked = |file: &std::path::Path| -> Option<Task> {
        let text = std::fs::read_to_string(file).ok()?;
        let word = text.split_whitespace().last()?;
        Task::ALL.into_iter().find(|t| t.name() == word)
    };
    let first = cam.next_frame().unwrap();
    let fmt = out.set_format(&Format::new(first.width, first.height, FourCC::new(b"YUYV"))).expect("output format");
    println!("feeding {out_path} -> {cap_path}: {}x{} {}", fmt.width, fmt.height, fmt.fourcc);
    // Raw mmap streaming: every buffer is queued before STREAMON (vivid needs two or more), then
    // each dequeued buffer is refilled with the next frame and queued again.
    let fd = out.handle().fd();
    let ioctl = |req: v4l::v4l2::vidioc::_IOC_TYPE, arg: *mut std::os::raw::c_void| -> std::io::Result<()> {
        // SAFETY: each call passes the struct its request code names.
        unsafe { v4l::v4l2::ioctl(fd, req, arg) }
    };
    let mut rb: v4l::v4l_sys::v4l2_requestbuffers = unsafe { std::mem::zeroed() };
    rb.count = 4;
    rb.type_ = 2; // V4L2_BUF_TYPE_VIDEO_OUTPUT
    rb.memory = 1; // V4L2_MEMORY_MMAP
    ioctl(v4l::v4l2::vidioc::VIDIOC_REQBUFS, &mut rb as *mut _ as *mut _).expect("REQBUFS");
    let desc = |index: u32| {
        let mut b: v4l::v4l_sys::v4l2_buffer = unsafe { std::mem::zeroed() };
        b.index = index;
        b.type_ = 2;
        b.memory = 1;
        b
    };
    let mut maps = Vec::new();
    for i in 0..rb.count {
        let mut b = desc(i);
        ioctl(v4l::v4l2::vidioc::VIDIOC_QUERYBUF, &mut b as *mut _ as *mut _).expect("QUERYBUF");
        // SAFETY: maps the driver's buffer at the offset it gave; lives until the process ends.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                b.length as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                b.m.offset as i64,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap");
        maps.push(unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, b.length as usize) });
    }
    let mut filled = vec![false; rb.count as usize];
    // Frames drawn since the last session ended (FILE gone).
    let mut after = 0;
    let mut fill_and_queue = |i: u32, maps: &mut Vec<&mut [u8]>| {
        // Following, with no FILE (between sessions) the person looks ahead again and then
        // stands still: the buffers go back as they were, leaving the emulated CPU to the
        // agent. (Standing still turned up, the next session's neutral pose would be that.)
        let n = first.data.len().min(maps[i as usize].len());
        let session = follow.as_ref().is_none_or(|f| f.exists());
        after = if session { 0 } else { after + 1 };
        if !filled[i as usize] || after <= 2 * maps.len() + 8 {
            if let Some(file) = &follow {
                cam.prompt(asked(file));
            }
            let f = cam.next_frame().unwrap();
            maps[i as usize][..n].copy_from_slice(&f.data[..n]);
            filled[i as usize] = true;
        }
        let mut b = desc(i);
        b.bytesused = n as u32;
        b.field = 1; // V4L2_FIELD_NONE
        ioctl(v4l::v4l2::vidioc::VIDIOC_QBUF, &mut b as *mut _ as *mut _).expect("QBUF");
    };
    for i in 0..rb.count {
        fill_and_queue(i, &mut maps);
    }
    let mut typ: i32 = 2;
    ioctl(v4l::v4l2::vidioc::VIDIOC_STREAMON, &mut typ as *mut _ as *mut _).expect("STREAMON");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        // The crate opens devices non-blocking: wait for a buffer the driver has finished with.
        out.handle().poll(libc::POLLOUT, 2000).expect("poll");
        let mut b = desc(0);
        ioctl(v4l::v4l2::vidioc::VIDIOC_DQBUF, &mut b as *mut _ as *mut _).expect("DQBUF");
        fill_and_queue(b.index, &mut maps);
        n += 1;
        if n % 50 == 0 {
            println!("fed {n} frames");
        }
    }
}
