//! The durable queue under damage: migration from the first on-disk format, corrupt, truncated
//! and deleted files (sled's own included), a full disk, bounds, TTL and erasure. Whatever
//! happens, open succeeds, nothing acknowledged is silently lost, and the damage is reported.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use std::sync::Arc;

use kiosk_agent::clock::{Clock, ManualClock};
use kiosk_agent::queue::{Access, Event, Housekeeping, Queue, QueueError, QueueSettings, Stage, TYPICAL_JOB_BYTES};
use kiosk_agent::smileid::job::*;
use kiosk_agent::smileid::signature::{ApiKey, LocalKeySigner};
use kiosk_agent::smileid::submit::Progress;
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

/// A file where the quarantine folder should be (a slip of an operator's, or a restore gone
/// wrong): the queue says no job can be saved, and why, before anyone is captured.
#[test]
fn a_file_in_a_folders_place_is_said_before_a_job_is_captured() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.stats().unwrap().unwritable, None);
    std::fs::remove_dir(d.path().join("quarantine")).unwrap();
    std::fs::write(d.path().join("quarantine"), b"not a folder").unwrap();
    let why = q.stats().unwrap().unwritable.expect("said");
    assert!(why.contains("quarantine is a file where a folder should be"), "{why}");
    let e = q.check_room(1).unwrap_err();
    assert!(matches!(e, QueueError::Unwritable(_)) && e.to_string().contains("nothing queued was dropped"), "{e}");
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
    assert!(q.retry("j0").unwrap_err().to_string().contains("queue restore"), "a quarantined job is never sent");
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
    assert!(
        matches!(e, QueueError::Full(_)) && e.to_string().contains("2 job(s) waiting, the limit is max_jobs = 2"),
        "{e}"
    );
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

fn clocked(dir: &Path, s: QueueSettings, clock: &ManualClock) -> Queue {
    Queue::open_with(dir, s, Access::ReadWrite, Arc::new(clock.clone())).unwrap()
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-29, the day these tests were written.
const T0: i64 = 1_795_910_400_000;

/// By default nothing but Smile ID's verdict or an operator's purge ends a job: a month with the
/// link down, on a confirmed clock, leaves it queued, images and all.
#[test]
fn by_default_a_job_waits_for_the_link_however_long_it_takes() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let q = clocked(d.path(), settings(), &clock);
    q.enqueue(&job("patient", "MARKER-PATIENT")).unwrap();
    q.confirm_clock();
    q.housekeeping().unwrap();
    for _ in 0..30 {
        clock.advance(DAY);
        q.confirm_clock();
        let h = q.housekeeping().unwrap();
        assert_eq!((h.expired, h.erased, h.purged), (0, 0, 0), "{h:?}");
    }
    let r = q.get("patient").unwrap();
    assert!(r.stage.is_pending() && r.bundle_bytes > 0, "{:?}", r.stage);
}

#[test]
fn ttl_expires_only_on_a_confirmed_clock_and_failures_keep_their_images() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = QueueSettings { encryption_key_file: None, result_retention_hours: 1000, ttl_hours: 72, ..settings() };
    let q = clocked(d.path(), s, &clock);
    q.enqueue(&job("old", "MARKER-OLD-7f3a")).unwrap();
    assert_eq!(files_containing(d.path(), b"MARKER-OLD-7f3a").len(), 1, "plain bundle holds the marker");
    // The wall clock jumps 4 days ahead: unconfirmed, it decides nothing.
    clock.jump(4 * DAY);
    assert_eq!(q.housekeeping().unwrap(), Housekeeping::default());
    // Confirmed after the jump: the boot clock says the job is minutes old, not days.
    q.confirm_clock();
    let h = q.housekeeping().unwrap();
    assert_eq!((h.dated, h.expired), (1, 0), "{h:?}");
    // 73 real hours pass; a confirmation from before does not vouch for now.
    clock.advance(73 * HOUR);
    assert_eq!(q.housekeeping().unwrap().expired, 0, "a stale confirmation decides nothing");
    q.confirm_clock();
    let h = q.housekeeping().unwrap();
    assert_eq!((h.expired, h.erased), (1, 0), "expired, but the images stay: {h:?}");
    let r = q.get("old").unwrap();
    assert_eq!(r.stage, Stage::Failed);
    assert!(r.last_error.unwrap().contains("expired"));
    assert_eq!(files_containing(d.path(), b"MARKER-OLD-7f3a").len(), 1, "a mistaken failure can be undone");
    assert_eq!(q.retry("old").unwrap().stage, Stage::Queued);
    // Put back by the operator, its age starts again: not expired at the next housekeeping.
    q.confirm_clock();
    assert_eq!(q.housekeeping().unwrap().expired, 0, "a retried job gets its full TTL");
    // Expired again, then kept for the failed-job retention, then really erased.
    clock.advance(73 * HOUR);
    q.confirm_clock();
    assert_eq!(q.housekeeping().unwrap().expired, 1);
    clock.advance(169 * HOUR);
    q.confirm_clock();
    assert_eq!(q.housekeeping().unwrap().erased, 1);
    assert!(files_containing(d.path(), b"MARKER-OLD-7f3a").is_empty(), "the images are really gone");
    assert!(bundles(d.path()).is_empty());
    let e = q.retry("old").unwrap_err().to_string();
    assert!(e.contains("erased") && e.contains("capture again"), "{e}");
    // With encryption on (the shipped default) the marker never reaches the disk in clear.
    let d2 = tempfile::tempdir().unwrap();
    let q2 = Queue::open(d2.path(), settings()).unwrap();
    q2.enqueue(&job("enc", "MARKER-ENC-19bc")).unwrap();
    assert!(files_containing(d2.path(), b"MARKER-ENC-19bc").is_empty());
    assert_eq!(std::fs::metadata(d2.path().join("keys/bundle.key")).map(|m| m.len()).unwrap(), 32);
}

