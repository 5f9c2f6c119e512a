//! The agent's configuration file (TOML). Unknown keys are errors, so a typo is caught at
//! start instead of silently ignored; every error names the file and key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::camera::synthetic::{PrintMotion, SyntheticCamera};
use crate::camera::v4l2::{V4l2Camera, V4l2Settings};
use crate::camera::{CameraError, FrameSource};
use crate::display::fb::Framebuffer;
use crate::display::png::PngDisplay;
use crate::display::threaded::Threaded;
use crate::display::{Display, DisplayError, Texts};
use crate::queue::QueueSettings;
use crate::session::active::{AFTER_TURNS_SECS, MIN_TURN_SECS};
use crate::session::CaptureSettings;
use crate::smileid::signature::{ApiKey, LocalKeySigner, Signer};
use crate::uplink::custody::{AuthSmileSigner, PartnerSigner, Secret};
use crate::uplink::http::HttpClient;
use crate::uplink::http::Timeouts;
use crate::uplink::service::UplinkSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the queue and job bundles live (systemd: StateDirectory).
    pub state_dir: PathBuf,
    pub smileid: SmileIdConfig,
    #[serde(default)]
    pub camera: CameraConfig,
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub capture: CaptureSettings,
    #[serde(default)]
    pub display: DisplayConfig,
    #[serde(default)]
    pub http: Timeouts,
    #[serde(default)]
    pub queue: QueueSettings,
    #[serde(default)]
    pub uplink: UplinkSettings,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub kiosk: KioskConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// Who this kiosk is in the fleet: in every log line (journal field KIOSK_ID), the metrics'
/// `kiosk_info`, and each job's `partner_params` (`kiosk_id`, with `kiosk_site` and
/// `kiosk_region` when set), so a result can be traced to the kiosk that took it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KioskConfig {
    /// Letters, digits, '.', '_' and '-', up to 64; unset, the machine's host name.
    pub id: Option<String>,
    pub site: Option<String>,
    pub region: Option<String>,
}

impl KioskConfig {
    /// The configured id, or the host name (gethostname(2): the packaged unit hides
    /// /proc/sys, and a fleet names each card's host when it images it).
    pub fn id(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            let mut buf = [0u8; 256];
            // SAFETY: the buffer is valid for its length; the name is NUL-terminated when it fits.
            let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
            let name = std::ffi::CStr::from_bytes_until_nul(&buf).ok().and_then(|c| c.to_str().ok());
            match (rc, name) {
                (0, Some(n)) if !n.is_empty() => n.to_string(),
                _ => "kiosk".into(),
            }
        })
    }

    pub fn identity(&self) -> crate::metrics::Identity {
        crate::metrics::Identity {
            id: self.id(),
            site: self.site.clone().unwrap_or_default(),
            region: self.region.clone().unwrap_or_default(),
        }
    }
}

/// Prometheus scraping (off unless `listen` is set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// "ADDR:PORT" to serve `/metrics` on, e.g. the management VPN's address or
    /// "127.0.0.1:9464". Plain HTTP unless `tls_cert` is set: then never a public address.
    pub listen: Option<String>,
    /// TLS for scrapes that cross the internet: this kiosk's certificate chain and key (PEM; a
    /// relative key name is a systemd credential, as the API key), and the CA whose client
    /// certificates may scrape (without it, any client may).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

impl MetricsConfig {
    /// The TLS server config, when `tls_cert` is set.
    pub fn tls(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, crate::metrics::listen::TlsError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let key = crate::store::secret_path(key);
        crate::metrics::listen::tls_config(cert, &key, self.client_ca.as_deref()).map(Some)
    }
}

/// The local control API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Unix socket the host application connects to (systemd: RuntimeDirectory=kiosk-agent).
    pub socket: PathBuf,
    /// Group allowed to connect (the socket is 0660); unset: the agent's own group.
    pub group: Option<String>,
    /// How long a session waits on the consent screen before it ends as abandoned.
    pub consent_timeout_secs: u64,
    /// Who may run sessions and read their own jobs' results: "user:NAME" or "group:NAME"
    /// entries, matched against the peer's credentials; unset: members of `group`.
    pub operators: Option<Vec<String>>,
    /// Who may also purge, retry, restore, list every job, run Enhanced KYC and read metrics;
    /// root and the agent's own user always may.
    pub admins: Vec<String>,
    /// Enhanced KYC lookups allowed per hour (each costs the partner money); up to 5 at once.
    pub enhanced_kyc_per_hour: u32,
    /// Connections served at once; beyond it the one that has waited longest for its request
    /// is closed, and if every one is busy the newcomer gets 503.
    pub max_connections: usize,
    /// Seconds a request's line and headers may take to arrive, and its body again as long.
    pub request_timeout_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: PathBuf::from("/run/kiosk-agent/control.sock"),
            group: None,
            consent_timeout_secs: 120,
            operators: None,
            admins: Vec::new(),
            enhanced_kyc_per_hour: 60,
            max_connections: 16,
            request_timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmileIdConfig {
    /// Partner id exactly as Smile ID issued it, leading zeros kept ("085").
    pub partner_id: String,
    /// "sandbox", "production", or an https URL ending in /v1 (a private deployment or the local sandbox).
    pub environment: String,
    /// Who holds the API key and signs: "local_key", "partner_signer" or "auth_smile".
    #[serde(default)]
    pub custody: Custody,
    /// local_key: file holding the API key; relative paths are looked up in $CREDENTIALS_DIRECTORY.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// partner_signer: the partner backend's signing endpoint (https).
    #[serde(default)]
    pub signer_url: Option<String>,
    /// partner_signer: file holding this kiosk's device token.
    #[serde(default)]
    pub device_token_file: Option<PathBuf>,
    /// auth_smile: file holding the Smile ID auth_token.
    #[serde(default)]
    pub auth_token_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) trusted besides the public roots.
    #[serde(default)]
    pub extra_ca_file: Option<PathBuf>,
    /// Where Smile ID posts final results: the partner's backend.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Shown on the consent screen.
    #[serde(default = "default_partner_name")]
    pub partner_name: String,
}

/// What is wrong with `name` as the consent would name the partner, if anything. The consent
/// asks the person's leave in that name: it must name someone, and in characters the built-in
/// fonts draw (anything else shows as a box in the customer's legal text).
pub fn partner_name_problem(name: &str) -> Option<String> {
    use crate::display::typeset::{uncovered, Weight};
    if !name.chars().any(char::is_alphanumeric) {
        return Some(format!("{name:?} names no one: give the partner's name as its customers know it"));
    }
    if let Some(c) =
        name.chars().find(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Some(format!("U+{:04X} is a control or bidi override character; write the name without it", c as u32));
    }
    if let Some(c) = uncovered(name, Weight::Regular).or_else(|| uncovered(name, Weight::Bold)) {
        return Some(format!(
            "the built-in fonts have no glyph for {c:?} (U+{:04X}), which would show as a box; they cover Latin, Ethiopic and Arabic script",
            c as u32
        ));
    }
    // No script stacks more than a few marks on one letter (Yoruba's ẹ̀ has two); more run
    // down over the consent's other lines.
    let combining = |c: char| matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}');
    let mut run = 0;
    for c in name.chars() {
        run = if combining(c) { run + 1 } else { 0 };
        if run > 3 {
            return Some("more than three combining marks stacked on one letter; write the name as it is spelt".into());
        }
    }
    None
}

impl SmileIdConfig {
    /// Jobs go to Smile ID's production API: by its name, or by its URL written out (in any
    /// case, with its port or the host's trailing dot).
    pub fn production(&self) -> bool {
        let e = self.environment.trim().to_ascii_lowercase();
        if e == "production" {
            return true;
        }
        let host = e.strip_prefix("https://").and_then(|rest| rest.split('/').next()).unwrap_or_default();
        let host =
            host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
        let production = crate::smileid::PRODUCTION_URL.trim_start_matches("https://").split('/').next();
        Some(host.trim_end_matches('.')) == production
    }
}

/// Key custody modes (see `uplink::custody`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Custody {
    #[default]
    LocalKey,
    PartnerSigner,
    AuthSmile,
}

fn default_partner_name() -> String {
    "This service".into()
}

/// Where frames come from: `"v4l2"` (a real camera) or `"synthetic"` (a built-in moving face,
/// for demos and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraSource {
    V4l2,
    Synthetic,
}

/// Where screens go: `"framebuffer"` (`/dev/fbN`, HDMI/DSI or a kernel-driven panel), `"spi"`
/// (an ST7789/ILI9341 panel driven through spidev) or `"png"` (files, for demos and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayBackend {
    Framebuffer,
    Spi,
    Png,
}

