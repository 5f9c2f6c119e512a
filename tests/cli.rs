//! The CLI as an operator uses it: capture a job offline, upload it later, see the queue; and
//! bad input refused with a message that names what is wrong, never echoing the API key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn agent(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiosk-agent")).args(args).arg("--config").arg(config).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn write_config(dir: &Path, sb: &SandboxProcess) -> std::path::PathBuf {
    let cfg = format!(
        "state_dir = {:?}\n[smileid]\npartner_id = \"{PARTNER_ID}\"\nenvironment = {:?}\napi_key_file = {:?}\nextra_ca_file = {:?}\n[camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\nwidth = 320\nheight = 240\n",
        dir.join("state"),
        sb.base_url,
        sb.key_file,
        sb.ca_pem,
        dir.join("screens")
    );
    let p = dir.join("kiosk.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

#[test]
fn capture_offline_then_upload_exactly_once() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let id_info = dir.path().join("id.json");
    std::fs::write(
        &id_info,
        r#"{"country":"NG","id_type":"NIN_V2","id_number":"12345678901","first_name":"Ada","entered":true}"#,
    )
    .unwrap();

    let o = agent(&["capture", "--user-id", "u-7", "--consent-given", "--id-info", id_info.to_str().unwrap()], &config);
    assert!(o.status.success(), "{}", text(&o));
    let job_id = String::from_utf8(o.stdout.clone()).unwrap().trim().to_string();
    assert!(job_id.starts_with("kiosk-"), "{job_id}");
    assert!(sandbox_jobs(&sb).is_empty(), "capture sends nothing");

    let ls = agent(&["queue", "ls"], &config);
    assert!(text(&ls).contains(&job_id) && text(&ls).contains("queued"), "{}", text(&ls));

    let up = agent(&["upload"], &config);
    assert!(up.status.success(), "{}", text(&up));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&up.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["job_id"], job_id.as_str());
    assert_eq!(line["stage"], "erased", "the result is in and the images erased at once");
    // The operator's log: the link, then the job's step with its fields.
    let log = String::from_utf8_lossy(&up.stderr);
    assert!(log.contains("link up") && log.contains("LINK=up"), "{log}");
    assert!(log.contains(&format!("JOB_ID={job_id} STAGE=erased SMILE_CODE=")), "{log}");
    assert_eq!(line["job_success"], true);

    let ls = agent(&["queue", "ls"], &config);
    assert!(text(&ls).contains("erased"), "images erased once the result is in: {}", text(&ls));
    // A second upload sends nothing again.
    let again = agent(&["upload"], &config);
    assert!(again.status.success() && again.stdout.is_empty(), "{}", text(&again));
    let jobs = sandbox_jobs(&sb);
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0]["preps"].as_u64(), jobs[0]["uploads"].as_u64()), (Some(1), Some(1)));

    // Neither output ever carries the key or the ID number.
    for o in [&o, &ls, &up, &again] {
        let t = text(o);
        assert!(!t.contains(API_KEY) && !t.contains("12345678901"), "{t}");
    }
    // The queued bundle was private while it existed, and is gone now the result is final.
    assert_eq!(std::fs::read_dir(dir.path().join("state/bundles")).unwrap().count(), 0);
}

/// `capture` without --consent-given on a kiosk with no button: nobody could answer the consent
/// screen, so it refuses before the camera starts, says why and what to do, and records nothing.
#[test]
fn a_consent_nobody_can_give_records_nothing() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let o = agent(&["capture", "--user-id", "u-8", "--job-type", "4"], &config);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("nobody can answer the consent screen") && text(&o).contains("--consent-given"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("screens").exists(), "the screen was not touched");
    let ls = agent(&["queue", "ls", "--json"], &config);
    let records: Vec<serde_json::Value> = serde_json::from_slice(&ls.stdout).unwrap();
    assert!(records.is_empty(), "{}", text(&ls));
    assert_eq!(text(&agent(&["queue", "ls"], &config)).lines().count(), 1, "a header, no jobs");
    // A job_id already queued is refused before anyone stands in front of the camera.
    let once = ["capture", "--user-id", "u-8", "--job-type", "4", "--consent-given", "--job-id", "kiosk-twice"];
    assert!(agent(&once, &config).status.success());
    std::fs::remove_dir_all(dir.path().join("screens")).unwrap();
    let o = agent(&once, &config);
    assert!(!o.status.success() && text(&o).contains("already in the queue"), "{}", text(&o));
    assert!(!dir.path().join("screens").exists(), "no screen was drawn again");
    // An id Smile ID would refuse after the capture is refused before it.
    let bad = ["capture", "--user-id", "u-8", "--job-type", "4", "--consent-given", "--job-id", "x\ny"];
    let o = agent(&bad, &config);
    assert!(!o.status.success() && text(&o).contains("invalid partner_params.job_id"), "{}", text(&o));
    assert!(!dir.path().join("screens").exists(), "no screen was drawn");
}

#[test]
fn bad_input_is_refused_clearly() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    // Biometric KYC without id_info.
    let o = agent(&["capture", "--user-id", "u", "--consent-given"], &config);
    assert!(!o.status.success());
    assert!(text(&o).contains("id_info.entered"), "{}", text(&o));
    // An unknown job type.
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "3"], &config);
    assert!(text(&o).contains("--job-type 3"), "{}", text(&o));
    // Enhanced KYC takes no photos: the message says which command asks for it.
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "5"], &config);
    assert!(!o.status.success() && text(&o).contains("kiosk-agent ekyc"), "{}", text(&o));
    // A typo in the config names the key and the file.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, std::fs::read_to_string(&config).unwrap().replace("environment", "enviroment")).unwrap();
    let o = agent(&["check-config"], &bad);
    assert!(!o.status.success());
    assert!(text(&o).contains("enviroment") && text(&o).contains("bad.toml"), "{}", text(&o));
    // A wrong API key: Smile ID's 2205 is reported and the job stays queued, key not echoed.
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], &config);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&sb.key_file, "another-key-entirely").unwrap();
    let o = agent(&["upload"], &config);
    let t = text(&o);
    assert!(t.contains("2205") && !t.contains("another-key-entirely"), "{t}");
    let ls = agent(&["queue", "ls"], &config);
    assert!(text(&ls).contains("queued"), "{}", text(&ls));
    // The whole queue is paused, visibly, instead of burning through every job.
    let s = status(&config);
    assert_eq!(s["uplink"]["link"], "paused", "{s}");
    // Retrying the job reminds the operator that a service only reads a new key when restarted.
    let ls: Vec<serde_json::Value> =
        serde_json::from_slice(&agent(&["queue", "ls", "--json"], &config).stdout).unwrap();
    let o = agent(&["queue", "retry", ls[0]["job_id"].as_str().unwrap()], &config);
    assert!(o.status.success() && text(&o).contains("restart the service"), "{}", text(&o));
    // An id with a pasted escape sequence is refused, not echoed to the terminal.
    let o = agent(&["queue", "purge", "\u{1b}[2Jjob"], &config);
    assert!(!o.status.success() && text(&o).contains("U+001B") && !text(&o).contains('\u{1b}'), "{}", text(&o));
}

/// A kiosk installed with a key Smile ID refuses says so as soon as it runs, before any customer
/// is captured: health, status and the log show uploads paused (it used to say `ok` until the
/// first job met the refusal).
#[test]
fn a_refused_key_pauses_the_kiosk_before_its_first_job() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, "not-the-partners-key").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = std::fs::read_to_string(&config).unwrap().replace(&format!("{:?}", sb.key_file), &format!("{wrong:?}"));
    std::fs::write(&config, cfg).unwrap();
    let svc = start_service(dir.path(), &config);
    let t = std::time::Instant::now();
    let health = loop {
        let mut s = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
        std::io::Write::write_all(&mut s, b"GET /v1/health HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
        let body: serde_json::Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
        if body["status"] != "ok" || t.elapsed().as_secs() > 30 {
            break body;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(health["status"], "paused", "{health}");
    let s = status(&config);
    assert_eq!(s["uplink"]["link"], "paused", "{s}");
    let error = s["uplink"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("2205") && error.contains("API key"), "{s}");
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(log.contains("LINK=paused") && !log.contains("not-the-partners-key"), "{log}");
    assert!(sandbox_jobs(&sb).is_empty());
}

#[test]
fn output_into_a_pipe_nobody_reads_ends_the_command_quietly() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    for args in [&["status", "--json"][..], &["queue", "ls"], &["check-config"]] {
        // As `kiosk-agent status --json | head -c1` once the reader has gone: every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?} {err}", o.status);
    }
}

#[test]
fn a_file_named_as_an_input_device_is_a_config_error_for_run_and_doctor() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let file = dir.path().join("id.json");
    std::fs::write(&file, "{}").unwrap();
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(&format!("[input]\nevdev = [{file:?}]\n[api]\nsocket = {:?}\n", dir.path().join("control.sock")));
    std::fs::write(&config, cfg).unwrap();
    // The service refuses it as a config mistake (78: systemd does not restart it in a loop).
    let o = agent(&["run"], &config);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("not an input device") && text(&o).contains("id.json"), "{}", text(&o));
    // The doctor fails it too, rather than listing it as keys.
    let o = agent(&["doctor", "--json"], &config);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let touch = report.as_array().unwrap().iter().find(|c| c["name"] == "touch").unwrap();
    assert_eq!(touch["verdict"], "FAIL", "{touch}");
    assert!(touch["detail"].as_str().unwrap().contains("not an input device"), "{touch}");
}

/// A group or user the config names that this machine lacks: check-config (which may run where
/// the config is prepared) warns, doctor fails, and the service exits 78 rather than restarting
/// every 5 s for ever.
#[test]
fn a_missing_api_group_is_warned_failed_by_doctor_and_stops_the_service() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let base = std::fs::read_to_string(&config).unwrap();
    let socket = dir.path().join("control.sock");
    for api in ["group = \"no-such-group-x\"", "operators = [\"user:no-such-user-x\"]"] {
        std::fs::write(&config, format!("{base}[api]\nsocket = {socket:?}\n{api}\n")).unwrap();
        let o = agent(&["check-config"], &config);
        assert!(o.status.success(), "{api}: {}", text(&o));
        assert!(text(&o).contains("warning: the service would not start: [api]"), "{api}: {}", text(&o));
        let o = agent(&["doctor", "--json"], &config);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
        let check = report.as_array().unwrap().iter().find(|c| c["name"] == "control API").unwrap();
        assert_eq!(check["verdict"], "FAIL", "{api}: {check}");
        assert!(check["detail"].as_str().unwrap().contains("no-such-"), "{check}");
        let o = agent(&["run"], &config);
        assert_eq!(o.status.code(), Some(78), "{api}: {}", text(&o));
        assert!(text(&o).contains("no-such-"), "{api}: {}", text(&o));
    }
}

/// A bundles directory the agent's user cannot read (its mode changed by hand) is said to be
/// unreadable, and its jobs are left as they are, not taken for missing and quarantined. Run as
/// nobody: root reads whatever the mode says.
#[test]
fn an_unreadable_bundles_directory_changes_no_job() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = nobodys_kiosk(d);
    let nobody = |args: &[&str]| as_nobody(&config, args).output().unwrap();
    let o = nobody(&["capture", "--user-id", "u1", "--job-type", "4", "--consent-given"]);
    assert!(o.status.success(), "{}", text(&o));
    let bundles = d.join("state/bundles");
    std::fs::set_permissions(&bundles, std::fs::Permissions::from_mode(0o000)).unwrap();
    let o = nobody(&["upload"]);
    assert!(text(&o).contains("cannot be read") && text(&o).contains("no job was changed"), "{}", text(&o));
    std::fs::set_permissions(&bundles, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = nobody(&["queue", "ls"]);
    assert!(text(&o).contains("queued") && !text(&o).contains("quarantined"), "{}", text(&o));
}

