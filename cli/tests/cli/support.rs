//! What the CLI's process-level tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A process group (a server, or the watcher with the cargo and functions it starts) that is
/// stopped as a whole when the test ends, passed or failed.
pub struct Group(pub Child);

impl Group {
    pub fn spawn(command: &mut Command) -> Group {
        Group(command.process_group(0).spawn().unwrap())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--"])
            .arg(format!("-{}", self.0.id()))
            .status();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