/// Where the person's answers come from: `"none"` (the host application) or `"gpio"` (a push
/// button).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputBackend {
    None,
    Gpio,
}

impl CameraSource {
    pub const ALL: [CameraSource; 2] = [CameraSource::V4l2, CameraSource::Synthetic];
}

impl DisplayBackend {
    pub const ALL: [DisplayBackend; 3] = [DisplayBackend::Framebuffer, DisplayBackend::Spi, DisplayBackend::Png];
}

impl InputBackend {
    pub const ALL: [InputBackend; 2] = [InputBackend::None, InputBackend::Gpio];
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct CameraConfig {
    pub source: CameraSource,
    /// V4L2 device path, or "auto" for the first capture node with MJPEG or YUYV.
    pub device: String,
    /// Smallest frame size wanted; the driver's nearest larger size is used.
    pub width: u32,
    pub height: u32,
    /// Pixel formats in order of preference ("MJPG", "YUYV").
    pub formats: Vec<String>,
    /// No frame for this long: the stream is restarted (and "camera missing" shown while it stays away).
    pub frame_timeout_ms: u64,
    /// Photo the synthetic camera shows, as a flat print held up, instead of the bundled
    /// person (who turns their head): the presentation attack liveness must refuse.
    pub fixture: Option<PathBuf>,
    /// How the print is moved: "sway" (in its plane) or "tilt" (turned in 3-D as the screen asks).
    pub fixture_motion: PrintMotion,
}

impl Default for CameraConfig {
    fn default() -> Self {
        let v = V4l2Settings::default();
        // A real kiosk's camera; the synthetic one only when asked for by name.
        CameraConfig {
            source: CameraSource::V4l2,
            device: v.device,
            width: v.width,
            height: v.height,
            formats: v.formats,
            frame_timeout_ms: v.frame_timeout.as_millis() as u64,
            fixture: None,
            fixture_motion: PrintMotion::Sway,
        }
    }
}

impl CameraConfig {
    pub fn v4l2_settings(&self) -> V4l2Settings {
        V4l2Settings {
            device: self.device.clone(),
            width: self.width,
            height: self.height,
            formats: self.formats.clone(),
            frame_timeout: Duration::from_millis(self.frame_timeout_ms),
            ..V4l2Settings::default()
        }
    }

    /// The configured camera. A V4L2 camera opens lazily, at its first frame.
    pub fn open(&self) -> Result<Box<dyn FrameSource + Send>, CameraError> {
        Ok(match (self.source, &self.fixture) {
            (CameraSource::V4l2, _) => Box::new(V4l2Camera::new(self.v4l2_settings())),
            (_, Some(p)) => {
                let bytes = std::fs::read(p)
                    .map_err(|e| CameraError::Fixture(format!("camera.fixture {}: {e}", p.display())))?;
                Box::new(SyntheticCamera::new(&bytes, 15)?.with_print_motion(self.fixture_motion))
            }
            (_, None) => Box::new(SyntheticCamera::with_default_face()),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct DisplayConfig {
    /// "png" (every screen written as a PNG file into `out_dir`), "framebuffer" (`device`), or
    /// "spi" (an ST7789/ILI9341 panel on `spi_device` with D/C and reset on `gpio_chip` lines).
    pub backend: DisplayBackend,
    pub out_dir: PathBuf,
    /// Framebuffer device, e.g. /dev/fb0; its size comes from the driver.
    pub device: String,
    /// Panel size for the PNG and SPI backends.
    pub width: u32,
    pub height: u32,
    pub spi_model: crate::display::spi::Model,
    pub spi_device: String,
    pub spi_hz: u32,
    pub gpio_chip: String,
    pub dc_line: u32,
    /// The panel's reset line, or `"none"` for a panel whose reset is wired to the board's.
    #[serde(with = "line_or_none")]
    pub reset_line: Option<u32>,
    /// Language of the screens: a built-in code (en, fr, pt, ar, sw, ha, yo, ig, am, zu) or a file
    /// `<code>.toml` in `lang_dir`.
    pub language: String,
    pub lang_dir: Option<PathBuf>,
    /// Further languages a person may choose at the idle screen (keys, or holding the button,
    /// go through them in this order after `language`).
    pub languages: Vec<String>,
    /// The panel's diagonal in inches, for sizing type and touch targets in millimetres; unset,
    /// the usual panel of the resolution (800×480: 7", 240×320: 2.8", 480×320: 3.5").
    pub diagonal_inches: Option<f32>,
    /// Under `run`, how long a session's outcome stays on screen before the idle screen returns.
    pub outcome_secs: u64,
    /// The partner's accent colour, "#RRGGBB": buttons, links, progress (what goes well stays
    /// green). It must read
    /// on the screen's background (4.5:1); unset, the kiosk's own teal.
    pub accent: Option<String>,
    /// The partner's logo (PNG or JPEG, at most 2 MB and 2048 px a side), at the top of the
    /// welcome screen.
    pub logo: Option<PathBuf>,
}

impl DisplayConfig {
    /// The languages a person may choose, `language` first, each once (`languages` may repeat
    /// it: `check-config` warns).
    pub fn offered(&self) -> Vec<&str> {
        let mut out = vec![self.language.as_str()];
        out.extend(self.languages.iter().map(String::as_str).filter(|l| *l != self.language));
        out
    }
}

impl Default for DisplayConfig {
    fn default() -> Self {
        // A real kiosk's screen; PNG files only when asked for by name.
        DisplayConfig {
            backend: DisplayBackend::Framebuffer,
            out_dir: PathBuf::from("screens"),
            device: "/dev/fb0".into(),
            width: 480,
            height: 320,
            spi_model: crate::display::spi::Model::St7789,
            spi_device: "/dev/spidev0.0".into(),
            spi_hz: 32_000_000,
            gpio_chip: "/dev/gpiochip0".into(),
            dc_line: 25,
            reset_line: Some(27),
            language: "en".into(),
            lang_dir: None,
            languages: Vec::new(),
            diagonal_inches: None,
            outcome_secs: 8,
            accent: None,
            logo: None,
        }
    }
}

impl DisplayConfig {
    /// The partner's brand as configured (the logo read and decoded).
    pub fn brand(&self) -> Result<crate::display::brand::Brand, crate::display::brand::BrandError> {
        crate::display::brand::Brand::new(self.accent.as_deref(), self.logo.as_deref())
    }

    /// The device nodes the display needs, for messages.
    pub fn device_names(&self) -> String {
        match self.backend {
            DisplayBackend::Framebuffer => self.device.clone(),
            DisplayBackend::Spi => format!("{} and {}", self.spi_device, self.gpio_chip),
            DisplayBackend::Png => self.out_dir.display().to_string(),
        }
    }

    /// The display's device nodes (each one's device and inode number) while all are there: a
    /// node the driver made again (unbound and bound, a USB panel plugged back) is a new device.
    pub fn device_ids(&self) -> Option<Vec<u64>> {
        use std::os::unix::fs::MetadataExt;
        let nodes: Vec<&str> = match self.backend {
            DisplayBackend::Framebuffer => vec![&self.device],
            DisplayBackend::Spi => vec![&self.spi_device, &self.gpio_chip],
            DisplayBackend::Png => vec![],
        };
        nodes
            .iter()
            .map(|p| std::fs::metadata(p).ok().map(|m| [m.rdev(), m.ino()]))
            .collect::<Option<Vec<_>>>()
            .map(|ids| ids.concat())
    }

    /// The display's device node is not there (a cable, a driver loading late), as opposed to
    /// there and refused: the agent runs everything else meanwhile.
    pub fn device_absent(&self) -> bool {
        self.device_ids().is_none()
    }

    /// The screen as it is now: its device nodes' ids ([`Self::device_ids`]), or `None` while
    /// it cannot show anything: the device is not there, or every connector of its card is
    /// unplugged (an HDMI cable out leaves `/dev/fb0` in place).
    pub fn screen_now(&self) -> Option<Vec<u64>> {
        self.device_ids().filter(|_| !self.unplugged())
    }

    /// What keeps the screen from showing anything, in words for the log and `status`.
    pub fn screen_missing_why(&self) -> Option<String> {
        let names = self.device_names();
        if self.device_absent() {
            Some(format!("the screen's device ({names}) is not there; check its cable and driver"))
        } else if self.unplugged() {
            Some(format!("the screen on {names} is unplugged or off (every connector of its card says disconnected); check its cable and power"))
        } else {
            None
        }
    }

    fn unplugged(&self) -> bool {
        self.backend == DisplayBackend::Framebuffer && crate::display::fb::unplugged(&self.device)
    }

    /// The configured display, opened now if its device is there. It opens the device again
    /// whenever the device is made anew, and draws nothing while it is gone
    /// ([`crate::display::awaited`]), so a screen that comes late or goes for a while costs only
    /// the screens, never the uploads, the control API or health.
    pub fn open_or_await(&self) -> Result<Box<dyn Display + Send>, DisplayError> {
        if self.backend == DisplayBackend::Png {
            return self.open();
        }
        let texts = Texts::load(&self.language, self.lang_dir.as_deref())
            .map_err(|e| DisplayError::Device { device: "language".into(), detail: e.to_string() })?;
        let (config, nodes) = (self.clone(), self.clone());
        let mut d = crate::display::awaited::Awaited::new(
            (self.width, self.height),
            texts,
            Box::new(move || config.open()),
            Box::new(move || nodes.device_ids()),
        );
        // A device there but refused (permissions, not a framebuffer) stops the start, as before.
        d.attach()?;
        Ok(Box::new(d))
    }

    /// The configured display, speaking the configured language.
    pub fn open(&self) -> Result<Box<dyn Display + Send>, DisplayError> {
        let texts = Texts::load(&self.language, self.lang_dir.as_deref())
            .map_err(|e| DisplayError::Device { device: "language".into(), detail: e.to_string() })?;
        let mut d: Box<dyn Display + Send> = match self.backend {
            DisplayBackend::Framebuffer => Box::new(Framebuffer::open(&self.device)?),
            DisplayBackend::Spi => crate::display::spi::open(
                self.spi_model,
                &self.spi_device,
                self.spi_hz,
                &self.gpio_chip,
                self.dc_line,
                self.reset_line,
                (self.width, self.height),
            )?,
            DisplayBackend::Png => Box::new(PngDisplay::new(&self.out_dir, self.width, self.height)?),
        };
        d.set_texts(texts);
        let brand = self.brand().map_err(|e| DisplayError::Device { device: "brand".into(), detail: e.to_string() })?;
        let d = Box::new(crate::display::panel::Physical {
            inner: d,
            diagonal: self.diagonal_inches,
            brand: std::sync::Arc::new(brand),
        });
        // Screens people watch are drawn on their own thread: capture never waits for them.
        Ok(if self.backend == DisplayBackend::Png { d } else { Box::new(Threaded::new(d)) })
    }
}

/// Where the person's answers come from at the kiosk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
pub struct InputConfig {
    /// "none" (consent comes from the host application) or "gpio" (a push button).
    pub backend: InputBackend,
    pub chip: String,
    pub line: u32,
    /// Pressed reads low (button to ground with a pull-up).
    pub active_low: bool,
    pub settle_ms: u64,
    /// Holding the button this long means "no".
    pub hold_ms: u64,
    /// No answer for this long: consent is declined; at a document photo's review, the person
    /// walked away and the visit ends, nothing kept.
    pub answer_timeout_secs: u64,
    /// What a press at the idle screen starts under `run`: nothing (`off`, the host application
    /// starts sessions), or a walk-up session of the given kind.
    pub walk_up: WalkUp,
    /// Walk-up document verification: the document's country (ISO 3166 alpha-2) and id type.
    pub walk_up_country: Option<String>,
    pub walk_up_id_type: Option<String>,
    /// Walk-up document verification takes the card's back too; unset, it does unless the id
    /// type is a passport's (which has no back), as walk-ups before this setting never did.
    pub walk_up_document_back: Option<bool>,
    /// Touch panels, keyboards and keypads read through evdev: device paths
    /// (`/dev/input/by-path/...`), or "auto" for every one with a touch panel or an Enter key.
    pub evdev: Vec<String>,
    /// The touch panel turned clockwise against the picture: 0, 90, 180 or 270.
    pub touch_rotation: u16,
    /// `[x_min, x_max, y_min, y_max]` in the panel's raw units where the device's own ranges are
    /// wrong (min above max inverts an axis).
    pub touch_calibration: Option<[i32; 4]>,
}

/// Walk-up sessions: what a press of the button at the idle screen starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalkUp {
    Off,
    /// SmartSelfie enrollment (job type 4): a selfie and liveness frames, no document.
    SmartSelfie,
    /// Document verification (job type 6) of `walk_up_country`/`walk_up_id_type` with a selfie.
    Document,
}

impl WalkUp {
    pub const ALL: [WalkUp; 3] = [WalkUp::Off, WalkUp::SmartSelfie, WalkUp::Document];
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            backend: InputBackend::None,
            chip: "/dev/gpiochip0".into(),
            line: 17,
            active_low: true,
            settle_ms: 20,
            hold_ms: 800,
            answer_timeout_secs: 60,
            walk_up: WalkUp::Off,
            walk_up_country: None,
            walk_up_id_type: None,
            walk_up_document_back: None,
            evdev: Vec::new(),
            touch_rotation: 0,
            touch_calibration: None,
        }
    }
}

impl InputConfig {
    /// The button's settings, when one is configured.
    pub fn button(&self) -> Option<crate::input::gpio::ButtonSettings> {
        (self.backend == InputBackend::Gpio).then(|| crate::input::gpio::ButtonSettings {
            chip: self.chip.clone(),
            line: self.line,
            active_low: self.active_low,
            settle: Duration::from_millis(self.settle_ms),
            hold: Duration::from_millis(self.hold_ms),
        })
    }

