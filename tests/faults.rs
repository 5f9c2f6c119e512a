//! Every fault a field network or server throws at an upload: the job is delivered exactly once,
//! or stops with the right reason. The sandbox runs in-process so the test can queue faults
//! (`Sandbox::inject`) and move its clock; TLS faults come from servers with bad certificates.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use kiosk_agent::httpd::{Request, Response};
use kiosk_agent::queue::{Queue, QueueSettings, Stage};
use kiosk_agent::sandbox::api::{Endpoint, Fault};
use kiosk_agent::sandbox::{start, RunningSandbox, SandboxOptions};
use kiosk_agent::smileid::job::JobType;
use kiosk_agent::smileid::signature::LocalKeySigner;
use kiosk_agent::smileid::submit::{HttpRequest, Method, Outcome, ResponseCheck, Submission, SubmitConfig};
use kiosk_agent::uplink::drive::{drive, DriveError, RetryPolicy};
use kiosk_agent::uplink::http::{HttpClient, Timeouts};
use kiosk_agent::uplink::service::{LinkState, Uplink, UplinkSettings};

fn sandbox(dir: &std::path::Path) -> RunningSandbox {
    start(options(dir)).unwrap()
}

fn options(dir: &std::path::Path) -> SandboxOptions {
    SandboxOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        partner_id: PARTNER_ID.into(),
        api_key: key(),
        state_dir: dir.join("sandbox"),
        timestamp_window_secs: 300,
        upload_url_ttl_secs: 600,
        latency_ms: 0,
        clock_offset_secs: 0,
        auth_token: None,
    }
}

/// A client that notices a stalled server after 2 s without progress.
fn client(sb: &RunningSandbox) -> HttpClient {
    HttpClient::new(Some(&sb.ca_pem_path), &Timeouts { idle_secs: 2, ..Timeouts::default() }).unwrap()
}

/// A queue in `dir` that neither keeps disk in reserve nor encrypts.
fn queue(dir: &std::path::Path) -> Queue {
    let settings =
        QueueSettings { min_free_bytes: 0, reserve_bytes: 0, encryption_key_file: None, ..Default::default() };
    Queue::open(&dir.join("queue"), settings).unwrap()
}

fn signer() -> LocalKeySigner {
    LocalKeySigner { partner_id: PARTNER_ID.into(), key: key() }
}

fn policy() -> RetryPolicy {
    RetryPolicy { first_backoff: Duration::from_millis(20), ..RetryPolicy::default() }
}

fn submit(sb: &RunningSandbox, http: &HttpClient, job_id: &str) -> Result<Outcome, DriveError> {
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let mut sub = Submission::new(job(JobType::BiometricKyc, job_id), cfg).unwrap();
    drive(&mut sub, http, &signer(), &policy(), |_, _| Ok(()))
}

fn counts(sb: &RunningSandbox, job_id: &str) -> (u32, u32) {
    let r = sb.api.records().into_iter().find(|r| r.job_id == job_id).expect("the sandbox saw the job");
    (r.preps, r.uploads)
}

#[test]
fn each_server_and_network_fault_is_survived_and_the_job_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    use Endpoint::*;
    use Fault::*;
    // (name, faults, prep_upload calls the sandbox should have accepted)
    type Case = (&'static str, Vec<(Endpoint, Fault)>, u32);
    let cases: Vec<Case> = vec![
        ("500 on prep_upload", vec![(PrepUpload, Status(500))], 1),
        ("502 on the PUT", vec![(Upload, Status(502))], 1),
        ("503 on job_status, twice", vec![(JobStatus, Status(503)), (JobStatus, Status(503))], 1),
        ("reset in the middle of the PUT", vec![(Upload, ResetMidUpload)], 1),
        // The prep was recorded but its answer never came: the next prep gets 2215, then retries.
        ("prep_upload answer stalled", vec![(PrepUpload, Stall { ms: 4000 })], 2),
        // The zip landed but the answer stalled: the agent must ask before sending it again.
        ("PUT answer stalled", vec![(Upload, Stall { ms: 4000 })], 1),
        ("job_status answer stalled", vec![(JobStatus, Stall { ms: 4000 })], 1),
        ("prep_upload answer truncated", vec![(PrepUpload, Truncate)], 2),
        ("PUT answer truncated", vec![(Upload, Truncate)], 1),
        ("job_status answer truncated", vec![(JobStatus, Truncate)], 1),
        ("upload URL already expired", vec![(PrepUpload, ExpiredUrl)], 2),
    ];
    for (i, (name, faults, preps)) in cases.into_iter().enumerate() {
        let id = format!("fault-{i}");
        for (at, f) in faults {
            sb.api.inject(at, f);
        }
        let out = submit(&sb, &http, &id).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Outcome::Completed(status) = out else { panic!("{name}: {out:?}") };
        assert!(status.job_success, "{name}: {status:?}");
        assert_eq!(sb.api.pending_faults(), 0, "{name}: a fault was never hit, so the case proved nothing");
        assert_eq!(counts(&sb, &id), (preps, 1), "{name}: (prep_upload calls, zips received)");
    }
}

