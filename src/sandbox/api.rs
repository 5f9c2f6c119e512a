//! The sandbox's v1 endpoints: the checks Smile ID makes, answered in its codes and message style.
//!
//! | check | answer |
//! |---|---|
//! | body not JSON | 400, 2203 |
//! | required field missing | 400, 2213 (the message names the field) |
//! | field of the wrong type | 400, 2204 |
//! | unknown partner, bad signature, timestamp unparseable or outside the window | 401, 2205 |
//! | job_type not 1, 2, 4, 6, 11 (upload) or 5 (id_verification) | 400, 2212 |
//! | job_id already prepared and `retry` not true | 400, 2215 |
//! | upload URL tampered with | 403, 2205 |
//! | upload URL past its `Expires` | 403, 2314 (prepare again) |
//! | zip unreadable, info.json invalid, an image not JPEG | 400, 2203 |
//! | info.json missing, a listed file missing, no selfie, no ID image for 6/11 | 400, 2213 |
//! | job_status for an unknown job | 404, 2213 |
//! | valid_documents (signed, no job: the agent's credentials check) | 200, a short list |
//! | a path it does not serve (a wrong base URL) | 404 without a Smile ID code |
//!
//! Faults for field tests are queued with [`Sandbox::inject`] (see [`Fault`]), and the clock
//! can jump with [`Sandbox::set_clock_offset`]; [`Sandbox::stats`] counts connections.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::httpd::{Handler, Request, Response, Wire};
use crate::smileid::job::{ImageType, JobType};
use crate::smileid::package::read_zip;
use crate::smileid::signature::{signature_for, verify, ApiKey};
use crate::smileid::timestamp::{self, UnixMillis};
use crate::smileid::validate::looks_like_jpeg;
use crate::store::{private_dir, write_private};

/// Sandbox settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub partner_id: String,
    pub api_key: ApiKey,
    pub state_dir: PathBuf,
    /// `https://host:port`, what upload URLs point back at.
    pub public_base: String,
    /// How far a request timestamp may be from the sandbox's clock.
    pub timestamp_window_secs: i64,
    pub upload_url_ttl_secs: i64,
    /// Added before every answer: a slow server for tests that must interrupt requests mid-way.
    pub latency_ms: u64,
    /// Shifts the sandbox's clock (its Date headers and timestamp checks), to test kiosks
    /// whose clock is wrong.
    pub clock_offset_secs: i64,
    /// The mobile-style auth_token `/v1/auth_smile` accepts (none: that endpoint refuses all).
    pub auth_token: Option<String>,
}

/// What the sandbox keeps per job (also written to `jobs/<id>/record.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub user_id: String,
    pub job_type: u8,
    pub smile_job_id: String,
    pub ref_id: String,
    /// prep_upload calls accepted for this job_id (a retry adds one).
    pub preps: u32,
    /// Zips accepted for this job_id: exactly one when a client behaves.
    pub uploads: u32,
    /// Whether the last zip's info.json carried the person's consent_information.
    #[serde(default)]
    pub consent_recorded: bool,
    /// The image_type_id of every image in the last zip, in info.json's order.
    #[serde(default)]
    pub image_types: Vec<u8>,
    pub result: Option<Value>,
    /// The partner's keys beyond user_id, job_id and job_type (kiosk_id...), as prep_upload sent them.
    #[serde(default)]
    pub partner_extras: serde_json::Map<String, Value>,
}

/// Which endpoint a queued fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /`, what a link probe reaches.
    Probe,
    PrepUpload,
    Upload,
    JobStatus,
    /// The agent's credentials check.
    ValidDocuments,
}

/// One misbehaviour, used by the next request to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a proxy's HTML page, without processing the request.
    Status(u16),
    /// Read half the zip, then drop the connection: the client sees a reset mid-PUT.
    ResetMidUpload,
    /// Process the request, then hold the answer this long and close without it.
    Stall { ms: u64 },
    /// Process the request, then send only half of the answer.
    Truncate,
    /// prep_upload hands out an upload URL that has already expired.
    ExpiredUrl,
    /// prep_upload hands out a plaintext `http://127.0.0.1:{port}` upload URL, as a hostile or
    /// broken server might.
    PlainUrl { port: u16 },
}

