//! The durable queue under damage: migration from the first on-disk format, corrupt, truncated
//! and deleted files (sled's own included), a full disk, bounds, TTL and erasure. Whatever
//! happens, open succeeds, nothing acknowledged is silently lost, and the damage is reported.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use kiosk_agent::queue::{Queue, QueueError, QueueSettings, Stage};
use kiosk_agent::smileid::job::*;
use kiosk_agent::smileid::signature::{ApiKey, LocalKeySigner};
use kiosk_agent::smileid::submit::{ResponseCheck, SubmitConfig};
use kiosk_agent::uplink::http::{HttpClient, Timeouts};
use kiosk_agent::uplink::service::{Uplink, UplinkSettings};

fn settings() -> QueueSettings {
    QueueSettings { min_free_bytes: 0, ..QueueSettings::default() }
}

/// A SmartSelfie job carrying `marker` as a name, so erasure and encryption can be checked.
fn job(id: &str, marker: &str) -> Job {
    let jpeg = std::fs::read(repo().join("tests/vectors/input_images/selfie.jpg")).unwrap();
    Job {
        partner_params: PartnerParams {
            user_id: "u".into(),
            job_id: id.into(),
            job_type: JobType::SmartSelfieEnrollment,
            extra: Default::default(),
        },
        id_info: IdInfo { first_name: Some(marker.into()), ..Default::default() },
        options: JobOptions::default(),
        images: vec![JobImage { image_type: ImageType::SelfieFile, file_name: "selfie.jpg".into(), jpeg }],
        consent: None,
        metadata: vec![],
    }
}

fn big_job(id: &str) -> Job {
    let mut j = job(id, "big");
    for i in 0..8 {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpeg.extend((0..30_000u32).map(|x| (x.wrapping_mul(2_654_435_761).wrapping_add(i) >> 24) as u8));
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        j.images.push(JobImage { image_type: ImageType::LivenessFile, file_name: format!("l{i}.jpg"), jpeg });
    }
    j
}

fn bundles(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("bundles")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).unwrap_or_default().windows(needle.len()).any(|w| w == needle) {
            hits.push(p);
        }
    }
    hits
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[test]
fn v1_queue_is_migrated_and_still_uploads() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    copy_dir(&repo().join("tests/fixtures/queue-v1"), &state);
    let q = Queue::open(&state, settings()).unwrap();
    assert_eq!(q.report.migrated, 2, "{:?}", q.report);
    assert!(q.report.quarantined.is_empty(), "{:?}", q.report);
    let recs = q.list().unwrap();
    assert_eq!(
        recs.iter().map(|r| (r.job_id.as_str(), r.stage)).collect::<Vec<_>>(),
        [("v1-job-queued", Stage::Queued), ("v1-job-second", Stage::Queued)]
    );
    assert!(bundles(&state).iter().all(|p| p.extension().unwrap() == "kab"));

    let sb = start_sandbox(&[]);
    let http = HttpClient::new(Some(&sb.ca_pem), &Timeouts::default()).unwrap();
    let key = ApiKey::new(API_KEY);
    let signer = LocalKeySigner { partner_id: PARTNER_ID.into(), key: key.clone() };
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key));
    let mut up = Uplink::new(&q, &http, &signer, cfg, UplinkSettings::default());
    let done = up.pass(|_, _| {}).unwrap();
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|d| d.outcome.is_ok()), "{done:?}");
    assert!(sandbox_jobs(&sb).iter().all(|r| r["uploads"] == 1));
    assert!(q.list().unwrap().iter().all(|r| r.stage == Stage::Erased));
}

