//! What a Prometheus scrape costs a kiosk: the exposition written in-process and fetched over
//! loopback HTTP from `[metrics] listen`, before and after a long history (100,000 jobs
//! delivered, 1,000 different refusal codes, 100,000 sessions). Goals: a scrape ≤ 5 ms, the
//! same size and no memory growth whatever the history.
//!
//! Run: `cargo bench --bench metrics`.

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use kiosk_agent::metrics::{expose, Identity, Registry, SessionOutcome, Snapshot};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn p(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q) as usize]
}

fn main() {
    let who = Identity { id: "nbo-westlands-01".into(), site: "Westlands".into(), region: "KE".into() };
    let r = Arc::new(Registry::default());
    r.set_snapshot(Snapshot { pending: 3, free_bytes: Some(5 << 30), ..Default::default() });
    let time = |r: &Registry| {
        let mut t: Vec<f64> = (0..2000)
            .map(|_| {
                let s = Instant::now();
                std::hint::black_box(expose(r, &who, kiosk_agent::VERSION));
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        p(&mut t, 0.5)
    };
    let fresh_ms = time(&r);
    let fresh_bytes = expose(&r, &who, kiosk_agent::VERSION).len();
    let before = rss_kb();
    for i in 0..100_000u64 {
        r.job_delivered(2.0 + (i % 50) as f64, 1_800_000_000 + i as i64);
        r.job_failed(Some(&format!("{}", 1000 + i % 1000)));
        r.session_ended(SessionOutcome::ALL[(i % 6) as usize], None);
        r.job_bytes.observe(120_000.0 + (i % 9) as f64 * 1000.0);
    }
    let after = rss_kb();
    let old_ms = time(&r);
    let old_bytes = expose(&r, &who, kiosk_agent::VERSION).len();

    // Over loopback HTTP, as Prometheus scrapes it.
    let stop = Arc::new(AtomicBool::new(false));
    let reg = r.clone();
    let w = who.clone();
    let addr =
        kiosk_agent::metrics::listen::serve("127.0.0.1:0", None, move || expose(&reg, &w, kiosk_agent::VERSION), stop)
            .unwrap();
    let mut http: Vec<f64> = (0..500)
        .map(|_| {
            let s = Instant::now();
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: kiosk\r\nConnection: close\r\n\r\n").unwrap();
            let mut body = Vec::new();
            c.read_to_end(&mut body).unwrap();
            assert!(body.starts_with(b"HTTP/1.1 200"));
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!("metric metrics_expose_fresh_p50_ms {fresh_ms:.3} ms");
    println!("metric metrics_expose_after_100k_jobs_p50_ms {old_ms:.3} ms");
    println!("metric metrics_scrape_http_p50_ms {:.3} ms", p(&mut http, 0.5));
    println!("metric metrics_scrape_http_p99_ms {:.3} ms", p(&mut http, 0.99));
    println!("metric metrics_exposition_fresh_bytes {fresh_bytes} B");
    println!("metric metrics_exposition_after_100k_jobs_bytes {old_bytes} B");
    println!("metric metrics_rss_growth_100k_jobs {} KB", after.saturating_sub(before));
}
