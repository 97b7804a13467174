//! A `nats-server -js` of a test's own, on a free port and a data
//! directory of its own, that the test can stop and start again.

use std::process::{Child, Command, Stdio};

use super::own::{free_port, unique, wait_for_port};

/// A `nats-server -js` of this test's own, on a free port.
pub struct OwnServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnServer {
    pub fn start() -> Option<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("alm-nats-{}", unique()));
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        if !server.spawn() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("nats-server cannot be started; CI needs it");
            }
            eprintln!("skipped: no nats-server to start");
            return None;
        }
        Some(server)
    }

    pub fn spawn(&mut self) -> bool {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        wait_for_port(self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
