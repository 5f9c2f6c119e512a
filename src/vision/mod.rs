//! On-device image work: camera bytes to pixels ([`decode`]), face detection ([`blazeface`], run
//! by the small interpreter in [`infer`] over the graph [`onnx`] reads; the older LBP cascade in
//! [`face`]), head pose from the face's keypoints ([`pose`]), the quality gates and hints
//! ([`quality`]), one person followed through a capture ([`track`]), and the JPEGs Smile ID expects ([`encode`]).

pub mod blazeface;
pub mod decode;
pub mod encode;
pub mod face;
pub mod infer;
pub mod onnx;
pub mod planar;
pub mod pose;
pub mod quality;
pub mod track;
