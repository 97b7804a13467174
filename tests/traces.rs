//! Traces (feature `tracing`): a delivery makes one `alm.delivery` span and
//! one `alm.event` span per event (children of the delivery's), with
//! OpenTelemetry's messaging attribute names. A `tracing-subscriber` layer
//! records every span's fields and parent.
#![cfg(feature = "tracing")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use alm_webhooks::Engine;
use alm_webhooks::store::MemoryStore;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the layer saw it: name, fields, parent's name.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<&'static str>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Records every span, by id.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<BTreeMap<u64, Seen>>>);

impl<S> tracing_subscriber::Layer<S> for Recorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name(),
            parent: ctx.span(id).and_then(|s| s.parent()).map(|p| p.name()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(seen) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

#[tokio::test]
async fn a_delivery_and_each_event_get_a_span_with_messaging_attributes() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let engine = Engine::builder(MemoryStore::new()).build();
    let body = format!(
        r#"{{"accountId":1234,"events":[{},{},{}]}}"#,
        support::learner("t-1", "COURSE_ENROLLMENT", 1_750_000_100, 5, "course:1_1"),
        support::learner("t-1", "COURSE_ENROLLMENT", 1_750_000_100, 5, "course:1_1"),
        support::learner("t-2", "COURSE_COMPLETED", 1_750_000_200, 5, "course:1_1"),
    );
    let envelope = alm_webhooks::Envelope::from_slice(body.as_bytes()).unwrap();
    engine
        .process(envelope, |_| async { Ok(()) })
        .await
        .unwrap();

    let spans: Vec<Seen> = recorder.0.lock().unwrap().values().cloned().collect();
    let deliveries: Vec<&Seen> = spans.iter().filter(|s| s.name == "alm.delivery").collect();
    assert_eq!(deliveries.len(), 1, "{spans:#?}");
    let delivery = &deliveries[0].fields;
    for (field, value) in [
        ("messaging.system", "alm"),
        ("messaging.operation", "process"),
        ("messaging.operation.name", "process"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", "1234"),
        ("messaging.batch.message_count", "3"),
        ("otel.kind", "consumer"),
    ] {
        assert_eq!(
            delivery.get(field).map(String::as_str),
            Some(value),
            "{field}: {delivery:?}"
        );
    }

    let events: Vec<&Seen> = spans.iter().filter(|s| s.name == "alm.event").collect();
    assert_eq!(events.len(), 3, "{spans:#?}");
    let summary: Vec<(Option<&str>, &str, &str, &str)> = events
        .iter()
        .map(|s| {
            let field = |name: &str| s.fields.get(name).map_or("-", String::as_str);
            assert_eq!(field("messaging.system"), "alm", "{s:?}");
            assert_eq!(field("messaging.destination.name"), "1234", "{s:?}");
            assert_eq!(field("messaging.operation"), "process", "{s:?}");
            (
                s.parent,
                field("messaging.message.id"),
                field("alm.event.name"),
                field("alm.decision"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Some("alm.delivery"),
                "t-1",
                "COURSE_ENROLLMENT",
                "processed"
            ),
            (
                Some("alm.delivery"),
                "t-1",
                "COURSE_ENROLLMENT",
                "duplicate"
            ),
            (Some("alm.delivery"), "t-2", "COURSE_COMPLETED", "processed"),
        ]
    );
}