#[test]
fn a_job_captured_on_a_slow_clock_is_not_old_when_the_clock_is_fixed() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 - 30 * DAY);
    let q = clocked(d.path(), settings(), &clock);
    q.enqueue(&job("slow", "m")).unwrap();
    clock.advance(2 * HOUR);
    clock.jump(30 * DAY); // NTP sets the clock right
                          // Before Smile ID confirms it, the fleet's "oldest job waiting" (KioskJobsWaiting) already
                          // goes by the boot clock: 2 h, not 30 days.
    assert_eq!(q.stats().unwrap().oldest_undelivered_at, Some(T0));
    q.confirm_clock();
    let h = q.housekeeping().unwrap();
    assert_eq!((h.dated, h.expired), (1, 0), "{h:?}");
    let r = q.get("slow").unwrap();
    assert_eq!((r.stage, r.aged_from), (Stage::Queued, Some(T0)), "dated 2 h back by the boot clock");
    // The fleet's "oldest job waiting" says when it was really captured, not 30 days ago.
    assert_eq!(q.stats().unwrap().oldest_undelivered_at, Some(T0));
    // Once Smile ID has it, it waits for a result (KioskResultsWaiting), no longer to be sent.
    let mut r = q.get("slow").unwrap();
    let p = Progress { prep_attempted: true, put_attempted: true, uploaded: true, smile_job_id: Some("7".into()) };
    q.apply(&mut r, Event::Progress(p)).unwrap();
    let s = q.stats().unwrap();
    assert_eq!((s.oldest_undelivered_at, s.oldest_awaiting_result_at), (None, Some(T0)), "{s:?}");
    // After a reboot nothing says how old an undated job is: its age counts from confirmation.
    drop(q);
    let q = clocked(d.path(), settings(), &clock);
    q.enqueue(&job("before-reboot", "m")).unwrap();
    assert_eq!(q.get("before-reboot").unwrap().aged_from, None, "captured on an unconfirmed clock");
    drop(q);
    clock.reboot();
    clock.jump(100 * DAY);
    let q = clocked(d.path(), settings(), &clock);
    q.confirm_clock();
    q.housekeeping().unwrap();
    let r = q.get("before-reboot").unwrap();
    assert_eq!((r.stage, r.aged_from), (Stage::Queued, Some(clock.wall_ms())));
}

#[test]
fn ranges_that_could_lose_data_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for (what, s) in [
        ("ttl_hours", QueueSettings { ttl_hours: 3_000_000_000_000, ..settings() }),
        ("result_retention_hours", QueueSettings { result_retention_hours: u64::MAX, ..settings() }),
        ("index_cache_bytes", QueueSettings { index_cache_bytes: 0, ..settings() }),
    ] {
        let e = Queue::open(d.path(), s).err().expect("refused").to_string();
        assert!(e.contains(what), "{what}: {e}");
    }
}

