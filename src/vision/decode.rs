//! Camera bytes to pixels. MJPEG frames are checked (SOI/EOI, minimum size) and decoded with
//! zune-jpeg; frames without Huffman tables, which many UVC cameras send, get the standard
//! tables spliced in first. YUYV gives gray for free (every other byte). Analysis reads gray and
//! colour box-downscaled to a working scale; kept and previewed frames are decoded again in full.

use std::borrow::Cow;
use std::sync::OnceLock;

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::camera::{Frame, PixelFormat};

/// Smallest MJPEG frame taken as a picture: anything shorter is a truncated USB transfer.
pub const MIN_MJPEG_BYTES: usize = 512;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("MJPEG frame of {0} bytes is too short to be a picture (a truncated USB transfer); the frame is skipped")]
    TooShort(usize),
    #[error("MJPEG frame does not start with a JPEG SOI marker; the frame is skipped")]
    NoSoi,
    #[error("MJPEG frame does not end with a JPEG EOI marker (truncated transfer); the frame is skipped")]
    NoEoi,
    #[error("MJPEG frame could not be decoded: {0}; the frame is skipped")]
    Jpeg(String),
    #[error("{format:?} frame has {got} bytes, {want} expected for {width}x{height}; the frame is skipped")]
    Size { format: PixelFormat, width: u32, height: u32, got: usize, want: usize },
}

/// An 8-bit gray image.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Packed 8-bit RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Checks the framing of an MJPEG buffer: SOI first, EOI last (UVC drivers may pad with zeros).
pub fn check_mjpeg(b: &[u8]) -> Result<(), DecodeError> {
    if b.len() < MIN_MJPEG_BYTES {
        return Err(DecodeError::TooShort(b.len()));
    }
    if b[..2] != [0xFF, 0xD8] {
        return Err(DecodeError::NoSoi);
    }
    let end = b.iter().rposition(|&v| v != 0).unwrap_or(0);
    if end < 1 || b[end - 1..=end] != [0xFF, 0xD9] {
        return Err(DecodeError::NoEoi);
    }
    Ok(())
}

