//! The local control API: HTTP/JSON over a Unix socket, for the kiosk's host application.
//!
//! | method and path | does |
//! |---|---|
//! | `POST /v1/sessions` | start a capture session (job types 1, 2, 4, 6, 11) |
//! | `GET /v1/sessions` | the sessions the agent knows (the running one and up to 64 that ended), newest first |
//! | `GET /v1/sessions/{id}` | the session's state, on-screen hint and progress; once queued, its job's `stage` and `job_success` |
//! | `POST /v1/sessions/{id}/consent` | `{"granted": bool}`: the answer to the question on screen (consent, or keeping a document photo); 409 when there is none |
//! | `POST /v1/sessions/{id}/cancel` | stop the session, nothing kept; answered once it has ended (409 if its job was already queued) |
//! | `GET /v1/jobs`, `GET /v1/jobs/{job_id}` | queued and finished jobs with their Smile ID result (and, by its job_id, an Enhanced KYC lookup under way or answered in the last 10 minutes) |
//! | `DELETE /v1/jobs/{job_id}` | purge a job: images erased, record removed |
//! | `POST /v1/jobs/{job_id}/retry` | a failed job whose images remain back in line; a waiting one now |
//! | `POST /v1/jobs/{job_id}/restore` | a quarantined job back once its bundle checks again |
//! | `POST /v1/enhanced_kyc` | Enhanced KYC (job type 5), answered synchronously |
//! | `GET /v1/health` | `status` (`ok` or the first problem), `problems`, link state, queue counts |
//! | `GET /metrics` | Prometheus text |
//!
//! Requests are checked here, field by field: a bad one gets a 4xx whose `error` names the
//! field (and a `code` where two refusals share a status). Every text has a length cap and no control or bidi-override characters; bodies have
//! a cap per route ([`body_limit`]). Each route needs a role ([`required_role`]): health is
//! open to any peer that can connect; sessions and a job's own result need `operate`;
//! everything else `administer` (see [`access`]); a path that names nothing is a 404 whoever asks. The routing is pure ([`route`] over a
//! [`Backend`], for one [`Caller`]), so it is fuzzed without devices.

pub mod access;
pub mod client;
mod json;
pub mod server;

pub use access::{Caller, Role};

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::httpd::{Request, Response};
use crate::queue::{QueueStats, Record};
use crate::session::manager::{SessionState, SessionView};
use crate::smileid::job::{IdInfo, ImageType, Job, JobImage, JobOptions, JobType, PartnerParams};
use crate::smileid::validate::validate;
use crate::uplink::service::LinkState;

/// A session request after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct StartSession {
    pub job_type: JobType,
    pub user_id: String,
    pub job_id: Option<String>,
    pub extra: BTreeMap<String, Value>,
    pub id_info: IdInfo,
    pub options: JobOptions,
    pub document_back: bool,
    /// Language of the screens for this person (a code such as "fr"); the kiosk's default if absent.
    pub language: Option<String>,
    /// The uid of the peer that asked (the job's owner, who may read its result).
    pub owner: Option<u32>,
}

/// An Enhanced KYC request after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct EnhancedKyc {
    pub user_id: String,
    pub job_id: Option<String>,
    pub id_info: IdInfo,
}

/// A refusal: HTTP status and a message that names what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub error: String,
    /// What a host application branches on, where two refusals share a status (`session_running`
    /// and `job_id_used` are both 409).
    pub code: Option<&'static str>,
    /// For a 429 or 503: when to try again (also sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
    /// For `session_running`: the running session, when the caller may see it.
    pub session_id: Option<String>,
}

impl Refusal {
    pub fn new(status: u16, error: impl Into<String>) -> Self {
        Refusal { status, error: error.into(), code: None, retry_after_secs: None, session_id: None }
    }

    /// The code a refusal made without one answers with: every error carries one.
    fn code_or_default(&self) -> &'static str {
        self.code.unwrap_or(match self.status {
            400 => "bad_request",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            413 => "too_large",
            422 => "invalid_field",
            429 => "rate_limited",
            502 => "smileid_failed",
            503 => "busy",
            _ => "internal",
        })
    }

    pub fn coded(status: u16, code: &'static str, error: impl Into<String>) -> Self {
        Refusal { code: Some(code), ..Refusal::new(status, error) }
    }
}

/// An Enhanced KYC answer: the job_id used and Smile ID's result as it came.
#[derive(Debug, Clone, Serialize)]
pub struct EnhancedKycAnswer {
    pub job_id: String,
    pub result: Value,
}