#[test]
fn a_second_owner_is_told_the_queue_is_busy_and_nothing_is_damaged() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    for i in 0..3 {
        q.enqueue(&job(&format!("b{i}"), "m")).unwrap();
    }
    for e in [Queue::open(d.path(), settings()).err(), Queue::open_read_only(d.path(), settings()).err()] {
        let e = e.expect("refused while the first owner holds it");
        assert!(matches!(e, QueueError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("kiosk-agent status"), "{e}");
    }
    let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().contains("damaged")), "{names:?}");
    q.enqueue(&job("b3", "m")).unwrap();
    let seqs: std::collections::HashSet<u64> = q.list().unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 4);
    drop(q);
    let q = Queue::open_read_only(d.path(), settings()).unwrap();
    assert_eq!(q.list().unwrap().len(), 4);
    assert!(matches!(q.enqueue(&job("x", "m")), Err(QueueError::ReadOnly(_))));
}

#[test]
fn a_read_only_open_creates_nothing() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("never-used");
    let e = Queue::open_read_only(&state, settings()).err().unwrap();
    assert!(matches!(e, QueueError::Missing { .. }), "{e}");
    assert!(!state.exists(), "no directory, keys or reserve made by a look");
}

#[test]
fn a_lost_index_never_lets_a_new_job_take_an_old_name() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 2] = [
        ("index deleted", |p| std::fs::remove_dir_all(p.join("index.sled")).unwrap()),
        ("random bytes over the db", |p| {
            let mut x = 0x9E37_79B9u32;
            let junk: Vec<u8> = (0..200_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            std::fs::write(p.join("index.sled/db"), junk).unwrap()
        }),
    ];
    for (what, damage) in damages {
        let d = tempfile::tempdir().unwrap();
        let q = Queue::open(d.path(), settings()).unwrap();
        let mut old = Vec::new();
        for i in 0..4 {
            old.push(q.enqueue(&job(&format!("old{i}"), "m")).unwrap());
        }
        drop(q);
        // The newest one is damaged too: quarantined files keep their names as well.
        let b = bundles(d.path());
        let mut bytes = std::fs::read(&b[3]).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&b[3], bytes).unwrap();
        damage(d.path());
        let q = Queue::open(d.path(), settings()).unwrap();
        let fresh = q.enqueue(&job("new", "m")).unwrap();
        assert!(old.iter().all(|r| r.seq < fresh.seq), "{what}: {} reused", fresh.seq);
        for r in &old[..3] {
            let mut rec = q.get(&r.job_id).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(q.load_job(&mut rec).unwrap().partner_params.job_id, r.job_id, "{what}");
        }
        assert_eq!(std::fs::read_dir(d.path().join("quarantine")).unwrap().count(), 1, "{what}");
    }
}

#[test]
fn a_bundle_is_never_replaced_by_another_job() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    let a = q.enqueue(&job("a", "m")).unwrap();
    // Something already holds the next name (a restored backup, a stray copy).
    let stray = d.path().join(format!("bundles/{:016}.kab", a.seq + 1));
    std::fs::write(&stray, b"not ours").unwrap();
    let b = q.enqueue(&job("b", "m")).unwrap();
    assert!(b.seq > a.seq + 1);
    assert_eq!(std::fs::read(&stray).unwrap(), b"not ours");
}

#[test]
fn keys_are_never_invented_over_queued_jobs() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("k1", "m")).unwrap();
    q.enqueue(&job("k2", "m")).unwrap();
    drop(q);
    let key = d.path().join("keys/bundle.key");
    let saved = d.path().join("bundle.key.saved");
    std::fs::rename(&key, &saved).unwrap();
    let before = bundles(d.path());
    let e = Queue::open(d.path(), settings()).err().expect("a missing key stops the open").to_string();
    assert!(e.contains("keys/bundle.key") && e.contains("restore"), "{e}");
    assert!(!key.exists(), "no new key was made over the jobs");
    // Another key of the right size is no better.
    std::fs::write(&key, [7u8; 32]).unwrap();
    let e = Queue::open(d.path(), settings()).err().expect("a different key stops the open").to_string();
    assert!(e.contains("not the bundle key"), "{e}");
    assert_eq!(bundles(d.path()), before, "nothing was quarantined or moved");
    std::fs::rename(&saved, &key).unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    assert!(q.report.quarantined.is_empty(), "{:?}", q.report);
    for id in ["k1", "k2"] {
        let mut r = q.get(id).unwrap();
        assert_eq!(r.stage, Stage::Queued);
        q.load_job(&mut r).unwrap();
    }
    // With nothing sealed any key will do, even after another was made meanwhile.
    let empty = tempfile::tempdir().unwrap();
    drop(Queue::open(empty.path(), settings()).unwrap());
    std::fs::write(empty.path().join("keys/bundle.key"), [9u8; 32]).unwrap();
    drop(Queue::open(empty.path(), settings()).expect("no sealed job: the key is simply taken"));
    // The device key likewise.
    drop(q);
    let dev = d.path().join("keys/device.key");
    std::fs::remove_file(&dev).unwrap();
    let e = Queue::open(d.path(), settings()).err().unwrap().to_string();
    assert!(e.contains("keys/device.key") && !dev.exists(), "{e}");
}

