//! How the PostgreSQL projection hook writes learner records: new records
//! by `COPY … FROM STDIN (FORMAT binary)`, found ones by an upsert of the
//! records' columns as arrays.

use std::pin::pin;

use time::OffsetDateTime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Statement, Transaction};

use super::export::{RECORD_COLUMNS, RECORD_TYPES};
use crate::projection::LearnerRecord;

/// The columns [`upsert`] writes after the key.
const COLUMNS: &str = "lo_id, lo_type, status, progress_percent, date_enrolled, date_started, \
                       date_completed, has_passed, enrollment_source, last_event_id, \
                       last_event_name, last_event_time, updated_at, seq, merge_state";

/// The statement that writes records the commit's read did not find: a
/// binary `COPY`, neither planned nor unpacked from arrays. No other commit
/// can insert them while their accounts' locks are held.
pub(super) fn copy(table: &str) -> String {
    format!("COPY {table} ({RECORD_COLUMNS}, seq, merge_state) FROM STDIN (FORMAT binary)")
}

/// Writes `records` (each with its change number) through `copy`'s
/// prepared statement.
pub(super) async fn copy_rows(
    tx: &Transaction<'_>,
    copy: &Statement,
    records: &[(LearnerRecord, i64)],
) -> Result<u64, tokio_postgres::Error> {
    let types: Vec<Type> = RECORD_TYPES
        .into_iter()
        .chain([Type::INT8, Type::TEXT])
        .collect();
    let sink = tx.copy_in(copy).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    for (r, seq) in records {
        let account = r.account_id.get() as i64;
        let user = r.user_id.get() as i64;
        let source = r.enrollment_source.as_ref().map(|s| s.as_str());
        let state = r.summary_json();
        let row: [&(dyn ToSql + Sync); 18] = [
            &account,
            &user,
            &r.lo_id.as_str(),
            &r.lo_type.as_str(),
            &r.lo_instance_id.as_str(),
            &r.status.as_str(),
            &r.progress_percent,
            &r.date_enrolled,
            &r.date_started,
            &r.date_completed,
            &r.has_passed,
            &source,
            &r.last_event_id.as_str(),
            &r.last_event_name.as_str(),
            &r.last_event_time,
            &r.updated_at,
            seq,
            &state,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await
}

/// The found records' columns, as [`upsert`]'s 18 arrays.
pub(super) struct Columns<'a> {
    accounts: Vec<i64>,
    users: Vec<i64>,
    instances: Vec<&'a str>,
    lo_ids: Vec<&'a str>,
    lo_types: Vec<&'a str>,
    statuses: Vec<&'a str>,
    percents: Vec<f64>,
    enrolled: Vec<Option<OffsetDateTime>>,
    started: Vec<Option<OffsetDateTime>>,
    completed: Vec<Option<OffsetDateTime>>,
    passed: Vec<Option<bool>>,
    sources: Vec<Option<&'a str>>,
    last_ids: Vec<&'a str>,
    last_names: Vec<&'a str>,
    last_times: Vec<OffsetDateTime>,
    updated: Vec<OffsetDateTime>,
    seqs: Vec<i64>,
    states: Vec<String>,
}

impl<'a> Columns<'a> {
    pub(super) fn of(rows: &'a [(LearnerRecord, i64)]) -> Self {
        let records = || rows.iter().map(|(r, _)| r);
        let text = |f: &dyn Fn(&'a LearnerRecord) -> &'a str| records().map(f).collect();
        let time =
            |f: &dyn Fn(&LearnerRecord) -> Option<OffsetDateTime>| records().map(f).collect();
        Self {
            accounts: records().map(|r| r.account_id.get() as i64).collect(),
            users: records().map(|r| r.user_id.get() as i64).collect(),
            instances: text(&|r| r.lo_instance_id.as_str()),
            lo_ids: text(&|r| r.lo_id.as_str()),
            lo_types: records().map(|r| r.lo_type.as_str()).collect(),
            statuses: records().map(|r| r.status.as_str()).collect(),
            percents: records().map(|r| r.progress_percent).collect(),
            enrolled: time(&|r| r.date_enrolled),
            started: time(&|r| r.date_started),
            completed: time(&|r| r.date_completed),
            passed: records().map(|r| r.has_passed).collect(),
            sources: records()
                .map(|r| r.enrollment_source.as_ref().map(|s| s.as_str()))
                .collect(),
            last_ids: text(&|r| r.last_event_id.as_str()),
            last_names: text(&|r| r.last_event_name.as_str()),
            last_times: records().map(|r| r.last_event_time).collect(),
            updated: records().map(|r| r.updated_at).collect(),
            seqs: rows.iter().map(|(_, seq)| *seq).collect(),
            states: records().map(LearnerRecord::summary_json).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 18] {
        [
            &self.accounts,
            &self.users,
            &self.instances,
            &self.lo_ids,
            &self.lo_types,
            &self.statuses,
            &self.percents,
            &self.enrolled,
            &self.started,
            &self.completed,
            &self.passed,
            &self.sources,
            &self.last_ids,
            &self.last_names,
            &self.last_times,
            &self.updated,
            &self.seqs,
            &self.states,
        ]
    }
}

/// The statement that writes records the commit's read found: an upsert
/// all the same (a row deleted by hand meanwhile is inserted again).
pub(super) fn upsert(table: &str) -> String {
    let set: Vec<String> = COLUMNS
        .split(", ")
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} (account_id, user_id, lo_instance_id, {COLUMNS}) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::float8[], $8::timestamptz[], $9::timestamptz[], \
         $10::timestamptz[], $11::bool[], $12::text[], $13::text[], $14::text[], \
         $15::timestamptz[], $16::timestamptz[], $17::bigint[], $18::text[]) \
         ON CONFLICT (account_id, user_id, lo_instance_id) DO UPDATE SET {}",
        set.join(", ")
    )
}