/// The kiosk's health: `status` is "ok" or the first problem, by how much it stops (nothing
/// captured, nothing sent, less); `problems` has them all.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub problems: Vec<&'static str>,
    pub uplink: LinkState,
    pub queue: Option<QueueStats>,
    pub version: &'static str,
    /// When this agent started (UTC, ISO 8601): a host application that sees it change knows
    /// the agent restarted, and the sessions it was following are gone.
    pub started_at: Option<String>,
}

/// What the API drives, in the agent's own types (JSON is made only here, at the edge);
/// implemented by the service, and by [`AcceptAll`] for tests.
pub trait Backend: Send + Sync {
    fn start_session(&self, req: StartSession) -> Result<SessionView, Refusal>;
    fn session(&self, id: &str) -> Option<SessionView>;
    /// The sessions the agent still knows (the running one and the last ones that ended).
    fn sessions(&self) -> Vec<SessionView> {
        Vec::new()
    }
    fn consent(&self, id: &str, granted: bool) -> Option<SessionView>;
    fn cancel(&self, id: &str) -> Option<SessionView>;
    fn jobs(&self) -> Result<Vec<Record>, Refusal>;
    fn job(&self, job_id: &str) -> Option<Record>;
    /// An Enhanced KYC lookup by its job_id: `Some(None)` while under way, then its answer for
    /// some minutes.
    fn enhanced_kyc_answer(&self, _job_id: &str) -> Option<Option<EnhancedKycAnswer>> {
        None
    }
    /// The job_id named a job this kiosk no longer holds (purged, or removed after its result).
    fn job_gone(&self, _job_id: &str) -> bool {
        false
    }
    fn purge(&self, job_id: &str) -> Result<(), Refusal>;
    fn retry(&self, job_id: &str) -> Result<Record, Refusal>;
    fn restore(&self, job_id: &str) -> Result<Record, Refusal>;
    fn enhanced_kyc(&self, req: EnhancedKyc) -> Result<EnhancedKycAnswer, Refusal>;
    /// When the agent started (UTC, ISO 8601), if known.
    fn started_at(&self) -> Option<String> {
        None
    }
    fn health(&self) -> Health;
    fn metrics(&self) -> String;
    /// What holds every waiting job back now (`paused`, `clock_wrong`, `link_down`), if anything.
    fn held(&self) -> Option<&'static str> {
        None
    }
}

/// A job as the API shows it: its record, and for one still to go up what holds it back, so a
/// job waiting on paused uploads does not look as if it were on its way.
fn job_view(b: &dyn Backend, r: Record) -> Value {
    let pending = r.stage.is_pending() && r.stage != crate::queue::Stage::Uploaded;
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let (true, Some(held), Some(o)) = (pending, b.held(), v.as_object_mut()) {
        o.insert("held".into(), held.into());
    }
    v
}

#[cfg(feature = "sandbox")]
/// A test double of the service: accepts every well-formed request, with no camera or queue
/// behind it, so that fuzzing and property tests reach only the API's own parsing and routing.
/// Its one session is `"s"`; it has no jobs.
pub struct AcceptAll;

#[cfg(feature = "sandbox")]
impl AcceptAll {
    fn view(job_type: u8) -> SessionView {
        SessionView {
            session_id: "s".into(),
            job_id: "j".into(),
            job_type,
            user_id: "u".into(),
            language: None,
            state: crate::session::manager::SessionState::AwaitingConsent,
            hint: None,
            step: "consent".into(),
            done: 0,
            total: 0,
            error: None,
            started_at: String::new(),
            owner: None,
            job: None,
        }
    }
}