#[test]
fn quarantine_is_reversible() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("q1", "m")).unwrap();
    q.enqueue(&job("q2", "m")).unwrap();
    drop(q);
    let b = bundles(d.path());
    let (good1, good2) = (std::fs::read(&b[0]).unwrap(), std::fs::read(&b[1]).unwrap());
    for p in &b {
        let mut bytes = std::fs::read(p).unwrap();
        bytes[40] ^= 0x80;
        std::fs::write(p, bytes).unwrap();
    }
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.get("q1").unwrap().stage, Stage::Quarantined);
    let e = q.restore("q1").unwrap_err().to_string();
    assert!(e.contains("still does not check"), "{e}");
    // The good copy comes back (from a backup, or the cause fixed): restore by hand.
    let name = b[0].file_name().unwrap();
    std::fs::write(d.path().join("quarantine").join(name), &good1).unwrap();
    assert_eq!(q.restore("q1").unwrap().stage, Stage::Queued);
    let mut r = q.get("q1").unwrap();
    q.load_job(&mut r).unwrap();
    // ... or by itself at the next open.
    std::fs::write(d.path().join("quarantine").join(b[1].file_name().unwrap()), &good2).unwrap();
    drop(q);
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.report.restored, ["q2"], "{:?}", q.report);
    assert_eq!(q.get("q2").unwrap().stage, Stage::Queued);
}

#[test]
fn an_unreadable_bundle_is_left_alone_not_quarantined() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("r1", "m")).unwrap();
    drop(q);
    // A read error that is not damage (here EISDIR; EACCES and EIO take the same path).
    let b = bundles(d.path()).remove(0);
    let aside = d.path().join("aside.kab");
    std::fs::rename(&b, &aside).unwrap();
    std::fs::create_dir(&b).unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    assert!(q.report.quarantined.is_empty() && q.report.unreadable.len() == 1, "{:?}", q.report);
    let mut r = q.get("r1").unwrap();
    assert_eq!(r.stage, Stage::Queued);
    assert!(q.load_job(&mut r).is_err());
    assert_eq!(q.get("r1").unwrap().stage, Stage::Queued, "still queued after a failed read");
    drop(q);
    std::fs::remove_dir(&b).unwrap();
    std::fs::rename(&aside, &b).unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    let mut r = q.get("r1").unwrap();
    q.load_job(&mut r).unwrap();
}

