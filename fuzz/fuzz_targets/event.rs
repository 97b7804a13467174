//! Any bytes as the one event of an envelope: the event is parsed or
//! reported, never a panic, and a reported event keeps its raw JSON.
#![no_main]

use alm_webhooks::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|event: &[u8]| {
    let mut body = br#"{"accountId":1,"events":["#.to_vec();
    body.extend_from_slice(event);
    body.extend_from_slice(br#",{"eventId":"n","eventName":"X","timestamp":1}]}"#);
    let parsed = Envelope::from_slice(&body);
    // When the input is one JSON value, the envelope is valid, the input is
    // event 0 (parsed or reported with its raw JSON) and the good neighbour
    // always survives it.
    if serde_json::from_slice::<serde_json::Value>(event).is_ok() {
        let envelope = parsed.expect("one JSON value makes a valid envelope");
        assert_eq!(envelope.events.len(), 2);
        let neighbour = envelope.events[1].as_ref().expect("the neighbour parses");
        assert_eq!(neighbour.event_id.as_str(), "n");
        if let Err(error) = &envelope.events[0] {
            assert_eq!(error.index, 0);
            assert_eq!(error.raw.get().as_bytes(), event.trim_ascii());
        }
    }
});
