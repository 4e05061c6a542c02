//! The two system calls the agent needs that no well-kept crate wraps safely:
//! a read-only `adjtimex(2)` and `statvfs(3)`. This module is the only place
//! in shotfix with `unsafe` code (the workspace forbids it elsewhere).

/// The kernel's clock discipline state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelClock {
    /// Neither `TIME_ERROR` nor `STA_UNSYNC`.
    pub synced: bool,
    /// The estimated error, microseconds (`esterror`).
    pub est_error_us: i64,
    /// The maximum error, microseconds (`maxerror`).
    pub max_error_us: i64,
}

/// Reads the kernel clock's state without changing it (`modes` = 0).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn adjtimex() -> Result<KernelClock, String> {
    // SAFETY: `timex` is a plain C struct of integers, for which all-zero is a
    // valid value, and `modes` = 0 makes the call a read-only query that
    // writes only into the struct we pass, which outlives the call.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return Err(format!("adjtimex: {}", std::io::Error::last_os_error()));
    }
    Ok(KernelClock {
        synced: state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0,
        est_error_us: t.esterror as i64,
        max_error_us: t.maxerror as i64,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn adjtimex() -> Result<KernelClock, String> {
    Err("adjtimex: only on Linux (use clock.source = \"chrony\")".into())
}

/// Free space for an unprivileged writer on the file system holding `path`,
/// bytes.
#[cfg(unix)]
#[allow(unsafe_code, clippy::useless_conversion)]
pub fn free_bytes(path: &std::path::Path) -> Result<u64, String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a NUL in the path", path.display()))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call, and
    // `statvfs` is a plain C struct of integers that the call fills in.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(format!(
            "{}: statvfs: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(u64::from(s.f_bavail).saturating_mul(u64::from(s.f_frsize)))
}