#[test]
fn a_purge_during_an_upload_stays_purged_and_updates_do_not_overwrite_each_other() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("p1", "m")).unwrap();
    q.enqueue(&job("p2", "m")).unwrap();
    // The uplink holds a copy of p1; the operator purges it meanwhile.
    let mut stale = q.get("p1").unwrap();
    q.purge("p1").unwrap();
    let progress = Progress { prep_attempted: true, ..Default::default() };
    let e = q.apply(&mut stale, Event::Progress(progress.clone())).unwrap_err();
    assert!(matches!(e, QueueError::NotFound(_)), "{e}");
    assert!(q.get("p1").is_err() && q.list().unwrap().len() == 1, "the purge stands");
    // A retry (attempts reset) and the uplink's progress on an older copy both survive.
    let mut copy = q.get("p2").unwrap();
    q.apply(&mut copy.clone(), Event::AttemptFailed { error: "down".into(), backoff_ms: 60_000 }).unwrap();
    q.retry("p2").unwrap();
    q.apply(&mut copy, Event::Progress(progress.clone())).unwrap();
    let r = q.get("p2").unwrap();
    assert_eq!((r.attempts, r.progress, r.last_error.as_deref()), (0, progress, Some("down")));
    // A purged job's job_id names no new job, even after a restart: Smile ID may have that
    // job, and a 2215 for it must never be taken for our own (one person's photos sent into
    // another's job).
    let e = q.enqueue(&job("p1", "m")).unwrap_err();
    assert!(matches!(e, QueueError::Reused(_)), "{e}");
    drop(q);
    let q = Queue::open(d.path(), settings()).unwrap();
    assert!(matches!(q.check_new_job_id("p1"), Err(QueueError::Reused(_))));
    assert!(matches!(q.check_new_job_id("p2"), Err(QueueError::Duplicate(_))));
    q.check_new_job_id("p3").unwrap();
    // Nor after the index is lost (deleted, or too damaged to read) and rebuilt from the
    // bundles, which know nothing of p1; none of the ids is readable beside the index.
    type Loss = fn(&Path);
    let losses: [(&str, Loss); 2] = [
        ("index deleted", |p| std::fs::remove_dir_all(p.join("index.sled")).unwrap()),
        ("db overwritten", |p| std::fs::write(p.join("index.sled/db"), vec![0xA5u8; 70_000]).unwrap()),
    ];
    let mut q = q;
    for (what, lose) in losses {
        drop(q);
        lose(d.path());
        q = Queue::open(d.path(), settings()).unwrap();
        assert!(matches!(q.check_new_job_id("p1"), Err(QueueError::Reused(_))), "{what}: {:?}", q.report);
        assert!(matches!(q.check_new_job_id("p2"), Err(QueueError::Duplicate(_))), "{what}");
        q.check_new_job_id("p3").unwrap();
    }
    let used = std::fs::read(d.path().join("used_ids")).unwrap();
    assert!(!used.is_empty() && !used.windows(2).any(|w| w == b"p1"), "job_ids readable in used_ids");
}

#[test]
fn one_job_id_is_stored_once_even_when_raced() {
    let d = tempfile::tempdir().unwrap();
    let q = Arc::new(Queue::open(d.path(), settings()).unwrap());
    let oks: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6).map(|_| s.spawn(|| q.enqueue(&job("same", "m")).is_ok())).collect();
        hs.into_iter().map(|h| h.join().unwrap() as usize).sum()
    });
    assert_eq!(oks, 1);
    assert_eq!(q.list().unwrap().len(), 1);
    assert_eq!(bundles(d.path()).len(), 1, "the losers took their bundles back");
}

/// Two operators purging one job at the same moment: one purge is done, the other is told the
/// job is not there (both used to say it was purged).
#[test]
fn a_job_purged_twice_at_once_is_purged_once() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    for round in 0..5 {
        let id = format!("twice-{round}");
        q.enqueue(&job(&id, "m")).unwrap();
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| q.purge(&id))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(QueueError::NotFound(_)))), "{results:?}");
    }
    assert!(q.list().unwrap().is_empty());
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

/// A 4 MB disk (kept mounted while the first two live) and the state dir on it.
fn small_disk() -> (tempfile::TempDir, Tmpfs, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    let fs = Tmpfs::mount(&mnt, "4m");
    let state = mnt.join("state");
    (d, fs, mnt, state)
}

/// A queue's settings for [`small_disk`]: a 512 KB reserve.
fn small() -> QueueSettings {
    QueueSettings { reserve_bytes: 512 * 1024, ..settings() }
}

/// A card the kernel remounted read-only (after disk errors) is named as such, not sent to
/// owners and permissions; its jobs are all still there once it is writable again.
#[test]
fn a_read_only_state_file_system_is_said_to_be_read_only() {
    let (_d, _fs, mnt, state) = small_disk();
    let q = Queue::open(&state, small()).unwrap();
    q.enqueue(&job("ro-1", "m")).unwrap();
    drop(q);
    let remount = |how: &str| {
        assert!(Command::new("mount").args(["-o", &format!("remount,{how}")]).arg(&mnt).status().unwrap().success())
    };
    remount("ro");
    let e = Queue::open(&state, small()).err().map(|e| e.to_string()).unwrap_or_default();
    remount("rw");
    assert!(e.contains("read-only") && e.contains("dmesg") && !e.contains("owner and permissions"), "{e}");
    assert_eq!(Queue::open(&state, small()).unwrap().get("ro-1").unwrap().stage, Stage::Queued);
}

