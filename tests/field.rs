//! The soak: 300 queued jobs drained through a link that is up 20 s and down 40 s (netem in a
//! VM, tests/vm/field.sh) while the agent is SIGKILLed as the first job lands, then every 30–90 s. Every job must reach the
//! sandbox exactly once and end with its result in the agent's queue.
//!
//! Run: `cargo test --release --test field -- --ignored --nocapture` (SOAK_JOBS, SOAK_LIMIT_SECS).

#[path = "common/field.rs"]
mod field;

use field::*;

#[test]
#[ignore = "boots a VM for up to 15 minutes; CI runs it"]
fn soak_flapping_link_with_kills_loses_and_duplicates_nothing() {
    let jobs: usize = std::env::var("SOAK_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let limit: u64 = std::env::var("SOAK_LIMIT_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(780);
    let dir = repo().join("target/field/soak");
    stage(&dir, jobs);
    run(&dir, &[&FLAP], &format!("MODE=soak\nUP=20\nDOWN=40\nKILL_MIN=30\nKILL_MAX=90\nLIMIT={limit}"), limit + 300);
    let o = outcome(&dir, &FLAP);
    let ids: Vec<String> = (0..jobs).map(|i| format!("field-{i:04}")).collect();
    let lost: Vec<_> = ids.iter().filter(|id| o.uploads.get(*id).copied().unwrap_or(0) == 0).collect();
    let duplicated: Vec<_> = o.uploads.iter().filter(|(_, &u)| u > 1).collect();
    let unfinished: Vec<_> =
        ids.iter().filter(|id| !matches!(o.queue.get(*id).map(String::as_str), Some("result" | "erased"))).collect();
    let secs = o.num("centisecs") / 100.0;
    println!("metric soak_jobs {jobs} jobs");
    println!("metric soak_secs {secs:.0} s");
    println!("metric soak_kills {} kills", o.num("kills"));
    println!("metric soak_jobs_lost {} jobs", lost.len());
    println!("metric soak_jobs_duplicated {} jobs", duplicated.len());
    println!("metric soak_jobs_without_result {} jobs", unfinished.len());
    println!("metric soak_wire_bytes_per_job {:.0} B", (o.num("tx_bytes") + o.num("rx_bytes")) / jobs as f64);
    println!("metric soak_connections {} connections ({} TLS resumed)", o.stats["connections"], o.stats["resumed"]);
    assert!(o.num("kills") > 0.0, "the agent was never killed: the soak proved nothing");
    assert_eq!(o.num("finished"), 1.0, "the queue did not drain within {limit} s: {:?}", o.result);
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    assert!(unfinished.is_empty(), "no result recorded: {unfinished:?}");
}
