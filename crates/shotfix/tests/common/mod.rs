//! Helpers shared by the binary's end-to-end tests (`evidence.rs`, `sensor.rs`).

#![allow(dead_code, clippy::unwrap_used)] // each test file uses some of these

use std::path::{Path, PathBuf};
use std::process::{Child, Output};

/// A Pittsburgh live-fire test folder (`FPn/test_NNN`) beside the checkout.
pub fn pittsburgh_test(fp: &str, n: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/pittsburgh-dev")
        .join(fp)
        .join(format!("test_{n:03}"))
}

/// The command's standard output, after asserting that it succeeded.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A TCP port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process (a server, an agent) killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
