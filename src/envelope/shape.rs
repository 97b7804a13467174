//! The envelope's shape without its events typed: what the inbox-mode
//! front door needs before its `202`.

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

#[cfg(test)]
mod tests {
    use super::account_of_envelope;
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
                format!("{shape:?}"),
                format!("{full:?}"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