/// After a crash (kill -9), root's look at the stopped service's queue (`status`, `queue ls`)
/// leaves nothing of root's in it: sled's recovery snapshot went to root and the service could
/// no longer start. A folder root took over (bundles) is found by `doctor` as root, named by
/// the service's health, and refuses sessions before anyone consents. Needs root (CI is).
#[test]
fn a_look_by_root_after_a_crash_leaves_the_service_its_queue() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot run the service as another user here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = nobodys_kiosk(d);
    let as_nobody = |args: &[&str]| as_nobody(&config, args);
    let o = as_nobody(&["capture", "--user-id", "u1", "--job-type", "4", "--consent-given"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let service = || {
        let log = std::fs::File::create(d.join("service.log")).unwrap();
        let child = as_nobody(&["run"]).stderr(log).stdout(std::process::Stdio::null()).spawn().unwrap();
        let t = std::time::Instant::now();
        while !d.join("control.sock").exists() {
            assert!(t.elapsed().as_secs() < 30, "{}", std::fs::read_to_string(d.join("service.log")).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Service { child, socket: d.join("control.sock") }
    };
    drop(service());
    let _ = std::fs::remove_file(d.join("control.sock"));
    for look in [&["status"][..], &["queue", "ls"]] {
        let o = agent(look, &config);
        assert!(o.status.success(), "{look:?}: {}", text(&o));
    }
    let roots: Vec<_> =
        walk(&d.join("state")).into_iter().filter(|p| std::fs::metadata(p).unwrap().uid() == 0).collect();
    assert!(roots.is_empty(), "root's look left {roots:?}");
    // Root takes over the bundles folder: doctor (as root) says so and how to give it back.
    std::os::unix::fs::chown(d.join("state/bundles"), Some(0), Some(0)).unwrap();
    let o = agent(&["doctor", "--json"], &config);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let storage = report.as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap().clone();
    assert_eq!(storage["verdict"], "FAIL", "{storage}");
    assert!(storage["detail"].as_str().unwrap().contains("bundles belongs to uid 0"), "{storage}");
    // The service starts (the index is its own), names the problem, and starts no session.
    let svc = service();
    let s = status(&config);
    assert!(s["problems"].as_array().unwrap().iter().any(|p| p == "storage_unwritable"), "{s}");
    let o = agent(&["session", "--job-type", "4", "--user-id", "u2", "--consent-given"], &config);
    assert!(!o.status.success() && text(&o).contains("cannot save a job"), "{}", text(&o));
    assert!(text(&o).contains("bundles cannot be written"), "{}", text(&o));
    let t = std::time::Instant::now();
    while !service_get(&svc, "/metrics").contains("kiosk_storage_writable 0") {
        assert!(t.elapsed().as_secs() < 10, "{}", service_get(&svc, "/metrics"));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(svc);
}

/// A kiosk whose files in `d` (its state dir to be, its config, a key) are nobody's, with no
/// Smile ID to reach: its config's path.
fn nobodys_kiosk(d: &Path) -> PathBuf {
    std::fs::write(d.join("key"), "k").unwrap();
    let cfg = format!(
        "state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"https://127.0.0.1:9/v1\"\napi_key_file = {:?}\n\
         [camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\nwidth = 320\nheight = 240\n\
         [input]\nbackend = \"none\"\nevdev = []\n[api]\nsocket = {:?}\n",
        d.join("state"),
        d.join("key"),
        d.join("screens"),
        d.join("control.sock")
    );
    std::fs::write(d.join("kiosk.toml"), cfg).unwrap();
    assert!(Command::new("chown").args(["-R", "65534:65534"]).arg(d).status().unwrap().success());
    d.join("kiosk.toml")
}

/// The agent with `args` and `config`, run as nobody.
fn as_nobody(config: &Path, args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"));
    c.args(args).arg("--config").arg(config).uid(65534).gid(65534);
    c
}

/// A button that cannot be read (no such GPIO chip: a loose ribbon, a wrong line) stops no
/// kiosk: the service runs without it, health says `button_missing`, and it is looked for again.
#[test]
fn a_button_that_cannot_be_read_is_a_health_problem_not_a_dead_kiosk() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{cfg}[input]\nbackend = \"gpio\"\nchip = \"/dev/gpiochip-none\"\nline = 17\n"))
        .unwrap();
    let svc = start_service(dir.path(), &config);
    let s = status(&config);
    assert!(s["problems"].as_array().unwrap().iter().any(|p| p == "button_missing"), "{s}");
    // The fleet sees it too (KioskButtonMissing), once the front desk has looked.
    let t = std::time::Instant::now();
    while !service_get(&svc, "/metrics").contains("kiosk_button_present 0") {
        assert!(t.elapsed().as_secs() < 10, "{}", service_get(&svc, "/metrics"));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(log.contains("/dev/gpiochip-none") && log.contains("runs without it"), "{log}");
    // A FIFO where the chip should be: doctor says so, rather than waiting for a writer for ever.
    let fifo = dir.path().join("gpiochip-fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    std::fs::write(&config, format!("{cfg}[input]\nbackend = \"gpio\"\nchip = {fifo:?}\nline = 17\n")).unwrap();
    let mut doctor = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["doctor", "--json", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while doctor.try_wait().unwrap().is_none() {
        if t.elapsed().as_secs() > 30 {
            doctor.kill().unwrap();
            panic!("doctor hung on a FIFO named as the GPIO chip");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = doctor.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let input = report.as_array().unwrap().iter().find(|c| c["name"] == "input").unwrap();
    assert_eq!(input["verdict"], "FAIL", "{input}");
    assert!(input["detail"].as_str().unwrap().contains("is a FIFO, not a GPIO chip"), "{input}");
}

/// A queue at its `max_jobs` (jobs waiting for a link that is down) refuses sessions: health
/// and status say `queue_full`, not the disk's `storage_low`, and the fleet sees it
/// (`kiosk_storage_full`, KioskStorageFull) and counts the people turned away.
#[test]
fn a_full_queue_is_named_and_the_people_it_turns_away_are_counted() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    // Smile ID unreachable: the job captured stays queued.
    let cfg = std::fs::read_to_string(&config).unwrap().replace(&sb.base_url, "https://127.0.0.1:9/v1");
    std::fs::write(&config, format!("{cfg}[queue]\nmax_jobs = 1\n")).unwrap();
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], &config);
    assert!(o.status.success(), "{}", text(&o));
    let svc = start_service(dir.path(), &config);
    let s = status(&config);
    let problems = s["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p == "queue_full") && !problems.iter().any(|p| p == "storage_low"), "{s}");
    // What turns people away comes first, before the link that keeps the jobs waiting.
    let answer = service_get(&svc, "/v1/health");
    let h: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap();
    assert_eq!(h["status"], "queue_full", "{h}");
    let words = text(&agent(&["status"], &config));
    assert!(
        words.contains("the queue is at its") && words.contains("max_jobs") && !words.contains("doctor"),
        "{words}"
    );
    let mut c = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
    let body = r#"{"job_type": 4, "user_id": "u2"}"#;
    let req = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut c, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 507") && answer.contains("storage_full"), "{answer}");
    let t = std::time::Instant::now();
    loop {
        let m = service_get(&svc, "/metrics");
        if m.contains("kiosk_storage_full 1") && m.contains("kiosk_sessions_refused_total{reason=\"storage_full\"} 1") {
            break;
        }
        assert!(t.elapsed().as_secs() < 10, "{m}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The service stopped (systemctl stop, an upgrade) with a person at the consent: the session
/// is cancelled and said in the log, and the panel is left saying the kiosk is out of service,
/// not holding a question nobody will answer.
#[test]
fn a_service_stopped_mid_session_leaves_the_screen_out_of_service() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let mut svc = start_service(dir.path(), &config);
    let mut host = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["session", "--user-id", "u", "--job-type", "4", "--socket"])
        .arg(&svc.socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let screens = dir.path().join("screens");
    let newest = || {
        let names = std::fs::read_dir(&screens).into_iter().flatten().flatten();
        let numbered = names.filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            Some((n.split('-').next()?.parse::<u32>().ok()?, n))
        });
        numbered.max().map(|(_, n)| n).unwrap_or_default()
    };
    let t = std::time::Instant::now();
    while !newest().contains("consent") {
        assert!(t.elapsed().as_secs() < 20, "no consent screen: {}", newest());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) };
    let st = svc.child.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(st.success(), "{log}");
    assert!(log.contains("stopping with session") && log.contains("cancelled"), "{log}");
    assert!(newest().ends_with("-error.png"), "the panel was left with {}", newest());
    let _ = host.kill();
    let _ = host.wait();
}

/// The queue held by a command run by hand (`upload`, `capture`) and no service: an operator's
/// `queue` command says so, not that the service seems to be down.
#[test]
fn a_queue_command_beside_a_hand_run_upload_says_what_holds_the_queue() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job = capture(&config);
    // What `kiosk-agent upload` holds while it runs: the queue, open for writing.
    let held = kiosk_agent::queue::Queue::open(&dir.path().join("state"), Default::default());
    assert!(held.is_ok(), "{:?}", held.err());
    for args in [&["queue", "purge", job.as_str()][..], &["queue", "retry", job.as_str()]] {
        let o = agent(args, &config);
        assert!(!o.status.success() && text(&o).contains("run by hand may hold it"), "{args:?}: {}", text(&o));
    }
}

/// A second agent started with another state_dir but the running one's control socket (a copied
/// config) refuses at once, naming the socket, and makes nothing; the first serves on.
#[test]
fn a_second_agent_on_a_served_socket_refuses_and_takes_nothing() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let svc = start_service(dir.path(), &config);
    let other = dir.path().join("other.toml");
    let cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &other,
        cfg.replace(&format!("{:?}", dir.path().join("state")), &format!("{:?}", dir.path().join("state2"))),
    )
    .unwrap();
    let o = agent(&["run"], &other);
    assert!(!o.status.success() && text(&o).contains("already serves the control API"), "{}", text(&o));
    assert!(!dir.path().join("state2").exists(), "a state dir was made for an agent that could not run");
    assert!(service_get(&svc, "/v1/health").starts_with("HTTP/1.1 200"), "the first stopped serving");
}

/// Two agents started at the same moment on one control socket (the service and an operator's
/// `run`, each with its own state_dir): both used to find nothing answering, and the later bind
/// took the socket from under the earlier one. Now one serves, and the other refuses having
/// made nothing.
#[test]
fn two_agents_started_at_once_leave_one_serving() {
    let sb = start_sandbox(&[]);
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &sb);
        let socket = dir.path().join("control.sock");
        let cfg = std::fs::read_to_string(&config).unwrap() + &format!("[api]\nsocket = {socket:?}\n");
        let state = |i: usize| dir.path().join(format!("state{i}"));
        let agents: Vec<std::process::Child> = (0..2)
            .map(|i| {
                let path = dir.path().join(format!("agent{i}.toml"));
                let own = cfg.replace(&format!("{:?}", dir.path().join("state")), &format!("{:?}", state(i)));
                std::fs::write(&path, own).unwrap();
                Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
                    .args(["run", "--config"])
                    .arg(&path)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut agents: Vec<Service> =
            agents.into_iter().map(|child| Service { child, socket: socket.clone() }).collect();
        let t = std::time::Instant::now();
        let (refused, status) = loop {
            if let Some((i, st)) =
                agents.iter_mut().enumerate().find_map(|(i, a)| a.child.try_wait().unwrap().map(|st| (i, st)))
            {
                break (i, st);
            }
            assert!(t.elapsed().as_secs() < 20, "round {round}: both agents kept running");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut said = String::new();
        std::io::Read::read_to_string(&mut agents[refused].child.stderr.take().unwrap(), &mut said).unwrap();
        assert!(!status.success() && said.contains("already serves the control API"), "round {round}: {said}");
        assert!(!state(refused).exists(), "round {round}: the refused agent made its state dir");
        let serving = &agents[1 - refused];
        let t = std::time::Instant::now();
        while !socket.exists() {
            assert!(t.elapsed().as_secs() < 20, "round {round}: nothing serves");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let h = service_get(serving, "/v1/health");
        assert!(h.starts_with("HTTP/1.1 200") && state(1 - refused).exists(), "round {round}: {h}");
    }
}

/// A state_dir where no queue was (a fresh install, or a path changed by mistake) is said when
/// the queue is made there, once: jobs waiting in the directory named before would not be sent.
#[test]
fn a_new_empty_queue_is_said_once() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let cfg = std::fs::read_to_string(&config).unwrap().replace(&sb.base_url, "https://127.0.0.1:9/v1");
    std::fs::write(&config, cfg).unwrap();
    let said = |o: &Output| String::from_utf8_lossy(&o.stderr).contains("a new, empty one was made there");
    let first = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], &config);
    assert!(first.status.success() && said(&first), "{}", text(&first));
    let second = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], &config);
    assert!(second.status.success() && !said(&second), "{}", text(&second));
}

