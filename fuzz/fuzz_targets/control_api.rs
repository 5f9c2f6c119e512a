//! The control API as the host application reaches it: raw bytes on the socket go through the
//! HTTP parser (with the API's body caps) and the router, for a caller whose role the first byte
//! picks. Never a panic; a bad request never gets a 5xx; a body over its route's cap is never
//! handed to the router; 403 exactly when the caller lacks the role.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::atomic::AtomicBool;

use libfuzzer_sys::fuzz_target;

use kiosk_agent::api::{body_limit, required_role, route, AcceptAll, Caller, Role};
use kiosk_agent::httpd::{Handler, Limits, Request, Response};

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

struct Api {
    caller: Caller,
}

impl Handler for Api {
    fn handle(&self, req: &Request) -> Response {
        assert!(req.body.len() <= body_limit(req), "a body over its cap reached the router");
        let resp = route(&AcceptAll, &self.caller, req);
        assert!(resp.status < 500, "{} {} answered {}", req.method, req.path, resp.status);
        let lacking = required_role(req).is_some_and(|need| self.caller.role.is_none_or(|r| r < need));
        assert_eq!(resp.status == 403, lacking, "{} {}", req.method, req.path);
        resp
    }
    fn body_limit(&self, req: &Request) -> usize {
        body_limit(req)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&who, data)) = data.split_first() else { return };
    let role = [None, Some(Role::Operate), Some(Role::Administer)][who as usize % 3];
    let stop = AtomicBool::new(false);
    let mut answers = Vec::new();
    kiosk_agent::httpd::serve_stream(
        Socket { input: Cursor::new(data.to_vec()), output: Vec::new() },
        &Api { caller: Caller { uid: 4242, role } },
        &stop,
        Limits::default(),
        |s| answers = std::mem::take(&mut s.output),
    );
    let _ = answers;
});