#[test]
fn damaged_bundles_are_quarantined_and_the_rest_kept() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    for i in 0..5 {
        q.enqueue(&job(&format!("j{i}"), "m")).unwrap();
    }
    drop(q);
    let b = bundles(d.path());
    let mut bytes = std::fs::read(&b[0]).unwrap();
    bytes[200] ^= 0x10;
    std::fs::write(&b[0], bytes).unwrap();
    let len = std::fs::metadata(&b[1]).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&b[1]).unwrap().set_len(len / 2).unwrap();
    std::fs::remove_file(&b[2]).unwrap();
    std::fs::write(d.path().join("bundles/.0000000000000099.kab.tmp123"), b"half a write").unwrap();
    std::fs::write(d.path().join("bundles/notes.txt"), b"stray").unwrap();

    let q = Queue::open(d.path(), settings()).unwrap();
    let r = &q.report;
    assert_eq!(r.quarantined.len(), 4, "{r:?}");
    assert_eq!(r.temp_files_removed, 1);
    let by_id = |id: &str| q.get(id).unwrap().stage;
    assert_eq!([by_id("j0"), by_id("j1"), by_id("j2")], [Stage::Quarantined; 3]);
    assert_eq!([by_id("j3"), by_id("j4")], [Stage::Queued; 2]);
    let mut r3 = q.get("j3").unwrap();
    assert_eq!(q.load_job(&mut r3).unwrap().partner_params.job_id, "j3");
    assert!(q.retry("j0").is_err(), "a quarantined job is never sent");
    assert_eq!(std::fs::read_dir(d.path().join("quarantine")).unwrap().count(), 3);
    // Opening again changes nothing more: no crash loop, no double reporting.
    let q2 = {
        drop(q);
        Queue::open(d.path(), settings()).unwrap()
    };
    assert!(q2.report.quarantined.is_empty(), "{:?}", q2.report);
}

#[test]
fn a_damaged_index_is_rebuilt_from_the_bundles() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("db truncated to nothing", |p| std::fs::write(p.join("index.sled/db"), b"").unwrap()),
        ("db overwritten with garbage", |p| std::fs::write(p.join("index.sled/db"), vec![0xA5u8; 70_000]).unwrap()),
        ("conf deleted", |p| std::fs::remove_file(p.join("index.sled/conf")).unwrap()),
        ("conf garbage", |p| std::fs::write(p.join("index.sled/conf"), b"segment_size: banana\x00\xff").unwrap()),
    ];
    for (what, damage) in damages {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path(), settings()).unwrap();
        for i in 0..3 {
            q.enqueue(&job(&format!("k{i}"), "m")).unwrap();
        }
        drop(q);
        damage(d.path());
        let q = Queue::open(d.path(), settings()).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        let mut ids: Vec<_> =
            q.list().unwrap().into_iter().filter(|r| r.stage.is_pending()).map(|r| r.job_id).collect();
        ids.sort();
        assert_eq!(ids, ["k0", "k1", "k2"], "{what}: {:?}", q.report);
        // Either sled shrugged the damage off and the records are intact, or the jobs were
        // re-adopted assuming the most about what Smile ID saw, so nothing is sent twice.
        let intact = !q.report.index_rebuilt && q.report.adopted == 0;
        assert!(intact || q.report.adopted == 3, "{what}: {:?}", q.report);
        if !intact {
            assert!(q.list().unwrap().iter().all(|r| r.progress.put_attempted), "{what}: {:?}", q.report);
        }
        q.enqueue(&job("after", "m")).unwrap();
    }
}

#[test]
fn bounds_refuse_new_jobs_and_drop_nothing() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), QueueSettings { max_jobs: 2, ..settings() }).unwrap();
    q.enqueue(&job("a", "m")).unwrap();
    q.enqueue(&job("b", "m")).unwrap();
    let e = q.enqueue(&job("c", "m")).unwrap_err();
    assert!(matches!(e, QueueError::Full(_)) && e.to_string().contains("2 jobs waiting"), "{e}");
    assert!(e.to_string().contains("Nothing queued was dropped"));
    assert!(matches!(q.enqueue(&job("a", "m")), Err(QueueError::Duplicate(_)) | Err(QueueError::Full(_))));
    assert_eq!(q.list().unwrap().len(), 2);
    let q = {
        drop(q);
        Queue::open(d.path(), QueueSettings { max_bytes: 1024 * 1024, max_jobs: 100, ..settings() }).unwrap()
    };
    let e = (0..20).map(|i| q.enqueue(&big_job(&format!("big{i}")))).find_map(Result::err).unwrap();
    assert!(e.to_string().contains("MB queued"), "{e}");
}

