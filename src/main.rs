//! The `kiosk-agent` binary: argument parsing and error reporting; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use kiosk_agent::camera::synthetic::SyntheticCamera;
use kiosk_agent::config::{read_api_key, Config};
use kiosk_agent::display::png::PngDisplay;
use kiosk_agent::display::{Display, Screen};
use kiosk_agent::queue::Queue;
use kiosk_agent::sandbox::{self, SandboxOptions};
use kiosk_agent::session::{self, ScriptedInput, SessionRequest};
use kiosk_agent::smileid::job::{IdInfo, JobOptions, JobType};
use kiosk_agent::smileid::signature::LocalKeySigner;
use kiosk_agent::smileid::submit::{Outcome, ResponseCheck, SubmitConfig};
use kiosk_agent::uplink::drain::drain;
use kiosk_agent::uplink::drive::{Event, RetryPolicy};
use kiosk_agent::uplink::http::HttpClient;

/// Identity-capture kiosk agent: guides a person through Smile ID verification on the
/// kiosk's camera and screen, queues the job safely while offline, and uploads it when the
/// network returns.
#[derive(Parser)]
#[command(name = "kiosk-agent", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one Biometric KYC job end to end on built-in defaults: a local Smile ID sandbox,
    /// the synthetic camera, screens saved as PNGs. Prints the final job_status JSON last.
    Demo {
        /// Directory for the screens (out/screens) and the demo's state.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
    /// Serve a local HTTPS stand-in for Smile ID's v1 API (for development and tests).
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
    },
    /// Capture one job on the configured camera and display, and store it in the queue.
    /// Nothing is sent: `upload` does that when the network is there.
    Capture {
        /// Path to the TOML configuration.
        #[arg(long, default_value = "/etc/kiosk-agent/kiosk.toml")]
        config: PathBuf,
        /// The person's user_id in the partner's system.
        #[arg(long)]
        user_id: String,
        /// Smile ID job type: 1 Biometric KYC, 2 SmartSelfie authentication, 4 SmartSelfie enrollment.
        #[arg(long, default_value_t = 1)]
        job_type: i64,
        /// JSON file with the id_info (country, id_type, id_number, names, dob, entered).
        #[arg(long)]
        id_info: Option<PathBuf>,
        /// A job_id chosen by the host application (default: a new unique one).
        #[arg(long)]
        job_id: Option<String>,
        /// The person's consent was recorded by the host application; without it the
        /// consent screen is shown and the session ends as declined.
        #[arg(long)]
        consent_given: bool,
    },
    /// Upload every queued job, in order, and print each outcome as a JSON line.
    Upload {
        /// Path to the TOML configuration.
        #[arg(long, default_value = "/etc/kiosk-agent/kiosk.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and say what is wrong with it.
    CheckConfig {
        /// Path to the TOML configuration.
        config: PathBuf,
    },
    /// Inspect the durable job queue.
    Queue {
        /// Path to the TOML configuration.
        #[arg(long, global = true, default_value = "/etc/kiosk-agent/kiosk.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: QueueAction,
    },
}

#[derive(Subcommand)]
enum QueueAction {
    /// List jobs with their state, attempts and last error.
    Ls,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("kiosk-agent: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { out } => {
            let status = kiosk_agent::demo::run(&out).context("the demo failed")?;
            println!("{}", serde_json::to_string(&status)?);
        }
        Command::Sandbox {
            listen,
            partner_id,
            api_key_file,
            state_dir,
            timestamp_window_secs,
            upload_url_ttl_secs,
        } => {
            let api_key = read_api_key(&api_key_file)?;
            let sb = sandbox::start(SandboxOptions {
                listen,
                partner_id,
                api_key,
                state_dir,
                timestamp_window_secs,
                upload_url_ttl_secs,
            })?;
            eprintln!("kiosk-agent sandbox: serving {} ; CA certificate in {}", sb.base_url, sb.ca_pem_path.display());
            loop {
                std::thread::park();
            }
        }
        Command::Capture { config, user_id, job_type, id_info, job_id, consent_given } => {
            let c = Config::load(&config)?;
            let job_type = JobType::from_code(job_type)
                .with_context(|| format!("--job-type {job_type} is not a Smile ID job type (1, 2, 4)"))?;
            let id_info: IdInfo = match id_info {
                Some(p) => {
                    serde_json::from_slice(&std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?)
                        .with_context(|| format!("{} is not a valid id_info object", p.display()))?
                }
                None => IdInfo::default(),
            };
            let req = SessionRequest {
                partner_name: c.smileid.partner_name.clone(),
                user_id,
                job_id: job_id.unwrap_or_else(session::new_job_id),
                job_type,
                id_info,
                options: JobOptions { callback_url: c.smileid.callback_url.clone(), ..JobOptions::default() },
            };
            let mut cam = match &c.camera.fixture {
                Some(p) => SyntheticCamera::new(
                    &std::fs::read(p).with_context(|| format!("reading camera.fixture {}", p.display()))?,
                    30,
                )?,
                None => SyntheticCamera::with_default_face(),
            };
            let mut display = PngDisplay::new(&c.display.out_dir, c.display.width, c.display.height)?;
            let queue = Queue::open(&c.state_dir)?;
            let job =
                session::run(&req, &mut cam, &mut display, &mut ScriptedInput { accept: consent_given }, &c.capture)?;
            let rec = queue.enqueue(&job)?;
            display.show(&Screen::Saved { job_id: rec.job_id.clone() })?;
            println!("{}", rec.job_id);
        }
        Command::Upload { config } => {
            let c = Config::load(&config)?;
            let key = c.api_key()?;
            let queue = Queue::open(&c.state_dir)?;
            let http = HttpClient::new(c.smileid.extra_ca_file.as_deref(), &c.http)?;
            let signer = LocalKeySigner { partner_id: c.smileid.partner_id.clone(), key: key.clone() };
            let cfg = SubmitConfig::new(&c.smileid.partner_id, &c.base_url()?, ResponseCheck::Key(key));
            let drained = drain(&queue, &http, &signer, &cfg, &RetryPolicy::default(), |r, ev| {
                if let Event::Retrying { error, after, .. } = ev {
                    eprintln!("kiosk-agent: {}: retrying in {after:?}: {error}", r.job_id);
                }
            })?;
            for d in drained {
                let line = match d.outcome {
                    Ok(Outcome::Completed(s)) => {
                        serde_json::json!({"job_id": d.record.job_id, "state": d.record.state, "job_success": s.job_success, "result_code": s.result_code()})
                    }
                    Ok(other) => {
                        serde_json::json!({"job_id": d.record.job_id, "state": d.record.state, "outcome": format!("{other:?}")})
                    }
                    Err(e) => {
                        serde_json::json!({"job_id": d.record.job_id, "state": d.record.state, "error": e})
                    }
                };
                println!("{line}");
            }
        }
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            c.api_key().context("the configuration is valid, but")?;
            println!("{}: ok (API {}, state in {})", config.display(), c.base_url()?, c.state_dir.display());
        }
        Command::Queue { config, action: QueueAction::Ls } => {
            let c = Config::load(&config)?;
            let q = Queue::open(&c.state_dir)?;
            for r in q.list()? {
                println!(
                    "{:>6} {:<40} type {:>2} {:<7} attempts {} {}",
                    r.seq,
                    r.job_id,
                    r.job_type,
                    format!("{:?}", r.state).to_lowercase(),
                    r.attempts,
                    r.last_error.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
