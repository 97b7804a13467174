//! How the PostgreSQL projection hook writes learner records: the
//! records' columns as the statements' arrays, and the statements.

use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use crate::projection::LearnerRecord;

/// The written records' columns, as the statements' 17 arrays.
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
    states: Vec<String>,
}

impl<'a> Columns<'a> {
    pub(super) fn of(records: &'a [LearnerRecord]) -> Self {
        let text = |f: &dyn Fn(&'a LearnerRecord) -> &'a str| records.iter().map(f).collect();
        let time =
            |f: &dyn Fn(&LearnerRecord) -> Option<OffsetDateTime>| records.iter().map(f).collect();
        Self {
            accounts: records.iter().map(|r| r.account_id.get() as i64).collect(),
            users: records.iter().map(|r| r.user_id.get() as i64).collect(),
            instances: text(&|r| r.lo_instance_id.as_str()),
            lo_ids: text(&|r| r.lo_id.as_str()),
            lo_types: records.iter().map(|r| r.lo_type.as_str()).collect(),
            statuses: records.iter().map(|r| r.status.as_str()).collect(),
            percents: records.iter().map(|r| r.progress_percent).collect(),
            enrolled: time(&|r| r.date_enrolled),
            started: time(&|r| r.date_started),
            completed: time(&|r| r.date_completed),
            passed: records.iter().map(|r| r.has_passed).collect(),
            sources: records
                .iter()
                .map(|r| r.enrollment_source.as_ref().map(|s| s.as_str()))
                .collect(),
            last_ids: text(&|r| r.last_event_id.as_str()),
            last_names: text(&|r| r.last_event_name.as_str()),
            last_times: records.iter().map(|r| r.last_event_time).collect(),
            updated: records.iter().map(|r| r.updated_at).collect(),
            states: records.iter().map(LearnerRecord::summary_json).collect(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 17] {
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
            &self.states,
        ]
    }
}

/// How [`write`] writes a record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// A record the commit's read did not find.
    Insert,
    /// A record it found (an upsert all the same: a row deleted by hand
    /// meanwhile is inserted again).
    Upsert,
}

pub(super) fn write(table: &str, sequence: &str, how: Write) -> String {
    let columns = "lo_id, lo_type, status, progress_percent, date_enrolled, date_started, \
                   date_completed, has_passed, enrollment_source, last_event_id, \
                   last_event_name, last_event_time, updated_at, seq, merge_state";
    let set: Vec<String> = columns
        .split(", ")
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} (account_id, user_id, lo_instance_id, {columns}) \
         SELECT a, u, i, lo, ty, st, pp, de, ds, dc, hp, es, lid, ln, lt, ua, \
         nextval('{sequence}'), ms FROM unnest($1::bigint[], $2::bigint[], \
         $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::timestamptz[], \
         $9::timestamptz[], $10::timestamptz[], $11::bool[], $12::text[], $13::text[], \
         $14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[]) \
         AS r(a, u, i, lo, ty, st, pp, de, ds, dc, hp, es, lid, ln, lt, ua, ms){}",
        match how {
            Write::Insert => String::new(),
            Write::Upsert => format!(
                " ON CONFLICT (account_id, user_id, lo_instance_id) DO UPDATE SET {}",
                set.join(", ")
            ),
        }
    )
}
