//! Server answers: whatever Smile ID (or a proxy in the way) sends back, the protocol core
//! turns it into a state change or an error, never a panic. The input is a series of answers
//! `[status byte][len: 2 bytes][body]`, fed to a submission in whatever phase it is in.
#![no_main]

use libfuzzer_sys::fuzz_target;

use kiosk_agent::smileid::job::*;
use kiosk_agent::smileid::signature::{sign_at, signature_for, ApiKey};
use kiosk_agent::smileid::submit::*;
use kiosk_agent::smileid::timestamp::{self, UnixMillis};
use kiosk_agent::smileid::wire::ApiError;

const STATUSES: [u16; 8] = [200, 201, 400, 401, 403, 404, 500, 503];

fuzz_target!(|data: &[u8]| {
    // The parsers on their own.
    let text = String::from_utf8_lossy(data);
    let _ = timestamp::parse(&text);
    let _ = timestamp::parse_http_date(&text);
    let _ = ApiError::from_response(400, data);
    let _ = kiosk_agent::smileid::id_verification_result(200, data);
    let _ = kiosk_agent::smileid::package::read_zip(data, 1 << 20);

    // A submission fed the answers in order. Answers that carry a valid signature of their
    // timestamp reach deeper: the marker `@SIG@` in a body is replaced by one.
    let key = ApiKey::new("fuzz-key");
    let job = Job {
        partner_params: PartnerParams {
            user_id: "u".into(),
            job_id: "j".into(),
            job_type: JobType::SmartSelfieEnrollment,
            extra: Default::default(),
        },
        id_info: IdInfo::default(),
        options: JobOptions::default(),
        images: vec![JobImage {
            image_type: ImageType::SelfieFile,
            file_name: "selfie.jpg".into(),
            jpeg: vec![0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xD9],
        }],
        consent: None,
        metadata: vec![],
    };
    let cfg = SubmitConfig::new("085", "https://sandbox.test/v1", ResponseCheck::Key(key.clone()));
    let Ok(mut sub) = Submission::new(job, cfg) else { return };
    let mut now = UnixMillis(1_700_000_000_000);
    let mut rest = data;
    for _ in 0..64 {
        match sub.poll_output(now) {
            Output::Done(_) => return,
            Output::NeedSignature => sub.provide_signature(sign_at(&key, "085", now)),
            Output::Wait(until) => now = until,
            Output::AwaitingResponse => return,
            Output::Send(_) => {
                if rest.len() < 3 {
                    sub.handle_transport_error("connection reset");
                    return;
                }
                let status = STATUSES[rest[0] as usize % STATUSES.len()];
                let len = (u16::from_le_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
                let body = String::from_utf8_lossy(&rest[3..3 + len])
                    .replace("@SIG@", &signature_for(&key, "085", "2023-11-14T22:13:20.000Z"));
                rest = &rest[3 + len..];
                let _ = sub.handle_response(HttpResponse::new(status, body.into_bytes()), now);
            }
        }
    }
});
