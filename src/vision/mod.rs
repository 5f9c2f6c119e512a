//! On-device image checks: gray conversion at a working scale, brightness and sharpness,
//! motion between frames, and the JPEG encoding Smile ID expects.

pub mod encode;
pub mod quality;
