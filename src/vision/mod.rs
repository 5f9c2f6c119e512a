//! On-device image work: camera bytes to pixels ([`decode`]), face detection ([`face`]), the
//! quality gates and hints ([`quality`]), and the JPEGs Smile ID expects ([`encode`]).

pub mod decode;
pub mod encode;
pub mod face;
pub mod quality;
