//! The faults, which backends each applies to, and how each is injected
//! while the sender runs.

use std::time::Duration;

use super::ledger::Ledger;
use super::procs::{DeliveryReceiver, Helper};
use super::proxy::Proxy;
use super::traffic::Rng;

/// A durable backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
    Redis,
}

impl Backend {
    pub(crate) const ALL: [Backend; 3] = [Self::Sqlite, Self::Postgres, Self::Redis];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
        }
    }

    /// DeliveryReceiver processes sharing the inbox: SQLite's inbox is one
    /// process's file.
    pub(crate) fn receivers(self) -> usize {
        match self {
            Self::Sqlite => 1,
            Self::Postgres | Self::Redis => 2,
        }
    }
}

/// A fault injected while events flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No fault: the control run.
    None,
    /// `kill -9` of a receiver every 200–600 ms, restarted 100 ms later:
    /// half the kills at a random point, the others mid-handler (the
    /// process whose handler has just written its effect, before the
    /// delivery is committed).
    Kill,
    /// `pg_terminate_backend` of the receivers' connections every 200–600 ms.
    PgTerminate,
    /// The sweep's Redis server killed (`-9`) and restarted every ~1 s
    /// (`appendfsync always`, so an acknowledged write survives).
    RedisRestart,
    /// The proxy in front of the store killed (connections cut) and
    /// restarted every ~1 s.
    StoreCut,
    /// The proxy in front of the store stopped (`SIGSTOP`) for 6 s, past
    /// ALM's 5 s, then continued: packets black-holed, no reset.
    StoreBlackhole,
    /// The handler never returns for two events.
    HandlerHang,
    /// The handler panics for two events, every time.
    HandlerPanic,
    /// The handler aborts the process for two events, every time.
    HandlerAbort,
    /// Two receivers whose clocks are 30 s ahead and 30 s behind.
    ClockSkew,
}

impl Fault {
    pub(crate) const ALL: [Fault; 10] = [
        Self::None,
        Self::Kill,
        Self::PgTerminate,
        Self::RedisRestart,
        Self::StoreCut,
        Self::StoreBlackhole,
        Self::HandlerHang,
        Self::HandlerPanic,
        Self::HandlerAbort,
        Self::ClockSkew,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Kill => "kill",
            Self::PgTerminate => "pg-terminate",
            Self::RedisRestart => "redis-restart",
            Self::StoreCut => "store-cut",
            Self::StoreBlackhole => "store-blackhole",
            Self::HandlerHang => "handler-hang",
            Self::HandlerPanic => "handler-panic",
            Self::HandlerAbort => "handler-abort",
            Self::ClockSkew => "clock-skew",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether it means something on `backend`.
    pub(crate) fn applies_to(self, backend: Backend) -> bool {
        match self {
            Self::PgTerminate => backend == Backend::Postgres,
            Self::RedisRestart => backend == Backend::Redis,
            Self::StoreCut | Self::StoreBlackhole | Self::ClockSkew => backend != Backend::Sqlite,
            _ => true,
        }
    }

    /// Whether the store is reached through the latency-proxy.
    pub(crate) fn needs_proxy(self) -> bool {
        matches!(self, Self::StoreCut | Self::StoreBlackhole)
    }

    /// The receivers' extra environment: knobs on `targets` (event ids),
    /// the clock offset of receiver `index`.
    pub(crate) fn env(self, index: usize, targets: &[String]) -> Vec<(String, String)> {
        let ids = targets.join(",");
        match self {
            Self::HandlerHang => vec![("SWEEP_HANG_ON".into(), ids)],
            Self::HandlerPanic => vec![("SWEEP_PANIC_ON".into(), ids)],
            Self::HandlerAbort => vec![("SWEEP_ABORT_ON".into(), ids)],
            Self::ClockSkew => {
                let offset = if index % 2 == 0 { "30" } else { "-30" };
                vec![("SWEEP_CLOCK_OFFSET_SECS".into(), offset.into())]
            }
            _ => Vec::new(),
        }
    }
}

/// What a run's faults act on.
#[derive(Debug)]
pub(crate) struct Targets<'a> {
    pub(crate) receivers: &'a [DeliveryReceiver],
    pub(crate) redis: Option<&'a mut Helper>,
    pub(crate) proxy: Option<&'a mut Proxy>,
    pub(crate) ledger: &'a Ledger,
    /// The run's name in the ledger.
    pub(crate) run: &'a str,
    /// The receivers' PostgreSQL `application_name`.
    pub(crate) application_name: &'a str,
}

/// What the injection did.
#[derive(Debug, Default)]
pub(crate) struct Injected {
    pub(crate) kills: usize,
    pub(crate) actions: usize,
    pub(crate) errors: Vec<String>,
}

/// The receiver whose handler writes an effect next (within 300 ms): it
/// rests 2 ms after the effect, then commits.
async fn mid_handler<'r>(t: &Targets<'r>) -> Option<&'r DeliveryReceiver> {
    let before = t.ledger.newest(t.run).await.ok()?.map_or(0, |(id, _)| id);
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < deadline {
        if let Ok(Some((id, pid))) = t.ledger.newest(t.run).await {
            if id > before {
                let pid = u32::try_from(pid).ok()?;
                return t.receivers.iter().find(|r| r.pid() == pid);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// Injects one round of `fault` (called again and again while the sender
/// runs); returns how long to wait before the next round.
pub(crate) async fn inject(
    fault: Fault,
    t: &mut Targets<'_>,
    rng: &mut Rng,
    done: &mut Injected,
) -> Duration {
    let jitter = Duration::from_millis(200 + rng.below(400));
    match fault {
        Fault::Kill => {
            let victim = if rng.below(2) == 0 {
                let index = rng.below(t.receivers.len() as u64) as usize;
                t.receivers.get(index)
            } else {
                mid_handler(t).await
            };
            if victim.is_some_and(DeliveryReceiver::kill) {
                done.kills += 1;
            }
        }
        Fault::PgTerminate => match t.ledger.terminate(t.application_name).await {
            Ok(n) => done.actions += n,
            Err(e) => done.errors.push(e),
        },
        Fault::RedisRestart => {
            if let Some(redis) = t.redis.as_deref_mut() {
                match redis.crash_and_restart(Duration::from_millis(300)).await {
                    Ok(()) => done.actions += 1,
                    Err(e) => done.errors.push(e),
                }
            }
            return jitter * 2;
        }
        Fault::StoreCut => {
            if let Some(proxy) = t.proxy.as_deref_mut() {
                match proxy.cut(Duration::from_millis(300)).await {
                    Ok(()) => done.actions += 1,
                    Err(e) => done.errors.push(e),
                }
            }
            return jitter * 2;
        }
        Fault::StoreBlackhole => {
            if let (0, Some(proxy)) = (done.actions, t.proxy.as_deref_mut()) {
                proxy.blackhole(Duration::from_secs(6)).await;
                done.actions += 1;
            }
        }
        Fault::None
        | Fault::HandlerHang
        | Fault::HandlerPanic
        | Fault::HandlerAbort
        | Fault::ClockSkew => {}
    }
    jitter
}
