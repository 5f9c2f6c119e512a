//! The control API driven as a host application would: sessions for job types 1, 2, 4, 6 and
//! 11 and Enhanced KYC (5) against the sandbox, under each key custody mode; bad requests get a
//! 4xx naming the field; and the agent's logs never carry the API key or an ID number.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

use kiosk_agent::api::client::call;
use kiosk_agent::smileid::signature::{signature_for, ApiKey};
use kiosk_agent::smileid::timestamp::UnixMillis;

const ID_NUMBER: &str = "12345678901";
const AUTH_TOKEN: &str = "auth-token-for-sandbox-only";
const DEVICE_TOKEN: &str = "device-token-K01";

struct Agent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kiosk-agent run` against the sandbox, trusting `ca`, with the given custody lines.
fn start_agent_at(sb: &SandboxProcess, ca: &Path, custody: &str) -> Agent {
    start_agent_with(sb, ca, custody, "", (320, 240))
}

/// As [`start_agent_at`], with more `[display]` lines and the panel's size.
fn start_agent_with(sb: &SandboxProcess, ca: &Path, custody: &str, display: &str, (w, h): (u32, u32)) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[smileid]\npartner_id = \"{PARTNER_ID}\"\nenvironment = {:?}\nextra_ca_file = {:?}\npartner_name = \"Test Bank\"\n{custody}\n{camera}\
             [display]\nbackend = \"png\"\nout_dir = {:?}\nwidth = {w}\nheight = {h}\noutcome_secs = 2\n{display}\n[api]\nsocket = {:?}\nconsent_timeout_secs = 20\n\
             [queue]\nmin_free_bytes = 0\nreserve_bytes = 0\n[uplink]\nidle_poll_secs = 1\n",
            dir.path().join("state"),
            sb.base_url,
            ca,
            dir.path().join("screens"),
            socket,
            // The tests' person is the synthetic camera's face, unless a test names a camera.
            camera = if custody.contains("[camera]") { "" } else { "[camera]\nsource = \"synthetic\"\n" },
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::from(std::fs::File::create(dir.path().join("agent.out")).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let t = Instant::now();
    // Listening, not only bound: the file appears a moment before connections are taken.
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the agent did not open its socket: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Agent { child, socket, log, _dir: dir }
}

fn start_agent(sb: &SandboxProcess, custody: &str) -> Agent {
    start_agent_at(sb, &sb.ca_pem, custody)
}

fn api(a: &Agent, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(&a.socket, method, path, body.as_ref()).unwrap_or_else(|e| {
        panic!("{method} {path}: {e}; the agent's log:\n{}", std::fs::read_to_string(&a.log).unwrap_or_default())
    })
}

fn wait_for(a: &Agent, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let (s, v) = api(a, "GET", path, None);
        if s == 200 && done(&v) {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(90), "timed out waiting for {what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn person() -> Value {
    json!({"first_name": "Ada", "last_name": "Obi", "country": "NG", "id_type": "NIN_V2", "id_number": ID_NUMBER, "dob": "1990-01-01", "entered": true})
}

/// Runs one session through the API as a host app would, and waits for Smile ID's result.
fn session(a: &Agent, job_type: u8) -> Value {
    let id_info = match job_type {
        1 => person(),
        6 => json!({"country": "NG", "id_type": "PASSPORT"}),
        11 => json!({"country": "GH", "id_type": "GHANA_CARD"}),
        _ => Value::Null,
    };
    let (s, v) = api(
        a,
        "POST",
        "/v1/sessions",
        Some(
            json!({"job_type": job_type, "user_id": "host-user-1", "id_info": id_info, "partner_params": {"branch": "K-01"}}),
        ),
    );
    assert_eq!(s, 202, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    let job_id = v["job_id"].as_str().unwrap().to_string();
    wait_for(a, &format!("/v1/sessions/{sid}"), "the consent screen", |v| v["state"] == "awaiting_consent");
    let (s, v) = api(a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    assert_eq!(s, 200, "{v}");
    let end = wait_for(a, &format!("/v1/sessions/{sid}"), "the end of capture", |v| {
        !["awaiting_consent", "capturing", "review"].contains(&v["state"].as_str().unwrap_or(""))
    });
    assert_eq!(end["state"], "queued", "{end}");
    assert!(end["job"]["stage"].is_string(), "a queued session says where its job stands: {end}");
    // Captured with consent: a cancel now cannot take it back, and says who can.
    let (s, v) = api(a, "POST", &format!("/v1/sessions/{sid}/cancel"), None);
    assert_eq!((s, &v["code"]), (409, &json!("session_ended")), "{v}");
    assert!(v["error"].as_str().unwrap().contains("DELETE /v1/jobs/"), "{v}");
    // Images are kept 0 s after the result (the default), so a finished job ends erased.
    let job = wait_for(a, &format!("/v1/jobs/{job_id}"), "Smile ID's result", |v| v["stage"] == "erased");
    // The host polling the session, not the job, sees the verdict too.
    let (_, view) = api(a, "GET", &format!("/v1/sessions/{sid}"), None);
    assert_eq!((&view["state"], &view["job"]["stage"]), (&json!("queued"), &json!("erased")), "{view}");
    assert_eq!(view["job"]["job_success"], job["job_success"], "{view}");
    job
}

fn assert_clean_logs(a: &Agent, secrets: &[&str]) {
    let log = std::fs::read_to_string(&a.log).unwrap();
    for s in secrets {
        assert!(!log.contains(s), "the agent's log contains a secret or an ID number ({s}):\n{log}");
    }
}

#[test]
fn host_app_drives_every_job_type_with_a_local_key() {
    let sb = start_sandbox(&[]);
    let a = start_agent(&sb, &format!("custody = \"local_key\"\napi_key_file = {:?}", sb.key_file));
    for jt in [1u8, 2, 4, 6, 11] {
        let job = session(&a, jt);
        assert_eq!(job["job_success"], true, "job type {jt}: {job}");
        assert_eq!(job["result"]["PartnerParams"]["job_type"], jt);
        assert_eq!(job["bundle_bytes"], 0, "images erased after the result");
    }
    let (s, v) = api(&a, "POST", "/v1/enhanced_kyc", Some(json!({"user_id": "host-user-1", "id_info": person()})));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["ResultCode"], "1012");
    let looked_up = v["job_id"].as_str().unwrap().to_string();
    // A host whose client gave up before the answer reads it again by its job_id.
    let (s, again) = api(&a, "GET", &format!("/v1/jobs/{looked_up}"), None);
    assert_eq!((s, &again["result"], &again["job_type"]), (200, &v["result"], &json!(5)), "{again}");
    let records = sandbox_jobs(&sb);
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["uploads"] == 1 && r["consent_recorded"] == true), "{records:#?}");
    let (_, health) = api(&a, "GET", "/v1/health", None);
    assert_eq!(health["uplink"]["link"], "up", "{health}");
    // When the agent started, so a host application tells a restart (its sessions gone) from
    // a mistyped id.
    let started = health["started_at"].as_str().unwrap().to_string();
    let (s, v) = api(&a, "GET", "/v1/sessions/from-before", None);
    assert_eq!(s, 404);
    assert!(v["error"].as_str().unwrap().contains(&format!("started at {started}")), "{v}");
    assert_eq!(
        (health["status"].as_str(), health["problems"].as_array().map(Vec::len)),
        (Some("ok"), Some(0)),
        "{health}"
    );
    // The queue's figures are the uplink's as of its last pass, a moment after the last result.
    let t = std::time::Instant::now();
    let metrics = loop {
        let (_, metrics) = api(&a, "GET", "/metrics", None);
        let m = metrics.as_str().unwrap().to_string();
        if m.contains("kiosk_queue_jobs{stage=\"pending\"} 0") || t.elapsed().as_secs() > 10 {
            break m;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let m = metrics.as_str();
    for want in [
        "kiosk_queue_jobs{stage=\"pending\"} 0",
        "kiosk_sessions_total{outcome=\"completed\"} 5",
        "kiosk_jobs_captured_total 5",
        "kiosk_jobs_delivered_total 5",
        "kiosk_link_state{state=\"up\"} 1",
        "kiosk_job_size_bytes_count 5",
    ] {
        assert!(m.contains(want), "{want} in {m}");
    }
    let purged = records[0]["job_id"].as_str().unwrap();
    let (s, _) = api(&a, "DELETE", &format!("/v1/jobs/{purged}"), None);
    assert_eq!(s, 200);
    // Read again, it is said to be gone, not never to have been.
    let (s, v) = api(&a, "GET", &format!("/v1/jobs/{purged}"), None);
    assert_eq!((s, &v["code"]), (404, &json!("job_gone")), "{v}");
    // A purged job's job_id starts no new session: Smile ID has that job, and another person's
    // photos must never go into it.
    let start = json!({"user_id": "host-user-2", "job_type": 4, "job_id": purged});
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(start));
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("was used by an earlier job"), "{v}");
    // Nor a lookup's, nor a lookup with a used one.
    let start = json!({"user_id": "host-user-2", "job_type": 4, "job_id": looked_up});
    assert_eq!(api(&a, "POST", "/v1/sessions", Some(start)).0, 409);
    let lookup = json!({"user_id": "host-user-1", "job_id": purged, "id_info": person()});
    assert_eq!(api(&a, "POST", "/v1/enhanced_kyc", Some(lookup)).0, 409);
    assert_clean_logs(&a, &[API_KEY, ID_NUMBER]);
}

/// The screens `run` has drawn so far, oldest first: (name, path) from `NN-name.png`.
fn screens(a: &Agent) -> Vec<(String, PathBuf)> {
    let files = std::fs::read_dir(a._dir.path().join("screens")).map(|d| d.flatten().map(|e| e.path()).collect());
    let mut v: Vec<(u32, String, PathBuf)> = files
        .unwrap_or_else(|_| Vec::new())
        .into_iter()
        .filter_map(|p| {
            let (n, name) = p.file_stem()?.to_str()?.split_once('-')?;
            Some((n.parse().ok()?, name.to_string(), p.clone()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, name, p)| (name, p)).collect()
}

fn wait_screen(a: &Agent, what: &str, done: impl Fn(&[(String, PathBuf)]) -> bool) -> Vec<(String, PathBuf)> {
    let t = Instant::now();
    loop {
        let s = screens(a);
        if done(&s) {
            return s;
        }
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert!(t.elapsed() < Duration::from_secs(60), "timed out waiting for {what}; screens: {names:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a screen file is exactly `screen` drawn in English at the test panel's size.
fn shows(path: &Path, screen: &kiosk_agent::display::Screen) -> bool {
    shows_in(path, screen, &kiosk_agent::display::english(), (320, 240))
}

/// Whether a screen file is exactly `screen` drawn in `texts` at the test panel's size.
fn shows_in(
    path: &Path,
    screen: &kiosk_agent::display::Screen,
    texts: &kiosk_agent::display::Texts,
    (w, h): (u32, u32),
) -> bool {
    let mut c = kiosk_agent::display::Canvas::new(w, h);
    kiosk_agent::display::screens::render(screen, texts, &mut c);
    // The file may still be being written: a moment's patience.
    let t = Instant::now();
    loop {
        match image::open(path) {
            Ok(i) => return i.to_rgb8().as_raw() == &c.rgb,
            Err(e) => assert!(t.elapsed() < Duration::from_secs(3), "{}: {e}", path.display()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_shows(path: &Path, screen: &kiosk_agent::display::Screen) {
    assert!(shows(path, screen), "{} is not {screen:?}", path.display());
}

#[test]
fn run_keeps_the_screen_attended_between_sessions() {
    use kiosk_agent::display::screens::{Link, More, Problem, Start};
    use kiosk_agent::display::Screen;
    let sb = start_sandbox(&[]);
    let a = start_agent(&sb, &format!("api_key_file = {:?}", sb.key_file));
    // At start, before anyone asks for anything: the welcome screen, then online once probed.
    let online = Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } };
    let s = wait_screen(&a, "the welcome screen", |s| !s.is_empty());
    assert_eq!(s[0].0, "idle", "{s:?}");
    wait_screen(&a, "the online welcome", |s| s.last().is_some_and(|(n, p)| n == "idle" && shows(p, &online)));
    let job = session(&a, 4);
    assert_eq!(job["job_success"], true, "{job}");
    // The outcome, then the welcome again: nothing of the person's job is left on screen.
    let s = wait_screen(&a, "the welcome after the outcome", |s| {
        s.iter().rposition(|(n, _)| n == "saved").is_some_and(|i| s[i + 1..].iter().any(|(n, _)| n == "idle"))
    });
    let saved = s.iter().rposition(|(n, _)| n == "saved").unwrap();
    assert_shows(&s[saved].1, &Screen::Saved { online: true });
    assert_shows(&s[saved + 1].1, &online);
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let shown_for = modified(&s[saved + 1].1).duration_since(modified(&s[saved].1)).unwrap();
    assert!(shown_for >= Duration::from_millis(1800), "the outcome stayed {shown_for:?}, not outcome_secs = 2");
    let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
    let consent = names.iter().position(|n| *n == "consent").expect("consent shown");
    assert!(names[consent..saved].contains(&"capture"), "{names:?}");
    // With no push button (the host application answers), no "Press"/"Hold" under its buttons.
    let asked = Screen::Consent { partner: "Test Bank".into(), more: More::No, legend: Legend::None, face_only: true };
    assert_shows(&s[consent].1, &asked);
    // A person who says no sees "Cancelled", then the welcome again.
    let (st, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "host-user-2"})));
    assert_eq!(st, 202, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    wait_for(&a, &format!("/v1/sessions/{sid}"), "the consent screen", |v| v["state"] == "awaiting_consent");
    api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": false})));
    let before = s.len();
    let s = wait_screen(&a, "the welcome after a refusal", |s| {
        s.len() > before && s[before..].iter().any(|(n, _)| n == "error") && s.last().is_some_and(|(n, _)| n == "idle")
    });
    let err = s[before..].iter().rfind(|(n, _)| n == "error").unwrap();
    assert_shows(&err.1, &Screen::Error { problem: Problem::Cancelled });
    // With nobody at the kiosk to answer it (no button, no touch panel), a document photo is
    // kept unasked: no "is the card sharp?" flashes by and answers itself.
    let before = s.len();
    assert_eq!(session(&a, 6)["job_success"], true);
    let s = screens(&a);
    let names: Vec<&str> = s[before..].iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"document") && !names.contains(&"document-review"), "{names:?}");
}

use kiosk_agent::display::screens::Legend;
use kiosk_agent::display::touch::Action;
use kiosk_agent::display::{Screen, Texts};

/// A touch panel and keys, through a FIFO standing in for the evdev device (a test double: the
/// VM tests have the kernel's own). Kernel event records as a touch controller sends them.
struct FakeTouch(std::fs::File, (u32, u32));

impl FakeTouch {
    /// A person looks at the screen before they act on it: the agent takes nothing done sooner
    /// after a screen appears as meant for it.
    fn read(&self) {
        std::thread::sleep(kiosk_agent::app::frontdesk::NOT_YET_READ + Duration::from_millis(100));
    }

    /// The events, once the screen is read.
    fn send(&mut self, events: &[(u16, u16, i32)]) {
        self.read();
        self.send_at_once(events);
    }

    /// The events, without a look at the screen: a hurried finger.
    fn send_at_once(&mut self, events: &[(u16, u16, i32)]) {
        use kiosk_agent::input::evdev::EVENT_BYTES;
        use std::io::Write;
        for &(kind, code, value) in events {
            let mut r = vec![0u8; EVENT_BYTES];
            let at = EVENT_BYTES - 8;
            r[at..at + 2].copy_from_slice(&kind.to_ne_bytes());
            r[at + 2..at + 4].copy_from_slice(&code.to_ne_bytes());
            r[at + 4..].copy_from_slice(&value.to_ne_bytes());
            self.0.write_all(&r).unwrap();
        }
        self.0.flush().unwrap();
    }

    /// A finger on the centre of the button that does `action` on `screen`, and off again. Raw
    /// units 0..4095 on both axes (the config's touch_calibration).
    fn tap(&mut self, screen: Screen, texts: &Arc<Texts>, action: Action) {
        self.read();
        self.tap_at_once(screen, texts, action);
    }

    fn tap_at_once(&mut self, screen: Screen, texts: &Arc<Texts>, action: Action) {
        let (x, y) = centre(screen, texts, action, self.1);
        self.send_at_once(&[(1, 0x14a, 1), (3, 0, x), (3, 1, y), (0, 0, 0), (1, 0x14a, 0), (0, 0, 0)]);
    }

    /// A finger down on the button, slid to the panel's top left corner before it leaves.
    fn slide_off(&mut self, screen: Screen, texts: &Arc<Texts>, action: Action) {
        let (x, y) = centre(screen, texts, action, self.1);
        let up = [(3, 0, 5), (3, 1, 5), (0, 0, 0), (1, 0x14a, 0), (0, 0, 0)];
        self.send(&[(1, 0x14a, 1), (3, 0, x), (3, 1, y), (0, 0, 0)]);
        self.send(&up);
    }
}

/// The touch test's panel: a 7" 800×480, where the whole consent text fits.
const TOUCH_PANEL: (u32, u32) = (800, 480);

/// A 2.8" 240×320 touch panel, where the whole consent text takes pages.
const SMALL_TOUCH_PANEL: (u32, u32) = (240, 320);

/// The raw point at the centre of the button doing `action` on `screen` on a `w` × `h` panel.
fn centre(screen: Screen, texts: &Arc<Texts>, action: Action, (w, h): (u32, u32)) -> (i32, i32) {
    use kiosk_agent::display::touch::{targets, Shown};
    let px_per_mm = kiosk_agent::display::Canvas::new(w, h).px_per_mm;
    let shown = Shown {
        screen: screen.clone(),
        texts: texts.clone(),
        size: (w, h),
        px_per_mm,
        brand: kiosk_agent::display::brand::Brand::builtin(),
    };
    let t = targets(&shown)
        .into_iter()
        .find(|t| t.action == action)
        .unwrap_or_else(|| panic!("no {action:?} on {screen:?}"));
    ((t.x + t.w / 2) * 4095 / (w as i32 - 1), (t.y + t.h / 2) * 4095 / (h as i32 - 1))
}

/// An agent offering walk-up SmartSelfie, English, French and Swahili, whose touch panel is a
/// FIFO in `dir` (calibrated 0..4095 on both axes); the agent opens it after its socket.
fn agent_with_fifo_panel(sb: &SandboxProcess, dir: &Path, size: (u32, u32)) -> (Agent, PathBuf) {
    agent_with_fifo_panel_starting(sb, dir, size, "walk_up = \"smart_selfie\"\n")
}

/// The same, whose walk-ups are `walk_up` (the `[input]` lines).
fn agent_with_fifo_panel_starting(
    sb: &SandboxProcess,
    dir: &Path,
    size: (u32, u32),
    walk_up: &str,
) -> (Agent, PathBuf) {
    let fifo = dir.join("event0");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let custody = format!(
        "api_key_file = {:?}\n[input]\n{walk_up}evdev = [{fifo:?}]\ntouch_calibration = [0, 4095, 0, 4095]\n",
        sb.key_file
    );
    (start_agent_with(sb, &sb.ca_pem, &custody, "languages = [\"fr\", \"sw\"]", size), fifo)
}

/// A walk-up document verification on the touch panel: Start, I agree, then the card's front
/// and its back, each kept at its review. The job Smile ID gets has both sides: an ID card's
/// back is taken unless the config says `walk_up_document_back = false` (a passport). The next
/// person walks away at the review: the visit ends there, nothing kept, and the camera does not
/// go on to take a selfie of whoever comes next.
#[test]
fn a_walk_up_document_verification_takes_the_cards_front_and_back() {
    use kiosk_agent::display::screens::{Link, More, Side, Start};
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let walk_up = "walk_up = \"document\"\nwalk_up_country = \"KE\"\nwalk_up_id_type = \"NATIONAL_ID\"\nanswer_timeout_secs = 3\n";
    let (a, fifo) = agent_with_fifo_panel_starting(&sb, dir.path(), TOUCH_PANEL, walk_up);
    let mut touch = FakeTouch(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(), TOUCH_PANEL);
    let en = kiosk_agent::display::english();
    let idle = Screen::Idle { link: Link::Online, start: Start::Touch { languages: true } };
    wait_screen(&a, "the welcome", |s| s.last().is_some_and(|(_, p)| shows_in(p, &idle, &en, TOUCH_PANEL)));
    touch.tap(idle.clone(), &en, Action::Start);
    let consent =
        Screen::Consent { partner: "Test Bank".into(), more: More::Link, legend: Legend::None, face_only: false };
    wait_screen(&a, "the consent, of the face and the ID", |s| {
        s.last().is_some_and(|(n, p)| n == "consent" && shows_in(p, &consent, &en, TOUCH_PANEL))
    });
    touch.tap(consent.clone(), &en, Action::Yes);
    for (n, side) in [(1, Side::Front), (2, Side::Back)] {
        wait_screen(&a, &format!("the review of the card's {side:?}"), |s| {
            s.iter().filter(|(name, _)| name == "document-review").count() == n
        });
        let review = Screen::Document { side, hint: None, preview: None, review: true, legend: Legend::None };
        touch.tap(review, &en, Action::Keep);
    }
    let t = Instant::now();
    let types = loop {
        let jobs = sandbox_jobs(&sb);
        if let Some(j) = jobs.iter().find(|j| j["uploads"] == 1) {
            break j["image_types"].as_array().unwrap().iter().filter_map(|t| t.as_u64()).collect::<Vec<_>>();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no job reached Smile ID: {jobs:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // 1: the card's front; 5: its back.
    assert!(types.contains(&1) && types.contains(&5), "{types:?}");
    // The next person agrees, then walks away at the review of the card's front.
    wait_screen(&a, "the welcome again", |s| s.last().is_some_and(|(_, p)| shows_in(p, &idle, &en, TOUCH_PANEL)));
    let before = screens(&a).len();
    touch.tap(idle, &en, Action::Start);
    wait_screen(&a, "the next consent", |s| s[before..].iter().any(|(n, _)| n == "consent"));
    touch.tap(consent, &en, Action::Yes);
    wait_screen(&a, "the review nobody answers", |s| s[before..].iter().any(|(n, _)| n == "document-review"));
    let t = Instant::now();
    let state = loop {
        let (_, v) = api(&a, "GET", "/v1/sessions", None);
        match v[0]["state"].as_str() {
            Some("awaiting_consent" | "capturing" | "review") if t.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            _ => break v[0].clone(),
        }
    };
    assert_eq!(state["state"], "abandoned", "{state}");
    assert!(state["error"].as_str().is_some_and(|e| e.contains("walked away")), "{state}");
    let names: Vec<String> = screens(&a)[before..].iter().map(|(n, _)| n.clone()).collect();
    let review = names.iter().position(|n| n == "document-review").unwrap();
    assert!(!names[review..].iter().any(|n| n == "capture" || n == "document"), "went on after the review: {names:?}");
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "nothing kept of the visit left at the review: {jobs}");
}

#[test]
fn a_person_chooses_a_language_starts_reads_and_agrees_on_the_touch_panel() {
    use kiosk_agent::display::screens::{Link, Start};
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (a, fifo) = agent_with_fifo_panel(&sb, dir.path(), TOUCH_PANEL);
    // The agent opens the device after its socket; a FIFO's open meets the writer's.
    let mut touch = FakeTouch(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(), TOUCH_PANEL);
    let (en, fr) = (kiosk_agent::display::english(), Texts::load("fr", None).unwrap());
    let idle = Screen::Idle { link: Link::Online, start: Start::Touch { languages: true } };
    wait_screen(&a, "the welcome with a Start button", |s| {
        s.last().is_some_and(|(_, p)| shows_in(p, &idle, &en, TOUCH_PANEL))
    });
    // The right arrow: the next language offered, French.
    touch.send(&[(1, 106, 1), (1, 106, 0), (0, 0, 0)]);
    wait_screen(&a, "the welcome in French", |s| s.last().is_some_and(|(_, p)| shows_in(p, &idle, &fr, TOUCH_PANEL)));
    // The arrows beside the language's name: forward to Swahili, back to French.
    let sw = Texts::load("sw", None).unwrap();
    touch.tap(idle.clone(), &fr, Action::NextLanguage);
    wait_screen(&a, "the welcome in Swahili", |s| s.last().is_some_and(|(_, p)| shows_in(p, &idle, &sw, TOUCH_PANEL)));
    touch.tap(idle.clone(), &sw, Action::PreviousLanguage);
    wait_screen(&a, "the welcome in French again", |s| {
        s.last().is_some_and(|(_, p)| shows_in(p, &idle, &fr, TOUCH_PANEL))
    });
    // A tap that slides off the Start button starts nothing.
    touch.slide_off(idle.clone(), &fr, Action::Start);
    std::thread::sleep(Duration::from_millis(600));
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "{jobs}");
    touch.tap(idle.clone(), &fr, Action::Start);
    let consent = Screen::Consent {
        partner: "Test Bank".into(),
        more: kiosk_agent::display::screens::More::Link,
        legend: Legend::None,
        face_only: true,
    };
    wait_screen(&a, "the consent screen in French", |s| {
        s.last().is_some_and(|(n, p)| n == "consent" && shows_in(p, &consent, &fr, TOUCH_PANEL))
    });
    // "Read more": the whole text, then back to the short one, then "I agree".
    touch.tap(consent.clone(), &fr, Action::More);
    let open = Screen::Consent {
        partner: "Test Bank".into(),
        more: kiosk_agent::display::screens::More::Open(0),
        legend: Legend::None,
        face_only: true,
    };
    wait_screen(&a, "the whole consent text", |s| {
        s.last().is_some_and(|(n, p)| n == "consent-more" && shows_in(p, &open, &fr, TOUCH_PANEL))
    });
    touch.tap(open, &fr, Action::Back);
    wait_screen(&a, "the short consent again", |s| {
        s.last().is_some_and(|(n, p)| n == "consent" && shows_in(p, &consent, &fr, TOUCH_PANEL))
    });
    touch.tap(consent, &fr, Action::Yes);
    let s = wait_screen(&a, "the outcome", |s| s.iter().any(|(n, _)| n == "saved"));
    assert!(s.iter().any(|(n, _)| n == "capture"), "{s:?}");
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    let list = jobs.as_array().expect("a list of jobs");
    assert_eq!(list.len(), 1, "{jobs}");
    assert!(list[0]["user_id"].as_str().is_some_and(|u| u.starts_with("walkup-")), "{jobs}");
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("language chosen at the kiosk: fr"), "{log}");
    // After the visit the next person finds the kiosk's own language again.
    wait_screen(&a, "the welcome in English after the visit", |s| {
        s.last().is_some_and(|(_, p)| shows_in(p, &idle, &en, TOUCH_PANEL))
    });
    // The next person agrees, then changes their mind while the camera works: Esc stops the
    // session, and nothing is kept.
    let before = screens(&a).len();
    touch.tap(idle.clone(), &en, Action::Start);
    let consent_en = Screen::Consent {
        partner: "Test Bank".into(),
        more: kiosk_agent::display::screens::More::Link,
        legend: Legend::None,
        face_only: true,
    };
    wait_screen(&a, "the next consent", |s| {
        s[before..].iter().any(|(n, p)| n == "consent" && shows_in(p, &consent_en, &en, TOUCH_PANEL))
    });
    touch.tap(consent_en.clone(), &en, Action::Yes);
    wait_screen(&a, "the camera at work", |s| s[before..].iter().any(|(n, _)| n == "capture"));
    touch.send_at_once(&[(1, 1, 1), (1, 1, 0), (0, 0, 0)]);
    // How the newest session ended.
    let ended = || {
        let t = Instant::now();
        loop {
            let (_, v) = api(&a, "GET", "/v1/sessions", None);
            let last = v.as_array().and_then(|l| l.first()).map(|s| s["state"].as_str().unwrap_or("").to_string());
            match last.as_deref() {
                Some("awaiting_consent" | "capturing" | "review") if t.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                other => break other.map(String::from),
            }
        }
    };
    assert_eq!(ended().as_deref(), Some("cancelled"), "Esc while the camera works stops the session");
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "nothing kept of the stopped session: {jobs}");
    // Keys, as a kiosk without touch has them: the arrow on at the short consent opens the whole
    // text; Enter held until it repeats answers as the button's hold, back from it, then no.
    wait_screen(&a, "the welcome after the stop", |s| s.last().is_some_and(|(n, _)| n == "idle"));
    let before = screens(&a).len();
    // Enter pressed twice in a hurry starts the session; the second press, and a finger landing
    // on "I agree" the moment it appears, agree to nothing the person has not read.
    touch.read();
    touch.send_at_once(&[(1, 28, 1), (0, 0, 0), (1, 28, 0), (0, 0, 0), (1, 28, 1), (0, 0, 0), (1, 28, 0), (0, 0, 0)]);
    wait_screen(&a, "a third consent", |s| s[before..].iter().any(|(n, _)| n == "consent"));
    touch.tap_at_once(consent_en.clone(), &en, Action::Yes);
    std::thread::sleep(Duration::from_secs(1));
    let (_, v) = api(&a, "GET", "/v1/sessions", None);
    assert_eq!(v[0]["state"], "awaiting_consent", "a double press agreed to the consent: {v}");
    touch.send(&[(1, 106, 1), (1, 106, 0), (0, 0, 0)]);
    wait_screen(&a, "the whole text by the arrow key", |s| s.last().is_some_and(|(n, _)| n == "consent-more"));
    // Enter down for `ms`, repeated by the kernel meanwhile, then up.
    let enter_for = |touch: &mut FakeTouch, ms: u64| {
        touch.send(&[(1, 28, 1), (0, 0, 0), (1, 28, 2), (1, 28, 2), (0, 0, 0)]);
        std::thread::sleep(Duration::from_millis(ms));
        touch.send_at_once(&[(1, 28, 0), (0, 0, 0)]);
    };
    // Held as long as the button's hold (800 ms): back from the whole text, then no.
    enter_for(&mut touch, 900);
    wait_screen(&a, "the short consent again", |s| s.last().is_some_and(|(n, _)| n == "consent"));
    enter_for(&mut touch, 900);
    assert_eq!(ended().as_deref(), Some("declined"), "Enter held is no");
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
    // A slow, firm press, long enough for the kernel to repeat it, is still a press: it agrees.
    wait_screen(&a, "the welcome after the no", |s| s.last().is_some_and(|(n, _)| n == "idle"));
    let before = screens(&a).len();
    touch.tap(idle.clone(), &en, Action::Start);
    wait_screen(&a, "a fourth consent", |s| s[before..].iter().any(|(n, _)| n == "consent"));
    enter_for(&mut touch, 400);
    assert_eq!(ended().as_deref(), Some("queued"), "a slow press is yes");
}

/// On a 2.8" panel the whole consent takes pages: a tap on "1 / 3 ›" turns on, the button
/// beside it back, and "I agree" stays on every page.
#[test]
fn a_person_turns_the_whole_consents_pages_on_and_back_on_a_small_touch_panel() {
    use kiosk_agent::display::screens::{Link, More, Start};
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (a, fifo) = agent_with_fifo_panel(&sb, dir.path(), SMALL_TOUCH_PANEL);
    let mut touch = FakeTouch(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(), SMALL_TOUCH_PANEL);
    let en = kiosk_agent::display::english();
    let idle = Screen::Idle { link: Link::Online, start: Start::Touch { languages: true } };
    let on = |s: &[(String, PathBuf)], screen: &Screen| {
        s.last().is_some_and(|(_, p)| shows_in(p, screen, &en, SMALL_TOUCH_PANEL))
    };
    wait_screen(&a, "the welcome with a Start button", |s| on(s, &idle));
    touch.tap(idle, &en, Action::Start);
    let consent = |more| Screen::Consent { partner: "Test Bank".into(), more, legend: Legend::None, face_only: true };
    wait_screen(&a, "the consent screen", |s| on(s, &consent(More::Link)));
    touch.tap(consent(More::Link), &en, Action::More);
    wait_screen(&a, "the whole consent's first page", |s| on(s, &consent(More::Open(0))));
    touch.tap(consent(More::Open(0)), &en, Action::More);
    wait_screen(&a, "its second page", |s| on(s, &consent(More::Open(1))));
    touch.tap(consent(More::Open(1)), &en, Action::PreviousPage);
    let s = wait_screen(&a, "the first page again", |s| {
        on(s, &consent(More::Open(0))) && s.iter().filter(|(n, _)| n == "consent-more").count() == 3
    });
    let pages: Vec<bool> = s
        .iter()
        .filter(|(n, _)| n == "consent-more")
        .map(|(_, p)| shows_in(p, &consent(More::Open(1)), &en, SMALL_TOUCH_PANEL))
        .collect();
    assert_eq!(pages, [false, true, false], "first, second, first");
    touch.tap(consent(More::Open(0)), &en, Action::Yes);
    wait_screen(&a, "the outcome", |s| s.iter().any(|(n, _)| n == "saved"));
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
}

/// A panel unplugged (here: the FIFO standing in for its device loses its writer, which the
/// agent reads as the device going away) is read again once it is back, within the rescan.
#[test]
fn a_touch_panel_unplugged_and_plugged_back_in_is_read_again() {
    use kiosk_agent::display::screens::{Link, Start};
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (a, fifo) = agent_with_fifo_panel(&sb, dir.path(), TOUCH_PANEL);
    // Opened without waiting (a FIFO's writer otherwise waits for a reader for ever): refused
    // until the agent opens its end.
    let plug_in = || {
        use std::os::unix::fs::OpenOptionsExt;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo) {
                Ok(f) => break FakeTouch(f, TOUCH_PANEL),
                Err(e) => assert!(Instant::now() < deadline, "the agent does not read the panel: {e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let idle = Screen::Idle { link: Link::Online, start: Start::Touch { languages: true } };
    let shows =
        |t: &Arc<Texts>, s: &[(String, PathBuf)]| s.last().is_some_and(|(_, p)| shows_in(p, &idle, t, TOUCH_PANEL));
    let (en, fr, sw) =
        (kiosk_agent::display::english(), Texts::load("fr", None).unwrap(), Texts::load("sw", None).unwrap());
    let mut touch = plug_in();
    wait_screen(&a, "the welcome", |s| shows(&en, s));
    touch.send(&[(1, 106, 1), (1, 106, 0), (0, 0, 0)]);
    wait_screen(&a, "the welcome in French", |s| shows(&fr, s));
    drop(touch);
    let gone = "closed (unplugged?); it is read again when it is back";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&a.log).unwrap().contains(gone) {
        assert!(Instant::now() < deadline, "the agent did not notice the panel go");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Without the panel, this kiosk (no button, no keys) has nothing a person can answer with:
    // the welcome asks for staff, not to tap a Start button nobody can tap.
    let staff = Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } };
    wait_screen(&a, "the staff welcome, the panel gone", |s| {
        s.last().is_some_and(|(_, p)| shows_in(p, &staff, &fr, TOUCH_PANEL))
    });
    // The open meets the agent's when it looks again.
    let mut touch = plug_in();
    touch.send(&[(1, 106, 1), (1, 106, 0), (0, 0, 0)]);
    wait_screen(&a, "the welcome in Swahili, from the panel plugged back in", |s| shows(&sw, s));
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert_eq!(log.matches("reading input device").count(), 2, "{log}");
}

#[test]
fn health_says_what_is_wrong() {
    let sb = start_sandbox(&[]);
    let custody =
        format!("api_key_file = {:?}\n[camera]\nsource = \"v4l2\"\ndevice = \"/dev/video-unplugged\"", sb.key_file);
    let a = start_agent(&sb, &custody);
    let (s, health) = api(&a, "GET", "/v1/health", None);
    assert_eq!(s, 200);
    assert_eq!(health["status"], "camera_missing", "{health}");
    assert!(health["problems"].as_array().unwrap().contains(&json!("camera_missing")), "{health}");
    // No consent is asked for photos no camera can take.
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u"})));
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("/dev/video-unplugged"), "{v}");
    // The kiosk's staff see it in the journal too.
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("warning: no session was started: the camera /dev/video-unplugged is missing"), "{log}");
}

#[test]
fn sessions_started_at_the_same_moment_start_once() {
    let sb = start_sandbox(&[]);
    let a = start_agent(&sb, &format!("api_key_file = {:?}", sb.key_file));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let a = &a;
                s.spawn(move || {
                    api(a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": format!("racer-{i}")}))).0
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
}

#[test]
fn declined_cancelled_and_busy_sessions() {
    let sb = start_sandbox(&[]);
    let a = start_agent(&sb, &format!("api_key_file = {:?}", sb.key_file));
    let (_, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u"})));
    let sid = v["session_id"].as_str().unwrap().to_string();
    let (s, busy) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u2"})));
    assert_eq!((s, &busy["code"]), (409, &json!("session_running")), "one camera, one session at a time: {busy}");
    assert_eq!(busy["session_id"], json!(sid), "the caller's own running session is named: {busy}");
    // Every error carries a code to branch on, not only text.
    for (method, path, body, status, code) in [
        ("GET", "/v1/sessions/nosuch".to_string(), None, 404, "no_session"),
        ("GET", "/v1/jobs/nosuch".to_string(), None, 404, "no_job"),
        ("DELETE", "/v1/sessions".to_string(), None, 405, "method_not_allowed"),
        ("POST", format!("/v1/sessions/{sid}/consent"), Some(json!(["granted"])), 400, "bad_request"),
        (
            "POST",
            "/v1/sessions".to_string(),
            Some(json!({"job_type": 4, "user_id": "é".repeat(129)})),
            422,
            "invalid_field",
        ),
    ] {
        let (s, v) = api(&a, method, &path, body);
        assert_eq!((s, &v["code"]), (status, &json!(code)), "{method} {path}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // An id's limit is in characters, as said, and the field is named as sent.
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "é".repeat(129)})));
    assert!(s == 422 && v["error"].as_str().unwrap().starts_with("invalid user_id: is longer than 128"), "{v}");
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "é".repeat(128)})));
    assert_eq!((s, &v["code"]), (409, &json!("session_running")), "128 characters pass the check: {v}");
    api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": false})));
    let v = wait_for(&a, &format!("/v1/sessions/{sid}"), "declined", |v| v["state"] != "awaiting_consent");
    assert_eq!(v["state"], "declined");
    assert!(v["error"].as_str().unwrap().contains("consent was declined"), "{v}");
    // An answer to a session that has ended is refused, saying so.
    let (s, v) = api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    assert_eq!((s, &v["code"]), (409, &json!("session_ended")), "{v}");
    let (_, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u3"})));
    let sid = v["session_id"].as_str().unwrap().to_string();
    // The answer to a cancel is how the session ended, not the state before.
    let (s, v) = api(&a, "POST", &format!("/v1/sessions/{sid}/cancel"), None);
    assert_eq!((s, &v["state"]), (200, &json!("cancelled")), "{v}");
    // With the camera running and no question on screen, a "no" is not taken silently.
    // A language tag as a platform writes it finds its language.
    let (_, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u4", "language": "pt_BR"})));
    let sid = v["session_id"].as_str().unwrap().to_string();
    api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    wait_for(&a, &format!("/v1/sessions/{sid}"), "the camera", |v| v["state"] == "capturing");
    // A "yes" sent again (its answer lost) is told the person has agreed already.
    let (s, v) = api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    assert_eq!((s, &v["code"]), (409, &json!("no_question")), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("agreed already") && !v["error"].as_str().unwrap().contains("/cancel"),
        "{v}"
    );
    let (s, v) = api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": false})));
    assert_eq!((s, &v["code"]), (409, &json!("no_question")), "{v}");
    assert!(v["error"].as_str().unwrap().contains("/cancel"), "{v}");
    let (s, v) = api(&a, "POST", &format!("/v1/sessions/{sid}/cancel"), None);
    assert_eq!((s, &v["state"]), (200, &json!("cancelled")), "{v}");
    let (_, jobs) = api(&a, "GET", "/v1/jobs", None);
    assert_eq!(jobs.as_array().unwrap().len(), 0, "nothing kept: {jobs}");
    // A host application that restarted finds its sessions, newest first.
    let (s, all) = api(&a, "GET", "/v1/sessions", None);
    let states: Vec<&str> = all.as_array().unwrap().iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!((s, states), (200, vec!["cancelled", "cancelled", "declined"]), "{all}");
    assert_eq!(all[0]["session_id"], sid.as_str());
    assert_eq!((&all[0]["user_id"], &all[0]["language"]), (&json!("u4"), &json!("pt")), "its customer: {all}");
}

#[test]
fn bad_requests_get_a_4xx_naming_the_field() {
    let sb = start_sandbox(&[]);
    let a = start_agent(&sb, &format!("api_key_file = {:?}", sb.key_file));
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("POST", "/v1/sessions", Some(json!({"user_id": "u"})), 422, "job_type"),
        ("POST", "/v1/sessions", Some(json!({"job_type": 5, "user_id": "u"})), 422, "job_type"),
        ("POST", "/v1/sessions", Some(json!({"job_type": 1, "user_id": "u"})), 422, "id_info.entered"),
        (
            "POST",
            "/v1/sessions",
            Some(json!({"job_type": 1, "user_id": "u", "id_info": {"country": "Nigeria", "entered": true}})),
            422,
            "id_info.country",
        ),
        ("POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": ""})), 422, "user_id"),
        ("POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u", "language": "fr fr"})), 422, "language"),
        ("POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u", "language": "zz"})), 422, "language"),
        ("POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u", "colour": "red"})), 422, "colour"),
        (
            "POST",
            "/v1/sessions",
            Some(json!({"job_type": 4, "user_id": "u", "partner_params": {"n": 5}})),
            422,
            "partner_params.n",
        ),
        (
            "POST",
            "/v1/sessions",
            Some(json!({"job_type": 4, "user_id": "u", "partner_params": {"kiosk_id": "spoof"}})),
            422,
            "partner_params.kiosk_id",
        ),
        (
            "POST",
            "/v1/sessions",
            Some(json!({"job_type": 4, "user_id": "u", "partner_params": {"KIOSK_ID": "spoof"}})),
            422,
            "partner_params.KIOSK_ID",
        ),
        (
            "POST",
            "/v1/sessions",
            Some(json!({"job_type": 4, "user_id": "u", "options": {"return_history": "yes"}})),
            422,
            "options.return_history",
        ),
        (
            "POST",
            "/v1/sessions",
            Some(json!({"job_type": 6, "user_id": "u", "id_info": {"id_type": "PASSPORT"}})),
            422,
            "id_info.country",
        ),
        ("POST", "/v1/sessions", Some(json!([1, 2])), 400, "JSON object"),
        ("POST", "/v1/sessions/abc/consent", Some(json!({"granted": "yes"})), 422, "granted"),
        ("GET", "/v1/sessions/nope", None, 404, "session"),
        ("GET", "/v1/jobs/nope", None, 404, "job"),
        ("DELETE", "/v1/jobs/nope", None, 404, "nope"),
        (
            "POST",
            "/v1/enhanced_kyc",
            Some(json!({"user_id": "u", "id_info": {"country": "NG"}})),
            422,
            "id_info.id_type",
        ),
        ("PUT", "/v1/health", None, 405, "not allowed"),
        ("GET", "/v1/sessions/abc/consent", None, 405, "not allowed"),
        ("POST", "/v1/sessions/abc/retake", None, 404, "no endpoint"),
        ("GET", "/v2/anything", None, 404, "no endpoint"),
    ];
    for (m, p, body, status, names) in cases {
        let (s, v) = api(&a, m, p, body.clone());
        assert_eq!(s, status, "{m} {p} {body:?}: {v}");
        assert!(v["error"].as_str().unwrap_or("").contains(names), "{m} {p}: the error must name {names}: {v}");
    }
    // Malformed JSON on the wire.
    let (s, v) = call(&a.socket, "POST", "/v1/sessions", Some(&Value::String("{not json".into()))).unwrap();
    assert_eq!(s, 400, "{v}");
    // A key twice: a proxy reading the first would see another request than the kiosk's.
    let twice = r#"{"job_type": 4, "user_id": "alice", "user_id": "mallory"}"#;
    let mut c = std::os::unix::net::UnixStream::connect(&a.socket).unwrap();
    let req = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{twice}",
        twice.len()
    );
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut c, &mut answer).unwrap();
    let said = r#"\"user_id\" is given twice"#;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains(said) && answer.contains("bad_request"), "{answer}");
}

/// A stand-in for the partner's signing backend: holds the API key, checks the device token.
fn start_partner_signer(dir: &Path) -> (u16, Arc<AtomicBool>, PathBuf) {
    let (ca, tls) = kiosk_agent::sandbox::tls::server_config(dir, &["127.0.0.1".into()]).unwrap();
    let ca_path = dir.join("signer-ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let handler = Arc::new(|req: &kiosk_agent::httpd::Request| {
        if req.header("authorization") != Some(&format!("Bearer {DEVICE_TOKEN}")) {
            return kiosk_agent::httpd::Response::json(401, &json!({"error": "unknown device"}));
        }
        let ts = UnixMillis::now().to_iso();
        kiosk_agent::httpd::Response::json(
            200,
            &json!({"timestamp": ts, "signature": signature_for(&ApiKey::new(API_KEY), PARTNER_ID, &ts)}),
        )
    });
    let s = stop.clone();
    std::thread::spawn(move || kiosk_agent::httpd::serve(listener, tls, s, handler));
    (port, stop, ca_path)
}

#[test]
fn partner_signer_and_auth_smile_custody_keep_the_key_off_the_kiosk() {
    let token_dir = tempfile::tempdir().unwrap();
    let auth_file = token_dir.path().join("auth_token");
    std::fs::write(&auth_file, AUTH_TOKEN).unwrap();
    let sb = start_sandbox(&["--auth-token-file", auth_file.to_str().unwrap()]);

    // auth_smile: Smile ID mints the signature per job from the kiosk's auth_token.
    let a = start_agent(&sb, &format!("custody = \"auth_smile\"\nauth_token_file = {auth_file:?}"));
    let job = session(&a, 4);
    assert_eq!(job["job_success"], true, "{job}");
    let (s, v) = api(&a, "POST", "/v1/enhanced_kyc", Some(json!({"user_id": "u", "id_info": person()})));
    assert_eq!((s, &v["result"]["ResultCode"]), (200, &json!("1012")), "{v}");
    assert_clean_logs(&a, &[API_KEY, AUTH_TOKEN, ID_NUMBER]);
    drop(a);

    // partner_signer: the partner's backend signs; the kiosk holds only a device token.
    let (port, stop, signer_ca) = start_partner_signer(token_dir.path());
    // One PEM with both CAs: the sandbox's and the signer's.
    let both = token_dir.path().join("both-ca.pem");
    std::fs::write(
        &both,
        format!("{}{}", std::fs::read_to_string(&sb.ca_pem).unwrap(), std::fs::read_to_string(&signer_ca).unwrap()),
    )
    .unwrap();
    let token_file = token_dir.path().join("device_token");
    std::fs::write(&token_file, DEVICE_TOKEN).unwrap();
    let custody = format!("custody = \"partner_signer\"\nsigner_url = \"https://127.0.0.1:{port}/sign\"\ndevice_token_file = {token_file:?}");
    let a = start_agent_at(&sb, &both, &custody);
    let job = session(&a, 4);
    assert_eq!(job["job_success"], true, "{job}");
    assert_clean_logs(&a, &[API_KEY, DEVICE_TOKEN]);

    // A device the signer does not know gets nothing signed: the job waits, nothing is sent.
    std::fs::write(&token_file, "stolen-or-revoked").unwrap();
    let b = start_agent_at(&sb, &both, &custody);
    let (_, v) = api(&b, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u9"})));
    let sid = v["session_id"].as_str().unwrap().to_string();
    let job_id = v["job_id"].as_str().unwrap().to_string();
    wait_for(&b, &format!("/v1/sessions/{sid}"), "consent", |v| v["state"] == "awaiting_consent");
    api(&b, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    let rec =
        wait_for(&b, &format!("/v1/jobs/{job_id}"), "a refused signature", |v| v["attempts"].as_u64().unwrap_or(0) > 0);
    assert_eq!(rec["stage"], "queued", "{rec}");
    assert!(rec["last_error"].as_str().unwrap().contains("partner signer refused"), "{rec}");
    assert!(sandbox_jobs(&sb).iter().all(|r| r["job_id"] != job_id.as_str()));
    // Every job would meet the same refusal: the kiosk is paused, and says what to check.
    let h = wait_for(&b, "/v1/health", "uploads paused", |v| v["status"] == "paused");
    assert!(h["uplink"]["error"].as_str().unwrap().contains("device token"), "{h}");
    // The waiting job says what holds it, not only health.
    let (_, rec) = api(&b, "GET", &format!("/v1/jobs/{job_id}"), None);
    assert_eq!((&rec["stage"], &rec["held"]), (&json!("queued"), &json!("paused")), "{rec}");
    let (_, all) = api(&b, "GET", "/v1/jobs", None);
    assert!(all.as_array().unwrap().iter().any(|j| j["job_id"] == job_id.as_str() && j["held"] == "paused"), "{all}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A job_id holding a slash, a space, `?`, `#`, `%` or letters outside ASCII is reached through
