//! `kiosk-agent demo`: one Biometric KYC job end to end on embedded defaults. A sandbox on a
//! free loopback port, the synthetic camera, screens as PNGs, the durable queue, a verified
//! TLS upload, and the job_status whose signature the client checked.

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;

use crate::camera::synthetic::SyntheticCamera;
use crate::display::png::PngDisplay;
use crate::display::screens::{Link, Start};
use crate::display::{Display, Screen};
use crate::queue::{Queue, QueueSettings};
use crate::sandbox::{self, SandboxOptions};
use crate::session::{self, CaptureSettings, ScriptedInput, SessionRequest};
use crate::smileid::job::{IdInfo, JobOptions, JobType};
use crate::smileid::signature::{ApiKey, LocalKeySigner};
use crate::smileid::submit::{Outcome, ResponseCheck, SubmitConfig};
use crate::uplink::drive::Event;
use crate::uplink::http::{HttpClient, Timeouts};
use crate::uplink::service::{Uplink, UplinkSettings};

const PARTNER_ID: &str = "085";

/// Runs the demo under `out` and returns the final job_status JSON.
pub fn run(out: &Path) -> Result<serde_json::Value> {
    for sub in ["screens", "state", "sandbox"] {
        let p = out.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("clearing the previous demo's {}", p.display()))?;
        }
    }
    // A throwaway key: the demo never needs or prints a real one.
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let key = ApiKey::new(base64::engine::general_purpose::STANDARD.encode(raw));

    let sb = sandbox::start(SandboxOptions {
        listen: "127.0.0.1:0".parse()?,
        partner_id: PARTNER_ID.into(),
        api_key: key.clone(),
        state_dir: out.join("sandbox"),
        timestamp_window_secs: 300,
        upload_url_ttl_secs: 900,
        latency_ms: 0,
        clock_offset_secs: 0,
        auth_token: None,
    })?;
    eprintln!("sandbox: serving {} (CA {})", sb.base_url, sb.ca_pem_path.display());

    let mut display = PngDisplay::new(out.join("screens"), 480, 320)?;
    let queue = Queue::open(&out.join("state"), QueueSettings::default())?;
    display.show(&Screen::Idle { link: Link::Online, start: Start::Staff { languages: false } })?;

    let req = SessionRequest {
        owner: None,
        partner_name: "Demo Bank".into(),
        user_id: "demo-user-0001".into(),
        job_id: session::new_job_id(),
        job_type: JobType::BiometricKyc,
        id_info: IdInfo {
            first_name: Some("Ada".into()),
            last_name: Some("Obi".into()),
            country: Some("NG".into()),
            id_type: Some("NIN_V2".into()),
            id_number: Some("00000000000".into()),
            dob: Some("1990-01-01".into()),
            entered: Some(true),
            ..Default::default()
        },
        options: JobOptions::default(),
        extra: Default::default(),
        document_back: false,
        texts: None,
    };
    let mut cam = SyntheticCamera::with_default_face();
    let job = session::run(&req, &mut cam, &mut display, &mut ScriptedInput::accepting(), &CaptureSettings::default())?;
    let bytes: usize = job.images.iter().map(|i| i.jpeg.len()).sum();
    eprintln!("session: captured {} images ({} KB) for job {}", job.images.len(), bytes / 1024, req.job_id);

    let rec = queue.enqueue(&job)?;
    eprintln!("queue: job {} stored durably as #{} before any network call", rec.job_id, rec.seq);
    // Online, the upload follows at once: no "you are done" before "please wait" (the kiosk's
    // own service, which does not wait for the result, ends on "Saved").

    let http = HttpClient::new(Some(&sb.ca_pem_path), &Timeouts::default())?;
    let signer = LocalKeySigner { partner_id: PARTNER_ID.into(), key: key.clone() };
    let signer: &dyn crate::smileid::signature::Signer = &signer;
    let cfg = SubmitConfig::new(PARTNER_ID, &sb.base_url, ResponseCheck::Key(key));
    display.show(&Screen::Uploading)?;
    let mut uplink = Uplink::new(&queue, &http, signer, cfg, UplinkSettings::default());
    let drained = uplink.pass(|r, ev| match ev {
        Event::Sent { what } => eprintln!("uplink: {} -> {what}", r.job_id),
        Event::Retrying { error, after, .. } => eprintln!("uplink: {} retry in {after:?}: {error}", r.job_id),
    })?;
    let Some(d) = drained.into_iter().find(|d| d.record.job_id == rec.job_id) else {
        bail!("the demo job was not drained")
    };
    let status = match d.outcome {
        Ok(Outcome::Completed(status)) => status,
        other => bail!("the demo job did not complete: {other:?}"),
    };
    display.show(&Screen::Result { success: status.job_success })?;
    eprintln!("job_status: signature verified; {} screens in {}", display.written.len(), out.join("screens").display());
    sb.stop();
    Ok(serde_json::to_value(&status)?)
}