    /// The button's events (press, hold), read on their own thread, when a button is configured.
    pub fn watch(
        &self,
    ) -> Result<Option<std::sync::mpsc::Receiver<crate::input::Event>>, crate::input::gpio::GpioError> {
        self.button().map(|b| crate::input::gpio::watch(&b)).transpose()
    }

    /// True when a person can answer at the kiosk: a button, a touch panel or keys.
    pub fn on_device(&self) -> bool {
        self.backend != InputBackend::None || !self.evdev.is_empty()
    }

    /// Starts reading the evdev devices, and looks for those plugged in (or back) later until
    /// `stop`; their gestures come on one channel, with what they can do together (touch, keys).
    /// `auto` finding nothing is no error (a kiosk with a button and no panel), nor a named device
    /// not plugged in yet; one that is there and cannot be read is.
    pub fn watch_evdev(
        &self,
        panel: (u32, u32),
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<
        (std::sync::mpsc::Receiver<crate::input::evdev::Gesture>, crate::input::evdev::Caps),
        crate::input::evdev::EvdevError,
    > {
        use crate::input::evdev;
        let (tx, rx) = std::sync::mpsc::channel();
        let touch = evdev::TouchSettings {
            calibration: self.touch_calibration,
            rotation: self.touch_rotation,
            panel,
            hold: Duration::from_millis(self.hold_ms),
        };
        let opened = evdev::watch_all(&self.evdev, touch, tx, stop)?;
        let any = |f: fn(&evdev::Caps) -> bool| opened.iter().any(|(_, c)| f(c));
        Ok((rx, evdev::Caps { touch: any(|c| c.touch), keys: any(|c| c.keys) }))
    }

    /// Whether a walk-up document verification takes the card's back: as set, else unless the
    /// id type is a passport's.
    pub fn walk_up_back(&self) -> bool {
        let passport = self.walk_up_id_type.as_deref().is_some_and(|t| t.to_ascii_uppercase().contains("PASSPORT"));
        self.walk_up_document_back.unwrap_or(!passport)
    }

    /// The button's answers for one session, when a button is configured.
    pub fn open(&self) -> Result<Option<crate::input::ButtonInput>, crate::input::gpio::GpioError> {
        Ok(self.watch()?.map(|rx| crate::input::ButtonInput::new(rx, Duration::from_secs(self.answer_timeout_secs))))
    }
}

/// Why the config could not be read, and for a refusal, who must be able to read it.
fn read_detail(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            // SAFETY: geteuid has no preconditions.
            let uid = unsafe { libc::geteuid() };
            format!(
                "{e} (this is uid {uid}); run the command with sudo, or as a member of the config's group. The service's user must read it too: the package installs it mode 0640, owner root, group kiosk-agent"
            )
        }
        _ => e.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("config file {path} is not valid: {detail}")]
    Parse { path: String, detail: String },
    #[error("config key {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
    /// A key the file set to something that cannot work, with the file's name.
    #[error("config file {path}: key {key}: {problem}")]
    InvalidIn { path: String, key: &'static str, problem: String },
    #[error(
        "the API key file {path} cannot be used: {detail}; put the key alone in it, mode 0600, readable by the service's user (with the packaged unit: in /etc/kiosk-agent/credentials/, under the file name smileid.api_key_file gives), or pass it as a systemd credential"
    )]
    ApiKey { path: String, detail: String },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, problem: problem.into() }
}