/// the API escaped, and through the CLI (which escapes it), like any other: it used to be
/// accepted, delivered, and then out of reach (404, or "only HTTP/1.x is spoken here").
#[test]
fn a_job_id_of_any_printable_characters_stays_reachable() {
    let sb = start_sandbox(&[]);
    let a = start_agent(&sb, &format!("custody = \"local_key\"\napi_key_file = {:?}", sb.key_file));
    let id = "../x y?#jöb%2F";
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u-1", "job_id": id})));
    assert_eq!(s, 202, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    wait_for(&a, &format!("/v1/sessions/{sid}"), "the consent screen", |v| v["state"] == "awaiting_consent");
    let (s, v) = api(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    assert_eq!(s, 200, "{v}");
    let path = format!("/v1/jobs/{}", kiosk_agent::api::escape_segment(id));
    let job = wait_for(&a, &path, "Smile ID's result", |v| v["stage"] == "erased");
    assert_eq!(job["job_id"], id);
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
            .arg("jobs")
            .arg("--socket")
            .arg(&a.socket)
            .args(args)
            .output()
            .unwrap()
    };
    let o = cli(&[id]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains(id), "{o:?}");
    let o = cli(&[id, "--purge"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(api(&a, "GET", &path, None).0, 404);
    // An escape that is not one is refused as such.
    let (s, v) = api(&a, "GET", "/v1/jobs/%zz", None);
    assert_eq!(s, 400, "{v}");
}

/// A host whose client gave up on a slow Enhanced KYC lookup and asks again: the lookup under
/// way is not sent twice (Smile ID bills each), and its answer is read by its job_id.
#[test]
fn an_enhanced_kyc_lookup_under_way_is_sent_once_and_read_again() {
    let sb = start_sandbox(&["--latency-ms", "1500"]);
    let a = start_agent(&sb, &format!("api_key_file = {:?}", sb.key_file));
    let body = json!({"user_id": "host-user-1", "job_id": "ek-slow", "id_info": person()});
    let (socket, first) = (a.socket.clone(), body.clone());
    let slow = std::thread::spawn(move || call(&socket, "POST", "/v1/enhanced_kyc", Some(&first)).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let (s, v) = api(&a, "GET", "/v1/jobs/ek-slow", None);
    assert_eq!((s, &v["stage"]), (200, &json!("uploaded")), "under way: {v}");
    let (s, v) = api(&a, "POST", "/v1/enhanced_kyc", Some(body));
    assert_eq!((s, &v["code"]), (409, &json!("job_id_used")), "sent again while under way: {v}");
    // Nor does a capture session take the lookup's job_id: its job would be refused when saved,
    // after the person's two minutes at the camera.
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u", "job_id": "ek-slow"})));
    assert_eq!((s, &v["code"]), (409, &json!("job_id_used")), "a session with a lookup's job_id: {v}");
    let (s, answer) = slow.join().unwrap();
    assert_eq!(s, 200, "{answer}");
    let (s, again) = api(&a, "GET", "/v1/jobs/ek-slow", None);
    assert_eq!((s, &again["stage"], &again["result"]), (200, &json!("result"), &answer["result"]), "{again}");
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert_eq!(log.matches("Enhanced KYC lookup ek-slow answered").count(), 1, "{log}");
    // A session's job_id is its own from the 202: a lookup cannot take it meanwhile.
    let start = json!({"job_type": 4, "user_id": "u", "job_id": "s-own"});
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(start.clone()));
    assert_eq!(s, 202, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    let (s, v) =
        api(&a, "POST", "/v1/enhanced_kyc", Some(json!({"user_id": "u", "job_id": "s-own", "id_info": person()})));
    assert_eq!((s, &v["code"]), (409, &json!("job_id_used")), "a lookup with a running session's job_id: {v}");
    // The same request sent again (its answer lost) is told which session it started.
    let (s, v) = api(&a, "POST", "/v1/sessions", Some(start));
    assert_eq!((s, &v["code"]), (409, &json!("session_running")), "{v}");
    assert!(v["error"].as_str().unwrap().contains(&format!("GET /v1/sessions/{sid}")), "{v}");
    api(&a, "POST", &format!("/v1/sessions/{sid}/cancel"), None);
}
