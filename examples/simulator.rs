//! Behaves like ALM towards a listener URL: posts envelopes, signs them,
//! retries unacknowledged deliveries with ALM's backoff, and can inject
//! duplicates, reordering and dropped connections. Prints a summary.
//!
//! ```sh
//! cargo run --example simulator --features simulator -- \
//!     --url http://127.0.0.1:8080/webhooks --fixtures tests/fixtures --time-scale 0.01
//! cargo run --example simulator --features simulator -- \
//!     --url http://127.0.0.1:8080/webhooks --bulk 5000 --per-delivery 1000 --duplicate-every 7 --drop-every 3
//! ```
//!
//! Signing uses the receiver's variables: `ALM_AUTH` (none, basic, signature,
//! standard), `ALM_BASIC_USER`, `ALM_BASIC_PASSWORD`, `ALM_SIGNING_SECRET`,
//! `ALM_SIGNATURE_HEADER`.

use std::time::Duration;

use alm_webhooks::auth::{SignatureAuth, StandardWebhooksAuth};
use alm_webhooks::simulator::scenario::{self, Faults};
use alm_webhooks::simulator::{Backoff, Delivery, Signer, Simulator, signers};

struct Args {
    url: String,
    fixtures: Option<String>,
    bulk: usize,
    per_delivery: usize,
    account: u64,
    time_scale: f64,
    max_attempts: u32,
    faults: Faults,
}

fn usage(problem: &str) -> ! {
    eprintln!("error: {problem}");
    eprintln!(
        "usage: simulator --url URL [--fixtures DIR | --bulk N] [--per-delivery N] [--account N]\n                 [--time-scale F] [--max-attempts N] [--duplicate-every N] [--drop-every N]\n                 [--real-time-first] [--delay-progress]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        fixtures: None,
        bulk: 0,
        per_delivery: 100,
        account: 1234,
        time_scale: 1.0,
        max_attempts: 10,
        faults: Faults::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        fn number<T: std::str::FromStr>(name: &str, v: String) -> T {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{name} {v:?} is not a number")))
        }
        match flag.as_str() {
            "--url" => args.url = value("--url"),
            "--fixtures" => args.fixtures = Some(value("--fixtures")),
            "--bulk" => args.bulk = number("--bulk", value("--bulk")),
            "--per-delivery" => {
                args.per_delivery = number("--per-delivery", value("--per-delivery"))
            }
            "--account" => args.account = number("--account", value("--account")),
            "--time-scale" => args.time_scale = number("--time-scale", value("--time-scale")),
            "--max-attempts" => {
                args.max_attempts = number("--max-attempts", value("--max-attempts"))
            }
            "--duplicate-every" => {
                args.faults.duplicate_every =
                    Some(number("--duplicate-every", value("--duplicate-every")))
            }
            "--drop-every" => {
                args.faults.drop_every = Some(number("--drop-every", value("--drop-every")))
            }
            "--real-time-first" => args.faults.real_time_first = true,
            "--delay-progress" => args.faults.delay_progress = true,
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if args.url.is_empty() {
        usage("--url is required");
    }
    args
}

fn signer_from_env() -> Option<Signer> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let need = |name: &str| {
        var(name).unwrap_or_else(|| usage(&format!("{name} must be set for this ALM_AUTH")))
    };
    match var("ALM_AUTH").as_deref().unwrap_or("none") {
        "none" => None,
        "basic" => Some(signers::basic(
            &need("ALM_BASIC_USER"),
            &need("ALM_BASIC_PASSWORD"),
        )),
        "signature" => {
            let mut auth = SignatureAuth::new(need("ALM_SIGNING_SECRET"));
            if let Some(h) = var("ALM_SIGNATURE_HEADER") {
                auth = auth.with_header(
                    h.parse()
                        .unwrap_or_else(|_| usage("ALM_SIGNATURE_HEADER is not a header name")),
                );
            }
            Some(signers::signature(auth))
        }
        "standard" => Some(signers::standard(
            StandardWebhooksAuth::new(&need("ALM_SIGNING_SECRET"))
                .unwrap_or_else(|e| usage(&e.to_string())),
        )),
        other => usage(&format!(
            "ALM_AUTH={other:?}: expected none, basic, signature or standard"
        )),
    }
}

/// The fixture files of a directory, in name order; invalid JSON is sent too
/// (ALM's own samples contain two), to show the receiver's 400.
fn fixture_deliveries(dir: &str) -> Vec<Delivery> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| usage(&format!("--fixtures {dir}: {e}")))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(Delivery::from)
        .collect()
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut simulator = Simulator::new(&args.url)
        .unwrap_or_else(|e| usage(&e.to_string()))
        .with_backoff(Backoff {
            time_scale: args.time_scale,
            ..Backoff::default()
        })
        .with_max_attempts(args.max_attempts)
        .with_read_timeout(Duration::from_secs(5));
    if let Some(signer) = signer_from_env() {
        simulator = simulator.with_signer(signer);
    }
    let deliveries = match &args.fixtures {
        Some(dir) => fixture_deliveries(dir),
        None => {
            let events = scenario::bulk_enrollments("sim", args.bulk.max(1), 1_725_524_713);
            scenario::deliveries(args.account, events, args.per_delivery, args.faults)
        }
    };
    let summary = simulator.run(deliveries).await;
    println!("{summary}");
}