#[cfg(feature = "sandbox")]
impl Backend for AcceptAll {
    fn start_session(&self, r: StartSession) -> Result<SessionView, Refusal> {
        Ok(Self::view(r.job_type.code()))
    }
    fn session(&self, id: &str) -> Option<SessionView> {
        (id == "s").then(|| Self::view(1))
    }
    fn consent(&self, id: &str, _: bool) -> Option<SessionView> {
        self.session(id)
    }
    fn cancel(&self, id: &str) -> Option<SessionView> {
        self.session(id)
    }
    fn jobs(&self) -> Result<Vec<Record>, Refusal> {
        Ok(Vec::new())
    }
    fn job(&self, _: &str) -> Option<Record> {
        None
    }
    fn purge(&self, _: &str) -> Result<(), Refusal> {
        Err(Refusal::new(404, "no job"))
    }
    fn retry(&self, _: &str) -> Result<Record, Refusal> {
        Err(Refusal::new(404, "no job"))
    }
    fn restore(&self, _: &str) -> Result<Record, Refusal> {
        Err(Refusal::new(404, "no job"))
    }
    fn enhanced_kyc(&self, r: EnhancedKyc) -> Result<EnhancedKycAnswer, Refusal> {
        Ok(EnhancedKycAnswer { job_id: r.job_id.unwrap_or_default(), result: json!({}) })
    }
    fn health(&self) -> Health {
        Health {
            status: "link_down",
            problems: vec!["link_down"],
            uplink: LinkState::Down { error: "the API host answered HTTP 502: bad gateway".into() },
            queue: None,
            version: "test",
            started_at: None,
        }
    }
    fn metrics(&self) -> String {
        String::new()
    }
}

fn bad(field: &str, problem: &str) -> Refusal {
    Refusal::coded(422, "invalid_field", format!("invalid {field}: {problem}"))
}

/// A job's check failed: named as the request names the field (`user_id` and `job_id` are
/// top-level fields here, partner_params on the wire).
fn invalid(e: &crate::smileid::validate::ValidationError) -> Refusal {
    let field = match e.field.as_str() {
        "partner_params.user_id" => "user_id",
        "partner_params.job_id" => "job_id",
        f => f,
    };
    bad(field, &e.problem)
}

fn opt_str(o: &serde_json::Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, Refusal> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn opt_bool(o: &serde_json::Map<String, Value>, key: &str, field: &str, default: bool) -> Result<bool, Refusal> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(field, "must be true or false")),
    }
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a serde_json::Map<String, Value>, Refusal> {
    v.as_object().ok_or_else(|| bad(field, "must be a JSON object"))
}

fn only_keys(o: &serde_json::Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), Refusal> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(&format!("{prefix}{k}"), &format!("unknown field; expected one of {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn parse_id_info(v: Option<&Value>) -> Result<IdInfo, Refusal> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(IdInfo::default()) };
    let o = object(v, "id_info")?;
    const KEYS: [&str; 9] =
        ["first_name", "middle_name", "last_name", "country", "id_type", "id_number", "dob", "phone_number", "entered"];
    only_keys(o, &KEYS, "id_info.")?;
    let s = |k: &str| {
        let field = format!("id_info.{k}");
        let v = opt_str(o, k, &field)?;
        if let Some(v) = &v {
            check_text(&field, v, id_info_cap(k))?;
        }
        Ok::<_, Refusal>(v)
    };
    Ok(IdInfo {
        first_name: s("first_name")?,
        middle_name: s("middle_name")?,
        last_name: s("last_name")?,
        country: s("country")?,
        id_type: s("id_type")?,
        id_number: s("id_number")?,
        dob: s("dob")?,
        phone_number: s("phone_number")?,
        entered: match o.get("entered") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("id_info.entered", "must be true or false")),
        },
    })
}

/// Longest value of each id_info field, in characters: names as ID registries hold them, an
/// ISO country code, the longest ID numbers and types Smile ID lists, an ISO date, E.164 phones.
fn id_info_cap(key: &str) -> usize {
    match key {
        "first_name" | "middle_name" | "last_name" => 100,
        "country" => 2,
        "id_type" => 50,
        "id_number" => 50,
        "dob" => 10,
        "phone_number" => 20,
        _ => 100,
    }
}

/// Characters never accepted in a request's text: controls, and the bidi embeddings, overrides
/// and isolates that make a text read differently from what it holds (U+202E in a user_id).
pub fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A text field: at most `max` characters, none of them [`forbidden_char`]. The CLI checks
/// its ids with it too, before the camera starts.
pub fn check_text(field: &str, v: &str, max: usize) -> Result<(), Refusal> {
    if v.chars().count() > max {
        return Err(bad(field, &format!("is longer than {max} characters")));
    }
    match v.chars().find(|c| forbidden_char(*c)) {
        Some(c) => Err(bad(field, &format!("contains U+{:04X}, a control or text-direction character", c as u32))),
        None => Ok(()),
    }
}

/// The largest body each route takes: what a kiosk plausibly sends, with room to spare.
pub fn body_limit(req: &Request) -> usize {
    // By the path as routed, its escapes decoded (`/v1/%73essions` is the sessions' path).
    let seg = shape(&req.path);
    let parts: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "sessions"]) => 16 * 1024,
        ("POST", ["v1", "enhanced_kyc"]) => 8 * 1024,
        _ => 1024,
    }
}