/// The operator's language directory exists, and every `<code>.toml` in it is a language file
/// the screens can use: a host application may ask for any of them in a session.
fn check_lang_dir(dir: &Path) -> Result<(), ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist".to_string(),
            std::io::ErrorKind::NotADirectory => "is not a directory".to_string(),
            _ => format!("cannot be read ({e})"),
        };
        invalid(
            "display.lang_dir",
            format!("{} {what}; make it a directory the service may read, holding your <code>.toml files, or remove the key", dir.display()),
        )
    })?;
    let mut codes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
        .collect();
    codes.sort();
    for code in codes {
        Texts::load(&code, Some(dir)).map_err(|e| invalid("display.lang_dir", e.to_string()))?;
    }
    Ok(())
}

/// A GPIO line number, or `"none"` (TOML has no null, and leaving the key out keeps the default).
mod line_or_none {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Line {
        Number(u32),
        Word(String),
    }

    pub fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u32(*n),
            None => s.serialize_str("none"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match Line::deserialize(d) {
            Ok(Line::Number(n)) => Ok(Some(n)),
            Ok(Line::Word(w)) if w == "none" => Ok(None),
            _ => Err(serde::de::Error::custom(
                "must be a GPIO line number, or \"none\" when the panel has no reset line",
            )),
        }
    }
}

/// A path written from a home directory ("~/x", "~kiosk/x"), which nothing here expands.
fn starts_at_home(p: &Path) -> bool {
    p.components().next().is_some_and(|c| c.as_os_str().to_string_lossy().starts_with('~'))
}

/// The longest path a Unix socket may have (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

