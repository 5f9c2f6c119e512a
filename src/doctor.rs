//! `kiosk-agent doctor`: checks the kiosk's parts one by one and says, for each, pass, warn or
//! fail and what to do. Every check is isolated: one that breaks (or panics) is reported as a
//! failure of that check and the others still run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, Custody};
use crate::smileid::submit::{HttpRequest, Method};
use crate::smileid::timestamp::UnixMillis;
use crate::uplink::drive::clock_skew_secs;
use crate::uplink::http::{HttpClient, Timeouts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about it (empty on pass).
    pub advice: String,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>, advice: impl Into<String>) -> Check {
    Check { name, verdict, detail: detail.into(), advice: advice.into() }
}

fn devices(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn list(v: &[PathBuf]) -> String {
    v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn camera(c: Option<&Config>) -> Check {
    use crate::camera::v4l2::describe;
    let cams = devices("video");
    let mut usable = Vec::new();
    let formats: Vec<String> = cams
        .iter()
        .map(|d| {
            let path = d.display().to_string();
            match describe(&path) {
                Ok(i) if !i.capture => format!("{path}: not a capture node ({})", i.card),
                Ok(i) => {
                    let f: Vec<&str> = i.formats.iter().map(|f| f.fourcc.as_str()).collect();
                    if f.iter().any(|f| *f == "MJPG" || *f == "YUYV") {
                        usable.push(path.clone());
                    }
                    format!("{path}: {} ({})", f.join(" "), i.card)
                }
                Err(e) => format!("{path}: {e}; is the service user in group video?"),
            }
        })
        .collect();
    let synthetic = c.is_some_and(|c| c.camera.source == crate::config::CameraSource::Synthetic);
    let wanted = c.map(|c| c.camera.device.clone()).unwrap_or_else(|| "auto".into());
    let found = if wanted == "auto" { !usable.is_empty() } else { usable.contains(&wanted) };
    let advice = "plug in the USB (UVC) camera and check `dmesg` for uvcvideo; a Raspberry Pi CSI camera needs `libcamerify kiosk-agent ...`";
    match (synthetic, found) {
        // A kiosk that films a built-in face would upload it as a customer.
        (true, _) if cams.is_empty() => check(
            "camera",
            Verdict::Fail,
            "no V4L2 camera (/dev/video*), and the synthetic camera (demo and tests only) is configured",
            format!("set [camera] source = \"v4l2\"; {advice}"),
        ),
        (true, _) => check(
            "camera",
            Verdict::Fail,
            format!(
                "the synthetic camera (demo and tests only) is configured; cameras present: {}",
                formats.join("; ")
            ),
            "set [camera] source = \"v4l2\"",
        ),
        (false, true) => check("camera", Verdict::Pass, formats.join("; "), ""),
        (false, false) => check(
            "camera",
            Verdict::Fail,
            if cams.is_empty() {
                "no V4L2 camera (/dev/video*) found".to_string()
            } else {
                format!("camera {wanted} with MJPEG or YUYV capture not found among: {}", formats.join("; "))
            },
            advice,
        ),
    }
}

fn display(c: Option<&Config>) -> Check {
    let fbs = devices("fb");
    let spi = devices("spidev");
    let backend = match c.map(|c| c.display.backend).unwrap_or(crate::config::DisplayBackend::Framebuffer) {
        crate::config::DisplayBackend::Png => "png",
        crate::config::DisplayBackend::Framebuffer => "framebuffer",
        crate::config::DisplayBackend::Spi => "spi",
    };
    match (backend, fbs.is_empty() && spi.is_empty()) {
        // Nobody at the kiosk sees PNG files.
        ("png", true) => check(
            "display",
            Verdict::Fail,
            "no framebuffer or SPI panel, and screens are written as PNG files (demo and tests only)",
            "connect the screen and set [display] backend; for an SPI panel enable SPI (dtparam=spi=on) and its overlay",
        ),
        ("png", false) => check(
            "display",
            Verdict::Fail,
            format!("screens go to PNG files though {} exist", list(&[fbs, spi].concat())),
            "set [display] backend = \"framebuffer\" or \"spi\"",
        ),
        ("framebuffer", _) => {
            let dev = c.map(|c| c.display.device.clone()).unwrap_or_else(|| "/dev/fb0".into());
            match crate::display::fb::Framebuffer::open(&dev) {
                Ok(_) if crate::display::fb::unplugged(&dev) => check(
                    "display",
                    Verdict::Fail,
                    format!("{dev} is there, but every connector of its card says disconnected: nothing shows"),
                    "plug the screen's cable in and switch it on; the agent sees it come back by itself",
                ),
                Ok(fb) => {
                    check("display", Verdict::Pass, format!("{dev}: {}x{} {:?}", fb.width, fb.height, fb.format), "")
                }
                Err(e) => check("display", Verdict::Fail, e.to_string(), "check [display] device and the video group"),
            }
        }
        ("spi", _) => {
            let d = c.map(|c| c.display.clone()).unwrap_or_default();
            let present = std::path::Path::new(&d.spi_device).exists() && std::path::Path::new(&d.gpio_chip).exists();
            if present {
                check(
                    "display",
                    Verdict::Pass,
                    format!("{:?} on {} (D/C line {})", d.spi_model, d.spi_device, d.dc_line),
                    "",
                )
            } else {
                check(
                    "display",
                    Verdict::Fail,
                    format!("{} or {} is missing", d.spi_device, d.gpio_chip),
                    "enable SPI (dtparam=spi=on in config.txt) and check [display] spi_device and gpio_chip",
                )
            }
        }
        _ => check("display", Verdict::Pass, format!("backend {backend}"), ""),
    }
}

fn input(c: Option<&Config>) -> Check {
    if let Some(i) = c.map(|c| &c.input).filter(|i| i.backend == crate::config::InputBackend::Gpio) {
        // The button's line must be free to request (another program holding it would steal presses).
        return match i.open() {
            Ok(_) => check("input", Verdict::Pass, format!("button on {} line {}", i.chip, i.line), ""),
            // Beside the running service the line is rightly taken: by the agent, it is fine.
            Err(_) if crate::input::gpio::holder(&i.chip, i.line).as_deref() == Some("kiosk-agent") => check(
                "input",
                Verdict::Pass,
                format!("button on {} line {}, in use by the running kiosk-agent", i.chip, i.line),
                "",
            ),
            Err(e) => check("input", Verdict::Fail, e.to_string(), "check [input] chip and line against the wiring"),
        };
    }
    let gpio = devices("gpiochip");
    let mut ev: Vec<PathBuf> =
        std::fs::read_dir("/dev/input").map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    ev.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("event")));
    if gpio.is_empty() && ev.is_empty() {
        check(
            "input",
            Verdict::Warn,
            "no GPIO chip and no input device; consent must come from the host application",
            "wire the button to a GPIO pin, or connect a touch screen",
        )
    } else {
        check("input", Verdict::Pass, format!("found {}", list(&[gpio, ev].concat())), "")
    }
}

