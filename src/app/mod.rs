//! The application core of `kiosk-agent run`, built once from a typed [`Config`]: the queue,
//! the display (opened for the day and lent to sessions), the session manager, the control
//! API, the button, the screen between sessions and the uplink. The link state is shared as a
//! typed [`LinkWatch`]; JSON exists only at the API's edge.
//!
//! ```text
//!   button ──▶ frontdesk::on_button ──▶ SessionManager ◀── control API (socket)
//!                                        │  borrows
//!   frontdesk::run ── draws between ──▶ DisplaySlot
//!        ▲ link                          │
//!   Uplink (this thread) ──▶ Smile ID    Queue ◀── sessions enqueue, uplink drains
//! ```

pub mod frontdesk;
pub mod service;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::display::slot::DisplaySlot;
use crate::display::{Display, DisplayError};
use crate::queue::{Queue, QueueError, Record};
use crate::session::SessionRequest;
use crate::smileid::signature::Signer;
use crate::smileid::submit::SubmitConfig;
use crate::uplink::drive::Event;
use crate::uplink::http::HttpClient;
use crate::uplink::service::{LinkState, LinkWatch, Uplink};
use service::Service;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Display(#[from] DisplayError),
    #[error(transparent)]
    Api(#[from] crate::api::server::ServerError),
    #[error(transparent)]
    Button(#[from] crate::input::gpio::GpioError),
    #[error(transparent)]
    Input(#[from] crate::input::evdev::EvdevError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::listen::ListenError),
    #[error(transparent)]
    MetricsTls(#[from] crate::metrics::listen::TlsError),
    #[error("the queue's index failed writing (a full disk, or a storage fault) and must be opened again: the agent stops so that its restart does (systemd restarts it); every job it acknowledged is kept. If it was the disk, free space on it")]
    IndexFailed,
}

/// What talking to Smile ID needs, built once from the config: the HTTPS client (with the
/// extra CA), the signer of the custody mode and the submission settings. The service, `upload`
/// and `run --exit-when-idle` all make their uplink from it.
pub struct SmileLink {
    pub http: HttpClient,
    pub signer: Box<dyn Signer>,
    pub submit: SubmitConfig,
}

impl SmileLink {
    /// For a command: a credential missing is an error.
    pub fn new(c: &Config) -> Result<SmileLink, ConfigError> {
        Self::build(c, false)
    }

    /// For the service: a credential missing leaves the uplink paused saying so
    /// ([`MissingCredential`](crate::uplink::custody::MissingCredential)), and the kiosk
    /// serves people and keeps their jobs meanwhile.
    pub fn for_service(c: &Config) -> Result<SmileLink, ConfigError> {
        Self::build(c, true)
    }

    fn build(c: &Config, missing_ok: bool) -> Result<SmileLink, ConfigError> {
        let http = HttpClient::new(c.smileid.extra_ca_file.as_deref(), &c.http)
            .map_err(|e| ConfigError::Invalid { key: "smileid.extra_ca_file", problem: e.to_string() })?;
        let signer = match c.signer(&http) {
            Err(e @ ConfigError::ApiKey { .. }) if missing_ok => {
                let missing = crate::uplink::custody::MissingCredential::new(&e);
                crate::log::error(missing.missing().unwrap_or_default(), &[]);
                Box::new(missing)
            }
            r => r?,
        };
        let submit = SubmitConfig::new(&c.smileid.partner_id, &c.base_url()?, signer.response_check());
        Ok(SmileLink { http, signer, submit })
    }

    /// An uplink over `queue` that reports to `state_dir/status.json`.
    pub fn uplink<'a>(&'a self, c: &Config, queue: &'a Queue) -> Uplink<'a> {
        let mut u = Uplink::new(queue, &self.http, &*self.signer, self.submit.clone(), c.uplink.clone());
        u.status_file = Some(c.state_dir.join("status.json"));
        u
    }
}

/// Which kiosk took a job, for its partner_params: Smile ID echoes them in results and
/// callbacks (values are strings, as its SDKs require).
pub fn kiosk_params(c: &Config) -> std::collections::BTreeMap<String, serde_json::Value> {
    let k = &c.kiosk;
    [("kiosk_id", Some(k.id())), ("kiosk_site", k.site.clone()), ("kiosk_region", k.region.clone())]
        .into_iter()
        .filter_map(|(key, v)| Some((key.to_string(), serde_json::Value::String(v?))))
        .collect()
}

/// A session as the kiosk's config completes it: the partner's name on the consent screen, the
/// callback URL, the person's language (the kiosk's by default), the kiosk's identity.
pub fn session_request(
    c: &Config,
    r: crate::api::StartSession,
) -> Result<SessionRequest, crate::display::text::TextError> {
    let d = &c.display;
    let texts = match r.language.as_deref() {
        Some(tag) => crate::display::Texts::lookup(tag, d.lang_dir.as_deref())?,
        None => crate::display::Texts::load(&d.language, d.lang_dir.as_deref())?,
    };
    let mut options = r.options;
    if options.callback_url.is_none() {
        options.callback_url = c.smileid.callback_url.clone();
    }
    // The kiosk's identity is its config's (the API refuses a host's kiosk_* keys).
    let mut extra = r.extra;
    extra.extend(kiosk_params(c));
    Ok(SessionRequest {
        partner_name: c.smileid.partner_name.clone(),
        user_id: r.user_id,
        job_id: r.job_id.unwrap_or_else(crate::session::new_job_id),
        job_type: r.job_type,
        id_info: r.id_info,
        options,
        extra,
        document_back: r.document_back,
        texts: Some(texts),
        owner: r.owner,
    })
}

/// The running kiosk.
pub struct Agent {
    pub config: Config,
    pub queue: Arc<Queue>,
    pub service: Arc<Service>,
    pub display: Arc<DisplaySlot>,
    pub link: LinkWatch,
    /// Unix ms of the uplink's last sign of life, for the systemd watchdog.
    pub heartbeat: Arc<AtomicI64>,
}

impl Agent {
    /// Opens the display and builds every part; nothing runs yet. A display whose device is not
    /// there yet is waited for: everything else runs, and sessions are refused until it is.
    pub fn build(config: Config, queue: Arc<Queue>) -> Result<Agent, AppError> {
        if let Some(why) = config.display.screen_missing_why() {
            crate::log::warn(
                &format!("{why}, or the [display] settings: no sessions until it is there (looked for every 2 s); uploads, the control API and health run meanwhile"),
                &[],
            );
        }
        if let Some(words) = crate::doctor::keys_beside_data_words(&config) {
            crate::log::warn(
                &format!("{words}; fine for a trial, not for a kiosk: `kiosk-agent doctor` says what to do"),
                &[],
            );
        }
        let display = DisplaySlot::new(config.display.open_or_await()?);
        let link: LinkWatch = Arc::new(std::sync::Mutex::new(LinkState::Unknown));
        let service = Arc::new(service::build(config.clone(), queue.clone(), display.clone(), link.clone())?);
        Ok(Agent { config, queue, service, display, link, heartbeat: Default::default() })
    }

    /// Serves `/metrics` on `addr` (over TLS when configured) until `stop`.
    fn serve_metrics(&self, addr: &str, stop: Arc<AtomicBool>) -> Result<(), AppError> {
        let c = &self.config.metrics;
        let service = self.service.clone();
        let render = move || crate::metrics::expose(&service.metrics, &service.identity, crate::VERSION);
        let tls = c.tls()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let bound = crate::metrics::listen::serve(addr, tls, render, stop)?;
        let public = match bound.ip() {
            std::net::IpAddr::V4(ip) => !(ip.is_loopback() || ip.is_private() || ip.is_link_local()),
            std::net::IpAddr::V6(ip) => !ip.is_loopback(),
        };
        if scheme == "http" && public {
            crate::log::warn(
                &format!("metrics are served in plain HTTP on {bound}, an address others may reach; bind [metrics] listen to the management VPN or loopback, or set tls_cert, tls_key and client_ca"),
                &[],
            );
        }
        crate::log::info(&format!("metrics for Prometheus on {scheme}://{bound}/metrics"), &[]);
        Ok(())
    }

    /// Serves the control API, the button and the screen, and uploads on this thread until
    /// `stop` is set.
    pub fn run(&self, stop: &AtomicBool, on_event: impl FnMut(&Record, &Event) + Send) -> Result<(), AppError> {
        let threads_stop = Arc::new(AtomicBool::new(false));
        let c = &self.config;
        service::start_api(self.service.clone(), threads_stop.clone())?;
        if c.display.device_absent() {
            // Nobody can use the kiosk without its screen, and a touch panel maps to the
            // screen's own size: the inputs are read once it is there and open.
            let (service, slot, stop) = (self.service.clone(), self.display.clone(), threads_stop.clone());
            std::thread::Builder::new()
                .name("inputs".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Opened by the front desk's first screen after the device appears.
                        let open = slot.borrow(TICK).is_some_and(|d| d.live());
                        if open {
                            if let Err(e) = start_inputs(&service, &slot, stop) {
                                crate::log::error(
                                    &format!("{e}; the kiosk runs without its inputs until restarted"),
                                    &[],
                                );
                            }
                            return;
                        }
                        std::thread::sleep(TICK);
                    }
                })
                .expect("a thread can be spawned");
        } else {
            start_inputs(&self.service, &self.display, threads_stop.clone())?;
        }
        {
            let (service, slot, stop) = (self.service.clone(), self.display.clone(), threads_stop.clone());
            std::thread::Builder::new()
                .name("frontdesk".into())
                .spawn(move || frontdesk::run(service, slot, stop))
                .expect("a thread can be spawned");
        }
        if let Some(addr) = &c.metrics.listen {
            // The fleet's view is not worth the person's: without it the kiosk still serves.
            if let Err(e) = self.serve_metrics(addr, threads_stop.clone()) {
                crate::log::error(&format!("{e}; the kiosk runs without serving metrics until restarted"), &[]);
                self.service.metrics_unserved.store(true, Ordering::Relaxed);
            }
        }
        crate::log::info(&format!("running; control API on {}", c.api.socket.display()), &[]);
        if let Some(words) = crate::doctor::expiry_words(c) {
            crate::log::warn(&words, &[]);
        }
        crate::systemd::notify("READY=1\nSTATUS=running");
        let mut uplink = self.service.smile.uplink(c, &self.queue);
        uplink.link_watch = Some(self.link.clone());
        uplink.metrics = self.service.metrics.clone();
        uplink.heartbeat = self.heartbeat.clone();
        uplink.heartbeat.store(crate::clock::boot_ms(), Ordering::Relaxed);
        // sled fails every write after one failed (a full disk, even once freed): only opening
        // it again mends that. Once no person is mid-session and the disk has room for the
        // open, the agent stops to be restarted (before, a restart would fail to open, and
        // leave the kiosk dark to its fleet; meanwhile health says storage_unwritable).
        let (uplink_stop, reopen) = (AtomicBool::new(false), AtomicBool::new(false));
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !uplink_stop.load(Ordering::Relaxed) {
                    if stop.load(Ordering::Relaxed) {
                        uplink_stop.store(true, Ordering::Relaxed);
                    } else if self.queue.index_failed()
                        && self.service.sessions.active().is_none()
                        && self.queue.reopenable()
                    {
                        reopen.store(true, Ordering::Relaxed);
                        uplink_stop.store(true, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
            });
            let result = uplink.run(&uplink_stop, false, on_event);
            uplink_stop.store(true, Ordering::Relaxed);
            result
        });
        threads_stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&c.api.socket);
        // Stopped (systemctl stop, an upgrade, the restart above): a person mid-session is told
        // the kiosk is out of service, not left with a hint nobody is following.
        if let Some(id) = self.service.sessions.active() {
            // A session saving its job cannot be cancelled: it is waited for (well inside
            // systemd's stop time), so that its job is whole in the queue.
            self.service.sessions.cancel(&id);
            let t = std::time::Instant::now();
            while self.service.sessions.active().is_some() && t.elapsed() < std::time::Duration::from_secs(20) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let state = self.service.sessions.view(&id).map(|v| v.state);
            let words = match state {
                Some(crate::session::manager::SessionState::Queued) => {
                    "its job was saved before the agent stopped".to_string()
                }
                Some(s) if s.is_over() => "it was cancelled by the stop, nothing of it kept".to_string(),
                _ => "it had not ended after 20 s and was cut off; nothing of it kept".to_string(),
            };
            crate::log::warn(&format!("stopping with session {id} under way: {words}"), &[("SESSION_ID", &id)]);
        }
        if let Some(mut d) = self.display.borrow(std::time::Duration::from_secs(3)) {
            let _ = d.show(&crate::display::screens::Screen::Error {
                problem: crate::display::screens::Problem::OutOfService,
            });
        }
        crate::log::info("stopped", &[]);
        result?;
        if reopen.load(Ordering::Relaxed) {
            return Err(AppError::IndexFailed);
        }
        Ok(())
    }
}

