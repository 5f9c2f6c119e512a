//! Nothing lost, model-based: random interleavings of an operator's commands (status, queue
//! ls/show/retry/purge/restore, capture, upload, sessions) with the running service, SIGKILLs,
//! random bytes over the index, a full disk (a small tmpfs), clock jumps of ±4 days and ±1 year
//! (faketime, with the boot clock left alone as a real jump leaves it), the bundle key removed and
//! restored, and a wrong base URL corrected. Then everything is put right and the queue drains.
//!
//! The model: every acknowledged job ends delivered exactly once (counted at the sandbox), or
//! purged by the operator; none is delivered twice. Counts are printed as `metric` lines.
//! CI runs `MODEL_STEPS` (default 60) steps; a longer run is one command:
//! `MODEL_STEPS=400 MODEL_SEED=7 cargo test --release --test model -- --nocapture`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The agent binary, its wall clock moved by `offset` (e.g. "+4d"); the boot clock is left
/// alone, as a real clock jump leaves it.
fn agent_at(offset: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"));
    if let Some(off) = offset {
        c.env("LD_PRELOAD", libfaketime()).env("FAKETIME", off).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    c
}

const CLOCKS: [Option<&str>; 5] = [None, Some("+4d"), Some("-4d"), Some("+365d"), Some("-365d")];

struct World {
    dir: PathBuf,
    mnt: PathBuf,
    state: PathBuf,
    config: PathBuf,
    good: String,
    socket: PathBuf,
    service: Option<Child>,
    acked: BTreeSet<String>,
    purged: BTreeSet<String>,
    next: u32,
    counts: BTreeMap<&'static str, u64>,
    damages: u64,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut c) = self.service.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl World {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kiosk-agent")).args(args).arg("--config").arg(&self.config).output().unwrap()
    }

    fn running(&mut self) -> bool {
        match &mut self.service {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts the service, under a faked wall clock or with a wrong URL; false if it refused.
    fn start(&mut self, clock: Option<&str>, wrong_url: bool) -> bool {
        let cfg = if wrong_url { self.good.replace("/v1\"", "/api/v1\"") } else { self.good.clone() };
        std::fs::write(&self.config, cfg).unwrap();
        let log =
            std::fs::File::create(self.dir.join(format!("service-{}.log", self.counts.values().sum::<u64>()))).unwrap();
        let mut cmd = agent_at(clock);
        let mut child =
            cmd.args(["run", "--config"]).arg(&self.config).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let t = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if kiosk_agent::api::client::call(&self.socket, "GET", "/v1/health", None).is_ok_and(|(s, _)| s == 200) {
                self.service = Some(child);
                return true;
            }
            assert!(t.elapsed() < Duration::from_secs(40), "the service neither started nor refused");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self, kill: bool) {
        if let Some(mut c) = self.service.take() {
            if kill {
                let _ = c.kill();
            } else {
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            }
            let _ = c.wait();
        }
    }

    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("model-{}", self.next)
    }

    fn session(&mut self) {
        let id = self.new_id();
        let o = self.cli(&["session", "--user-id", "u", "--job-type", "4", "--consent-given", "--job-id", &id]);
        if o.status.success() {
            self.acked.insert(id);
        }
    }

    fn capture(&mut self, running: bool) {
        let id = self.new_id();
        let o = self.cli(&["capture", "--user-id", "u", "--job-type", "4", "--consent-given", "--job-id", &id]);
        if running {
            assert!(!o.status.success() && text(&o).contains("in use"), "capture beside the service: {}", text(&o));
        } else if o.status.success() {
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), id);
            self.acked.insert(id);
        }
    }

    fn pick(&self, rng: &mut Rng) -> Option<String> {
        let v: Vec<_> = self.acked.iter().collect();
        (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize].clone())
    }

    fn fill_disk(&self) -> PathBuf {
        let filler = self.mnt.join("filler");
        let free = kiosk_agent::queue::free_bytes(&self.mnt).unwrap_or(0);
        let _ = std::fs::write(&filler, vec![0u8; free.saturating_sub(96 * 1024) as usize]);
        filler
    }

    fn step(&mut self, rng: &mut Rng) {
        let running = self.running();
        match rng.below(20) {
            0..=4 if running => {
                self.count("session");
                self.session();
            }
            0..=2 => {
                self.count("capture");
                self.capture(false);
            }
            3 | 4 => {
                self.count("upload");
                let clock = CLOCKS[rng.below(CLOCKS.len() as u64) as usize];
                let o = agent_at(clock).args(["upload", "--config"]).arg(&self.config).output().unwrap();
                if clock.is_some() {
                    // Nothing is sent on a wrong clock: it says so, or there was nothing due.
                    assert!(!o.status.success() || o.stdout.is_empty(), "upload on a wrong clock: {}", text(&o));
                }
            }
            5 => {
                self.count("status");
                let o = self.cli(&["status"]);
                assert!(o.status.success() || text(&o).contains("damaged"), "status: {}", text(&o));
                let o = self.cli(&["queue", "ls"]);
                assert!(o.status.success() || text(&o).contains("damaged"), "queue ls: {}", text(&o));
            }
            6 => {
                self.count("show");
                if let Some(id) = self.pick(rng) {
                    self.cli(&["queue", "show", &id]);
                }
            }
            7 => {
                self.count("retry");
                if let Some(id) = self.pick(rng) {
                    self.cli(&["queue", "retry", &id]);
                }
            }
            8 => {
                self.count("restore");
                if let Some(id) = self.pick(rng) {
                    self.cli(&["queue", "restore", &id]);
                }
            }
            9 => {
                if let Some(id) = self.pick(rng).filter(|_| rng.below(3) == 0) {
                    self.count("purge");
                    if self.cli(&["queue", "purge", &id]).status.success() {
                        self.purged.insert(id);
                    }
                }
            }
            10 | 11 if running => {
                self.count("sigkill");
                self.stop(true);
            }
            10 | 11 => {
                let clock = if rng.below(2) == 0 { None } else { CLOCKS[rng.below(CLOCKS.len() as u64) as usize] };
                let wrong_url = rng.below(5) == 0;
                self.count(if wrong_url {
                    "start_wrong_url"
                } else if clock.is_some() {
                    "start_clock_off"
                } else {
                    "start"
                });
                assert!(self.start(clock, wrong_url), "the service refused to start");
            }
            12 if running => {
                self.count("stop");
                self.stop(false);
            }
            12 => {
                self.count("capture_beside");
                self.capture(false);
            }
            13 if !running => {
                self.count("index_damage");
                let mut junk = vec![0u8; 64 * 1024];
                for b in junk.iter_mut() {
                    *b = rng.below(256) as u8;
                }
                let db = self.state.join("index.sled/db");
                if db.exists() {
                    std::fs::write(&db, junk).unwrap();
                    self.damages += 1;
                }
            }
            14 if !running => {
                self.count("key_removed");
                let key = self.state.join("keys/bundle.key");
                let aside = self.dir.join("bundle.key.aside");
                if std::fs::rename(&key, &aside).is_ok() {
                    let started = self.start(None, false);
                    let log = self.service_logs();
                    self.stop(false);
                    let sealed = std::fs::read_dir(self.state.join("bundles")).map(|d| d.count() > 0).unwrap_or(false);
                    if sealed {
                        assert!(!started, "the service started without the bundle key over sealed jobs");
                        assert!(log.contains("bundle.key"), "the refusal names the key: {log}");
                    }
                    assert!(!sealed || !key.exists(), "no key was invented over sealed jobs");
                    let _ = std::fs::remove_file(&key);
                    std::fs::rename(&aside, &key).unwrap();
                }
            }
            15 => {
                self.count("disk_full");
                let filler = self.fill_disk();
                if running {
                    self.session();
                } else {
                    self.capture(false);
                }
                let _ = std::fs::remove_file(filler);
            }
            _ => {
                self.count("idle");
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        if self.running() {
            let o = self.cli(&["status"]);
            assert!(o.status.success(), "status beside the service: {}", text(&o));
        }
    }

    fn service_logs(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("service-") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}

#[test]
fn every_acknowledged_job_is_delivered_once_or_purged() {
    let steps: u64 = std::env::var("MODEL_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let seed: u64 = std::env::var("MODEL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x00C0_FFEE_1357);
    libfaketime();
    let mut rng = Rng(seed | 1);
    let sb = start_sandbox(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mnt = dir.join("disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"]).arg(&mnt).status().unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root (CI runs as root)");
    let _fs = Tmpfs(mnt.clone());
    let state = mnt.join("state");
    let socket = dir.join("control.sock");
    let good = format!(
        "state_dir = {state:?}\n[smileid]\npartner_id = \"{PARTNER_ID}\"\nenvironment = \"{}\"\napi_key_file = {:?}\nextra_ca_file = {:?}\n\
         [camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\nwidth = 240\nheight = 320\n[api]\nsocket = {socket:?}\n\
         [queue]\nmin_free_bytes = 0\nreserve_bytes = 262144\n\
         [uplink]\nbase_backoff_secs = 1\nmax_backoff_secs = 4\npaused_retry_secs = 2\nidle_poll_secs = 1\nmax_probe_interval_secs = 2\n",
        sb.base_url,
        sb.key_file,
        sb.ca_pem,
        dir.join("screens"),
    );
    let mut w = World {
        config: dir.join("kiosk.toml"),
        dir,
        mnt,
        state,
        good,
        socket,
        service: None,
        acked: BTreeSet::new(),
        purged: BTreeSet::new(),
        next: 0,
        counts: BTreeMap::new(),
        damages: 0,
    };
    std::fs::write(&w.config, &w.good).unwrap();
    let started = Instant::now();
    for _ in 0..steps {
        w.step(&mut rng);
    }
    // Everything put right: the clock, the URL, the disk, the key. Then the queue drains.
    w.stop(false);
    assert!(w.start(None, false), "the service starts once everything is right: {}", w.service_logs());
    let want: BTreeSet<_> = w.acked.difference(&w.purged).cloned().collect();
    let t = Instant::now();
    let delivered = loop {
        let jobs = sandbox_jobs(&sb);
        let delivered: BTreeMap<String, u64> = jobs
            .iter()
            .map(|j| (j["job_id"].as_str().unwrap_or("").to_string(), j["uploads"].as_u64().unwrap_or(0)))
            .collect();
        if want.iter().all(|id| delivered.get(id).is_some_and(|u| *u >= 1)) || t.elapsed() > Duration::from_secs(180) {
            break delivered;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let ls = text(&w.cli(&["queue", "ls"]));
    w.stop(false);
    let lost: Vec<_> = want.iter().filter(|id| delivered.get(*id).copied().unwrap_or(0) == 0).collect();
    let twice: Vec<_> = delivered.iter().filter(|(_, u)| **u > 1).map(|(id, _)| id).collect();
    let once = want.iter().filter(|id| delivered.get(*id) == Some(&1)).count();
    println!("metric model_steps {steps} steps (seed {seed})");
    println!("metric model_secs {} s", started.elapsed().as_secs());
    for (what, n) in &w.counts {
        println!("metric model_action_{what} {n} times");
    }
    println!("metric model_index_damages {} times", w.damages);
    println!("metric model_jobs_acknowledged {} jobs", w.acked.len());
    println!("metric model_jobs_purged {} jobs", w.purged.len());
    println!("metric model_jobs_delivered_once {once} jobs");
    println!("metric model_jobs_lost {} jobs", lost.len());
    println!("metric model_jobs_duplicated {} jobs", twice.len());
    assert!(w.acked.len() >= 3, "too few jobs were acknowledged to prove anything: {:?}", w.counts);
    assert!(lost.is_empty(), "lost: {lost:?}\n{ls}\n{}", w.service_logs());
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
}
