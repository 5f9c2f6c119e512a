//! The control API under a local client's attack: 200 slow connections (a request head
//! trickled a byte at a time) and 60 clients that declare 32 MiB bodies and send part of them,
//! against `kiosk-agent run` with its default API settings. Prints the agent's peak RSS and
//! the latency of health requests made meanwhile (goals: ≤ 64 MB, p99 ≤ 50 ms).

#[path = "../tests/common/agent.rs"]
mod agent;
#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;

fn main() {
    let bin = std::env::var("KIOSK_AGENT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kiosk-agent").to_string());
    let a = agent::start(&bin, agent::NO_SMILE_ID, None, "", None);
    std::thread::sleep(Duration::from_millis(500));
    let idle_kb = a.status_kb("VmRSS:");
    let slow = agent::slow_connections(&a.socket, 200, Duration::from_millis(200));
    let half_sent: Vec<_> = (0..60)
        .map(|i| {
            let socket = a.socket.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = UnixStream::connect(&socket) else { return };
                let path = if i % 2 == 0 { "/v1/sessions" } else { "/v1/enhanced_kyc" };
                let _ = write!(s, "POST {path} HTTP/1.1\r\nContent-Length: 33554432\r\n\r\n");
                let _ = s.write_all(&vec![b'{'; 64 * 1024]);
                std::thread::sleep(Duration::from_secs(5));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut took = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        let (status, t) = a.health();
        if status != 200 {
            refused += 1;
        }
        took.push(t);
        std::thread::sleep(Duration::from_millis(10));
    }
    let peak_kb = a.status_kb("VmHWM:");
    for t in half_sent.into_iter().chain(slow) {
        let _ = t.join();
    }
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p).ceil() as usize).min(took.len()) - 1].as_secs_f64() * 1e3;
    println!("metric api_attack_idle_rss_mb {:.1} MB", idle_kb as f64 / 1024.0);
    println!("metric api_attack_peak_rss_mb {:.1} MB", peak_kb as f64 / 1024.0);
    println!("metric api_attack_health_p50_ms {:.2} ms", pct(0.50));
    println!("metric api_attack_health_p99_ms {:.2} ms", pct(0.99));
    println!("metric api_attack_health_refused {refused} requests");
}