/// A path's segments with their %-escapes decoded: a job_id may hold any printable character,
/// and a client sends a `/`, a space or a letter outside ASCII in it escaped. `None` for an
/// escape that is not `%XX`, or bytes that are not UTF-8.
pub fn segments(path: &str) -> Option<Vec<String>> {
    path.trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(|seg| {
            let (mut out, mut bytes) = (Vec::with_capacity(seg.len()), seg.bytes());
            while let Some(b) = bytes.next() {
                if b == b'%' {
                    let hex = [bytes.next()?, bytes.next()?];
                    out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                } else {
                    out.push(b);
                }
            }
            String::from_utf8(out).ok()
        })
        .collect()
}

/// `s` as one path segment: every byte but RFC 3986's unreserved characters %-escaped.
pub fn escape_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The path's segments, or where its escapes do not decode, its shape as sent (it is refused
/// anyway, for that).
fn shape(path: &str) -> Vec<String> {
    segments(path).unwrap_or_else(|| path.trim_end_matches('/').split('/').skip(1).map(String::from).collect())
}

/// The method is one the endpoint at `parts` takes.
fn allowed(method: &str, parts: &[&str]) -> bool {
    matches!(
        (method, parts),
        ("POST" | "GET", ["v1", "sessions"])
            | ("GET", ["v1", "sessions", _])
            | ("POST", ["v1", "sessions", _, "consent" | "cancel"])
            | ("GET", ["v1", "jobs"])
            | ("GET" | "DELETE", ["v1", "jobs", _])
            | ("POST", ["v1", "jobs", _, "retry" | "restore"])
            | ("POST", ["v1", "enhanced_kyc"])
            | ("GET", ["v1", "health"] | ["metrics"])
    )
}

/// The methods the endpoint at `parts` takes, as an `Allow` header lists them (a GET's path takes
/// a HEAD too).
fn methods(parts: &[&str]) -> &'static str {
    match parts {
        ["v1", "sessions"] => "GET, HEAD, POST",
        ["v1", "jobs", _] => "GET, HEAD, DELETE",
        ["v1", "sessions", _, _] | ["v1", "jobs", _, _] | ["v1", "enhanced_kyc"] => "POST",
        _ => "GET, HEAD",
    }
}

/// The path names an endpoint (with some method).
fn endpoint(parts: &[&str]) -> bool {
    matches!(
        parts,
        ["v1", "sessions"]
            | ["v1", "sessions", _]
            | ["v1", "sessions", _, "consent" | "cancel"]
            | ["v1", "jobs"]
            | ["v1", "jobs", _]
            | ["v1", "jobs", _, "retry" | "restore"]
            | ["v1", "enhanced_kyc"]
            | ["v1", "health"]
            | ["metrics"]
    )
}

/// The request's method and path name an endpoint (it is answered 404 or 405 otherwise).
pub fn routed(req: &Request) -> bool {
    let seg = shape(&req.path);
    let parts: Vec<&str> = seg.iter().map(String::as_str).collect();
    // A HEAD is answered as its GET.
    allowed(if req.method == "HEAD" { "GET" } else { &req.method }, &parts)
}

/// The role a request needs; `None` for health, which any peer may read, and for a path that
/// names nothing or a method its endpoint does not take (answered 404 or 405 whoever asks: a
/// typo is not a reason to grant a role).
pub fn required_role(req: &Request) -> Option<Role> {
    let seg = shape(&req.path);
    let parts: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (req.method.as_str(), parts.as_slice()) {
        (m, p) if !allowed(m, p) => None,
        (_, ["v1", "health"]) => None,
        (_, ["v1", "sessions", ..]) | ("GET", ["v1", "jobs", _]) => Some(Role::Operate),
        _ => Some(Role::Administer),
    }
}

fn parse_body(req: &Request) -> Result<serde_json::Map<String, Value>, Refusal> {
    if req.body.is_empty() {
        // A body sent without Content-Length (or chunked) is not read: HTTP has no other end to it.
        return Err(Refusal::new(
            400,
            "the request needs a JSON object body, and none came: send it with a Content-Length (or chunked)",
        ));
    }
    match serde_json::from_slice::<json::Strict>(&req.body).map(|s| s.0) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Refusal::new(400, "the body must be a JSON object")),
        Err(e) if e.is_data() => Err(Refusal::new(400, format!("the body is refused: {e}"))),
        Err(e) => Err(Refusal::new(400, format!("the body is not valid JSON: {e}"))),
    }
}

