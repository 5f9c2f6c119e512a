//! The attack suite: what a buggy or hostile local client, a hostile server or a thief of the SD
//! card can do to a running `kiosk-agent run`, each case followed by a look at the agent's
//! state (alive, health answering, the queue as it should be). Also here: a plaintext upload
//! URL (`faults.rs`, `a_plaintext_upload_url_gets_nothing_and_the_job_is_kept`), concurrent
//! session starts (`api.rs`, `sessions_started_at_the_same_moment_start_once`) and the
//! property and fuzz tests of the API's limits and roles (`api_fuzz.rs`, `fuzz/`).

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use agent::{raw, slow_connections, RunningAgent, NO_SMILE_ID};
use common::*;
use serde_json::{json, Value};

use kiosk_agent::api::client::call;

const BIN: &str = env!("CARGO_BIN_EXE_kiosk-agent");
/// Users with no role (and no entry in /etc/passwd): the kernel still reports their uid.
const STRANGER: u32 = 64_999;
const NOBODY: u32 = 65_534;

fn short_deadlines() -> &'static str {
    "request_timeout_secs = 2\nmax_connections = 8\n"
}

fn admin(a: &RunningAgent, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(&a.socket, method, path, body.as_ref()).unwrap()
}

/// The agent is alive and its API whole: health answers, the queue lists.
fn assert_sound(a: &mut RunningAgent) {
    assert!(a.child.try_wait().unwrap().is_none(), "the agent died: {}", a.log_text());
    let (s, took) = a.health();
    assert_eq!(s, 200, "health did not answer: {}", a.log_text());
    assert!(took < Duration::from_secs(2), "health took {took:?}");
    assert_eq!(admin(a, "GET", "/v1/jobs", None).0, 200);
}

