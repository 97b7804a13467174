//! The store "across a network" that the sweep can cut or black-hole:
//! `../shared/tools/latency-proxy` when given (`--latency-proxy`: killed
//! and restarted to cut, `SIGSTOP`/`SIGCONT` to black-hole), else a
//! forwarder inside the sweep that does the same (drops every connection to
//! cut; stops forwarding and accepting, without closing anything, to
//! black-hole), so that CI needs nothing outside the repository.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::procs::{Helper, free_port, signal};

/// (generation, paused): a cut starts a new generation, which ends every
/// connection of the older ones.
type Control = watch::Sender<(u64, bool)>;

/// A proxy in front of the store.
#[derive(Debug)]
pub(crate) enum Proxy {
    External(Box<Helper>),
    Builtin {
        port: u16,
        control: Control,
        task: JoinHandle<()>,
    },
}

impl Proxy {
    /// Starts one towards `127.0.0.1:target`.
    pub(crate) async fn start(program: Option<PathBuf>, target: u16) -> Result<Self, String> {
        let port = free_port();
        if let Some(program) = program {
            let args = vec![port.to_string(), target.to_string(), "0".into()];
            return Helper::start(program, args, port)
                .await
                .map(|h| Self::External(Box::new(h)));
        }
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("forwarder on {port}: {e}"))?;
        let (control, _) = watch::channel((0, false));
        let task = tokio::spawn(accept(listener, target, control.clone()));
        Ok(Self::Builtin {
            port,
            control,
            task,
        })
    }

    pub(crate) fn port(&self) -> u16 {
        match self {
            Self::External(helper) => helper.port,
            Self::Builtin { port, .. } => *port,
        }
    }

    /// Cuts every connection; the store is reachable again after `pause`.
    pub(crate) async fn cut(&mut self, pause: Duration) -> Result<(), String> {
        match self {
            Self::External(helper) => helper.crash_and_restart(pause).await,
            Self::Builtin { control, .. } => {
                control.send_modify(|(generation, paused)| {
                    *generation += 1;
                    *paused = true;
                });
                tokio::time::sleep(pause).await;
                control.send_modify(|(_, paused)| *paused = false);
                Ok(())
            }
        }
    }

    /// Black-holes the store for `span`: nothing forwarded, nothing closed.
    pub(crate) async fn blackhole(&mut self, span: Duration) {
        match self {
            Self::External(helper) => {
                if let Some(pid) = helper.pid() {
                    signal(pid, "STOP");
                    tokio::time::sleep(span).await;
                    signal(pid, "CONT");
                }
            }
            Self::Builtin { control, .. } => {
                control.send_modify(|(_, paused)| *paused = true);
                tokio::time::sleep(span).await;
                control.send_modify(|(_, paused)| *paused = false);
            }
        }
    }

    pub(crate) async fn stop(self) {
        match self {
            Self::External(helper) => helper.stop().await,
            Self::Builtin { task, .. } => task.abort(),
        }
    }
}

async fn accept(listener: TcpListener, target: u16, control: Control) {
    let mut state = control.subscribe();
    loop {
        // Paused: connections wait in the backlog, as with SIGSTOP.
        let _ = state.wait_for(|(_, paused)| !paused).await;
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let generation = control.borrow().0;
        let control = control.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                () = pump(client_read, server_write, &control, generation) => {}
                () = pump(server_read, client_write, &control, generation) => {}
            }
        });
    }
}

/// Forwards one direction until either side closes or a cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    control: &Control,
    generation: u64,
) {
    let mut state = control.subscribe();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = state.wait_for(|(g, _)| *g != generation) => return,
        };
        // Black-holed: hold the bytes until forwarding resumes (or a cut).
        match state
            .wait_for(|(g, paused)| *g != generation || !paused)
            .await
        {
            Ok(s) if s.0 == generation => {}
            _ => return,
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
