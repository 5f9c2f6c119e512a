//! One image job's trip through Smile ID, as a sans-IO state machine.
//!
//! The machine never touches a socket, a clock or a key. The caller asks it what to do next
//! ([`Submission::poll_output`]), does that (signs with whatever key custody is configured,
//! sends the HTTP request, waits), and feeds the result back. Every request is signed just
//! before it is sent; no signature is ever reused.
//!
//! # States
//!
//! * `Prep`: a prep_upload (`POST /v1/upload`) must be signed and sent.
//! * `PrepSent`: waiting for the prep_upload answer.
//! * `Probe`: after a PUT that got no answer (or a 5xx), or a restart that may have cut one
//!   off, or a 2215 ("job already exists") after a prep whose answer was lost, a job_status
//!   asks whether the zip arrived (Smile ID answers code 2314, "no zip file received", when it
//!   did not) and, after the 2215, whether the job is this user's at all: a zip is never
//!   uploaded twice, nor into another job.
//! * `ProbeSent`: waiting for that answer.
//! * `Upload`: the zip (built now, from the prep answer) must be PUT to the upload URL.
//! * `UploadSent`: waiting for the PUT answer.
//! * `Poll`: a job_status must be signed and sent, not before a given time.
//! * `PollSent`: waiting for the job_status answer (its signature is checked).
//! * `Done`: an [`Outcome`]: completed, submitted without polling, polling exhausted, or failed.
//!
//! ```text
//!          sign                200                 sign, 200 not complete
//!  Prep ─────────▶ PrepSent ─────────▶ Upload ──▶ UploadSent ──▶ Poll ⇄ PollSent ──▶ Done
//!   ▲  ▲              │ 2205 once: re-sign          │ expired/2314     complete │ max polls
//!   │  └──────────────┘                             │                          ▼
//!   └───────────────────────────────────────────────┘            Done(Completed | PollingExhausted)
//!   ▲                        zip arrived
//!   └── 2314 ── ProbeSent ◀── Probe ─────────────▶ Poll      (resume after an interrupted PUT)
//!   (after a 2215,  │          ▲
//!    retry=true)    │          └── PrepSent: 2215 after a prep whose answer was lost
//!                   └── no such job for this user after a 2215 ─▶ Done(Failed)
//!  any state ─ final code ─▶ Done(Failed);  transient error ─▶ back to the step's ready state,
//!  except after a PUT (no answer or a 5xx): the zip may have landed, so ─▶ Probe
//! ```
//!
//! ```
//! use kiosk_agent::smileid::submit::*;
//! use kiosk_agent::smileid::signature::{sign_at, signature_for, ApiKey};
//! use kiosk_agent::smileid::timestamp::UnixMillis;
//! use kiosk_agent::smileid::job::*;
//!
//! let key = ApiKey::new("sandbox-key");
//! let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xD9];
//! let job = Job {
//!     partner_params: PartnerParams { user_id: "u".into(), job_id: "j".into(), job_type: JobType::SmartSelfieEnrollment, extra: Default::default() },
//!     id_info: IdInfo::default(),
//!     options: JobOptions::default(),
//!     images: vec![JobImage { image_type: ImageType::SelfieFile, file_name: "selfie.jpg".into(), jpeg }],
//!     consent: None,
//!     metadata: vec![],
//! };
//! let cfg = SubmitConfig::new("085", "https://sandbox.test/v1", ResponseCheck::Key(key.clone()));
//! let mut s = Submission::new(job, cfg).unwrap();
//! let mut now = UnixMillis(1_700_000_000_000);
//!
//! assert_eq!(s.phase(), Phase::Prep);
//! assert!(matches!(s.poll_output(now), Output::NeedSignature));
//! s.provide_signature(sign_at(&key, "085", now));
//! let Output::Send(req) = s.poll_output(now) else { panic!() };
//! assert_eq!(req.url, "https://sandbox.test/v1/upload");
//! assert_eq!(s.phase(), Phase::PrepSent);
//!
//! let prep = br#"{"upload_url":"https://sandbox.test/up/1?Expires=9","ref_id":"r","smile_job_id":"0000000001","camera_config":"null","code":"2202"}"#;
//! s.handle_response(HttpResponse::new(200, prep.to_vec()), now).unwrap();
//! assert_eq!(s.phase(), Phase::Upload);
//! let Output::Send(put) = s.poll_output(now) else { panic!() };
//! assert_eq!((put.method, put.url.as_str(), put.content_type), (Method::Put, "https://sandbox.test/up/1?Expires=9", "application/zip"));
//! assert_eq!(s.phase(), Phase::UploadSent);
//!
//! s.handle_response(HttpResponse::new(200, vec![]), now).unwrap();
//! assert_eq!(s.phase(), Phase::Poll);
//! assert!(matches!(s.poll_output(now), Output::NeedSignature));
//! s.provide_signature(sign_at(&key, "085", now));
//! assert!(matches!(s.poll_output(now), Output::Send(_)));
//! assert_eq!(s.phase(), Phase::PollSent);
//!
//! now = now.plus(std::time::Duration::from_secs(1));
//! let ts = now.to_iso();
//! let body = format!(r#"{{"timestamp":"{ts}","signature":"{}","job_complete":true,"job_success":true,"code":"2302","result":{{"ResultCode":"0810"}}}}"#,
//!                    signature_for(&key, "085", &ts));
//! s.handle_response(HttpResponse::new(200, body.into_bytes()), now).unwrap();
//! assert_eq!(s.phase(), Phase::Done);
//! let Output::Done(Outcome::Completed(status)) = s.poll_output(now) else { panic!() };
//! assert_eq!(status.result_code(), Some("0810"));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::job::Job;
use super::package::{build_zip, info_json, PackageError};
use super::signature::{verify, ApiKey, Signed};
use super::timestamp::UnixMillis;
use super::validate::{validate, ValidationError};
use super::wire::{ApiError, JobStatusRequest, JobStatusResponse, PrepUploadRequest, PrepUploadResponse, RetryClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// A request for the edge to send, exactly as given (the PUT URL is never re-encoded).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What came back; `date` is the HTTP `Date` header, kept for clock checks.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub date: Option<String>,
}