#[test]
fn a_plaintext_upload_url_gets_nothing_and_the_job_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    // Where the hostile answer points: a plain TCP port that counts what reaches it.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = plain.local_addr().unwrap().port();
    plain.set_nonblocking(true).unwrap();
    let queue = Queue::open(&dir.path().join("q"), QueueSettings::default()).unwrap();
    queue.enqueue(&job(JobType::BiometricKyc, "plain-1")).unwrap();
    let signer = signer();
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let settings = UplinkSettings { base_backoff_secs: 1, ..UplinkSettings::default() };
    let mut up = Uplink::new(&queue, &http, &signer, cfg, settings);
    // A server that keeps answering so: more often than one pass tries.
    for _ in 0..12 {
        sb.api.inject(Endpoint::PrepUpload, Fault::PlainUrl { port });
    }
    let delivered = up.pass(|_, _| {}).unwrap();
    assert!(sb.api.pending_faults() < 12, "the hostile answer was never given");
    assert!(delivered.iter().all(|d| d.outcome.is_err()), "{delivered:?}");
    assert!(plain.accept().is_err(), "something connected to the plaintext URL");
    let rec = queue.get("plain-1").unwrap();
    assert!(rec.stage.is_pending(), "the job must stay queued: {:?}", rec.stage);
    assert!(rec.last_error.as_deref().unwrap_or("").contains("https"), "{:?}", rec.last_error);
    assert_eq!(counts(&sb, "plain-1").1, 0);
    // Once the server answers properly again, the job goes through, once.
    let mut done = false;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        let delivered = up.pass(|_, _| {}).unwrap();
        if delivered.iter().any(|d| matches!(d.outcome, Ok(Outcome::Completed(_)))) {
            done = true;
            break;
        }
    }
    assert!(done && sb.api.pending_faults() == 0, "never delivered after the hostile answers stopped");
    assert!(plain.accept().is_err(), "something connected to the plaintext URL");
    assert_eq!(counts(&sb, "plain-1").1, 1);
}

#[test]
fn a_job_id_prepared_by_someone_else_fails_with_2215_and_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    // Another client prepared this job_id first (its zip never came).
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let mut other = Submission::new(job(JobType::BiometricKyc, "taken"), cfg).unwrap();
    sb.api.inject(Endpoint::Upload, Fault::Status(500));
    let quick = RetryPolicy { max_failures: 1, ..policy() };
    assert!(drive(&mut other, &http, &signer(), &quick, |_, _| Ok(())).is_err());

    let out = submit(&sb, &http, "taken").unwrap();
    let Outcome::Failed(err) = out else { panic!("{out:?}") };
    assert_eq!(err.code.as_deref(), Some("2215"), "{err}");
    assert_eq!(counts(&sb, "taken"), (1, 0), "the agent must not prepare again with retry: true");
}

/// A job Smile ID refuses, retried by an operator and refused again, is one refused job for
/// the fleet (KioskJobsRefused counts them), not one per retry.
#[test]
fn a_job_refused_again_after_a_retry_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let mut other = Submission::new(job(JobType::BiometricKyc, "taken-2"), cfg.clone()).unwrap();
    sb.api.inject(Endpoint::Upload, Fault::Status(500));
    let quick = RetryPolicy { max_failures: 1, ..policy() };
    assert!(drive(&mut other, &http, &signer(), &quick, |_, _| Ok(())).is_err());
    let queue = queue(dir.path());
    queue.enqueue(&job(JobType::BiometricKyc, "taken-2")).unwrap();
    let signer = signer();
    let mut up = Uplink::new(&queue, &http, &signer, cfg, UplinkSettings::default());
    for round in 1..=3 {
        up.pass(|_, _| {}).unwrap();
        let r = queue.get("taken-2").unwrap();
        assert_eq!((r.stage, r.refusals), (Stage::Failed, round), "{r:?}");
        assert_eq!(up.metrics.jobs_refused.load(Ordering::Relaxed), 1, "round {round}");
        queue.retry("taken-2").unwrap();
    }
}