impl Config {
    /// Every path the config names, with its key.
    fn paths(&self) -> Vec<(&'static str, &Path)> {
        let (s, q, m, d) = (&self.smileid, &self.queue, &self.metrics, &self.display);
        let mut out: Vec<(&'static str, &Path)> =
            vec![("state_dir", &self.state_dir), ("api.socket", &self.api.socket), ("display.out_dir", &d.out_dir)];
        out.push(("queue.device_key_file", &q.device_key_file));
        let optional = [
            ("smileid.api_key_file", &s.api_key_file),
            ("smileid.device_token_file", &s.device_token_file),
            ("smileid.auth_token_file", &s.auth_token_file),
            ("smileid.extra_ca_file", &s.extra_ca_file),
            ("camera.fixture", &self.camera.fixture),
            ("display.lang_dir", &d.lang_dir),
            ("display.logo", &d.logo),
            ("metrics.tls_cert", &m.tls_cert),
            ("metrics.tls_key", &m.tls_key),
            ("metrics.client_ca", &m.client_ca),
            ("queue.encryption_key_file", &q.encryption_key_file),
        ];
        out.extend(optional.into_iter().filter_map(|(k, p)| Some((k, p.as_deref()?))));
        out
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: p.clone(), detail: read_detail(&e) })?;
        let mut c = Self::read(&text, &p)?;
        // The same config names the same files wherever the command runs: relative paths are
        // taken from the config's directory (secrets' names are resolved below, as the service's
        // credentials).
        if let Some(dir) = std::path::absolute(path).ok().as_deref().and_then(Path::parent) {
            c.resolve_paths(dir);
        }
        c.check().map_err(|e| match e {
            ConfigError::Invalid { key, problem } => ConfigError::InvalidIn { path: p.clone(), key, problem },
            e => e,
        })?;
        // Whatever command reads this kiosk's config logs as this kiosk.
        crate::log::set_kiosk_id(&c.kiosk.id());
        // Outside systemd (an operator's `check-config` or `doctor`), relative secret names are
        // found where the service's credentials come from: `credentials/` beside the config.
        if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
            let creds = path.parent().unwrap_or(Path::new(".")).join("credentials");
            let s = &mut c.smileid;
            let secrets =
                [&mut s.api_key_file, &mut s.device_token_file, &mut s.auth_token_file, &mut c.metrics.tls_key];
            // Always there, found or not: the working directory is nobody's credentials, and a
            // key found there would pass here and be missing for the service.
            for f in secrets.into_iter().flatten() {
                if f.is_relative() {
                    *f = creds.join(&*f);
                }
            }
        }
        Ok(c)
    }

    /// Parses and checks a config; relative paths stay relative to the current directory.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let c = Self::read(text, origin)?;
        c.check()?;
        Ok(c)
    }

    fn read(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.into(), detail: e.to_string().trim().to_string() })?;
        // Smile ID's codes are upper case ("KE", "NATIONAL_ID"); "ke" means the same.
        for v in [&mut c.input.walk_up_country, &mut c.input.walk_up_id_type].into_iter().flatten() {
            *v = v.trim().to_ascii_uppercase();
        }
        Ok(c)
    }

    /// Takes the relative paths of files and directories (not secrets, nor devices) from `dir`.
    fn resolve_paths(&mut self, dir: &Path) {
        let Config { state_dir, smileid, camera, display, api, metrics, .. } = self;
        let required = [state_dir, &mut api.socket, &mut display.out_dir];
        let optional = [
            &mut smileid.extra_ca_file,
            &mut camera.fixture,
            &mut display.lang_dir,
            &mut display.logo,
            &mut metrics.tls_cert,
            &mut metrics.client_ca,
        ];
        for p in required.into_iter().chain(optional.into_iter().flatten()) {
            // An empty path stays empty, and "~/x" as written, for `check` to refuse rather than
            // mean the directory.
            if p.is_relative() && !p.as_os_str().is_empty() && !starts_at_home(p) {
                *p = dir.join(&*p);
            }
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.state_dir.as_os_str().is_empty() {
            return Err(invalid(
                "state_dir",
                "is empty; name the directory for the queue, e.g. \"/var/lib/kiosk-agent\"",
            ));
        }
        // "/var/lib/kiosk-agent " names another, empty, directory: a queue started afresh there
        // would strand the jobs waiting in the real one. One that is there already is what this
        // kiosk has used all along, and stays.
        let spaced = |p: &Path| {
            !p.exists()
                && p.components().any(|c| {
                    let c = c.as_os_str().to_string_lossy();
                    c.trim() != c
                })
        };
        if let Some((key, path)) = self.paths().into_iter().find(|(_, p)| spaced(p)) {
            return Err(invalid(
                key,
                format!("{:?} has a space at the start or end of a name in it; remove it (a typo names another directory or file)", path.display().to_string()),
            ));
        }
        if let Some((key, path)) = self.paths().into_iter().find(|(_, p)| starts_at_home(p)) {
            // Nothing expands it: "~/x" would be a directory named "~" beside this file.
            return Err(invalid(
                key,
                format!(
                    "{:?}: \"~\" is not expanded here (the service has no home directory); write the full path, from \"/\"",
                    path.display().to_string()
                ),
            ));
        }
        let socket = self.api.socket.as_os_str().len();
        if socket == 0 || socket > MAX_SOCKET_PATH {
            return Err(invalid(
                "api.socket",
                format!("must be a path of 1 to {MAX_SOCKET_PATH} bytes (a Unix socket's limit), e.g. \"/run/kiosk-agent/control.sock\""),
            ));
        }
        if self.display.backend == DisplayBackend::Png && self.display.out_dir.as_os_str().is_empty() {
            return Err(invalid(
                "display.out_dir",
                "is empty; name the directory the screens are written to (they hold face previews: keep it private)",
            ));
        }
        if !(1..=86_400).contains(&self.api.consent_timeout_secs) {
            return Err(invalid(
                "api.consent_timeout_secs",
                "must be 1 to 86400 seconds, the time a person has to read and answer the consent (0 ends every session at once; 120 suits most)",
            ));
        }
        let s = &self.smileid;
        if s.partner_id.is_empty() || !s.partner_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("smileid.partner_id", "must be the numeric partner id as a string, e.g. \"085\""));
        }
        self.base_url()?;
        match s.custody {
            Custody::LocalKey if s.api_key_file.is_none() => {
                return Err(invalid("smileid.api_key_file", "is required with custody = \"local_key\""))
            }
            Custody::PartnerSigner if !s.signer_url.as_deref().is_some_and(|u| u.starts_with("https://")) => {
                return Err(invalid(
                    "smileid.signer_url",
                    "custody = \"partner_signer\" needs the https URL of your signing endpoint",
                ))
            }
            Custody::PartnerSigner if s.device_token_file.is_none() => {
                return Err(invalid("smileid.device_token_file", "is required with custody = \"partner_signer\""))
            }
            Custody::AuthSmile if s.auth_token_file.is_none() => {
                return Err(invalid("smileid.auth_token_file", "is required with custody = \"auth_smile\""))
            }
            _ => {}
        }
        let api = &self.api;
        for e in api.operators.iter().flatten() {
            crate::api::access::check_entry("operators", e).map_err(|e| invalid("api.operators", e.to_string()))?;
        }
        for e in &api.admins {
            crate::api::access::check_entry("admins", e).map_err(|e| invalid("api.admins", e.to_string()))?;
        }
        if !(2..=256).contains(&api.max_connections) {
            return Err(invalid("api.max_connections", "must be 2 to 256"));
        }
        if !(1..=300).contains(&api.request_timeout_secs) {
            return Err(invalid("api.request_timeout_secs", "must be 1 to 300 seconds"));
        }
        if api.enhanced_kyc_per_hour > 3_600 {
            return Err(invalid("api.enhanced_kyc_per_hour", "must be 0 (off) to 3600"));
        }
        if let Some(problem) = partner_name_problem(&s.partner_name) {
            return Err(invalid("smileid.partner_name", problem));
        }
        if self.display.backend == DisplayBackend::Png && s.production() {
            return Err(invalid(
                "display.backend",
                "\"png\" writes every screen, live face previews included, to files: it is for demos and \
                 tests, not for a kiosk on the production environment; use \"framebuffer\" or \"spi\"",
            ));
        }
        if let Some(cb) = s.callback_url.as_deref() {
            if !cb.starts_with("https://") {
                return Err(invalid("smileid.callback_url", "must be an https URL"));
            }
        }
        let cam = &self.camera;
        if cam.width < 320 || cam.height < 240 {
            return Err(invalid("camera.width/height", "must be at least 320x240 (640x480 recommended)"));
        }
        if cam.formats.is_empty() || cam.formats.iter().any(|f| f != "MJPG" && f != "YUYV") {
            return Err(invalid("camera.formats", "must list \"MJPG\" and/or \"YUYV\""));
        }
        if !(100..=60_000).contains(&cam.frame_timeout_ms) {
            return Err(invalid("camera.frame_timeout_ms", "must be 100 to 60000"));
        }
        let d = &self.display;
        if d.backend == DisplayBackend::Spi && !(1_000_000..=100_000_000).contains(&d.spi_hz) {
            return Err(invalid("display.spi_hz", "must be 1 MHz to 100 MHz (32 MHz suits most panels)"));
        }
        if d.backend == DisplayBackend::Spi {
            // One line cannot be two wires: the second claim fails, or drives the button.
            let button = (self.input.backend == InputBackend::Gpio && self.input.chip == d.gpio_chip)
                .then_some(("input.line", self.input.line));
            let lines = [Some(("display.dc_line", d.dc_line)), d.reset_line.map(|l| ("display.reset_line", l)), button];
            let lines: Vec<(&str, u32)> = lines.into_iter().flatten().collect();
            for (i, (key, line)) in lines.iter().enumerate() {
                if let Some((other, _)) = lines[..i].iter().find(|(_, l)| l == line) {
                    return Err(invalid(
                        "display.dc_line/reset_line",
                        format!("{key} and {other} are both line {line} of {}; each needs its own wire", d.gpio_chip),
                    ));
                }
            }
        }
        let i = &self.input;
        if i.settle_ms == 0 || i.hold_ms <= i.settle_ms || i.answer_timeout_secs == 0 {
            return Err(invalid("input.settle_ms/hold_ms", "need 0 < settle_ms < hold_ms and answer_timeout_secs > 0"));
        }
        if i.walk_up != WalkUp::Off && !i.on_device() {
            return Err(invalid(
                "input.walk_up",
                "walk-up sessions start at the kiosk: set input.backend = \"gpio\" or input.evdev = [\"auto\"], or walk_up = \"off\"",
            ));
        }
        if ![0, 90, 180, 270].contains(&i.touch_rotation) {
            return Err(invalid("input.touch_rotation", "must be 0, 90, 180 or 270 (degrees clockwise)"));
        }
        if i.touch_calibration.is_some_and(|[x0, x1, y0, y1]| x0 == x1 || y0 == y1) {
            return Err(invalid(
                "input.touch_calibration",
                "each axis needs two different ends: [x_min, x_max, y_min, y_max]",
            ));
        }
        if let Some(bad) = i.evdev.iter().find(|e| *e != "auto" && !e.starts_with('/')) {
            return Err(invalid(
                "input.evdev",
                format!("{bad:?} is neither \"auto\" nor a device path such as /dev/input/event0"),
            ));
        }
        if i.walk_up == WalkUp::Document {
            match i.walk_up_country.as_deref() {
                None | Some("") => return Err(invalid(
                    "input.walk_up_country",
                    "walk_up = \"document\" needs the document's country, its two-letter ISO 3166 code, e.g. \"KE\"",
                )),
                Some(c) if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) => {
                    return Err(invalid(
                        "input.walk_up_country",
                        format!("{c:?} is not a two-letter ISO 3166 country code, such as \"KE\", \"NG\" or \"GH\""),
                    ))
                }
                Some(_) => {}
            }
            match i.walk_up_id_type.as_deref() {
                None | Some("") => {
                    return Err(invalid(
                        "input.walk_up_id_type",
                        "walk_up = \"document\" needs the document's Smile ID id type, e.g. \"NATIONAL_ID\" or \"PASSPORT\"",
                    ))
                }
                Some(t) if t.len() > 64 || !t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') => {
                    return Err(invalid(
                        "input.walk_up_id_type",
                        format!(
                            "{t:?} is not a Smile ID id type: those are letters, digits and '_', such as \"NATIONAL_ID\", \"PASSPORT\" or \"DRIVERS_LICENSE\" (Smile ID's list of supported documents names them)"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let ident_ok = |v: &str, max: usize| {
            !v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if self.kiosk.id.as_deref().is_some_and(|v| !ident_ok(v, 64)) {
            return Err(invalid(
                "kiosk.id",
                "must be 1 to 64 letters, digits, '.', '_' or '-', e.g. \"nbo-westlands-01\"",
            ));
        }
        for (key, v) in [("kiosk.site", &self.kiosk.site), ("kiosk.region", &self.kiosk.region)] {
            // They reach alerts and dashboards: no text that reads otherwise than it is (U+202E).
            if v.as_deref().is_some_and(|v| v.is_empty() || v.len() > 64 || v.chars().any(crate::api::forbidden_char)) {
                return Err(invalid(key, "must be 1 to 64 characters, without control or bidi-override characters"));
            }
        }
        let m = &self.metrics;
        if m.listen.is_none() && (m.tls_cert.is_some() || m.tls_key.is_some() || m.client_ca.is_some()) {
            return Err(invalid(
                "metrics.listen",
                "TLS settings need the address to serve on, e.g. listen = \"10.8.0.12:9464\"",
            ));
        }
        if m.tls_cert.is_some() != m.tls_key.is_some() || (m.client_ca.is_some() && m.tls_cert.is_none()) {
            return Err(invalid(
                "metrics.tls_cert/tls_key",
                "TLS needs both tls_cert and tls_key (and client_ca only with them)",
            ));
        }
        if let Some(l) = &self.metrics.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "metrics.listen",
                    format!("{l:?} is not ADDR:PORT; give this kiosk's management address, e.g. \"10.8.0.12:9464\" or \"127.0.0.1:9464\""),
                ));
            }
        }
        if d.diagonal_inches.is_some_and(|v| !(1.0..=100.0).contains(&v)) {
            return Err(invalid("display.diagonal_inches", "must be the panel's diagonal, 1 to 100 inches"));
        }
        if !(1..=600).contains(&d.outcome_secs) {
            return Err(invalid("display.outcome_secs", "must be 1 to 600 seconds"));
        }
        if let Some(dir) = &d.lang_dir {
            check_lang_dir(dir)?;
        }
        if let Err(e) = Texts::load(&d.language, d.lang_dir.as_deref()) {
            return Err(invalid("display.language", e.to_string()));
        }
        if let Err(e) = d.brand() {
            let key = match e {
                crate::display::brand::BrandError::Logo { .. } => "display.logo",
                _ => "display.accent",
            };
            return Err(invalid(key, e.to_string()));
        }
        for (i, code) in d.languages.iter().enumerate() {
            if d.languages[..i].contains(code) {
                return Err(invalid(
                    "display.languages",
                    format!("{code:?} is listed twice; offer each language once"),
                ));
            }
            if let Err(e) = Texts::load(code, d.lang_dir.as_deref()) {
                return Err(invalid("display.languages", e.to_string()));
            }
        }
        if !(96..=4096).contains(&d.width) || !(96..=4096).contains(&d.height) {
            return Err(invalid("display.width/height", "must each be between 96 and 4096 pixels"));
        }
        let h = &self.http;
        for (key, v) in [
            ("http.connect_secs", h.connect_secs),
            ("http.idle_secs", h.idle_secs),
            ("http.send_body_secs", h.send_body_secs),
            ("http.recv_response_secs", h.recv_response_secs),
            ("http.recv_body_secs", h.recv_body_secs),
        ] {
            // 0 would end every request at once, and the failure would read as a dead link.
            if !(1..=86_400).contains(&v) {
                return Err(invalid(key, "must be 1 to 86400 seconds"));
            }
        }
        let c = &self.capture;
        if !(1..=16).contains(&c.liveness_frames) {
            return Err(invalid("capture.liveness_frames", "must be 1 to 16 (Smile ID expects 8)"));
        }
        if !(1..=100).contains(&c.jpeg_quality) {
            return Err(invalid("capture.jpeg_quality", "must be 1 to 100"));
        }
        if !(160..=4096).contains(&c.selfie_long_side) || !(80..=4096).contains(&c.liveness_long_side) {
            return Err(invalid(
                "capture.selfie_long_side/liveness_long_side",
                "need 160 to 4096 px for the selfie and 80 to 4096 px for liveness on the long side (Smile ID: 640 and 320)",
            ));
        }
        if !(1..=100).contains(&c.document_jpeg_quality) {
            return Err(invalid("capture.document_jpeg_quality", "must be 1 to 100 (92 keeps a card's small print)"));
        }
        // 0 keeps the camera's own size.
        if c.document_long_side != 0 && !(320..=4096).contains(&c.document_long_side) {
            return Err(invalid(
                "capture.document_long_side",
                "must be 320 to 4096 px (smaller, a card's print cannot be read; 1280 recommended), or 0 for the camera's own size",
            ));
        }
        if c.hint_hold_ms > 5_000 {
            return Err(invalid(
                "capture.hint_hold_ms",
                "must be 0 to 5000 ms: longer, a hint stays up after the person has followed it",
            ));
        }
        self.queue.check().map_err(|(k, p)| invalid(k, p))?;
        let u = &self.uplink;
        if u.base_backoff_secs == 0 || u.max_backoff_secs < u.base_backoff_secs {
            return Err(invalid("uplink.base_backoff_secs", "must be above 0 and at most max_backoff_secs"));
        }
        if u.max_backoff_secs > 86_400 || u.paused_retry_secs == 0 || u.paused_retry_secs > 86_400 {
            return Err(invalid("uplink.max_backoff_secs/paused_retry_secs", "must be 1 s to 1 day"));
        }
        if u.idle_poll_secs == 0 || u.idle_poll_secs > 3_600 || u.max_probe_interval_secs < u.idle_poll_secs {
            return Err(invalid(
                "uplink.idle_poll_secs/max_probe_interval_secs",
                "need 1 ≤ idle_poll_secs ≤ 3600 and max_probe_interval_secs ≥ idle_poll_secs (0 would spin)",
            ));
        }
        if !(5..=86_400).contains(&u.max_clock_skew_secs) {
            return Err(invalid("uplink.max_clock_skew_secs", "must be 5 to 86400 seconds"));
        }
        if !(1..=8).contains(&u.parallel_uploads) {
            return Err(invalid("uplink.parallel_uploads", "must be 1 to 8"));
        }
        if c.time_limit_secs == 0 {
            return Err(invalid("capture.time_limit_secs", "must be above 0"));
        }
        let t = &c.thresholds;
        if !(0.0 < t.min_face_area && t.min_face_area < t.max_face_area && t.max_face_area <= 1.0) {
            return Err(invalid("capture.thresholds.min_face_area/max_face_area", "need 0 < min < max <= 1"));
        }
        if !(0.0..=255.0).contains(&t.min_luma) || t.max_luma <= t.min_luma || t.max_luma > 255.0 {
            return Err(invalid("capture.thresholds.min_luma/max_luma", "need 0 <= min < max <= 255"));
        }
        if !(0.0..=0.5).contains(&t.max_off_centre) || !(0.0..=1.0).contains(&t.min_document_fill) {
            return Err(invalid(
                "capture.thresholds.max_off_centre/min_document_fill",
                "are shares of the frame: 0 to 0.5 and 0 to 1",
            ));
        }
        if !(24..=240).contains(&c.min_face_px) {
            return Err(invalid(
                "capture.min_face_px",
                "must be 24 to 240; it is no longer used (thresholds.min_tracked_face sets the smallest face): remove it",
            ));
        }
        if !(0.0..0.5).contains(&t.min_tracked_face) || t.min_tracked_face >= t.min_face_area {
            return Err(invalid(
                "capture.thresholds.min_tracked_face",
                "is a share of the frame under min_face_area (Smile ID: 0.03)",
            ));
        }
        for (key, v) in [
            ("capture.thresholds.max_yaw", t.max_yaw),
            ("capture.thresholds.max_pitch", t.max_pitch),
            ("capture.thresholds.max_roll", t.max_roll),
        ] {
            if !(0.0..=90.0).contains(&v) {
                return Err(invalid(
                    key,
                    "is degrees from facing the camera, 0 to 90 (Smile ID: yaw 15, pitch and roll 30)",
                ));
            }
        }
        // The turns' settings matter only when they are asked for: a "motion" kiosk keeps working
        // with whatever its older config says.
        if c.liveness == crate::session::Liveness::Active {
            check_active(c)?;
        }
        Ok(())
    }
}