/// The evdev devices `[input] evdev` names or finds, and what each can do.
fn touch(c: Option<&Config>) -> Check {
    use crate::input::evdev;
    let Some(i) = c.map(|c| &c.input) else { return check("touch", Verdict::Warn, "no config", "pass --config") };
    let mut found = Vec::new();
    for path in evdev::resolve(&i.evdev) {
        match evdev::open(&path) {
            Ok(f) => {
                let caps = evdev::caps(&f);
                let what = match (caps, i.touch_calibration) {
                    (c, _) if c.touch => "touch panel",
                    // What says nothing of itself is the panel the calibration is for (as run).
                    (c, Some(_)) if c == evdev::Caps::default() => "touch panel",
                    (c, _) if c.keys => "keys",
                    _ => "neither a touch panel nor keys",
                };
                found.push(format!("{} ({what})", path.display()));
            }
            Err(e @ evdev::EvdevError::NotADevice { .. }) => {
                return check("touch", Verdict::Fail, e.to_string(), "fix [input] evdev in the config")
            }
            Err(e) => return check("touch", Verdict::Fail, e.to_string(), "connect the device if it is unplugged"),
        }
    }
    match (found.is_empty(), i.backend == crate::config::InputBackend::Gpio) {
        (false, _) => check("touch", Verdict::Pass, found.join(", "), ""),
        (true, true) => check("touch", Verdict::Pass, "no touch panel or keys found; the button answers", ""),
        (true, false) => check(
            "touch",
            Verdict::Warn,
            "no touch panel or keys found; consent must come from the host application",
            "connect the touch panel (its USB or I2C cable), or name it in [input] evdev",
        ),
    }
}

