//! The network edge: HTTPS with verified certificates, and the loop that drives a
//! [`Submission`](crate::smileid::submit::Submission) with real requests, signatures and time.

pub mod custody;
pub mod drive;
pub mod http;
pub mod service;