/// The state dir `dir/state` on a 24 MB disk of its own (a tmpfs), unmounted when the guard goes.
fn small_state_disk(dir: &Path) -> (PathBuf, impl Drop) {
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"]).arg(&state).status().unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root (CI runs as root)");
    (state.clone(), Unmount(state))
}

/// The disk filled while the service ran, and sled failed a write: it fails every later one,
/// room or not, so every person after was lost while health said ok (found by a field probe).
/// Now the service says so and refuses sessions; once there is room to open the index again it
/// stops to be restarted (systemd restarts it), and restarted, the job it held goes up.
#[test]
fn a_queue_index_broken_by_a_full_disk_is_reopened_by_a_restart() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (state, _unmount) = small_state_disk(dir.path());
    let config = write_config(dir.path(), &sb);
    // No reserve to release: the disk stays full until someone frees it.
    let live = std::fs::read_to_string(&config).unwrap() + "[queue]\nmin_free_bytes = 0\nreserve_bytes = 0\n";
    // Smile ID unreachable: the job captured stays queued.
    std::fs::write(&config, live.replace(&sb.base_url, "https://127.0.0.1:9/v1")).unwrap();
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], &config);
    assert!(o.status.success(), "{}", text(&o));
    let job_id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mut svc = start_service(dir.path(), &config);
    let filler = state.join("filler");
    let fill = || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&filler).unwrap();
        for size in [64 * 1024, 4096, 512] {
            while f.write_all(&vec![1u8; size]).is_ok() {}
        }
    };
    // Operators' retries make the index write, on the full disk (the first ones may go into the
    // reserve the queue releases, or sled's own slack).
    let retry = || service_post(&svc, &format!("/v1/jobs/{job_id}/retry"), "");
    let answer = (0..500)
        .map(|_| {
            fill();
            retry()
        })
        .find(|a| !a.starts_with("HTTP/1.1 200"))
        .expect("the index took 500 writes on a full disk");
    assert!(
        answer.starts_with("HTTP/1.1 507") && answer.contains("storage_unwritable") && answer.contains("No space left"),
        "{answer}"
    );
    // While the disk stays full it serves on (a restart could not open the queue), saying so:
    // no person is let start what could not be saved.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(svc.child.try_wait().unwrap().is_none(), "it stopped with no room to open again");
    let h = service_get(&svc, "/v1/health");
    assert!(h.contains("storage_unwritable"), "{h}");
    let o = agent(&["session", "--job-type", "4", "--user-id", "u2", "--consent-given"], &config);
    assert!(!o.status.success() && text(&o).contains("507"), "{}", text(&o));
    // Room again: it stops by itself, for its restart to open the index afresh.
    std::fs::remove_file(&filler).unwrap();
    let t = std::time::Instant::now();
    let exited = loop {
        if let Some(st) = svc.child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed().as_secs() < 20, "the service went on with a broken index: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(!exited.success() && log.contains("index failed writing") && log.contains("restart"), "{log}");
    drop(svc);
    // The link back, and the restart: the job goes up.
    std::fs::write(&config, &live).unwrap();
    let _svc = start_service(dir.path(), &config);
    let t = std::time::Instant::now();
    while !sandbox_jobs(&sb).iter().any(|j| j["uploads"] == 1) {
        assert!(t.elapsed().as_secs() < 30, "the kept job never went up: {}", status(&config));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The disk filled into `min_free_bytes` (a log, another program's download) while a person was
/// at the kiosk: their capture is kept all the same, as there is room for it; only the next
/// person is turned away. It used to be refused at saving, after the whole capture.
#[test]
fn a_disk_filling_during_a_session_keeps_that_persons_job() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (state, _unmount) = small_state_disk(dir.path());
    let config = write_config(dir.path(), &sb);
    let cfg = std::fs::read_to_string(&config).unwrap() + "[queue]\nmin_free_bytes = 8388608\n";
    std::fs::write(&config, cfg.replace(&sb.base_url, "https://127.0.0.1:9/v1")).unwrap();
    let svc = start_service(dir.path(), &config);
    let host = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["session", "--user-id", "u-disk", "--job-type", "4", "--socket"])
        .arg(&svc.socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While the person reads the consent (the session let start), the disk fills to 2 MiB free;
    // then they agree, and are captured.
    let t = std::time::Instant::now();
    while !std::fs::read_dir(dir.path().join("screens"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains("consent"))
    {
        assert!(t.elapsed().as_secs() < 20, "no consent was asked");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let free = || {
        // SAFETY: statvfs writes only into the struct it is given.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let path = std::ffi::CString::new(state.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
        st.f_bavail as u64 * st.f_frsize as u64
    };
    let filler = state.join("filler");
    std::fs::write(&filler, vec![1u8; (free() - 2 * 1024 * 1024) as usize]).unwrap();
    assert!(free() < 3 * 1024 * 1024, "{} free", free());
    let sessions: serde_json::Value =
        serde_json::from_str(service_get(&svc, "/v1/sessions").split("\r\n\r\n").nth(1).expect("a body")).unwrap();
    let id = sessions[0]["session_id"].as_str().unwrap_or_else(|| panic!("{sessions}")).to_string();
    let answer = service_post(&svc, &format!("/v1/sessions/{id}/consent"), r#"{"granted": true}"#);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let o = host.wait_with_output().unwrap();
    assert!(o.status.success() && text(&o).contains("\"state\":\"queued\""), "{}", text(&o));
    // The next person is turned away, saying why.
    let o = agent(&["session", "--job-type", "4", "--user-id", "u-next", "--consent-given"], &config);
    assert!(!o.status.success() && text(&o).contains("kept free"), "{}", text(&o));
    drop(svc);
    std::fs::remove_file(&filler).unwrap();
    let q = agent(&["queue", "ls"], &config);
    assert!(text(&q).contains("queued"), "{}", text(&q));
}

/// A kiosk whose API key has not been put in place (a fresh install): the service runs all the
/// same, serving people and keeping their jobs, with uploads paused saying which file is
/// missing; once the key is there and the service restarted, the job goes up. It used to exit
/// 78, leaving the kiosk dark and its fleet seeing only a silent address.
#[test]
fn a_missing_api_key_pauses_uploads_and_the_kiosk_serves_on() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let key = dir.path().join("credentials-api_key");
    let cfg = std::fs::read_to_string(&config).unwrap().replace(&format!("{:?}", sb.key_file), &format!("{key:?}"));
    std::fs::write(&config, cfg).unwrap();
    let svc = start_service(dir.path(), &config);
    let t = std::time::Instant::now();
    let s = loop {
        let s = status(&config);
        if s["uplink"]["link"] == "paused" || t.elapsed().as_secs() > 20 {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(s["uplink"]["link"], "paused", "{s}");
    let error = s["uplink"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("credentials-api_key") && error.contains("restart"), "{s}");
    // A person's session is kept meanwhile.
    let o = agent(&["session", "--job-type", "4", "--user-id", "u-missing-key", "--consent-given"], &config);
    assert!(o.status.success() && text(&o).contains("\"state\":\"queued\""), "{}", text(&o));
    // The job says, in words too, what holds it.
    let view: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let shown = agent(&["jobs", view["job_id"].as_str().unwrap()], &config);
    assert!(shown.status.success() && text(&shown).contains("held       uploads are paused"), "{}", text(&shown));
    // Held, not tried: the uplink passes every second here, and nothing reaches Smile ID; the
    // pause is said once, not at every pass.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(sandbox_jobs(&sb).is_empty());
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert_eq!(log.matches("LINK=paused").count(), 1, "{log}");
    drop(svc);
    std::fs::copy(&sb.key_file, &key).unwrap();
    let _svc = start_service(dir.path(), &config);
    let t = std::time::Instant::now();
    while !sandbox_jobs(&sb).iter().any(|j| j["uploads"] == 1) {
        assert!(t.elapsed().as_secs() < 30, "the kept job never went up: {}", status(&config));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Every file and folder under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// A kiosk upgraded from a package whose config said `ttl_hours = 72` keeps that config: check-
/// config and doctor say that jobs a kiosk could not send in 72 h would be failed and later
/// erased, and how to keep them.
#[test]
fn an_upgraded_configs_job_expiry_is_pointed_out() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let o = agent(&["check-config"], &config);
    assert!(o.status.success() && !text(&o).contains("ttl_hours"), "{}", text(&o));
    let cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{cfg}[queue]\nttl_hours = 72\n")).unwrap();
    let o = agent(&["check-config"], &config);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("warning: queue.ttl_hours = 72") && text(&o).contains("set ttl_hours = 0"),
        "{}",
        text(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&agent(&["doctor", "--json"], &config).stdout).unwrap();
    let storage = report.as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap();
    assert!(
        storage["verdict"] == "WARN" && storage["detail"].as_str().unwrap().contains("ttl_hours = 72"),
        "{storage}"
    );
}

#[test]
fn a_state_dir_that_is_a_file_is_a_config_error_for_every_command() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    std::fs::write(dir.path().join("state"), "not a directory").unwrap();
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(&format!("[api]\nsocket = {:?}\n", dir.path().join("control.sock")));
    std::fs::write(&config, cfg).unwrap();
    for args in [&["check-config"][..], &["run"], &["upload"], &["status"], &["queue", "ls"]] {
        let o = agent(args, &config);
        assert_eq!(o.status.code(), Some(78), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("is not a directory"), "{args:?}: {}", text(&o));
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("state")).unwrap(), "not a directory");
}

#[test]
fn a_missing_extra_ca_file_is_the_same_config_error_for_check_config_and_upload() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let gone = dir.path().join("gone.pem");
    let cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, cfg.replace(&format!("{:?}", sb.ca_pem), &format!("{gone:?}"))).unwrap();
    for args in [&["check-config"][..], &["upload"]] {
        let o = agent(args, &config);
        assert_eq!(o.status.code(), Some(78), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("smileid.extra_ca_file") && text(&o).contains("gone.pem"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn check_config_accepts_every_display_the_docs_offer() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let base = std::fs::read_to_string(&config).unwrap();
    for backend in ["png", "framebuffer", "spi"] {
        std::fs::write(&config, base.replace("backend = \"png\"", &format!("backend = \"{backend}\""))).unwrap();
        let o = agent(&["check-config"], &config);
        assert!(o.status.success(), "{backend}: {}", text(&o));
    }
    std::fs::write(&config, base.replace("backend = \"png\"", "backend = \"lcd\"")).unwrap();
    let o = agent(&["check-config"], &config);
    assert!(!o.status.success() && text(&o).contains("spi"), "{}", text(&o));
    // A config that cannot work exits 78, which the unit does not restart on (the packaged one
    // before its partner id is set, too).
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    let packaged = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kiosk.example.toml");
    let o = agent(&["run"], &packaged);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("smileid.partner_id"), "{}", text(&o));
}

/// Root (or anyone) beside the service's queue writes nothing into it: a root-owned file there
/// would stop the service at its next start. Needs root to give the state dir away (CI is root).
#[test]
fn another_users_queue_is_not_written() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot hand a state dir to another user here");
        return;
    }
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    for args in [&["queue", "retry", "some-job"][..], &["upload"]] {
        let o = agent(args, &config);
        assert!(!o.status.success() && text(&o).contains("belongs to uid 65534"), "{args:?}: {}", text(&o));
    }
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "nothing was created in another user's queue");
}

/// An operator starts a session from the CLI on a kiosk nobody stands at, without
/// --consent-given: it ends saying nobody answered the consent screen and how to give the
/// consent the host application recorded, and nothing is queued.
#[test]
fn a_session_nobody_answers_says_so() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let socket = dir.path().join("control.sock");
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(&format!("[api]\nsocket = {socket:?}\nconsent_timeout_secs = 1\n"));
    std::fs::write(&config, cfg).unwrap();
    let _svc = start_service(dir.path(), &config);
    let o = agent(&["session", "--job-type", "4", "--user-id", "walk-by"], &config);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("nobody answered the consent screen") && text(&o).contains("--consent-given"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("\"state\":\"abandoned\""), "told from a \"no\": {}", text(&o));
    // The person's language goes with the session, and one the kiosk lacks is named.
    let o = agent(&["session", "--job-type", "4", "--user-id", "walk-by", "--language", "zz"], &config);
    assert!(!o.status.success() && text(&o).contains("language \"zz\" is not available"), "{}", text(&o));
    let s = status(&config);
    assert_eq!(s["queue"]["pending"], 0, "{s}");
}

/// `session --front-only` takes a document job's front and no back: the zip Smile ID gets has
/// the ID card's front and no back image, where the same session without it has both. The
/// config names a keypad that is not plugged in: nobody could answer the photo's review, so it
/// is not shown (it used to wait for an answer, a minute per side).
#[test]
fn a_front_only_document_session_sends_no_back() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let missing = dir.path().join("no-such-keypad");
    let cfg = std::fs::read_to_string(&config).unwrap() + &format!("[input]\nevdev = [{missing:?}]\n");
    std::fs::write(&config, cfg).unwrap();
    let id_info = dir.path().join("passport.json");
    std::fs::write(&id_info, r#"{"country":"NG","id_type":"PASSPORT"}"#).unwrap();
    let _svc = start_service(dir.path(), &config);
    let types = |job_id: &str| {
        let t = std::time::Instant::now();
        loop {
            let jobs = sandbox_jobs(&sb);
            if let Some(j) = jobs.iter().find(|j| j["job_id"] == job_id && j["uploads"] == 1) {
                let mut v: Vec<u64> = j["image_types"].as_array().unwrap().iter().filter_map(|t| t.as_u64()).collect();
                v.sort();
                v.dedup();
                return v;
            }
            assert!(t.elapsed().as_secs() < 60, "{job_id} never uploaded: {jobs:?}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    for (job_id, front_only) in [("doc-front-only", true), ("doc-both-sides", false)] {
        let mut args = vec!["session", "--job-type", "6", "--user-id", "u-doc", "--consent-given", "--job-id", job_id];
        args.extend(["--id-info", id_info.to_str().unwrap()]);
        if front_only {
            args.push("--front-only");
        }
        let o = agent(&args, &config);
        let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
        assert!(o.status.success() && text(&o).contains("\"state\":\"queued\""), "{}\n{log}", text(&o));
        let t = types(job_id);
        // 1: the card's front as a file; 5: its back.
        assert!(t.contains(&1), "{job_id}: {t:?}");
        assert_eq!(t.contains(&5), !front_only, "{job_id}: {t:?}");
    }
    let log = std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(!log.contains("document_review"), "a review nobody could answer: {log}");
    // Plugged in later, it is read (a FIFO stands in for the device node).
    let c = std::ffi::CString::new(missing.to_str().unwrap()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Opening a FIFO's writing end waits for its reader: the agent's next scan.
    let writer = std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(&missing).unwrap());
    let t = std::time::Instant::now();
    let read = format!("reading input device {}", dir.path().join("no-such-keypad").display());
    while !std::fs::read_to_string(dir.path().join("service.log")).unwrap().contains(&read) {
        assert!(
            t.elapsed().as_secs() < 30,
            "never read: {}",
            std::fs::read_to_string(dir.path().join("service.log")).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(writer.join().unwrap());
}

/// Ctrl-C on `kiosk-agent session` cancels the session on the kiosk, so the next one can start
/// (it used to run on unwatched, and the next got "a session is already running").
#[test]
fn ctrl_c_on_a_session_cancels_it_on_the_kiosk() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let _svc = start_service(dir.path(), &config);
    for round in 0..2 {
        let err = dir.path().join(format!("session-{round}.err"));
        let mut s = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
            .args(["session", "--job-type", "4", "--user-id", "walk-by", "--config"])
            .arg(&config)
            .stderr(std::fs::File::create(&err).unwrap())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while !std::fs::read_to_string(&err).unwrap().contains("awaiting_consent") {
            assert!(t.elapsed().as_secs() < 30, "{}", std::fs::read_to_string(&err).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(s.id() as i32, libc::SIGINT) };
        let st = s.wait().unwrap();
        let e = std::fs::read_to_string(&err).unwrap();
        assert!(!st.success() && e.contains("ended cancelled"), "round {round}: {e}");
    }
}

/// The service's user meets its own queue made read-only (a careless chmod): it is told to give
/// itself access back, not to run as root or as another user. Needs root to act as another user.
#[test]
fn a_queue_its_owner_may_not_write_says_so() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot act as another user here");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o500)).unwrap();
    use std::os::unix::process::CommandExt;
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["queue", "retry", "some-job", "--config"])
        .arg(&config)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("this user's own") && text(&o).contains("chmod"), "{}", text(&o));
    assert!(!text(&o).contains("as root"), "{}", text(&o));
}

fn status(config: &Path) -> serde_json::Value {
    let o = agent(&["status", "--json"], config);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn wrong_clock_and_dead_link_keep_jobs_queued_and_say_why() {
    // The server's clock is an hour ahead of the kiosk's: the kiosk's clock is plainly wrong.
    let sb = start_sandbox(&["--clock-offset-secs", "3600"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], &config);
    assert!(o.status.success(), "{}", text(&o));
    let up = agent(&["upload"], &config);
    assert!(text(&up).contains("clock_wrong"), "{}", text(&up));
    assert!(sandbox_jobs(&sb).is_empty(), "nothing is signed or sent with a wrong clock");
    let s = status(&config);
    assert_eq!(s["uplink"]["link"], "clock_wrong", "{s}");
    let words = text(&agent(&["status"], &config));
    assert!(
        words.contains("clock wrong:") && words.contains("hours) behind the server's") && words.contains("1 waiting"),
        "{words}"
    );
    assert!(words.contains("not running"), "no service runs here: {words}");
    assert_eq!(s["problems"][0], "service_stopped", "a script reads the stopped service: {s}");
    assert!((s["uplink"]["skew_secs"].as_i64().unwrap() + 3600).abs() <= 5, "{s}");
    assert_eq!(s["queue"]["pending"], 1);
    // The doctor blames the clock for the refused signature, not the key.
    let o = agent(&["doctor", "--json"], &config);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let cred = report.as_array().unwrap().iter().find(|c| c["name"] == "credentials").unwrap();
    assert_eq!(cred["verdict"], "FAIL", "{cred}");
    assert!(cred["detail"].as_str().unwrap().contains("s behind Smile ID's"), "{cred}");
    assert!(cred["advice"].as_str().unwrap().contains("set the clock right"), "{cred}");

    // The API host cannot be reached: the job waits, the status says the link is down.
    let cfg = std::fs::read_to_string(&config).unwrap().replace(&sb.base_url, "https://127.0.0.1:9/v1");
    std::fs::write(&config, cfg).unwrap();
    let up = agent(&["upload"], &config);
    assert_eq!(up.status.code(), Some(3), "the upload did not do its job: {}", text(&up));
    assert!(text(&up).contains("1 job(s) kept"), "{}", text(&up));
    let s = status(&config);
    assert_eq!(s["uplink"]["link"], "down", "{s}");
    assert_eq!(s["queue"]["pending"], 1);
}

fn faketime() -> &'static str {
    let ok = Command::new("faketime").arg("-f").arg("+1d").arg("true").status().is_ok_and(|s| s.success());
    assert!(ok, "faketime is needed (Debian package faketime; scripts/test.sh installs it)");
    "faketime"
}

/// A SmartSelfie job captured offline with the CLI; its job_id.
fn capture(config: &Path) -> String {
    let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], config);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The service started while its screen is not there (an HDMI cable, a driver loading late)
/// still uploads the jobs captured before, serves its control API (health and `status` name
/// the screen; a session is refused, saying why), says why in the log, and stops cleanly.
#[test]
fn a_kiosk_whose_screen_is_missing_still_uploads_its_queue() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job_id = capture(&config);
    let fb = dir.path().join("fb-unplugged");
    let cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("backend = \"png\"", &format!("backend = \"framebuffer\"\ndevice = {fb:?}"));
    let socket = dir.path().join("control.sock");
    std::fs::write(&config, cfg + &format!("[uplink]\nidle_poll_secs = 1\n[api]\nsocket = {socket:?}\n")).unwrap();
    let log = dir.path().join("service.log");
    let mut svc = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !sandbox_jobs(&sb).iter().any(|j| j["job_id"] == job_id.as_str() && j["uploads"] == 1) {
        assert!(t.elapsed().as_secs() < 30, "not uploaded: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let s = status(&config);
    assert_eq!(s["service"], "running", "{s}");
    assert!(s["problems"].as_array().unwrap().contains(&"display_missing".into()), "{s}");
    let words = text(&agent(&["status"], &config));
    assert!(words.contains("problems   display_missing"), "{words}");
    let o = agent(&["session", "--job-type", "4", "--user-id", "u"], &config);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("screen") && text(&o).contains("fb-unplugged") && text(&o).contains("503"),
        "{}",
        text(&o)
    );
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(svc.id() as i32, libc::SIGTERM) };
    let st = svc.wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(st.success(), "{said}");
    assert!(
        said.contains("fb-unplugged") && said.contains("uploads, the control API and health run meanwhile"),
        "{said}"
    );
}