fn user_and_job(o: &serde_json::Map<String, Value>) -> Result<(String, Option<String>), Refusal> {
    let user_id = opt_str(o, "user_id", "user_id")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad("user_id", "is required"))?;
    check_text("user_id", &user_id, 128)?;
    let job_id = opt_str(o, "job_id", "job_id")?;
    if job_id.as_deref().is_some_and(|j| j.trim().is_empty()) {
        return Err(bad("job_id", "must not be empty (leave it out to get a new one)"));
    }
    if let Some(j) = &job_id {
        check_text("job_id", j, 128)?;
    }
    Ok((user_id, job_id))
}

/// Checks a session request as Smile ID will, before anyone stands in front of the camera.
pub fn parse_start_session(body: &serde_json::Map<String, Value>) -> Result<StartSession, Refusal> {
    only_keys(
        body,
        &["job_type", "user_id", "job_id", "partner_params", "id_info", "options", "document_back", "language"],
        "",
    )?;
    let jt = match body.get("job_type") {
        None | Some(Value::Null) => return Err(bad("job_type", "is required: 1, 2, 4, 6 or 11")),
        Some(v) => {
            v.as_i64().ok_or_else(|| bad("job_type", &format!("must be a whole number (1, 2, 4, 6 or 11), not {v}")))?
        }
    };
    let job_type = JobType::from_code(jt).filter(|t| t.has_images()).ok_or_else(|| {
        bad("job_type", "must be 1, 2, 4, 6 or 11 (5 is POST /v1/enhanced_kyc, or `kiosk-agent ekyc`)")
    })?;
    let (user_id, job_id) = user_and_job(body)?;
    let mut extra = BTreeMap::new();
    if let Some(pp) = body.get("partner_params").filter(|v| !v.is_null()) {
        let pp = object(pp, "partner_params")?;
        if pp.len() > 20 {
            return Err(bad("partner_params", "has more than 20 entries"));
        }
        for (k, v) in pp {
            check_text(&format!("partner_params key {k:?}"), k, 64)?;
            if let Some(v) = v.as_str() {
                check_text(&format!("partner_params.{k}"), v, 256)?;
            }
            // In any case: Smile ID's keys are not case-sensitive everywhere, and a host's
            // KIOSK_ID would sit beside the kiosk's kiosk_id as a second, conflicting one.
            let key = k.to_ascii_lowercase();
            if ["user_id", "job_id", "job_type"].contains(&key.as_str()) {
                return Err(bad(&format!("partner_params.{k}"), "is set at the top level of the request"));
            }
            // They trace a result to the kiosk that took it: only its own config says them.
            if ["kiosk_id", "kiosk_site", "kiosk_region"].contains(&key.as_str()) {
                return Err(bad(
                    &format!("partner_params.{k}"),
                    "is set by the kiosk itself, from [kiosk] in kiosk.toml",
                ));
            }
            if !v.is_string() {
                return Err(bad(&format!("partner_params.{k}"), "must be a string"));
            }
            extra.insert(k.clone(), v.clone());
        }
    }
    let id_info = parse_id_info(body.get("id_info"))?;
    let mut options = JobOptions::default();
    if let Some(o) = body.get("options").filter(|v| !v.is_null()) {
        let o = object(o, "options")?;
        only_keys(
            o,
            &["return_job_status", "return_history", "return_image_links", "use_enrolled_image", "callback_url"],
            "options.",
        )?;
        options.return_job_status = opt_bool(o, "return_job_status", "options.return_job_status", true)?;
        options.return_history = opt_bool(o, "return_history", "options.return_history", false)?;
        options.return_image_links = opt_bool(o, "return_image_links", "options.return_image_links", false)?;
        options.use_enrolled_image = opt_bool(o, "use_enrolled_image", "options.use_enrolled_image", false)?;
        options.callback_url = opt_str(o, "callback_url", "options.callback_url")?;
        if let Some(u) = &options.callback_url {
            check_text("options.callback_url", u, 2048)?;
            // Smile ID posts the result there, names and ID number included: never in plaintext.
            if !u.starts_with("https://") {
                return Err(bad("options.callback_url", "must be an https:// URL"));
            }
        }
    }
    let document_back = opt_bool(body, "document_back", "document_back", job_type.is_document())?;
    let language = opt_str(body, "language", "language")?;
    if let Some(l) = &language {
        if l.is_empty() || l.len() > 16 || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad("language", "must be a language code such as \"en\", \"fr\" or \"sw\""));
        }
    }
    let req = StartSession { job_type, user_id, job_id, extra, id_info, options, document_back, language, owner: None };
    // The same rules the job will meet after capture, checked now against stand-in images.
    validate(&provisional_job(&req)).map_err(|e| invalid(&e))?;
    Ok(req)
}