#[test]
fn ttl_expires_and_erasure_leaves_no_trace() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), QueueSettings { encryption_key_file: None, ..settings() }).unwrap();
    q.enqueue(&job("old", "MARKER-OLD-7f3a")).unwrap();
    assert_eq!(files_containing(d.path(), b"MARKER-OLD-7f3a").len(), 1, "plain bundle holds the marker");
    let later = kiosk_agent::smileid::timestamp::UnixMillis::now().0 + 73 * 3_600_000;
    let (expired, erased, _) = q.housekeeping(later).unwrap();
    assert_eq!((expired, erased), (1, 1));
    let r = q.get("old").unwrap();
    assert_eq!(r.stage, Stage::Failed);
    assert!(r.last_error.unwrap().contains("expired"));
    assert!(files_containing(d.path(), b"MARKER-OLD-7f3a").is_empty(), "the images are really gone");
    assert!(bundles(d.path()).is_empty());
    // With encryption on (the shipped default) the marker never reaches the disk in clear.
    let d2 = tempfile::tempdir().unwrap();
    let q2 = Queue::open(d2.path(), settings()).unwrap();
    q2.enqueue(&job("enc", "MARKER-ENC-19bc")).unwrap();
    assert!(files_containing(d2.path(), b"MARKER-ENC-19bc").is_empty());
    assert_eq!(std::fs::metadata(d2.path().join("keys/bundle.key")).map(|m| m.len()).unwrap(), 32);
}

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root (CI runs as root); run the tests as root");
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_new_sessions_keeps_the_queue_and_recovers() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    let _fs = Tmpfs::mount(&mnt, "4m");
    let state = mnt.join("state");
    let small = || QueueSettings { reserve_bytes: 512 * 1024, ..settings() };
    let q = Queue::open(&state, small()).unwrap();
    assert!(state.join("reserve.bin").exists());
    // Eat the disk with a filler file, then enqueue until refused.
    let filler = mnt.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 2 * 1024 * 1024]);
    let mut accepted = Vec::new();
    let err = loop {
        match q.enqueue(&big_job(&format!("f{}", accepted.len()))) {
            Ok(r) => accepted.push(r.job_id),
            Err(e) => break e,
        }
        assert!(accepted.len() < 50, "the disk never filled");
    };
    assert!(!accepted.is_empty());
    let msg = err.to_string();
    assert!(msg.contains("full") || msg.contains("space"), "{msg}");
    assert!(
        !bundles(&state).iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with('.')),
        "no torn temp file left"
    );
    drop(q);
    // Everything acknowledged is intact after reopening on the full disk (the ballast makes room).
    let q = Queue::open(&state, small()).unwrap();
    assert!(q.report.quarantined.is_empty(), "{:?}", q.report);
    for id in &accepted {
        let mut r = q.get(id).unwrap();
        assert_eq!(q.load_job(&mut r).unwrap().partner_params.job_id, *id);
    }
    // Space returns: work resumes.
    std::fs::remove_file(&filler).unwrap();
    q.enqueue(&big_job("after-space")).unwrap();
    // The reserve margin refuses before the disk is actually full.
    drop(q);
    let q = Queue::open(&state, QueueSettings { min_free_bytes: 3 * 1024 * 1024, ..small() }).unwrap();
    let e = q.enqueue(&big_job("margin")).unwrap_err();
    assert!(e.to_string().contains("kept in reserve"), "{e}");
}
