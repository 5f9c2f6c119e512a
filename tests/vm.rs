//! Real kernel drivers in a small VM (scripts/vm.sh: Debian's kernel under qemu, busybox
//! initramfs): the agent's V4L2 path against vivid. Booting takes a minute under software
//! emulation, so these run on purpose, from scripts/test.sh:
//!
//!     cargo build --release --example vivid_feed --example uinput_feed
//!     cargo test --release --test vm -- --ignored --nocapture

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Stages the agent and the helpers into a fresh share, boots the VM with `payload` and
/// returns the share.
fn boot(payload: &str, helpers: &[&str]) -> tempfile::TempDir {
    let share = tempfile::tempdir().unwrap();
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_kiosk-agent"));
    let examples = agent.parent().unwrap().join("examples");
    let mut bins = vec![agent.clone()];
    bins.extend(helpers.iter().map(|h| examples.join(h)));
    for b in &bins {
        assert!(b.exists(), "{} is missing: cargo build --release --example {}", b.display(), b.display());
        let s = Command::new("bash")
            .arg("scripts/vm.sh")
            .arg("stage")
            .arg(b)
            .arg(share.path())
            .current_dir(root())
            .status();
        assert!(s.unwrap().success());
    }
    let o = Command::new("bash")
        .arg("scripts/vm.sh")
        .arg("run")
        .arg(share.path())
        .arg(root().join(payload))
        // The emulated CPU runs the face model on every analysed frame: the display payload's
        // four captures took 430 s beside a second VM (vm.sh's default limit is 600 s).
        .env("VM_TIMEOUT", std::env::var("VM_TIMEOUT").unwrap_or_else(|_| "900".into()))
        .current_dir(root())
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&o.stdout));
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "the VM payload failed (exit code above)");
    share
}