/// `queue ls` keeps its columns whatever the job_ids: long ones, combining marks, wide
/// characters, and a space (quoted, so the operator copies the whole id).
#[test]
fn queue_ls_columns_hold_for_any_job_id() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let long = "k".repeat(100);
    for id in ["short", long.as_str(), "j\u{1ecd}\u{301}b-\u{5de5}\u{4f5c}", "two words", "\"two words\""] {
        let o = agent(&["capture", "--user-id", "u", "--consent-given", "--job-type", "4", "--job-id", id], &config);
        assert!(o.status.success(), "{id}: {}", text(&o));
    }
    let ls = text(&agent(&["queue", "ls"], &config));
    // Terminal columns: the Yoruba id's combining mark takes none, each CJK character two.
    let columns = |s: &str| {
        s.chars().filter(|c| *c != '\u{301}').count()
            + s.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).count()
    };
    let at: Vec<usize> =
        ls.lines().map(|l| columns(&l[..l.find(" STAGE").or(l.find(" queued")).unwrap_or(0)])).collect();
    assert_eq!(at.len(), 6, "{ls}");
    assert!(at.iter().all(|&c| c == at[0] && c > 100), "the STAGE column moves: {at:?}\n{ls}");
    // An id with a space is quoted; one that is itself in quotes is told from it.
    assert!(ls.contains("  \"two words\" ") && ls.contains("  \"\\\"two words\\\"\" "), "{ls}");
}

