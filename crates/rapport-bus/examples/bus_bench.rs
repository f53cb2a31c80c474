//! Publish and consume figures for the in-process bus and, when a server is given, the NATS
//! bus, measured in one run so they can be compared.
//!
//! ```text
//! cargo run --release -p rapport-bus --example bus_bench -- [messages] [nats-url]
//! ```
//!
//! `messages` defaults to 5,000; the NATS URL defaults to `RAPPORT_TEST_NATS_URL`, and the
//! NATS half is skipped without one. Every loop is bounded by the message count; the NATS
//! streams are deleted afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rapport_bus::conformance::envelope;
use rapport_bus::{Bus, BusConfig, Envelope, InProcessBus, NatsBus, Prefix, WorkerId};
use rapport_core::WorkspaceId;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn envelopes(n: usize) -> Vec<Envelope> {
    let ws = WorkspaceId::generate();
    (0..n)
        .map(|i| envelope(&ws, &format!("user_id:c{}", i % 500), &format!("e{i}"), i))
        .collect()
}

async fn measure(name: &str, bus: Arc<dyn Bus>, n: usize) {
    // 1. One publish at a time, each waiting for its acknowledgement (an API node serving
    //    one request).
    let batch = envelopes(n);
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for e in &batch {
        let t = Instant::now();
        bus.publish(e).await.expect("publish");
        lat.push(t.elapsed());
    }
    let took = started.elapsed();
    lat.sort();
    println!(
        "{name:<10} publish, one at a time: {n} in {took:.2?} = {:>8.0} acks/s, p50 {:.3?}, p99 {:.3?}",
        n as f64 / took.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // 2. Batches of 100 (the batch endpoint).
    let batch = envelopes(n);
    let started = Instant::now();
    for chunk in batch.chunks(100) {
        bus.publish_many(chunk).await.expect("publish_many");
    }
    let took = started.elapsed();
    println!(
        "{name:<10} publish, batches of 100: {n} in {took:.2?} = {:>8.0} msgs/s",
        n as f64 / took.as_secs_f64()
    );

    // 3. One worker drains everything, acking each message as soon as it arrives.
    let total = 2 * n;
    let mut w = bus.join(WorkerId::generate()).await.expect("join");
    let all = usize::from(bus.config().partitions);
    while w.owned().len() < all {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let mut done = 0;
    while done < total {
        let d = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("a message within 10 s")
            .expect("next");
        d.ack().await.expect("ack");
        done += 1;
    }
    let took = started.elapsed();
    println!(
        "{name:<10} consume + ack, 1 worker, {all} partitions: {total} in {took:.2?} = {:>8.0} msgs/s",
        total as f64 / took.as_secs_f64()
    );
    drop(w);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("messages is a number"))
        .unwrap_or(5000);
    let url = args
        .next()
        .or_else(|| std::env::var("RAPPORT_TEST_NATS_URL").ok());

    let cfg = BusConfig {
        dedupe_window: Duration::from_secs(60),
        ..BusConfig::for_tests(Prefix::unique("bench"))
    };
    let mem = Arc::new(InProcessBus::new(cfg.clone()).expect("in-process bus"));
    measure("in-process", mem, n).await;

    let Some(url) = url else {
        println!("nats       skipped: no URL given and RAPPORT_TEST_NATS_URL is not set");
        return;
    };
    let nats = Arc::new(NatsBus::connect(&url, cfg).await.expect("connect"));
    measure("nats", nats.clone(), n).await;
    nats.destroy().await.expect("delete the benchmark streams");
}