/// Connection counters, for measuring how well a client uses the link.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub connections: u64,
    /// TLS connections whose handshake resumed an earlier session.
    pub resumed: u64,
    pub requests: u64,
}

pub struct Sandbox {
    s: Settings,
    url_secret: [u8; 32],
    jobs: Mutex<HashMap<String, JobRecord>>,
    faults: Mutex<Vec<(Endpoint, Fault)>>,
    clock_offset_secs: AtomicI64,
    connections: AtomicU64,
    resumed: AtomicU64,
    requests: AtomicU64,
}

impl Handler for Sandbox {
    fn handle(&self, req: &Request) -> Response {
        Sandbox::handle(self, req)
    }

    fn cut_body(&self, req: &Request) -> Option<usize> {
        if req.method != "PUT" || self.take_fault(Endpoint::Upload, |f| f == Fault::ResetMidUpload).is_none() {
            return None;
        }
        let len: usize = req.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        Some(len / 2)
    }

    fn connected(&self, resumed: bool) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        if resumed {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
        // For harnesses that cannot ask over HTTP (the field tests read the connection counts
        // after the run); written per connection, not per request.
        let _ =
            std::fs::write(self.s.state_dir.join("stats.json"), serde_json::to_vec(&self.stats()).unwrap_or_default());
    }
}

type Reply = Result<Response, Response>;

fn reject(status: u16, code: &str, error: impl Into<String>) -> Response {
    Response::json(status, &json!({"error": error.into(), "code": code}))
}

fn job_dir_name(job_id: &str) -> String {
    let h = Sha256::digest(job_id.as_bytes());
    h.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn field<'a>(body: &'a Value, path: &str) -> Result<&'a Value, Response> {
    let mut v = body;
    for part in path.split('.') {
        v = v
            .get(part)
            .filter(|x| !x.is_null())
            .ok_or_else(|| reject(400, "2213", format!("A required parameter is missing: {path}")))?;
    }
    Ok(v)
}

fn str_field<'a>(body: &'a Value, path: &str) -> Result<&'a str, Response> {
    let v = field(body, path)?;
    let s = v.as_str().ok_or_else(|| {
        reject(400, "2204", format!("A parameter is of the wrong data type: {path} must be a string"))
    })?;
    if s.is_empty() {
        return Err(reject(400, "2213", format!("A required parameter is missing: {path} is empty")));
    }
    Ok(s)
}

fn bool_field(body: &Value, name: &str) -> Result<bool, Response> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // The official server SDKs send some flags as "true"/"false" strings.
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(_) => Err(reject(400, "2204", format!("A parameter is of the wrong data type: {name} must be a boolean"))),
    }
}