fn bundle_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state/bundles")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_clock_days_off_fails_nothing_and_upload_says_so() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job_id = capture(&config);
    for offset in ["+4d", "-4d", "+365d"] {
        let up = Command::new(faketime())
            .args(["-f", offset, env!("CARGO_BIN_EXE_kiosk-agent"), "upload", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(up.status.code(), Some(3), "{offset}: {}", text(&up));
        assert!(text(&up).contains("clock_wrong") && text(&up).contains("kept"), "{offset}: {}", text(&up));
        let show = agent(&["queue", "show", &job_id], &config);
        let r: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert_eq!(r["stage"], "queued", "{offset}: {r}");
        assert_eq!(bundle_count(dir.path()), 1, "{offset}: the images are kept");
        // Four days behind, the server's two-day-old certificate is not valid yet: the clock is
        // named by the handshake (not "link down"), as a bound.
        let s = status(&config);
        assert_eq!(s["uplink"]["link"], "clock_wrong", "{offset}: {s}");
        let behind = offset.starts_with('-');
        assert_eq!(s["uplink"]["at_least"] == true, behind, "{offset}: {s}");
        let words = text(&agent(&["status"], &config));
        assert_eq!(words.contains("at least") && words.contains("hours) behind"), behind, "{offset}: {words}");
    }
    assert!(sandbox_jobs(&sb).is_empty());
    let up = agent(&["upload"], &config);
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(sandbox_jobs(&sb).len(), 1);
}

/// The service starts on a clock two hours fast (a board without a battery clock, before NTP),
/// then NTP sets it back: the queued job goes within seconds, not after the two hours that
/// the wall clock has to make up. The watchdog's heartbeat is on the boot clock too.
#[test]
fn ntp_setting_the_clock_back_lets_the_queue_go_at_once() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job_id = capture(&config);
    let socket = dir.path().join("control.sock");
    let cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, cfg + &format!("[uplink]\nidle_poll_secs = 1\n[api]\nsocket = {socket:?}\n")).unwrap();
    let clock = dir.path().join("faketime");
    std::fs::write(&clock, "+2h\n").unwrap();
    let log = dir.path().join("service.log");
    let child = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Killed on the way out, whether or not the test passes.
    let mut svc = Service { child, socket: socket.clone() };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let t = std::time::Instant::now();
        while !done() {
            assert!(t.elapsed().as_secs() < 30, "{what}: {}", std::fs::read_to_string(&log).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    wait_for("clock_wrong", &|| socket.exists() && status(&config)["uplink"]["link"] == "clock_wrong");
    assert!(sandbox_jobs(&sb).is_empty(), "nothing is sent on a wrong clock");
    std::fs::write(&clock, "+0\n").unwrap();
    wait_for("uploaded once the clock is right", &|| {
        sandbox_jobs(&sb).iter().any(|j| j["job_id"] == job_id.as_str() && j["uploads"] == 1)
    });
    wait_for("the link up", &|| status(&config)["uplink"]["link"] == "up");
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) };
    assert!(svc.child.wait().unwrap().success(), "{}", std::fs::read_to_string(&log).unwrap());
}

/// With the bundle key missing or swapped for another (a restore from the wrong backup), the
/// operator's looks do not show an empty queue: `queue ls` fails naming the key, `status`
/// counts the jobs it cannot read, `queue show` says the job is there, and `doctor` fails.
/// With the right key back, everything is as it was.
#[test]
fn jobs_a_wrong_key_cannot_read_are_not_shown_as_an_empty_queue() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job_id = capture(&config);
    let key = dir.path().join("state/keys/bundle.key");
    let good = std::fs::read(&key).unwrap();
    for wrong in [None, Some([7u8; 32])] {
        match wrong {
            None => std::fs::remove_file(&key).unwrap(),
            Some(k) => std::fs::write(&key, k).unwrap(),
        }
        let ls = agent(&["queue", "ls"], &config);
        assert!(!ls.status.success(), "{wrong:?}: {}", text(&ls));
        assert!(
            text(&ls).contains("1 job(s) in the queue are not listed") && text(&ls).contains("bundle.key"),
            "{}",
            text(&ls)
        );
        let s = status(&config);
        assert_eq!(s["queue"]["unreadable"], 1, "{s}");
        assert!(text(&agent(&["status"], &config)).contains("unreadable 1 job(s) kept"));
        let show = agent(&["queue", "show", &job_id], &config);
        assert!(
            !show.status.success() && text(&show).contains(&job_id) && text(&show).contains("cannot be read"),
            "{}",
            text(&show)
        );
        let o = agent(&["doctor", "--json"], &config);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
        let storage = report.as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap();
        assert_eq!(storage["verdict"], "FAIL", "{storage}");
    }
    std::fs::write(&key, &good).unwrap();
    let ls = agent(&["queue", "ls"], &config);
    assert!(ls.status.success() && text(&ls).contains(&job_id), "{}", text(&ls));
    assert_eq!(status(&config)["queue"]["unreadable"], 0);
}

/// `capture` refuses an id_info Smile ID would refuse before the camera starts, as the API
/// does, and says so once.
#[test]
fn capture_refuses_a_bad_id_info_before_the_camera() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let id = dir.path().join("id.json");
    std::fs::write(&id, r#"{"country":"NG","id_type":"NIN_V2","id_number":"12345678901"}"#).unwrap();
    let t = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["capture", "--user-id", "u", "--consent-given", "--job-type", "1", "--id-info"])
        .arg(&id)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches("id_info.entered").count(), 1, "{}", text(&o));
    assert!(t.elapsed().as_secs() < 10, "the capture ran first: {:?}", t.elapsed());
    assert_eq!(bundle_count(dir.path()), 0);
    assert!(!dir.path().join("screens").exists(), "a screen was drawn");
}

/// `kill -HUP`, an operator's "reload", leaves the service running (systemd would not restart
/// it after a death by SIGHUP) and says in the log what does reload the config.
#[test]
fn a_hangup_does_not_end_the_service() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let mut svc = start_service(dir.path(), &config);
    for sig in [libc::SIGHUP, libc::SIGUSR1] {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(svc.child.id() as i32, sig) };
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let log = || std::fs::read_to_string(dir.path().join("service.log")).unwrap();
    assert!(svc.child.try_wait().unwrap().is_none(), "the service ended: {}", log());
    assert!(log().contains("SIGHUP") && log().contains("systemctl restart kiosk-agent"), "{}", log());
    assert_eq!(status(&config)["service"], "running");
}

#[test]
fn a_wrong_base_url_pauses_keeps_the_job_and_it_goes_once_corrected() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job_id = capture(&config);
    let good = std::fs::read_to_string(&config).unwrap();
    // Without /v1 the config itself says what is wrong.
    std::fs::write(&config, good.replace(&sb.base_url, &sb.base_url.replace("/v1", ""))).unwrap();
    let o = agent(&["upload"], &config);
    assert!(!o.status.success() && text(&o).contains("ending in /v1"), "{}", text(&o));
    // A path the server does not serve: paused, the job and its images kept.
    std::fs::write(&config, good.replace(&sb.base_url, &sb.base_url.replace("/v1", "/api/v1"))).unwrap();
    let o = agent(&["upload"], &config);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("smileid.environment"), "{}", text(&o));
    // Said as soon as the link is checked (an idle kiosk's first probe too), not only by a job.
    assert!(text(&o).contains("answered 404 (no such call) to a signed valid_documents"), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&agent(&["queue", "show", &job_id], &config).stdout).unwrap();
    assert_eq!(r["stage"], "queued", "{r}");
    assert_eq!(bundle_count(dir.path()), 1);
    std::fs::write(&config, &good).unwrap();
    let up = agent(&["upload"], &config);
    assert!(up.status.success(), "{}", text(&up));
    let jobs = sandbox_jobs(&sb);
    assert_eq!((jobs.len(), jobs[0]["uploads"].as_u64()), (1, Some(1)));
}

#[test]
fn a_quarantined_job_is_refused_a_retry_and_comes_back_once_its_bundle_checks() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let job_id = capture(&config);
    let bundle = std::fs::read_dir(dir.path().join("state/bundles")).unwrap().next().unwrap().unwrap().path();
    let good = std::fs::read(&bundle).unwrap();
    let mut bad = good.clone();
    bad[60] ^= 1;
    std::fs::write(&bundle, bad).unwrap();
    // The next command that opens the queue for changes finds the damage and sets it aside.
    let o = agent(&["queue", "retry", &job_id], &config);
    assert!(!o.status.success() && text(&o).contains("queue restore"), "{}", text(&o));
    let o = agent(&["queue", "restore", &job_id], &config);
    assert!(!o.status.success() && text(&o).contains("still does not check"), "{}", text(&o));
    assert!(text(&o).contains("good copy of the file"), "{}", text(&o));
    let ls = agent(&["queue", "ls"], &config);
    assert!(text(&ls).contains("quarantined"), "{}", text(&ls));
    // The good copy is put back (from a backup): the job returns and goes up once.
    let name = bundle.file_name().unwrap();
    std::fs::write(dir.path().join("state/quarantine").join(name), &good).unwrap();
    // The operator's restore says so, though opening the queue for it already took it back.
    let o = agent(&["queue", "restore", &job_id], &config);
    assert!(o.status.success() && text(&o).contains("out of quarantine, queued"), "{}", text(&o));
    let up = agent(&["upload"], &config);
    assert!(up.status.success(), "{}", text(&up));
    let jobs = sandbox_jobs(&sb);
    assert_eq!((jobs.len(), jobs[0]["uploads"].as_u64()), (1, Some(1)));
}

/// A job found damaged as the service starts is counted for the fleet, as one found at upload is
/// (the shipped KioskJobsQuarantined alert reads the queue's own count).
#[test]
fn a_job_quarantined_as_the_service_starts_is_counted_for_the_fleet() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    capture(&config);
    let bundle = std::fs::read_dir(dir.path().join("state/bundles")).unwrap().next().unwrap().unwrap().path();
    let mut bad = std::fs::read(&bundle).unwrap();
    bad[60] ^= 1;
    std::fs::write(&bundle, bad).unwrap();
    let svc = start_service(dir.path(), &config);
    // The queue's figures are the uplink's first pass's, which may come a moment after the
    // socket (a loaded machine).
    let t = std::time::Instant::now();
    let answer = loop {
        let answer = service_get(&svc, "/metrics");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        if answer.contains("kiosk_queue_jobs{stage=\"quarantined\"} 1") || t.elapsed().as_secs() > 10 {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(answer.contains("\nkiosk_jobs_quarantined_total 1\n"), "{answer}");
    assert!(answer.contains("kiosk_queue_jobs{stage=\"quarantined\"} 1"), "{answer}");
}

/// A `[metrics] listen` whose port is taken: the kiosk serves on, and health says the fleet
/// cannot see it.
#[test]
fn a_metrics_listener_that_cannot_start_is_a_health_problem() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(&format!("[metrics]\nlisten = \"{}\"\n", taken.local_addr().unwrap()));
    std::fs::write(&config, cfg).unwrap();
    let svc = start_service(dir.path(), &config);
    // The listener is tried just after the control socket opens.
    let t = std::time::Instant::now();
    let mut health = service_get(&svc, "/v1/health");
    while !health.contains("\"metrics_not_served\"") && t.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        health = service_get(&svc, "/v1/health");
    }
    assert!(health.contains("\"metrics_not_served\""), "{health}");
}

/// The answer to a GET of `path` on the service's control socket, head and body.
fn service_get(svc: &Service, path: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    answer
}

/// The answer to a POST of `body` to `path` on the service's control socket, head and body.
fn service_post(svc: &Service, path: &str, body: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
    let n = body.len();
    let req = format!("POST {path} HTTP/1.1\r\nHost: k\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n{body}");
    std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    answer
}

/// `kiosk-agent run` as the service, with its control socket.
struct Service {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(dir: &Path, config: &Path) -> Service {
    let socket = dir.join("control.sock");
    let mut cfg = std::fs::read_to_string(config).unwrap();
    if !cfg.contains("[api]") {
        cfg.push_str(&format!("[api]\nsocket = {socket:?}\n[uplink]\nidle_poll_secs = 1\n"));
        std::fs::write(config, cfg).unwrap();
    }
    let child = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["run", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::from(std::fs::File::create(dir.join("service.log")).unwrap()))
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !socket.exists() {
        assert!(t.elapsed().as_secs() < 30, "{}", std::fs::read_to_string(dir.join("service.log")).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Service { child, socket }
}

#[test]
fn operator_commands_beside_the_running_service_go_through_it_and_lose_nothing() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let first = capture(&config);
    let svc = start_service(dir.path(), &config);
    // While the service runs, every command either goes through it or says why it cannot.
    for _ in 0..3 {
        let s = status(&config);
        assert!(s["queue"]["pending"].is_number(), "{s}");
        assert_eq!(s["service"], "running", "{s}");
        let ls = agent(&["queue", "ls"], &config);
        assert!(ls.status.success() && text(&ls).contains(&first), "{}", text(&ls));
        for refused in [vec!["capture", "--user-id", "u", "--consent-given", "--job-type", "4"], vec!["upload"]] {
            let o = agent(&refused, &config);
            assert!(!o.status.success() && text(&o).contains("in use by another kiosk-agent"), "{}", text(&o));
        }
    }
    // A session through the service, after all that.
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["session", "--user-id", "u2", "--job-type", "4", "--consent-given", "--socket"])
        .arg(&svc.socket)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let view: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let second = view["job_id"].as_str().unwrap().to_string();
    let t = std::time::Instant::now();
    while sandbox_jobs(&sb).len() < 2 {
        assert!(t.elapsed().as_secs() < 60, "both jobs reach Smile ID: {:?}", sandbox_jobs(&sb));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let jobs = sandbox_jobs(&sb);
    let ids: std::collections::HashSet<_> = jobs.iter().map(|j| j["job_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, [first, second].into_iter().collect());
    assert!(jobs.iter().all(|j| j["uploads"] == 1), "{jobs:?}");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("state")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().contains("damaged")), "{names:?}");
    // An Enhanced KYC lookup with the job_id an operator chose, read again by it.
    let id_info = dir.path().join("id.json");
    let person = r#"{"country": "NG", "id_type": "NIN_V2", "id_number": "00000000000", "first_name": "Ada", "last_name": "Obi", "dob": "1990-01-01"}"#;
    std::fs::write(&id_info, person).unwrap();
    let via = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiosk-agent")).args(args).arg("--socket").arg(&svc.socket).output().unwrap()
    };
    let looked_up = via(&["ekyc", "--user-id", "u3", "--job-id", "ek-cli", "--id-info", id_info.to_str().unwrap()]);
    assert!(looked_up.status.success() && text(&looked_up).contains("\"ek-cli\""), "{}", text(&looked_up));
    let again = via(&["jobs", "ek-cli"]);
    assert!(again.status.success() && text(&again).contains("\"stage\": \"result\""), "{}", text(&again));
    // A look at a kiosk that never ran creates nothing.
    let fresh = dir.path().join("fresh.toml");
    std::fs::write(&fresh, std::fs::read_to_string(&config).unwrap().replace("/state\"", "/never\"")).unwrap();
    let o = agent(&["status"], &fresh);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.path().join("never").exists());
}