/// The same, when our own first prep's answer was lost (so the next 2215 might be ours): the
/// agent asks job_status for this job's user before flagging a retry, finds no such job, and
/// fails the job saying why, with none of this person's photos sent into the other job.
#[test]
fn a_job_id_another_user_has_is_not_taken_over_after_a_lost_prep_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let mut theirs = job(JobType::BiometricKyc, "taken-2");
    theirs.partner_params.user_id = "someone-else".into();
    let mut other = Submission::new(theirs, cfg).unwrap();
    assert!(matches!(drive(&mut other, &http, &signer(), &policy(), |_, _| Ok(())), Ok(Outcome::Completed(_))));
    // Our first prep's answer (a 2215) never comes.
    sb.api.inject(Endpoint::PrepUpload, Fault::Stall { ms: 4000 });
    let out = submit(&sb, &http, "taken-2").unwrap();
    let Outcome::Failed(err) = out else { panic!("{out:?}") };
    assert!(err.to_string().contains("another job's") && err.to_string().contains("capture it again"), "{err}");
    assert_eq!(sb.api.pending_faults(), 0, "the lost answer was never staged, so the case proved nothing");
    assert_eq!(counts(&sb, "taken-2"), (1, 1), "only the other user's prep and zip");
}

#[test]
fn a_clock_jump_stops_uploads_with_clock_wrong_then_they_resume() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    let queue = queue(dir.path());
    queue.enqueue(&job(JobType::BiometricKyc, "clock-1")).unwrap();
    let signer = signer();
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let settings = UplinkSettings { base_backoff_secs: 0, ..UplinkSettings::default() };
    let mut up = Uplink::new(&queue, &http, &signer, cfg, settings);

    // The server's clock (as a kiosk sees it, its own clock) jumps by two hours.
    sb.api.set_clock_offset(7200);
    let delivered = up.pass(|_, _| {}).unwrap();
    assert!(delivered.is_empty(), "nothing may be signed with a wrong clock: {delivered:?}");
    assert!(
        matches!(up.link, LinkState::ClockWrong { skew_secs, .. } if (-7300..-7100).contains(&skew_secs)),
        "{:?}",
        up.link
    );
    assert!(sb.api.records().is_empty(), "a request was sent while the clock was wrong");

    // The jump happens between the link probe and the job: the server refuses with 2205.
    sb.api.set_clock_offset(0);
    sb.api.inject(Endpoint::PrepUpload, Fault::Status(500));
    let jump = std::thread::spawn({
        let api = sb.api.clone();
        move || {
            while api.pending_faults() > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            api.set_clock_offset(7200);
        }
    });
    let delivered = up.pass(|_, _| {}).unwrap();
    jump.join().unwrap();
    assert_eq!(delivered.len(), 1);
    assert!(matches!(up.link, LinkState::ClockWrong { .. }), "{:?}", up.link);
    let rec = queue.get("clock-1").unwrap();
    assert!(rec.stage.is_pending(), "the job must stay queued: {:?}", rec.stage);
    assert!(rec.last_error.as_deref().unwrap_or("").contains("clock"), "{:?}", rec.last_error);

    // Clock right again: the job goes through, once.
    sb.api.set_clock_offset(0);
    let delivered = up.pass(|_, _| {}).unwrap();
    assert!(matches!(delivered[0].outcome, Ok(Outcome::Completed(_))), "{delivered:?}");
    let rec = queue.get("clock-1").unwrap();
    assert!(matches!(rec.stage, Stage::Result | Stage::Erased) && rec.job_success == Some(true), "{rec:?}");
    assert_eq!(counts(&sb, "clock-1").1, 1);
}

/// An idle kiosk (nothing queued) whose link went down looks again as `run`'s backoff comes
/// round, not only every few minutes: its return shows at the next pass. With a key Smile ID
/// refuses, the first pass that finds the link pauses the kiosk, before any job.
#[test]
fn an_idle_kiosk_sees_its_link_return_and_a_refused_key_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    let queue = queue(dir.path());
    let signer = signer();
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let mut up = Uplink::new(&queue, &http, &signer, cfg.clone(), UplinkSettings::default());
    // The server drops the probe's connection: down.
    sb.api.inject(Endpoint::Probe, Fault::Stall { ms: 0 });
    up.pass(|_, _| {}).unwrap();
    assert!(matches!(up.link, LinkState::Down { .. }), "{:?}", up.link);
    up.pass(|_, _| {}).unwrap();
    assert_eq!(up.link, LinkState::Up);

    let wrong =
        LocalKeySigner { partner_id: PARTNER_ID.into(), key: kiosk_agent::smileid::signature::ApiKey::new("wrong") };
    let mut up = Uplink::new(&queue, &http, &wrong, cfg, UplinkSettings::default());
    up.pass(|_, _| {}).unwrap();
    assert!(matches!(&up.link, LinkState::Paused { error, .. } if error.contains("2205")), "{:?}", up.link);
    assert!(sb.api.records().is_empty());
}

