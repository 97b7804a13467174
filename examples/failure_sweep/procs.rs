//! The processes a run drives: receivers (restarted whenever they die, as a
//! service manager would), the sweep's own Redis server and the
//! latency-proxy in front of a store; signals sent with `kill`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to `pid`.
pub(crate) fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on `port`.
pub(crate) async fn wait_listening(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// The last decision line each event got from any receiver.
pub(crate) type Decisions = Arc<Mutex<HashMap<String, (String, String)>>>;

/// One receiver slot: a process kept running until the run stops it.
#[derive(Debug)]
pub(crate) struct DeliveryReceiver {
    pub(crate) port: u16,
    pid: Arc<AtomicU32>,
    stopping: Arc<AtomicBool>,
    /// Every exit, whoever caused it.
    pub(crate) deaths: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

fn spawn(env: &[(String, String)]) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg("receive")
        // A panicking handler is one of the faults: its message is enough.
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        // Closed when the sweep exits, however it exits: the receiver ends.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command.spawn()
}

impl DeliveryReceiver {
    /// Starts a receiver on a free port with `env`, and restarts it 100 ms
    /// after every exit until [`DeliveryReceiver::stop`]; the process id of each
    /// death goes to `died`.
    pub(crate) fn start(
        mut env: Vec<(String, String)>,
        decisions: Decisions,
        died: tokio::sync::mpsc::UnboundedSender<u32>,
    ) -> Self {
        let port = free_port();
        env.push(("SWEEP_LISTEN".into(), format!("127.0.0.1:{port}")));
        let pid = Arc::new(AtomicU32::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let deaths = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (pid, stopping, deaths) = (pid.clone(), stopping.clone(), deaths.clone());
            async move {
                while !stopping.load(Ordering::SeqCst) {
                    let mut child = match spawn(&env) {
                        Ok(child) => child,
                        Err(e) => {
                            eprintln!("sweep: cannot start a receiver: {e}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    let this = child.id().unwrap_or(0);
                    pid.store(this, Ordering::SeqCst);
                    if let Some(stdout) = child.stdout.take() {
                        tokio::spawn(read_lines(stdout, Arc::clone(&decisions)));
                    }
                    // `wait` would close it: held here until the exit.
                    let stdin = child.stdin.take();
                    let _ = child.wait().await;
                    drop(stdin);
                    pid.store(0, Ordering::SeqCst);
                    if !stopping.load(Ordering::SeqCst) {
                        deaths.fetch_add(1, Ordering::SeqCst);
                        let _ = died.send(this);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Self {
            port,
            pid,
            stopping,
            deaths,
            task,
        }
    }

    /// The running process's id (0 between a death and the restart).
    pub(crate) fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// `kill -9` of the running process, if one runs; whether one did.
    pub(crate) fn kill(&self) -> bool {
        match self.pid.load(Ordering::SeqCst) {
            0 => false,
            pid => {
                signal(pid, "KILL");
                true
            }
        }
    }

    /// Stops it for good (`kill -9`: what is unfinished stays in the inbox).
    pub(crate) async fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn read_lines(stdout: tokio::process::ChildStdout, decisions: Decisions) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let (Some(id), Some(decision)) = (value["eventId"].as_str(), value["decision"].as_str())
        else {
            continue;
        };
        let reason = value["reason"].as_str().unwrap_or("").to_owned();
        if let Ok(mut map) = decisions.lock() {
            map.insert(id.to_owned(), (decision.to_owned(), reason));
        }
    }
}

/// A helper process (Redis, the proxy) the sweep can stop and restart.
#[derive(Debug)]
pub(crate) struct Helper {
    program: PathBuf,
    args: Vec<String>,
    pub(crate) port: u16,
    child: Option<Child>,
}

impl Helper {
    /// Starts `program args` and waits for it to listen on `port`.
    pub(crate) async fn start(
        program: PathBuf,
        args: Vec<String>,
        port: u16,
    ) -> Result<Self, String> {
        let mut helper = Self {
            program,
            args,
            port,
            child: None,
        };
        helper.restart().await?;
        Ok(helper)
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `kill -9`, then starts it again on the same port after `pause`.
    pub(crate) async fn crash_and_restart(&mut self, pause: Duration) -> Result<(), String> {
        self.kill().await;
        tokio::time::sleep(pause).await;
        self.restart().await
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }

    async fn restart(&mut self) -> Result<(), String> {
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.program.display()))?;
        self.child = Some(child);
        if wait_listening(self.port, Duration::from_secs(10)).await {
            Ok(())
        } else {
            Err(format!(
                "{} does not listen on {}",
                self.program.display(),
                self.port
            ))
        }
    }

    /// Stops it for good.
    pub(crate) async fn stop(mut self) {
        self.kill().await;
    }
}
