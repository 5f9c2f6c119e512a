//! Drives one submission to its outcome: signs when asked, sends, sleeps until polls are due,
//! checks the clock against every answer's `Date`, and retries transient failures a bounded
//! number of times with backoff.

use std::time::Duration;

use crate::smileid::signature::Signer;
use crate::smileid::submit::{Outcome, Output, Phase, Progress, Submission, SubmitError};
use crate::smileid::timestamp::{parse_http_date, UnixMillis};
use crate::smileid::wire::RetryClass;

use super::http::HttpClient;

/// Events worth telling the operator, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Sent { what: &'static str },
    Retrying { class: RetryClass, error: String, after: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// Not the job's end: it stays queued and a later pass tries it again.
    #[error(
        "{attempts} requests in a row failed; the job waits in the queue and is tried again later. Last error: {last}"
    )]
    GaveUp { attempts: u32, last: SubmitError },
    #[error("uploads are paused, every job kept, because this kiosk's credentials were refused: {0}. Check the partner id, the API key for this environment, and the clock; the service reads its config and key when it starts, so restart it after changing them (`systemctl restart kiosk-agent`)")]
    Paused(SubmitError),
    #[error("the server at the configured URL answered HTTP {status} without Smile ID's codes, so it is not Smile ID's API; uploads are paused and every job kept: check smileid.environment (\"sandbox\", \"production\", or a URL ending in /v1) and any proxy or Wi-Fi login page in between; the service reads its config when it starts, so restart it after changing it (`systemctl restart kiosk-agent`)")]
    Misdirected { status: u16 },
    #[error("{}; requests would be refused, so nothing is signed until the clock is fixed (check NTP)", clock_words(*skew_secs, *at_least))]
    ClockWrong {
        skew_secs: i64,
        /// Known only as a bound: the server's certificate was not yet valid by this clock.
        at_least: bool,
    },
    #[error(transparent)]
    Sign(#[from] crate::smileid::signature::SignError),
    #[error("stopped before the next request: {0}")]
    Abandoned(String),
}

/// "the kiosk's clock is [at least] N s behind/ahead of the server's".
pub fn clock_words(skew_secs: i64, at_least: bool) -> String {
    let way = if skew_secs < 0 { "behind" } else { "ahead of" };
    let bound = if at_least { "at least " } else { "" };
    let secs = skew_secs.unsigned_abs();
    // Seconds for NTP's small steps; hours or days too for a board that booted at its image's date.
    let plain = match secs {
        0..900 => String::new(),
        900..172_800 => format!(" ({:.1} hours)", secs as f64 / 3600.0),
        _ => format!(" ({:.0} days)", secs as f64 / 86_400.0),
    };
    format!("the kiosk's clock is {bound}{secs} s{plain} {way} the server's")
}

/// How hard to try before handing the job back to the queue.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_failures: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Largest accepted difference between the local clock and a server's `Date`.
    pub max_clock_skew: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_failures: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_clock_skew: Duration::from_secs(300),
        }
    }
}

/// Local clock minus server clock, from an HTTP `Date` header (seconds resolution).
pub fn clock_skew_secs(date_header: &str, local: UnixMillis) -> Option<i64> {
    parse_http_date(date_header).map(|server| (local.0 - server.0) / 1000)
}

/// Runs `sub` until it is done, calling `on_event` (with the progress to persist) before each
/// request leaves and after each failure. An error from `on_event` before a request (the
/// progress could not be saved, the job was purged) stops the submission there: nothing is sent
/// that the queue does not know of.
pub fn drive(
    sub: &mut Submission,
    http: &HttpClient,
    signer: &dyn Signer,
    policy: &RetryPolicy,
    mut on_event: impl FnMut(&Event, &Progress) -> Result<(), String>,
) -> Result<Outcome, DriveError> {
    let mut failures = 0u32;
    loop {
        let now = UnixMillis::now();
        let req = match sub.poll_output(now) {
            Output::Done(o) => return Ok(o),
            Output::NeedSignature => {
                let signed = signer.sign(now, &sub.sign_context())?;
                sub.provide_signature(signed);
                continue;
            }
            Output::Wait(until) => {
                std::thread::sleep(Duration::from_millis((until.0 - now.0).clamp(0, 60_000) as u64));
                continue;
            }
            Output::AwaitingResponse => unreachable!("drive sends and answers each request before asking again"),
            Output::Send(req) => req,
        };
        let what = if req.url.ends_with("/upload") {
            "prep_upload"
        } else if req.url.ends_with("/job_status") {
            "job_status"
        } else {
            "zip upload"
        };
        on_event(&Event::Sent { what }, sub.progress()).map_err(DriveError::Abandoned)?;
        let result = match http.execute(&req) {
            Ok(resp) => {
                let skew = resp.date.as_deref().and_then(|d| clock_skew_secs(d, UnixMillis::now()));
                let r = sub.handle_response(resp, UnixMillis::now());
                if let Some(s) = skew.filter(|s| s.unsigned_abs() > policy.max_clock_skew.as_secs()) {
                    // The answer is kept (the machine has moved on); the next signature would be refused.
                    return Err(DriveError::ClockWrong { skew_secs: s, at_least: false });
                }
                r
            }
            Err(e) => {
                let err = sub.handle_transport_error(e.to_string());
                if let Some(behind) = e.clock_behind_secs() {
                    // The handshake failed on this clock: nothing was sent, and no retry can help.
                    return Err(DriveError::ClockWrong { skew_secs: -(behind as i64), at_least: true });
                }
                Err(err)
            }
        };
        let Err(err) = result else { continue };
        if sub.phase() == Phase::Done {
            continue; // Final: the outcome carries the error.
        }
        if err.class() == RetryClass::AuthPause {
            return Err(DriveError::Paused(err));
        }
        if err.class() == RetryClass::Misdirected {
            let status = match &err {
                SubmitError::Api(a) => a.status,
                _ => 0,
            };
            return Err(DriveError::Misdirected { status });
        }
        failures += 1;
        if failures >= policy.max_failures {
            return Err(DriveError::GaveUp { attempts: failures, last: err });
        }
        let after = backoff(policy, failures, err.class());
        on_event(&Event::Retrying { class: err.class(), error: err.to_string(), after }, sub.progress())
            .map_err(DriveError::Abandoned)?;
        std::thread::sleep(after);
    }
}

fn backoff(p: &RetryPolicy, failures: u32, class: RetryClass) -> Duration {
    if matches!(class, RetryClass::Resign | RetryClass::NewUploadUrl | RetryClass::RetryFlag) {
        return Duration::ZERO; // A protocol step, not congestion.
    }
    p.first_backoff.saturating_mul(1 << failures.min(16)).min(p.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_from_date_header() {
        let local = UnixMillis(784_111_777_000 + 3_600_000);
        assert_eq!(clock_skew_secs("Sun, 06 Nov 1994 08:49:37 GMT", local), Some(3600));
        assert_eq!(clock_skew_secs("garbage", local), None);
    }
}