/// How often the inputs wait for a screen that was not there at the start to be open.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads the button and the evdev devices (touch, keys), each on its own thread, into the
/// front desk.
fn start_inputs(service: &Arc<Service>, slot: &Arc<DisplaySlot>, stop: Arc<AtomicBool>) -> Result<(), AppError> {
    let size = slot.borrow(std::time::Duration::from_secs(5)).map_or(slot.size, |d| d.size());
    if let Some(button) = service.config.input.button() {
        let rx = crate::input::gpio::supervise(&button, service.sessions.button.clone());
        let (service, slot) = (service.clone(), slot.clone());
        std::thread::Builder::new()
            .name("button".into())
            .spawn(move || {
                for ev in rx {
                    frontdesk::on_button(&service, &slot, ev == crate::input::Event::Press);
                }
            })
            .expect("a thread can be spawned");
    }
    if !service.config.input.evdev.is_empty() {
        let (rx, can) = service.config.input.watch_evdev(size, stop)?;
        // The Start button, the language arrows and "Read more" need a finger.
        service.touch.store(can.touch, Ordering::Relaxed);
        service.keys.store(can.keys, Ordering::Relaxed);
        service.sessions.read_more.store(can.touch, Ordering::Relaxed);
        service.sessions.keys.store(can.keys, Ordering::Relaxed);
        let (service, slot) = (service.clone(), slot.clone());
        std::thread::Builder::new()
            .name("touch".into())
            .spawn(move || {
                for g in rx {
                    frontdesk::on_gesture(&service, &slot, g);
                }
            })
            .expect("a thread can be spawned");
    }
    Ok(())
}