/// What `check-config` accepts is exactly what the agent builds: every camera source, display
/// backend (both SPI panel models), input backend, evdev mode (none, "auto", a named device)
/// and walk-up mode, with each liveness mode and each synthetic-camera subject (the person, a
/// photo swayed or tilted) in turn, through the CLI as an operator runs it, then built as `run`
/// builds it.
/// Devices that are not on this machine (the framebuffer, the SPI bus, the GPIO chip, the
/// named input device: named so that they cannot exist) fail only as missing devices, never as
/// configuration.
#[test]
fn check_config_accepts_exactly_what_the_agent_builds() {
    use kiosk_agent::config::{CameraSource, Config, DisplayBackend, InputBackend, WalkUp};
    let as_text = |v: serde_json::Value| v.as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api_key");
    std::fs::write(&key, "k").unwrap();
    let photo = dir.path().join("photo.jpg");
    std::fs::write(&photo, kiosk_agent::camera::synthetic::FIXTURE_FACE).unwrap();
    let subjects =
        [String::new(), format!("fixture = {photo:?}\n"), format!("fixture = {photo:?}\nfixture_motion = \"tilt\"\n")];
    let config = dir.path().join("kiosk.toml");
    // No device attached, "auto", one missing, and a path there that is no device (a file).
    let not_a_device = dir.path().join("event-file");
    std::fs::write(&not_a_device, b"").unwrap();
    let evdevs =
        ["[]".to_string(), "[\"auto\"]".into(), "[\"/dev/input/event-none\"]".into(), format!("[{not_a_device:?}]")];
    // Set from the start: the devices are opened once, no scan for more follows.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut combos = 0;
    for cam in CameraSource::ALL {
        for disp in DisplayBackend::ALL {
            let models: &[&str] = if disp == DisplayBackend::Spi { &["st7789", "ili9341"] } else { &["st7789"] };
            for model in models {
                for inp in InputBackend::ALL {
                    for evdev in &evdevs {
                        let evdev = evdev.as_str();
                        for walk in WalkUp::ALL {
                            combos += 1;
                            let n = combos;
                            // An SPI panel whose reset is wired to the board's, as README offers.
                            let reset = if *model == "ili9341" { "reset_line = \"none\"\n" } else { "" };
                            let toml = format!(
                            "state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"sandbox\"\napi_key_file = {key:?}\n\
                             [camera]\nsource = \"{}\"\ndevice = \"/dev/video-none\"\n{}\
                             [display]\nbackend = \"{}\"\nlanguage = \"{}\"\n{}device = \"/dev/fb-none\"\nspi_model = \"{model}\"\nspi_device = \"/dev/spidev-none\"\ngpio_chip = \"/dev/gpiochip-none\"\n{reset}out_dir = {:?}\n\
                             [input]\nbackend = \"{}\"\nchip = \"/dev/gpiochip-none\"\nwalk_up = \"{}\"\nwalk_up_country = \"KE\"\nwalk_up_id_type = \"NATIONAL_ID\"\nwalk_up_document_back = {}\n\
                             evdev = {evdev}\ntouch_rotation = {}\n{}\
                             [api]\nsocket = {:?}\n[capture]\nliveness = \"{}\"\n",
                            dir.path().join(format!("state{n}")),
                            as_text(serde_json::to_value(cam).unwrap()),
                            // The synthetic camera's subject: the person, or a photo swayed or tilted.
                            subjects[n % 3],
                            as_text(serde_json::to_value(disp).unwrap()),
                            // Every built-in language, and a panel diagonal set or guessed.
                            kiosk_agent::display::text::BUILT_IN[n % 10].0,
                            // Further languages offered at the welcome, or none.
                            if n % 2 == 0 { "diagonal_inches = 2.8\nlanguages = [\"fr\", \"am\"]\n" } else { "" },
                            dir.path().join(format!("screens{n}")),
                            as_text(serde_json::to_value(inp).unwrap()),
                            as_text(serde_json::to_value(walk).unwrap()),
                            // A card's back, or a passport's front only.
                            n % 5 != 0,
                            [0, 90, 180, 270][n % 4],
                            if n % 3 == 0 { "touch_calibration = [4000, 100, 0, 4095]\n" } else { "" },
                            dir.path().join(format!("api{n}.sock")),
                            ["active", "motion"][n % 2],
                        );
                            std::fs::write(&config, &toml).unwrap();
                            let o = agent(&["check-config"], &config);
                            let what = format!("{cam:?}/{disp:?}/{model}/{inp:?}/{evdev}/{walk:?}");
                            // A walk-up session starts at the kiosk: it needs the button, a touch
                            // panel or keys.
                            let buildable = walk == WalkUp::Off || inp == InputBackend::Gpio || evdev != "[]";
                            // A file named as a device is a mistake in the config, refused by
                            // check-config as the service refuses it (a missing one may be
                            // unplugged: the service's and the doctor's to find).
                            if buildable && evdev.contains("event-file") {
                                assert_eq!(o.status.code(), Some(78), "{what}: {}", text(&o));
                                assert!(text(&o).contains("not an input device"), "{what}: {}", text(&o));
                                let c = Config::parse(&toml, "kiosk.toml").unwrap();
                                let e = c.input.watch_evdev((320, 240), stop.clone()).map(|r| r.1).unwrap_err();
                                assert!(e.to_string().contains("not an input device"), "{what}: {e}");
                                continue;
                            }
                            assert_eq!(o.status.success(), buildable, "{what}: {}", text(&o));
                            if !buildable {
                                assert_eq!(o.status.code(), Some(78), "{what}: {}", text(&o));
                                assert!(text(&o).contains("input.walk_up"), "{what}: {}", text(&o));
                                continue;
                            }
                            let c = Config::parse(&toml, "kiosk.toml").unwrap();
                            assert_eq!(
                                as_text(serde_json::to_value(c.capture.liveness).unwrap()),
                                ["active", "motion"][n % 2]
                            );
                            c.camera.open().unwrap_or_else(|e| panic!("{what}: the camera: {e}"));
                            let queue = std::sync::Arc::new(
                                kiosk_agent::queue::Queue::open(&c.state_dir, c.queue.clone()).unwrap(),
                            );
                            match (disp, kiosk_agent::app::Agent::build(c.clone(), queue)) {
                                (DisplayBackend::Png, Ok(_)) => {}
                                // No such device here: the kiosk is built to wait for it.
                                (DisplayBackend::Framebuffer | DisplayBackend::Spi, Ok(a)) => {
                                    assert!(
                                        a.service.display_missing(),
                                        "{what}: a display that cannot be here was opened"
                                    )
                                }
                                (_, Err(e)) => panic!("{what}: built with {e}"),
                            }
                            match (inp, c.input.watch()) {
                                (InputBackend::None, Ok(None)) | (InputBackend::Gpio, Err(_)) => {}
                                (_, r) => panic!("{what}: the button: {:?}", r.map(|r| r.is_some())),
                            }
                            // As `run` starts them: none, whatever "auto" finds, or the named one
                            // missing, waited for (it may be plugged in later).
                            match (evdev, c.input.watch_evdev((320, 240), stop.clone())) {
                                ("[]", Ok((_, can))) if can == Default::default() => {}
                                ("[\"auto\"]", Ok(_)) => {}
                                (_, Ok((_, can))) if evdev.contains("event-none") && can == Default::default() => {}
                                (_, r) => panic!("{what}: the input devices: {:?}", r.map(|r| r.1)),
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(combos, 2 * 4 * 2 * 4 * 3, "every value of every choice");
    // A diagonal no panel has is refused, naming the key.
    let good = std::fs::read_to_string(&config).unwrap().replace("diagonal_inches = 2.8\n", "");
    std::fs::write(&config, good.replace("[display]\n", "[display]\ndiagonal_inches = 0.5\n")).unwrap();
    let o = agent(&["check-config"], &config);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("display.diagonal_inches"), "{}", text(&o));
    // Input values no panel has are refused, naming their key.
    for (bad, key) in [
        ("touch_rotation = 45\n", "input.touch_rotation"),
        ("touch_calibration = [10, 10, 0, 4095]\n", "input.touch_calibration"),
        ("evdev = [\"event0\"]\n", "input.evdev"),
    ] {
        let t =
            good.lines().filter(|l| !l.starts_with("touch_") && !l.starts_with("evdev")).collect::<Vec<_>>().join("\n");
        std::fs::write(&config, t.replace("[input]\n", &format!("[input]\n{bad}"))).unwrap();
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(78), "{bad}: {}", text(&o));
        assert!(text(&o).contains(key), "{bad}: {}", text(&o));
    }
    let t = good.lines().filter(|l| !l.starts_with("languages")).collect::<Vec<_>>().join("\n");
    for (list, says) in [("[\"xx\"]", "xx"), ("[\"fr\", \"en\", \"fr\"]", "listed twice")] {
        std::fs::write(&config, t.replace("[display]\n", &format!("[display]\nlanguages = {list}\n"))).unwrap();
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(78), "{}", text(&o));
        assert!(text(&o).contains("display.languages") && text(&o).contains(says), "{}", text(&o));
    }
}

/// A translator previews a language file of their own, as README says: every screen as PNG,
/// no hardware, no service; a character the fonts lack, or a bad size, is named.
#[test]
fn display_render_previews_a_translators_language_file() {
    let dir = tempfile::tempdir().unwrap();
    let render = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiosk-agent")).args(["display", "render"]).args(args).output().unwrap()
    };
    let out = dir.path().join("yo");
    let o = render(&["--language", "yo", "--size", "240x320", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let pngs = std::fs::read_dir(&out).unwrap().count();
    // Every screen, and the whole consent's further pages (three on a 2.8" panel).
    assert_eq!(pngs, kiosk_agent::display::samples::all().len() + 2);
    assert!(out.join("consent-more-3.png").is_file() && !out.join("consent-more-4.png").exists());
    let idle = image::open(out.join("idle.png")).unwrap().to_rgb8();
    assert_eq!(idle.dimensions(), (240, 320));

    // A Hausa file from an operator's directory overrides the built-in one.
    let langs = dir.path().join("lang");
    std::fs::create_dir(&langs).unwrap();
    let ha = kiosk_agent::display::text::BUILT_IN.iter().find(|(c, _)| *c == "ha").unwrap().1;
    std::fs::write(langs.join("ha.toml"), ha.replace("Barka da zuwa", "Sannu")).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(render(&["--language", "ha", "--out", a.to_str().unwrap()]).status.success());
    let o = render(&["--language", "ha", "--lang-dir", langs.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read(a.join("idle.png")).unwrap(), std::fs::read(b.join("idle.png")).unwrap());
    assert_eq!(std::fs::read(a.join("consent.png")).unwrap(), std::fs::read(b.join("consent.png")).unwrap());
    // A word too long for a small panel's line: the screens are written, and the command fails
    // naming where the text does not fit.
    std::fs::write(langs.join("ha.toml"), ha.replace("Barka da zuwa", "Donaudampfschifffahrtsgesellschaftskapitän"))
        .unwrap();
    let small = dir.path().join("small");
    let render_small = || {
        let (langs, small) = (langs.to_str().unwrap(), small.to_str().unwrap());
        render(&["--language", "ha", "--lang-dir", langs, "--size", "240x320", "--out", small])
    };
    let o = render_small();
    assert!(!o.status.success() && small.join("idle.png").exists(), "{}", text(&o));
    assert!(text(&o).contains("idle: a word of \"Donaudampf") && text(&o).contains("do not fit"), "{}", text(&o));
    // So are the texts a person meets only when something is wrong (a hint at the camera).
    let hint = ha.lines().find(|l| l.starts_with("hint_more_light")).unwrap();
    std::fs::write(
        langs.join("ha.toml"),
        ha.replace(hint, "hint_more_light = \"Donaudampfschifffahrtsgesellschaftskapitän\""),
    )
    .unwrap();
    let o = render_small();
    assert!(!o.status.success() && small.join("hint-more-light.png").exists(), "{}", text(&o));
    assert!(text(&o).contains("hint-more-light: a word of \"Donaudampf"), "{}", text(&o));

    // A Tamil word: no built-in font has it, and the message says which character and key.
    std::fs::write(langs.join("ha.toml"), ha.replace("Barka da zuwa", "வணக்கம்")).unwrap();
    let o = render(&["--language", "ha", "--lang-dir", langs.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("U+0BB5") && text(&o).contains("welcome_title"), "{}", text(&o));
    // The partner's own name is laid out in the consent: one too long for the panel is found
    // there, and one that names no one is refused before anything is drawn.
    let long = "Banque Régionale Donaudampfschifffahrtsgesellschaftskapitän";
    let o = render(&["--size", "240x320", "--partner", long, "--out", b.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("consent: a word of"), "{}", text(&o));
    let o = render(&["--partner", "   ", "--out", dir.path().join("blank").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("names no one"), "{}", text(&o));
    assert!(!dir.path().join("blank").exists(), "nothing drawn for a name that names no one");
    // A red accent is drawn, and said to read as a warning.
    let o = render(&["--accent", "#B00020", "--out", b.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("accent is a red"), "{}", text(&o));
    let o = render(&["--size", "800", "--out", b.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("WIDTHxHEIGHT"), "{}", text(&o));
}

/// Relative paths in a config are taken from the config's directory, so an operator's command
/// run from elsewhere works on the same queue: a job captured from the config's directory is
/// listed from another one, and check-config shows where.
#[test]
fn relative_paths_are_taken_from_the_configs_directory() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let cfg = std::fs::read_to_string(&config).unwrap();
    let cfg = cfg.replace(&format!("state_dir = {:?}", dir.path().join("state")), "state_dir = \"queue\"");
    std::fs::write(&config, cfg.replace("[display]\n", "[display]\nlang_dir = \"lang\"\n")).unwrap();
    std::fs::create_dir(dir.path().join("lang")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let run_in = |cwd: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .current_dir(cwd)
            .output()
            .unwrap()
    };
    let o = run_in(dir.path(), &["capture", "--user-id", "u", "--consent-given", "--job-type", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    let job = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let o = run_in(elsewhere.path(), &["queue", "ls"]);
    assert!(o.status.success() && text(&o).contains(&job), "{}", text(&o));
    let o = run_in(elsewhere.path(), &["check-config"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&dir.path().join("queue").display().to_string()), "{}", text(&o));
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing made where the command ran");
    // A secret's relative name found nowhere: the error names where it must be, in credentials/
    // beside the config; a file of that name where the command runs is not taken (the service
    // would not find it).
    let cfg = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, cfg.replace(&format!("api_key_file = {:?}", sb.key_file), "api_key_file = \"no_key\""))
        .unwrap();
    std::fs::copy(&sb.key_file, elsewhere.path().join("no_key")).unwrap();
    let o = run_in(elsewhere.path(), &["check-config"]);
    assert!(!o.status.success(), "a key where the command ran was taken: {}", text(&o));
    let looked = dir.path().join("credentials").join("no_key");
    assert!(text(&o).contains(&looked.display().to_string()), "{}", text(&o));
}

/// Values that would only fail later, and then look like something else, are refused up front
/// naming their key: an empty state_dir (personal data in the config's directory), an HTTP
/// timeout of 0 (every upload read as a dead link), a preview's panel of 0 inches (it aborted
/// allocating 155 GB).
#[test]
fn values_that_would_fail_later_are_refused_naming_them() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let good = std::fs::read_to_string(&config).unwrap();
    let state = format!("state_dir = {:?}", dir.path().join("state"));
    for (bad, key) in [
        (good.replace(&state, "state_dir = \"\""), "state_dir"),
        (format!("{good}[http]\nidle_secs = 0\n"), "http.idle_secs"),
        (format!("{good}[http]\nrecv_response_secs = 0\n"), "http.recv_response_secs"),
    ] {
        std::fs::write(&config, bad).unwrap();
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(78), "{key}: {}", text(&o));
        assert!(text(&o).contains(key), "{}", text(&o));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["display", "render", "--diagonal", "0", "--out"])
        .arg(dir.path().join("png"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--diagonal"), "{}", text(&o));
}

/// An operator's language directory is checked whole, as the service reads it: a directory that
/// is missing or is a file, a file in it that a host application could ask for but that lacks a
/// key, and a language file that cannot be read (which used to give way quietly to the built-in
/// text it was written to replace) are each refused, naming the key and the file.
#[test]
fn check_config_reads_every_file_of_the_language_directory() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let base = std::fs::read_to_string(&config).unwrap();
    let langs = dir.path().join("lang");
    let with_dir = |d: &Path| {
        std::fs::write(
            &config,
            base.replace("[display]\n", &format!("[display]\nlanguage = \"ha\"\nlang_dir = {d:?}\n")),
        )
        .unwrap();
        agent(&["check-config"], &config)
    };
    let o = with_dir(&langs);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("display.lang_dir") && text(&o).contains("does not exist"), "{}", text(&o));
    std::fs::write(&langs, "").unwrap();
    let o = with_dir(&langs);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("is not a directory"), "{}", text(&o));
    std::fs::remove_file(&langs).unwrap();
    std::fs::create_dir(&langs).unwrap();
    let ha = kiosk_agent::display::text::BUILT_IN.iter().find(|(c, _)| *c == "ha").unwrap().1;
    std::fs::write(langs.join("ha.toml"), ha.replace("Barka da zuwa", "Sannu")).unwrap();
    let o = with_dir(&langs);
    assert!(o.status.success() && !text(&o).contains("warning: language"), "{}", text(&o));
    // A welcome too long for the panel: the service would show it cut, so check-config says so
    // (a warning: a cramped screen is no reason to keep the kiosk down).
    let long = "Donaudampfschifffahrtsgesellschaftskapitän";
    std::fs::write(langs.join("ha.toml"), ha.replace("Barka da zuwa", long)).unwrap();
    let o = with_dir(&langs);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("warning: language ha on a") && text(&o).contains("Donaudampf"), "{}", text(&o));
    std::fs::write(langs.join("ha.toml"), ha.replace("Barka da zuwa", "Sannu")).unwrap();
    // A language no session is set to yet, but one a host application may ask for.
    std::fs::write(langs.join("ff.toml"), "reviewed = false\nwelcome_title = \"Jaraama\"\n").unwrap();
    let o = with_dir(&langs);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("ff.toml") && text(&o).contains("is missing"), "{}", text(&o));
    std::fs::remove_file(langs.join("ff.toml")).unwrap();
    // The Hausa file made unreadable: refused by check-config and by the preview alike.
    std::fs::remove_file(langs.join("ha.toml")).unwrap();
    std::fs::create_dir(langs.join("ha.toml")).unwrap();
    let o = with_dir(&langs);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("ha.toml") && text(&o).contains("cannot read it"), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["display", "render", "--language", "ha", "--lang-dir"])
        .arg(&langs)
        .arg("--out")
        .arg(dir.path().join("png"))
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("cannot read it"), "{}", text(&o));
}

/// A partner's accent and logo, set in the config as README shows, reach the screens the agent
/// draws: the welcome under `run` carries the logo where the pictogram was, the capture's oval
/// is in the accent and the kiosk's own teal is gone; an accent that would not read, or a logo
/// that is not an image, is refused naming its key.
#[test]
fn a_partners_accent_and_logo_reach_the_screens_from_the_config() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    // A 300×100 logo in a colour no screen uses, its corners transparent.
    const LOGO: [u8; 3] = [194, 24, 91];
    let logo = dir.path().join("logo.png");
    image::RgbaImage::from_fn(300, 100, |x, y| {
        let corner = !(20..280).contains(&x) && !(20..80).contains(&y);
        image::Rgba([LOGO[0], LOGO[1], LOGO[2], if corner { 0 } else { 255 }])
    })
    .save(&logo)
    .unwrap();
    const ACCENT: [u8; 3] = [11, 61, 145];
    const TEAL: [u8; 3] = [0, 105, 92];
    let base = std::fs::read_to_string(&config).unwrap();
    let branded = base.replace("[display]\n", &format!("[display]\naccent = \"#0B3D91\"\nlogo = {logo:?}\n"));
    std::fs::write(&config, &branded).unwrap();
    let o = agent(&["check-config"], &config);
    assert!(o.status.success(), "{}", text(&o));

    let count = |png: &Path, rgb: [u8; 3]| -> (usize, Option<(u32, u32)>) {
        let img = image::open(png).unwrap().to_rgb8();
        let hits: Vec<_> = img.enumerate_pixels().filter(|(_, _, p)| p.0 == rgb).map(|(x, y, _)| (x, y)).collect();
        (hits.len(), hits.first().copied())
    };
    let screens = dir.path().join("screens");
    let named = |name: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&screens)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.to_string_lossy().ends_with(&format!("-{name}.png")))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    // A capture: the face screens' oval in the accent, no teal anywhere.
    let job = capture(&config);
    assert!(!job.is_empty());
    let faces = named("capture");
    assert!(!faces.is_empty(), "no capture screens in {screens:?}");
    assert!(faces.iter().any(|p| count(p, ACCENT).0 > 100), "the oval in the partner's accent");
    for p in std::fs::read_dir(&screens).unwrap().map(|e| e.unwrap().path()) {
        assert_eq!(count(&p, TEAL).0, 0, "the kiosk's own accent on {p:?}");
    }
    // The welcome under `run`: the logo, centred, in the top half; its transparent corners show
    // the background.
    let svc = start_service(dir.path(), &config);
    let t = std::time::Instant::now();
    while named("idle").is_empty() {
        assert!(
            t.elapsed().as_secs() < 30,
            "no welcome screen: {}",
            std::fs::read_to_string(dir.path().join("service.log")).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let idle = named("idle").pop().unwrap();
    let (n, first) = count(&idle, LOGO);
    assert!(n > 500, "the logo on the welcome screen: {n} pixels");
    let img = image::open(&idle).unwrap().to_rgb8();
    let (x, y) = first.unwrap();
    assert!(y < img.height() / 2, "the logo heads the screen ({x}, {y})");
    let row: Vec<u32> = (0..img.width()).filter(|&x| img.get_pixel(x, y + 10).0 == LOGO).collect();
    let centre = (row[0] + row[row.len() - 1]) as i32 / 2;
    assert!((centre - img.width() as i32 / 2).abs() <= 2, "centred: {row:?}");
    drop(svc);

    // Refused, naming the key and what to do.
    for (line, key, says) in
        [("accent = \"#F5C518\"", "display.accent", "darker"), ("accent = \"blue\"", "display.accent", "#RRGGBB")]
    {
        std::fs::write(&config, base.replace("[display]\n", &format!("[display]\n{line}\n"))).unwrap();
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(78), "{line}: {}", text(&o));
        assert!(text(&o).contains(key) && text(&o).contains(says), "{line}: {}", text(&o));
    }
    let not_png = dir.path().join("logo.svg");
    std::fs::write(&not_png, "<svg/>").unwrap();
    std::fs::write(&config, base.replace("[display]\n", &format!("[display]\nlogo = {not_png:?}\n"))).unwrap();
    let o = agent(&["check-config"], &config);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("display.logo") && text(&o).contains("logo.svg"), "{}", text(&o));
    // The designers' preview takes the same two settings.
    let out = dir.path().join("preview");
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["display", "render", "--accent", "#0B3D91", "--logo"])
        .arg(&logo)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(count(&out.join("idle.png"), LOGO).0 > 500);
    assert!(count(&out.join("consent.png"), ACCENT).0 > 100, "the buttons in the accent");
}