#[test]
fn a_full_disk_refuses_new_sessions_keeps_the_queue_and_recovers() {
    let (_d, _fs, mnt, state) = small_disk();
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
    // The margin refuses a new person before the disk is actually full; a person let start
    // before the disk filled into the margin has their job kept.
    drop(q);
    let q = Queue::open(&state, QueueSettings { min_free_bytes: 3 * 1024 * 1024, ..small() }).unwrap();
    let e = q.check_room(TYPICAL_JOB_BYTES).unwrap_err();
    assert!(e.to_string().contains("3 MB kept free") && e.to_string().contains("free on disk"), "{e}");
    q.enqueue(&big_job("margin")).unwrap();
}

/// On a disk filled to the last block (a power cut left the kiosk there), neither an operator's
/// look nor the service's open may tear the index: a look is refused saying why, the open
/// first releases the reserve, and every record (a finished job's too, which has no bundle to be
/// rebuilt from) is there afterwards.
#[test]
fn a_disk_full_to_the_last_block_loses_no_record_to_a_look_or_an_open() {
    let (_d, _fs, mnt, state) = small_disk();
    let q = Queue::open(&state, small()).unwrap();
    let mut done = q.enqueue(&job("finished", "m")).unwrap();
    q.apply(&mut done, Event::Final { success: Some(true), result: serde_json::json!({"ResultCode": "1020"}) })
        .unwrap();
    q.erase_images(&mut done).unwrap();
    q.enqueue(&job("waiting", "m")).unwrap();
    drop(q);
    // Every last block taken.
    let mut n = 0;
    while std::fs::write(mnt.join(format!("filler{n}")), vec![0u8; 64 * 1024]).is_ok() {
        n += 1;
    }
    while std::fs::write(mnt.join(format!("crumb{n}")), vec![0u8; 1024]).is_ok() {
        n += 1;
    }
    for _ in 0..3 {
        let e = Queue::open_read_only(&state, small()).err().expect("a look is refused on a full disk");
        assert!(matches!(e, QueueError::NoRoom { .. }) && e.to_string().contains("left alone"), "{e}");
    }
    let q = Queue::open(&state, small()).unwrap();
    assert!(q.report.reserve_released && !q.report.index_rebuilt, "{:?}", q.report);
    assert_eq!(q.get("finished").unwrap().stage, Stage::Erased);
    assert_eq!(q.get("waiting").unwrap().stage, Stage::Queued);
    drop(q);
    let look = Queue::open_read_only(&state, small()).unwrap();
    assert_eq!(look.list().unwrap().len(), 2);
}

#[test]
fn sleds_own_lock_held_elsewhere_is_busy_not_damage() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("l1", "m")).unwrap();
    drop(q);
    // Another process takes sled's lock but not ours (an agent from before the state-dir lock).
    let mut other = Command::new("flock")
        .arg("-o") // the lock stays with flock(1) itself, so killing it frees the lock
        .arg(d.path().join("index.sled/db"))
        .args(["sleep", "30"])
        .spawn()
        .expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t = std::time::Instant::now();
    let e = Queue::open(d.path(), settings()).err().expect("refused");
    assert!(matches!(e, QueueError::Busy { .. }), "{e}");
    assert!(t.elapsed().as_secs() < 5, "another process's lock is not waited out");
    other.kill().unwrap();
    other.wait().unwrap();
    let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().contains("damaged")), "{names:?}");
    assert_eq!(Queue::open(d.path(), settings()).unwrap().get("l1").unwrap().stage, Stage::Queued);
}

#[test]
fn a_purged_or_finished_job_never_comes_back_from_a_stray_copy() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("gone", "m")).unwrap();
    let b = bundles(d.path()).remove(0);
    // A copy left in quarantine/ (a crash inside a move), then the job is purged.
    std::fs::copy(&b, d.path().join("quarantine").join(b.file_name().unwrap())).unwrap();
    q.purge("gone").unwrap();
    // And a stray copy of some job with no record at all.
    q.enqueue(&job("other", "m")).unwrap();
    let o = bundles(d.path()).remove(0);
    let stray = d.path().join("quarantine").join(format!("{:016}.kab", 9_999));
    std::fs::copy(&o, &stray).unwrap();
    drop(q);
    let q = Queue::open(d.path(), settings()).unwrap();
    assert!(q.get("gone").is_err(), "a purge stands");
    assert_eq!(q.list().unwrap().len(), 1);
    assert!(q.report.restored.is_empty() && q.report.adopted == 0, "{:?}", q.report);
    assert_eq!(std::fs::read_dir(d.path().join("quarantine")).unwrap().count(), 1, "only the stray stays aside");
}