impl HttpResponse {
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        HttpResponse { status, body, date: None }
    }
}

/// How job_status answers are authenticated.
#[derive(Debug, Clone)]
pub enum ResponseCheck {
    /// Recompute the HMAC with the partner's key (the key is on the device).
    Key(ApiKey),
    /// The key is not on the device (partner signer); only TLS vouches for the answer.
    TlsOnly,
}

/// Fixed parameters of a submission.
#[derive(Debug, Clone)]
pub struct SubmitConfig {
    pub partner_id: String,
    /// e.g. `https://testapi.smileidentity.com/v1`, without a trailing slash.
    pub base_url: String,
    pub response_check: ResponseCheck,
    /// Delay before each job_status poll; the last entry repeats until `max_polls`.
    pub poll_delays: Vec<Duration>,
    pub max_polls: u32,
}

impl SubmitConfig {
    pub fn new(partner_id: &str, base_url: &str, response_check: ResponseCheck) -> Self {
        SubmitConfig {
            partner_id: partner_id.into(),
            base_url: base_url.trim_end_matches('/').into(),
            response_check,
            // First poll right after the PUT (as JS does), then back off to 4 s.
            poll_delays: [0, 1000, 2000, 2000, 4000].iter().map(|ms| Duration::from_millis(*ms)).collect(),
            max_polls: 20,
        }
    }
}

/// The externally visible state (see the module doc for the graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Probe,
    ProbeSent,
    Prep,
    PrepSent,
    Upload,
    UploadSent,
    Poll,
    PollSent,
    Done,
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Smile ID reported a final status (whose signature was checked, where the key is on the device).
    Completed(JobStatusResponse),
    /// Uploaded; the result goes to the callback only (`return_job_status` false).
    Submitted { smile_job_id: String },
    /// Uploaded, but no final status within the polling window (e.g. human review).
    PollingExhausted { smile_job_id: String, last: Option<JobStatusResponse> },
    /// Refused for good.
    Failed(ApiError),
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Sign at the current time and call [`Submission::provide_signature`].
    NeedSignature,
    /// Send this request and feed back the response (or [`Submission::handle_transport_error`]).
    Send(HttpRequest),
    /// Nothing to do before this time.
    Wait(UnixMillis),
    /// A request is in flight; feed back its response first.
    AwaitingResponse,
    Done(Outcome),
}

/// What must survive a restart so that the job is neither lost nor duplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// A prep_upload for this job_id may have reached Smile ID: a 2215 is then our own job.
    pub prep_attempted: bool,
    /// A PUT of the zip may have reached Smile ID: ask before uploading again.
    pub put_attempted: bool,
    /// The zip was accepted: only job_status remains.
    pub uploaded: bool,
    pub smile_job_id: Option<String>,
}

/// Why one step failed. [`SubmitError::class`] says whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("Smile ID sent an answer the agent cannot read ({what}): {detail}")]
    BadResponse { what: &'static str, detail: String },
    #[error("the job_status answer failed its signature check; it was not trusted (check the partner_id and API key, or a proxy altering traffic)")]
    BadSignature,
    #[error("the network failed before an answer came: {0}")]
    Transport(String),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("the submission was driven out of order: {0}")]
    Misuse(&'static str),
}

impl SubmitError {
    pub fn class(&self) -> RetryClass {
        match self {
            SubmitError::Api(e) => e.class,
            SubmitError::BadResponse { .. } | SubmitError::BadSignature | SubmitError::Transport(_) => {
                RetryClass::Transient
            }
            SubmitError::Package(_) | SubmitError::Misuse(_) => RetryClass::Final,
        }
    }
}

/// A page answering in Smile ID's place (a Wi-Fi login, a proxy): Smile ID was not reached, as
/// when the network fails, so the job waits with the link down rather than uploads paused.
fn not_reached(page: ApiError) -> SubmitError {
    SubmitError::Transport(page.message)
}

#[derive(Debug, Clone)]
enum Step {
    /// `upload`: the prep answer of a PUT cut off in this process, to PUT again if it did not land.
    Probe {
        upload: Option<Box<(PrepUploadResponse, Signed)>>,
    },
    Prep,
    Upload {
        prep: PrepUploadResponse,
        signed: Signed,
    },
    Poll {
        smile_job_id: String,
        polls: u32,
        not_before: UnixMillis,
        last: Option<JobStatusResponse>,
    },
    Done(Outcome),
}

/// One job's submission. See the module doc.
#[derive(Debug)]
pub struct Submission {
    job: Job,
    cfg: SubmitConfig,
    step: Step,
    in_flight: bool,
    signature: Option<Signed>,
    /// The signature of the prep_upload in flight: info.json carries the same pair.
    prep_signed: Option<Signed>,
    retry_flag: bool,
    /// Whether a prep_upload had been attempted before the one in flight: only then is a 2215 ours.
    attempted_before: bool,
    /// A 2215 that may be ours is being checked with a job_status before the retry.
    confirming_2215: bool,
    resigned: bool,
    progress: Progress,
}

