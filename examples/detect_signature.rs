//! Finds how ALM signs your deliveries, from captured ones and your secret.
//!
//! ```sh
//! cargo run --example detect_signature -- --secret-file SECRET.json --capture FILE [--capture FILE …]
//! ALM_SIGNING_SECRET=VALUE cargo run --example detect_signature -- --capture CAPTURE_DIR
//! ```
//!
//! The secret comes from a file or from the environment, never from the
//! command line (where `ps` shows it to every user of the machine).
//!
//! A capture is a raw HTTP/1.1 request, as the example receivers write them
//! with `ALM_CAPTURE_DIR`; a folder stands for every `*.http` file in it.
//! `--secret-field NAME` picks the field of the secret file.
//!
//! On a match: one JSON object on stdout (`header`, `algorithm`, `encoding`,
//! `prefix`, `signed`, `key`, `env`), exit 0. `env` is what the receivers
//! need, with `ALM_SECRET_FILE` when the secret came from a file, else
//! the same `ALM_SIGNING_SECRET`. No match: the
//! headers tried and why each failed on stderr, exit 1. Bad arguments or
//! unreadable files: exit 2. The secret is never printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alm_webhooks::Secret;
use alm_webhooks::detect::{CapturedRequest, detect};

struct Args {
    secret: Secret,
    secret_file: Option<(PathBuf, Option<String>)>,
    captures: Vec<PathBuf>,
}

fn usage() -> String {
    "usage: [ALM_SIGNING_SECRET=…] detect_signature [--secret-file FILE [--secret-field NAME]] \
     --capture FILE_OR_DIR [--capture …]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let secret = std::env::var("ALM_SIGNING_SECRET")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::from);
    let (mut file, mut field, mut captures) = (None, None, Vec::new());
    while let Some(flag) = args.next() {
        let flag = flag.to_string_lossy().into_owned();
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--secret" => {
                return Err(
                    "--secret would show the secret to every user of this machine (ps): \
                     set ALM_SIGNING_SECRET or give --secret-file"
                        .to_owned(),
                );
            }
            "--secret-file" => file = Some(PathBuf::from(value()?)),
            "--secret-field" => field = Some(value()?.to_string_lossy().into_owned()),
            "--capture" => captures.push(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if captures.is_empty() {
        return Err(format!("no --capture given\n{}", usage()));
    }
    let (secret, secret_file) = match (secret, file) {
        (Some(_), Some(_)) => {
            return Err("set ALM_SIGNING_SECRET or give --secret-file, not both".to_owned());
        }
        (None, None) => return Err(format!("no secret given\n{}", usage())),
        (Some(secret), None) => (secret, None),
        (None, Some(path)) => {
            let json = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let secret = Secret::from_alm_secret_file(&json, field.as_deref())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (secret, Some((path, field)))
        }
    };
    Ok(Args {
        secret,
        secret_file,
        captures,
    })
}

/// The capture files: each file given, and the `*.http` files of each
/// folder given, in name order.
fn capture_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "http"))
                .collect();
            if files.is_empty() {
                return Err(format!(
                    "{}: no *.http capture in this folder",
                    path.display()
                ));
            }
            files.sort();
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn read_capture(path: &Path) -> Result<CapturedRequest, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    CapturedRequest::parse(&raw).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let run = || -> Result<Result<serde_json::Value, String>, String> {
        let args = parse_args()?;
        let captures = capture_files(&args.captures)?
            .iter()
            .map(|p| read_capture(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match detect(&args.secret, &captures) {
            Ok(found) => {
                let mut json = found.to_json();
                if let Some((path, field)) = &args.secret_file {
                    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                    json["env"]["ALM_SECRET_FILE"] = path.display().to_string().into();
                    if let Some(field) = field {
                        json["env"]["ALM_SECRET_FIELD"] = field.clone().into();
                    }
                }
                Ok(json)
            }
            Err(no_match) => Err(no_match.to_string()),
        })
    };
    match run() {
        Ok(Ok(json)) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(Err(no_match)) => {
            eprint!("{no_match}");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