/// A Wi-Fi login page (or a proxy) answering 200 with HTML in Smile ID's place: the link is down,
/// saying so, not up; a job's own prep that meets it (a page come after the check) finds the
/// link down too, the job kept, not failed; once the page is gone the job goes up, once.
#[test]
fn a_wifi_login_page_answering_200_is_not_taken_for_smile_ids_api() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    let queue = queue(dir.path());
    queue.enqueue(&job(JobType::BiometricKyc, "portal-1")).unwrap();
    let signer = signer();
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let settings = UplinkSettings { base_backoff_secs: 0, ..UplinkSettings::default() };
    let mut up = Uplink::new(&queue, &http, &signer, cfg, settings);
    sb.api.inject(Endpoint::ValidDocuments, Fault::Status(200));
    up.pass(|_, _| {}).unwrap();
    assert!(matches!(&up.link, LinkState::Down { error } if error.contains("Wi-Fi login")), "{:?}", up.link);
    assert!(sb.api.records().is_empty(), "a job was sent past the page");
    // The credentials check passes, but the job's prep meets the page, as often as a pass tries.
    for _ in 0..3 {
        sb.api.inject(Endpoint::PrepUpload, Fault::Status(200));
    }
    up.pass(|_, _| {}).unwrap();
    assert!(matches!(&up.link, LinkState::Down { error } if error.contains("Wi-Fi login")), "{:?}", up.link);
    assert_eq!(sb.api.pending_faults(), 0);
    let rec = queue.get("portal-1").unwrap();
    assert!(rec.stage.is_pending(), "kept, not failed: {:?}", rec.stage);
    let deliver = |up: &mut Uplink, id: &str| {
        let t = std::time::Instant::now();
        while queue.get(id).unwrap().stage.is_pending() {
            assert!(t.elapsed() < Duration::from_secs(20), "never delivered: {:?}", queue.get(id).unwrap());
            std::thread::sleep(Duration::from_millis(200));
            up.pass(|_, _| {}).unwrap();
        }
        assert_eq!(counts(&sb, id), (1, 1), "{id}: (preps, zips received)");
    };
    deliver(&mut up, "portal-1");
    // A page answering the zip's PUT took the zip, not storage: not counted as landed, asked
    // about, and sent again to storage.
    queue.enqueue(&job(JobType::BiometricKyc, "portal-2")).unwrap();
    sb.api.inject(Endpoint::Upload, Fault::Status(200));
    let landed = up.metrics.jobs_delivered.load(Ordering::Relaxed);
    up.pass(|_, _| {}).unwrap();
    assert_eq!(sb.api.pending_faults(), 0);
    deliver(&mut up, "portal-2");
    assert_eq!(up.metrics.jobs_delivered.load(Ordering::Relaxed), landed + 1);
}

/// A job whose zip landed but whose result did not come in that attempt (the link went as it
/// was asked for) is counted delivered once: when it landed, not never.
#[test]
fn a_job_whose_result_comes_on_a_later_attempt_is_counted_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    let queue = queue(dir.path());
    queue.enqueue(&job(JobType::BiometricKyc, "late-1")).unwrap();
    let signer = signer();
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let settings = UplinkSettings { base_backoff_secs: 0, ..UplinkSettings::default() };
    let mut up = Uplink::new(&queue, &http, &signer, cfg, settings);
    let delivered = |up: &Uplink| up.metrics.jobs_delivered.load(Ordering::Relaxed);
    for _ in 0..3 {
        sb.api.inject(Endpoint::JobStatus, Fault::Status(503));
    }
    up.pass(|_, _| {}).unwrap();
    assert_eq!(queue.get("late-1").unwrap().stage, Stage::Uploaded);
    assert_eq!(delivered(&up), 1, "the zip landed");
    let t = std::time::Instant::now();
    while queue.get("late-1").unwrap().stage.is_pending() {
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", queue.get("late-1").unwrap());
        std::thread::sleep(Duration::from_millis(200));
        up.pass(|_, _| {}).unwrap();
    }
    assert_eq!(delivered(&up), 1, "counted once, not again with its result");
    assert_eq!(counts(&sb, "late-1"), (1, 1));
}

