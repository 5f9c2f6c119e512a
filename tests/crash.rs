//! Kill the agent with SIGKILL at random moments while jobs are being enqueued and uploaded,
//! restart it, and check by the sandbox's own count that every acknowledged job arrived exactly
//! once. `KILL_LOOP_RUNS` sets the number of kill cycles (CI: 100); `KILL_LOOP_SEED` the seed.
//!
//! Run: `KILL_LOOP_RUNS=200 cargo test --release --test crash -- --nocapture`

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn agent(args: &[&str], config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Lets `child` run for `ms`, then SIGKILLs it if still running. Returns (exit success, stdout).
fn kill_after(mut child: Child, ms: u64) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn sigkill_never_loses_or_duplicates_a_job() {
    let runs: u64 = std::env::var("KILL_LOOP_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let seed: u64 = std::env::var("KILL_LOOP_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED_1234_ABCD_9876);
    let mut rng = Rng(seed | 1);
    // A little server latency spreads each upload over time, so kills land between its steps.
    let sb = start_sandbox(&["--latency-ms", "25"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[smileid]\npartner_id = \"{PARTNER_ID}\"\nenvironment = {:?}\napi_key_file = {:?}\nextra_ca_file = {:?}\n\
             [camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\nwidth = 240\nheight = 320\n\
             [queue]\nmin_free_bytes = 0\nreserve_bytes = 0\n[uplink]\nbase_backoff_secs = 1\nmax_backoff_secs = 2\nidle_poll_secs = 1\n",
            dir.path().join("state"),
            sb.base_url,
            sb.key_file,
            sb.ca_pem,
            dir.path().join("screens")
        ),
    )
    .unwrap();

    // Measure how long an uninterrupted capture and upload take, to kill inside them.
    let t = Instant::now();
    let (ok, out) = kill_after(
        agent(
            &["capture", "--user-id", "u", "--job-type", "4", "--consent-given", "--job-id", "crash-warmup"],
            &config,
        ),
        60_000,
    );
    assert!(ok, "warm-up capture failed");
    let capture_ms = t.elapsed().as_millis() as u64;
    let mut acknowledged = BTreeSet::from([out.trim().to_string()]);
    let t = Instant::now();
    let (ok, _) = kill_after(agent(&["run", "--exit-when-idle"], &config), 60_000);
    assert!(ok, "warm-up upload failed");
    let upload_ms = t.elapsed().as_millis() as u64;
    eprintln!("capture {capture_ms} ms, upload {upload_ms} ms; {runs} kill cycles, seed {seed}");

    let mut kills = 0;
    for i in 0..runs {
        let id = format!("crash-{i}");
        let (ok, out) = kill_after(
            agent(&["capture", "--user-id", "u", "--job-type", "4", "--consent-given", "--job-id", &id], &config),
            rng.below(capture_ms * 2),
        );
        if ok {
            assert_eq!(out.trim(), id);
            acknowledged.insert(id);
        } else {
            kills += 1;
        }
        let (ok, _) = kill_after(agent(&["run", "--exit-when-idle"], &config), rng.below(upload_ms * 2));
        kills += !ok as u64;
    }
    // Let the agent finish undisturbed.
    let (ok, _) = kill_after(agent(&["run", "--exit-when-idle"], &config), 300_000);
    assert!(ok, "the final uninterrupted run did not finish");

    let records = sandbox_jobs(&sb);
    let uploads =
        |id: &str| records.iter().find(|r| r["job_id"] == id).and_then(|r| r["uploads"].as_u64()).unwrap_or(0);
    let lost: Vec<_> = acknowledged.iter().filter(|id| uploads(id) == 0).collect();
    let duplicated: Vec<_> =
        records.iter().filter(|r| r["uploads"].as_u64().unwrap_or(0) > 1).map(|r| r["job_id"].clone()).collect();
    println!("metric crash_runs {runs} runs");
    println!("metric crash_kills {kills} kills");
    println!("metric jobs_acknowledged {} jobs", acknowledged.len());
    println!("metric jobs_lost {} jobs", lost.len());
    println!("metric jobs_duplicated {} jobs", duplicated.len());
    // Evidence that kills hit mid-submission: jobs prepared more than once were resumed.
    let resumed = records.iter().filter(|r| r["preps"].as_u64().unwrap_or(0) > 1).count();
    println!("metric jobs_resumed_after_kill {resumed} jobs");
    assert!(kills > 0, "no process was ever killed mid-work: the test proved nothing");
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
}
