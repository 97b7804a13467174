//! `GET /records` (a learner's or an instance's records, as JSON) and
//! `GET /records.csv` (the CSV export, streamed) over a store's learner
//! projection ([`LearnerReads`]).

use std::io::{self, Write};
use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::answers::{answer, respond};
use super::body::{AdminBody, AdminChunks};
use crate::projection::LearnerRecord;
use crate::store::{LearnerReads, StoreError};
use crate::{LoInstanceId, UserId};

/// How much of the export one chunk of the body carries.
const CHUNK: usize = 64 * 1024;

/// A record as the API shows it: camelCase, times in RFC 3339 UTC, absent
/// values `null`.
pub(super) fn record_json(r: &LearnerRecord) -> Value {
    let time = |t: OffsetDateTime| crate::projection::utc_text(t);
    json!({
        "accountId": r.account_id.get(),
        "userId": r.user_id.get(),
        "loId": r.lo_id.as_str(),
        "loInstanceId": r.lo_instance_id.as_str(),
        "loType": r.lo_type.as_str(),
        "status": r.status.as_str(),
        "progressPercent": r.progress_percent,
        "dateEnrolled": r.date_enrolled.map(time),
        "dateStarted": r.date_started.map(time),
        "dateCompleted": r.date_completed.map(time),
        "hasPassed": r.has_passed,
        "enrollmentSource": r.enrollment_source.as_ref().map(|s| s.as_str()),
        "lastEventId": r.last_event_id.as_str(),
        "lastEventName": r.last_event_name.as_str(),
        "lastEventTime": time(r.last_event_time),
        "updatedAt": time(r.updated_at),
    })
}

/// `?userId=U&loInstanceId=I`, either or both.
fn parse_query(query: &str) -> Result<(Option<UserId>, Option<LoInstanceId>), String> {
    let (mut user, mut instance) = (None, None);
    for (name, value) in url_pairs(query) {
        match name.as_str() {
            "userId" => {
                let parsed = value.parse().map_err(|_| {
                    format!("userId must be a number (ALM's user id), not {value:?}")
                })?;
                user = Some(parsed);
            }
            "loInstanceId" => {
                let parsed: LoInstanceId = value.parse().map_err(|_| {
                    format!("loInstanceId must look like course:1234_5678, not {value:?}")
                })?;
                instance = Some(parsed);
            }
            _ => {}
        }
    }
    if user.is_none() && instance.is_none() {
        return Err("give userId, loInstanceId or both (?userId=U&loInstanceId=I)".to_owned());
    }
    Ok((user, instance))
}

/// The query's `name=value` pairs, percent-decoded (`+` is a space).
pub(super) fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(name), decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /records?…`: the matching records of every account, as a JSON
/// array (by account, then as each read orders them).
pub(super) async fn records(
    reads: &dyn LearnerReads,
    query: &str,
) -> Result<Response<Vec<u8>>, StoreError> {
    let (user, instance) = match parse_query(query) {
        Ok(q) => q,
        Err(error) => return Ok(answer(StatusCode::BAD_REQUEST, json!({ "error": error }))),
    };
    let mut rows = Vec::new();
    for account in reads.accounts().await? {
        match (user, &instance) {
            (Some(user), Some(instance)) => {
                rows.extend(reads.record(account, user, instance).await?);
            }
            (Some(user), None) => rows.extend(reads.records_of_user(account, user).await?),
            (None, Some(instance)) => {
                rows.extend(reads.records_of_instance(account, instance).await?);
            }
            (None, None) => {}
        }
    }
    let list = rows.iter().map(record_json).collect();
    Ok(answer(StatusCode::OK, Value::Array(list)))
}

/// `GET /records.csv`: the export, written by a thread of its own into a
/// bounded channel the body reads from, so a slow client slows the export
/// down rather than filling memory. A failure midway ends the body with an
/// error (the client sees a cut-off download, never a short file that
/// looks whole).
pub(super) fn records_csv(reads: Arc<dyn LearnerReads>) -> Response<AdminBody> {
    let (tx, rx) = mpsc::channel(4);
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("alm-admin-export".to_owned())
        .spawn(move || {
            let _context = runtime.enter();
            let writer = ChunkWriter {
                tx: tx.clone(),
                buffer: Vec::with_capacity(CHUNK),
            };
            let exported = block_on(reads.export_csv(Box::new(writer)));
            let failed = match exported {
                Ok((mut writer, _)) => writer.flush().err(),
                Err(e) => Some(io::Error::other(e)),
            };
            if let Some(e) = failed {
                let _ = tx.blocking_send(Err(e));
            }
        });
    if let Err(e) = spawned {
        let body = json!({"error": "the export could not start"}).to_string();
        #[cfg(feature = "tracing")]
        tracing::warn!(error = %e, "admin API: the CSV export could not start");
        #[cfg(not(feature = "tracing"))]
        let _ = e;
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            body.into_bytes(),
        )
        .map(AdminBody::Whole);
    }
    let mut response = respond(StatusCode::OK, "text/csv; charset=utf-8", Vec::new());
    response.headers_mut().insert(
        http::header::CONTENT_DISPOSITION,
        http::HeaderValue::from_static("attachment; filename=\"learner-records.csv\""),
    );
    response.map(|_| AdminBody::Chunks(AdminChunks::new(rx)))
}

/// Writes into the body's channel a chunk at a time, waiting while the
/// client has not taken the previous ones.
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Runs `future` to its end on this thread (parked between wake-ups),
/// outside any runtime's scheduler, so the writer may block on the channel.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_what_is_wrong() {
        assert!(
            parse_query("")
                .unwrap_err()
                .contains("userId, loInstanceId")
        );
        assert!(parse_query("userId=x").unwrap_err().contains("userId"));
        let (user, instance) = parse_query("userId=7&loInstanceId=course%3A1_2").unwrap();
        assert_eq!(user, Some(UserId(7)));
        assert_eq!(instance.unwrap().as_str(), "course:1_2");
        assert_eq!(parse_query("loInstanceId=course:1_2").unwrap().0, None);
    }
}