fn clock() -> Check {
    // adjtimex reports whether the kernel clock is being disciplined (NTP, chrony, timesyncd).
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, zeroed timex; modes 0 only reads.
    let state = unsafe { libc::adjtimex(&mut t) };
    let year_ok = UnixMillis::now().to_iso().as_str() >= "2025";
    if !year_ok {
        return check(
            "clock",
            Verdict::Fail,
            format!("the clock says {}", UnixMillis::now().to_iso()),
            "set the time (NTP); Smile ID refuses requests signed with a wrong clock",
        );
    }
    if state == libc::TIME_ERROR || (t.status & libc::STA_UNSYNC) != 0 {
        check(
            "clock",
            Verdict::Warn,
            format!("{} UTC, not synchronized by NTP", UnixMillis::now().to_iso()),
            "enable time sync: `timedatectl set-ntp true` (systemd-timesyncd or chrony)",
        )
    } else {
        check("clock", Verdict::Pass, format!("{} UTC, synchronized", UnixMillis::now().to_iso()), "")
    }
}

fn storage(c: &Config) -> Check {
    use std::os::unix::fs::MetadataExt;
    let dir = &c.state_dir;
    // A state dir that is not root's, looked at by root: written as root, the check would pass
    // where the service cannot write, and would leave root's files behind. Its files must be the
    // owner's.
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let owner = std::fs::metadata(dir).map(|m| m.uid()).ok().filter(|&o| o != me && me == 0);
    if let Some(owner) = owner {
        if let Some((f, uid)) = crate::queue::foreign_file(dir, owner) {
            return check(
                "storage",
                Verdict::Fail,
                format!(
                    "{} belongs to uid {uid}, not to the service's user (uid {owner}): the service cannot write it",
                    f.display()
                ),
                format!(
                    "chown -R {owner}: {} (a command run as root beside the stopped service left it)",
                    dir.display()
                ),
            );
        }
    }
    if let Err(e) = crate::store::private_dir(dir) {
        return check(
            "storage",
            Verdict::Fail,
            format!("cannot create {}: {e}", dir.display()),
            "create it, owned by the service user, mode 0700 (systemd: StateDirectory=kiosk-agent)",
        );
    }
    let probe = dir.join(".doctor-write-test");
    let written = match owner {
        // What root may write says nothing of what the service may: ask the modes instead.
        Some(owner) => owner_may_write(dir, owner),
        None => crate::store::write_private(&probe, b"ok"),
    };
    if let Err(e) = written {
        return check(
            "storage",
            Verdict::Fail,
            format!("{} is not writable: {e}", dir.display()),
            "fix its owner and permissions, or free space",
        );
    }
    let _ = std::fs::remove_file(&probe);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    let free = crate::queue::free_bytes(dir).unwrap_or(0);
    let need = c.queue.min_free_bytes + crate::queue::TYPICAL_JOB_BYTES;
    if free < need {
        check(
            "storage",
            Verdict::Fail,
            format!(
                "{} free in {}, {} needed",
                crate::queue::bytes_text(free),
                dir.display(),
                crate::queue::bytes_text(need)
            ),
            "free space on the SD card; queued jobs are kept until uploaded",
        )
    } else if mode & 0o077 != 0 {
        check(
            "storage",
            Verdict::Warn,
            format!("{} is mode {mode:o}: others can read personal data", dir.display()),
            format!("chmod 700 {}", dir.display()),
        )
    } else if let Some(problem) = match crate::queue::keys_are_the_services(&c.queue) {
        // Run by hand, the service's keys cannot be read here: whether the package's encrypted
        // credentials are there is what can be told.
        true => crate::queue::service_keys_missing(&c.queue),
        false => queue_keys_problem(c),
    } {
        check(
            "storage",
            Verdict::Fail,
            problem,
            "put back the keys the queue was written with, from the kiosk's backup; the jobs are kept meanwhile",
        )
    } else if expiry_words(c).is_some() || keys_beside_data_words(c).is_some() {
        // Both, where both apply: neither hides the other.
        let keys_advice = "on a kiosk, install the package: its keys come as systemd credentials from /etc/kiosk-agent/keys, named by [queue] encryption_key_file = \"bundle_key\" and device_key_file = \"device_key\"";
        let found = [
            expiry_words(c).map(|w| (w, "edit [queue] ttl_hours in the config, then restart the service")),
            keys_beside_data_words(c).map(|w| (w, keys_advice)),
        ];
        let (words, advice): (Vec<String>, Vec<&str>) = found.into_iter().flatten().unzip();
        check("storage", Verdict::Warn, words.join("; "), advice.join("; "))
    } else {
        check(
            "storage",
            Verdict::Pass,
            format!("{} writable, {} free", dir.display(), crate::queue::bytes_text(free)),
            "",
        )
    }
}