/// `[capture.active]` against what the turns and the rest of the capture need.
fn check_active(c: &crate::session::CaptureSettings) -> Result<(), ConfigError> {
    let a = &c.active;
    if c.liveness_frames < 4 {
        return Err(invalid(
            "capture.liveness_frames",
            "must be at least 4 with liveness = \"active\": the neutral pose and a frame for each turn (Smile ID: 8)",
        ));
    }
    if !(5.0..=40.0).contains(&a.turn_yaw) {
        return Err(invalid(
            "capture.active.turn_yaw",
            "is degrees of head turn, 5 to 40 (Smile ID: 27; head pose is measured well to about 40)",
        ));
    }
    if !(5.0..=45.0).contains(&a.look_up_pitch) {
        return Err(invalid("capture.active.look_up_pitch", "is degrees of looking up, 5 to 45 (Smile ID: 17)"));
    }
    if a.hold_ms > 3_000 {
        return Err(invalid("capture.active.hold_ms", "must be 0 to 3000 ms (Smile ID: 150)"));
    }
    // The turns' clock starts at the first good frame; the other frames and the selfie need
    // time after them.
    if a.timeout_secs < MIN_TURN_SECS || a.timeout_secs + AFTER_TURNS_SECS > c.time_limit_secs {
        return Err(invalid(
            "capture.active.timeout_secs",
            format!(
                "must be at least {MIN_TURN_SECS} s and {AFTER_TURNS_SECS} s under capture.time_limit_secs ({} s), so that the capture can finish after the turns",
                c.time_limit_secs
            ),
        ));
    }
    let spacing = c.liveness_interval_ms.saturating_mul(c.liveness_frames as u64);
    if spacing > a.timeout_secs * 1000 / 2 {
        return Err(invalid(
            "capture.liveness_interval_ms",
            format!(
                "× liveness_frames is {spacing} ms, more than half of capture.active.timeout_secs: the frames along the turns could not all be taken in time"
            ),
        ));
    }
    if !(0.0..0.5).contains(&a.min_depth) {
        return Err(invalid(
            "capture.active.min_depth",
            "is a share of the eye distance, 0 (off) to under 0.5 (default 0.07)",
        ));
    }
    Ok(())
}

impl Config {
    /// The v1 API root for `smileid.environment`.
    pub fn base_url(&self) -> Result<String, ConfigError> {
        // user:password@ would be kept in the config file and shown in every message that names
        // the host; not echoed here either.
        let url = self.smileid.environment.as_str();
        if crate::uplink::http::has_login(url) {
            return Err(invalid(
                "smileid.environment",
                "has a user name or password in it (user:password@host); remove them: kiosk.toml is read by the kiosk's \
                 staff and copied into backups, and the host is named in logs and health. A gateway that needs a login belongs in front of the \
                 kiosk's network, not in its URL"
                    .to_string(),
            ));
        }
        Ok(match url {
            "sandbox" => crate::smileid::SANDBOX_URL.into(),
            "production" => crate::smileid::PRODUCTION_URL.into(),
            url if url.starts_with("https://") && url.trim_end_matches('/').ends_with("/v1") => {
                url.trim_end_matches('/').into()
            }
            url if url.starts_with("https://") => {
                return Err(invalid(
                    "smileid.environment",
                    format!(
                        "{url:?} must be the API's v1 root, ending in /v1 (e.g. https://testapi.smileidentity.com/v1)"
                    ),
                ))
            }
            other => {
                return Err(invalid(
                    "smileid.environment",
                    format!("{other:?}: use \"sandbox\", \"production\" or an https:// URL ending in /v1"),
                ))
            }
        })
    }

