//! Who may do what on the control socket. The peer's uid and groups come from the kernel
//! (`SO_PEERCRED`, `SO_PEERGROUPS`) and the group database, not from anything the client says,
//! and are matched against `[api] operators` and `[api] admins`. Also the Enhanced KYC rate limit: each lookup costs the partner money.

use std::time::{Duration, Instant};

use crate::config::ApiConfig;

/// What a peer may do. `Administer` includes everything `Operate` may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Start sessions, answer consent, cancel, read the sessions and the results of its own jobs.
    Operate,
    /// Everything: every job, purge, retry, restore, Enhanced KYC, metrics.
    Administer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Operate => "operate",
            Role::Administer => "administer",
        }
    }
}

/// The process on the other end of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// `None`: the peer may connect (the socket's mode let it) but has no role; it may read health.
    pub role: Option<Role>,
}

impl Caller {
    /// A caller with every right: the service's own user (tests, the demo).
    pub fn owner() -> Caller {
        // SAFETY: geteuid has no preconditions.
        Caller { uid: unsafe { libc::geteuid() }, role: Some(Role::Administer) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principal {
    User(u32),
    Group(u32),
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("[api] {key}: {entry:?} must be \"user:NAME\" or \"group:NAME\" (a name or a number)")]
    Form { key: &'static str, entry: String },
    #[error("[api] {key}: there is no {kind} {name:?} on this system; create it or fix the entry")]
    Unknown { key: &'static str, kind: &'static str, name: String },
}

/// The configured roles, resolved to ids once at start.
#[derive(Debug, Clone)]
pub struct Access {
    operators: Vec<Principal>,
    admins: Vec<Principal>,
    own_uid: u32,
}

/// Checks the form of one `[api] operators`/`admins` entry (for `check-config`; names are
/// resolved only on the kiosk, by [`Access::from_config`]).
pub fn check_entry(key: &'static str, entry: &str) -> Result<(), AccessError> {
    match entry.split_once(':') {
        Some(("user" | "group", name)) if !name.is_empty() => Ok(()),
        _ => Err(AccessError::Form { key, entry: entry.into() }),
    }
}

fn resolve(key: &'static str, entry: &str) -> Result<Principal, AccessError> {
    check_entry(key, entry)?;
    let (kind, name) = entry.split_once(':').unwrap_or_default();
    let kind: &'static str = if kind == "user" { "user" } else { "group" };
    let unknown = || AccessError::Unknown { key, kind, name: name.into() };
    let numeric = name.parse::<u32>().ok();
    match kind {
        "user" => numeric.or_else(|| user_id(name)).map(Principal::User).ok_or_else(unknown),
        _ => numeric.or_else(|| group_id(name)).map(Principal::Group).ok_or_else(unknown),
    }
}

impl Access {
    /// Operators: `[api] operators`, or the socket's group when that is unset. Administrators:
    /// root, the agent's own user, and `[api] admins`.
    pub fn from_config(api: &ApiConfig) -> Result<Access, AccessError> {
        let operators = match (&api.operators, &api.group) {
            (Some(list), _) => list.iter().map(|e| resolve("operators", e)).collect::<Result<_, _>>()?,
            (None, Some(g)) => vec![resolve("group", &format!("group:{g}"))?],
            // The socket is then made in the agent's own group: those who may open it by that.
            // SAFETY: getegid has no preconditions.
            (None, None) => vec![Principal::Group(unsafe { libc::getegid() })],
        };
        let admins = api.admins.iter().map(|e| resolve("admins", e)).collect::<Result<_, _>>()?;
        // SAFETY: geteuid has no preconditions.
        Ok(Access { operators, admins, own_uid: unsafe { libc::geteuid() } })
    }

    /// The role of a peer with this uid, primary gid and the supplementary groups the kernel
    /// gives its process (a unit's SupplementaryGroups=, `sg`); the user's groups in the group
    /// database count too.
    pub fn role(&self, uid: u32, gid: u32, kernel_groups: &[u32]) -> Option<Role> {
        let mut groups: Option<Vec<u32>> = None;
        let mut matches = |list: &[Principal]| {
            list.iter().any(|p| match *p {
                Principal::User(u) => u == uid,
                Principal::Group(g) => {
                    g == gid
                        || kernel_groups.contains(&g)
                        || groups.get_or_insert_with(|| groups_of(uid, gid)).contains(&g)
                }
            })
        };
        if uid == 0 || uid == self.own_uid || matches(&self.admins) {
            Some(Role::Administer)
        } else if matches(&self.operators) {
            Some(Role::Operate)
        } else {
            None
        }
    }
}

/// The peer of a connected Unix socket: (uid, gid, pid), from the kernel.
pub fn peer(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<(u32, u32, i32)> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((cred.uid, cred.gid, cred.pid))
}

/// The peer's supplementary groups as the kernel holds them for its process (SO_PEERGROUPS,
/// Linux 4.13 on); none where the kernel cannot say.
pub fn peer_groups(fd: std::os::fd::BorrowedFd<'_>) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let size = std::mem::size_of::<libc::gid_t>();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * size) as libc::socklen_t;
        // SAFETY: `groups` is valid for writes of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / size;
        if r == 0 {
            groups.truncate(needed);
            return groups;
        }
        // Too small a buffer: the kernel said how large (at most NGROUPS_MAX, 65536).
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE)
            && needed > groups.len()
            && needed <= 65_536
        {
            groups.resize(needed, 0);
            continue;
        }
        return Vec::new();
    }
}

pub(crate) fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is NUL-terminated; getgrnam returns a pointer into static storage or null,
    // read at once (the agent looks names up only at start and per connection, on one thread).
    let g = unsafe { libc::getgrnam(c.as_ptr()) };
    (!g.is_null()).then(|| unsafe { (*g).gr_gid })
}