/// The job a session would make, with stand-in images: what can be checked before the person
/// spends minutes at the camera.
pub fn provisional_job(r: &StartSession) -> Job {
    const JPEG: [u8; 4] = [0xFF, 0xD8, 0xFF, 0xD9];
    let img = |t: ImageType, n: &str| JobImage { image_type: t, file_name: n.into(), jpeg: JPEG.to_vec() };
    let mut images = vec![img(ImageType::SelfieFile, "selfie.jpg"), img(ImageType::LivenessFile, "liveness_0.jpg")];
    if r.job_type.is_document() {
        images.push(img(ImageType::IdFrontFile, "id_front.jpg"));
    }
    Job {
        partner_params: PartnerParams {
            user_id: r.user_id.clone(),
            job_id: r.job_id.clone().unwrap_or_else(|| "new".into()),
            job_type: r.job_type,
            extra: r.extra.clone(),
        },
        id_info: r.id_info.clone(),
        options: r.options.clone(),
        images,
        consent: None,
        metadata: Vec::new(),
    }
}

pub fn parse_enhanced_kyc(body: &serde_json::Map<String, Value>) -> Result<EnhancedKyc, Refusal> {
    only_keys(body, &["user_id", "job_id", "id_info"], "")?;
    let (user_id, job_id) = user_and_job(body)?;
    let id_info = parse_id_info(body.get("id_info"))?;
    let job = Job {
        partner_params: PartnerParams {
            user_id: user_id.clone(),
            job_id: job_id.clone().unwrap_or_else(|| "new".into()),
            job_type: JobType::EnhancedKyc,
            extra: Default::default(),
        },
        id_info: id_info.clone(),
        options: JobOptions::default(),
        images: Vec::new(),
        consent: None,
        metadata: Vec::new(),
    };
    validate(&job).map_err(|e| invalid(&e))?;
    Ok(EnhancedKyc { user_id, job_id, id_info })
}

fn reply<T: Serialize>(r: Result<T, Refusal>, ok: u16) -> Response {
    match r.and_then(|v| serde_json::to_value(v).map_err(|e| Refusal::new(500, e.to_string()))) {
        Ok(v) => Response::json(ok, &v),
        Err(e) => {
            let mut v = json!({"error": e.error, "code": e.code_or_default()});
            if let Some(secs) = e.retry_after_secs {
                v["retry_after_secs"] = secs.into();
            }
            if let Some(id) = &e.session_id {
                v["session_id"] = id.as_str().into();
            }
            Response { retry_after_secs: e.retry_after_secs, ..Response::json(e.status, &v) }
        }
    }
}

/// A session id not known: mistyped, or from before a restart (sessions live in the agent).
fn no_session(b: &dyn Backend) -> String {
    match b.started_at() {
        Some(t) => format!(
            "no session with that id that this caller may see: mistyped, another operator's, long finished, or begun before the agent started at {t} (sessions end with the agent)"
        ),
        None => "no session with that id".into(),
    }
}

/// A session that has ended, asked to change: what became of it, and what can still be done.
fn ended(b: &dyn Backend, v: &SessionView) -> Refusal {
    let state = serde_json::to_value(v.state).ok().and_then(|s| s.as_str().map(str::to_string)).unwrap_or_default();
    let what = match (v.state, b.job(&v.job_id)) {
        (SessionState::Queued, Some(r)) if r.stage.holds_images() => format!(
            "its job {} was captured with the person's consent and is kept ({}); an admin can purge it (DELETE /v1/jobs/{})",
            v.job_id,
            r.stage.as_str(),
            escape_segment(&v.job_id)
        ),
        (SessionState::Queued, Some(r)) => format!("its job {} is done ({})", v.job_id, r.stage.as_str()),
        (SessionState::Queued, None) => format!("its job {} was purged", v.job_id),
        _ => "nothing of it was kept".into(),
    };
    Refusal::coded(409, "session_ended", format!("session {} has already ended ({state}): {what}", v.session_id))
}