#[test]
fn oversized_and_half_sent_bodies_take_no_memory_and_are_cut_off() {
    let mut a = agent::start(BIN, NO_SMILE_ID, None, short_deadlines(), None);
    let before = a.status_kb("VmRSS:");
    // 60 clients declare 32 MiB bodies and send a byte: refused at once, nothing allocated.
    let big: Vec<_> = (0..60)
        .map(|_| {
            let socket = a.socket.clone();
            std::thread::spawn(move || {
                raw(
                    &socket,
                    b"POST /v1/sessions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 33554432\r\n\r\n{",
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    for t in big {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("larger than this endpoint takes (16384 bytes)"), "{body}");
    }
    // The same as chunks.
    let (status, _) = raw(
        &a.socket,
        b"POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2000000\r\n{",
        Duration::from_secs(10),
    );
    assert_eq!(status, 413);
    // A mistyped path or a wrong method is told so whatever the body's size: not to send less.
    for (req, code) in [
        (&b"POST /v1/session HTTP/1.1\r\nContent-Length: 33554432\r\n\r\n{"[..], 404),
        (&b"PUT /v1/sessions HTTP/1.1\r\nContent-Length: 33554432\r\n\r\n{"[..], 405),
    ] {
        let (status, body) = raw(&a.socket, req, Duration::from_secs(10));
        assert_eq!(status, code, "{body}");
    }
    // Two lengths that differ, or a coding whose end cannot be found, are refused at once, not
    // waited on.
    for req in [
        &b"POST /v1/sessions HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 200\r\n\r\n{}"[..],
        &b"POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}"[..],
        &b"POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n{}"[..],
        &b"POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\n{}\r\n0\r\n\r\n"[..],
        &b"POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n2\r\n{}\r\n0\r\n\r\n"[..],
    ] {
        let t = Instant::now();
        let (status, body) = raw(&a.socket, req, Duration::from_secs(10));
        assert!(status == 400 && body.contains("Transfer-Encoding"), "{status}: {body}");
        assert!(t.elapsed() < Duration::from_secs(3), "answered after {:?}", t.elapsed());
    }
    // A body within the cap that stops halfway: at the deadline, an answer saying so, and the
    // connection closed.
    let t = Instant::now();
    let (status, body) = raw(
        &a.socket,
        b"POST /v1/sessions HTTP/1.1\r\nContent-Length: 9000\r\n\r\n{\"job_type\": 1, \"user_id\":",
        Duration::from_secs(20),
    );
    assert!(status == 400 && body.contains("Content-Length"), "{body}");
    assert!(t.elapsed() < Duration::from_secs(6), "held {:?}, past the 2 s body deadline", t.elapsed());
    let grown = a.status_kb("VmRSS:").saturating_sub(before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} kB");
    assert_sound(&mut a);
    assert!(a.status_kb("VmHWM:") < 64 * 1024, "peak RSS {} kB", a.status_kb("VmHWM:"));
    // Nothing of it started a session or queued a job.
    assert_eq!(admin(&a, "GET", "/v1/jobs", None).1, json!([]));
}

/// A health checker's HEAD, then a GET on the same kept-open connection: the HEAD's answer has
/// no body (RFC 9110), so the GET's answer is read as one and not after stray bytes.
#[test]
fn a_head_is_answered_without_a_body_on_a_kept_connection() {
    use std::io::{Read, Write};
    let a = agent::start(BIN, NO_SMILE_ID, None, short_deadlines(), None);
    let mut s = std::os::unix::net::UnixStream::connect(&a.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"HEAD /v1/health HTTP/1.1\r\n\r\nGET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, rest) = all.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("Content-Length:"), "{head}");
    assert!(rest.starts_with("HTTP/1.1 200"), "the HEAD's answer has a body: {rest}");
    let (_, body) = rest.split_once("\r\n\r\n").expect("the GET's head");
    assert!(serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| v["status"].is_string()), "{body}");
}

#[test]
fn two_hundred_slow_connections_do_not_starve_health() {
    let mut a = agent::start(BIN, NO_SMILE_ID, None, short_deadlines(), None);
    let slow = slow_connections(&a.socket, 200, Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(500));
    let mut worst = Duration::ZERO;
    for _ in 0..40 {
        let (s, took) = a.health();
        assert_eq!(s, 200, "health refused under 200 slow connections");
        worst = worst.max(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(worst < Duration::from_secs(1), "health took up to {worst:?}");
    // Every slow connection is closed by the server (its head deadline), none kept forever.
    let t = Instant::now();
    for s in slow {
        s.join().unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(30), "slow connections held for {:?}", t.elapsed());
    assert_sound(&mut a);
}

#[test]
fn thread_exhaustion_refuses_a_session_never_the_api() {
    // As an ordinary user, whose RLIMIT_NPROC the kernel enforces (root's it does not).
    let mut a = agent::start(BIN, NO_SMILE_ID, None, short_deadlines(), Some(NOBODY));
    // Non-dumpable: its /proc entries belong to root although it runs as nobody.
    let environ = std::fs::metadata(format!("/proc/{}/environ", a.pid())).unwrap();
    assert_eq!(environ.uid(), 0, "the agent is dumpable (core dumps and ptrace would show its memory)");
    std::thread::sleep(Duration::from_millis(500));
    // No thread more for this user from now on (set as that user: the uids match).
    let limit = a.threads();
    let pid = a.pid();
    let nproc = |soft: &str| {
        let st = Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nproc={soft}:"))
            .uid(NOBODY)
            .gid(NOBODY)
            .status();
        assert!(st.unwrap().success());
    };
    nproc(&limit.to_string());
    let held: Vec<UnixStream> = (0..50).filter_map(|_| UnixStream::connect(&a.socket).ok()).collect();
    for _ in 0..5 {
        assert_eq!(a.health().0, 200, "health refused with no threads to spare");
    }
    let (s, v) = admin(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u-nproc"})));
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("out of threads"), "{v}");
    drop(held);
    assert_sound(&mut a);
    assert_eq!(a.threads(), limit, "a thread was made after all");
    // Threads back: sessions start again.
    nproc("4096");
    let (s, v) = admin(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u-nproc"})));
    assert_eq!(s, 202, "{v}");
}

/// One request as the user `uid` (curl over the socket): (status, body).
fn as_user(uid: u32, a: &RunningAgent, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "20", "--unix-socket"]).arg(&a.socket).args(["-X", method, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", &b.to_string()]);
    }
    let out = cmd.arg(format!("http://kiosk{path}")).uid(uid).gid(uid).output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(Value::String(body.into())))
}

#[test]
fn a_peer_without_the_role_is_refused_and_admin_actions_are_logged() {
    const OTHER_OPERATOR: u32 = 64_998;
    let a =
        agent::start(BIN, NO_SMILE_ID, None, "operators = [\"user:nobody\", \"user:64998\", \"group:64990\"]\n", None);
    // Let every local user reach the socket, so that only the roles decide.
    std::fs::set_permissions(a.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&a.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // A stranger: health, and nothing else.
    assert_eq!(as_user(STRANGER, &a, "GET", "/v1/health", None).0, 200);
    let (s, v) = as_user(STRANGER, &a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "x"})));
    assert_eq!(s, 403, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("operate") && e.contains(&STRANGER.to_string()) && e.contains("[api] operators"), "{e}");
    // A process given an operators' group by the kernel (a unit's SupplementaryGroups=, `sg`),
    // though the group database does not list its user there, operates.
    let with_group = Command::new("setpriv")
        .args([&format!("--reuid={STRANGER}"), &format!("--regid={STRANGER}"), "--groups=64990", "--"])
        .args(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket"])
        .arg(&a.socket)
        .arg("http://kiosk/v1/sessions")
        .output()
        .expect("setpriv runs");
    assert_eq!(String::from_utf8_lossy(&with_group.stdout), "200", "{with_group:?}");
    // An operator runs a session to its end and reads its own job, nothing administrative.
    let (s, v) = as_user(NOBODY, &a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "op-user"})));
    assert_eq!(s, 202, "{v}");
    let (sid, job_id) = (v["session_id"].as_str().unwrap().to_string(), v["job_id"].as_str().unwrap().to_string());
    let t = Instant::now();
    while as_user(NOBODY, &a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true}))).1["state"]
        == "awaiting_consent"
    {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(200));
    }
    let mine = loop {
        let (s, v) = as_user(NOBODY, &a, "GET", &format!("/v1/jobs/{job_id}"), None);
        if s == 200 {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(90), "the operator never saw its job: {s} {v}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(mine["owner"], NOBODY, "{mine}");
    assert_eq!(
        as_user(OTHER_OPERATOR, &a, "GET", &format!("/v1/jobs/{job_id}"), None).0,
        404,
        "another operator's job"
    );
    assert_eq!(as_user(OTHER_OPERATOR, &a, "GET", &format!("/v1/sessions/{sid}"), None).0, 404, "another's session");
    let (s, _) = as_user(OTHER_OPERATOR, &a, "POST", &format!("/v1/sessions/{sid}/cancel"), None);
    assert_eq!(s, 404, "another operator's session cancelled");
    assert_eq!(as_user(STRANGER, &a, "GET", &format!("/v1/jobs/{job_id}"), None).0, 403);
    for (m, p) in
        [("GET", "/v1/jobs".to_string()), ("DELETE", format!("/v1/jobs/{job_id}")), ("GET", "/metrics".into())]
    {
        let (s, v) = as_user(NOBODY, &a, m, &p, None);
        assert!(s == 403 && v["error"].as_str().unwrap().contains("[api] admins"), "{m} {p}: {s} {v}");
    }
    let (s, _) = as_user(NOBODY, &a, "POST", "/v1/enhanced_kyc", Some(json!({"user_id": "u"})));
    assert_eq!(s, 403);
    // root (this test) administers: its purge works and is logged with its uid.
    assert_eq!(admin(&a, "DELETE", &format!("/v1/jobs/{job_id}"), None).0, 200);
    let log = a.log_text();
    assert!(log.contains("administrative request") && log.contains("peer_uid=0"), "{log}");
    assert!(log.contains(&format!("DELETE /v1/jobs/{job_id}")), "{log}");
    assert!(!log.contains("peer_uid=65534"), "a refused request was logged as an administrative action:\n{log}");
}

#[test]
fn enhanced_kyc_lookups_are_rate_limited() {
    let sb = start_sandbox(&[]);
    let a = agent::start(BIN, &sb.base_url, Some(&sb.ca_pem), "enhanced_kyc_per_hour = 3\n", None);
    let body = json!({"user_id": "u-ekyc", "id_info": {"country": "NG", "id_type": "NIN_V2", "id_number": "00000000000", "first_name": "Ada", "last_name": "Obi", "dob": "1990-01-01"}});
    let answers: Vec<u16> = (0..6).map(|_| admin(&a, "POST", "/v1/enhanced_kyc", Some(body.clone())).0).collect();
    assert_eq!(answers, [200, 200, 200, 429, 429, 429], "three lookups, then the limit");
    let (_, v) = admin(&a, "POST", "/v1/enhanced_kyc", Some(body.clone()));
    assert!(v["error"].as_str().unwrap().contains("enhanced_kyc_per_hour"), "{v}");
    assert!(v["code"] == "rate_limited" && v["retry_after_secs"].as_u64() > Some(0), "{v}");
    let billed = sandbox_jobs(&sb).len();
    assert!(billed <= 3, "{billed} lookups reached Smile ID");
    // Lookups that never reach Smile ID (no link) spend none of the hour's: each says why.
    let off = agent::start(BIN, NO_SMILE_ID, None, "enhanced_kyc_per_hour = 3\n", None);
    let answers: Vec<u16> = (0..6).map(|_| admin(&off, "POST", "/v1/enhanced_kyc", Some(body.clone())).0).collect();
    assert_eq!(answers, [502; 6], "unreachable, not limited");
}

#[test]
fn a_20_mb_field_and_bidi_ids_are_refused_and_nothing_is_queued() {
    let mut a = agent::start(BIN, NO_SMILE_ID, None, "", None);
    let name = "A".repeat(20 * 1024 * 1024);
    let body = json!({"job_type": 1, "user_id": "u", "id_info": {"first_name": name, "country": "NG", "id_type": "NIN_V2", "id_number": "1"}});
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut s = UnixStream::connect(&a.socket).unwrap();
    write!(s, "POST /v1/sessions HTTP/1.1\r\nContent-Length: {}\r\n\r\n", bytes.len()).unwrap();
    // The answer comes before the body is sent: nothing of it is read.
    let (status, body) = raw_answer(&mut s);
    assert_eq!(status, 413, "{body}");
    let (st, v) = admin(
        &a,
        "POST",
        "/v1/sessions",
        Some(json!({"job_type": 1, "user_id": "u", "id_info": {"first_name": "A".repeat(101)}})),
    );
    assert!(st == 422 && v["error"].as_str().unwrap().contains("id_info.first_name"), "{v}");
    for (field, value) in [("user_id", "evil\u{202E}gpj.exe"), ("job_id", "job\u{2067}1")] {
        let mut req = json!({"job_type": 4, "user_id": "u"});
        req[field] = json!(value);
        let (st, v) = admin(&a, "POST", "/v1/sessions", Some(req));
        assert!(st == 422 && v["error"].as_str().unwrap().contains(field), "{field}: {v}");
    }
    assert_eq!(admin(&a, "GET", "/v1/jobs", None).1, json!([]));
    let (_, h) = admin(&a, "GET", "/v1/health", None);
    assert_eq!((h["queue"]["pending"].as_u64(), h["queue"]["holding_images"].as_u64()), (Some(0), Some(0)), "{h}");
    assert_sound(&mut a);
}

/// Requests broken in ways a host application's own HTTP code gets wrong are answered with what
/// is wrong, not dropped: a body shorter than its Content-Length, a space in the path.
#[test]
fn a_short_body_and_a_space_in_the_path_are_answered_with_what_is_wrong() {
    let mut a = agent::start(BIN, NO_SMILE_ID, None, "", None);
    let mut s = UnixStream::connect(&a.socket).unwrap();
    s.write_all(b"POST /v1/sessions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"job_type\": 4").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let whole = |s: &mut UnixStream| {
        let mut text = String::new();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = std::io::Read::read_to_string(s, &mut text);
        text
    };
    let body = whole(&mut s);
    assert!(body.starts_with("HTTP/1.1 400") && body.contains("Content-Length gives"), "{body}");
    let mut s = UnixStream::connect(&a.socket).unwrap();
    s.write_all(b"GET /v1/jobs/a b HTTP/1.1\r\n\r\n").unwrap();
    let body = whole(&mut s);
    assert!(body.starts_with("HTTP/1.1 400") && body.contains("%20"), "{body}");
    // A job_type sent as text is named as sent, not as missing.
    let (st, v) = admin(&a, "POST", "/v1/sessions", Some(json!({"job_type": "1", "user_id": "u"})));
    assert!(st == 422 && v["error"].as_str().unwrap().contains("whole number"), "{v}");
    assert_sound(&mut a);
}

/// A host application's pool of keep-alive connections, polling without pause, holds every
/// worker; its own next request on a fresh connection still gets in (one of its idle ones
/// gives way), and so does another's.
#[test]
fn a_pool_of_busy_keep_alive_connections_leaves_room_for_a_fresh_request() {
    let mut a = agent::start(BIN, NO_SMILE_ID, None, short_deadlines(), None);
    std::fs::set_permissions(a.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&a.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pool: Vec<_> = (0..8)
        .map(|_| {
            let (socket, stop) = (a.socket.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut polls = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // A connection closed to make room is opened again, as a pool does.
                    let Ok(mut s) = UnixStream::connect(&socket) else { continue };
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && s.write_all(b"GET /v1/health HTTP/1.1\r\n\r\n").is_ok()
                        && raw_answer(&mut s).0 == 200
                    {
                        polls += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                polls
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // An idle connection's life is said (the head deadline of 2 s, a second early).
    let mut s = UnixStream::connect(&a.socket).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\n\r\n").unwrap();
    let (_, head) = raw_answer(&mut s);
    assert!(head.contains("\r\nKeep-Alive: timeout=1\r\n"), "{head}");
    drop(s);
    for _ in 0..20 {
        assert_eq!(a.health().0, 200, "a fresh request refused beside the pool's connections");
        assert_eq!(as_user(NOBODY, &a, "GET", "/v1/health", None).0, 200, "another user refused");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let polls: usize = pool.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(polls > 100, "the pool itself was shut out: {polls} polls");
    assert_sound(&mut a);
}

/// One whole answer (head, and as much body as its Content-Length gives), so that a
/// kept-alive connection's next answer starts clean.
fn raw_answer(s: &mut UnixStream) -> (u16, String) {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let whole = |got: &[u8]| {
        let end = got.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        let len = head.split("content-length:").nth(1)?.split("\r\n").next()?.trim().parse::<usize>().ok()?;
        (got.len() >= end + len).then_some(())
    };
    while whole(&got).is_none() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    (text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), text)
}

/// Every file under `dir` holding `needle`.
fn files_with(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

#[test]
fn no_key_name_or_id_number_on_disk_in_the_log_or_in_a_core() {
    const NAME: &str = "Zainab-Marker-Okonkwo";
    const ID_NUMBER: &str = "73920461185";
    let sb = start_sandbox(&[]);
    let mut a = agent::start(BIN, &sb.base_url, Some(&sb.ca_pem), "consent_timeout_secs = 30\n", None);
    let person = json!({"first_name": NAME, "last_name": "Obi", "country": "NG", "id_type": "NIN_V2", "id_number": ID_NUMBER, "dob": "1990-01-01", "entered": true});
    let (s, v) =
        admin(&a, "POST", "/v1/sessions", Some(json!({"job_type": 1, "user_id": "pii-user", "id_info": person})));
    assert_eq!(s, 202, "{v}");
    let (sid, job_id) = (v["session_id"].as_str().unwrap().to_string(), v["job_id"].as_str().unwrap().to_string());
    let wait = |path: &str, done: &dyn Fn(&Value) -> bool| {
        let t = Instant::now();
        loop {
            let (s, v) = admin(&a, "GET", path, None);
            if s == 200 && done(&v) {
                return v;
            }
            assert!(t.elapsed() < Duration::from_secs(90), "waiting on {path}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(&format!("/v1/sessions/{sid}"), &|v| v["state"] == "awaiting_consent");
    admin(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    let rec = wait(&format!("/v1/jobs/{job_id}"), &|v| v["stage"] == "erased");
    assert_eq!(rec["result"]["ResultCode"], "1020", "{rec}");
    assert!(rec["result"].get("FullName").is_none() && rec["result"].get("IDNumber").is_none(), "{rec}");
    // The sandbox did get them: the markers were real.
    assert!(!files_with(&sb.dir.path().join("state"), ID_NUMBER.as_bytes()).is_empty());
    for secret in [API_KEY, NAME, ID_NUMBER] {
        let on_disk = files_with(&a.state, secret.as_bytes());
        assert!(on_disk.is_empty(), "{secret} is in {on_disk:?}");
        assert!(!a.log_text().contains(secret), "{secret} is in the agent's log");
    }
    // A crash with core dumps allowed leaves no core: the agent made itself non-dumpable.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let st = Command::new("prlimit").arg(format!("--pid={}", a.pid())).arg("--core=unlimited").status();
    assert!(st.unwrap().success());
    unsafe { libc::kill(a.pid() as i32, libc::SIGABRT) };
    let _ = a.child.wait();
    if pattern.starts_with('|') {
        eprintln!(
            "core_pattern pipes cores to {pattern:?}: only the absence of one in the agent's directory is checked"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let cores: Vec<_> = std::fs::read_dir(a.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .collect();
    assert!(cores.is_empty(), "a core dump was written: {cores:?}");
}

#[test]
fn keys_leave_the_state_dir_once_they_come_as_credentials() {
    // An older install: the keys were made in the state dir, and a job is queued under them.
    let a = agent::start(BIN, NO_SMILE_ID, None, "", None);
    let (s, v) = admin(&a, "POST", "/v1/sessions", Some(json!({"job_type": 4, "user_id": "u-keys"})));
    assert_eq!(s, 202, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    let t = Instant::now();
    admin(&a, "POST", &format!("/v1/sessions/{sid}/consent"), Some(json!({"granted": true})));
    loop {
        let (_, v) = admin(&a, "GET", &format!("/v1/sessions/{sid}"), None);
        if v["state"] == "queued" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(90), "{v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let keys = a.state.join("keys");
    let device = std::fs::read(keys.join("device.key")).unwrap();
    let bundle = std::fs::read(keys.join("bundle.key")).unwrap();
    let dir = a.stop();
    // The package made credentials of them (systemd-creds decrypts them into this directory).
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("kiosk-keys_device_key"), &device).unwrap();
    std::fs::write(creds.path().join("kiosk-keys_bundle_key"), &bundle).unwrap();
    let state = dir.path().join("state");
    let b = agent::start_in(dir, BIN, NO_SMILE_ID, None, "", None, &[("CREDENTIALS_DIRECTORY", creds.path())]);
    let jobs = admin(&b, "GET", "/v1/jobs", None).1;
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "the queued job reads under the credentials: {jobs}");
    assert!(!keys.join("device.key").exists() && !keys.join("bundle.key").exists(), "{}", b.log_text());
    assert!(b.log_text().contains("erased from the state directory"), "{}", b.log_text());
    for key in [&device, &bundle] {
        assert!(files_with(&state, key).is_empty(), "a key is still in the state dir");
    }
    // Without the credentials the agent stops and names what is missing; it makes no key.
    let dir = b.stop();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(dir.path().join("kiosk.toml"))
        .env("CREDENTIALS_DIRECTORY", dir.path().join("no-credentials"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("device key is missing"), "{text}");
    assert!(!keys.join("device.key").exists(), "a new key was made over the queued job");
    // An operator's command run by hand is given no credentials: its look says the keys are the
    // service's, and doctor does not send anyone to reinstall or restore keys that are fine.
    // (The package's config names the keys as credentials.)
    let cfg = std::fs::read_to_string(dir.path().join("kiosk.toml")).unwrap();
    let packaged = dir.path().join("packaged.toml");
    let names = "[queue]\ndevice_key_file = \"device_key\"\nencryption_key_file = \"bundle_key\"\n";
    std::fs::write(&packaged, cfg.replace("[queue]\n", names)).unwrap();
    let by_hand = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&packaged)
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let status = by_hand(&["status"]);
    assert!(status.contains("given only to the service") && !status.contains("reinstall"), "{status}");
    // Doctor tells what it can: whether the package's encrypted credentials are there (not on
    // this test machine), not that the state dir lacks a key file it never had.
    let report: serde_json::Value = serde_json::from_str(&by_hand(&["doctor", "--json"])).unwrap();
    let storage = report.as_array().unwrap().iter().find(|c| c["name"] == "storage").unwrap();
    let detail = storage["detail"].as_str().unwrap();
    let told = storage["verdict"] != "FAIL"
        || (detail.contains("/etc/kiosk-agent/keys/device_key") && detail.contains("are not there (or empty)"));
    assert!(told && !detail.contains("cannot be used"), "{storage}");
}
