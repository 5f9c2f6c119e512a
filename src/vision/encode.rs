//! JPEG output at Smile ID's sizes (selfie 640 px and liveness 320 px on the long side,
//! quality 80 by default): area-averaged downscale, then 4:2:0 JPEG with box-averaged chroma
//! (about a fifth smaller than `image`'s 4:4:4 at the same quality; every byte counts on 2G).
//! jpeg-encoder's optimized Huffman tables would save another 3 %, but its 0.7.1 output with them
//! decodes as garbage in zune-jpeg (a test below guards the round trip), so the standard tables are used.

use super::decode::{rgb, DecodeError, Rgb};
use crate::camera::Frame;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("could not encode a JPEG: {0}")]
    Jpeg(String),
}

/// Area-averaged resize of `img` so its long side is at most `long_side` (never enlarges).
pub fn fit_long_side(img: &Rgb, long_side: u32) -> Rgb {
    let long = img.width.max(img.height);
    if long <= long_side || long_side == 0 {
        return img.clone();
    }
    let (w, h) = ((img.width * long_side / long).max(1), (img.height * long_side / long).max(1));
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    let (sw, sh) = (img.width as u64, img.height as u64);
    for y in 0..h as u64 {
        let (y0, y1) = (y * sh / h as u64, ((y + 1) * sh).div_ceil(h as u64).min(sh));
        for x in 0..w as u64 {
            let (x0, x1) = (x * sw / w as u64, ((x + 1) * sw).div_ceil(w as u64).min(sw));
            let mut acc = [0u64; 3];
            for yy in y0..y1 {
                let row = &img.data[((yy * sw + x0) * 3) as usize..((yy * sw + x1) * 3) as usize];
                for px in row.chunks_exact(3) {
                    acc[0] += px[0] as u64;
                    acc[1] += px[1] as u64;
                    acc[2] += px[2] as u64;
                }
            }
            let n = (y1 - y0) * (x1 - x0);
            data.extend(acc.iter().map(|a| ((a + n / 2) / n) as u8));
        }
    }
    Rgb { width: w, height: h, data }
}

/// Encodes RGB as a baseline JPEG.
pub fn jpeg(img: &Rgb, quality: u8) -> Result<Vec<u8>, EncodeError> {
    let (w, h) = (u16::try_from(img.width), u16::try_from(img.height));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err(EncodeError::Jpeg(format!("{}x{} is too large for JPEG", img.width, img.height)));
    };
    let mut out = Vec::with_capacity(img.data.len() / 8);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    enc.encode(&img.data, w, h, jpeg_encoder::ColorType::Rgb).map_err(|e| EncodeError::Jpeg(e.to_string()))?;
    Ok(out)
}

/// Decodes `frame`, scales it to `long_side` and encodes it.
pub fn jpeg_long_side(frame: &Frame, long_side: u32, quality: u8) -> Result<Vec<u8>, EncodeError> {
    jpeg(&fit_long_side(&rgb(frame)?, long_side), quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_averages() {
        let img = Rgb { width: 4, height: 2, data: [[0u8, 0, 0], [100, 100, 100]].repeat(4).concat() };
        let s = fit_long_side(&img, 2);
        assert_eq!((s.width, s.height), (2, 1));
        assert_eq!(s.data, vec![50; 6]);
        assert_eq!(fit_long_side(&img, 10).width, 4, "never enlarges");
    }

    #[test]
    fn jpeg_decodes_back_to_the_same_picture() {
        // A gradient with texture, so a scrambled decode cannot pass for the original.
        let data = (0..64 * 48).flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 5) as u8, ((i * 7) % 256) as u8]).collect();
        let img = Rgb { width: 64, height: 48, data };
        let j = jpeg(&img, 90).unwrap();
        let back = image::load_from_memory(&j).unwrap().to_rgb8();
        assert_eq!((back.width(), back.height()), (64, 48));
        let luma = |p: &[u8]| (p[0] as i32 * 77 + p[1] as i32 * 150 + p[2] as i32 * 29) >> 8;
        let diff: i32 =
            img.data.chunks(3).zip(back.as_raw().chunks(3)).map(|(a, b)| (luma(a) - luma(b)).abs()).sum::<i32>();
        assert!(diff / (64 * 48) < 6, "mean luma error {}", diff / (64 * 48));
    }
}
