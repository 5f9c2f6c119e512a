//! kiosk-agent: guided identity capture on a Linux kiosk, Smile ID v1 job bundles,
//! a durable offline queue, and signed uploads when the link returns.
//!
//! In scope: the Smile ID v1 image-job and Enhanced KYC protocol (signature, prep_upload,
//! zip upload, job_status, id_verification), a local sandbox that speaks it, capture from a
//! camera, on-device quality checks, rendering prompts, and queueing jobs on the device.
//!
//! Out of scope: Smile ID's v3 JWT API, the hosted-web token flow, business verification,
//! callbacks (a kiosk cannot receive them: point `callback_url` at the partner's backend),
//! and any face matching or liveness decision (Smile ID makes those).
//!
//! Layout: [`smileid`] is the sans-IO protocol core; everything that touches sockets, files
//! or devices lives in the other modules, at the edges.

/// The version and the commit it was built from, as `kiosk-agent --version` prints it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KIOSK_COMMIT"), ")");

pub mod api;
pub mod app;
pub mod assets;
pub mod bundle;
pub mod camera;
pub mod clock;
pub mod config;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod display;
pub mod doctor;
pub mod httpd;
pub mod input;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod queue;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod session;
pub mod smileid;
pub mod store;
pub mod systemd;
pub mod uplink;
pub mod vision;
