//! The `kiosk-agent` binary: argument parsing and error reporting; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use kiosk_agent::config::{read_api_key, Config};
use kiosk_agent::queue::Queue;
use kiosk_agent::sandbox::{self, SandboxOptions};

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
    /// Check a configuration file and say what is wrong with it.
    CheckConfig {
        /// Path to the TOML configuration.
        config: PathBuf,
    },
    /// Inspect the durable job queue.
    Queue {
        /// Path to the TOML configuration.
        #[arg(long, default_value = "/etc/kiosk-agent/kiosk.toml")]
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
            eprintln!(
                "kiosk-agent sandbox: serving {} ; CA certificate in {}",
                sb.base_url,
                sb.ca_pem_path.display()
            );
            loop {
                std::thread::park();
            }
        }
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            c.api_key().context("the configuration is valid, but")?;
            println!(
                "{}: ok (API {}, state in {})",
                config.display(),
                c.base_url()?,
                c.state_dir.display()
            );
        }
        Command::Queue {
            config,
            action: QueueAction::Ls,
        } => {
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