/// The standard (JPEG Annex K) Huffman tables as one DHT segment, taken from an encoder that
/// writes exactly those tables, so no table is typed in by hand.
fn standard_dht() -> &'static [u8] {
    static DHT: OnceLock<Vec<u8>> = OnceLock::new();
    DHT.get_or_init(|| {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 75)
            .encode(&[128; 8 * 8 * 3], 8, 8, jpeg_encoder::ColorType::Rgb)
            .expect("an 8x8 image encodes");
        let mut segs = Vec::new();
        let mut i = 2;
        while i + 4 <= out.len() && out[i] == 0xFF && out[i + 1] != 0xDA {
            let len = u16::from_be_bytes([out[i + 2], out[i + 3]]) as usize;
            if out[i + 1] == 0xC4 {
                segs.extend_from_slice(&out[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        segs
    })
}

/// Returns `b` with the standard Huffman tables added when no DHT segment precedes the scan.
pub fn with_huffman_tables(b: &[u8]) -> Cow<'_, [u8]> {
    let mut i = 2;
    while i + 4 <= b.len() && b[i] == 0xFF {
        let marker = b[i + 1];
        if marker == 0xC4 {
            return Cow::Borrowed(b);
        }
        if marker == 0xDA {
            let mut v = Vec::with_capacity(b.len() + 440);
            v.extend_from_slice(&b[..i]);
            v.extend_from_slice(standard_dht());
            v.extend_from_slice(&b[i..]);
            return Cow::Owned(v);
        }
        i += 2 + u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
    }
    Cow::Borrowed(b)
}

fn jpeg(b: &[u8], space: ColorSpace) -> Result<(u32, u32, Vec<u8>), DecodeError> {
    check_mjpeg(b)?;
    let b = with_huffman_tables(b);
    let opts = DecoderOptions::default().jpeg_set_out_colorspace(space).set_strict_mode(false);
    let mut d = JpegDecoder::new_with_options(ZCursor::new(&b[..]), opts);
    let px = d.decode().map_err(|e| DecodeError::Jpeg(format!("{e:?}")))?;
    let (w, h) = d.dimensions().ok_or_else(|| DecodeError::Jpeg("no dimensions".into()))?;
    Ok((w as u32, h as u32, px))
}

fn check_len(f: &Frame, per_px: usize) -> Result<(), DecodeError> {
    let want = f.width as usize * f.height as usize * per_px;
    if f.data.len() < want {
        return Err(DecodeError::Size { format: f.format, width: f.width, height: f.height, got: f.data.len(), want });
    }
    Ok(())
}

/// Gray of `f`, box-downscaled by the largest integer factor that keeps it at least `min_width`
/// wide (a 1280×720 frame with `min_width` 640 gives 640×360).
pub fn gray(f: &Frame, min_width: u32) -> Result<Gray, DecodeError> {
    let (w, h, luma) = match f.format {
        PixelFormat::Mjpeg => jpeg(&f.data, ColorSpace::Luma)?,
        PixelFormat::Yuyv => {
            check_len(f, 2)?;
            // UVC YUYV is limited range (Y 16-235): stretch to full range so thresholds match JPEG frames.
            let lut: [u8; 256] = std::array::from_fn(|y| ((y as i32 - 16) * 255 / 219).clamp(0, 255) as u8);
            let n = (f.width * f.height) as usize;
            (f.width, f.height, f.data.iter().step_by(2).take(n).map(|&y| lut[y as usize]).collect())
        }
        PixelFormat::Rgb8 => {
            check_len(f, 3)?;
            let luma = f.data.chunks_exact(3).map(|p| luma601(p[0], p[1], p[2])).collect();
            (f.width, f.height, luma)
        }
    };
    Ok(box_down(&Gray { width: w, height: h, data: luma }, (w / min_width.max(1)).max(1)))
}

/// Gray of an RGB picture, box-downscaled as [`gray`] does: for a frame already decoded to
/// colour, instead of decoding it a second time.
pub fn gray_of(img: &Rgb, min_width: u32) -> Gray {
    let luma = img.data.chunks_exact(3).map(|p| luma601(p[0], p[1], p[2])).collect();
    let g = Gray { width: img.width, height: img.height, data: luma };
    match img.width / min_width.max(1) {
        0 | 1 => g,
        k => box_down(&g, k),
    }
}

/// Averages `k`×`k` blocks of an RGB picture (k ≤ 1 returns it as it is).
pub fn rgb_box_down(img: Rgb, k: u32) -> Rgb {
    if k <= 1 {
        return img;
    }
    let (w, h) = (img.width / k, img.height / k);
    if w == 0 || h == 0 {
        return Rgb { width: w, height: h, data: Vec::new() };
    }
    let (k, src_w, n) = (k as usize, img.width as usize * 3, k * k);
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    if k == 2 {
        // The common case (720p halved): rows summed in a pass that vectorises, then pairs of
        // pixels.
        let (w, h) = (w as usize, h as usize);
        data.resize(w * h * 3, 0);
        let mut sum = vec![0u16; w * 6];
        for (y, out) in data.chunks_exact_mut(w * 3).enumerate() {
            let (r0, r1) = (&img.data[2 * y * src_w..][..w * 6], &img.data[(2 * y + 1) * src_w..][..w * 6]);
            for ((s, a), b) in sum.iter_mut().zip(r0).zip(r1) {
                *s = *a as u16 + *b as u16;
            }
            for (o, s) in out.chunks_exact_mut(3).zip(sum.chunks_exact(6)) {
                o[0] = ((s[0] + s[3] + 2) >> 2) as u8;
                o[1] = ((s[1] + s[4] + 2) >> 2) as u8;
                o[2] = ((s[2] + s[5] + 2) >> 2) as u8;
            }
        }
        return Rgb { width: w as u32, height: h as u32, data };
    }
    let mut acc = vec![0u32; w as usize * 3];
    for y in 0..h as usize {
        acc.fill(0);
        for yy in 0..k {
            let row = &img.data[(y * k + yy) * src_w..][..w as usize * k * 3];
            for (a, block) in acc.chunks_exact_mut(3).zip(row.chunks_exact(3 * k)) {
                for px in block.chunks_exact(3) {
                    a[0] += px[0] as u32;
                    a[1] += px[1] as u32;
                    a[2] += px[2] as u32;
                }
            }
        }
        data.extend(acc.iter().map(|&a| ((a + n / 2) / n) as u8));
    }
    Rgb { width: w, height: h, data }
}

/// BT.601 luma in fixed point.
fn luma601(r: u8, g: u8, b: u8) -> u8 {
    ((77 * r as u32 + 150 * g as u32 + 29 * b as u32) >> 8) as u8
}

/// Averages `k`×`k` blocks (k = 1 returns a copy).
pub fn box_down(g: &Gray, k: u32) -> Gray {
    if k <= 1 {
        return g.clone();
    }
    let (w, h) = (g.width / k, g.height / k);
    if k == 2 {
        // The common case (720p and VGA frames halved), kept simple enough to vectorize.
        let sw = g.width as usize;
        let mut data = Vec::with_capacity(w as usize * h as usize);
        for y in 0..h as usize {
            let (r0, r1) = (&g.data[2 * y * sw..][..2 * w as usize], &g.data[(2 * y + 1) * sw..][..2 * w as usize]);
            data.extend(
                r0.chunks_exact(2)
                    .zip(r1.chunks_exact(2))
                    .map(|(a, b)| ((a[0] as u16 + a[1] as u16 + b[0] as u16 + b[1] as u16) >> 2) as u8),
            );
        }
        return Gray { width: w, height: h, data };
    }
    let (k, src_w) = (k as usize, g.width as usize);
    let mut data = vec![0u8; w as usize * h as usize];
    let mut acc = vec![0u32; w as usize];
    for (y, out) in data.chunks_exact_mut(w as usize).enumerate() {
        acc.iter_mut().for_each(|a| *a = 0);
        for yy in 0..k {
            let row = &g.data[(y * k + yy) * src_w..][..w as usize * k];
            for (a, px) in acc.iter_mut().zip(row.chunks_exact(k)) {
                *a += px.iter().map(|&v| v as u32).sum::<u32>();
            }
        }
        let n = (k * k) as u32;
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = (a / n) as u8;
        }
    }
    Gray { width: w, height: h, data }
}

