//! The Linux framebuffer (`/dev/fbN`: HDMI screens, DRM's fbdev emulation, vfb), RGB565 or
//! XRGB8888 as the driver reports. Whole frames are copied into the mapped memory: DRM's fbdev
//! emulation only flushes damage it sees from full writes, and one `pwrite` of exactly a
//! scanline never reaches the screen (Linux 6.1).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::{Canvas, Display, DisplayError, Texts};

const FBIOGET_VSCREENINFO: libc::c_ulong = 0x4600;
const FBIOGET_FSCREENINFO: libc::c_ulong = 0x4602;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Bitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

/// `struct fb_var_screeninfo` (linux/fb.h), the same on every architecture.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct VarInfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: Bitfield,
    green: Bitfield,
    blue: Bitfield,
    transp: Bitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    pixclock: u32,
    left_margin: u32,
    right_margin: u32,
    upper_margin: u32,
    lower_margin: u32,
    hsync_len: u32,
    vsync_len: u32,
    sync: u32,
    vmode: u32,
    rotate: u32,
    colorspace: u32,
    reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo`: only `smem_len` and `line_length` are used; `smem_start` and
/// `mmio_start` are `unsigned long`, so the layout differs between 32- and 64-bit targets.
#[repr(C)]
#[derive(Clone, Copy)]
struct FixInfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    kind: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

/// Pixel layouts this backend writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FbFormat {
    Rgb565,
    Xrgb8888,
}

pub struct Framebuffer {
    path: String,
    _file: File,
    map: *mut u8,
    len: usize,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: FbFormat,
    texts: Arc<Texts>,
}

// SAFETY: the mapping is owned by this value alone and only touched through `&mut self` (or
// `&self` for reads); it stays valid until drop.
unsafe impl Send for Framebuffer {}

fn fb_err(path: &str, detail: impl std::fmt::Display) -> DisplayError {
    DisplayError::Device { device: path.to_string(), detail: detail.to_string() }
}

impl Framebuffer {
    pub fn open(path: &str) -> Result<Framebuffer, DisplayError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| fb_err(path, e))?;
        let fd = file.as_raw_fd();
        let mut var = VarInfo::default();
        // SAFETY: FBIOGET_VSCREENINFO fills a fb_var_screeninfo, which `var` is laid out as.
        if unsafe { libc::ioctl(fd, FBIOGET_VSCREENINFO as _, &mut var as *mut VarInfo) } != 0 {
            return Err(fb_err(path, format!("not a framebuffer: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: all-zero is a valid FixInfo; the ioctl fills it.
        let mut fix: FixInfo = unsafe { std::mem::zeroed() };
        // SAFETY: FBIOGET_FSCREENINFO fills a fb_fix_screeninfo, which `fix` is laid out as.
        if unsafe { libc::ioctl(fd, FBIOGET_FSCREENINFO as _, &mut fix as *mut FixInfo) } != 0 {
            return Err(fb_err(path, std::io::Error::last_os_error()));
        }
        let format = match (var.bits_per_pixel, var.red.offset, var.green.length) {
            (16, 11, 6) => FbFormat::Rgb565,
            (32, 16, 8) => FbFormat::Xrgb8888,
            (bpp, r, g) => {
                return Err(fb_err(
                    path,
                    format!(
                        "unsupported pixel layout ({bpp} bpp, red at {r}, green {g} bits); RGB565 and XRGB8888 are"
                    ),
                ));
            }
        };
        let len = fix.smem_len as usize;
        // SAFETY: maps the framebuffer memory the driver reports, shared, read-write.
        let map = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if map == libc::MAP_FAILED {
            return Err(fb_err(path, format!("mmap: {}", std::io::Error::last_os_error())));
        }
        Ok(Framebuffer {
            path: path.into(),
            _file: file,
            map: map as *mut u8,
            len,
            width: var.xres,
            height: var.yres,
            stride: fix.line_length as usize,
            format,
            texts: super::english(),
        })
    }

    fn bpp(&self) -> usize {
        match self.format {
            FbFormat::Rgb565 => 2,
            FbFormat::Xrgb8888 => 4,
        }
    }

    fn mem(&mut self) -> &mut [u8] {
        // SAFETY: `map` points at `len` mapped bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.map, self.len) }
    }

    /// The picture on the framebuffer now, as packed RGB, read through the mapping.
    pub fn read_back(&self) -> Vec<u8> {
        // SAFETY: `map` points at `len` mapped bytes owned by self; read-only here.
        let mem = unsafe { std::slice::from_raw_parts(self.map, self.len) };
        decode(mem, self.width, self.height, self.stride, self.format)
    }
}

/// RGB888 to RGB565 (5-6-5, truncating).
pub fn rgb565(r: u8, g: u8, b: u8) -> u16 {
    ((r as u16 >> 3) << 11) | ((g as u16 >> 2) << 5) | (b as u16 >> 3)
}

/// RGB565 back to RGB888, low bits filled from the high ones.
pub fn rgb565_to_rgb(v: u16) -> [u8; 3] {
    let (r, g, b) = ((v >> 11) as u8 & 0x1F, (v >> 5) as u8 & 0x3F, v as u8 & 0x1F);
    [(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)]
}

impl Drop for Framebuffer {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`.
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.len) };
    }
}