fn json(dir: &Path, name: &str) -> Value {
    let p = dir.join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
#[ignore = "boots a VM; scripts/test.sh runs it"]
fn v4l2_capture_against_vivid() {
    let share = boot("tests/vm/camera.sh", &["vivid_feed"]);
    let dir = share.path();

    // Formats listed: vivid's capture node, with YUYV among its formats.
    let list = json(dir, "list.json");
    let cap = list.as_array().unwrap().iter().find(|d| d["path"] == "/dev/video0").expect("/dev/video0 listed");
    assert_eq!(cap["driver"], "vivid");
    assert_eq!(cap["capture"], true);
    let fourccs: Vec<&str> = cap["formats"].as_array().unwrap().iter().map(|f| f["fourcc"].as_str().unwrap()).collect();
    assert!(fourccs.contains(&"YUYV"), "{fourccs:?}");
    assert!(fourccs.len() > 10, "vivid offers many formats: {fourccs:?}");

    // Frames streamed by mmap, negotiated to YUYV at the configured size, every one analysed.
    let pattern = json(dir, "pattern.json");
    assert_eq!(pattern["format"], "Yuyv");
    assert_eq!((pattern["width"].as_u64(), pattern["height"].as_u64()), (Some(640), Some(480)));
    assert_eq!(pattern["frames"], 30);
    assert_eq!(pattern["verdicts"]["no_face"], 30, "vivid's test pattern has no face: {pattern}");
    assert_eq!(pattern["stats"]["opens"], 1);

    // Unplugged and plugged back in while streaming: the camera came back without a restart.
    let replug = json(dir, "replug.json");
    assert_eq!(replug["frames"], 60);
    assert!(replug["stats"]["opens"].as_u64().unwrap() >= 2, "reopened after the replug: {replug}");
    let errors = replug["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e.as_str().unwrap().contains("not available")), "{errors:?}");

    // A stream that stalls (vivid dropping every buffer) times out, is restarted, and recovers.
    let stall = json(dir, "stall.json");
    assert_eq!(stall["frames"], 60, "{stall}");
    assert!(stall["stats"]["timeouts"].as_u64().unwrap() >= 1, "{stall}");
    assert!(stall["stats"]["opens"].as_u64().unwrap() >= 2, "{stall}");

    // A face looped through vivid passes the gates, and a whole Biometric KYC capture finishes.
    let face = json(dir, "face.json");
    assert!(face["verdicts"]["ok"].as_u64().unwrap_or(0) >= 15, "most frames pass: {face}");
    let job = json(dir, "job.json");
    assert_eq!(job["stage"], "queued");
    assert_eq!(job["job_type"], 1);
    assert_eq!(job["user_id"], "vm-user");
    assert!(job["bundle_bytes"].as_u64().unwrap() > 50_000, "{job}");
    let doctor = json(dir, "doctor.json");
    let cam = doctor.as_array().unwrap().iter().find(|c| c["name"] == "camera").unwrap();
    assert_eq!(cam["verdict"], "PASS", "{cam}");
    assert!(cam["detail"].as_str().unwrap().contains("/dev/video0: YUYV"), "{cam}");
    let screens: Vec<String> = std::fs::read_dir(dir.join("screens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(screens.iter().filter(|s| s.contains("capture")).count() >= 9, "progress shown: {screens:?}");
}

#[test]
#[ignore = "boots a VM; scripts/test.sh runs it"]
fn framebuffer_and_gpio_button() {
    use kiosk_agent::display::screens::{render, Screen};
    use kiosk_agent::display::{Canvas, Texts};
    let share = boot("tests/vm/display.sh", &["vivid_feed", "uinput_feed"]);
    let dir = share.path();

    // Every screen drawn on bochs' /dev/fb0 and read back from the device, identical, in two languages.
    for lang in ["en", "fr"] {
        let r = json(dir, &format!("fb-{lang}.json"));
        assert_eq!(r["format"], "Xrgb8888", "{r}");
        assert_eq!(r["matched"], r["screens"], "{lang}: {r}");
        assert!(r["screens"].as_u64().unwrap() >= 20, "{r}");
        assert_eq!(r["max_diff"], 0, "{r}");
    }

    // While waiting for the button, the framebuffer showed the consent screen, in Swahili.
    let (w, h) = (
        json(dir, "fb-en.json")["width"].as_u64().unwrap() as u32,
        json(dir, "fb-en.json")["height"].as_u64().unwrap() as u32,
    );
    let mut want = Canvas::new(w, h);
    render(
        &Screen::Consent {
            partner: "This service".into(),
            more: kiosk_agent::display::screens::More::No,
            legend: kiosk_agent::display::screens::Legend::Button,
            face_only: false,
        },
        &Texts::load("sw", None).unwrap(),
        &mut want,
    );
    let shown = screen_dump(dir, "consent.raw", (w, h));
    assert!(shown == want.rgb, "the framebuffer did not show the Swahili consent screen before the press");

    // A short press on the gpio-sim line answered "I agree": the capture went on and was queued.
    assert_eq!(std::fs::read_to_string(dir.join("capture.rc")).unwrap().trim(), "0");
    let job = json(dir, "job.json");
    assert_eq!(job["stage"], "queued");
    assert_eq!(job["user_id"], "button-user");
    let doctor = json(dir, "doctor.json");
    for (name, want) in [("display", "/dev/fb0: "), ("input", "button on /dev/gpiochip")] {
        let c = doctor.as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(c["verdict"], "PASS", "{c}");
        assert!(c["detail"].as_str().unwrap().contains(want), "{c}");
    }
    // Holding the button declined: nothing captured.
    assert_ne!(std::fs::read_to_string(dir.join("hold.rc")).unwrap().trim(), "0");
    assert!(std::fs::read_to_string(dir.join("hold.err")).unwrap().contains("declined"));
    // Under `kiosk-agent run`, the button answers the consent of a session the host application started.
    let session_err = std::fs::read_to_string(dir.join("session.err")).unwrap_or_default();
    assert_eq!(std::fs::read_to_string(dir.join("session.rc")).unwrap().trim(), "0", "{session_err}");
    let view: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("session.out")).unwrap()).unwrap();
    assert_eq!(view["state"], "queued", "{view}");
    // Walk-up: a press at the welcome screen started a document verification; at the review a
    // hold took the photo again and a press kept the second one.
    let log = std::fs::read_to_string(dir.join("walkup.log")).unwrap();
    assert_eq!(log.matches("keep the document photo or take it again").count(), 2, "{log}");
    assert_eq!(log.matches("asked to take the document photo again").count(), 1, "{log}");
    let jobs = json(dir, "walkup-jobs.json");
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["job_type"], 6, "{}", jobs[0]);
    assert!(jobs[0]["user_id"].as_str().unwrap().starts_with("walkup-"), "{}", jobs[0]);

    // A touch panel and keys through uinput and evdev: the right arrow chose French, and the
    // welcome was redrawn in it with its Start button, which a tap pressed; a tap on "I agree", a
    // tap on "Take again" and Enter answered the session.
    let log = std::fs::read_to_string(dir.join("touch.log")).unwrap();
    let devices = std::fs::read_to_string(dir.join("touch-devices.txt")).unwrap_or_default();
    assert!(log.contains("reading input device /dev/input/event"), "{log}\n{devices}");
    assert!(log.contains("language chosen at the kiosk: fr"), "{log}");
    assert_eq!(log.matches("asked to take the document photo again").count(), 1, "{log}");
    let mut want = Canvas::new(w, h);
    let idle = Screen::Idle {
        link: kiosk_agent::display::screens::Link::Offline,
        start: kiosk_agent::display::screens::Start::Touch { languages: true },
    };
    render(&idle, &Texts::load("fr", None).unwrap(), &mut want);
    let shown = screen_dump(dir, "touch-idle.raw", (w, h));
    assert!(shown == want.rgb, "the framebuffer did not show the French welcome with its Start button");
    let jobs = json(dir, "touch-jobs.json");
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert!(jobs[0]["user_id"].as_str().unwrap().starts_with("walkup-"), "{}", jobs[0]);
    // The panel unplugged (its uinput device destroyed) was noted, and the welcome no longer
    // offered a Start button to tap: the VM's own keyboard's (Start marked "Enter", the arrow
    // keys for the language), or staff had there been none; a panel plugged in later was taken
    // up, and a tap on the Start button the welcome offered again started a session.
    let gone = log.find("(unplugged?); it is read again when it is back").unwrap_or_else(|| panic!("{log}"));
    let start = match log[..gone].contains("(keys)") {
        true => kiosk_agent::display::screens::Start::Keys { languages: true },
        false => kiosk_agent::display::screens::Start::Staff { languages: false },
    };
    let idle = Screen::Idle { link: kiosk_agent::display::screens::Link::Offline, start };
    let mut want = Canvas::new(w, h);
    render(&idle, &kiosk_agent::display::english(), &mut want);
    let looks = ["a", "b", "c"].map(|k| screen_dump(dir, &format!("touch-unplugged-{k}.raw"), (w, h)));
    assert!(looks.contains(&want.rgb), "the framebuffer did not show the {start:?} welcome with the panel unplugged");
    let plugged = gone + log[gone..].find("(a touch panel)").expect("the panel plugged in was read");
    assert!(log[plugged..].contains("walk-up session started"), "{log}");

    // The screen's driver loaded after the service started: meanwhile the control API answered
    // (`status` named the missing screen, a session was refused saying why); then the welcome
    // was drawn on the new /dev/fb0, the touch panel was read, and a tap started a session.
    let said = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let log = said("late.log");
    assert!(said("late-status.txt").contains("display_missing"), "{}\n{log}", said("late-status.txt"));
    let refused = said("late-session.txt");
    assert!(refused.contains("(/dev/fb0) is not there") && refused.contains("503"), "{refused}\n{log}");
    let there = log.find("the display is there now").unwrap_or_else(|| panic!("{log}"));
    let touch = log.find("(a touch panel)").unwrap_or_else(|| panic!("{log}"));
    assert!(touch > there, "the touch panel is read once the screen is open: {log}");
    assert!(log[there..].contains("walk-up session started"), "{log}");
    let idle = Screen::Idle {
        link: kiosk_agent::display::screens::Link::Offline,
        start: kiosk_agent::display::screens::Start::Touch { languages: true },
    };
    let mut want = Canvas::new(w, h);
    render(&idle, &kiosk_agent::display::english(), &mut want);
    assert!(screen_dump(dir, "late-idle.raw", (w, h)) == want.rgb, "the welcome was not drawn on the late screen");

    // The screen's cable out while the service ran: `status` named the missing screen and a
    // session was refused saying why; back in, the welcome was drawn again over a blank picture.
    // Its driver unbound: the screen was missing; bound again, the new /dev/fb0 was opened and
    // drawn on (and the tap above, after it, started a session).
    assert!(said("unplugged-status.txt").contains("display_missing"), "{}\n{log}", said("unplugged-status.txt"));
    let refused = said("unplugged-session.txt");
    assert!(refused.contains("unplugged or off") && refused.contains("503"), "{refused}\n{log}");
    let doctor = said("unplugged-doctor.txt");
    assert!(doctor.contains("FAIL display") && doctor.contains("says disconnected"), "{doctor}");
    assert!(screen_dump(dir, "replugged-idle.raw", (w, h)) == want.rgb, "the welcome was not drawn again: {log}");
    assert!(said("unbound-status.txt").contains("display_missing"), "{}\n{log}", said("unbound-status.txt"));
    assert!(log.contains("made anew"), "the old device was not let go: {log}");
    assert!(screen_dump(dir, "rebound-idle.raw", (w, h)) == want.rgb, "the welcome was not drawn on the new /dev/fb0");
}

/// One screen read back from bochs' XRGB8888 framebuffer, as packed RGB.
fn framebuffer_rgb(dir: &Path, name: &str, (w, h, stride): (usize, usize, usize)) -> Vec<u8> {
    let raw = std::fs::read(dir.join(format!("fb-{name}.raw"))).unwrap();
    assert!(raw.len() >= stride * h, "fb-{name}.raw is short: {} bytes", raw.len());
    xrgb_to_rgb(&raw, (w, h, stride))
}

/// A whole-device dump of the framebuffer (`dd if=/dev/fb0`), as packed RGB.
fn screen_dump(dir: &Path, file: &str, (w, h): (u32, u32)) -> Vec<u8> {
    let raw = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    xrgb_to_rgb(&raw, (w as usize, h as usize, raw.len() / h as usize))
}

fn xrgb_to_rgb(raw: &[u8], (w, h, stride): (usize, usize, usize)) -> Vec<u8> {
    (0..h).flat_map(|y| raw[y * stride..][..w * 4].chunks(4).flat_map(|p| [p[2], p[1], p[0]])).collect()
}

#[test]
#[ignore = "boots a Debian VM with systemd; scripts/test.sh runs it"]
fn deployed_kiosk() {
    use kiosk_agent::display::screens::{render, FaceStep, Link, Screen, Start};
    use kiosk_agent::display::{english, Canvas};
    let deb = std::fs::read_dir(root().join("target/debian"))
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.to_string_lossy().ends_with("_amd64.deb")))
        .expect("no target/debian/kiosk-agent_*_amd64.deb: cargo deb --no-build --output target/debian/");
    let share = tempfile::tempdir().unwrap();
    std::fs::copy(&deb, share.path().join(deb.file_name().unwrap())).unwrap();
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_kiosk-agent"));
    for b in [agent.clone(), agent.parent().unwrap().join("examples/vivid_feed")] {
        let s = Command::new("bash")
            .args(["scripts/vm.sh", "stage"])
            .arg(&b)
            .arg(share.path())
            .current_dir(root())
            .status();
        assert!(s.unwrap().success(), "staging {}", b.display());
    }
    let o = Command::new("bash")
        .args(["scripts/vm.sh", "boot"])
        .arg(share.path())
        .arg(root().join("tests/vm/deployed.sh"))
        .env("VM_TIMEOUT", std::env::var("VM_TIMEOUT").unwrap_or_else(|_| "420".into()))
        .current_dir(root())
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&o.stdout));
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    let dir = share.path();
    let text = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert!(o.status.success(), "the deployed kiosk failed at step \"{}\" (log above)", text("step").trim());

    // The operator edited only what the README names: the partner id and name, the environment,
    // the CA. Liveness stays as packaged: active.
    let packaged = std::fs::read_to_string(root().join("config/kiosk.example.toml")).unwrap();
    let installed = text("kiosk.toml");
    let changed: Vec<&str> = installed.lines().filter(|l| !packaged.lines().any(|p| p == *l)).collect();
    let keys: Vec<&str> = changed.iter().map(|l| l.split(" =").next().unwrap()).collect();
    assert_eq!(keys, ["partner_id", "environment", "extra_ca_file", "partner_name"], "{changed:?}");
    assert!(installed.lines().any(|l| l == r#"liveness = "active""#), "{installed}");

    // The screens as the framebuffer showed them, each exactly as drawn for that moment.
    let size = text("fb.txt");
    let mut it = size.split_whitespace();
    let (w, h) = it.next().unwrap().split_once(',').map(|(w, h)| (w.parse().unwrap(), h.parse().unwrap())).unwrap();
    let (bpp, stride): (usize, usize) = (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap());
    assert_eq!(bpp, 32, "{size}");
    let drawn = |s: &Screen| {
        let mut c = Canvas::new(w as u32, h as u32);
        render(s, &english(), &mut c);
        c.rgb
    };
    let welcome = drawn(&Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } });
    let fb = |name: &str| framebuffer_rgb(dir, name, (w, h, stride));
    // A screen that is not what it should be is kept for a look: target/vm-deployed/NAME.png.
    let keep = |name: &str, rgb: Vec<u8>| {
        let out = root().join("target/vm-deployed");
        std::fs::create_dir_all(&out).unwrap();
        let img = image::RgbImage::from_raw(w as u32, h as u32, rgb).unwrap();
        img.save(out.join(format!("{name}.png"))).unwrap();
        out.join(format!("{name}.png")).display().to_string()
    };
    // The button's legend; "Read more" too when the VM's own keyboard is read (its arrow key
    // opens the whole text), as it is where QEMU gives the guest one.
    let consent = |more| {
        drawn(&Screen::Consent {
            partner: "Kiosk Test Bank".into(),
            more,
            legend: kiosk_agent::display::screens::Legend::Button,
            // The host application's sessions are SmartSelfie jobs (type 4).
            face_only: true,
        })
    };
    let consent =
        [consent(kiosk_agent::display::screens::More::Link), consent(kiosk_agent::display::screens::More::No)];
    for (name, want) in [
        ("idle", &welcome),
        ("consent1", &consent[0]),
        ("consent2", &consent[0]),
        ("outcome1", &drawn(&Screen::Saved { online: true })),
        ("idle1", &welcome),
        ("restarted", &welcome),
    ] {
        let shown = fb(name);
        let ok = match name {
            "consent1" | "consent2" => consent.contains(&shown),
            _ => shown == *want,
        };
        if !ok {
            panic!("the framebuffer at {name} is not the expected screen: {}", keep(name, shown));
        }
    }
    // During capture the preview moves and the progress bar fills, so only the first line of
    // the title is compared.
    let title_rows = h / 16;
    let top_right = |rgb: &[u8]| -> Vec<u8> {
        (0..title_rows).flat_map(|y| rgb[(y * w + w * 6 / 10) * 3..(y * w + w) * 3].to_vec()).collect()
    };
    let face = |step| top_right(&drawn(&Screen::Face { step, hint: None, done: 0, total: 9, preview: None }));
    let guidance = [face(FaceStep::Liveness), face(FaceStep::Selfie)];
    for n in ["capture1", "capture2"] {
        let looks: Vec<String> = ["a", "b", "c"].iter().map(|k| format!("{n}{k}")).collect();
        if !looks.iter().any(|l| guidance.contains(&top_right(&fb(l)))) {
            panic!("the framebuffer during {n} showed no capture guidance: {}", keep(n, fb(&looks[2])));
        }
    }

    // Both jobs reached Smile ID exactly once, the restart in the middle of an upload included.
    let jobs: Vec<String> =
        ["session1.out", "session2.out"].iter().map(|f| json(dir, f)["job_id"].as_str().unwrap().to_string()).collect();
    let records: Vec<Value> = std::fs::read_dir(dir.join("sandbox/jobs"))
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path().join("record.json")).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{records:#?}");
    for j in &jobs {
        let r = records.iter().find(|r| r["job_id"] == j.as_str()).unwrap_or_else(|| panic!("{j} not at Smile ID"));
        assert_eq!(r["uploads"], 1, "{r}");
        // The person made the head turns through vivid's real capture path, in time, and the
        // keypoints along them showed depth: what Smile ID was told in the job's metadata.
        let prep = std::fs::read_dir(dir.join("sandbox/jobs"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("prep_upload.json")).ok())
            .map(|b| serde_json::from_slice::<Value>(&b).unwrap())
            .find(|v| v["partner_params"]["job_id"] == j.as_str())
            .unwrap_or_else(|| panic!("no prep_upload for {j}"));
        let meta = |name: &str| {
            prep["metadata"].as_array().unwrap().iter().find(|m| m["name"] == name).map(|m| m["value"].clone())
        };
        assert_eq!(meta("active_liveness_type"), Some("head_pose".into()), "{prep}");
        assert_eq!(meta("active_liveness_timed_out"), Some(false.into()), "{prep}");
        for task in ["turn_left", "turn_right", "look_up"] {
            let ms = meta(&format!("active_liveness_{task}_ms"));
            assert!(ms.as_ref().is_some_and(|v| v.is_u64()), "{task}: {prep}");
            println!("{j}: {task} done in {} ms", ms.unwrap());
        }
        assert!(meta("liveness_flatness").and_then(|v| v.as_f64()).is_some_and(|f| f >= 0.07), "{prep}");
    }
    assert_eq!(json(dir, "status-end.json")["queue"]["pending"], 0);

    // The operator's commands beside the service: words and tables, the devices found.
    let status = text("status.txt");
    assert!(status.contains("link") && status.contains("up"), "{status}");
    let jobs_table = text("jobs.txt");
    assert!(jobs_table.starts_with("   SEQ") && jobs_table.contains(&jobs[0]), "{jobs_table}");
    let doctor = json(dir, "doctor.json");
    for name in ["config", "camera", "display", "input", "storage", "network", "credentials"] {
        let c = doctor.as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(c["verdict"], "PASS", "{c}");
    }

    // journalctl -u kiosk-agent: each job's lifecycle with its fields, and the link.
    let journal: Vec<Value> = text("journal.json").lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for j in &jobs {
        let stages: Vec<&str> =
            journal.iter().filter(|e| e["JOB_ID"] == j.as_str()).filter_map(|e| e["STAGE"].as_str()).collect();
        // The consent question (a session's), then queued, then what the uplink did.
        let queued = stages.iter().position(|s| *s == "queued");
        assert!(
            queued.is_some_and(|q| stages[..q].iter().all(|s| *s == "consent") && stages.len() > q + 1),
            "{j}: {stages:?}"
        );
        assert!(
            journal.iter().any(|e| e["JOB_ID"] == j.as_str() && e["SMILE_CODE"].is_string()),
            "{j}: no entry with Smile ID's code"
        );
    }
    assert!(journal.iter().any(|e| e["LINK"] == "up"), "no LINK=up entry");
}
