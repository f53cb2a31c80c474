//! The bus conformance suite on NATS JetStream, plus NATS-specific checks.
//!
//! Needs a JetStream-enabled server at `RAPPORT_TEST_NATS_URL` (e.g. `nats://127.0.0.1:4222`).
//! Without it each test prints "skipped" and passes, except under `CI=true`, where a missing
//! server is a failure. Every test works under its own prefix and deletes its streams and
//! bucket at the end, even when a check fails.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rapport_bus::conformance::{self, DynBus};
use rapport_bus::{Bus, BusConfig, BusError, NatsBus, Prefix};
use rapport_core::WorkspaceId;
use tokio::net::{TcpListener, TcpStream};

fn nats_url(test: &str) -> Option<String> {
    match std::env::var("RAPPORT_TEST_NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("RAPPORT_TEST_NATS_URL is not set: CI must run the NATS bus tests");
            }
            eprintln!("skipped {test}: RAPPORT_TEST_NATS_URL is not set");
            None
        }
    }
}

/// Prefixes a test used, to delete afterwards.
type Used = Arc<Mutex<Vec<Prefix>>>;

fn config_in(used: &Used) -> BusConfig {
    let cfg = BusConfig::for_tests(Prefix::unique("rbt"));
    used.lock().expect("prefixes").push(cfg.prefix.clone());
    cfg
}

/// Runs `body`, then deletes everything under the prefixes it used (and checks that nothing
/// is left), then re-raises any panic.
async fn with_cleanup<F, Fut>(url: &str, body: F)
where
    F: FnOnce(Used) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let used: Used = Arc::default();
    let outcome = AssertUnwindSafe(body(used.clone())).catch_unwind().await;
    let prefixes: Vec<Prefix> = used.lock().expect("prefixes").drain(..).collect();
    let mut leftovers = Vec::new();
    for prefix in prefixes {
        if let Err(e) = NatsBus::delete_prefix(url, &prefix).await {
            leftovers.push(format!("{prefix}: {e}"));
        }
        match NatsBus::delete_prefix(url, &prefix).await {
            Ok(0) => {}
            other => leftovers.push(format!("{prefix} still there: {other:?}")),
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(leftovers.is_empty(), "cleanup failed: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_bus_passes_the_conformance_suite() {
    let Some(url) = nats_url("nats_bus_passes_the_conformance_suite") else {
        return;
    };
    let target = url.clone();
    with_cleanup(&url, |used| async move {
        conformance::run_all(|| {
            let (url, used) = (target.clone(), used.clone());
            async move {
                let bus = NatsBus::connect(&url, config_in(&used))
                    .await
                    .expect("connect");
                Arc::new(bus) as DynBus
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_other_settings_is_refused() {
    let Some(url) = nats_url("a_second_process_with_other_settings_is_refused") else {
        return;
    };
    let target = url.clone();
    with_cleanup(&url, |used| async move {
        let url = target;
        let cfg = config_in(&used);
        let _bus = NatsBus::connect(&url, cfg.clone()).await.expect("connect");
        let same = NatsBus::connect(&url, cfg.clone()).await;
        assert!(same.is_ok(), "the same settings join the existing bus");
        let more_partitions = BusConfig {
            partitions: 32,
            ..cfg.clone()
        };
        assert!(matches!(
            NatsBus::connect(&url, more_partitions).await,
            Err(BusError::Mismatch(_))
        ));
        let other_ttl = BusConfig {
            lease_ttl: cfg.lease_ttl * 2,
            ..cfg
        };
        assert!(matches!(
            NatsBus::connect(&url, other_ttl).await,
            Err(BusError::Mismatch(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let started = Instant::now();
    let cfg = BusConfig::for_tests(Prefix::unique("rbt"));
    let r = NatsBus::connect(&format!("nats://127.0.0.1:{port}"), cfg).await;
    assert!(matches!(r, Err(BusError::Unavailable(_))), "{:?}", r.err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A TCP relay in front of the real server that can be cut, as if the server went away.
struct Relay {
    port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("tasks").push(relay);
            }
        });
        tasks.lock().expect("tasks").push(accept);
        Self { port, tasks }
    }

    /// Stops listening and drops every relayed connection.
    fn cut(&self) {
        for t in self.tasks.lock().expect("tasks").drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_fails_within_the_timeout_when_nats_goes_away() {
    let Some(url) = nats_url("publish_fails_within_the_timeout_when_nats_goes_away") else {
        return;
    };
    let target = url
        .trim_start_matches("nats://")
        .trim_end_matches('/')
        .to_owned();
    with_cleanup(&url, |used| async move {
        let cfg = config_in(&used);
        let prefix = cfg.prefix.clone();
        let relay = Relay::start(target).await;
        let bus = NatsBus::connect(&format!("nats://127.0.0.1:{}", relay.port), cfg.clone())
            .await
            .expect("connect through the relay");
        let ws = WorkspaceId::generate();
        bus.publish(&conformance::envelope(&ws, "k", "before", 0))
            .await
            .expect("publish while connected");

        relay.cut();
        let started = Instant::now();
        let r = bus
            .publish(&conformance::envelope(&ws, "k", "after", 1))
            .await;
        let took = started.elapsed();
        assert!(
            matches!(r, Err(BusError::Unavailable(_))),
            "publish without a server must fail, got {r:?}"
        );
        assert!(
            took <= cfg.publish_timeout + Duration::from_secs(1),
            "publish gave up after {took:?}, later than publish_timeout {:?}",
            cfg.publish_timeout
        );
        let many = bus
            .publish_many(&[conformance::envelope(&ws, "k", "batch", 2)])
            .await;
        assert!(matches!(many, Err(BusError::Unavailable(_))), "{many:?}");
        eprintln!("prefix {prefix}: publish failed after {took:?} with the server gone");
    })
    .await;
}