fn found<T>(v: Option<T>, what: &'static str) -> Result<T, Refusal> {
    v.ok_or_else(|| Refusal::coded(404, "no_job", format!("no {what} with that id")))
}

/// 404 for a session id this caller cannot see.
fn no_such_session(b: &dyn Backend) -> Refusal {
    Refusal::coded(404, "no_session", no_session(b))
}

/// Routes one request for `caller`. Never panics on any input; answers 4xx for every bad
/// request, 403 when the caller lacks the route's role.
pub fn route(b: &dyn Backend, caller: &Caller, req: &Request) -> Response {
    let m = req.method.as_str();
    if let Some(need) = required_role(req) {
        if caller.role.is_none_or(|r| r < need) {
            let msg = format!(
                "{m} {} needs the {} role, which uid {} does not have; add its user or group to [api] {} in kiosk.toml",
                req.path,
                need.name(),
                caller.uid,
                if need == Role::Administer { "admins" } else { "operators" }
            );
            return Response::json(403, &json!({ "error": msg, "code": "forbidden" }));
        }
    }
    let Some(seg) = segments(&req.path) else {
        let msg = "the path has a %-escape that is not %XX of UTF-8 bytes; escape each byte of a job_id's reserved characters as %XX";
        return Response::json(400, &json!({ "error": msg, "code": "bad_request" }));
    };
    let parts: Vec<&str> = seg.iter().map(String::as_str).collect();
    // An operator sees only the results of the jobs it started, and acts only on its own
    // sessions and the kiosk's walk-up ones.
    let admin = caller.role >= Some(Role::Administer);
    let mine = |r: Record| (admin || r.owner == Some(caller.uid)).then_some(r);
    let session_mine = |id: &str| admin || b.session(id).is_none_or(|v| v.owner.is_none_or(|o| o == caller.uid));
    if let ["v1", "sessions", id, ..] = parts.as_slice() {
        if !session_mine(id) {
            return reply(Err::<(), _>(no_such_session(b)), 200);
        }
    }
    match (m, parts.as_slice()) {
        ("POST", ["v1", "sessions"]) => {
            let start = parse_body(req).and_then(|o| parse_start_session(&o));
            reply(start.and_then(|r| b.start_session(StartSession { owner: Some(caller.uid), ..r })), 202)
        }
        ("GET", ["v1", "sessions"]) => {
            // Newest first: a host application that restarted finds the session it started.
            let mut all: Vec<SessionView> =
                b.sessions().into_iter().filter(|v| admin || v.owner.is_none_or(|o| o == caller.uid)).collect();
            all.sort_by(|a, b| b.started_at.cmp(&a.started_at));
            reply(Ok::<_, Refusal>(all), 200)
        }
        ("GET", ["v1", "sessions", id]) => reply(b.session(id).ok_or_else(|| no_such_session(b)), 200),
        ("POST", ["v1", "sessions", id, "consent"]) => {
            let granted = parse_body(req).and_then(|o| {
                only_keys(&o, &["granted"], "")?;
                match o.get("granted") {
                    Some(Value::Bool(g)) => Ok(*g),
                    Some(_) => Err(bad("granted", "must be true or false (a JSON boolean, not a string or number)")),
                    None => Err(bad("granted", "is required: true or false")),
                }
            });
            let asked = |v: SessionView, g: bool| {
                match v.state {
                SessionState::AwaitingConsent => Ok(()),
                SessionState::Capturing if v.step == "document_review" => Ok(()),
                s if s.is_over() => Err(ended(b, &v)),
                // Past the consent, which was given (a "yes" sent again after its answer was lost).
                _ if g => Err(Refusal::coded(409, "no_question", format!(
                    "no question is on the kiosk's screen now (step {}); the answer was not taken, and none is needed: the person has agreed already. A document photo's review, when it comes, shows as step document_review",
                    v.step
                ))),
                _ => Err(Refusal::coded(409, "no_question", format!(
                    "no question is on the kiosk's screen now (step {}); the answer was not taken. To stop the session and keep nothing: POST /v1/sessions/{id}/cancel",
                    v.step
                ))),
            }
            };
            let view = || b.session(id).ok_or_else(|| no_such_session(b));
            let answered = granted.and_then(|g| {
                asked(view()?, g)?;
                // Its time ran out as the answer came: the session ended without it.
                match b.consent(id, g).ok_or_else(|| no_such_session(b))? {
                    v if v.state == SessionState::Abandoned => Err(ended(b, &v)),
                    v => Ok(v),
                }
            });
            reply(answered, 200)
        }
        ("POST", ["v1", "sessions", id, "cancel"]) => {
            // A job already queued was captured with consent: cancelling cannot take it back.
            let cancelled = b.cancel(id).ok_or_else(|| no_such_session(b)).and_then(|v| match v.state {
                SessionState::Queued => Err(ended(b, &v)),
                _ => Ok(v),
            });
            reply(cancelled, 200)
        }
        ("GET", ["v1", "jobs"]) => reply(b.jobs().map(|all| all.into_iter().map(|r| job_view(b, r)).collect::<Vec<_>>()), 200),
        ("GET", ["v1", "jobs", id]) => match b.job(id).and_then(mine) {
            Some(r) => reply(Ok::<_, Refusal>(job_view(b, r)), 200),
            // An Enhanced KYC lookup (admin only, as is asking for one), read again.
            None => match b.enhanced_kyc_answer(id).filter(|_| admin) {
                Some(Some(a)) => reply(
                    Ok::<_, Refusal>(json!({"job_id": a.job_id, "job_type": 5, "stage": "result", "result": a.result})),
                    200,
                ),
                // Sent, Smile ID not answered yet: what a queued job says then.
                Some(None) => reply(Ok::<_, Refusal>(json!({"job_id": id, "job_type": 5, "stage": "uploaded"})), 200),
                None if b.job_gone(id) => reply(
                    Err::<Record, _>(Refusal::coded(
                        404,
                        "job_gone",
                        format!("job {id} is no longer on this kiosk: it was purged, or removed after its result was kept its time (queue settings), or it was an Enhanced KYC lookup whose answer is kept 10 minutes"),
                    )),
                    200,
                ),
                None => reply(found(None::<Record>, "job"), 200),
            },
        },
        ("DELETE", ["v1", "jobs", id]) => reply(b.purge(id).map(|_| json!({"purged": id})), 200),
        ("POST", ["v1", "jobs", id, "retry"]) => reply(b.retry(id), 200),
        ("POST", ["v1", "jobs", id, "restore"]) => reply(b.restore(id), 200),
        ("POST", ["v1", "enhanced_kyc"]) => {
            reply(parse_body(req).and_then(|o| parse_enhanced_kyc(&o)).and_then(|r| b.enhanced_kyc(r)), 200)
        }
        ("GET", ["v1", "health"]) => {
            let mut health = b.health();
            // Anyone who may connect reads health; what a server said about the link (which may
            // quote the request it was sent) is for those with a role.
            if caller.role.is_none() {
                health.uplink = health.uplink.without_detail();
            }
            reply(Ok::<_, Refusal>(health), 200)
        }
        ("GET", ["metrics"]) => Response {
            date: None,
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: b.metrics().into_bytes(),
            wire: crate::httpd::Wire::Whole,
            retry_after_secs: None,
            allow: None,
        },
        (_, p) if endpoint(p) => Response {
            allow: Some(methods(p)),
            ..Response::json(
                405,
                &json!({"error": format!("{m} is not allowed on {}; it takes {}", req.path, methods(p)), "code": "method_not_allowed"}),
            )
        },
        _ => {
            // "//v1/…": a base URL written with a trailing slash.
            let hint = if req.path.starts_with("//") { " (a base URL with a trailing \"/\"?)" } else { "" };
            let msg = format!(
                "no endpoint {m} {}{hint}; the endpoints are under /v1/ (README: the host application's side)",
                req.path
            );
            Response::json(404, &json!({ "error": msg, "code": "no_endpoint" }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_with_reserved_characters_is_reached_escaped() {
        for id in ["../../etc/passwd", "a b?c#d", "jöb-1", "50%", "plain-1"] {
            let seg = segments(&format!("/v1/jobs/{}/retry", escape_segment(id))).unwrap();
            assert_eq!(seg, ["v1", "jobs", id, "retry"]);
        }
        assert_eq!(escape_segment("plain-1.x_~"), "plain-1.x_~");
        for bad in ["/v1/jobs/%zz", "/v1/jobs/%C3", "/v1/jobs/%4"] {
            assert!(segments(bad).is_none(), "{bad}");
            let req = Request {
                method: "GET".into(),
                path: bad.into(),
                query: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            };
            assert_eq!(required_role(&req), Some(Role::Operate), "a job's read, as sent");
        }
    }
}