    /// Reads the API key (custody local_key); never echoes its content in an error.
    pub fn api_key(&self) -> Result<ApiKey, ConfigError> {
        let p = self.smileid.api_key_file.as_deref().ok_or_else(|| invalid("smileid.api_key_file", "is not set"))?;
        read_api_key(p)
    }

    /// The signer for the configured custody mode.
    pub fn signer(&self, http: &HttpClient) -> Result<Box<dyn Signer>, ConfigError> {
        let s = &self.smileid;
        let secret = |p: &Option<PathBuf>, key: &'static str| -> Result<Secret, ConfigError> {
            let p = p.as_deref().ok_or_else(|| invalid(key, "is not set"))?;
            read_secret(p)
        };
        Ok(match s.custody {
            Custody::LocalKey => Box::new(LocalKeySigner { partner_id: s.partner_id.clone(), key: self.api_key()? }),
            Custody::PartnerSigner => Box::new(PartnerSigner {
                url: s.signer_url.clone().unwrap_or_default(),
                partner_id: s.partner_id.clone(),
                device_token: secret(&s.device_token_file, "smileid.device_token_file")?,
                http: http.clone(),
            }),
            Custody::AuthSmile => Box::new(AuthSmileSigner {
                base_url: self.base_url()?,
                partner_id: s.partner_id.clone(),
                auth_token: secret(&s.auth_token_file, "smileid.auth_token_file")?,
                production: s.production(),
                http: http.clone(),
            }),
        })
    }
}

/// Reads an API key file (relative paths resolve in systemd's $CREDENTIALS_DIRECTORY).
pub fn read_api_key(path: &Path) -> Result<ApiKey, ConfigError> {
    Ok(ApiKey::new(read_secret(path)?.expose()))
}