#[test]
fn a_quarantined_job_whose_good_bundle_is_back_in_place_is_restored() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("back", "m")).unwrap();
    drop(q);
    let b = bundles(d.path()).remove(0);
    let good = std::fs::read(&b).unwrap();
    let mut bad = good.clone();
    bad[50] ^= 4;
    std::fs::write(&b, bad).unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.get("back").unwrap().stage, Stage::Quarantined);
    drop(q);
    // The restore moved the file back and then the agent died before the record said so.
    std::fs::remove_file(d.path().join("quarantine").join(b.file_name().unwrap())).unwrap();
    std::fs::write(&b, &good).unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.get("back").unwrap().stage, Stage::Queued, "{:?}", q.report);
}

#[test]
fn keys_are_pinned_only_once_a_bundle_proves_them() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    q.enqueue(&job("u1", "m")).unwrap();
    drop(q);
    // A queue from before key checks, opened once with the wrong bundle key.
    std::fs::remove_file(d.path().join("keys.check")).unwrap();
    let key = d.path().join("keys/bundle.key");
    let right = std::fs::read(&key).unwrap();
    std::fs::write(&key, [3u8; 32]).unwrap();
    // The index is encrypted under the bundle key too: the wrong one stops the open, naming it.
    let e = Queue::open(d.path(), settings()).err().expect("the wrong key stops the open").to_string();
    assert!(e.contains("bundle.key") && e.contains("another bundle key"), "{e}");
    assert!(!d.path().join("keys.check").exists(), "the wrong key was not pinned");
    std::fs::write(&key, right).unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.get("u1").unwrap().stage, Stage::Queued, "{:?}", q.report);
    assert!(d.path().join("keys.check").exists());
}

#[test]
fn one_file_that_will_not_go_does_not_stop_housekeeping() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = QueueSettings { result_retention_hours: 1000, ttl_hours: 72, ..settings() };
    let q = clocked(d.path(), s, &clock);
    q.enqueue(&job("h1", "m")).unwrap();
    q.enqueue(&job("h2", "m")).unwrap();
    q.confirm_clock();
    q.housekeeping().unwrap();
    clock.advance(73 * HOUR);
    q.confirm_clock();
    assert_eq!(q.housekeeping().unwrap().expired, 2);
    // h1's bundle cannot be erased (here a directory stands in its place).
    let b = bundles(d.path()).remove(0);
    std::fs::remove_file(&b).unwrap();
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("x"), b"x").unwrap();
    clock.advance(169 * HOUR);
    q.confirm_clock();
    let h = q.housekeeping().unwrap();
    assert_eq!((h.erased, h.failures), (1, 1), "{h:?}");
}

#[test]
fn the_index_keeps_no_personal_data_and_none_in_clear() {
    let d = tempfile::tempdir().unwrap();
    let q = Queue::open(d.path(), settings()).unwrap();
    let mut j = job("MARKER-JOB-4b1f", "MARKER-NAME-5c1d");
    j.partner_params.user_id = "MARKER-USER-77e0".into();
    let mut rec = q.enqueue(&j).unwrap();
    let p = Progress { prep_attempted: true, put_attempted: true, uploaded: true, smile_job_id: Some("7".into()) };
    q.apply(&mut rec, Event::Progress(p)).unwrap();
    let result = serde_json::json!({
        "ResultCode": "1020", "ResultText": "Exact Match", "SmileJobID": "7",
        "FullName": "MARKER-NAME-5c1d", "IDNumber": "MARKER-IDNO-31aa", "DOB": "1990-01-01",
        "Photo": "MARKER-PHOTO",
        "PartnerParams": {"job_id": "MARKER-JOB-4b1f", "user_id": "MARKER-USER-77e0", "job_type": 4, "customer": "MARKER-NAME-5c1d"},
    });
    q.apply(&mut rec, Event::Final { success: Some(true), result }).unwrap();
    let kept = q.get("MARKER-JOB-4b1f").unwrap().result.unwrap();
    assert_eq!(kept["ResultCode"], "1020");
    for gone in ["FullName", "IDNumber", "DOB", "Photo"] {
        assert!(kept.get(gone).is_none(), "{gone} was kept: {kept}");
    }
    // Smile ID echoes every partner param: a host's own (a name) is not kept, the job's are.
    assert_eq!(
        kept["PartnerParams"],
        serde_json::json!({"job_id": "MARKER-JOB-4b1f", "user_id": "MARKER-USER-77e0", "job_type": 4})
    );
    drop(q);
    // Nothing personal on disk in clear: not in the index (sled's files), not in the bundles.
    // Nor the job_id, which a host may make of anything: the index finds jobs by its MAC.
    for marker in
        [&b"MARKER-NAME-5c1d"[..], b"MARKER-IDNO-31aa", b"MARKER-USER-77e0", b"Exact Match", b"MARKER-JOB-4b1f"]
    {
        let found = files_containing(d.path(), marker);
        assert!(found.is_empty(), "{} in clear in {found:?}", String::from_utf8_lossy(marker));
    }
    // Reopened with the key it reads back; without the key, the records are not readable.
    let q = Queue::open(d.path(), settings()).unwrap();
    assert_eq!(q.get("MARKER-JOB-4b1f").unwrap().result.unwrap()["ResultText"], "Exact Match");
}

