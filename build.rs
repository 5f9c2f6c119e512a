//! Puts the commit the binary was built from into `kiosk-agent --version` and the metrics'
//! `kiosk_info` (KIOSK_COMMIT), so a fleet sees exactly what each kiosk runs. Outside a git
//! checkout (a source package), KIOSK_COMMIT from the environment, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KIOSK_COMMIT");
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = std::env::var("KIOSK_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let c = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !c.is_empty()).then_some(c)
    });
    println!("cargo:rustc-env=KIOSK_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}