/// What `check-config` accepts in `[kiosk]`, `[metrics]` and the brand is exactly what `run`
/// builds: every metrics mode (off, plain, TLS with and without client certificates) with and
/// without a brand and a kiosk identity passes check-config, builds the agent and serves
/// `/metrics` as `run` does; settings that cannot work are refused naming their key.
#[test]
fn check_config_accepts_exactly_the_metrics_brand_and_identity_the_agent_builds() {
    use kiosk_agent::config::Config;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api_key");
    std::fs::write(&key, "k").unwrap();
    // The fleet's CA, this kiosk's certificate, and a logo.
    let (ca_key, mut ca) =
        (rcgen::KeyPair::generate().unwrap(), rcgen::CertificateParams::new(Vec::<String>::new()).unwrap());
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca.clone().self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let kiosk_key = rcgen::KeyPair::generate().unwrap();
    let kiosk =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&kiosk_key, &issuer).unwrap();
    let (ca_file, cert, tls_key) =
        (dir.path().join("ca.pem"), dir.path().join("kiosk.pem"), dir.path().join("kiosk.key"));
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::fs::write(&cert, kiosk.pem()).unwrap();
    std::fs::write(&tls_key, kiosk_key.serialize_pem()).unwrap();
    let logo = dir.path().join("logo.png");
    image::RgbaImage::from_pixel(40, 20, image::Rgba([11, 61, 145, 255])).save(&logo).unwrap();

    let metrics_modes = [
        String::new(),
        "listen = \"127.0.0.1:0\"\n".to_string(),
        format!("listen = \"127.0.0.1:0\"\ntls_cert = {cert:?}\ntls_key = {tls_key:?}\n"),
        format!("listen = \"127.0.0.1:0\"\ntls_cert = {cert:?}\ntls_key = {tls_key:?}\nclient_ca = {ca_file:?}\n"),
    ];
    let brands = [String::new(), format!("accent = \"#0B3D91\"\nlogo = {logo:?}\n")];
    let identities = ["", "[kiosk]\nid = \"nbo-01\"\nsite = \"Westlands\"\nregion = \"KE\"\n"];
    let config = dir.path().join("kiosk.toml");
    let mut combos = 0;
    for (m, metrics) in metrics_modes.iter().enumerate() {
        for brand in &brands {
            for ident in identities {
                combos += 1;
                let toml = format!(
                    "state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"sandbox\"\napi_key_file = {key:?}\n\
                     [camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\n{brand}\
                     [api]\nsocket = {:?}\n{ident}[metrics]\n{metrics}",
                    dir.path().join(format!("state{combos}")),
                    dir.path().join(format!("screens{combos}")),
                    dir.path().join(format!("api{combos}.sock")),
                );
                std::fs::write(&config, &toml).unwrap();
                let o = agent(&["check-config"], &config);
                assert!(o.status.success(), "metrics mode {m}, brand {:?}, {ident:?}: {}", !brand.is_empty(), text(&o));
                // TLS that lets any client scrape is said.
                assert_eq!(text(&o).contains("no client_ca"), m == 2, "mode {m}: {}", text(&o));
                // Built as `run` builds it: the agent, then the listener with its TLS.
                let c = Config::parse(&toml, "kiosk.toml").unwrap();
                let queue =
                    std::sync::Arc::new(kiosk_agent::queue::Queue::open(&c.state_dir, c.queue.clone()).unwrap());
                kiosk_agent::app::Agent::build(c.clone(), queue).unwrap_or_else(|e| panic!("mode {m}: {e}"));
                let tls = c.metrics.tls().unwrap_or_else(|e| panic!("mode {m}: {e}"));
                assert_eq!(tls.is_some(), m >= 2, "mode {m}");
                if let Some(listen) = &c.metrics.listen {
                    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
                    kiosk_agent::metrics::listen::serve(listen, tls, String::new, stop).unwrap();
                }
                if !ident.is_empty() {
                    assert_eq!(c.kiosk.id(), "nbo-01");
                }
            }
        }
    }
    assert_eq!(combos, 4 * 2 * 2, "every metrics mode, brand and identity");
    // What cannot work is refused, naming its key.
    for (bad, name) in [
        ("[metrics]\ntls_cert = \"/x.pem\"\n", "metrics.listen"),
        ("[metrics]\nlisten = \"127.0.0.1:9464\"\ntls_cert = \"/x.pem\"\n", "metrics.tls_cert"),
        ("[metrics]\nlisten = \"127.0.0.1:9464\"\nclient_ca = \"/x.pem\"\n", "metrics.tls_cert"),
        ("[metrics]\nlisten = \"kiosk:metrics\"\n", "metrics.listen"),
        ("[kiosk]\nid = \"nbo 01\"\n", "kiosk.id"),
        ("[kiosk]\nsite = \"\"\n", "kiosk.site"),
        ("[kiosk]\nregion = \"\u{202E}GN\"\n", "kiosk.region"),
        // Files that do not load: the service would run without its metrics.
        (
            &format!("[metrics]\nlisten = \"127.0.0.1:9464\"\ntls_cert = {key:?}\ntls_key = {tls_key:?}\n"),
            "metrics TLS: certificate",
        ),
    ] {
        let toml = format!(
            "state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"sandbox\"\napi_key_file = {key:?}\n{bad}",
            dir.path().join("bad"),
        );
        std::fs::write(&config, toml).unwrap();
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(78), "{bad}: {}", text(&o));
        assert!(text(&o).contains(name), "{bad}: {}", text(&o));
        assert!(text(&o).contains(&config.display().to_string()), "the file is named: {}", text(&o));
    }
}