/// Reads a one-line secret file (key or token); the error names the file, never the content.
pub fn read_secret(path: &Path) -> Result<Secret, ConfigError> {
    let resolved = crate::store::secret_path(path);
    let p = resolved.display().to_string();
    let raw = std::fs::read_to_string(&resolved).map(zeroize::Zeroizing::new).map_err(|e| {
        // A name left relative was found neither among the credentials nor beside the config:
        // say where it was looked for last, from here.
        let detail = match std::path::absolute(&resolved) {
            Ok(a) if resolved.is_relative() => {
                format!("{e} (looked for as {}, and in credentials/ beside the config)", a.display())
            }
            _ => e.to_string(),
        };
        ConfigError::ApiKey { path: p.clone(), detail }
    })?;
    let key = raw.trim();
    if key.is_empty() {
        return Err(ConfigError::ApiKey { path: p, detail: "the file is empty".into() });
    }
    Ok(Secret::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
state_dir = "/var/lib/kiosk-agent"
[smileid]
partner_id = "085"
environment = "sandbox"
api_key_file = "api_key"
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(GOOD, "test").unwrap();
        assert_eq!(c.capture.liveness_frames, 8);
        assert_eq!(c.base_url().unwrap(), crate::smileid::SANDBOX_URL);
    }

    #[test]
    fn errors_name_the_key() {
        let typo = GOOD.replace("environment", "enviroment");
        let e = Config::parse(&typo, "kiosk.toml").unwrap_err().to_string();
        assert!(e.contains("kiosk.toml") && e.contains("enviroment"), "{e}");
        let bad = GOOD.replace("\"085\"", "\"eighty\"");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("smileid.partner_id"));
        let bad = GOOD.replace("\"sandbox\"", "\"http://plain\"");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("smileid.environment"));
        let bad = format!("{GOOD}\n[capture]\njpeg_quality = 0\n");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("capture.jpeg_quality"));
        let bad = format!("{GOOD}\n[capture.thresholds]\nmin_face_area = 0.5\n");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("min_face_area"));
        let bad = format!("{GOOD}\n[capture.thresholds]\nmax_yaw = 120.0\n");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("capture.thresholds.max_yaw"));
        let bad = format!("{GOOD}\n[capture.thresholds]\nmin_tracked_face = 0.2\n");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("min_tracked_face"));
        let bad = format!("{GOOD}\n[camera]\nsource = \"usb\"\n");
        let e = Config::parse(&bad, "t").unwrap_err().to_string();
        assert!(e.contains("source") && e.contains("v4l2") && e.contains("synthetic"), "{e}");
        let bad = format!("{GOOD}\n[display]\nbackend = \"hdmi\"\n");
        let e = Config::parse(&bad, "t").unwrap_err().to_string();
        assert!(e.contains("backend") && e.contains("framebuffer") && e.contains("spi"), "{e}");
        let bad = format!("{GOOD}\n[camera]\nformats = [\"H264\"]\n");
        assert!(Config::parse(&bad, "t").unwrap_err().to_string().contains("camera.formats"));
    }

    /// Values an operator may write that would take effect wrongly (an unreadable ID photo, a
    /// consent nobody can answer, a service that cannot start) are refused, naming the key.
    #[test]
    fn values_that_cannot_work_are_refused_by_key() {
        let refused = |extra: &str, key: &str| {
            let e = Config::parse(&format!("{GOOD}\n{extra}\n"), "t").expect_err(extra).to_string();
            assert!(e.contains(key), "{extra}: {e}");
        };
        refused("[capture]\ndocument_jpeg_quality = 0", "capture.document_jpeg_quality");
        refused("[capture]\ndocument_jpeg_quality = 255", "capture.document_jpeg_quality");
        refused("[capture]\ndocument_long_side = 16", "capture.document_long_side");
        refused("[capture]\ndocument_long_side = 200", "capture.document_long_side");
        refused("[capture]\nliveness_long_side = 8000", "liveness_long_side");
        refused("[capture]\nhint_hold_ms = 600000", "capture.hint_hold_ms");
        refused("[api]\nconsent_timeout_secs = 0", "api.consent_timeout_secs");
        refused("[api]\nsocket = \"\"", "api.socket");
        refused(&format!("[api]\nsocket = \"/run/{}/c.sock\"", "k".repeat(100)), "api.socket");
        refused("[display]\nbackend = \"png\"\nout_dir = \"\"", "display.out_dir");
        refused("[display]\nbackend = \"spi\"\ndc_line = 27", "display.dc_line/reset_line");
        refused("[display]\nbackend = \"spi\"\ndc_line = 17\n[input]\nbackend = \"gpio\"", "input.line");
        refused("[display]\nreset_line = \"off\"", "reset_line");
        // A stray space names another directory: a fresh, empty queue.
        let spaced = GOOD.replace("\"/var/lib/kiosk-agent\"", "\"/var/lib/kiosk-agent \"");
        assert_ne!(spaced, GOOD);
        let e = Config::parse(&spaced, "t").unwrap_err().to_string();
        assert!(e.contains("state_dir") && e.contains("space"), "{e}");
        refused("[display]\nlang_dir = \" lang\"", "display.lang_dir");
        refused("[queue]\nreserve_bytes = 2147483648", "queue.reserve_bytes");
        refused("[queue]\nmin_free_bytes = 2199023255552", "queue.min_free_bytes");
        // 0 is no ballast; one too small to free room for the index is made 256 KiB.
        assert!(Config::parse(&format!("{GOOD}\n[queue]\nreserve_bytes = 0\n"), "t").is_ok());
        let small = Config::parse(&format!("{GOOD}\n[queue]\nreserve_bytes = 4096\n"), "t").unwrap();
        assert_eq!(small.queue.reserve(), 256 * 1024);
        // "~" is nobody's home here: refused, not made a directory named "~".
        let home = GOOD.replace("\"/var/lib/kiosk-agent\"", "\"~/kiosk-state\"");
        assert!(Config::parse(&home, "t").unwrap_err().to_string().contains("state_dir"));
        refused("[display]\nlogo = \"~kiosk/logo.png\"", "display.logo");
        // A login in the API's URL: refused without repeating it.
        let login = GOOD.replace("environment = \"sandbox\"", "environment = \"https://gw:Secret1@gw.example/v1\"");
        assert_ne!(login, GOOD);
        let e = Config::parse(&login, "t").unwrap_err().to_string();
        assert!(e.contains("smileid.environment") && !e.contains("Secret1"), "{e}");
        // The ends of each range, and what an older config may hold, are accepted.
        for fine in [
            "[capture]\ndocument_long_side = 0\ndocument_jpeg_quality = 100\nhint_hold_ms = 5000",
            "[capture]\ndocument_long_side = 320\nselfie_long_side = 256\nliveness_long_side = 320",
            "[api]\nconsent_timeout_secs = 86400",
            "[display]\nlogo = \"/srv/~kiosk/logo.png\"",
        ] {
            let e = Config::parse(&format!("{GOOD}\n{fine}\n"), "t").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!e.contains("document") && !e.contains("consent") && !e.contains("not expanded"), "{fine}: {e}");
        }
        // The kiosk's language listed again among the others is offered once.
        let twice = format!("{GOOD}\n[display]\nlanguage = \"fr\"\nlanguages = [\"en\", \"fr\", \"sw\"]\n");
        assert_eq!(Config::parse(&twice, "t").unwrap().display.offered(), ["fr", "en", "sw"]);
        // A panel without a reset line says so.
        let c = Config::parse(&format!("{GOOD}\n[display]\nbackend = \"spi\"\nreset_line = \"none\"\n"), "t").unwrap();
        assert_eq!(c.display.reset_line, None);
        assert_eq!(Config::parse(GOOD, "t").unwrap().display.reset_line, Some(27));
    }

    /// Every backend and mode the types allow passes `check-config` (SPI included), and the
    /// text the docs use for it is the text serde reads.
    #[test]
    fn walk_up_needs_a_button_and_a_document_its_kind() {
        for inp in InputBackend::ALL {
            for walk in WalkUp::ALL {
                for doc in ["", "walk_up_country = \"KE\"\nwalk_up_id_type = \"NATIONAL_ID\"\n"] {
                    let text = format!(
                        "{GOOD}\n[input]\nbackend = {:?}\nwalk_up = {:?}\n{doc}",
                        as_text(&inp),
                        as_text(&walk)
                    );
                    let ok = walk == WalkUp::Off
                        || (inp != InputBackend::None && (walk != WalkUp::Document || !doc.is_empty()));
                    let r = Config::parse(&text, "t");
                    assert_eq!(r.is_ok(), ok, "{inp:?}/{walk:?}/{doc:?}: {:?}", r.err());
                    if let Ok(c) = r {
                        assert_eq!((c.input.backend, c.input.walk_up), (inp, walk));
                    }
                }
            }
        }
        // The card's back unless the document is a passport (as walk-ups were before the
        // setting), or as set.
        let back = |id_type: &str, set: &str| {
            let text = format!(
                "{GOOD}\n[input]\nbackend = \"gpio\"\nwalk_up = \"document\"\nwalk_up_country = \"NG\"\nwalk_up_id_type = {id_type:?}\n{set}"
            );
            Config::parse(&text, "t").unwrap().input.walk_up_back()
        };
        assert!(back("NATIONAL_ID", ""));
        // Smile ID's codes in any case mean the same; a name that is not one is named.
        let doc = |country: &str, id_type: &str| {
            Config::parse(
                &format!("{GOOD}\n[input]\nbackend = \"gpio\"\nwalk_up = \"document\"\nwalk_up_country = {country:?}\nwalk_up_id_type = {id_type:?}\n"),
                "t",
            )
        };
        let c = doc(" ke", "national_id").unwrap();
        assert_eq!(
            (c.input.walk_up_country.as_deref(), c.input.walk_up_id_type.as_deref()),
            (Some("KE"), Some("NATIONAL_ID"))
        );
        assert!(!doc("ng", "passport").unwrap().input.walk_up_back());
        for (country, id_type, key, says) in [
            ("Kenya", "NATIONAL_ID", "input.walk_up_country", "\"KENYA\" is not a two-letter ISO 3166 country code"),
            ("", "NATIONAL_ID", "input.walk_up_country", "needs the document's country"),
            ("KE", "national id", "input.walk_up_id_type", "\"NATIONAL ID\" is not a Smile ID id type"),
            ("KE", "", "input.walk_up_id_type", "needs the document's Smile ID id type"),
        ] {
            match doc(country, id_type) {
                Err(ConfigError::Invalid { key: k, problem }) => {
                    assert_eq!(k, key);
                    assert!(problem.contains(says), "{problem}");
                }
                r => panic!("{country:?} {id_type:?}: {r:?}"),
            }
        }
        assert!(!back("PASSPORT", ""));
        assert!(back("PASSPORT", "walk_up_document_back = true\n"));
        assert!(!back("DRIVERS_LICENSE", "walk_up_document_back = false\n"));
    }

    #[test]
    fn every_backend_and_mode_is_accepted() {
        for cam in CameraSource::ALL {
            for disp in DisplayBackend::ALL {
                for inp in InputBackend::ALL {
                    let text = format!(
                        "{GOOD}\n[camera]\nsource = {:?}\n[display]\nbackend = {:?}\n[input]\nbackend = {:?}\n",
                        as_text(&cam),
                        as_text(&disp),
                        as_text(&inp)
                    );
                    let c = Config::parse(&text, "t").unwrap_or_else(|e| panic!("{cam:?}/{disp:?}/{inp:?}: {e}"));
                    assert_eq!((c.camera.source, c.display.backend, c.input.backend), (cam, disp, inp));
                }
            }
        }
    }

    /// The config text of a variant, as serde writes it.
    fn as_text<T: Serialize>(v: &T) -> String {
        serde_json::to_value(v).unwrap().as_str().unwrap().to_string()
    }

    #[test]
    fn the_packaged_config_describes_a_real_kiosk_once_the_partner_id_is_set() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/kiosk.example.toml")).unwrap();
        let e = Config::parse(&text, "kiosk.example.toml").unwrap_err().to_string();
        assert!(e.contains("smileid.partner_id"), "no demo partner id ships: {e}");
        let c = Config::parse(&text.replace("partner_id = \"\"", "partner_id = \"085\""), "kiosk.toml").unwrap();
        assert_eq!(
            (c.camera.source, c.display.backend, c.input.backend),
            (CameraSource::V4l2, DisplayBackend::Framebuffer, InputBackend::Gpio)
        );
        assert_eq!(c.camera.device, "auto");
        assert_eq!(c.smileid.environment, "production");
        // Nothing names the demo parts but their own comments.
        let defaults = Config::parse(GOOD, "t").unwrap();
        assert_eq!(
            (defaults.camera.source, defaults.display.backend),
            (CameraSource::V4l2, DisplayBackend::Framebuffer)
        );
    }

    #[test]
    fn production_is_known_by_its_name_and_by_its_url_written_out() {
        let on = |environment: &str| {
            let text = GOOD.replace("\"sandbox\"", &format!("{environment:?}"));
            Config::parse(&text, "t").unwrap_or_else(|e| panic!("{environment}: {e}")).smileid.production()
        };
        for yes in [
            "production",
            "https://api.smileidentity.com/v1",
            "https://API.SmileIdentity.com:443/v1/",
            "https://api.smileidentity.com./v1",
        ] {
            assert!(on(yes), "{yes}");
        }
        for no in [
            "sandbox",
            "https://testapi.smileidentity.com/v1",
            "https://127.0.0.1:18755/v1",
            "https://api.smileidentity.com.evil.example/v1",
        ] {
            assert!(!on(no), "{no}");
        }
        // A bank's name the fonts cannot draw (an emoji) is named, not shown as a box.
        let emoji = GOOD.replace("environment", "partner_name = \"Banque de l'Ouest \u{1F3E6}\"\nenvironment");
        let e = Config::parse(&emoji, "t").unwrap_err().to_string();
        assert!(e.contains("smileid.partner_name") && e.contains("U+1F3E6"), "{e}");
        // Nor one that names no one, or whose marks would run over the consent's other lines.
        assert!(partner_name_problem("  \u{a0}\u{200b}\u{301}").is_some_and(|p| p.contains("names no one")));
        assert!(partner_name_problem(&format!("Ba{}nk", "\u{338}\u{323}".repeat(3))).is_some());
        assert_eq!(partner_name_problem("Ọ̀yọ́ Microfinance Bank"), None);
        assert_eq!(partner_name_problem("بنك مصر"), None);
        // Screens as files (live face previews) are refused however production is named.
        let png =
            GOOD.replace("\"sandbox\"", "\"https://API.smileidentity.com/v1\"") + "[display]\nbackend = \"png\"\n";
        let e = Config::parse(&png, "t").unwrap_err().to_string();
        assert!(e.contains("display.backend"), "{e}");
    }

    #[test]
    fn api_key_errors_never_show_the_key() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, "  \n").unwrap();
        assert!(read_api_key(&p).unwrap_err().to_string().contains("empty"));
        std::fs::write(&p, "secret-key-123\n").unwrap();
        let k = read_api_key(&p).unwrap();
        assert!(!format!("{k:?}").contains("secret"));
    }
}
