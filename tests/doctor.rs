//! `kiosk-agent doctor` on a machine with no camera, display or network (CI's, and a kiosk
//! before its parts are connected): every missing part is explained with what to do, the exit
//! code says something failed, and nothing panics.

mod common;

use std::process::Command;

fn doctor(config: &std::path::Path) -> (i32, serde_json::Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
        .args(["doctor", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let code = o.status.code().expect("doctor exits, it is not killed");
    assert_ne!(code, 101, "doctor panicked: {}", String::from_utf8_lossy(&o.stderr));
    (code, serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout))))
}

fn find<'a>(checks: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks}"))
}

#[test]
fn explains_every_missing_part_and_never_panics() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("api_key");
    std::fs::write(&key, "k").unwrap();
    let cfg = d.path().join("kiosk.toml");
    // Nothing listens on port 9: the API host is unreachable, as with no network at all.
    std::fs::write(
        &cfg,
        format!("state_dir = {:?}\n[smileid]\npartner_id = \"085\"\nenvironment = \"https://127.0.0.1:9/v1\"\napi_key_file = {key:?}\n", d.path().join("state")),
    )
    .unwrap();
    let (code, checks) = doctor(&cfg);
    assert_eq!(code, 1, "{checks:#}");
    for name in ["config", "camera", "display", "input", "clock", "storage", "key custody", "network"] {
        let c = find(&checks, name);
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
        if c["verdict"] != "PASS" {
            assert!(!c["advice"].as_str().unwrap().is_empty(), "a {} without advice: {c}", c["verdict"]);
        }
    }
    assert_eq!(find(&checks, "config")["verdict"], "PASS");
    // Run by hand, the queue's keys are made in the state dir: said, with what a kiosk does.
    let storage = find(&checks, "storage");
    assert_eq!(storage["verdict"], "WARN", "{storage}");
    assert!(storage["detail"].as_str().unwrap().contains("beside the jobs they protect"), "{storage}");
    assert!(storage["advice"].as_str().unwrap().contains("bundle_key"), "{storage}");
    assert_eq!(find(&checks, "network")["verdict"], "FAIL");
    assert!(find(&checks, "network")["detail"].as_str().unwrap().contains("cannot reach"));
    assert_eq!(find(&checks, "key custody")["verdict"], "WARN", "the key file is world-readable (0644)");
    // check-config accepts such a key, and says so.
    let o =
        Command::new(env!("CARGO_BIN_EXE_kiosk-agent")).args(["check-config", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("warning") && err.contains("readable by others"), "{err}");
    assert!(err.contains("beside the jobs they protect"), "{err}");
    // A key file of blanks is as empty to the doctor as to the service that would sign with it.
    std::fs::write(&key, " \n").unwrap();
    let (_, blank) = doctor(&cfg);
    assert_eq!(find(&blank, "key custody")["verdict"], "FAIL", "{blank:#}");
    std::fs::write(&key, "k").unwrap();
    // An operator who is not root runs the doctor beside a root-only key: it says it could not
    // look, not that the key is missing or empty. (Needs root to make such a key.)
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::{fs::PermissionsExt, process::CommandExt};
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_kiosk-agent"))
            .args(["doctor", "--json", "--config"])
            .arg(&cfg)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let as_nobody: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let k = find(&as_nobody, "key custody");
        assert!(k["verdict"] == "WARN" && k["detail"].as_str().unwrap().contains("cannot be read by this user"), "{k}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    if std::fs::read_dir("/dev").unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with("video")) {
        assert_ne!(find(&checks, "camera")["verdict"], "PASS");
    }

    // No config at all: the failure is the config, and the device checks still run.
    let (code, checks) = doctor(&d.path().join("missing.toml"));
    assert_eq!(code, 1);
    assert_eq!(find(&checks, "config")["verdict"], "FAIL");
    find(&checks, "camera");
    find(&checks, "clock");
}

/// The credentials check signs a harmless request: the right partner id passes, a wrong one
/// (or a key of another environment) fails and says what to check.
#[test]
fn a_wrong_partner_id_fails_the_credentials_check() {
    let sb = common::start_sandbox(&[]);
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("kiosk.toml");
    let write = |partner: &str| {
        std::fs::write(
            &cfg,
            format!(
                "state_dir = {:?}\n[smileid]\npartner_id = \"{partner}\"\nenvironment = {:?}\napi_key_file = {:?}\nextra_ca_file = {:?}\n",
                d.path().join("state"),
                sb.base_url,
                sb.key_file,
                sb.ca_pem
            ),
        )
        .unwrap()
    };
    write(common::PARTNER_ID);
    let (_, checks) = doctor(&cfg);
    assert_eq!(find(&checks, "credentials")["verdict"], "PASS", "{checks:#}");
    write("999");
    let (code, checks) = doctor(&cfg);
    let c = find(&checks, "credentials");
    assert_eq!((code, c["verdict"].as_str()), (1, Some("FAIL")), "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("refused") && c["advice"].as_str().unwrap().contains("partner_id"),
        "{c}"
    );
}