impl Sandbox {
    pub fn new(s: Settings) -> std::io::Result<Self> {
        private_dir(&s.state_dir.join("jobs"))?;
        let mut url_secret = [0u8; 32];
        getrandom::fill(&mut url_secret).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut jobs = HashMap::new();
        for entry in std::fs::read_dir(s.state_dir.join("jobs"))?.flatten() {
            if let Ok(raw) = std::fs::read(entry.path().join("record.json")) {
                if let Ok(r) = serde_json::from_slice::<JobRecord>(&raw) {
                    jobs.insert(r.job_id.clone(), r);
                }
            }
        }
        let clock_offset_secs = AtomicI64::new(s.clock_offset_secs);
        Ok(Sandbox {
            s,
            url_secret,
            jobs: Mutex::new(jobs),
            faults: Mutex::new(Vec::new()),
            clock_offset_secs,
            connections: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    /// The sandbox's idea of the time.
    pub fn now(&self) -> UnixMillis {
        UnixMillis(UnixMillis::now().0 + self.clock_offset_secs.load(Ordering::Relaxed) * 1000)
    }

    /// Moves the sandbox's clock: a jump that makes a kiosk's clock look wrong.
    pub fn set_clock_offset(&self, secs: i64) {
        self.clock_offset_secs.store(secs, Ordering::Relaxed);
    }

    /// Queues a fault for the next request to `at` (faults for one endpoint apply in order).
    pub fn inject(&self, at: Endpoint, fault: Fault) {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).push((at, fault));
    }

    /// Faults queued and not yet used.
    pub fn pending_faults(&self) -> usize {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.connections.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// Removes and returns the first fault queued for `at`, if `wanted` accepts it.
    fn take_fault(&self, at: Endpoint, wanted: impl Fn(Fault) -> bool) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults.iter().position(|(e, _)| *e == at)?;
        wanted(faults[i].1).then(|| faults.remove(i).1)
    }

    /// Every job the sandbox has seen, for tests that count deliveries.
    pub fn records(&self) -> Vec<JobRecord> {
        let mut v: Vec<_> = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.job_id.cmp(&b.job_id));
        v
    }

    pub fn handle(&self, req: &Request) -> Response {
        if self.s.latency_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.s.latency_ms));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let endpoint = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => Some(Endpoint::Probe),
            ("POST", "/v1/upload") => Some(Endpoint::PrepUpload),
            ("POST", "/v1/job_status") => Some(Endpoint::JobStatus),
            ("POST", "/v1/valid_documents") => Some(Endpoint::ValidDocuments),
            ("PUT", p) if p.starts_with("/uploads/") => Some(Endpoint::Upload),
            _ => None,
        };
        // A reset is the body reader's to use (`cut_body`), before the request reaches here.
        let fault = endpoint.and_then(|e| self.take_fault(e, |f| f != Fault::ResetMidUpload));
        if let Some(Fault::Status(code)) = fault {
            // What a load balancer or proxy sends: HTML, not Smile ID's JSON.
            let page = format!("<html><body><h1>{code}</h1>The upstream server is unavailable.</body></html>");
            return Response {
                date: Some(now),
                status: code,
                content_type: "text/html",
                body: page.into_bytes(),
                wire: Wire::Whole,
                retry_after_secs: None,
                allow: None,
            };
        }
        let reply = match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v1/upload") => self.prep_upload(req, now, fault),
            ("POST", "/v1/job_status") => self.job_status(req, now),
            ("POST", "/v1/id_verification") => self.id_verification(req, now),
            ("POST", "/v1/auth_smile") => self.auth_smile(req, now),
            ("POST", "/v1/valid_documents") => self.valid_documents(req, now),
            ("PUT", p) if p.starts_with("/uploads/") => self.upload(req, now),
            // What a link probe reaches: any answer with a Date proves TLS and HTTP work.
            ("GET", "/") => Ok(Response::json(200, &json!({"service": "kiosk-agent sandbox"}))),
            ("GET", "/sandbox/stats") => {
                Ok(Response::json(200, &serde_json::to_value(self.stats()).unwrap_or_default()))
            }
            ("GET", "/sandbox/jobs") => {
                Ok(Response::json(200, &serde_json::to_value(self.records()).unwrap_or_default()))
            }
            (_, "/v1/upload" | "/v1/job_status" | "/v1/id_verification") => {
                Err(reject(405, "2213", "Use POST for this endpoint"))
            }
            // As the API gateway in front of Smile ID answers a path it does not route: no code.
            _ => Err(Response::json(404, &json!({"message": format!("Not Found: {} {}", req.method, req.path)}))),
        };
        let mut resp = match reply {
            Ok(r) => r,
            Err(r) => {
                // Refusals are logged (never request bodies: they carry PII and signatures).
                eprintln!("sandbox: {} {} -> {} {}", req.method, req.path, r.status, String::from_utf8_lossy(&r.body));
                r
            }
        };
        resp.date = Some(now);
        resp.wire = match fault {
            Some(Fault::Stall { ms }) => Wire::Silent { wait_ms: ms },
            Some(Fault::Truncate) => Wire::Truncated,
            _ => Wire::Whole,
        };
        resp
    }

    fn parse_json(req: &Request) -> Result<Value, Response> {
        let v: Value =
            serde_json::from_slice(&req.body).map_err(|e| reject(400, "2203", format!("Invalid JSON: {e}")))?;
        if !v.is_object() {
            return Err(reject(400, "2203", "Invalid JSON: the body must be an object"));
        }
        Ok(v)
    }

    /// The documents the sandbox "supports": a signed request makes no job.
    fn valid_documents(&self, req: &Request, now: UnixMillis) -> Reply {
        self.authenticate(&Self::parse_json(req)?, "partner_id", now)?;
        let passport = json!({"code": "PASSPORT", "name": "Passport", "example": [], "has_back": false});
        let country = json!({"code": "NG", "continent": "Africa", "name": "Nigeria"});
        Ok(Response::json(200, &json!({"valid_documents": [{"country": country, "id_types": [passport]}]})))
    }

    /// The partner and signature checks every signed endpoint makes.
    fn authenticate(&self, body: &Value, partner_key: &str, now: UnixMillis) -> Result<(), Response> {
        let partner = str_field(body, partner_key)?;
        let ts = str_field(body, "timestamp")?;
        let sig = str_field(body, "signature")?;
        let unauthorized = |why: &str| reject(401, "2205", format!("You are not authorized to do that. ({why})"));
        if partner != self.s.partner_id {
            return Err(unauthorized("unknown partner id"));
        }
        let Some(t) = timestamp::parse(ts) else {
            return Err(unauthorized("timestamp is not ISO 8601 with a time zone"));
        };
        if (t.0 - now.0).abs() > self.s.timestamp_window_secs * 1000 {
            return Err(unauthorized("timestamp is outside the allowed window; check the device clock"));
        }
        if !verify(&self.s.api_key, partner, ts, sig) {
            return Err(unauthorized("signature does not match"));
        }
        Ok(())
    }

    fn save(&self, r: &JobRecord, file: Option<(&str, &[u8])>) -> Result<(), Response> {
        let dir = self.s.state_dir.join("jobs").join(job_dir_name(&r.job_id));
        let io = |e: std::io::Error| reject(500, "2201", format!("System error: {e}"));
        private_dir(&dir).map_err(io)?;
        if let Some((name, bytes)) = file {
            write_private(&dir.join(name), bytes).map_err(io)?;
        }
        write_private(&dir.join("record.json"), &serde_json::to_vec_pretty(r).unwrap_or_default()).map_err(io)
    }

    fn url_sig(&self, path: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.url_secret).expect("any key length");
        mac.update(format!("PUT\n{path}\n{expires}").as_bytes());
        B64URL.encode(mac.finalize().into_bytes())
    }

    fn prep_upload(&self, req: &Request, now: UnixMillis, fault: Option<Fault>) -> Reply {
        let body = Self::parse_json(req)?;
        self.authenticate(&body, "smile_client_id", now)?;
        let job_id = str_field(&body, "partner_params.job_id")?.to_string();
        let user_id = str_field(&body, "partner_params.user_id")?.to_string();
        let jt = field(&body, "partner_params.job_type")?.as_i64().ok_or_else(|| {
            reject(400, "2204", "A parameter is of the wrong data type: partner_params.job_type must be an integer")
        })?;
        let job_type = JobType::from_code(jt)
            .filter(|t| t.has_images())
            .ok_or_else(|| reject(400, "2212", format!("Invalid job type {jt} for /v1/upload")))?;
        if !field(&body, "partner_params")?.is_object() {
            return Err(reject(400, "2204", "A parameter is of the wrong data type: partner_params must be an object"));
        }
        let retry = bool_field(&body, "retry")?;
        bool_field(&body, "use_enrolled_image")?;
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let record = match jobs.get(&job_id) {
            Some(existing) if !retry => {
                let _ = existing;
                return Err(reject(400, "2215", "Job already exists. Did you mean to set the retry flag to true?"));
            }
            Some(existing) => {
                let mut r = existing.clone();
                r.preps += 1;
                r
            }
            None => {
                let n = jobs.len() as u64 + 1;
                let mut salt = [0u8; 6];
                getrandom::fill(&mut salt).map_err(|e| reject(500, "2201", format!("System error: {e}")))?;
                let smile_job_id = format!("{:010}", 1_000_000_000u64 + n);
                let hash: String = salt.iter().map(|b| format!("{b:02x}")).collect();
                JobRecord {
                    ref_id: format!("{}-{}-{}", self.s.partner_id, smile_job_id, hash),
                    smile_job_id,
                    job_id: job_id.clone(),
                    user_id,
                    job_type: job_type.code(),
                    preps: 1,
                    uploads: 0,
                    consent_recorded: false,
                    image_types: Vec::new(),
                    result: None,
                    partner_extras: field(&body, "partner_params")?
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter(|(k, _)| !matches!(k.as_str(), "user_id" | "job_id" | "job_type"))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }
        };
        self.save(&record, Some(("prep_upload.json", &req.body)))?;
        let path = format!("/uploads/{}/selfie.zip", record.ref_id);
        let expires =
            if fault == Some(Fault::ExpiredUrl) { now.secs() - 1 } else { now.secs() + self.s.upload_url_ttl_secs };
        let base = match fault {
            Some(Fault::PlainUrl { port }) => format!("http://127.0.0.1:{port}"),
            _ => self.s.public_base.clone(),
        };
        let upload_url = format!(
            "{base}{path}?Content-Type=application%2Fzip&Expires={expires}&Signature={}",
            self.url_sig(&path, expires)
        );
        let answer = json!({"upload_url": upload_url, "ref_id": record.ref_id, "smile_job_id": record.smile_job_id, "camera_config": "null", "code": "2202"});
        jobs.insert(job_id, record);
        Ok(Response::json(200, &answer))
    }

    fn upload(&self, req: &Request, now: UnixMillis) -> Reply {
        let q: HashMap<&str, &str> = req.query.split('&').filter_map(|kv| kv.split_once('=')).collect();
        let expires: i64 = q
            .get("Expires")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| reject(403, "2205", "Upload URL has no valid Expires"))?;
        let sig = q.get("Signature").copied().unwrap_or("");
        let want = self.url_sig(&req.path, expires);
        if !ct_eq(sig.as_bytes(), want.as_bytes()) || q.get("Content-Type") != Some(&"application%2Fzip") {
            return Err(reject(
                403,
                "2205",
                "The upload URL signature does not match; use the URL exactly as returned",
            ));
        }
        if now.secs() > expires {
            return Err(reject(
                403,
                "2314",
                format!("Upload URL expired at {expires}; call prep_upload again (with retry: true) for a new one"),
            ));
        }
        if !req.header("content-type").is_some_and(|c| c.eq_ignore_ascii_case("application/zip")) {
            return Err(reject(403, "2205", "The upload must be sent with Content-Type: application/zip"));
        }
        let ref_id = req.path.trim_start_matches("/uploads/").trim_end_matches("/selfie.zip");
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let record = jobs
            .values()
            .find(|r| r.ref_id == ref_id)
            .cloned()
            .ok_or_else(|| reject(404, "2213", "No job was prepared for this upload URL"))?;
        let (result, consent, image_types) = self.check_zip(&record, &req.body)?;
        let mut record = record;
        record.uploads += 1;
        record.consent_recorded = consent;
        record.image_types = image_types;
        record.result = Some(result);
        self.save(&record, Some(("selfie.zip", &req.body)))?;
        jobs.insert(record.job_id.clone(), record);
        Ok(Response::empty(200))
    }

    /// Validates the zip as Smile ID's processing would: the job's result, whether consent was
    /// recorded, and the images' types.
    fn check_zip(&self, rec: &JobRecord, zip: &[u8]) -> Result<(Value, bool, Vec<u8>), Response> {
        use crate::smileid::package::PackageError as P;
        let pkg = read_zip(zip, 8 * 1024 * 1024).map_err(|e| match e {
            P::NoInfoJson => reject(400, "2213", "A required parameter is missing: info.json is not in the zip"),
            P::MissingFile(f) => reject(
                400,
                "2213",
                format!("A required parameter is missing: {f} is listed in info.json but not in the zip"),
            ),
            other => reject(400, "2203", format!("Invalid zip: {other}")),
        })?;
        if pkg.info.misc_information.partner_params.job_id != rec.job_id {
            return Err(reject(400, "2213", "info.json partner_params.job_id does not match the prepared job"));
        }
        let mut selfies = 0;
        let mut id_front = 0;
        let mut liveness_ok = 0;
        let mut liveness_bad = 0;
        for (i, img) in pkg.info.images.iter().enumerate() {
            let t = img.image_type_id;
            let bytes = if t.is_file() && !img.file_name.is_empty() {
                pkg.entries.get(&img.file_name).cloned()
            } else {
                B64.decode(img.image.trim().as_bytes()).ok()
            };
            let is_jpeg = bytes.as_deref().is_some_and(looks_like_jpeg);
            let is_liveness = matches!(t, ImageType::LivenessFile | ImageType::LivenessBase64);
            if is_liveness && bytes.is_none() {
                // Node SDK 3.2.1 puts liveness *paths* into `image` and zips nothing: count, don't reject.
                liveness_bad += 1;
                continue;
            }
            if !is_jpeg {
                return Err(reject(
                    400,
                    "2203",
                    format!("images[{i}] (image_type_id {}) is not a JPEG; only .jpg is accepted", t.code()),
                ));
            }
            selfies += t.is_selfie() as u32;
            id_front += t.is_id_front() as u32;
            liveness_ok += is_liveness as u32;
        }
        let job_type = JobType::from_code(rec.job_type as i64).unwrap_or(JobType::BiometricKyc);
        if selfies == 0 {
            return Err(reject(
                400,
                "2213",
                "A required parameter is missing: at least one selfie image (image_type_id 0 or 2)",
            ));
        }
        if job_type.is_document() && id_front == 0 {
            return Err(reject(
                400,
                "2213",
                "A required parameter is missing: an ID card front image (image_type_id 1 or 3)",
            ));
        }
        Ok((
            decide(rec, job_type, &pkg.info.id_info, liveness_ok, liveness_bad),
            pkg.info.consent_information.is_some(),
            pkg.info.images.iter().map(|i| i.image_type_id.code()).collect(),
        ))
    }

    fn job_status(&self, req: &Request, now: UnixMillis) -> Reply {
        let body = Self::parse_json(req)?;
        self.authenticate(&body, "partner_id", now)?;
        let job_id = str_field(&body, "job_id")?;
        let user_id = str_field(&body, "user_id")?;
        let history = bool_field(&body, "history")?;
        bool_field(&body, "image_links")?;
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let rec = jobs
            .get(job_id)
            .filter(|r| r.user_id == user_id)
            .ok_or_else(|| reject(404, "2213", format!("No job found for job_id {job_id} and user_id {user_id}")))?;
        let ts = now.to_iso();
        let mut answer = json!({
            "timestamp": ts,
            "signature": signature_for(&self.s.api_key, &self.s.partner_id, &ts),
            "job_id": rec.job_id,
            "user_id": rec.user_id,
            "job_complete": rec.result.is_some(),
            "job_success": false,
            "code": if rec.result.is_some() { "2302" } else { "2314" },
            "result": Value::Null,
            "history": Value::Null,
            "image_links": Value::Null,
        });
        if let Some(result) = &rec.result {
            answer["job_success"] = json!(result["_success"].as_bool().unwrap_or(false));
            let mut visible = result.clone();
            visible.as_object_mut().map(|o| o.remove("_success"));
            if history {
                answer["history"] = json!([visible.clone()]);
            }
            answer["result"] = visible;
        }
        Ok(Response::json(200, &answer))
    }

    /// Mobile-style auth: a valid auth_token gets a server-minted `{timestamp, signature}`.
    fn auth_smile(&self, req: &Request, now: UnixMillis) -> Reply {
        let body = Self::parse_json(req)?;
        let partner = str_field(&body, "partner_id")?;
        let token = str_field(&body, "auth_token")?;
        let ok = partner == self.s.partner_id
            && self.s.auth_token.as_deref().is_some_and(|t| ct_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            return Err(reject(401, "2205", "You are not authorized to do that. (auth_token)"));
        }
        let jt = field(&body, "job_type")?
            .as_i64()
            .ok_or_else(|| reject(400, "2204", "A parameter is of the wrong data type: job_type must be an integer"))?;
        let ts = now.to_iso();
        Ok(Response::json(
            200,
            &json!({"success": true, "timestamp": ts, "signature": signature_for(&self.s.api_key, &self.s.partner_id, &ts),
                    "partner_params": {"job_type": jt, "job_id": body.get("job_id"), "user_id": body.get("user_id")}}),
        ))
    }

    fn id_verification(&self, req: &Request, now: UnixMillis) -> Reply {
        let body = Self::parse_json(req)?;
        self.authenticate(&body, "partner_id", now)?;
        let job_id = str_field(&body, "partner_params.job_id")?;
        str_field(&body, "partner_params.user_id")?;
        let jt = field(&body, "partner_params.job_type")?.as_i64().ok_or_else(|| {
            reject(400, "2204", "A parameter is of the wrong data type: partner_params.job_type must be an integer")
        })?;
        if jt != 5 {
            return Err(reject(400, "2212", format!("Invalid job type {jt} for /v1/id_verification; use 5")));
        }
        for f in ["country", "id_type", "id_number"] {
            str_field(&body, f)?;
        }
        let ts = now.to_iso();
        Ok(Response::json(
            200,
            &json!({
                "SmileJobID": format!("{:010}", 2_000_000_000u64 + (now.0 as u64 % 1_000_000)),
                "PartnerParams": body["partner_params"],
                "ResultType": "ID Verification",
                "ResultText": "ID Number Validated",
                "ResultCode": "1012",
                "IsFinalResult": "true",
                "Actions": {"Verify_ID_Number": "Verified", "Return_Personal_Info": "Returned"},
                "Country": body["country"], "IDType": body["id_type"], "IDNumber": body["id_number"],
                "FullName": full_name(&body), "DOB": body.get("dob").cloned().unwrap_or(Value::Null),
                "Source": "kiosk-agent sandbox", "job_id": job_id,
                "timestamp": ts, "signature": signature_for(&self.s.api_key, &self.s.partner_id, &ts),
            }),
        ))
    }
}