impl Display for Framebuffer {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn texts(&self) -> Arc<Texts> {
        self.texts.clone()
    }

    fn set_texts(&mut self, texts: Arc<Texts>) {
        self.texts = texts;
    }

    fn present(&mut self, c: &Canvas, _name: &str) -> Result<(), DisplayError> {
        if (c.width, c.height) != (self.width, self.height) {
            return Err(fb_err(
                &self.path,
                format!("frame is {}x{}, the screen {}x{}", c.width, c.height, self.width, self.height),
            ));
        }
        let (stride, bpp, format, w) = (self.stride, self.bpp(), self.format, self.width as usize);
        let mut line = vec![0u8; w * bpp];
        for y in 0..self.height as usize {
            let src = &c.rgb[y * w * 3..][..w * 3];
            match format {
                FbFormat::Rgb565 => {
                    for (d, p) in line.chunks_exact_mut(2).zip(src.chunks_exact(3)) {
                        d.copy_from_slice(&rgb565(p[0], p[1], p[2]).to_le_bytes());
                    }
                }
                FbFormat::Xrgb8888 => {
                    for (d, p) in line.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                        d.copy_from_slice(&[p[2], p[1], p[0], 0xFF]);
                    }
                }
            }
            self.mem()[y * stride..][..w * bpp].copy_from_slice(&line);
        }
        Ok(())
    }
}

/// What `kiosk-agent display test` saw on a framebuffer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FbReport {
    pub device: String,
    pub format: FbFormat,
    pub width: u32,
    pub height: u32,
    pub screens: usize,
    /// Screens whose read-back matched what was drawn (within the pixel format's precision).
    pub matched: usize,
    /// Largest per-channel difference seen between drawn and read back.
    pub max_diff: u8,
    /// Screens that did not match, with their largest difference and its first pixel (x, y).
    pub mismatched: Vec<(String, u8, (u32, u32))>,
}

/// Shows every sample screen in `texts` on the framebuffer and reads each back through a
/// separate `read` of the device, not the mapping it was written through. `save` gets the
/// read-back pictures as PNG.
pub fn self_test(path: &str, texts: Arc<Texts>, save: Option<&std::path::Path>) -> Result<FbReport, DisplayError> {
    use std::io::{Read, Seek};
    let mut fb = Framebuffer::open(path)?;
    fb.set_texts(texts);
    let tolerance = if fb.format == FbFormat::Rgb565 { 8 } else { 0 };
    let (mut matched, mut max_diff, mut mismatched) = (0, 0u8, Vec::new());
    let samples = super::samples::screens();
    for (name, screen) in &samples {
        let mut c = Canvas::new(fb.width, fb.height);
        super::screens::render(screen, &fb.texts(), &mut c);
        fb.present(&c, name)?;
        let mut raw = vec![0u8; fb.stride * fb.height as usize];
        let mut f = File::open(path).map_err(|e| fb_err(path, e))?;
        f.rewind().and_then(|_| f.read_exact(&mut raw)).map_err(|e| fb_err(path, e))?;
        let back = decode(&raw, fb.width, fb.height, fb.stride, fb.format);
        let diff = back.iter().zip(&c.rgb).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(255);
        max_diff = max_diff.max(diff);
        if diff <= tolerance && back.len() == c.rgb.len() {
            matched += 1;
        } else {
            let at = back.iter().zip(&c.rgb).position(|(a, b)| a.abs_diff(*b) > tolerance).unwrap_or(0) / 3;
            mismatched.push((name.to_string(), diff, (at as u32 % fb.width, at as u32 / fb.width)));
        }
        if let Some(dir) = save {
            let p = dir.join(format!("{name}.png"));
            let img = image::RgbImage::from_raw(fb.width, fb.height, back).ok_or_else(|| fb_err(path, "size"))?;
            img.save(&p).map_err(|e| fb_err(path, e))?;
        }
    }
    Ok(FbReport {
        device: path.into(),
        format: fb.format,
        width: fb.width,
        height: fb.height,
        screens: samples.len(),
        matched,
        max_diff,
        mismatched,
    })
}

