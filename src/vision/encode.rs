//! JPEG output at Smile ID's sizes: selfie 640 px and liveness 320 px on the long side, quality 80.

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

use crate::camera::{Frame, PixelFormat};

#[derive(Debug, thiserror::Error)]
#[error("could not encode a JPEG: {0}")]
pub struct EncodeError(String);

/// Scales `frame` so its long side is at most `long_side` and encodes it as JPEG.
pub fn jpeg_long_side(frame: &Frame, long_side: u32, quality: u8) -> Result<Vec<u8>, EncodeError> {
    let PixelFormat::Rgb8 = frame.format;
    let img = RgbImage::from_raw(frame.width, frame.height, frame.data.clone())
        .ok_or_else(|| EncodeError("frame buffer has the wrong size".into()))?;
    let long = frame.width.max(frame.height);
    let img = if long > long_side {
        let (w, h) = ((frame.width * long_side).div_ceil(long), (frame.height * long_side).div_ceil(long));
        image::imageops::thumbnail(&img, w.max(1), h.max(1))
    } else {
        img
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(&img)
        .map_err(|e| EncodeError(e.to_string()))?;
    Ok(out)
}
