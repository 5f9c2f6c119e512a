//! The control API as the host application reaches it: raw bytes on the socket go through the
//! HTTP parser and the router. Never a panic; a bad request never gets a 5xx.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::atomic::AtomicBool;

use libfuzzer_sys::fuzz_target;

use kiosk_agent::api::{route, AcceptAll};
use kiosk_agent::httpd::Request;

/// The request bytes in, the answers out.
struct Socket {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let stop = AtomicBool::new(false);
    let handler = |req: &Request| {
        let resp = route(&AcceptAll, req);
        assert!(resp.status < 500, "{} {} answered {}", req.method, req.path, resp.status);
        resp
    };
    let mut answers = Vec::new();
    kiosk_agent::httpd::serve_stream(
        Socket { input: Cursor::new(data.to_vec()), output: Vec::new() },
        &handler,
        &stop,
        |s| answers = std::mem::take(&mut s.output),
    );
    let _ = answers;
});