impl Submission {
    /// A fresh job: validated here, so a bad job never reaches the network.
    pub fn new(job: Job, cfg: SubmitConfig) -> Result<Self, ValidationError> {
        Self::resume(job, cfg, Progress::default())
    }

    /// A job that may have been partly submitted before a restart.
    pub fn resume(job: Job, cfg: SubmitConfig, progress: Progress) -> Result<Self, ValidationError> {
        validate(&job)?;
        if !job.partner_params.job_type.has_images() {
            return Err(ValidationError {
                field: "partner_params.job_type".into(),
                problem: "job_type 5 is synchronous; use id_verification".into(),
            });
        }
        let step = match (&progress.uploaded, &progress.smile_job_id) {
            (true, Some(id)) if job.options.return_job_status => {
                Step::Poll { smile_job_id: id.clone(), polls: 0, not_before: UnixMillis(i64::MIN), last: None }
            }
            (true, Some(id)) => Step::Done(Outcome::Submitted { smile_job_id: id.clone() }),
            _ if progress.put_attempted => Step::Probe { upload: None },
            _ => Step::Prep,
        };
        Ok(Submission {
            job,
            cfg,
            step,
            in_flight: false,
            signature: None,
            prep_signed: None,
            retry_flag: false,
            attempted_before: false,
            confirming_2215: false,
            resigned: false,
            progress,
        })
    }

    pub fn job(&self) -> &Job {
        &self.job
    }

    /// What the next signature is for.
    pub fn sign_context(&self) -> crate::smileid::signature::SignContext<'_> {
        let pp = &self.job.partner_params;
        crate::smileid::signature::SignContext {
            job_type: pp.job_type.code(),
            job_id: &pp.job_id,
            user_id: &pp.user_id,
        }
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn phase(&self) -> Phase {
        match (&self.step, self.in_flight) {
            (Step::Probe { .. }, false) => Phase::Probe,
            (Step::Probe { .. }, true) => Phase::ProbeSent,
            (Step::Prep, false) => Phase::Prep,
            (Step::Prep, true) => Phase::PrepSent,
            (Step::Upload { .. }, false) => Phase::Upload,
            (Step::Upload { .. }, true) => Phase::UploadSent,
            (Step::Poll { .. }, false) => Phase::Poll,
            (Step::Poll { .. }, true) => Phase::PollSent,
            (Step::Done(_), _) => Phase::Done,
        }
    }

    /// A signature made just now, for the request that asked for it.
    pub fn provide_signature(&mut self, signed: Signed) {
        self.signature = Some(signed);
    }

    /// The next thing to do at `now`.
    pub fn poll_output(&mut self, now: UnixMillis) -> Output {
        if let Step::Done(o) = &self.step {
            return Output::Done(o.clone());
        }
        if self.in_flight {
            return Output::AwaitingResponse;
        }
        match &self.step {
            Step::Probe { .. } => {
                let Some(signed) = self.signature.take() else {
                    return Output::NeedSignature;
                };
                self.in_flight = true;
                Output::Send(self.post("/job_status", &self.status_request(signed)))
            }
            Step::Prep => {
                let Some(signed) = self.signature.take() else {
                    return Output::NeedSignature;
                };
                let body = PrepUploadRequest::new(&self.job, &self.cfg.partner_id, &signed, self.retry_flag);
                self.prep_signed = Some(signed);
                self.attempted_before = self.progress.prep_attempted;
                // Persist-worthy before the bytes leave: from here a 2215 is our own job.
                self.progress.prep_attempted = true;
                self.in_flight = true;
                Output::Send(self.post("/upload", &body))
            }
            Step::Upload { prep, signed } => {
                let info = info_json(&self.job, &self.cfg.partner_id, signed, self.retry_flag, prep);
                match build_zip(&info, &self.job) {
                    Ok(zip) => {
                        self.progress.put_attempted = true;
                        self.in_flight = true;
                        Output::Send(HttpRequest {
                            method: Method::Put,
                            url: prep.upload_url.clone(),
                            content_type: "application/zip",
                            body: zip,
                        })
                    }
                    Err(e) => {
                        let failed =
                            ApiError { status: 0, code: None, message: e.to_string(), class: RetryClass::Final };
                        self.step = Step::Done(Outcome::Failed(failed.clone()));
                        Output::Done(Outcome::Failed(failed))
                    }
                }
            }
            Step::Poll { smile_job_id: _, not_before, .. } => {
                if now < *not_before {
                    return Output::Wait(*not_before);
                }
                let Some(signed) = self.signature.take() else {
                    return Output::NeedSignature;
                };
                self.in_flight = true;
                Output::Send(self.post("/job_status", &self.status_request(signed)))
            }
            Step::Done(_) => unreachable!("handled above"),
        }
    }

    fn status_request(&self, signed: Signed) -> JobStatusRequest {
        let o = &self.job.options;
        JobStatusRequest {
            partner_id: self.cfg.partner_id.clone(),
            user_id: self.job.partner_params.user_id.clone(),
            job_id: self.job.partner_params.job_id.clone(),
            image_links: o.return_image_links,
            history: o.return_history,
            timestamp: signed.timestamp,
            signature: signed.signature,
        }
    }

    fn post<T: Serialize>(&self, path: &str, body: &T) -> HttpRequest {
        HttpRequest {
            method: Method::Post,
            url: format!("{}{}", self.cfg.base_url, path),
            content_type: "application/json",
            body: serde_json::to_vec(body).expect("request bodies always serialize"),
        }
    }