/// Full-resolution RGB of `f` (for the frames that are kept or shown).
pub fn rgb(f: &Frame) -> Result<Rgb, DecodeError> {
    match f.format {
        PixelFormat::Mjpeg => {
            let (width, height, data) = jpeg(&f.data, ColorSpace::RGB)?;
            Ok(Rgb { width, height, data })
        }
        PixelFormat::Yuyv => {
            check_len(f, 2)?;
            let mut data = Vec::with_capacity((f.width * f.height * 3) as usize);
            for q in f.data.chunks_exact(4).take((f.width * f.height / 2) as usize) {
                let (u, v) = (q[1] as i32 - 128, q[3] as i32 - 128);
                for y in [q[0], q[2]] {
                    // BT.601 limited range to full-range RGB, fixed point (×256).
                    let c = 298 * (y as i32 - 16);
                    let px = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
                    data.extend_from_slice(&[px(c + 409 * v), px(c - 100 * u - 208 * v), px(c + 516 * u)]);
                }
            }
            Ok(Rgb { width: f.width, height: f.height, data })
        }
        PixelFormat::Rgb8 => {
            check_len(f, 3)?;
            Ok(Rgb { width: f.width, height: f.height, data: f.data[..(f.width * f.height * 3) as usize].to_vec() })
        }
    }
}

