//! `kiosk-agent demo` runs one Biometric KYC job end to end and prints the completed,
//! signature-checked job_status as its last line; the screens it showed are PNG files.

use std::process::Command;

use kiosk_agent::smileid::timestamp;

#[test]
fn demo_completes_a_biometric_kyc_job() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_kiosk-agent")).args(["demo", "--out"]).arg(out.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "demo failed: {stderr}");
    let stdout = String::from_utf8(run.stdout).unwrap();
    let last = stdout.lines().last().expect("the demo prints the job_status");
    let status: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(status["job_complete"], true);
    assert_eq!(status["job_success"], true);
    assert_eq!(status["result"]["PartnerParams"]["job_type"], 1);
    assert_eq!(
        status["result"]["Actions"]["Liveness_Check"], "Passed",
        "the synthetic person's liveness frames passed"
    );
    assert!(timestamp::parse(status["timestamp"].as_str().unwrap()).is_some());
    assert!(stderr.contains("signature verified"), "{stderr}");
    // The synthetic person made the three head turns, in the order the screen asked.
    let turns = stderr.lines().find(|l| l.contains("active liveness done:")).unwrap_or_else(|| panic!("{stderr}"));
    for task in ["turn_left", "turn_right", "look_up"] {
        assert!(turns.contains(task), "{turns}");
    }

    let screens: Vec<String> = std::fs::read_dir(out.path().join("screens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for want in ["consent", "capture", "review", "uploading", "result"] {
        assert!(screens.iter().any(|s| s.ends_with(&format!("-{want}.png"))), "no {want} screen in {screens:?}");
    }
    // The person is not told they are done ("Saved") and then to wait ("Uploading").
    assert!(!screens.iter().any(|s| s.ends_with("-saved.png")), "{screens:?}");
    let result_png = screens.iter().find(|s| s.ends_with("-result.png")).unwrap();
    let img = image::open(out.path().join("screens").join(result_png)).unwrap();
    assert_eq!((img.width(), img.height()), (480, 320));

    // The images are erased once the result is final: nothing is kept longer than needed.
    let bundles = std::fs::read_dir(out.path().join("state/bundles")).unwrap().count();
    assert_eq!(bundles, 0);
}
