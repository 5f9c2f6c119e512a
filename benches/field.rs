//! Uploads through shaped links, measured: the agent drains a queue of real captured Biometric
//! KYC jobs to the sandbox across a veth pair shaped by tc netem, in a VM (tests/vm/field.sh;
//! this host's kernel has no netem). Per profile it prints the bytes on the wire per job, the
//! time per job, and link efficiency = zip bytes ÷ (link rate × time); goal ≥ 0.8 on 2G.
//!
//! Run: `cargo bench --bench field` (FIELD_JOBS jobs per profile, default 8).

#[path = "../tests/common/field.rs"]
mod field;

use field::*;

fn main() {
    let jobs: usize = std::env::var("FIELD_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let dir = repo().join("target/field/bench");
    let bundle = stage(&dir, jobs);
    println!("{jobs} jobs per profile, sealed bundle {bundle} B each");
    let profiles = [&G2, &G3];
    run(&dir, &profiles, "MODE=bench", 1800);
    for p in profiles {
        let o = outcome(&dir, p);
        assert_eq!(o.num("finished"), 1.0, "{}: the drain did not finish: {:?}", p.name, o.result);
        let delivered = o.uploads.values().filter(|&&u| u == 1).count();
        assert_eq!(delivered, jobs, "{}: every job exactly once: {:?}", p.name, o.uploads);
        let secs = o.num("centisecs") / 100.0;
        let zip = o.num("zip_bytes");
        let wire = o.num("tx_bytes") + o.num("rx_bytes");
        let efficiency = zip / (p.rate_bits as f64 / 8.0 * secs);
        let n = jobs as f64;
        let name = p.name;
        println!(
            "{name}: {} one way {} ms, loss {} % per direction; connections {}, TLS resumed {}",
            p.rate, p.one_way_ms, p.loss_pct, o.stats["connections"], o.stats["resumed"]
        );
        println!("metric field_{name}_zip_bytes_per_job {:.0} B", zip / n);
        println!("metric field_{name}_wire_bytes_per_job {:.0} B", wire / n);
        println!("metric field_{name}_wire_overhead {:.3} ratio", wire / zip);
        println!("metric field_{name}_secs_per_job {:.2} s", secs / n);
        println!("metric field_{name}_link_efficiency {efficiency:.3} ratio");
    }
}