/// YUYV (BT.601 limited range) of an RGB image with an even width: what a UVC camera sends.
pub fn rgb_to_yuyv(img: &Rgb) -> Vec<u8> {
    let mut out = Vec::with_capacity((img.width * img.height * 2) as usize);
    for pair in img.data.chunks_exact(6) {
        let yuv = |p: &[u8]| {
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
            let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
            let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
            (y.clamp(0, 255) as u8, u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
        };
        let (y0, u0, v0) = yuv(&pair[..3]);
        let (y1, u1, v1) = yuv(&pair[3..]);
        out.extend_from_slice(&[y0, ((u0 as u16 + u1 as u16) / 2) as u8, y1, ((v0 as u16 + v1 as u16) / 2) as u8]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(format: PixelFormat, width: u32, height: u32, data: Vec<u8>) -> Frame {
        Frame { width, height, format, data, at: Duration::ZERO }
    }

    #[test]
    fn mjpeg_framing_is_checked() {
        assert_eq!(check_mjpeg(&[0xFF, 0xD8, 0xFF, 0xD9]), Err(DecodeError::TooShort(4)));
        let mut b = vec![0u8; 600];
        assert_eq!(check_mjpeg(&b), Err(DecodeError::NoSoi));
        b[..2].copy_from_slice(&[0xFF, 0xD8]);
        assert_eq!(check_mjpeg(&b), Err(DecodeError::NoEoi));
        b[500..502].copy_from_slice(&[0xFF, 0xD9]);
        assert_eq!(check_mjpeg(&b), Ok(()), "zero padding after EOI is allowed");
    }

    #[test]
    fn yuyv_round_trips_through_rgb() {
        let img = Rgb { width: 4, height: 1, data: vec![200, 30, 30, 200, 30, 30, 20, 180, 40, 20, 180, 40] };
        let back = rgb(&frame(PixelFormat::Yuyv, 4, 1, rgb_to_yuyv(&img))).unwrap();
        for (a, b) in img.data.iter().zip(&back.data) {
            assert!(a.abs_diff(*b) <= 6, "{:?} vs {:?}", img.data, back.data);
        }
    }

    #[test]
    fn short_raw_frames_are_refused() {
        let e = gray(&frame(PixelFormat::Yuyv, 640, 480, vec![0; 100]), 320).unwrap_err();
        assert!(e.to_string().contains("614400 expected"), "{e}");
    }

    #[test]
    fn box_down_averages() {
        let g = Gray { width: 4, height: 2, data: vec![0, 2, 10, 20, 4, 6, 30, 40] };
        assert_eq!(box_down(&g, 2), Gray { width: 2, height: 1, data: vec![3, 25] });
        let g = Gray { width: 6, height: 3, data: (0..18).collect() };
        assert_eq!(box_down(&g, 3), Gray { width: 2, height: 1, data: vec![7, 10] });
    }

    /// Each channel averaged on its own, rounded; the halving path and the general one agree
    /// with the sum by hand, and odd edges are dropped.
    #[test]
    fn rgb_box_down_averages_each_channel() {
        // 5×2 pixels: channel c of pixel (x, y) is 10·x + y + 100·c.
        let data: Vec<u8> =
            (0..2).flat_map(|y| (0..5).flat_map(move |x| (0..3).map(move |c| 10 * x + y + 100 * c))).collect();
        let img = Rgb { width: 5, height: 2, data };
        // Pixels (0..2, 0..2): 10·0.5 + 0.5 = 5.5, rounded to 6; the fifth column is dropped.
        assert_eq!(rgb_box_down(img.clone(), 2).data, vec![6, 106, 206, 26, 126, 226]);
        let g = Rgb { width: 3, height: 3, data: (0..27).collect() };
        // Channel 0 of the nine pixels: 0, 3, …, 24, mean 12.
        assert_eq!(rgb_box_down(g, 3), Rgb { width: 1, height: 1, data: vec![12, 13, 14] });
        assert_eq!(rgb_box_down(img.clone(), 1), img);
        assert_eq!(rgb_box_down(Rgb { width: 1, height: 1, data: vec![1, 2, 3] }, 2).data, Vec::<u8>::new());
    }
}
