//! The envelope's shape without its events typed: what the inbox-mode
//! front door needs before its `202`.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{FastEnvelope, diagnose_envelope};
use crate::AccountId;
use crate::error::ParseError;

/// The account of a body [`Envelope::from_slice`](super::Envelope::from_slice)
/// accepts, refusing exactly the bodies it refuses, with the same error,
/// but without typing the events: each stays raw (a problem inside one is
/// no refusal, there as here).
pub(crate) fn account_of_envelope(body: &[u8]) -> Result<AccountId, ParseError> {
    match serde_json::from_slice::<FastEnvelope<'_>>(body) {
        Ok(envelope) => Ok(envelope.account_id),
        Err(err) => Err(diagnose_envelope(body, &err)),
    }
}

/// The account of a body that [`account_of_envelope`] accepts and whose
/// `events` array holds at most `max` entries, in one pass over the body
/// (the events are counted while the envelope is checked, each kept raw as
/// there); `None` for every other body, whose refusal the caller works out
/// as before. A body with too many events costs no memory here: the
/// entries are counted, not collected.
pub(crate) fn account_within(body: &[u8], max: usize) -> Option<AccountId> {
    let envelope: CountedEnvelope = serde_json::from_slice(body).ok()?;
    (envelope.events.0 <= max).then_some(envelope.account_id)
}

/// [`FastEnvelope`] with its events counted rather than kept: the same
/// fields, read by the same derived code, each event read as the same
/// `&RawValue`, so it accepts exactly the bodies `FastEnvelope` accepts.
#[derive(Deserialize)]
struct CountedEnvelope {
    #[serde(rename = "accountId")]
    account_id: AccountId,
    events: EventCount,
}

/// How many entries an array holds (read as `Vec<&RawValue>` reads it).
struct EventCount(usize);

impl<'de> Deserialize<'de> for EventCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Counter)
    }
}

struct Counter;

impl<'de> Visitor<'de> for Counter {
    type Value = EventCount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventCount, A::Error> {
        let mut count = 0;
        while seq.next_element::<&'de RawValue>()?.is_some() {
            count += 1;
        }
        Ok(EventCount(count))
    }
}

#[cfg(test)]
mod tests {
    use super::{account_of_envelope, account_within};
    use crate::AccountId;

    #[test]
    fn counts_the_events_against_the_cap_in_the_same_pass() {
        let body = br#"{"accountId":7,"events":[1,{"a":[2,3]},"x"],"other":[4,5,6,7]}"#;
        assert_eq!(account_within(body, 3), Some(AccountId(7)));
        assert_eq!(account_within(body, 2), None, "over the cap");
        assert_eq!(
            account_within(br#"{"accountId":7,"events":[]}"#, 0),
            Some(AccountId(7))
        );
    }
    use crate::Envelope;

    #[test]
    fn refuses_what_the_full_parse_refuses_with_the_same_error() {
        let bodies: [&[u8]; 12] = [
            br#"{"accountId":7,"events":[{"eventId":"a","eventName":"X"}]}"#,
            br#"{"accountId":7,"events":[{"eventId":7},"not an event",[]]}"#,
            br#"{"accountId":7,"events":[]}"#,
            br#"{"accountId":"7","events":[]}"#,
            br#"{"events":[]}"#,
            br#"{"accountId":7}"#,
            br#"{"accountId":7,"events":{}}"#,
            br#"{"accountId":7,"accountId":8,"events":[]}"#,
            br#"{"accountId":7,"events":[],}"#,
            b"[]",
            b"   ",
            b"{\"accountId\":7,\"events\":[\"\xff\"]}",
        ];
        for body in bodies {
            let full = Envelope::from_slice(body).map(|e| e.account_id);
            let shape = account_of_envelope(body);
            assert_eq!(
                account_within(body, usize::MAX),
                shape.as_ref().ok().copied(),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(
                format!("{shape:?}"),
                format!("{full:?}"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