/// While a pass takes its jobs up (slowly here: every answer 300 ms late), the fleet's figures
/// count them as waiting, not as before they were captured.
#[test]
fn jobs_going_up_show_as_waiting_during_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let sb = start(SandboxOptions { latency_ms: 300, ..options(dir.path()) }).unwrap();
    let http = client(&sb);
    let queue = queue(dir.path());
    let signer = signer();
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key()));
    let mut up = Uplink::new(&queue, &http, &signer, cfg, UplinkSettings::default());
    let metrics = up.metrics.clone();
    assert_eq!(up.pass(|_, _| {}).unwrap().len(), 0, "nothing yet");
    queue.enqueue(&job(JobType::BiometricKyc, "slow-1")).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                seen.lock().unwrap().push(metrics.snapshot().pending);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        assert_eq!(up.pass(|_, _| {}).unwrap().len(), 1);
        done.store(true, Ordering::Relaxed);
    });
    let seen = seen.into_inner().unwrap();
    assert!(seen.contains(&1), "the job never showed as waiting: {seen:?}");
    assert_eq!(metrics.snapshot().pending, 0);
}

#[test]
fn connections_are_reused_and_tls_sessions_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path());
    let http = client(&sb);
    for i in 0..3 {
        assert!(matches!(submit(&sb, &http, &format!("reuse-{i}")).unwrap(), Outcome::Completed(_)));
    }
    let s = sb.api.stats();
    assert_eq!(s.connections, 1, "three jobs ({} requests) should share one connection: {s:?}", s.requests);
    assert!(s.requests >= 9, "{s:?}");
    // The server drops the connection; the next one resumes the TLS session (one round trip less).
    sb.api.inject(Endpoint::Probe, Fault::Stall { ms: 0 });
    let probe = HttpRequest {
        method: Method::Get,
        url: sb.base_url.replace("/v1", "/"),
        content_type: "application/json",
        body: Vec::new(),
    };
    let _ = http.execute(&probe);
    http.execute(&probe).unwrap();
    let s = sb.api.stats();
    assert_eq!((s.connections, s.resumed), (2, 1), "{s:?}");
}

/// A TLS server with the given certificate chain that counts the requests it gets.
fn bad_tls_server(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> (SocketAddr, Arc<AtomicU64>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let handler = {
        let hits = hits.clone();
        Arc::new(move |_: &Request| {
            hits.fetch_add(1, Ordering::Relaxed);
            Response::empty(200)
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || kiosk_agent::httpd::serve(listener, Arc::new(config), stop, handler));
    (addr, hits)
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    (p, KeyPair::generate().unwrap())
}

#[test]
fn tls_faults_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    // The CA the kiosk trusts (its extra_ca_file), and one it does not.
    let (trusted_params, trusted_key) = ca("trusted test CA");
    let trusted_cert = trusted_params.clone().self_signed(&trusted_key).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, trusted_cert.pem()).unwrap();
    let trusted = Issuer::new(trusted_params, &trusted_key);
    let (stranger_params, stranger_key) = ca("unknown CA");
    let stranger = Issuer::new(stranger_params, &stranger_key);

    let leaf = |names: &[&str], issuer: &Issuer<'_, &KeyPair>, expired: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        (p.signed_by(&key, issuer).unwrap().der().clone(), key)
    };
    let http = HttpClient::new(Some(&ca_file), &Timeouts::default()).unwrap();
    let cases = [
        ("unknown CA", leaf(&["127.0.0.1"], &stranger, false), "UnknownIssuer"),
        ("expired certificate", leaf(&["127.0.0.1"], &trusted, true), "certificate expired"),
        ("wrong host name", leaf(&["api.example.org"], &trusted, false), "not valid for name"),
    ];
    for (name, (cert, key), want) in cases {
        let (addr, hits) = bad_tls_server(vec![cert], &key);
        let req = HttpRequest {
            method: Method::Post,
            url: format!("https://{addr}/v1/upload"),
            content_type: "application/json",
            body: b"{\"signature\": \"must never leave\"}".to_vec(),
        };
        let err = http.execute(&req).expect_err(name).to_string();
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains(&addr.to_string()), "{name}: the error should name the host: {err}");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(hits.load(Ordering::Relaxed), 0, "{name}: a request reached the server");
    }
    // The same client reaches a server whose certificate is right.
    let (cert, key) = leaf(&["127.0.0.1"], &trusted, false);
    let (addr, hits) = bad_tls_server(vec![cert], &key);
    let req = HttpRequest { method: Method::Get, url: format!("https://{addr}/"), content_type: "", body: vec![] };
    assert_eq!(http.execute(&req).unwrap().status, 200);
    assert_eq!(hits.load(Ordering::Relaxed), 1);
}