fn user_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: as in group_id.
    let p = unsafe { libc::getpwnam(c.as_ptr()) };
    (!p.is_null()).then(|| unsafe { (*p).pw_uid })
}

/// Every group of the user `uid` (its supplementary groups from the group database).
fn groups_of(uid: u32, gid: u32) -> Vec<u32> {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; `out` is null or points at `pwd`.
    let r = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r != 0 || out.is_null() {
        return vec![gid];
    }
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: pw_name is NUL-terminated inside `buf`; `groups` holds `n` entries.
    let r = unsafe { libc::getgrouplist(pwd.pw_name, gid, groups.as_mut_ptr(), &mut n) };
    if r < 0 {
        return vec![gid];
    }
    groups.truncate(n.max(0) as usize);
    groups
}

/// A token bucket: `per_hour` lookups an hour, at most `burst` at once. Pure: the caller gives
/// the time.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_hour: u32,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimit {
    pub fn new(per_hour: u32, burst: u32) -> Self {
        RateLimit { per_hour, burst: burst.max(1) as f64, tokens: burst.max(1) as f64, last: None }
    }

    /// Returns a token taken for a lookup that never reached Smile ID (nothing looked up,
    /// nothing billed).
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// Takes one token, or says how long until one is free.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let rate = self.per_hour as f64 / 3600.0;
        if let Some(last) = self.last {
            self.tokens = (self.tokens + now.saturating_duration_since(last).as_secs_f64() * rate).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if rate <= 0.0 {
            Err(Duration::from_secs(3600))
        } else {
            Err(Duration::from_secs_f64(((1.0 - self.tokens) / rate).ceil()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_a_kind_and_a_name() {
        assert!(check_entry("admins", "user:root").is_ok());
        assert!(check_entry("admins", "group:1000").is_ok());
        for bad in ["root", "user:", "uid:0", ":root"] {
            assert!(check_entry("admins", bad).is_err(), "{bad}");
        }
        assert!(matches!(resolve("operators", "group:no-such-group-x"), Err(AccessError::Unknown { .. })));
        assert_eq!(resolve("admins", "user:root").unwrap(), Principal::User(0));
    }

    #[test]
    fn roles_follow_users_and_groups() {
        let a = Access { operators: vec![Principal::Group(500)], admins: vec![Principal::User(700)], own_uid: 900 };
        assert_eq!(a.role(0, 0, &[]), Some(Role::Administer), "root");
        assert_eq!(a.role(900, 1, &[]), Some(Role::Administer), "the agent's own user");
        assert_eq!(a.role(700, 1, &[]), Some(Role::Administer));
        assert_eq!(a.role(4242, 500, &[]), Some(Role::Operate), "primary group");
        assert_eq!(a.role(4242, 501, &[]), None);
        assert_eq!(a.role(4242, 501, &[77, 500]), Some(Role::Operate), "a group the kernel gives the process");
        assert!(Role::Administer > Role::Operate);
        // Neither operators nor the socket's group set: the socket is the agent's group's.
        let own = Access::from_config(&crate::config::ApiConfig::default()).unwrap();
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        assert_eq!(own.role(4242, gid, &[]), Some(Role::Operate));
        assert_eq!(own.role(4242, gid.wrapping_add(4242), &[]), None);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(60, 3);
        for _ in 0..3 {
            assert!(r.take(t0).is_ok());
        }
        let wait = r.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(r.take(t0 + Duration::from_secs(30)).is_err());
        assert!(r.take(t0 + Duration::from_secs(61)).is_ok());
        assert!(r.take(t0 + Duration::from_secs(62)).is_err());
    }
}