#[test]
fn a_key_named_as_a_credential_is_never_made_by_the_agent() {
    let d = tempfile::tempdir().unwrap();
    let s = QueueSettings { device_key_file: "device_key".into(), ..settings() };
    let e = Queue::open(d.path(), s).err().expect("no key, no queue").to_string();
    assert!(e.contains("systemd credential") && e.contains("/etc/kiosk-agent/keys"), "{e}");
    assert!(!d.path().join("device_key").exists() && !d.path().join("keys/device.key").exists());
}

#[test]
fn a_state_dir_that_cannot_be_made_says_to_name_another() {
    // /proc takes no new directories, whoever asks: owner or mode advice would be wrong.
    let e = Queue::open(Path::new("/proc/kiosk-agent-test/state"), settings()).err().expect("refused");
    assert!(matches!(e, QueueError::Uncreatable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("name as state_dir") && !msg.contains("owner"), "{msg}");
}

/// Keys in the state dir are told from keys outside it by where they really are: through a
/// symlink into it, or a ".." out of it.
#[test]
fn keys_beside_the_data_are_found_where_they_really_are() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    std::fs::create_dir_all(state.join("keys")).unwrap();
    std::fs::create_dir_all(d.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(state.join("keys"), d.path().join("link")).unwrap();
    let with = |bundle: std::path::PathBuf, device: &str| QueueSettings {
        encryption_key_file: Some(bundle),
        device_key_file: device.into(),
        ..QueueSettings::default()
    };
    let beside = |s: &QueueSettings| kiosk_agent::queue::keys_beside_data(&state, s).len();
    assert_eq!(beside(&QueueSettings::default()), 2, "keys/bundle.key and keys/device.key, made in the state dir");
    assert_eq!(beside(&with("../outside/bundle.key".into(), "bundle_key")), 0, "outside, and a credential name");
    assert_eq!(beside(&with(d.path().join("link/bundle.key"), "device_key")), 1, "through a symlink, inside");
}

/// sled fails every write after one that failed for a full disk, even once there is room again
/// (it was found so: every later session lost, health green). The queue notes it: the state
/// dir is then unwritable for its stats (health, sessions refused), and opening it again mends
/// it with every job there.
#[test]
fn an_index_write_failed_on_a_full_disk_is_noted_and_a_reopening_mends_it() {
    let (_d, _fs, mnt, state) = small_disk();
    let q = Queue::open(&state, small()).unwrap();
    q.enqueue(&job("full-1", "m")).unwrap();
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![1u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
    }
    assert!(!q.index_failed());
    let failed = (0..5000).find_map(|i| q.retire(&format!("retired-{i}-{}", "x".repeat(100))).err());
    assert!(failed.is_some_and(|e| e.to_string().contains("No space left")), "the disk never filled");
    assert!(q.index_failed());
    std::fs::remove_file(&filler).unwrap();
    // Room again, and sled still fails: only reopening mends it. Meanwhile no session starts.
    assert!(q.retire("after-space").is_err(), "sled mended itself: the restart is no longer needed");
    let why = q.stats().unwrap().unwritable.unwrap_or_default();
    assert!(why.contains("index failed writing"), "{why}");
    assert!(matches!(q.check_room(1024), Err(QueueError::Unwritable(_))));
    drop(q);
    let q = Queue::open(&state, small()).unwrap();
    assert!(!q.index_failed() && q.stats().unwrap().unwritable.is_none());
    q.retire("after-reopening").unwrap();
    assert_eq!(q.get("full-1").unwrap().stage, Stage::Queued);
    q.enqueue(&job("full-2", "m")).unwrap();
}