/// The face gates' keys as an operator writes them: the bystander size and the selfie's pose
/// limits (and an old config's `min_face_px`) are accepted; values that cannot work are refused
/// with exit 78 naming the key.
#[test]
fn check_config_accepts_the_face_gates_and_refuses_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let (key, config) = (dir.path().join("api_key"), dir.path().join("kiosk.toml"));
    std::fs::write(&key, "k").unwrap();
    let write = |extra: &str| {
        let toml = format!(
            "state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"sandbox\"\napi_key_file = {key:?}\n{extra}",
            dir.path().join("state"),
        );
        std::fs::write(&config, toml).unwrap();
    };
    write("[capture]\nmin_face_px = 40\n[capture.thresholds]\nmin_tracked_face = 0.05\nmax_yaw = 20.0\nmax_pitch = 25.0\nmax_roll = 10.0\n");
    let o = agent(&["check-config"], &config);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (bad, name) in [
        ("[capture.thresholds]\nmax_yaw = 120.0\n", "capture.thresholds.max_yaw"),
        ("[capture.thresholds]\nmax_roll = -1.0\n", "capture.thresholds.max_roll"),
        ("[capture.thresholds]\nmin_tracked_face = 0.2\n", "capture.thresholds.min_tracked_face"),
        ("[capture]\nmin_face_px = 10\n", "capture.min_face_px"),
    ] {
        write(bad);
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(78), "{bad}: {}", text(&o));
        assert!(text(&o).contains(name), "{bad}: {}", text(&o));
    }
}

/// Liveness as an operator configures it: the default asks a person for head turns and the
/// uploaded job says so in its metadata; a photo held up (the synthetic camera's fixture) is
/// refused with the reason and nothing is queued; "motion" is still accepted; impossible values
/// are refused naming the key.
#[test]
fn active_liveness_from_the_config_passes_a_person_refuses_a_photo_and_checks_its_keys() {
    let sb = start_sandbox(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sb);
    let base = std::fs::read_to_string(&config).unwrap();
    let capture = ["capture", "--user-id", "u-live", "--consent-given", "--job-type", "4"];

    let o = agent(&capture, &config);
    assert!(o.status.success(), "{}", text(&o));
    let job_id = String::from_utf8(o.stdout.clone()).unwrap().trim().to_string();
    assert!(text(&o).contains("active liveness done:"), "{}", text(&o));
    let up = agent(&["upload"], &config);
    assert!(up.status.success(), "{}", text(&up));
    // What Smile ID received: prep_upload's metadata, as the sandbox stored it.
    let jobs = std::fs::read_dir(sb.dir.path().join("state/jobs")).unwrap();
    let prep: serde_json::Value = jobs
        .map(|e| e.unwrap().path().join("prep_upload.json"))
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| serde_json::from_slice(&b).unwrap())
        .find(|v: &serde_json::Value| v["partner_params"]["job_id"] == job_id.as_str())
        .expect("the job's prep_upload");
    let meta: std::collections::HashMap<String, serde_json::Value> = prep["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["value"].clone()))
        .collect();
    assert_eq!(meta["active_liveness_type"], "head_pose");
    assert_eq!(meta["active_liveness_timed_out"], false);
    let order = meta["active_liveness_tasks"].as_str().unwrap();
    for task in ["turn_left", "turn_right", "look_up"] {
        assert!(order.contains(task), "{order}");
        assert!(meta[&format!("active_liveness_{task}_ms")].as_u64().is_some(), "{meta:?}");
    }
    assert!(meta["liveness_flatness"].as_f64().unwrap() >= 0.07, "{meta:?}");

    // A photo held up to the camera and tilted as asked: refused, nothing queued.
    let photo = dir.path().join("photo.jpg");
    std::fs::write(&photo, kiosk_agent::camera::synthetic::FIXTURE_FACE).unwrap();
    let held_up = format!("source = \"synthetic\"\nfixture = {photo:?}\nfixture_motion = \"tilt\"\n");
    let attack = base.replacen("source = \"synthetic\"\n", &held_up, 1) + "[capture.active]\ntimeout_secs = 5\n";
    std::fs::write(&config, &attack).unwrap();
    let o = agent(&capture, &config);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("liveness refused") && text(&o).contains("a photo, a screen"), "{}", text(&o));
    let ls = agent(&["queue", "ls", "--json"], &config);
    let records: Vec<serde_json::Value> = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(records.len(), 1, "only the person's job: {}", text(&ls));

    for (extra, code, name) in [
        ("[capture]\nliveness = \"motion\"\n", 0, ""),
        // An older config for a motion kiosk: few frames and a short limit are still fine.
        ("[capture]\nliveness = \"motion\"\nliveness_frames = 2\ntime_limit_secs = 30\n", 0, ""),
        ("[capture]\nliveness_frames = 3\n", 78, "capture.liveness_frames"),
        ("[capture]\ntime_limit_secs = 50\n", 78, "capture.active.timeout_secs"),
        ("[capture]\nliveness_interval_ms = 3000\n", 78, "capture.liveness_interval_ms"),
        ("[capture.active]\nturn_yaw = 35.0\nlook_up_pitch = 20.0\nhold_ms = 300\nmin_depth = 0.0\n", 0, ""),
        ("[capture]\nliveness = \"blink\"\n", 78, "liveness"),
        ("[capture.active]\nturn_yaw = 80.0\n", 78, "capture.active.turn_yaw"),
        ("[capture.active]\ntimeout_secs = 200\n", 78, "capture.active.timeout_secs"),
        ("[capture.active]\nmin_depth = 0.7\n", 78, "capture.active.min_depth"),
        ("[camera]\nsource = \"synthetic\"\nfixture_motion = \"spin\"\n", 78, "fixture_motion"),
    ] {
        let cfg = if extra.starts_with("[camera]") {
            base.replace("[camera]\nsource = \"synthetic\"\n", extra)
        } else {
            format!("{base}{extra}")
        };
        std::fs::write(&config, cfg).unwrap();
        let o = agent(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(code), "{extra}: {}", text(&o));
        assert!(text(&o).contains(name), "{extra}: {}", text(&o));
    }
}
