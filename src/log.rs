//! Logging: structured entries to journald when running under systemd (`$JOURNAL_STREAM` set),
//! plain lines on stderr elsewhere. Callers never pass secrets or ID numbers; job ids are fine.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Info = 6,
}

fn journal() -> Option<&'static UnixDatagram> {
    static SOCK: OnceLock<Option<UnixDatagram>> = OnceLock::new();
    SOCK.get_or_init(|| {
        std::env::var_os("JOURNAL_STREAM")?;
        let s = UnixDatagram::unbound().ok()?;
        s.connect("/run/systemd/journal/socket").ok()?;
        Some(s)
    })
    .as_ref()
}

/// The journal's native format: `KEY=value` lines; values with a newline use the binary form.
pub fn journal_entry(level: Level, message: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |k: &str, v: &str| {
        if v.contains('\n') {
            out.extend_from_slice(k.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(format!("{k}={v}\n").as_bytes());
        }
    };
    put("MESSAGE", message);
    put("PRIORITY", &(level as u8).to_string());
    put("SYSLOG_IDENTIFIER", "kiosk-agent");
    for (k, v) in fields {
        // Journal field names: upper case letters, digits and underscores.
        let key: String =
            k.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        put(&key, v);
    }
    out
}

static KIOSK_ID: OnceLock<String> = OnceLock::new();

/// Names the kiosk in every line logged from now on (journal field KIOSK_ID), so that a fleet's
/// collected journals say which kiosk each line came from. The first call wins: one process,
/// one kiosk.
pub fn set_kiosk_id(id: &str) {
    let _ = KIOSK_ID.set(id.to_string());
}

pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let with_id;
    let fields = match KIOSK_ID.get() {
        Some(id) => {
            with_id = [fields, &[("KIOSK_ID", id.as_str())]].concat();
            &with_id[..]
        }
        None => fields,
    };
    if let Some(j) = journal() {
        if j.send(&journal_entry(level, message, fields)).is_ok() {
            return;
        }
    }
    let tag = match level {
        Level::Error => "error: ",
        Level::Warning => "warning: ",
        Level::Info => "",
    };
    let extra: String = fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    eprintln!("kiosk-agent: {tag}{message}{extra}");
}

pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(Level::Info, message, fields)
}

pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(Level::Warning, message, fields)
}

pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(Level::Error, message, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_entries_are_well_formed() {
        let e = journal_entry(Level::Warning, "retrying", &[("job_id", "k-1"), ("detail", "a\nb")]);
        let text = String::from_utf8_lossy(&e);
        assert!(text.starts_with("MESSAGE=retrying\nPRIORITY=4\nSYSLOG_IDENTIFIER=kiosk-agent\nJOB_ID=k-1\nDETAIL\n"));
        assert!(e.ends_with(b"a\nb\n"));
    }
}
