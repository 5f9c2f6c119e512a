//! Puts the commit the binary was built from into `kiosk-agent --version` and the metrics'
//! `kiosk_info` (KIOSK_COMMIT), so a fleet sees exactly what each kiosk runs. Outside a git
//! checkout (a source package), KIOSK_COMMIT from the environment, else "unknown".
//!
//! Deflates the bundled fonts and face model into OUT_DIR (`src/assets.rs` inflates them): 0.8 MB
//! less in a binary that ARM boards download over mobile links.

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
    pack();
}

fn pack() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Every font under assets/fonts/ and the face model: no list here to keep beside the
    // `packed!` calls (a file they name and this misses fails the build).
    println!("cargo:rerun-if-changed=assets/fonts");
    let fonts = std::fs::read_dir("assets/fonts").expect("assets/fonts/ is there");
    let mut names: Vec<String> = fonts
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".ttf"))
        .map(|n| format!("fonts/{n}"))
        .collect();
    names.push("blazeface_short_128.onnx".into());
    for name in &names {
        let src = std::path::Path::new("assets").join(name);
        println!("cargo:rerun-if-changed={}", src.display());
        let raw = std::fs::read(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
        let packed = miniz_oxide::deflate::compress_to_vec(&raw, 9);
        let dst = out.join(format!("{name}.deflate"));
        std::fs::create_dir_all(dst.parent().expect("a file has a folder"))
            .unwrap_or_else(|e| panic!("creating {}: {e}", out.display()));
        std::fs::write(&dst, packed).unwrap_or_else(|e| panic!("writing {}: {e}", dst.display()));
    }
}