/// `owner` may write in `dir` and its bundles folder, by their modes (root checking for the
/// service's user).
fn owner_may_write(dir: &Path, owner: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for d in [dir.to_owned(), dir.join("bundles")] {
        match std::fs::metadata(&d) {
            Ok(m) if m.uid() == owner && m.mode() & 0o300 != 0o300 => {
                return Err(std::io::Error::other(format!(
                    "{} is mode {:o}: its owner cannot write in it",
                    d.display(),
                    m.mode() & 0o777
                )));
            }
            Ok(m) if m.uid() != owner => {
                return Err(std::io::Error::other(format!(
                    "{} belongs to uid {}, not to the service's user",
                    d.display(),
                    m.uid()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `queue.ttl_hours` that fails jobs a kiosk could not send in time, in words: an older
/// package's config set 72, and a kiosk upgraded keeps its config.
pub fn expiry_words(c: &Config) -> Option<String> {
    let (ttl, kept) = (c.queue.ttl_hours, c.queue.failed_retention_hours);
    // 72 is what an older package's config said: a policy of one's own is another number.
    (ttl == 72).then(|| {
        format!(
            "queue.ttl_hours = {ttl}, an older package's default, kept by the upgrade: a job not sent within {ttl} h (a kiosk offline that long) fails as expired, and {kept} h later its images are erased unless an operator retries it; set ttl_hours = 0 (the package's default now: a job waits for the link as long as it takes), or another number if your policy drops captures that old"
        )
    })
}

/// The queue's keys in the state dir, in words, if they are there.
pub fn keys_beside_data_words(c: &Config) -> Option<String> {
    let keys = crate::queue::keys_beside_data(&c.state_dir, &c.queue);
    let names: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
    (!names.is_empty()).then(|| {
        format!(
            "the queue's keys ({}) are in {}, beside the jobs they protect: a copy of that directory reads every queued job",
            names.join(", "),
            c.state_dir.display()
        )
    })
}

/// The queue's jobs that the configured keys cannot read, as the service would refuse to start
/// over them (nothing is changed: a read-only look).
fn queue_keys_problem(c: &Config) -> Option<String> {
    let q = crate::queue::Queue::open_read_only(&c.state_dir, c.queue.clone()).ok()?;
    let unreadable = q.stats().map(|s| s.unreadable).unwrap_or(0);
    match (&q.report.key_problem, unreadable) {
        (Some(k), 0) => Some(format!("the queue's keys: {k}")),
        (Some(k), n) => Some(format!("{n} queued job(s) cannot be read: {k}")),
        (None, 0) => None,
        (None, n) => Some(format!("{n} queued job(s) cannot be read with these keys")),
    }
}

fn secret_file(name: &'static str, p: Option<&Path>) -> Check {
    let Some(p) = p else { return check(name, Verdict::Fail, "not configured", "set it in [smileid]") };
    let resolved = crate::store::secret_path(p);
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&resolved) {
        Err(e) => check(
            name,
            Verdict::Fail,
            format!("{}: {e}", resolved.display()),
            "create it (mode 0600, owned by root) or pass it with LoadCredential=",
        ),
        // Read as the service reads it: a file of blanks is as empty as one of no bytes. One
        // this user may not read (an operator's doctor beside a root-only key) is unchecked.
        Ok(_) if std::fs::File::open(&resolved).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied) => {
            check(
                name,
                Verdict::Warn,
                format!("{} cannot be read by this user", resolved.display()),
                "run `kiosk-agent doctor` as root to check it",
            )
        }
        Ok(_) if crate::config::read_secret(p).is_err() => check(
            name,
            Verdict::Fail,
            format!("{} is empty or unreadable", resolved.display()),
            "put the secret in it, alone on one line",
        ),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => check(
            name,
            Verdict::Warn,
            format!("{} is readable by others (mode {:o})", resolved.display(), m.permissions().mode() & 0o777),
            format!("chmod 600 {}", resolved.display()),
        ),
        Ok(_) => check(name, Verdict::Pass, format!("{} present, private", resolved.display()), ""),
    }
}

/// Where the key or token is, and whether it is private.
pub fn custody(c: &Config) -> Check {
    let s = &c.smileid;
    match s.custody {
        Custody::LocalKey => {
            let mut k = secret_file("key custody", s.api_key_file.as_deref());
            if k.verdict == Verdict::Pass {
                k.detail =
                    format!("local API key: {}; consider a partner signer so the key leaves the kiosk", k.detail);
            }
            k
        }
        Custody::PartnerSigner => secret_file("key custody", s.device_token_file.as_deref()),
        Custody::AuthSmile => secret_file("key custody", s.auth_token_file.as_deref()),
    }
}

/// The API root and a client with short timeouts, or the failed check `name` saying which
/// setting is wrong.
fn client(c: &Config, name: &'static str) -> Result<(String, HttpClient), Check> {
    let base = c.base_url().map_err(|e| check(name, Verdict::Fail, e.to_string(), "fix [smileid] environment"))?;
    let t =
        Timeouts { connect_secs: 10, idle_secs: 10, send_body_secs: 10, recv_response_secs: 10, recv_body_secs: 10 };
    let http = HttpClient::new(c.smileid.extra_ca_file.as_deref(), &t)
        .map_err(|e| check(name, Verdict::Fail, e.to_string(), "fix [smileid] extra_ca_file"))?;
    Ok((base, http))
}

fn network(c: &Config) -> Check {
    let (base, http) = match client(c, "network") {
        Ok(x) => x,
        Err(failed) => return failed,
    };
    let root = crate::uplink::http::origin_of(&base);
    let req = HttpRequest {
        method: Method::Get,
        url: format!("{root}/"),
        content_type: "application/json",
        body: Vec::new(),
    };
    match http.execute(&req) {
        Err(e) if e.clock_behind_secs().is_some() => check("network", Verdict::Fail, e.to_string(), "fix the clock (NTP, or `timedatectl set-time`); jobs wait in the queue meanwhile"),
        Err(e) => check("network", Verdict::Fail, format!("cannot reach {root} over TLS: {e}"), "check the mobile data link, DNS, and that no captive portal or proxy intercepts TLS; jobs wait in the queue meanwhile"),
        Ok(r) => match r.date.as_deref().and_then(|d| clock_skew_secs(d, UnixMillis::now())) {
            Some(s) if s.unsigned_abs() > c.uplink.max_clock_skew_secs => check("network", Verdict::Fail, format!("{root} reachable, but this clock is {s} s off the server's"), "fix the clock (NTP); nothing is signed until then"),
            Some(s) => check("network", Verdict::Pass, format!("{root} reachable over verified TLS; clock within {s} s of the server"), ""),
            None => check("network", Verdict::Pass, format!("{root} reachable over verified TLS"), ""),
        },
    }
}

/// Whether Smile ID accepts this kiosk's signature: a job_status for a job that does not exist
/// is signed as every upload is, and asks for nothing that exists. Any answer but "not
/// authorized" means the partner id, the key (or signer) and the environment belong together.
fn credentials(c: &Config) -> Check {
    let advice = "check smileid.partner_id, the key (keys are per environment) and smileid.environment";
    let (base, http) = match client(c, "credentials") {
        Ok(x) => x,
        Err(failed) => return failed,
    };
    let signer = match c.signer(&http) {
        Ok(s) => s,
        Err(e) => return check("credentials", Verdict::Fail, e.to_string(), advice),
    };
    let job_id = format!("kiosk-doctor-{}", UnixMillis::now().0);
    let ctx = crate::smileid::signature::SignContext { job_type: 4, job_id: &job_id, user_id: "kiosk-doctor" };
    let signed = match signer.sign(UnixMillis::now(), &ctx) {
        Ok(s) => s,
        Err(e) => return check("credentials", Verdict::Fail, format!("nothing could be signed: {e}"), advice),
    };
    let body = crate::smileid::wire::JobStatusRequest {
        partner_id: c.smileid.partner_id.clone(),
        user_id: "kiosk-doctor".into(),
        job_id,
        image_links: false,
        history: false,
        timestamp: signed.timestamp,
        signature: signed.signature,
    };
    let req = HttpRequest {
        method: Method::Post,
        url: format!("{base}/job_status"),
        content_type: "application/json",
        body: serde_json::to_vec(&body).unwrap_or_default(),
    };
    let resp = match http.execute(&req) {
        Ok(r) => r,
        Err(e) => {
            return check(
                "credentials",
                Verdict::Warn,
                format!("not checked: {base} unreachable ({e})"),
                "run doctor again once the kiosk is online",
            )
        }
    };
    let code = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        // A string, or a number as some of Smile ID's answers give it.
        .and_then(|v| v["code"].as_str().map(str::to_owned).or_else(|| v["code"].as_u64().map(|n| n.to_string())))
        .unwrap_or_default();
    let pid = &c.smileid.partner_id;
    // A signature made on a wrong clock is refused as a wrong key's is: the clock is named first.
    let skew = resp.date.as_deref().and_then(|d| crate::uplink::drive::clock_skew_secs(d, UnixMillis::now()));
    let refused =
        matches!(resp.status, 401 | 403) || crate::smileid::credentials_refused(resp.status, &resp.body).is_some();
    if let Some(s) = skew.filter(|s| refused && s.unsigned_abs() > c.uplink.max_clock_skew_secs) {
        check(
            "credentials",
            Verdict::Fail,
            format!(
                "Smile ID refused the signature (code {code}), and this kiosk's clock is {} s {} Smile ID's",
                s.unsigned_abs(),
                if s < 0 { "behind" } else { "ahead of" }
            ),
            "set the clock right first (timedatectl; NTP), then run doctor again",
        )
    } else if refused {
        check(
            "credentials",
            Verdict::Fail,
            format!("Smile ID refused the signature of partner {pid} at {base} (HTTP {}, code {code})", resp.status),
            advice,
        )
    } else if let Some(page) = crate::smileid::not_smile_ids(resp.status, &resp.body) {
        check(
            "credentials",
            Verdict::Fail,
            format!("{base} answered {}, not Smile ID's API", page.message),
            "log the kiosk in to its Wi-Fi or take it off the proxy that answers in Smile ID's place; jobs wait in the queue meanwhile",
        )
    } else if !code.is_empty() {
        // Smile ID's own answer (its codes) about a job it does not have: the signature was taken.
        check("credentials", Verdict::Pass, format!("Smile ID accepts partner {pid}'s signature at {base}"), "")
    } else {
        check(
            "credentials",
            Verdict::Warn,
            format!(
                "not settled: {base} answered HTTP {} without Smile ID's codes to a signed job_status",
                resp.status
            ),
            "run doctor again shortly; if it persists, check smileid.environment and any proxy in between",
        )
    }
}

/// The control API's users and groups, looked up on this machine as the service does at start,
/// where one that is not there stops it.
pub fn control_api(c: &Config) -> Check {
    let name = "control API";
    let fix = "the package makes the \"kiosk\" group; users and groups of your own are yours to create";
    if let Err(e) = crate::api::access::Access::from_config(&c.api) {
        return check(name, Verdict::Fail, format!("the service would not start: {e}"), fix);
    }
    if let Some(g) = c.api.group.as_deref().filter(|g| crate::api::access::group_id(g).is_none()) {
        let detail = format!(
            "the service would not start: [api] group: there is no group {g:?} on this system; create it or fix the entry"
        );
        return check(name, Verdict::Fail, detail, fix);
    }
    check(
        name,
        Verdict::Pass,
        format!("socket {}; its users and groups are on this system", c.api.socket.display()),
        "",
    )
}

/// Runs every check; a check that panics is reported as failed.
pub fn run(config_path: &Path) -> Vec<Check> {
    let guard = |name: &'static str, f: &dyn Fn() -> Check| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| check(name, Verdict::Fail, "the check itself crashed", "report this as a bug"))
    };
    let cfg = Config::load(config_path);
    let mut out = vec![match &cfg {
        Ok(_) => check("config", Verdict::Pass, format!("{} is valid", config_path.display()), ""),
        Err(e) => check(
            "config",
            Verdict::Fail,
            e.to_string(),
            format!("fix {}; `kiosk-agent check-config` explains each key", config_path.display()),
        ),
    }];
    let c = cfg.as_ref().ok();
    out.push(guard("camera", &|| camera(c)));
    out.push(guard("display", &|| display(c)));
    out.push(guard("input", &|| input(c)));
    if c.is_some_and(|c| !c.input.evdev.is_empty()) {
        out.push(guard("touch", &|| touch(c)));
    }
    out.push(guard("clock", &|| clock()));
    if let Some(c) = c {
        out.push(guard("storage", &|| storage(c)));
        out.push(guard("key custody", &|| custody(c)));
        out.push(guard("control API", &|| control_api(c)));
        out.push(guard("network", &|| network(c)));
        out.push(guard("credentials", &|| credentials(c)));
    }
    out
}
