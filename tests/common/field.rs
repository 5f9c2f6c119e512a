//! The field harness's host side, shared by `tests/field.rs` (the soak) and `benches/field.rs`:
//! a queue of real captured jobs, the agent, `ip` and `tc` staged into a directory that the VM
//! (scripts/vm.sh) mounts, where tests/vm/field.sh joins two network namespaces with a veth pair
//! shaped by tc netem. Results come back as files in that directory.

#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiosk_agent::config::Config;
use kiosk_agent::queue::Queue;

pub const API_KEY: &str = "kR3v9ZsQ2mXb7LpT0aYc1NdE5fGh8JkW-fake-field-key";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A link: rate as tc reads it, one-way delay, loss per direction.
pub struct Profile {
    pub name: &'static str,
    pub rate: &'static str,
    pub rate_bits: u64,
    pub one_way_ms: u32,
    pub loss_pct: f32,
}

pub const G2: Profile = Profile { name: "2g", rate: "200kbit", rate_bits: 200_000, one_way_ms: 150, loss_pct: 1.0 };
pub const G3: Profile = Profile { name: "3g", rate: "1mbit", rate_bits: 1_000_000, one_way_ms: 75, loss_pct: 0.5 };
/// The soak's link while it is up (4 Mbit/s, 100 ms RTT): up 20 s, down 40 s.
pub const FLAP: Profile = Profile { name: "flap", rate: "4mbit", rate_bits: 4_000_000, one_way_ms: 50, loss_pct: 0.5 };

impl Profile {
    fn spec(&self) -> String {
        format!("{}:{}:{}:{}", self.name, self.rate, self.one_way_ms, self.loss_pct)
    }
}

fn config(state: &str, ca: &str, env: &str, screens: &str, key_file: &Path) -> String {
    format!(
        "state_dir = \"{state}\"\n[smileid]\npartner_id = \"085\"\nenvironment = \"{env}\"\napi_key_file = {key_file:?}\n\
         extra_ca_file = \"{ca}\"\n[camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = \"{screens}\"\nwidth = 240\nheight = 320\n\
         [queue]\nmin_free_bytes = 0\nreserve_bytes = 0\n\
         [uplink]\nbase_backoff_secs = 1\nmax_backoff_secs = 8\nidle_poll_secs = 1\nmax_probe_interval_secs = 5\n\
         parallel_uploads = {parallel}\n",
        parallel = std::env::var("FIELD_PARALLEL").unwrap_or_else(|_| "2".into())
    )
}

/// Stages everything the VM needs into `dir` with `jobs` Biometric KYC jobs queued, copies of
/// one real capture from the synthetic camera. Returns the bundle size of one job.
pub fn stage(dir: &Path, jobs: usize) -> u64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_kiosk-agent");
    for b in [bin, "/usr/sbin/ip", "/usr/sbin/tc"] {
        let ok = Command::new("bash").arg(repo().join("scripts/vm.sh")).args(["stage", b]).arg(dir).status().unwrap();
        assert!(ok.success(), "staging {b}");
    }
    let key_file = dir.join("api_key");
    write_0600(&key_file, format!("{API_KEY}\n").as_bytes());

    // One real capture on the host, then copies of it with their own job_ids.
    let tmpl = dir.join("template");
    let tmpl_cfg = tmpl.join("kiosk.toml");
    std::fs::create_dir_all(&tmpl).unwrap();
    let id_info = tmpl.join("id_info.json");
    let person = r#"{"country":"NG","id_type":"NIN_V2","id_number":"00000000000","first_name":"Ada","last_name":"Obi","entered":true}"#;
    std::fs::write(&id_info, person).unwrap();
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    std::fs::write(
        &tmpl_cfg,
        config(&s(tmpl.join("state")), "/nonexistent", "https://127.0.0.1:9/v1", &s(tmpl.join("screens")), &key_file),
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["capture", "--user-id", "field-user", "--job-type", "1", "--consent-given", "--job-id", "template"])
        .arg("--id-info")
        .arg(&id_info)
        .arg("--config")
        .arg(&tmpl_cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "template capture: {}", String::from_utf8_lossy(&out.stderr));
    let c = Config::load(&tmpl_cfg).unwrap();
    let source = Queue::open(&c.state_dir, c.queue.clone()).unwrap();
    let mut rec = source.get("template").unwrap();
    let bundle_bytes = rec.bundle_bytes;
    let mut job = source.load_job(&mut rec).unwrap();
    drop(source);
    let queue = Queue::open(&dir.join("state"), c.queue.clone()).unwrap();
    for i in 0..jobs {
        job.partner_params.job_id = format!("field-{i:04}");
        queue.enqueue(&job).unwrap();
    }
    drop(queue);
    std::fs::remove_dir_all(&tmpl).unwrap();
    std::fs::write(
        dir.join("kiosk.toml"),
        config("@W@/state", "@W@/sb/ca.pem", "https://10.77.0.1:8443/v1", "@W@/screens", Path::new("/mnt/api_key")),
    )
    .unwrap();
    bundle_bytes
}

fn write_0600(p: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, bytes).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Boots the VM on `dir` with the payload settings `env` (MODE and the rest, see field.sh).
pub fn run(dir: &Path, profiles: &[&Profile], env: &str, vm_timeout_secs: u64) {
    let specs: Vec<String> = profiles.iter().map(|p| p.spec()).collect();
    std::fs::write(dir.join("field.env"), format!("{env}\nPROFILES=\"{}\"\n", specs.join(" "))).unwrap();
    let status = Command::new("bash")
        .arg(repo().join("scripts/vm.sh"))
        .arg("run")
        .arg(dir)
        .arg(repo().join("tests/vm/field.sh"))
        .env("VM_CPUS", "2")
        .env("VM_TIMEOUT", vm_timeout_secs.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "the field VM failed; see {}", dir.join("payload.log").display());
}

/// One profile's outcome, read back from the VM's files.
#[derive(Debug)]
pub struct Outcome {
    pub result: BTreeMap<String, String>,
    /// The sandbox's records (job_id → uploads).
    pub uploads: BTreeMap<String, u64>,
    pub stats: serde_json::Value,
    /// The agent's queue at the end: job_id → stage.
    pub queue: BTreeMap<String, String>,
}

impl Outcome {
    pub fn num(&self, k: &str) -> f64 {
        self.result.get(k).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{k} missing: {:?}", self.result))
    }
}

pub fn outcome(dir: &Path, p: &Profile) -> Outcome {
    let out = dir.join("out").join(p.name);
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    let result = read("result.env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut uploads = BTreeMap::new();
    for line in read("records.txt").lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        uploads.insert(r["job_id"].as_str().unwrap().to_string(), r["uploads"].as_u64().unwrap());
    }
    // `queue ls --json`: the records.
    let records: Vec<serde_json::Value> = serde_json::from_str(&read("queue.json")).unwrap_or_default();
    let queue = records
        .iter()
        .map(|r| (r["job_id"].as_str().unwrap_or("").to_string(), r["stage"].as_str().unwrap_or("").to_string()))
        .collect();
    let stats = serde_json::from_str(&read("stats.json")).unwrap_or_default();
    Outcome { result, uploads, stats, queue }
}
