//! What the CLI's process-level tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Starts `serve` on a free port, as `command` sets it up (folder, environment), with its
/// output in `log`; answers the running server and what it printed once it listens (the first
/// start on an empty store seeds the demo and writes `demo.env`).
pub fn serve_until_listening(command: &mut Command, log: &Path) -> (Group, String) {
    let mut serve = Group::spawn(
        command
            .args(["serve", "--port", "0"])
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = std::fs::read_to_string(log).unwrap();
        if output.contains("Listening on") {
            return (serve, output);
        }
        assert!(
            serve.0.try_wait().unwrap().is_none(),
            "serve stopped: {output}"
        );
        assert!(Instant::now() < deadline, "serve did not start: {output}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