/// The screen behind framebuffer `device` is unplugged: every display connector of its DRM card
/// (HDMI, DSI, …) says "disconnected". The device node stays while a cable is out, so only the
/// connectors tell; a card with no connectors, or one that says "unknown", is taken as there.
pub fn unplugged(device: &str) -> bool {
    let Ok(node) = std::fs::canonicalize(device) else { return false };
    let Some(name) = node.file_name() else { return false };
    let cards = std::path::Path::new("/sys/class/graphics").join(name).join("device/drm");
    connectors_all_off(&cards)
}

/// Below `cards` (a device's `drm` directory): at least one connector, and all disconnected.
fn connectors_all_off(cards: &std::path::Path) -> bool {
    let statuses: Vec<String> = std::fs::read_dir(cards)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|card| card.file_name().to_string_lossy().starts_with("card"))
        .flat_map(|card| std::fs::read_dir(card.path()).into_iter().flatten().flatten())
        .filter_map(|c| std::fs::read_to_string(c.path().join("status")).ok())
        .collect();
    !statuses.is_empty() && statuses.iter().all(|s| s.trim() == "disconnected")
}

fn decode(mem: &[u8], width: u32, height: u32, stride: usize, format: FbFormat) -> Vec<u8> {
    let bpp = if format == FbFormat::Rgb565 { 2 } else { 4 };
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height as usize {
        let row = &mem[y * stride..][..width as usize * bpp];
        match format {
            FbFormat::Rgb565 => row
                .chunks_exact(2)
                .for_each(|p| out.extend_from_slice(&rgb565_to_rgb(u16::from_le_bytes([p[0], p[1]])))),
            FbFormat::Xrgb8888 => row.chunks_exact(4).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<VarInfo>(), 160);
        assert_eq!(std::mem::size_of::<FixInfo>(), if cfg!(target_pointer_width = "64") { 80 } else { 68 });
    }

    #[test]
    fn rgb565_round_trips_within_its_precision() {
        for (r, g, b) in [(0, 0, 0), (255, 255, 255), (16, 24, 40), (240, 160, 40)] {
            let [r2, g2, b2] = rgb565_to_rgb(rgb565(r, g, b));
            assert!(r.abs_diff(r2) <= 8 && g.abs_diff(g2) <= 4 && b.abs_diff(b2) <= 8);
        }
    }

    #[test]
    fn a_screen_is_unplugged_only_when_every_connector_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cards = dir.path();
        assert!(!connectors_all_off(cards), "no connectors: nothing to tell by");
        let connector = |name: &str, status: &str| {
            let c = cards.join("card1").join(name);
            std::fs::create_dir_all(&c).unwrap();
            std::fs::write(c.join("status"), format!("{status}\n")).unwrap();
        };
        connector("card1-HDMI-A-1", "disconnected");
        assert!(connectors_all_off(cards));
        connector("card1-HDMI-A-2", "connected");
        assert!(!connectors_all_off(cards), "the screen is on the other port");
        connector("card1-HDMI-A-2", "disconnected");
        connector("card1-Composite-1", "unknown");
        assert!(!connectors_all_off(cards), "a connector that cannot tell is taken as there");
        assert!(!unplugged("/dev/null"), "not a framebuffer: no connectors");
    }

    #[test]
    fn a_non_framebuffer_is_refused_with_its_name() {
        let e = Framebuffer::open("/dev/null").err().expect("refused");
        assert!(e.to_string().contains("/dev/null"), "{e}");
    }
}