    /// The request in flight got no answer (connect, TLS, reset, timeout). The step can be redone.
    /// A PUT cut off this way may still have landed, so the next step asks first (`Probe`).
    pub fn handle_transport_error(&mut self, detail: impl Into<String>) -> SubmitError {
        if self.in_flight {
            self.step = match std::mem::replace(&mut self.step, Step::Prep) {
                Step::Upload { prep, signed } => Step::Probe { upload: Some(Box::new((prep, signed))) },
                other => other,
            };
        }
        self.in_flight = false;
        SubmitError::Transport(detail.into())
    }

    /// Feeds back the answer to the request in flight. `Ok` means the machine moved on (or
    /// recovered by itself, e.g. re-preparing with `retry: true`); `Err` means this attempt
    /// failed: on a final class the machine is `Done(Failed)`, otherwise it can be redone later.
    pub fn handle_response(&mut self, resp: HttpResponse, now: UnixMillis) -> Result<(), SubmitError> {
        if !self.in_flight {
            return Err(SubmitError::Misuse("a response came with no request in flight"));
        }
        self.in_flight = false;
        // Smile ID's API was not reached: asked again from the same step. (Storage, which takes
        // the zip, answers otherwise: see `Step::Upload`.)
        if !matches!(self.step, Step::Upload { .. }) {
            if let Some(page) = super::not_smile_ids(resp.status, &resp.body) {
                return Err(not_reached(page));
            }
        }
        let ok = (200..300).contains(&resp.status);
        match std::mem::replace(&mut self.step, Step::Prep) {
            Step::Probe { upload } => {
                // Not received: PUT again to the URL still held, or prepare anew after a restart.
                let not_received = match &upload {
                    Some(u) => Step::Upload { prep: u.0.clone(), signed: u.1.clone() },
                    None => Step::Prep,
                };
                if !ok {
                    let err = ApiError::from_response(resp.status, &resp.body);
                    // Smile ID has a job with this job_id (its 2215) but none for this job's
                    // user: somebody else's. A retry would put this person's photos in it.
                    if err.class == RetryClass::Final && std::mem::take(&mut self.confirming_2215) {
                        return self.fail(self.job_id_taken(err));
                    }
                    // Smile ID knows no such job (its code says so): it was never uploaded. A page
                    // without Smile ID's code (a wrong URL) says nothing about the job.
                    if err.class == RetryClass::Final {
                        self.step = not_received;
                        return Ok(());
                    }
                    self.step = Step::Probe { upload };
                    return Err(err.into());
                }
                let status = match self.read_status(&resp.body) {
                    Ok(s) => s,
                    Err(e) => {
                        self.step = Step::Probe { upload };
                        return Err(e);
                    }
                };
                if status.job_complete || status.code != "2314" {
                    // The interrupted PUT (or the zip of the prep that made the 2215) did
                    // arrive: never send the zip twice.
                    self.confirming_2215 = false;
                    self.progress.uploaded = true;
                    let smile_job_id = self.progress.smile_job_id.clone().unwrap_or_default();
                    self.step = if status.job_complete {
                        Step::Done(Outcome::Completed(status))
                    } else if self.job.options.return_job_status {
                        Step::Poll { smile_job_id, polls: 0, not_before: now.plus(self.delay(1)), last: Some(status) }
                    } else {
                        Step::Done(Outcome::Submitted { smile_job_id })
                    };
                } else {
                    // Our own job, prepared, with no zip yet: prepared again, flagged as a retry.
                    if std::mem::take(&mut self.confirming_2215) {
                        self.retry_flag = true;
                    }
                    self.step = not_received;
                }
                Ok(())
            }
            Step::Prep => {
                if !ok {
                    return self.prep_refused(ApiError::from_response(resp.status, &resp.body));
                }
                let prep: PrepUploadResponse = serde_json::from_slice(&resp.body)
                    .map_err(|e| SubmitError::BadResponse { what: "prep_upload", detail: e.to_string() })?;
                // The zip holds the person's face and ID data: it never goes in plaintext.
                if !prep.upload_url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
                    return Err(SubmitError::BadResponse {
                        what: "prep_upload",
                        detail: "upload_url is not an https:// URL; nothing was sent to it and the job stays queued"
                            .into(),
                    });
                }
                let signed = self.prep_signed.take().ok_or(SubmitError::Misuse("prep answer without a signed prep"))?;
                self.progress.smile_job_id = Some(prep.smile_job_id.clone());
                self.step = Step::Upload { prep, signed };
                Ok(())
            }
            Step::Upload { prep, signed } => {
                // Storage answers a PUT with an empty body (or its own XML); a web page is
                // something between (a Wi-Fi login, a proxy) that took the zip instead: asked
                // about before the zip is sent again, as a PUT with no answer is.
                if ok && super::wire::is_web_page(&resp.body) {
                    let desc = ApiError::from_response(resp.status, &resp.body).message;
                    self.step = Step::Probe { upload: Some(Box::new((prep, signed))) };
                    return Err(SubmitError::Transport(desc));
                }
                if ok {
                    self.progress.uploaded = true;
                    self.step = if self.job.options.return_job_status {
                        Step::Poll {
                            smile_job_id: prep.smile_job_id,
                            polls: 0,
                            not_before: now.plus(self.cfg.poll_delays[0]),
                            last: None,
                        }
                    } else {
                        Step::Done(Outcome::Submitted { smile_job_id: prep.smile_job_id })
                    };
                    return Ok(());
                }
                let err = ApiError::from_response(resp.status, &resp.body);
                // S3 answers an expired presigned URL with 403; the sandbox adds code 2314-style JSON.
                if err.class == RetryClass::NewUploadUrl || resp.status == 403 {
                    self.retry_flag = true;
                    self.step = Step::Prep;
                    return Err(SubmitError::Api(ApiError { class: RetryClass::NewUploadUrl, ..err }));
                }
                if matches!(err.class, RetryClass::Transient | RetryClass::Misdirected) {
                    // A 5xx from a proxy says nothing about whether the zip reached storage.
                    self.step = Step::Probe { upload: Some(Box::new((prep, signed))) };
                    return Err(err.into());
                }
                self.fail(err)
            }
            Step::Poll { smile_job_id, polls, last, .. } => {
                if !ok {
                    let err = ApiError::from_response(resp.status, &resp.body);
                    if err.class == RetryClass::Final {
                        return self.fail(err);
                    }
                    self.step = Step::Poll { smile_job_id, polls, not_before: now.plus(self.delay(polls + 1)), last };
                    return Err(err.into());
                }
                let status = match self.read_status(&resp.body) {
                    Ok(s) => s,
                    Err(e) => {
                        self.step =
                            Step::Poll { smile_job_id, polls, not_before: now.plus(self.delay(polls + 1)), last };
                        return Err(e);
                    }
                };
                let polls = polls + 1;
                self.step = if status.job_complete {
                    Step::Done(Outcome::Completed(status))
                } else if polls >= self.cfg.max_polls {
                    Step::Done(Outcome::PollingExhausted { smile_job_id, last: Some(status) })
                } else {
                    Step::Poll { smile_job_id, polls, not_before: now.plus(self.delay(polls)), last: Some(status) }
                };
                Ok(())
            }
            Step::Done(o) => {
                self.step = Step::Done(o);
                Err(SubmitError::Misuse("the submission is already done"))
            }
        }
    }

    fn delay(&self, polls: u32) -> Duration {
        let d = &self.cfg.poll_delays;
        d[(polls as usize).min(d.len() - 1)]
    }

    fn read_status(&self, body: &[u8]) -> Result<JobStatusResponse, SubmitError> {
        let status: JobStatusResponse = serde_json::from_slice(body)
            .map_err(|e| SubmitError::BadResponse { what: "job_status", detail: e.to_string() })?;
        if let ResponseCheck::Key(key) = &self.cfg.response_check {
            if !verify(key, &self.cfg.partner_id, &status.timestamp, &status.signature) {
                return Err(SubmitError::BadSignature);
            }
        }
        Ok(status)
    }

    fn prep_refused(&mut self, err: ApiError) -> Result<(), SubmitError> {
        self.prep_signed = None;
        // Smile ID answered with its code: this prep made no job. Only an earlier prep whose
        // answer was lost can make a 2215 ours; one that was itself refused (a job_id Smile ID
        // already had) must not, or a retry sends this person's photos into that job.
        if err.code.is_some() {
            self.progress.prep_attempted = self.attempted_before;
        }
        match err.class {
            // Our own earlier prep may have reached Smile ID. Whether it did, and whether its zip
            // too, job_status says for this job's user (a job_id another user's job has, or a
            // queue restored from an older copy, must not get these photos again): then the
            // same job_id again, flagged as a retry, or the answer.
            RetryClass::RetryFlag if !self.retry_flag && self.attempted_before => {
                self.confirming_2215 = true;
                self.step = Step::Probe { upload: None };
                Ok(())
            }
            // On a first prep, the job_id was never ours.
            RetryClass::RetryFlag if !self.attempted_before => {
                let e = self.job_id_taken(err);
                self.fail(e)
            }
            RetryClass::Resign if !self.resigned => {
                self.resigned = true;
                Err(err.into())
            }
            // Refused twice with fresh signatures, or a type error: the key, environment or
            // clock is wrong. Every job would fail the same way, so the job stays as it is and
            // the caller pauses instead of failing it.
            RetryClass::Resign | RetryClass::AuthPause => Err(ApiError { class: RetryClass::AuthPause, ..err }.into()),
            RetryClass::Transient | RetryClass::Misdirected => Err(err.into()),
            _ => self.fail(err),
        }
    }

    /// Smile ID has this job_id for another job: said so, with what to do (a retry cannot help).
    fn job_id_taken(&self, err: ApiError) -> ApiError {
        let id = &self.job.partner_params.job_id;
        ApiError {
            message: format!(
                "job_id {id} is another job's at Smile ID already (it answered 2215 to the prep, and has no such job for this job's user_id): nothing of this job was sent; capture it again, for a new job_id (a host application that chooses job_ids must not reuse them)"
            ),
            class: RetryClass::Final,
            ..err
        }
    }

    fn fail(&mut self, err: ApiError) -> Result<(), SubmitError> {
        self.step = Step::Done(Outcome::Failed(err.clone()));
        Err(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smileid::job::*;
    use crate::smileid::signature::{sign_at, signature_for};

    const PREP: &[u8] = br#"{"upload_url":"https://s.test/up?Expires=1","ref_id":"r","smile_job_id":"0000000007","camera_config":"null","code":"2202"}"#;

    /// A minimal valid SmartSelfie job, shared by the test modules of this file.
    pub(super) fn job() -> Job {
        Job {
            partner_params: PartnerParams {
                user_id: "u".into(),
                job_id: "j".into(),
                job_type: JobType::SmartSelfieAuthentication,
                extra: Default::default(),
            },
            id_info: IdInfo::default(),
            options: JobOptions::default(),
            images: vec![JobImage {
                image_type: ImageType::SelfieFile,
                file_name: "selfie.jpg".into(),
                jpeg: vec![0xFF, 0xD8, 0xFF, 0xD9],
            }],
            consent: None,
            metadata: vec![],
        }
    }

    fn key() -> ApiKey {
        ApiKey::new("k")
    }

    fn machine() -> Submission {
        Submission::new(job(), SubmitConfig::new("085", "https://s.test/v1", ResponseCheck::Key(key()))).unwrap()
    }

    fn send(s: &mut Submission, now: UnixMillis) -> HttpRequest {
        let mut out = s.poll_output(now);
        if out == Output::NeedSignature {
            s.provide_signature(sign_at(&key(), "085", now));
            out = s.poll_output(now);
        }
        match out {
            Output::Send(r) => r,
            o => panic!("expected a request, got {o:?}"),
        }
    }

    fn body(r: &HttpRequest) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn own_2215_reprepares_with_retry_flag_same_job_id() {
        let mut s = machine();
        let t = UnixMillis(1_000);
        // A 2215 on the very first prep is somebody else's job_id: final.
        let mut fresh = machine();
        send(&mut fresh, t);
        let e = fresh
            .handle_response(HttpResponse::new(400, br#"{"error":"Job already exists","code":"2215"}"#.to_vec()), t)
            .unwrap_err();
        assert_eq!(e.class(), RetryClass::Final);
        assert!(
            e.to_string().contains("job_id j is another job's") && e.to_string().contains("capture it again"),
            "{e}"
        );
        assert_eq!(fresh.phase(), Phase::Done);
        // ... and stays so when an operator retries the job: that prep made nothing of ours.
        assert!(!fresh.progress().prep_attempted);
        let cfg = SubmitConfig::new("085", "https://s.test/v1", ResponseCheck::Key(key()));
        let mut again = Submission::resume(job(), cfg, fresh.progress().clone()).unwrap();
        let req = send(&mut again, t);
        assert!(body(&req).get("retry").is_none());
        again
            .handle_response(HttpResponse::new(400, br#"{"error":"Job already exists","code":"2215"}"#.to_vec()), t)
            .unwrap_err();
        assert_eq!(again.phase(), Phase::Done, "no upload into the job Smile ID already had");
        // After a prep whose answer was lost, the 2215 may be ours: job_status says it is, with
        // no zip yet (2314).
        send(&mut s, t);
        s.handle_transport_error("connection reset");
        let first = send(&mut s, t);
        assert!(body(&first).get("retry").is_none());
        s.handle_response(HttpResponse::new(400, br#"{"error":"Job already exists","code":"2215"}"#.to_vec()), t)
            .unwrap();
        assert_eq!(s.phase(), Phase::Probe);
        let probe = send(&mut s, t);
        assert!(probe.url.ends_with("/job_status"), "{}", probe.url);
        s.handle_response(HttpResponse::new(200, status_body("2314", false)), t).unwrap();
        let second = send(&mut s, UnixMillis(2_000));
        assert_eq!(body(&second)["retry"], true);
        assert_eq!(body(&second)["partner_params"]["job_id"], "j");
        assert_ne!(body(&first)["signature"], body(&second)["signature"], "a signature is never reused");
        // A second 2215 even with retry set is final.
        let e = s.handle_response(HttpResponse::new(400, br#"{"error":"x","code":"2215"}"#.to_vec()), t).unwrap_err();
        assert_eq!(e.class(), RetryClass::RetryFlag);
        assert_eq!(s.phase(), Phase::Done);
    }

    /// A signed job_status answer with `code`.
    fn status_body(code: &str, complete: bool) -> Vec<u8> {
        let ts = "2024-01-01T00:00:00.000Z";
        format!(
            r#"{{"timestamp":"{ts}","signature":"{}","job_complete":{complete},"job_success":false,"code":"{code}"}}"#,
            signature_for(&key(), "085", ts)
        )
        .into_bytes()
    }

    /// A 2215 after a prep whose answer was lost is checked before anything is sent again: a
    /// job_id that another user's job has fails (no photos into that job), and a job whose zip
    /// Smile ID has already (a queue restored from an older copy) is polled, not uploaded again.
    #[test]
    fn a_2215_after_a_lost_prep_is_checked_before_the_retry() {
        let t = UnixMillis(1_000);
        let exists = || HttpResponse::new(400, br#"{"error":"Job already exists","code":"2215"}"#.to_vec());
        let after_lost_prep = || {
            let mut s = machine();
            send(&mut s, t);
            s.handle_transport_error("connection reset");
            send(&mut s, t);
            s.handle_response(exists(), t).unwrap();
            assert_eq!(s.phase(), Phase::Probe);
            let probe = send(&mut s, t);
            assert_eq!(body(&probe)["job_id"], "j");
            s
        };
        let mut theirs = after_lost_prep();
        let none = br#"{"error":"No job found for job_id j and user_id u","code":"2213"}"#;
        let e = theirs.handle_response(HttpResponse::new(404, none.to_vec()), t).unwrap_err();
        assert_eq!(theirs.phase(), Phase::Done);
        assert!(e.to_string().contains("another job's"), "{e}");
        assert!(!theirs.progress().put_attempted && !theirs.progress().uploaded);

        let mut landed = after_lost_prep();
        landed.handle_response(HttpResponse::new(200, status_body("2303", false)), t).unwrap();
        assert_eq!(landed.phase(), Phase::Poll, "the zip is there: polled, not sent again");
        assert!(landed.progress().uploaded);
        let poll = send(&mut landed, UnixMillis(i64::MAX / 2));
        assert!(poll.url.ends_with("/job_status"));

        let mut done = after_lost_prep();
        done.handle_response(HttpResponse::new(200, status_body("2302", true)), t).unwrap();
        assert!(matches!(done.poll_output(t), Output::Done(Outcome::Completed(_))));
    }

    #[test]
    fn expired_upload_url_means_new_prep_not_new_job() {
        let mut s = machine();
        let t = UnixMillis(5);
        send(&mut s, t);
        s.handle_response(HttpResponse::new(200, PREP.to_vec()), t).unwrap();
        send(&mut s, t);
        let e = s
            .handle_response(
                HttpResponse::new(
                    403,
                    b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>".to_vec(),
                ),
                t,
            )
            .unwrap_err();
        assert_eq!(e.class(), RetryClass::NewUploadUrl);
        assert_eq!(s.phase(), Phase::Prep);
        let again = send(&mut s, t);
        assert_eq!(body(&again)["retry"], true);
        assert_eq!(body(&again)["partner_params"]["job_id"], "j");
    }

    #[test]
    fn a_plaintext_upload_url_is_refused_and_nothing_is_sent_to_it() {
        let mut s = machine();
        let t = UnixMillis(5);
        send(&mut s, t);
        let plain = String::from_utf8(PREP.to_vec()).unwrap().replace("https://", "http://");
        let e = s.handle_response(HttpResponse::new(200, plain.into_bytes()), t).unwrap_err();
        assert!(e.to_string().contains("not an https:// URL"), "{e}");
        assert_eq!(s.phase(), Phase::Prep, "asks again instead of uploading");
        let again = send(&mut s, t);
        assert!(again.url.ends_with("/upload"), "{}", again.url);
    }

    #[test]
    fn transient_errors_leave_the_step_ready_to_redo() {
        let mut s = machine();
        let t = UnixMillis(5);
        send(&mut s, t);
        let e = s.handle_response(HttpResponse::new(503, b"busy".to_vec()), t).unwrap_err();
        assert_eq!(e.class(), RetryClass::Transient);
        assert_eq!(s.phase(), Phase::Prep);
        send(&mut s, t);
        s.handle_transport_error("reset");
        assert_eq!(s.phase(), Phase::Prep);
        assert!(s.progress().prep_attempted);
    }

    #[test]
    fn forged_job_status_is_not_trusted() {
        let mut s = machine();
        let t = UnixMillis(5);
        send(&mut s, t);
        s.handle_response(HttpResponse::new(200, PREP.to_vec()), t).unwrap();
        send(&mut s, t);
        s.handle_response(HttpResponse::new(200, vec![]), t).unwrap();
        send(&mut s, t);
        let forged =
            br#"{"timestamp":"2024-01-01T00:00:00.000Z","signature":"AAAA","job_complete":true,"job_success":true}"#;
        assert!(matches!(
            s.handle_response(HttpResponse::new(200, forged.to_vec()), t),
            Err(SubmitError::BadSignature)
        ));
        assert_eq!(s.phase(), Phase::Poll);
        // Pending answers schedule the next poll later, and the window is bounded.
        let ts = "2024-01-01T00:00:00.000Z";
        let pending = format!(
            r#"{{"timestamp":"{ts}","signature":"{}","job_complete":false,"job_success":false,"result":"pending"}}"#,
            signature_for(&key(), "085", ts)
        );
        let mut now = UnixMillis(10_000);
        for _ in 0..20 {
            match s.poll_output(now) {
                Output::Wait(until) => now = until,
                Output::Done(_) => break,
                _ => {}
            }
            send(&mut s, now);
            s.handle_response(HttpResponse::new(200, pending.clone().into_bytes()), now).unwrap();
        }
        assert!(matches!(s.poll_output(now), Output::Done(Outcome::PollingExhausted { .. })));
    }

    #[test]
    fn final_codes_fail_the_job_and_resume_skips_done_steps() {
        let mut s = machine();
        send(&mut s, UnixMillis(1));
        let e = s
            .handle_response(
                HttpResponse::new(400, br#"{"error":"Invalid job type","code":"2212"}"#.to_vec()),
                UnixMillis(1),
            )
            .unwrap_err();
        assert_eq!(e.class(), RetryClass::Final);
        assert!(matches!(s.poll_output(UnixMillis(1)), Output::Done(Outcome::Failed(_))));

        let p = Progress { prep_attempted: true, put_attempted: true, uploaded: true, smile_job_id: Some("7".into()) };
        let mut r = Submission::resume(job(), SubmitConfig::new("085", "https://s.test/v1", ResponseCheck::TlsOnly), p)
            .unwrap();
        assert_eq!(r.phase(), Phase::Poll);
        let req = send(&mut r, UnixMillis(1));
        assert!(req.url.ends_with("/job_status"));
    }
}

#[cfg(test)]
mod garbage {
    use super::*;
    use crate::smileid::signature::sign_at;

    /// Deterministic xorshift: reproducible mutations without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
        let mut b = base.to_vec();
        match rng.next() % 4 {
            0 => b.truncate((rng.next() as usize) % (b.len() + 1)),
            1 => {
                for _ in 0..1 + rng.next() % 8 {
                    if !b.is_empty() {
                        let i = rng.next() as usize % b.len();
                        b[i] = rng.next() as u8;
                    }
                }
            }
            2 => b = (0..rng.next() % 64).map(|_| rng.next() as u8).collect(),
            _ => b = br#"{"upload_url":5,"smile_job_id":null,"job_complete":"yes","error":[],"code":{}}"#.to_vec(),
        }
        b
    }

    #[test]
    fn garbage_answers_give_errors_never_panics() {
        let key = ApiKey::new("k");
        let prep = br#"{"upload_url":"https://s.test/up?Expires=1","ref_id":"r","smile_job_id":"1","camera_config":"null","code":"2202"}"#;
        let status =
            br#"{"timestamp":"t","signature":"s","job_complete":true,"job_success":true,"code":"2302","result":{}}"#;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..3000 {
            let job = super::tests::job();
            let mut s =
                Submission::new(job, SubmitConfig::new("1", "https://s.test/v1", ResponseCheck::Key(key.clone())))
                    .unwrap();
            let t = UnixMillis(round);
            for step in 0..6 {
                match s.poll_output(t) {
                    Output::NeedSignature => s.provide_signature(sign_at(&key, "1", t)),
                    Output::Send(_) => {
                        let base: &[u8] = if step < 2 { prep } else { status };
                        let code = [200u16, 200, 400, 403, 500][rng.next() as usize % 5];
                        let body = if rng.next() % 3 == 0 { base.to_vec() } else { mutate(&mut rng, base) };
                        if let Err(e) = s.handle_response(HttpResponse::new(code, body), t) {
                            assert!(!e.to_string().is_empty());
                        }
                    }
                    Output::Wait(_) | Output::AwaitingResponse | Output::Done(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod probe {
    use super::*;
    use crate::smileid::signature::{sign_at, signature_for};

    fn resumed() -> (Submission, ApiKey) {
        let key = ApiKey::new("k");
        let job = super::tests::job();
        let p = Progress { prep_attempted: true, put_attempted: true, uploaded: false, smile_job_id: Some("7".into()) };
        (
            Submission::resume(job, SubmitConfig::new("1", "https://s.test/v1", ResponseCheck::Key(key.clone())), p)
                .unwrap(),
            key,
        )
    }

    fn status(key: &ApiKey, complete: bool, code: &str) -> Vec<u8> {
        let ts = "2026-01-01T00:00:00.000Z";
        format!(
            r#"{{"timestamp":"{ts}","signature":"{}","job_complete":{complete},"job_success":false,"code":"{code}"}}"#,
            signature_for(key, "1", ts)
        )
        .into_bytes()
    }

    fn ask(s: &mut Submission, key: &ApiKey) -> HttpRequest {
        assert_eq!(s.phase(), Phase::Probe);
        assert_eq!(s.poll_output(UnixMillis(0)), Output::NeedSignature);
        s.provide_signature(sign_at(key, "1", UnixMillis(0)));
        let Output::Send(r) = s.poll_output(UnixMillis(0)) else { panic!() };
        r
    }

    #[test]
    fn an_interrupted_put_that_arrived_is_not_sent_again() {
        let (mut s, key) = resumed();
        assert!(ask(&mut s, &key).url.ends_with("/job_status"));
        s.handle_response(HttpResponse::new(200, status(&key, false, "2302")), UnixMillis(0)).unwrap();
        assert_eq!(s.phase(), Phase::Poll);
        assert!(s.progress().uploaded);
    }

    #[test]
    fn an_interrupted_put_that_did_not_arrive_is_prepared_again() {
        let (mut s, key) = resumed();
        ask(&mut s, &key);
        s.handle_response(HttpResponse::new(200, status(&key, false, "2314")), UnixMillis(0)).unwrap();
        assert_eq!(s.phase(), Phase::Prep);
        let (mut s, key) = resumed();
        ask(&mut s, &key);
        s.handle_response(HttpResponse::new(404, br#"{"error":"No job found","code":"2213"}"#.to_vec()), UnixMillis(0))
            .unwrap();
        assert_eq!(s.phase(), Phase::Prep);
        // Trouble reaching Smile ID keeps asking; it never guesses.
        let (mut s, key) = resumed();
        ask(&mut s, &key);
        assert!(s.handle_response(HttpResponse::new(502, vec![]), UnixMillis(0)).is_err());
        assert_eq!(s.phase(), Phase::Probe);
    }

    #[test]
    fn a_put_without_an_answer_is_asked_about_then_sent_again_to_the_same_url() {
        let key = ApiKey::new("k");
        let cfg = SubmitConfig::new("1", "https://s.test/v1", ResponseCheck::Key(key.clone()));
        let mut s = Submission::new(super::tests::job(), cfg).unwrap();
        assert_eq!(s.poll_output(UnixMillis(0)), Output::NeedSignature);
        s.provide_signature(sign_at(&key, "1", UnixMillis(0)));
        let Output::Send(_) = s.poll_output(UnixMillis(0)) else { panic!() };
        let prep = br#"{"upload_url":"https://up.test/1","ref_id":"r","smile_job_id":"7","code":"2202"}"#;
        s.handle_response(HttpResponse::new(200, prep.to_vec()), UnixMillis(0)).unwrap();
        for cut_off in [true, false] {
            let Output::Send(put) = s.poll_output(UnixMillis(0)) else { panic!() };
            assert_eq!(put.url, "https://up.test/1");
            if cut_off {
                s.handle_transport_error("connection reset");
            } else {
                assert!(s.handle_response(HttpResponse::new(502, vec![]), UnixMillis(0)).is_err());
            }
            assert!(ask(&mut s, &key).url.ends_with("/job_status"));
            s.handle_response(HttpResponse::new(200, status(&key, false, "2314")), UnixMillis(0)).unwrap();
            assert_eq!(s.phase(), Phase::Upload, "not received: the same URL, no new prep_upload");
        }
    }
}
