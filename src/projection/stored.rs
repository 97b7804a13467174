//! How a record is written down: its summary as JSON (the row is rebuilt
//! from it), times as RFC 3339 UTC text, and the CSV export.

use std::io::Write;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

use super::record::LearnerRecord;
use crate::{AccountId, LoInstanceId, UserId};

/// RFC 3339, UTC, milliseconds: fixed width, so text order is time order.
const UTC_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// A time as stored and exported: `2024-09-05T08:25:13.000Z`.
pub(crate) fn utc_text(t: OffsetDateTime) -> String {
    let mut out = [0u8; 24];
    match utc_millis(t, &mut out) {
        Some(text) => text.to_owned(),
        None => t
            .to_offset(time::UtcOffset::UTC)
            .format(UTC_MILLIS)
            .unwrap_or_default(),
    }
}

/// [`utc_text`] written into `out`, without the format machinery (a hot
/// path: five times per record written or exported); `None` for a year
/// outside 0–9999, which [`utc_text`] formats the slow way.
pub(crate) fn utc_millis(t: OffsetDateTime, out: &mut [u8; 24]) -> Option<&str> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (date, clock) = (t.date(), t.time());
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, u8::from(date.month()).into(), 2);
    put(8, date.day().into(), 2);
    put(11, clock.hour().into(), 2);
    put(14, clock.minute().into(), 2);
    put(17, clock.second().into(), 2);
    put(20, clock.millisecond().into(), 3);
    for (at, byte) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = byte;
    }
    std::str::from_utf8(out).ok()
}

/// Parses [`utc_text`] (or any RFC 3339 time).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn parse_utc(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

impl LearnerRecord {
    /// The summary the row is rebuilt from, as stored: JSON, packed
    /// ([`super::packed`]).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn summary_json(&self) -> String {
        super::packed::to_json(&self.summary)
    }

    /// The row a stored summary describes.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_stored(
        account_id: AccountId,
        user_id: UserId,
        lo_instance_id: LoInstanceId,
        summary: &str,
        updated_at: OffsetDateTime,
    ) -> Result<Self, serde_json::Error> {
        let summary = super::packed::from_json(summary)?;
        Self::from_summary(account_id, user_id, lo_instance_id, summary, updated_at)
            .ok_or_else(|| serde::de::Error::custom("a stored summary without an event"))
    }
}

/// The CSV export's header. Where ALM's Learner Transcript report has a
/// column for a field, the export uses that column's name (`Training ID`,
/// `Training Type`, `Instance ID`, `Enrollment Date`, `Completion Date`);
/// the others are named after the field.
pub const CSV_HEADER: [&str; 16] = [
    "Account ID",
    "User ID",
    "Training ID",
    "Training Type",
    "Instance ID",
    "Status",
    "Progress %",
    "Enrollment Date",
    "Started Date",
    "Completion Date",
    "Passed",
    "Enrollment Source",
    "Last Event ID",
    "Last Event",
    "Last Event Time",
    "Updated At",
];

/// Writes learner records as CSV, one line per record, after
/// [`CSV_HEADER`]; times in RFC 3339 UTC, absent values empty. Nothing is
/// kept in memory but the writer's buffer.
///
/// ```
/// use alm_webhooks::projection::TranscriptCsv;
/// let csv = TranscriptCsv::new(Vec::new()).unwrap();
/// let bytes = csv.finish().unwrap();
/// assert!(String::from_utf8(bytes).unwrap().starts_with("Account ID,User ID,Training ID"));
/// ```
#[derive(Debug)]
pub struct TranscriptCsv<W: Write> {
    writer: csv::Writer<W>,
    rows: u64,
}

impl<W: Write> TranscriptCsv<W> {
    /// Starts an export into `out` (writes the header).
    ///
    /// # Errors
    ///
    /// When `out` fails.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut writer = csv::Writer::from_writer(out);
        writer
            .write_record(CSV_HEADER)
            .map_err(std::io::Error::other)?;
        Ok(Self { writer, rows: 0 })
    }

    /// Writes one record.
    ///
    /// # Errors
    ///
    /// When the output fails.
    pub fn write(&mut self, r: &LearnerRecord) -> std::io::Result<()> {
        let time = |t: Option<OffsetDateTime>| t.map(utc_text).unwrap_or_default();
        let fields: [String; 16] = [
            r.account_id.to_string(),
            r.user_id.to_string(),
            r.lo_id.to_string(),
            r.lo_type.as_str().to_owned(),
            r.lo_instance_id.to_string(),
            r.status.as_str().to_owned(),
            r.progress_percent.to_string(),
            time(r.date_enrolled),
            time(r.date_started),
            time(r.date_completed),
            r.has_passed.map(|p| p.to_string()).unwrap_or_default(),
            r.enrollment_source
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            r.last_event_id.to_string(),
            r.last_event_name.to_string(),
            utc_text(r.last_event_time),
            utc_text(r.updated_at),
        ];
        self.rows += 1;
        self.writer
            .write_record(&fields)
            .map_err(std::io::Error::other)
    }

    /// Writes one record given as its 16 fields, already as text (in the
    /// order of [`CSV_HEADER`], as [`TranscriptCsv::write`] renders them):
    /// for a store that keeps them rendered.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn write_fields(&mut self, fields: &[&str; 16]) -> std::io::Result<()> {
        self.rows += 1;
        self.writer
            .write_record(fields)
            .map_err(std::io::Error::other)
    }

    /// How many records were written.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and gives the output back.
    ///
    /// # Errors
    ///
    /// When the output fails.
    pub fn finish(self) -> std::io::Result<W> {
        self.writer.into_inner().map_err(|e| e.into_error())
    }
}

/// Records changed after a cursor, and the cursor to ask from next: a page
/// of a change feed (`learner_changes_since` on each store).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LearnerChanges {
    /// The records, in the order they last changed (each once, as it is
    /// now).
    pub records: Vec<LearnerRecord>,
    /// The cursor after the last of them (the one given if none changed).
    pub cursor: u64,
}

impl LearnerChanges {
    /// A page from rows of (sequence number, record), in sequence order.
    pub(crate) fn from_rows(rows: Vec<(u64, LearnerRecord)>, cursor: u64) -> Self {
        let cursor = rows.last().map_or(cursor, |(seq, _)| *seq);
        let records = rows.into_iter().map(|(_, r)| r).collect();
        Self { records, cursor }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::{UTC_MILLIS, utc_text};

    #[test]
    fn times_are_written_as_the_format_description_writes_them() {
        let nanos = [
            0_i128,
            1_725_524_713_123_456_789,
            1_725_524_713_999_999_999,
            -62_167_219_200_000_000_000, // 0000-01-01
            253_402_300_799_999_000_000, // 9999-12-31T23:59:59.999
            253_402_300_800_000_000_000, // 10000-01-01: the slow way
            -62_167_219_200_000_000_001, // -0001-12-31: the slow way
            -1_000_000,
        ];
        for nanos in nanos {
            let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
                continue;
            };
            let slow = t.format(UTC_MILLIS).unwrap_or_default();
            assert_eq!(utc_text(t), slow, "{nanos}");
        }
    }
}
