//! Any body: parsing never panics, and a parsed envelope serializes and
//! parses back with the same account and number of events.
#![no_main]

use alm_webhooks::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(envelope) = Envelope::from_slice(body) {
        let written = serde_json::to_vec(&envelope).expect("an envelope serializes");
        let again = Envelope::from_slice(&written).expect("a written envelope parses");
        assert_eq!(again.account_id, envelope.account_id);
        assert_eq!(again.events.len(), envelope.events.len());
        assert_eq!(again.parsed().count(), envelope.parsed().count());
    }
});
