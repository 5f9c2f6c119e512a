//! Queue benchmarks; prints `metric <name> <value> <unit>` lines.
//!
//! - enqueue latency with fsync (p50, p99) for Biometric-KYC-sized bundles;
//! - drain throughput of `DRAIN_JOBS` (1,000) jobs to a local sandbox over TLS by
//!   `kiosk-agent run`, and that process's RSS sampled every 10 ms over the drain, with the
//!   drain's progress (bundles left); RSS at 10 % and 90 % is the median of the samples taken
//!   while 8–12 % and 88–92 % of the jobs were done, so one transient peak does not decide it;
//! - disk bytes ÷ live bytes after `CYCLES` (default 10,000; CI 3,000) enqueue/erase cycles of
//!   200 KB jobs with 20 jobs live (the sled index and key files included; the disk-full ballast
//!   excluded).
//!
//! Run: `cargo bench --bench queue`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiosk_agent::queue::{Queue, QueueSettings};
use kiosk_agent::smileid::job::*;

const KEY: &str = "bench-key-not-secret";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A SmartSelfie job of about `kb` KB: a selfie and 8 liveness images of incompressible bytes.
fn job(id: &str, kb: usize) -> Job {
    let img = |n: usize, seed: u32| {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
        v.extend((0..n as u32).map(|x| (x.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 24) as u8));
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    };
    let each = kb * 1024 / 9;
    let mut images =
        vec![JobImage { image_type: ImageType::SelfieFile, file_name: "selfie.jpg".into(), jpeg: img(each, 0) }];
    for i in 0..8 {
        images.push(JobImage {
            image_type: ImageType::LivenessFile,
            file_name: format!("liveness_{i}.jpg"),
            jpeg: img(each, i + 1),
        });
    }
    Job {
        partner_params: PartnerParams {
            user_id: "bench".into(),
            job_id: id.into(),
            job_type: JobType::SmartSelfieEnrollment,
            extra: Default::default(),
        },
        id_info: IdInfo::default(),
        options: JobOptions::default(),
        images,
        consent: None,
        metadata: vec![],
    }
}

fn settings() -> QueueSettings {
    QueueSettings {
        max_jobs: 100_000,
        max_bytes: u64::MAX / 2,
        min_free_bytes: 0,
        reserve_bytes: 0,
        ..QueueSettings::default()
    }
}

fn rss_kb_of(status: &str) -> u64 {
    let s = std::fs::read_to_string(status).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() { disk_bytes(&e.path()) } else { m.blocks() * 512 };
    }
    total
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn enqueue_latency() {
    let d = tempfile::tempdir_in(".").unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    let n = env_or("ENQUEUE_JOBS", 300);
    let jobs: Vec<Job> = (0..n).map(|i| job(&format!("lat-{i}"), 200)).collect();
    let mut ms: Vec<f64> = jobs
        .iter()
        .map(|j| {
            let t = Instant::now();
            q.enqueue(j).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    println!("metric enqueue_latency_p50 {:.2} ms", percentile(&ms, 0.5));
    println!("metric enqueue_latency_p99 {:.2} ms", percentile(&ms, 0.99));
    println!("metric enqueue_bundle_size {} KB", q.stats().unwrap().bundle_bytes / n as u64 / 1024);
}

fn drain_throughput() {
    let n = env_or("DRAIN_JOBS", 1000);
    let d = tempfile::tempdir_in(".").unwrap();
    let key_file = d.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["sandbox", "--listen", &format!("127.0.0.1:{port}"), "--partner-id", "085", "--api-key-file"])
        .arg(&key_file)
        .arg("--state-dir")
        .arg(d.path().join("sandbox"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca = d.path().join("sandbox/ca.pem");
    while !ca.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let q = Queue::open(&d.path().join("state"), settings()).unwrap();
    for i in 0..n {
        q.enqueue(&job(&format!("drain-{i}"), 100)).unwrap();
    }
    drop(q);
    // The agent drains as it runs in the field: its own process, `kiosk-agent run`.
    let config = d.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"https://127.0.0.1:{port}/v1\"\napi_key_file = {:?}\nextra_ca_file = {:?}\n[queue]\nmin_free_bytes = 0\nreserve_bytes = 0\nmax_jobs = 100000\nmax_bytes = 100000000000\n",
            d.path().join("state"),
            key_file,
            ca
        ),
    )
    .unwrap();
    let t = Instant::now();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["run", "--exit-when-idle", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", agent.id());
    let bundles = d.path().join("state/bundles");
    // (share of jobs done, RSS in KB); images are erased as each result comes in.
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while agent.try_wait().unwrap().is_none() {
        let left = std::fs::read_dir(&bundles).map(|r| r.count()).unwrap_or(n);
        samples.push((1.0 - left as f64 / n as f64, rss_kb_of(&status_path)));
        std::thread::sleep(Duration::from_millis(10));
    }
    samples.retain(|&(_, kb)| kb > 0);
    let at = |f: f64| {
        let mut w: Vec<u64> = samples.iter().filter(|(p, _)| (p - f).abs() <= 0.02).map(|(_, kb)| *kb).collect();
        w.sort_unstable();
        w.get(w.len() / 2).copied().unwrap_or(0) as f64 / 1024.0
    };
    let peak = samples.iter().map(|(_, kb)| *kb).max().unwrap_or(0) as f64 / 1024.0;
    let secs = t.elapsed().as_secs_f64();
    let q = Queue::open(&d.path().join("state"), settings()).unwrap();
    let stats = q.stats().unwrap();
    assert_eq!((stats.pending, stats.finished), (0, n), "every job must be delivered");
    println!("metric drain_jobs {n} jobs");
    println!("metric drain_throughput {:.1} jobs/s", n as f64 / secs);
    // Flat means the RSS early in the drain equals the RSS late in it.
    println!("metric drain_rss_at_10pct {:.1} MB", at(0.1));
    println!("metric drain_rss_at_90pct {:.1} MB", at(0.9));
    println!("metric drain_rss_peak {peak:.1} MB");
    let _ = sandbox.kill();
    let _ = sandbox.wait();
}

fn space_amplification() {
    let cycles = env_or("CYCLES", 10_000);
    let live = 20;
    let d = tempfile::tempdir_in(".").unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    let t = Instant::now();
    for i in 0..cycles {
        q.enqueue(&job(&format!("cyc-{i}"), 200)).unwrap();
        if i >= live {
            q.purge(&format!("cyc-{}", i - live)).unwrap();
        }
    }
    let live_bytes = q.stats().unwrap().bundle_bytes;
    drop(q);
    let disk = disk_bytes(d.path());
    if std::env::var_os("SHOW_FILES").is_some() {
        let _ = Command::new("du").arg("-a").arg("--block-size=1").arg(d.path()).status();
    }
    println!("metric cycles {cycles} cycles ({:.1} s)", t.elapsed().as_secs_f64());
    println!("metric live_bytes {:.2} MB", live_bytes as f64 / 1048576.0);
    println!("metric disk_bytes {:.2} MB", disk as f64 / 1048576.0);
    println!("metric disk_over_live {:.2} ratio", disk as f64 / live_bytes as f64);
}

fn main() {
    // `cargo bench` passes --bench; a filter argument picks one benchmark.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if want("enqueue") {
        enqueue_latency();
    }
    if want("drain") {
        drain_throughput();
    }
    if want("space") {
        space_amplification();
    }
}
