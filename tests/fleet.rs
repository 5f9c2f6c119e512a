//! A fleet seen from one place: five agents (`kiosk-agent run`, each with its own `[kiosk] id`
//! and `[metrics] listen` on loopback) beside the built-in Smile ID sandbox, scraped every second
//! by Debian's Prometheus server with the repo's alert rules loaded (their expressions as
//! shipped, their `for:` waits cut to 2 s). Queries through Prometheus' HTTP API then check what
//! an operator would look at: every kiosk up, delivered jobs adding up to the sandbox's own
//! count, the kiosk whose link was cut down, the one whose credentials were refused paused, the
//! matching alerts firing, a stopped kiosk seen as down, and every dashboard query valid. One
//! kiosk is scraped over TLS with a client certificate, as across the internet.
//!
//! Needs `prometheus` and `promtool` (Debian's package; scripts/test.sh installs it).
//! Run: `cargo test --release --test fleet -- --ignored --nocapture`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

struct Kiosk {
    id: String,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Child,
    /// host:port of its /metrics.
    target: String,
}

impl Kiosk {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn session(&self, user: &str) -> std::thread::JoinHandle<Value> {
        let config = self.config.clone();
        let user = user.to_string();
        std::thread::spawn(move || {
            let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
                .args(["session", "--user-id", &user, "--job-type", "4", "--consent-given", "--config"])
                .arg(&config)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            serde_json::from_slice(&o.stdout).unwrap()
        })
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_kiosk(n: usize, base_url: &str, sb: &SandboxProcess, key: &str, metrics_extra: &str) -> Kiosk {
    let dir = tempfile::tempdir().unwrap();
    let id = format!("fleet-{n:02}");
    let key_file = dir.path().join("api_key");
    std::fs::write(&key_file, key).unwrap();
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[smileid]\npartner_id = \"{PARTNER_ID}\"\nenvironment = {base_url:?}\napi_key_file = {key_file:?}\n\
             extra_ca_file = {:?}\n[camera]\nsource = \"synthetic\"\n[display]\nbackend = \"png\"\nout_dir = {:?}\n\
             width = 320\nheight = 240\n[api]\nsocket = {:?}\n[uplink]\nidle_poll_secs = 1\n\
             [kiosk]\nid = \"{id}\"\nsite = \"Site {n}\"\nregion = \"KE\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{metrics_extra}",
            dir.path().join("state"),
            sb.ca_pem,
            dir.path().join("screens"),
            dir.path().join("control.sock"),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("agent.log")).unwrap()))
        .spawn()
        .unwrap();
    let mut k = Kiosk { id, dir, config, child, target: String::new() };
    let t = Instant::now();
    // The agent says where it serves its metrics (the port it was given for port 0).
    k.target = loop {
        let log = k.log();
        if let Some(rest) = log.split("metrics for Prometheus on ").nth(1) {
            break rest.split("://").nth(1).unwrap().split('/').next().unwrap().to_string();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "kiosk {n} did not start: {log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    k
}

/// A TCP relay to the sandbox standing for a kiosk's mobile link: `cut` drops it, connections
/// under way included.
struct Link {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    fn to(upstream: &str) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (cut, open) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (c, o, up) = (cut.clone(), open.clone(), upstream.to_string());
        std::thread::spawn(move || {
            while !c.load(Ordering::Relaxed) {
                let Ok((a, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                a.set_nonblocking(false).unwrap();
                let Ok(b) = TcpStream::connect(&up) else { continue };
                o.lock().unwrap().extend([a.try_clone().unwrap(), b.try_clone().unwrap()]);
                for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Link { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// The fleet's own CA: a server certificate for the kiosk on 127.0.0.1 and a client
/// certificate for Prometheus, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &std::path::Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.clone().self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let issue = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = issue("127.0.0.1");
    let (client, client_key) = issue("prometheus.fleet.example");
    let p = Pki {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("kiosk.pem"),
        server_key: dir.join("kiosk.key"),
        client_cert: dir.join("prometheus.pem"),
        client_key: dir.join("prometheus.key"),
    };
    for (path, text) in [
        (&p.ca, ca_cert.pem()),
        (&p.server_cert, server),
        (&p.server_key, server_key),
        (&p.client_cert, client),
        (&p.client_key, client_key),
    ] {
        std::fs::write(path, text).unwrap();
    }
    p
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus scraping `targets` over plain HTTP and `tls_targets` over TLS with its client
/// certificate, all as job "kiosk-agent".
fn start_prometheus(targets: &[String], tls_targets: &[String], pki: &Pki) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    // The shipped rules, waiting 2 s where a fleet waits minutes.
    let rules = std::fs::read_to_string(repo().join("config/prometheus/kiosk-agent.rules.yml")).unwrap();
    let rules: String = rules
        .lines()
        .map(|l| if l.trim_start().starts_with("for: ") { "        for: 2s" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    let list = |t: &[String]| t.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  scrape_timeout: 900ms\n\
             rule_files: [rules.yml]\nscrape_configs:\n  - job_name: kiosk-agent\n    static_configs:\n      - targets: [{}]\n\
             \x20 - job_name: kiosk-agent-tls\n    scheme: https\n    tls_config:\n      ca_file: {:?}\n      cert_file: {:?}\n      key_file: {:?}\n\
             \x20   static_configs:\n      - targets: [{}]\n    relabel_configs:\n      - target_label: job\n        replacement: kiosk-agent\n",
            list(targets),
            pki.ca,
            pki.client_cert,
            pki.client_key,
            list(tls_targets),
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("prometheus.log")).unwrap()))
        .spawn()
        .expect("prometheus is installed (Debian package prometheus)");
    let p = Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let t = Instant::now();
    while ureq::get(&format!("{}/-/ready", p.url)).call().is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    p
}

fn api(p: &Prometheus, path: &str, query: Option<&str>) -> Value {
    let mut req = ureq::get(&format!("{}{path}", p.url));
    if let Some(q) = query {
        req = req.query("query", q);
    }
    let body = req.call().unwrap().body_mut().read_to_string().unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{path} {query:?}: {v}");
    v["data"].clone()
}

/// The vector a query returns, as (labels, value).
fn query(p: &Prometheus, q: &str) -> Vec<(Value, f64)> {
    api(p, "/api/v1/query", Some(q))["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap().parse().unwrap()))
        .collect()
}

fn firing(p: &Prometheus) -> Vec<(String, String)> {
    let mut v: Vec<_> = api(p, "/api/v1/alerts", None)["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let l = &a["labels"];
            let who = l["kiosk_id"].as_str().or(l["instance"].as_str()).unwrap_or("").to_string();
            (l["alertname"].as_str().unwrap().to_string(), who)
        })
        .collect();
    v.sort();
    v
}

/// Waits (at most 90 s) until `f` holds, then returns what it saw.
fn until<T: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> (bool, T)) -> T {
    let t = Instant::now();
    loop {
        let (ok, seen) = f();
        if ok {
            return seen;
        }
        assert!(t.elapsed() < Duration::from_secs(90), "{what}: still {seen:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs Debian's prometheus; run by scripts/test.sh"]
fn a_fleet_of_five_is_seen_from_one_prometheus() {
    let sb = start_sandbox(&[]);
    let upstream = sb.base_url.trim_start_matches("https://").trim_end_matches("/v1").to_string();
    let link4 = Link::to(&upstream);
    let via4 = format!("https://127.0.0.1:{}/v1", link4.port);
    // Kiosk 2 is scraped across the internet: TLS, and only with a client certificate from the
    // fleet's CA.
    let certs = tempfile::tempdir().unwrap();
    let pki = pki(certs.path());
    let tls = format!("tls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\n", pki.server_cert, pki.server_key, pki.ca);
    let mut kiosks: Vec<Kiosk> = (1..=5)
        .map(|n| match n {
            2 => start_kiosk(n, &sb.base_url, &sb, API_KEY, &tls),
            4 => start_kiosk(n, &via4, &sb, API_KEY, ""),
            5 => start_kiosk(n, &sb.base_url, &sb, "a-key-smile-id-refuses", ""),
            _ => start_kiosk(n, &sb.base_url, &sb, API_KEY, ""),
        })
        .collect();
    let plain: Vec<String> = kiosks.iter().filter(|k| k.id != "fleet-02").map(|k| k.target.clone()).collect();
    let prom = start_prometheus(&plain, &[kiosks[1].target.clone()], &pki);
    // Without the client certificate (here, without TLS at all) kiosk 2 answers nothing.
    assert!(ureq::get(&format!("http://{}/metrics", kiosks[1].target)).call().is_err());

    // A person at each kiosk (kiosk 4's link still works; Smile ID refuses kiosk 5's key), then
    // a second one at kiosk 1.
    let sessions: Vec<_> =
        [(0, "a1"), (1, "b1"), (2, "c1"), (3, "d1"), (4, "e1")].iter().map(|(k, u)| kiosks[*k].session(u)).collect();
    for s in sessions {
        assert_eq!(s.join().unwrap()["state"], "queued");
    }
    assert_eq!(kiosks[0].session("a2").join().unwrap()["state"], "queued");

    // Every kiosk is up, under its own id.
    let ids = until("five kiosks up with their ids", || {
        let up = query(&prom, "up{job=\"kiosk-agent\"} == 1");
        let info = query(&prom, "kiosk_info");
        let mut ids: Vec<String> = info.iter().map(|(l, _)| l["kiosk_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        (up.len() == 5 && ids.len() == 5, ids)
    });
    assert_eq!(ids, ["fleet-01", "fleet-02", "fleet-03", "fleet-04", "fleet-05"]);

    // Five jobs reach Smile ID (kiosk 5's is refused): the fleet's sum is the sandbox's count,
    // and each job names the kiosk that took it.
    let delivered = until("the fleet's deliveries add up", || {
        let sum = query(&prom, "sum(kiosk_jobs_delivered_total)");
        let n = sum.first().map_or(0.0, |s| s.1);
        (n == 5.0 && sandbox_jobs(&sb).iter().filter(|j| j["uploads"] == 1).count() == 5, n)
    });
    assert_eq!(delivered, 5.0);
    let per_kiosk = query(
        &prom,
        "sum by (kiosk_id) (kiosk_jobs_delivered_total * on(instance, job) group_left(kiosk_id) kiosk_info)",
    );
    let mut by_id: Vec<(String, f64)> =
        per_kiosk.iter().map(|(l, v)| (l["kiosk_id"].as_str().unwrap().to_string(), *v)).collect();
    by_id.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        by_id,
        [
            ("fleet-01".into(), 2.0),
            ("fleet-02".into(), 1.0),
            ("fleet-03".into(), 1.0),
            ("fleet-04".into(), 1.0),
            ("fleet-05".into(), 0.0)
        ]
    );
    let mut traced: Vec<String> = sandbox_jobs(&sb)
        .iter()
        .filter(|j| j["uploads"] == 1)
        .map(|j| j["partner_extras"]["kiosk_id"].as_str().unwrap_or("?").to_string())
        .collect();
    traced.sort();
    assert_eq!(traced, ["fleet-01", "fleet-01", "fleet-02", "fleet-03", "fleet-04"], "kiosk_id in partner_params");

    // Kiosk 4's link is cut; the next person's job waits there, and the kiosk shows as down.
    link4.cut();
    assert_eq!(kiosks[3].session("d2").join().unwrap()["state"], "queued");
    let link_of = |state: &str| -> Vec<String> {
        let q =
            format!("(kiosk_link_state{{state=\"{state}\"}} == 1) * on(instance, job) group_left(kiosk_id) kiosk_info");
        let mut v: Vec<String> =
            query(&prom, &q).iter().map(|(l, _)| l["kiosk_id"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let down = until("kiosk 4 down", || {
        let d = link_of("down");
        (d == ["fleet-04"], d)
    });
    assert_eq!(down, ["fleet-04"]);
    assert_eq!(link_of("paused"), ["fleet-05"], "Smile ID refused kiosk 5's credentials");
    assert_eq!(link_of("up"), ["fleet-01", "fleet-02", "fleet-03"]);
    let waiting =
        query(&prom, "kiosk_queue_jobs{stage=\"pending\"} * on(instance, job) group_left(kiosk_id) kiosk_info");
    let pending_at = |id: &str| waiting.iter().find(|(l, _)| l["kiosk_id"] == id).map(|r| r.1);
    assert_eq!(pending_at("fleet-04"), Some(1.0), "the job waits on the kiosk");

    // The matching alerts fire, naming the kiosks; the healthy ones raise none.
    let alerts = until("alerts for kiosks 4 and 5", || {
        let f = firing(&prom);
        let want = [("KioskUplinkDown", "fleet-04"), ("KioskUploadsPaused", "fleet-05")];
        (want.iter().all(|(a, k)| f.contains(&(a.to_string(), k.to_string()))), f)
    });
    assert!(alerts.iter().all(|(_, k)| k == "fleet-04" || k == "fleet-05"), "{alerts:?}");

    // A kiosk that stops is down for Prometheus, and KioskDown fires naming it by the id it
    // last gave (its own series are gone).
    let (gone, id) = (kiosks[2].target.clone(), kiosks[2].id.clone());
    drop(kiosks.remove(2));
    until("kiosk 3 down and alerted", || {
        let up = query(&prom, &format!("up{{instance=\"{gone}\"}}"));
        let f = firing(&prom);
        (up.first().is_some_and(|u| u.1 == 0.0) && f.contains(&("KioskDown".into(), id.clone())), f)
    });

    // Every query of the shipped dashboard is valid PromQL, and its fleet figures have data.
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("config/grafana/kiosk-agent-fleet.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let r = api(&prom, "/api/v1/query", Some(t["expr"].as_str().unwrap()));
            if panel["type"] == "stat" || panel["type"] == "table" {
                assert!(!r["result"].as_array().unwrap().is_empty(), "{}: {}", panel["title"], t["expr"]);
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "{checked}");
}

/// A scrape passes `promtool check metrics`, and the rules' own tests pass.
#[test]
#[ignore = "needs Debian's prometheus; run by scripts/test.sh"]
fn the_exposition_and_the_rules_pass_promtool() {
    let sb = start_sandbox(&[]);
    let k = start_kiosk(1, &sb.base_url, &sb, API_KEY, "");
    assert_eq!(k.session("p1").join().unwrap()["state"], "queued");
    let text = until("the job counted", || {
        let t = ureq::get(&format!("http://{}/metrics", k.target)).call().unwrap().body_mut().read_to_string().unwrap();
        (t.contains("kiosk_jobs_captured_total 1"), t)
    });
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = check.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");
    // Every line the agent logged names the kiosk.
    let log = k.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("kiosk-agent: ")).collect();
    assert!(lines.len() >= 3, "{log}");
    for l in lines {
        assert!(l.contains(&format!("KIOSK_ID={}", k.id)), "{l}");
    }
    let dir = repo().join("config/prometheus");
    let o = Command::new("promtool")
        .args(["test", "rules", "kiosk-agent.rules.test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let o =
        Command::new("promtool").args(["check", "rules", "kiosk-agent.rules.yml"]).current_dir(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
