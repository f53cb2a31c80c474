//! The bus conformance suite on the in-process bus, plus checks of its own.

use std::sync::Arc;

use rapport_bus::conformance::{self, DynBus};
use rapport_bus::{Bus, BusConfig, InProcessBus, Prefix};

fn fresh() -> InProcessBus {
    InProcessBus::new(BusConfig::for_tests(Prefix::unique("t"))).expect("bus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_bus_passes_the_conformance_suite() {
    conformance::run_all(|| async { Arc::new(fresh()) as DynBus }).await;
}

#[tokio::test]
async fn acked_messages_leave_the_backlog() {
    let bus = fresh();
    let ws = rapport_core::WorkspaceId::generate();
    bus.publish(&conformance::envelope(&ws, "k", "a", 0))
        .await
        .expect("publish");
    assert_eq!(bus.backlog(), 1);
    let mut w = bus
        .join(rapport_bus::WorkerId::generate())
        .await
        .expect("join");
    let d = w.next().await.expect("next");
    d.ack().await.expect("ack");
    assert_eq!(bus.backlog(), 0);
}

#[test]
fn an_invalid_configuration_is_refused() {
    let cfg = BusConfig {
        partitions: 0,
        ..BusConfig::default()
    };
    assert!(InProcessBus::new(cfg).is_err());
}
