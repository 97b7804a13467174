//! A `nats-server -js` of a test's own, on a free port and a data
//! directory of its own, that the test can stop and start again.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn unique() -> String {
    format!(
        "{}_{:08x}",
        std::process::id(),
        alm_webhooks::store::ClaimToken::random().0 as u32
    )
}

/// A `nats-server -js` of this test's own, on a free port.
pub struct OwnServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnServer {
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
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
