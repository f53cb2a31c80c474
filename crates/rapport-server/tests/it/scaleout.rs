//! An API node in scale-out mode, in one process: events go onto an in-process bus and a
//! worker task applies them with the same engine stage. (The same over NATS JetStream, as
//! separate processes with crashes, is `crates/rapport/tests/scaleout.rs`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use rapport_bus::{Bus, BusConfig, Envelope, InProcessBus, Prefix, WorkerId};
use rapport_server::engine::Engine;
use rapport_server::sink::{BusSlot, EventSink};
use rapport_server::worker::{WorkerOptions, WorkerStats};
use serde_json::{json, Value};

use crate::common::{default_workspace, TestApp};

async fn wait_until<F, Fut>(what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !ok().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn events(app: &TestApp) -> i64 {
    app.get("/v1/stats").await.1["events"]
        .as_i64()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mode_acknowledges_on_the_bus_and_a_worker_applies_each_event_once_in_order() {
    let bus: Arc<dyn Bus> =
        Arc::new(InProcessBus::new(BusConfig::for_tests(Prefix::unique("it"))).expect("bus"));
    let app = TestApp::spawn_with_sink(
        Default::default(),
        EventSink::Bus(BusSlot::connected(bus.clone())),
    )
    .await;

    // Accepted onto the bus, not applied yet: no worker runs.
    let ev = json!({"userId": "ada", "event": "Signed Up", "messageId": "m-0",
                    "timestamp": "2026-01-01T00:00:00Z", "properties": {"seq": 0}});
    let (status, body) = app.send("/v1/track", &ev).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["queued"].as_u64(), body["applied"].as_u64()),
        (Some(1), Some(0))
    );
    let (_, again) = app.send("/v1/track", &ev).await;
    assert_eq!(
        again["duplicates"], 1,
        "a repeat within the dedupe window: {again}"
    );
    assert_eq!(events(&app).await, 0);

    // Validation is the API node's: the same 400s as embedded.
    let (status, body) = app.send("/v1/track", &json!({"event": "Nobody"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("missing_identity"))
    );

    // A worker joins and applies the backlog and what follows.
    let engine = Arc::new(Engine::new(app.store.clone(), Default::default()).expect("engine"));
    let worker = bus.join(WorkerId::generate()).await.expect("join");
    let stats = Arc::new(WorkerStats::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = WorkerOptions {
        retry_base: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    let running = tokio::spawn(rapport_server::worker::run(
        engine,
        worker,
        options,
        stats.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let batch: Vec<Value> = (1..40)
        .map(|i| {
            json!({"type": "track", "userId": if i % 2 == 0 { "ada" } else { "bob" }, "event": "Step",
                   "messageId": format!("m-{i}"), "timestamp": format!("2026-01-01T00:00:{i:02}Z"),
                   "properties": {"seq": i}})
        })
        .collect();
    let (status, body) = app.send("/v1/batch", &json!({"batch": batch})).await;
    assert_eq!((status, body["queued"].as_u64()), (200, Some(39)), "{body}");
    wait_until("40 events applied", || async { events(&app).await == 40 }).await;
    assert_eq!(stats.applied(), 40);

    // Identity ran in the worker: the profile has its traits standardised.
    let (status, _) = app
        .send("/v1/identify", &json!({"userId": "ada", "traits": {"email": "Ada@Example.COM", "phone": "+1 (415) 555-0100"}}))
        .await;
    assert_eq!(status, 200);
    wait_until("identify applied", || async { events(&app).await == 41 }).await;
    let (_, p) = app.get("/v1/profiles?email=ada@example.com").await;
    assert_eq!(p["event_count"], 21, "{p}");
    let (_, p) = app.get("/v1/profiles?phone=%2B14155550100").await;
    assert_eq!(p["event_count"], 21, "found by the standardised phone: {p}");

    // A poison message fails every attempt, lands in the dead letters, and does not block
    // the events after it on its partition.
    let ws = default_workspace(&app.store).await;
    let poison = Envelope::json(
        ws.clone(),
        "user_id:ada",
        "poison-1",
        &json!({"broken": true}),
    )
    .expect("envelope");
    bus.publish(&poison).await.expect("publish");
    let (status, _) = app
        .send(
            "/v1/track",
            &json!({"userId": "ada", "event": "After", "messageId": "m-after"}),
        )
        .await;
    assert_eq!(status, 200);
    wait_until("the poison to be dead-lettered", || async {
        app.get("/v1/dead-letters").await.1["dead_letters"]
            .as_array()
            .is_some_and(|l| l.len() == 1)
    })
    .await;
    wait_until("the event behind it applied", || async {
        events(&app).await == 42
    })
    .await;
    let (_, list) = app.get("/v1/dead-letters").await;
    let letter = &list["dead_letters"][0];
    assert_eq!(letter["message_id"], "poison-1");
    assert_eq!(letter["customer"], "user_id:ada");
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["event"], json!({"broken": true}));
    assert!(
        letter["error"]
            .as_str()
            .unwrap_or("")
            .contains("unreadable event"),
        "{letter}"
    );
    assert_eq!(stats.dead_lettered(), 1);

    // Another workspace does not see it.
    let (_, other_admin) = app.other_workspace("other").await;
    let resp = app
        .client
        .get(app.url("/v1/dead-letters"))
        .bearer_auth(&other_admin)
        .send()
        .await
        .expect("get");
    let other: Value = resp.json().await.expect("json");
    assert_eq!(other["dead_letters"], json!([]));
    let id = letter["id"].as_u64().expect("id");
    let resp = app
        .client
        .post(app.url(&format!("/v1/dead-letters/{id}/replay")))
        .bearer_auth(&other_admin)
        .send()
        .await
        .expect("post");
    assert_eq!(
        resp.status().as_u16(),
        404,
        "not another workspace's to replay"
    );

    // Replay: it goes back on the bus, fails again, and is dead-lettered again.
    let resp = app
        .client
        .post(app.url(&format!("/v1/dead-letters/{id}/replay")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    wait_until("the replayed poison to come back", || async {
        app.get("/v1/dead-letters").await.1["dead_letters"]
            .as_array()
            .is_some_and(|l| l.len() == 1 && l[0]["id"].as_u64() != Some(id))
    })
    .await;
    let (_, audit) = app.get("/v1/audit?action=dead_letter.").await;
    assert_eq!(
        audit["records"][0]["action"], "dead_letter.replayed",
        "{audit}"
    );
    assert_eq!(stats.dead_lettered(), 2);

    // Stopping the worker hands its partitions back.
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops")
        .expect("task")
        .expect("left cleanly");
}

#[tokio::test]
async fn an_api_node_without_its_bus_answers_503_with_retry_after() {
    let app =
        TestApp::spawn_with_sink(Default::default(), EventSink::Bus(BusSlot::default())).await;
    let resp = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(&app.write_key, Some(""))
        .json(&json!({"userId": "ada", "event": "Lost?"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "bus_unavailable");
    let (status, body) = app.send("/v1/track", &json!({"event": "Nobody"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("missing_identity"))
    );
    let (status, _) = app.get("/v1/stats").await;
    assert_eq!(status, 200, "reads do not need the bus");
    let (status, _) = app.get("/v1/dead-letters").await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn an_embedded_server_has_no_dead_letters() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/dead-letters").await;
    assert_eq!((status, body["dead_letters"].clone()), (200, json!([])));
    let resp = app
        .client
        .post(app.url("/v1/dead-letters/1/replay"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 404);
    let (status, body) = app
        .send("/v1/track", &json!({"userId": "ada", "event": "Now"}))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.get("queued").is_none(),
        "embedded answers as before: {body}"
    );
    assert_eq!(body["applied"], 1);
}
