//! The `kiosk-agent` binary: argument parsing and error reporting; the work is in the library.

#[cfg(feature = "sandbox")]
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use kiosk_agent::api::escape_segment;
use kiosk_agent::app::SmileLink;
#[cfg(feature = "sandbox")]
use kiosk_agent::config::read_api_key;
use kiosk_agent::config::Config;
use kiosk_agent::display::Screen;
use kiosk_agent::log;
use kiosk_agent::queue::{Queue, QueueError, Record};
#[cfg(feature = "sandbox")]
use kiosk_agent::sandbox::{self, SandboxOptions};
use kiosk_agent::session::{self, ScriptedInput};
use kiosk_agent::smileid::job::{IdInfo, JobOptions, JobType};
use kiosk_agent::smileid::submit::Outcome;
use kiosk_agent::uplink::drive::Event;
use kiosk_agent::uplink::service::LinkState;

/// Identity-capture kiosk agent: guides a person through Smile ID verification on the
/// kiosk's camera and screen, queues the job safely while offline, and uploads it when the
/// network returns.
/// Where the package installs the config; every command's `--config` defaults to it.
const DEFAULT_CONFIG: &str = "/etc/kiosk-agent/kiosk.toml";

#[derive(Parser)]
#[command(name = "kiosk-agent", version = kiosk_agent::VERSION, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one Biometric KYC job end to end on built-in defaults: a local Smile ID sandbox,
    /// the synthetic camera, screens saved as PNGs. Prints the final job_status JSON last.
    #[cfg(feature = "sandbox")]
    Demo {
        /// Directory for the screens (out/screens) and the demo's state.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
    /// Serve a local HTTPS stand-in for Smile ID's v1 API (for development and tests).
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Address to listen on, e.g. 127.0.0.1:8443 (port 0 picks a free one).
        #[arg(long)]
        listen: SocketAddr,
        /// Partner id the sandbox accepts.
        #[arg(long)]
        partner_id: String,
        /// File holding the API key requests must be signed with.
        #[arg(long)]
        api_key_file: PathBuf,
        /// Where jobs are kept; ca.pem appears here once the sandbox is ready.
        #[arg(long)]
        state_dir: PathBuf,
        /// How far a request timestamp may be from this machine's clock.
        #[arg(long, default_value_t = 300)]
        timestamp_window_secs: i64,
        /// Lifetime of the upload URLs it hands out.
        #[arg(long, default_value_t = 900)]
        upload_url_ttl_secs: i64,
        /// Delay added before every answer, in milliseconds (to test interrupted requests).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Run the sandbox's clock this many seconds ahead (negative: behind), to test wrong clocks.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        clock_offset_secs: i64,
        /// File with the auth_token that /v1/auth_smile accepts (mobile-style key custody).
        #[arg(long)]
        auth_token_file: Option<PathBuf>,
    },
    /// Capture one job on the configured camera and display, and store it in the queue.
    /// Nothing is sent: `upload` does that when the network is there.
    Capture {
        /// Path to the TOML configuration.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The person's user_id in the partner's system.
        #[arg(long)]
        user_id: String,
        /// Smile ID job type: 1 Biometric KYC, 2 SmartSelfie authentication, 4 SmartSelfie
        /// enrollment, 6 Document Verification, 11 Enhanced Document Verification.
        #[arg(long, default_value_t = 1)]
        job_type: i64,
        /// JSON file with the id_info (country, id_type, id_number, names, dob, entered).
        #[arg(long)]
        id_info: Option<PathBuf>,
        /// A job_id chosen by the host application (default: a new unique one).
        #[arg(long)]
        job_id: Option<String>,
        /// Language of the screens for this person (en, fr, sw, ...; default: the config's).
        #[arg(long)]
        language: Option<String>,
        /// The person's consent was recorded by the host application; without it the
        /// consent screen is shown and the person answers on the kiosk's button ([input]
        /// backend = "gpio"); with no button the command refuses to start.
        #[arg(long)]
        consent_given: bool,
    },
    /// Upload what is due now, oldest first, and print each job's outcome as a JSON line.
    Upload {
        /// Path to the TOML configuration.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Run the kiosk as its service does: the screens and walk-up sessions, the control API, and uploads whenever the link is there, until stopped (SIGTERM).
    Run {
        /// Path to the TOML configuration.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Exit once no job is waiting (for scripts and tests).
        #[arg(long)]
        exit_when_idle: bool,
    },
    /// Drive a session through the running agent's control API, showing progress.
    Session {
        #[command(flatten)]
        at: ApiAt,
        /// Job type: 1 Biometric KYC, 2/4 SmartSelfie authentication/enrollment, 6/11 Document Verification.
        #[arg(long, default_value_t = 1)]
        job_type: i64,
        /// The person's user_id in the partner's system.
        #[arg(long)]
        user_id: String,
        /// A job_id chosen by the host application (default: a new unique one).
        #[arg(long)]
        job_id: Option<String>,
        /// JSON file with the id_info.
        #[arg(long)]
        id_info: Option<PathBuf>,
        /// The language the screens speak to this person (a code such as fr, yo, am; default: the
        /// one chosen at the kiosk, else [display] language).
        #[arg(long)]
        language: Option<String>,
        /// Document jobs: photograph only the front of the card (by default the back too).
        #[arg(long)]
        front_only: bool,
        /// The host application already recorded the person's consent: answer the consent screen yes.
        #[arg(long)]
        consent_given: bool,
    },
    /// Jobs as the running agent sees them (through the control API).
    Jobs {
        #[command(flatten)]
        at: ApiAt,
        /// A job_id to show; without it, all jobs are listed.
        job_id: Option<String>,
        /// Purge that job (images erased, record removed).
        #[arg(long, requires = "job_id")]
        purge: bool,
        /// Everything the agent keeps, as JSON (Smile ID's result may hold personal data).
        #[arg(long)]
        json: bool,
    },
    /// Enhanced KYC (job type 5) through the running agent: the ID details checked at the authority.
    Ekyc {
        #[command(flatten)]
        at: ApiAt,
        /// The person's user_id in the partner's system.
        #[arg(long)]
        user_id: String,
        /// JSON file with the id_info (country, id_type, id_number, names, dob).
        #[arg(long)]
        id_info: PathBuf,
        /// A job_id for the lookup, to read its answer again (`jobs JOB_ID`) if this command is
        /// cut off before it comes (default: a new unique one).
        #[arg(long)]
        job_id: Option<String>,
    },
    /// Show the link state and the queue's counts.
    Status {
        /// Path to the TOML configuration.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print the status as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Check the kiosk's parts (config, camera, display, input, clock, storage, key custody,
    /// network) and say for each what to do. Exits 1 if any check fails.
    Doctor {
        /// Path to the TOML configuration.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cameras: list the V4L2 devices and their formats, or stream from one and run the gates.
    Camera {
        #[command(subcommand)]
        action: CameraCommand,
    },
    /// Displays: show every screen on a framebuffer, read it back and compare (JSON).
    Display {
        #[command(subcommand)]
        action: DisplayCommand,
    },
    /// Check a configuration file and say what is wrong with it.
    CheckConfig {
        /// Path to the TOML configuration.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The same path given bare (older form).
        #[arg(hide = true)]
        path: Option<PathBuf>,
    },
    /// Inspect the durable job queue.
    Queue {
        /// Path to the TOML configuration.
        #[arg(long, global = true, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[command(subcommand)]
        action: QueueAction,
    },
}

/// Where the running agent's control socket is.
#[derive(clap::Args)]
struct ApiAt {
    /// Path to the TOML configuration (its [api] socket is used).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// The control socket, overriding the config.
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl ApiAt {
    fn socket(&self) -> Result<PathBuf> {
        match &self.socket {
            Some(s) => Ok(s.clone()),
            // The host application may not read the kiosk's config (root:kiosk-agent 0640):
            // the packaged socket then.
            None => match Config::load(&self.config) {
                Ok(c) => Ok(c.api.socket),
                Err(kiosk_agent::config::ConfigError::Read { .. }) if self.config == Path::new(DEFAULT_CONFIG) => {
                    Ok(kiosk_agent::config::ApiConfig::default().socket)
                }
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// The queue is held, and no service answers: what to do.
const HELD_BY_HAND: &str = "the queue is in use by another kiosk-agent process and no service answers on its control API: a `capture` or `upload` run by hand may hold it (try again when it ends), or start the service";

fn api_call(
    socket: &std::path::Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    let (status, v) = kiosk_agent::api::client::call(socket, method, path, body)?;
    if status >= 400 {
        // The reason first: it says what to do; the HTTP status is for the host application's
        // developer.
        anyhow::bail!("{} (the agent answered HTTP {status})", v["error"].as_str().unwrap_or(&v.to_string()));
    }
    Ok(v)
}

fn read_json(p: &std::path::Path) -> Result<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
        .with_context(|| format!("{} is not JSON", p.display()))
}

#[derive(Subcommand)]
enum DisplayCommand {
    /// Draw every screen on the framebuffer, read each back from the device and compare.
    Test {
        /// Framebuffer device.
        #[arg(long, default_value = "/dev/fb0")]
        device: String,
        /// Language of the screens (en, fr, sw, ...).
        #[arg(long, default_value = "en")]
        language: String,
        /// Save the read-back pictures here as PNG.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Write every screen as PNG, for translators and designers: no hardware, no service.
    Render {
        /// Language code (built in: en, fr, pt, ar, sw, ha, yo, ig, am, zu; or a file in --lang-dir).
        #[arg(long, default_value = "en")]
        language: String,
        /// A directory of language files (CODE.toml) that add or override languages.
        #[arg(long)]
        lang_dir: Option<PathBuf>,
        /// Panel size in pixels, WIDTHxHEIGHT.
        #[arg(long, default_value = "800x480")]
        size: String,
        /// Panel diagonal in inches (default: the usual panel of that size).
        #[arg(long)]
        diagonal: Option<f32>,
        /// The partner's accent colour, #RRGGBB (as `[display] accent`).
        #[arg(long)]
        accent: Option<String>,
        /// The partner's logo, PNG or JPEG (as `[display] logo`).
        #[arg(long)]
        logo: Option<PathBuf>,
        /// The partner's name as the consent says it (as `[smileid] partner_name`).
        #[arg(long, default_value = kiosk_agent::display::samples::EXAMPLE_PARTNER)]
        partner: String,
        /// Directory the PNG files go to.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CameraCommand {
    /// Every /dev/video* node: driver, card, bus, and for capture nodes the formats and sizes (JSON).
    List,
    /// Stream from a V4L2 camera through the capture pipeline and print what it saw (JSON).
    /// Rides out unplugging and stalls until the frames arrive or the time is up.
    Test {
        /// Path to the TOML configuration (its [camera] section); defaults apply without one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Device path (overrides the config; "auto" picks the first capture node).
        #[arg(long)]
        device: Option<String>,
        /// Frames to take.
        #[arg(long, default_value_t = 30)]
        frames: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Save the last frame here (PNG if the name ends in .png, else JPEG).
        #[arg(long)]
        save: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum QueueAction {
    /// List jobs with their state, attempts and last error.
    Ls {
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one job's record as JSON (no images).
    Show {
        /// The job's job_id (as `queue ls` lists it).
        job_id: String,
    },
    /// Put a job back in line: a failed one whose images remain, or a waiting one now.
    Retry {
        /// The job's job_id (as `queue ls` lists it).
        job_id: String,
    },
    /// Take a quarantined job back once its bundle checks again (e.g. the right key restored).
    Restore {
        /// The job's job_id (as `queue ls` lists it).
        job_id: String,
    },
    /// Delete a job: its images are erased and its record removed. This cannot be undone.
    Purge {
        /// The job's job_id (as `queue ls` lists it).
        job_id: String,
    },
}

/// What check-config and display render say of a red accent.
const ACCENT_RED: &str = "[display] accent is a red, the colour these screens give what went wrong (\"Not verified\", a missing camera): \"I agree\", Start and the welcome in it may read as warnings to customers; if the brand allows, use another of its colours (what goes well stays green whatever the accent)";

fn main() {
    kiosk_agent::memory::tune_allocator();
    // Everything the agent writes is the kiosk's or a person's business: private by default,
    // under systemd (UMask=0077) or not. Files meant for others (the socket) are opened up by name.
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    // No core dumps and no ptrace by other processes of the same user: the agent's memory holds
    // the API key and, during a session, a person's name, ID number and face.
    // SAFETY: prctl(PR_SET_DUMPABLE) only changes this process's dumpable flag.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let cli = Cli::parse();
    // Output piped into `head` or `grep -q` ends the command quietly when the reader goes, as
    // with other tools (Rust ignores SIGPIPE, and a print to the closed pipe would panic). Not
    // for the long-running service, whose sockets and child processes must not end it.
    #[cfg(feature = "sandbox")]
    let serves = matches!(cli.command, Command::Run { .. } | Command::Sandbox { .. });
    #[cfg(not(feature = "sandbox"))]
    let serves = matches!(cli.command, Command::Run { .. });
    if !serves {
        // SAFETY: restores the default disposition of one signal, before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if let Err(e) = run(cli) {
        eprintln!("kiosk-agent: error: {e:#}");
        // A config that cannot work exits 78 (EX_CONFIG): the unit does not restart on it.
        let config_error = e.chain().any(|c| {
            c.downcast_ref::<kiosk_agent::config::ConfigError>().is_some()
                || matches!(c.downcast_ref::<QueueError>(), Some(QueueError::NotADirectory { .. }))
                || matches!(
                    c.downcast_ref::<kiosk_agent::input::evdev::EvdevError>(),
                    Some(kiosk_agent::input::evdev::EvdevError::NotADevice { .. })
                )
                || matches!(
                    c.downcast_ref::<kiosk_agent::app::AppError>(),
                    Some(
                        kiosk_agent::app::AppError::Config(_)
                            | kiosk_agent::app::AppError::Api(
                                kiosk_agent::api::server::ServerError::Access(_)
                                    | kiosk_agent::api::server::ServerError::Group(_)
                            )
                            | kiosk_agent::app::AppError::Input(
                                kiosk_agent::input::evdev::EvdevError::NotADevice { .. }
                            )
                    )
                )
        });
        std::process::exit(if config_error { 78 } else { 1 });
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

static HANGUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_: libc::c_int) {
    HANGUP.store(true, Ordering::Relaxed);
}

/// `kill -HUP` (an operator's habit for "reload") and the user signals must not end the
/// service: systemd counts a SIGHUP death as clean and would not restart it. A SIGHUP is
/// answered in the log with what does reload the config.
fn survive_hangups() {
    // SAFETY: the handler only stores to an atomic; SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGHUP, on_hangup as *const () as libc::sighandler_t);
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
    }
    std::thread::spawn(|| loop {
        if HANGUP.swap(false, Ordering::Relaxed) {
            kiosk_agent::log::warn(
                "SIGHUP: the agent reads its config and keys when it starts, so nothing was reloaded and it carries on; to apply a change, restart it (`systemctl restart kiosk-agent`)",
                &[],
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    });
}

/// SIGTERM (systemd stop) and SIGINT end `run` after the request in flight.
fn install_stop_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
}

fn log_event(r: &Record, ev: &Event) {
    match ev {
        Event::Sent { .. } => {}
        Event::Retrying { class, error, after } => {
            use kiosk_agent::smileid::wire::RetryClass;
            // As an operator reads them ("0ns" read as a fault). A protocol step is not a
            // retry after a fault: say which step follows, so a refused key's one re-signing
            // is not read as the agent retrying a refusal at once.
            let next = match class {
                RetryClass::Resign => "signing again with a fresh timestamp, once".to_string(),
                RetryClass::NewUploadUrl => "asking for a new upload URL".to_string(),
                RetryClass::RetryFlag => "preparing it again, flagged as a retry".to_string(),
                _ => match after.as_millis() {
                    0 => "retrying at once".to_string(),
                    ms if ms < 1000 => format!("retrying in {ms} ms"),
                    _ => format!("retrying in {} s", after.as_secs()),
                },
            };
            log::warn(
                &format!("{}: {error}; {next}", r.job_id),
                &[("job_id", &r.job_id), ("retry_in", &format!("{} ms", after.as_millis()))],
            );
        }
    }
}

/// Pings systemd's watchdog while the uplink loop shows signs of life: a hung loop stops the
/// pings and systemd restarts the agent.
fn start_watchdog(heartbeat: std::sync::Arc<std::sync::atomic::AtomicI64>) {
    let Some(every) = kiosk_agent::systemd::watchdog_interval() else { return };
    std::thread::spawn(move || loop {
        // Boot-clock ms on both sides: setting the wall clock neither trips nor blinds it.
        let age_ms = kiosk_agent::clock::boot_ms() - heartbeat.load(Ordering::Relaxed);
        // A single upload on 2G may take minutes; beyond 4 minutes without progress, stop vouching.
        if age_ms < 240_000 {
            kiosk_agent::systemd::notify("WATCHDOG=1");
        }
        std::thread::sleep(every);
    });
}

/// Opens the queue for this process alone and reports anything reconciliation had to repair.
/// `wait` rides out a short-lived holder (an operator's read-only command) for that long.
fn open_queue(c: &Config, wait: std::time::Duration) -> Result<Queue> {
    let give_up = std::time::Instant::now() + wait;
    let mut said = false;
    let q = loop {
        match Queue::open(&c.state_dir, c.queue.clone()) {
            Err(QueueError::Busy { path }) if std::time::Instant::now() < give_up => {
                if !std::mem::replace(&mut said, true) {
                    eprintln!(
                        "kiosk-agent: the queue in {path} is in use by another kiosk-agent process; waiting up to {} s for it",
                        wait.as_secs()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            r => break r?,
        }
    };
    let r = &q.report;
    if r.created {
        // A state_dir changed by mistake starts afresh, and the jobs waiting in the old one
        // would wait unseen.
        kiosk_agent::log::warn(
            &format!("no queue was in {}: a new, empty one was made there. If this kiosk has captured before, check state_dir in the config: jobs waiting in the directory it named before are not sent from here", c.state_dir.display()),
            &[],
        );
    }
    if r.index_rebuilt {
        eprintln!(
            "kiosk-agent: the queue index was damaged ({}); it was rebuilt from the job bundles",
            r.index_error.as_deref().unwrap_or("?")
        );
    }
    for qn in &r.quarantined {
        eprintln!("kiosk-agent: quarantined {qn}");
    }
    for j in &r.restored {
        eprintln!("kiosk-agent: {j}: out of quarantine, its bundle checks again");
    }
    for u in &r.unreadable {
        eprintln!("kiosk-agent: left in place, not quarantined: {u}");
    }
    if r.migrated > 0 {
        eprintln!("kiosk-agent: migrated {} job bundles to the current format", r.migrated);
    }
    Ok(q)
}

/// Where `kiosk-agent queue` finds the jobs: the queue itself, or the service that owns it.
enum Jobs<'a> {
    Local(&'a Queue),
    Service(&'a std::path::Path),
    /// No queue was ever made here.
    Empty,
}

impl Jobs<'_> {
    /// Whether the link was last seen paused because Smile ID refused the credentials (before
    /// any job met it: the uplink's own check).
    fn credentials_refused(&self, state_dir: &std::path::Path) -> bool {
        let link = match self {
            Jobs::Service(s) => api_call(s, "GET", "/v1/health", None).ok().map(|h| h["uplink"].clone()),
            Jobs::Local(_) | Jobs::Empty => std::fs::read(state_dir.join("status.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()),
        };
        link.is_some_and(|l| l["link"] == "paused" && l["error"].as_str().is_some_and(|e| e.contains("credentials")))
    }

    fn records(&self) -> Result<Vec<Record>> {
        match self {
            Jobs::Local(q) => Ok(q.list()?),
            Jobs::Service(s) => Ok(serde_json::from_value(api_call(s, "GET", "/v1/jobs", None)?)?),
            Jobs::Empty => Ok(Vec::new()),
        }
    }

    fn one(&self, job_id: &str, action: &str) -> Result<Record> {
        match (self, action) {
            (Jobs::Local(q), "show") => Ok(q.get(job_id)?),
            (Jobs::Local(q), "retry") => Ok(q.retry(job_id)?),
            (Jobs::Local(q), "restore") => Ok(q.restore(job_id)?),
            (Jobs::Service(s), "show") => {
                Ok(serde_json::from_value(api_call(s, "GET", &format!("/v1/jobs/{}", escape_segment(job_id)), None)?)?)
            }
            (Jobs::Service(s), a) => Ok(serde_json::from_value(api_call(
                s,
                "POST",
                &format!("/v1/jobs/{}/{a}", escape_segment(job_id)),
                None,
            )?)?),
            (Jobs::Local(_), a) => anyhow::bail!("unknown queue action {a}"),
            (Jobs::Empty, _) => anyhow::bail!("no job {job_id}: there is no queue yet"),
        }
    }

    fn purge(&self, job_id: &str) -> Result<()> {
        match self {
            Jobs::Local(q) => Ok(q.purge(job_id)?),
            Jobs::Service(s) => {
                api_call(s, "DELETE", &format!("/v1/jobs/{}", escape_segment(job_id)), None).map(|_| ())
            }
            Jobs::Empty => anyhow::bail!("no job {job_id}: there is no queue yet"),
        }
    }
}

/// The link's state as an operator reads it, from its JSON (`status.json`, the API's health).
fn link_words(u: &serde_json::Value) -> String {
    match u["link"].as_str().unwrap_or("unknown") {
        "up" => "up: Smile ID's API answers".to_string(),
        "down" => format!("down: {}", u["error"].as_str().unwrap_or("no answer")),
        "paused" => {
            // 0: nothing is asked again until the service restarts (a credential not in place).
            let until = u["retry_at"]
                .as_i64()
                .filter(|&t| t > 0)
                .map(|t| format!(" (asks again at {})", iso(t)))
                .unwrap_or_default();
            format!("paused{until}: {}", u["error"].as_str().unwrap_or(""))
        }
        "clock_wrong" => {
            // The kiosk's clock less Smile ID's.
            let words =
                kiosk_agent::uplink::drive::clock_words(u["skew_secs"].as_i64().unwrap_or(0), u["at_least"] == true);
            format!("clock wrong: {words}; nothing is signed until NTP sets it right")
        }
        other => format!("{other} (no upload tried yet)"),
    }
}

/// `status` for a person: what the link is doing and why, and the queue in words.
fn print_status(v: &serde_json::Value) {
    let (u, q) = (&v["uplink"], &v["queue"]);
    let n = |k: &str| q[k].as_u64().unwrap_or(0);
    let link = link_words(u);
    if v["service"] == "stopped" {
        // A service that stopped itself (exit 78: a config or setup problem) would only stop
        // again if started: doctor names what stops it.
        println!(
            "{:<11}not running: no uploads until it runs; `kiosk-agent doctor` says what stops it, \
             `systemctl start kiosk-agent` starts it",
            "service"
        );
    }
    println!("{:<11}{link}", "link");
    if let Some(t) = u["updated_at"].as_str() {
        println!("{:<11}{t}", "checked");
    }
    println!(
        "{:<11}{} waiting, {} holding images ({:.1} MB), {} failed, {} quarantined, {} finished",
        "queue",
        n("pending"),
        n("holding_images"),
        n("bundle_bytes") as f64 / 1_048_576.0,
        n("failed"),
        n("quarantined"),
        n("finished")
    );
    if let Some(f) = q["free_bytes"].as_u64() {
        println!("{:<11}{} free", "disk", kiosk_agent::queue::bytes_text(f));
    }
    if n("unreadable") > 0 {
        println!("{:<11}{} job(s) kept that this command cannot read (see keys)", "unreadable", n("unreadable"));
    }
    if let Some(k) = v["keys_problem"].as_str() {
        println!("{:<11}{k}", "keys");
    }
    // What is wrong beside the link and the service (which have their own lines).
    let link_problems = ["paused", "clock_wrong", "link_down", "service_stopped"];
    let others: Vec<&str> = v["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .filter(|p| !link_problems.contains(p))
        .collect();
    // The queue's own limit is no fault doctor could find: it is said here.
    if others.contains(&"queue_full") {
        println!(
            "{:<11}the queue is at its [queue] max_jobs or max_bytes: new sessions are refused until jobs go up (the link above says why they wait); nothing queued is dropped",
            "full"
        );
    }
    let rest: Vec<&str> = others.into_iter().filter(|p| *p != "queue_full").collect();
    if !rest.is_empty() {
        println!("{:<11}{} (`kiosk-agent doctor` says what to do)", "problems", rest.join(", "));
    }
}

fn iso(ms: i64) -> String {
    kiosk_agent::smileid::timestamp::UnixMillis(ms).to_iso()
}

/// The queue as a table a person reads: one line a job, no personal data. The JOB_ID column is
/// as wide as its longest id, so no id (up to 128 characters, any script) shifts the others.
fn print_jobs(records: &[Record]) {
    let ids: Vec<String> = records.iter().map(|r| shown_id(&r.job_id)).collect();
    let col = ids.iter().map(|i| columns(i)).max().unwrap_or(0).max(6);
    let pad = |s: &str| format!("{s}{}", " ".repeat(col - columns(s)));
    println!(
        "{:>6}  {}  {:>4}  {:<11}  {:>8}  {:<20}  LAST ERROR",
        "SEQ",
        pad("JOB_ID"),
        "TYPE",
        "STAGE",
        "FAILURES",
        "CAPTURED (UTC)"
    );
    for (r, id) in records.iter().zip(&ids) {
        println!(
            "{:>6}  {}  {:>4}  {:<11}  {:>8}  {:<20}  {}",
            r.seq,
            pad(id),
            r.job_type,
            r.stage.as_str(),
            r.attempts,
            iso(r.created_at),
            r.last_error.as_deref().unwrap_or("")
        );
    }
}

/// A job_id as an operator copies it: quoted when a space in it (or at its ends) would be lost.
fn shown_id(id: &str) -> String {
    // Quoted, and escaped within, when it would not read as one word: an id that itself starts
    // with a quote is told from a quoted one.
    if id.is_empty() || id.contains(char::is_whitespace) || id.starts_with('"') {
        format!("{id:?}")
    } else {
        id.to_string()
    }
}

/// Terminal columns `s` takes: combining marks none, East Asian wide characters and emoji two.
fn columns(s: &str) -> usize {
    use kiosk_agent::display::typeset::fonts::is_mark;
    let wide = |c: u32| {
        matches!(c, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD)
    };
    s.chars()
        .map(|c| {
            if is_mark(c) {
                0
            } else if wide(c as u32) {
                2
            } else {
                1
            }
        })
        .sum()
}

/// One job in words: where it is and Smile ID's verdict, without the result's personal data.
fn print_job(r: &Record) {
    let line = |k: &str, v: &str| println!("{k:<11}{v}");
    line("job", &format!("{} (type {}, user {})", shown_id(&r.job_id), r.job_type, shown_id(&r.user_id)));
    // Tries that ended in an error; one cut short by a crash or a stop counts nothing.
    line(
        "stage",
        &format!("{}, {} failed tr{}", r.stage.as_str(), r.attempts, if r.attempts == 1 { "y" } else { "ies" }),
    );
    line("captured", &iso(r.created_at));
    if let Some(t) = r.finished_at {
        line("finished", &iso(t));
    }
    if let Some(res) = &r.result {
        let text = |k: &str| res.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
        let verdict = if r.job_success == Some(true) { "success" } else { "not successful" };
        line("result", &format!("{verdict}: {} {}", text("ResultCode"), text("ResultText")));
    }
    if let Some(e) = &r.last_error {
        line("last error", e);
    }
}

/// An id no job can have (a pasted escape sequence) is refused before anything opens or echoes it.
fn check_job_id(action: &QueueAction) -> Result<()> {
    if let QueueAction::Show { job_id }
    | QueueAction::Retry { job_id }
    | QueueAction::Restore { job_id }
    | QueueAction::Purge { job_id } = action
    {
        kiosk_agent::api::check_text("job_id", job_id, 128)
            .map_err(|r| anyhow::anyhow!("{}; copy the job_id from `kiosk-agent queue ls`", r.error))?;
    }
    Ok(())
}

fn queue_command(jobs: Jobs, action: QueueAction, state_dir: &std::path::Path) -> Result<()> {
    match action {
        QueueAction::Ls { json } => {
            let records = jobs.records()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                print_jobs(&records);
            }
            // Jobs these keys cannot read are not listed, but they are there: an empty list
            // must not read as an empty queue.
            if let Jobs::Local(q) = jobs {
                let unreadable = q.stats()?.unreadable;
                if unreadable > 0 {
                    let why = q.report.key_problem.as_deref().unwrap_or("their records do not open with these keys");
                    anyhow::bail!("{unreadable} job(s) in the queue are not listed because they cannot be read: {why}. They are kept; put back the keys they were written with");
                }
            }
        }
        QueueAction::Show { job_id } => println!("{}", serde_json::to_string_pretty(&jobs.one(&job_id, "show")?)?),
        QueueAction::Retry { job_id } => {
            let r = jobs.one(&job_id, "retry")?;
            println!("{job_id}: {}; it is tried at the next pass", r.stage.as_str());
            // The running service signs with the key it read at its start.
            if r.last_error.as_deref().is_some_and(|e| e.contains("credentials")) || jobs.credentials_refused(state_dir)
            {
                println!("if you changed the key or the config, restart the service first (`systemctl restart kiosk-agent`): it reads them when it starts");
            }
        }
        QueueAction::Restore { job_id } => {
            // Opening the queue for this command already took it back (its bundle checks again).
            if let Jobs::Local(q) = &jobs {
                if q.report.restored.contains(&job_id) {
                    println!("{job_id}: out of quarantine, {}", q.get(&job_id)?.stage.as_str());
                    return Ok(());
                }
            }
            let r = jobs.one(&job_id, "restore")?;
            println!("{job_id}: out of quarantine, {}", r.stage.as_str());
        }
        QueueAction::Purge { job_id } => {
            let before = jobs.one(&job_id, "show").ok();
            jobs.purge(&job_id)?;
            println!("{job_id}: images erased, record removed");
            // A purge ends the kiosk's part, not Smile ID's: a zip that went up is processed there.
            if before.is_some_and(|r| r.progress.put_attempted || r.progress.uploaded) {
                println!("its zip had gone up (or was going up) to Smile ID, which may process it: its result comes to your callback or through Smile ID's portal, no longer here");
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        #[cfg(feature = "sandbox")]
        Command::Demo { out } => {
            let status = kiosk_agent::demo::run(&out).context("the demo failed")?;
            println!("{}", serde_json::to_string(&status)?);
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox {
            listen,
            partner_id,
            api_key_file,
            state_dir,
            timestamp_window_secs,
            upload_url_ttl_secs,
            latency_ms,
            clock_offset_secs,
            auth_token_file,
        } => {
            let api_key = read_api_key(&api_key_file)?;
            let auth_token = match auth_token_file {
                Some(p) => Some(
                    std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?.trim().to_string(),
                ),
                None => None,
            };
            let sb = sandbox::start(SandboxOptions {
                listen,
                partner_id,
                api_key,
                state_dir,
                timestamp_window_secs,
                upload_url_ttl_secs,
                latency_ms,
                clock_offset_secs,
                auth_token,
            })?;
            eprintln!("kiosk-agent sandbox: serving {} ; CA certificate in {}", sb.base_url, sb.ca_pem_path.display());
            loop {
                std::thread::park();
            }
        }
        Command::Capture { config, user_id, job_type, id_info, job_id, language, consent_given } => {
            let c = Config::load(&config)?;
            if JobType::from_code(job_type).is_some_and(|t| !t.has_images()) {
                anyhow::bail!("--job-type {job_type} is Enhanced KYC, which takes no photos: ask for it with `kiosk-agent ekyc --user-id ID --id-info FILE` while the service runs");
            }
            let job_type = JobType::from_code(job_type).with_context(|| {
                format!("--job-type {job_type} is not a Smile ID job type the kiosk captures (1, 2, 4, 6, 11)")
            })?;
            let id_info: IdInfo = match id_info {
                Some(p) => {
                    serde_json::from_slice(&std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?)
                        .with_context(|| format!("{} is not a valid id_info object", p.display()))?
                }
                None => IdInfo::default(),
            };
            let start = kiosk_agent::api::StartSession {
                job_type,
                user_id,
                job_id,
                extra: Default::default(),
                id_info,
                options: JobOptions::default(),
                document_back: true,
                language,
                owner: None,
            };
            // Refused before the person spends two minutes at the camera, as the API refuses it.
            kiosk_agent::smileid::validate::validate(&kiosk_agent::api::provisional_job(&start))?;
            let req = kiosk_agent::app::session_request(&c, start)?;
            // The queue first: while the service owns it, nothing touches the camera or screen.
            let queue = open_queue(&c, std::time::Duration::ZERO)?;
            // Refuse before the person spends two minutes in front of the camera, not after.
            for (field, v) in [("user_id", &req.user_id), ("job_id", &req.job_id)] {
                kiosk_agent::api::check_text(field, v, 128).map_err(|r| anyhow::anyhow!(r.error))?;
            }
            queue.check_new_job_id(&req.job_id)?;
            // Without --consent-given, the person answers on the kiosk's button (this command
            // reads no touch panel or keys: the service's sessions do).
            let mut button = if consent_given { None } else { c.input.open()? };
            if !consent_given && button.is_none() {
                anyhow::bail!("nobody can answer the consent screen here: `capture` reads only a GPIO button ([input] backend = \"gpio\"); pass --consent-given if the host application recorded the person's consent, or start the session through the service (`kiosk-agent session`), which reads the touch panel and keys too");
            }
            let mut cam = c.camera.open()?;
            let mut display = c.display.open()?;
            if let Err(e) = queue.check_room(kiosk_agent::queue::TYPICAL_JOB_BYTES) {
                display.show(&Screen::Error { problem: kiosk_agent::display::screens::Problem::StorageFull })?;
                return Err(e.into());
            }
            let mut scripted = ScriptedInput { accept: consent_given, confirmations: Vec::new() };
            let input: &mut dyn session::Input = match button.as_mut() {
                Some(b) => b,
                None => &mut scripted,
            };
            let job = session::run(&req, &mut *cam, &mut *display, input, &c.capture)?;
            let rec = queue.enqueue(&job)?;
            display.show(&Screen::Saved { online: false })?;
            println!("{}", rec.job_id);
        }
        Command::Upload { config } => {
            let c = Config::load(&config)?;
            let queue = open_queue(&c, std::time::Duration::ZERO)?;
            let smile = SmileLink::new(&c)?;
            let mut uplink = smile.uplink(&c, &queue);
            let delivered = uplink.pass(log_event)?;
            for d in delivered {
                let r = &d.record;
                let mut line = serde_json::json!({"job_id": r.job_id, "stage": r.stage, "job_success": r.job_success});
                if let Ok(Outcome::Completed(s)) = &d.outcome {
                    line["result_code"] = serde_json::json!(s.result_code());
                }
                if let Err(e) = &d.outcome {
                    line["error"] = serde_json::json!(e);
                }
                println!("{line}");
            }
            let pending = queue.stats()?.pending;
            if !matches!(uplink.link, LinkState::Up | LinkState::Unknown) {
                eprintln!(
                    "kiosk-agent: uploads stopped, {pending} job(s) kept in the queue; link {}",
                    link_words(&serde_json::to_value(&uplink.link)?)
                );
                std::process::exit(3);
            }
            if pending > 0 {
                eprintln!(
                    "kiosk-agent: {pending} job(s) still waiting for their next try; `kiosk-agent queue ls` shows why"
                );
            }
        }
        Command::Run { config, exit_when_idle } => {
            let c = Config::load(&config)?;
            // Before the queue is opened (or made): another agent on this socket is a config
            // mistake, not a reason to touch this state dir.
            let _claim = if exit_when_idle { None } else { kiosk_agent::api::server::claim(&c.api.socket)? };
            let queue = std::sync::Arc::new(open_queue(&c, std::time::Duration::from_secs(20))?);
            install_stop_handler();
            survive_hangups();
            if exit_when_idle {
                // Batch mode: drain and leave; no sessions, no control socket.
                let smile = SmileLink::new(&c)?;
                smile.uplink(&c, &queue).run(&STOP, true, log_event)?;
                return Ok(());
            }
            let agent = kiosk_agent::app::Agent::build(c.clone(), queue.clone())?;
            start_watchdog(agent.heartbeat.clone());
            agent.run(&STOP, log_event)?;
            kiosk_agent::systemd::notify("STOPPING=1");
        }
        Command::Session { at, job_type, user_id, job_id, id_info, language, front_only, consent_given } => {
            let socket = at.socket()?;
            let mut body = serde_json::json!({"job_type": job_type, "user_id": user_id});
            if let Some(j) = job_id {
                body["job_id"] = j.into();
            }
            if let Some(l) = language {
                body["language"] = l.into();
            }
            if front_only {
                body["document_back"] = false.into();
            }
            if let Some(p) = id_info {
                body["id_info"] = read_json(&p)?;
            }
            let v = api_call(&socket, "POST", "/v1/sessions", Some(&body))?;
            let id = v["session_id"].as_str().unwrap_or_default().to_string();
            eprintln!("session {id} started for job {}", v["job_id"]);
            if consent_given {
                api_call(
                    &socket,
                    "POST",
                    &format!("/v1/sessions/{id}/consent"),
                    Some(&serde_json::json!({"granted": true})),
                )?;
            }
            // Ctrl-C (or SIGTERM) cancels the session on the kiosk: it must not run on unwatched,
            // holding the camera against the next one.
            install_stop_handler();
            let mut cancelling = false;
            let mut last = String::new();
            let view = loop {
                if STOP.load(Ordering::Relaxed) && !std::mem::replace(&mut cancelling, true) {
                    eprintln!("cancelling session {id}");
                    if let Err(e) = api_call(&socket, "POST", &format!("/v1/sessions/{id}/cancel"), None) {
                        eprintln!("kiosk-agent: could not cancel it: {e:#}");
                    }
                    // A second Ctrl-C ends this command without waiting for the kiosk.
                    // SAFETY: restoring a default disposition has no preconditions.
                    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
                }
                let v = api_call(&socket, "GET", &format!("/v1/sessions/{id}"), None)?;
                let line = format!(
                    "{} {}/{} {} {}",
                    v["state"].as_str().unwrap_or(""),
                    v["done"],
                    v["total"],
                    v["step"].as_str().unwrap_or(""),
                    v["hint"].as_str().unwrap_or("")
                );
                if line != last {
                    eprintln!("  {line}");
                    last = line;
                }
                if ["queued", "declined", "abandoned", "cancelled", "timed_out", "refused", "failed"]
                    .contains(&v["state"].as_str().unwrap_or(""))
                {
                    break v;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            };
            println!("{view}");
            if view["state"] != "queued" {
                let state = view["state"].as_str().unwrap_or("-");
                anyhow::bail!("the session ended {state}: {}", view["error"].as_str().unwrap_or("no reason given"));
            }
        }
        Command::Jobs { at, job_id, purge, json } => {
            let socket = at.socket()?;
            let v = match (&job_id, purge) {
                (Some(j), true) => api_call(&socket, "DELETE", &format!("/v1/jobs/{}", escape_segment(j)), None)?,
                (Some(j), false) => api_call(&socket, "GET", &format!("/v1/jobs/{}", escape_segment(j)), None)?,
                (None, _) => api_call(&socket, "GET", "/v1/jobs", None)?,
            };
            match (json, job_id, purge) {
                (true, _, _) => println!("{}", serde_json::to_string_pretty(&v)?),
                (false, Some(j), true) => println!("{j}: images erased, record removed"),
                // An Enhanced KYC lookup is not a queued job: shown as it came.
                (false, Some(_), false) if v["job_type"] == 5 => println!("{}", serde_json::to_string_pretty(&v)?),
                (false, Some(_), false) => {
                    print_job(&serde_json::from_value(v.clone())?);
                    // What holds it back, which the record alone does not say.
                    if let Some(held) = v["held"].as_str() {
                        let why = match held {
                            "paused" => "uploads are paused (Smile ID refused the credentials, or the URL is wrong)",
                            "clock_wrong" => "the kiosk's clock is wrong: nothing is signed until NTP sets it",
                            _ => "Smile ID cannot be reached now",
                        };
                        println!("{:<11}{why}; `kiosk-agent status` says more", "held");
                    }
                }
                (false, None, _) => print_jobs(&serde_json::from_value::<Vec<Record>>(v)?),
            }
        }
        Command::Ekyc { at, user_id, id_info, job_id } => {
            let socket = at.socket()?;
            let mut body = serde_json::json!({"user_id": user_id, "id_info": read_json(&id_info)?});
            if let Some(j) = job_id {
                body["job_id"] = j.into();
            }
            let v = api_call(&socket, "POST", "/v1/enhanced_kyc", Some(&body))?;
            println!("{v}");
        }
        Command::Status { config, json } => {
            let c = Config::load(&config)?;
            let v = match Queue::open_read_only(&c.state_dir, c.queue.clone()) {
                Ok(queue) => {
                    let link = std::fs::read(c.state_dir.join("status.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .unwrap_or_else(|| serde_json::json!({"link": "unknown"}));
                    let counts = queue.stats()?;
                    let stats = kiosk_agent::uplink::service::stats_json(&counts);
                    // The queue was free: no service holds it, and the link is as last seen. A
                    // script reading `problems` finds the stopped service first.
                    let mut problems = vec!["service_stopped"];
                    let last_link = serde_json::from_value::<kiosk_agent::uplink::service::LinkState>(link.clone());
                    problems.extend(last_link.ok().as_ref().and_then(kiosk_agent::app::service::link_problem));
                    problems.extend(kiosk_agent::app::service::queue_problem(&counts, &c.queue));
                    let mut v =
                        serde_json::json!({"uplink": link, "queue": stats, "service": "stopped", "problems": problems});
                    if let Some(k) = &queue.report.key_problem {
                        v["keys_problem"] = k.clone().into();
                    }
                    v
                }
                Err(e @ (QueueError::Busy { .. } | QueueError::NoAccess { .. })) => {
                    let why = match e {
                        QueueError::NoAccess { .. } => format!(
                            "{e}; and no service answers on its control API either (start it, or run this as root)"
                        ),
                        _ => HELD_BY_HAND.into(),
                    };
                    let h = api_call(&c.api.socket, "GET", "/v1/health", None).context(why)?;
                    serde_json::json!({"uplink": h["uplink"], "queue": h["queue"], "service": "running", "problems": h["problems"]})
                }
                Err(e @ QueueError::Missing { .. }) => {
                    eprintln!("kiosk-agent: {e}");
                    let stats = kiosk_agent::queue::QueueStats::default();
                    serde_json::json!({"uplink": {"link": "unknown"}, "queue": stats})
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
        }
        Command::Queue { config, action } => {
            let c = Config::load(&config)?;
            check_job_id(&action)?;
            let changes = !matches!(action, QueueAction::Ls { .. } | QueueAction::Show { .. });
            let opened = if changes {
                Queue::open(&c.state_dir, c.queue.clone())
            } else {
                Queue::open_read_only(&c.state_dir, c.queue.clone())
            };
            match opened {
                Ok(q) => queue_command(Jobs::Local(&q), action, &c.state_dir)?,
                // The service owns the queue: the same command, through its control API.
                Err(e @ (QueueError::Busy { .. } | QueueError::NoAccess { .. })) => {
                    // Held, and no service answers: a `capture` or `upload` run by hand has it.
                    if matches!(e, QueueError::Busy { .. })
                        && kiosk_agent::api::client::call(&c.api.socket, "GET", "/v1/health", None).is_err()
                    {
                        anyhow::bail!(HELD_BY_HAND);
                    }
                    queue_command(Jobs::Service(&c.api.socket), action, &c.state_dir)?
                }
                // Another user's queue (root beside the service's): through the service if it
                // runs, else refused with what to do.
                Err(e @ QueueError::NotOwner { .. }) => {
                    if kiosk_agent::api::client::call(&c.api.socket, "GET", "/v1/health", None).is_err() {
                        return Err(e.into());
                    }
                    queue_command(Jobs::Service(&c.api.socket), action, &c.state_dir)?
                }
                Err(e @ QueueError::Missing { .. }) if matches!(action, QueueAction::Ls { .. }) => {
                    eprintln!("kiosk-agent: {e}");
                    queue_command(Jobs::Empty, action, &c.state_dir)?
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Display { action: DisplayCommand::Test { device, language, save } } => {
            let texts = kiosk_agent::display::Texts::load(&language, None)?;
            if let Some(d) = &save {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            let report = kiosk_agent::display::fb::self_test(&device, texts, save.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.matched != report.screens {
                std::process::exit(1);
            }
        }
        Command::Display {
            action: DisplayCommand::Render { language, lang_dir, size, diagonal, accent, logo, partner, out },
        } => {
            if let Some(d) = lang_dir.as_deref().filter(|d| !d.is_dir()) {
                anyhow::bail!(
                    "--lang-dir {}: not a directory; give the directory holding your <code>.toml files",
                    d.display()
                );
            }
            if let Some(d) = diagonal.filter(|d| !(1.0..=100.0).contains(d)) {
                anyhow::bail!("--diagonal {d}: give the panel's diagonal, 1 to 100 inches");
            }
            if let Some(problem) = kiosk_agent::config::partner_name_problem(&partner) {
                anyhow::bail!("--partner: {problem}");
            }
            let texts = kiosk_agent::display::Texts::load(&language, lang_dir.as_deref())?;
            let (w, h) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .filter(|&(w, h)| (96..=4096).contains(&w) && (96..=4096).contains(&h))
                .with_context(|| {
                    format!("--size {size:?}: give WIDTHxHEIGHT in pixels, each 96 to 4096 (as display.width/height), e.g. 800x480")
                })?;
            let brand = kiosk_agent::display::brand::Brand::new(accent.as_deref(), logo.as_deref())
                .context("--accent/--logo")?;
            if brand.accent_reads_as_error() {
                eprintln!("warning: {ACCENT_RED}");
            }
            let brand = std::sync::Arc::new(brand);
            let written = kiosk_agent::display::samples::render_to(&texts, (w, h), diagonal, &brand, &partner, &out)?;
            println!("{} screens in {} ({w}x{h}, {})", written.len(), out.display(), texts.code);
            // A translation too long for the panel: found here, not by a customer.
            let faults = kiosk_agent::display::audit::check(&texts, (w, h), diagonal, &brand, &partner);
            if !faults.is_empty() {
                for (screen, f) in &faults {
                    eprintln!("{screen}: {f}");
                }
                anyhow::bail!(
                    "on a {w}x{h} panel, {}: shorten those texts (the PNGs show where), or preview the size the kiosk has",
                    kiosk_agent::display::audit::describe(&faults)
                );
            }
        }
        Command::Camera { action: CameraCommand::List } => {
            println!("{}", serde_json::to_string_pretty(&kiosk_agent::camera::v4l2::list())?);
        }
        Command::Camera { action: CameraCommand::Test { config, device, frames, seconds, save } } => {
            let mut cam_config = match config {
                Some(p) => Config::load(p.as_path())?.camera,
                None => Default::default(),
            };
            if let Some(d) = device {
                cam_config.device = d;
            }
            let mut cam = kiosk_agent::camera::v4l2::V4l2Camera::new(cam_config.v4l2_settings());
            let mut last = None;
            let report = kiosk_agent::camera::v4l2::stream_test(
                &mut cam,
                frames,
                std::time::Duration::from_secs(seconds),
                &mut last,
            )?;
            if let (Some(p), Some(f)) = (save, last) {
                let bytes = if p.extension().is_some_and(|e| e == "png") {
                    let img = kiosk_agent::vision::decode::rgb(&f)?;
                    let mut out = Vec::new();
                    image::RgbImage::from_raw(img.width, img.height, img.data)
                        .context("frame size")?
                        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
                    out
                } else {
                    kiosk_agent::vision::encode::jpeg_long_side(&f, 4096, 90)?
                };
                std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Doctor { config, json } => {
            let checks = kiosk_agent::doctor::run(&config);
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                for c in &checks {
                    let v = serde_json::to_value(c.verdict)?;
                    let advice = if c.advice.is_empty() { String::new() } else { format!("\n      -> {}", c.advice) };
                    println!("{:<4} {:<12} {}{advice}", v.as_str().unwrap_or(""), c.name, c.detail);
                }
            }
            if checks.iter().any(|c| c.verdict == kiosk_agent::doctor::Verdict::Fail) {
                std::process::exit(1);
            }
        }
        Command::CheckConfig { config, path } => {
            let config = path.unwrap_or(config);
            let c = Config::load(&config)?;
            // The link as the service builds it: the CA file and the key, each a config error.
            SmileLink::new(&c)?;
            // What the service would refuse as a mistake in the config, not as a device or a
            // disk missing: a state_dir or a named input device that is a file.
            kiosk_agent::queue::check_dir(&c.state_dir)?;
            for path in c.input.evdev.iter().filter(|e| *e != "auto") {
                kiosk_agent::input::evdev::check_path(std::path::Path::new(path))?;
            }
            // The metrics' TLS files as the service loads them: without them it serves no metrics.
            let tls = c.metrics.tls().map_err(|e| kiosk_agent::config::ConfigError::InvalidIn {
                path: config.display().to_string(),
                key: "metrics.tls_cert",
                problem: format!("{e}; the service would serve no metrics"),
            })?;
            if c.metrics.listen.is_some() && tls.is_some() && c.metrics.client_ca.is_none() {
                eprintln!("warning: [metrics] has tls_cert but no client_ca: any client that reaches the port may scrape; set client_ca to the fleet's CA");
            }
            // Users and groups are the machine's: this may run where the config is prepared, not
            // on the kiosk, so said, not refused (`doctor` on the kiosk fails on it).
            let api = kiosk_agent::doctor::control_api(&c);
            if api.verdict != kiosk_agent::doctor::Verdict::Pass {
                eprintln!("warning: {}; {}", api.detail, api.advice);
            }
            if c.display.languages.contains(&c.display.language) {
                eprintln!(
                    "warning: [display] languages lists {:?}, which is display.language, offered first: it is offered once; list only the others",
                    c.display.language
                );
            }
            // A key others may read works, but should not stay so: said, not refused.
            let key = kiosk_agent::doctor::custody(&c);
            if key.verdict == kiosk_agent::doctor::Verdict::Warn {
                eprintln!("warning: {}; {}", key.detail, key.advice);
            }
            if let Some(words) = kiosk_agent::doctor::expiry_words(&c) {
                eprintln!("warning: {words}");
            }
            if let Some(words) = kiosk_agent::doctor::keys_beside_data_words(&c) {
                eprintln!("warning: {words}; on a kiosk, name the package's credentials in [queue] (encryption_key_file = \"bundle_key\", device_key_file = \"device_key\")");
            }
            if c.display.brand().is_ok_and(|b| b.accent_reads_as_error()) {
                eprintln!("warning: {}", ACCENT_RED);
            }
            // Nor is a language too long for the panel: the service shows it, cramped.
            for warning in kiosk_agent::display::audit::check_config(&c.display, &c.smileid.partner_name) {
                eprintln!("warning: {warning}");
            }
            // Absolute: `load` took a relative state_dir from the config's directory.
            println!("{}: ok (API {}, state in {})", config.display(), c.base_url()?, c.state_dir.display());
        }
    }
    Ok(())
}
