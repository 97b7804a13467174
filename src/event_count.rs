//! Counting a body's events without building them, so a delivery with
//! more events than the receiver accepts is refused whole before any event
//! is parsed (a 2 MB body can hold a million events).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Whether `body`'s top-level `events` array holds more than `max`
/// entries. A body that is not such an object is not "over": the parser
/// says what is wrong with it.
pub(crate) fn events_over(body: &[u8], max: usize) -> bool {
    // Each event takes at least two bytes (`1,`): a shorter body cannot be
    // over, and ordinary deliveries skip the extra pass.
    if body.len() / 2 <= max {
        return false;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    matches!(
        deserializer.deserialize_map(Envelope { max }),
        Err(e) if e.to_string().starts_with(OVER)
    )
}

const OVER: &str = "over the events cap";

/// The envelope object: every field skipped but `events`, counted.
struct Envelope {
    max: usize,
}

impl<'de> Visitor<'de> for Envelope {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "events" {
                map.next_value_seed(Events { max: self.max })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `events` array, counted up to `max` and no further.
struct Events {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Events {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Events {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut count = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
            if count > self.max {
                return Err(de::Error::custom(OVER));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(events: usize) -> Vec<u8> {
        let list = vec!["1"; events].join(",");
        format!(r#"{{"accountId":1,"other":[1,2,3],"events":[{list}]}}"#).into_bytes()
    }

    #[test]
    fn counts_to_the_cap_and_no_further() {
        assert!(!events_over(&body(100), 100));
        assert!(events_over(&body(101), 100));
        assert!(events_over(&body(1_000_000), 100));
        assert!(
            !events_over(&body(101), 1_000),
            "short bodies skip the pass"
        );
    }

    #[test]
    fn what_is_not_an_envelope_is_left_to_the_parser() {
        let long = format!("[{}]", vec!["1"; 500].join(","));
        assert!(!events_over(long.as_bytes(), 10));
        let broken = format!(r#"{{"events":[{},"#, vec!["1"; 500].join(","));
        assert!(
            !events_over(broken.as_bytes(), 1_000),
            "truncated before the cap"
        );
        assert!(
            events_over(broken.as_bytes(), 10),
            "over the cap before the fault"
        );
    }
}