fn full_name(id: &Value) -> Value {
    let parts: Vec<&str> = ["first_name", "middle_name", "last_name"]
        .iter()
        .filter_map(|k| id.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        Value::Null
    } else {
        json!(parts.join(" "))
    }
}

/// The sandbox's verdict: plausible codes and Actions per job type. Not Smile ID's logic:
/// every well-formed job passes, except that liveness images which never arrived fail the liveness check.
fn decide(rec: &JobRecord, job_type: JobType, id_info: &Value, liveness_ok: u32, liveness_bad: u32) -> Value {
    let liveness = if liveness_bad > 0 {
        "Failed"
    } else if liveness_ok > 0 {
        "Passed"
    } else {
        "Not Applicable"
    };
    let passed = liveness != "Failed";
    let (code, text, mut actions) = match job_type {
        JobType::BiometricKyc => (
            "1020",
            "Exact Match",
            json!({"Verify_ID_Number": "Verified", "Return_Personal_Info": "Returned",
            "Selfie_To_ID_Authority_Compare": "Completed", "Human_Review_Compare": "Not Applicable", "Register_Selfie": "Approved"}),
        ),
        JobType::SmartSelfieAuthentication => (
            "0820",
            "Authenticated",
            json!({"Selfie_To_Registered_Selfie_Compare": "Completed", "Human_Review_Compare": "Not Applicable"}),
        ),
        JobType::SmartSelfieEnrollment => {
            ("0810", "Enroll User", json!({"Register_Selfie": "Approved", "Human_Review_Compare": "Not Applicable"}))
        }
        JobType::DocumentVerification | JobType::EnhancedDocumentVerification => (
            "0810",
            "Document Verified",
            json!({"Document_Check": "Passed", "Verify_Document": "Passed",
            "Selfie_To_ID_Card_Compare": "Completed", "Return_Personal_Info": "Returned", "Human_Review_Compare": "Not Applicable"}),
        ),
        JobType::EnhancedKyc => ("1012", "ID Number Validated", json!({})),
    };
    actions["Liveness_Check"] = json!(liveness);
    actions["Selfie_Provided"] = json!("Passed");
    let (code, text) = if passed { (code, text) } else { ("0001", "Liveness images unusable") };
    // As Smile ID does: the partner's own params back, beside its ids.
    let mut partner_params = rec.partner_extras.clone();
    partner_params.insert("user_id".into(), json!(rec.user_id));
    partner_params.insert("job_id".into(), json!(rec.job_id));
    partner_params.insert("job_type".into(), json!(rec.job_type));
    json!({
        "ResultCode": code, "ResultText": text, "ResultType": "SAIA",
        "SmileJobID": rec.smile_job_id,
        "PartnerParams": partner_params,
        "ConfidenceValue": if passed { "99" } else { "0" }, "IsFinalResult": "true", "IsMachineResult": "true",
        "Actions": actions,
        "Country": id_info.get("country").cloned().unwrap_or(Value::Null),
        "IDType": id_info.get("id_type").cloned().unwrap_or(Value::Null),
        "IDNumber": id_info.get("id_number").cloned().unwrap_or(Value::Null),
        "FullName": full_name(id_info),
        "_success": passed,
    })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // Constant-time for equal lengths; lengths are public (both are base64 of a 32-byte MAC).
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
