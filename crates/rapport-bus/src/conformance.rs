//! The contract every [`Bus`] implementation must meet, as runnable checks. A backend's
//! integration test calls [`run_all`] with a factory of fresh, empty buses configured with
//! short timings (see [`BusConfig::for_tests`]); the checks read the timings from
//! [`Bus::config`] and derive their time bounds from them.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_core::WorkspaceId;
use serde_json::{json, Value};

use crate::{Bus, BusConfig, BusError, Delivery, Envelope, Failed, Ownership, Worker, WorkerId};

/// A bus under test.
pub type DynBus = Arc<dyn Bus>;

/// Runs every check, each on a fresh bus from `make`. Panics on the first broken promise.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynBus>,
{
    round_trip(make().await).await;
    duplicates_are_stored_once(make().await).await;
    nak_redelivers_before_anything_later(make().await).await;
    in_progress_holds_off_redelivery(make().await).await;
    order_holds_per_customer_across_workers(make().await).await;
    order_holds_while_workers_come_and_go(make().await).await;
    unacked_message_goes_to_the_next_owner(make().await).await;
    workers_split_partitions_and_take_over(make().await).await;
    failing_message_is_dead_lettered_and_replayed(make().await).await;
    abandoned_message_is_dead_lettered(make().await).await;
    dead_letters_page_and_discard(make().await).await;
    erasure_removes_a_customer_everywhere(make().await).await;
}

/// An envelope for customer `key` whose JSON payload is `{"n": n}`.
pub fn envelope(ws: &WorkspaceId, key: &str, id: &str, n: usize) -> Envelope {
    Envelope::json(ws.clone(), key, id, &json!({ "n": n })).expect("test envelope")
}

fn n_of(d: &Delivery) -> usize {
    let v: Value = d.envelope().payload_json().expect("json payload");
    v["n"].as_u64().expect("n") as usize
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next_within(w: &mut Worker, limit: Duration) -> Option<Delivery> {
    match tokio::time::timeout(limit, w.next()).await {
        Ok(Ok(d)) => Some(d),
        Ok(Err(e)) => panic!("worker failed: {e}"),
        Err(_) => None,
    }
}

/// A sole worker that owns every partition.
async fn sole_worker(bus: &DynBus) -> Worker {
    let w = bus.join(WorkerId::generate()).await.expect("join");
    let all = usize::from(bus.config().partitions);
    wait_until(bus.config().lease_ttl * 3, || w.owned().len() == all)
        .await
        .expect("a sole worker takes every partition");
    w
}

fn redelivery_bound(c: &BusConfig) -> Duration {
    c.ack_wait + c.fetch_wait * 2 + Duration::from_secs(3)
}

pub async fn round_trip(bus: DynBus) {
    let mut w = sole_worker(&bus).await;
    let ws = WorkspaceId::generate();
    let e = envelope(&ws, "user_id:ada", "m-1", 7);
    let published = bus.publish(&e).await.expect("publish");
    assert!(!published.duplicate);
    assert_eq!(
        published.partition,
        bus.partitioner().partition_for(ws.as_str(), "user_id:ada")
    );
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(d.envelope(), &e);
    assert_eq!(d.event_id(), "m-1");
    assert_eq!(d.attempt(), 1);
    assert_eq!(d.partition(), published.partition);
    assert_eq!(d.sequence(), published.sequence);
    d.ack().await.expect("ack");
    assert!(
        next_within(&mut w, Duration::from_millis(500))
            .await
            .is_none(),
        "an acked message is not delivered again"
    );
    w.leave().await.expect("leave");
}

pub async fn duplicates_are_stored_once(bus: DynBus) {
    let mut w = sole_worker(&bus).await;
    let ws = WorkspaceId::generate();
    let first = bus
        .publish(&envelope(&ws, "k", "same-id", 1))
        .await
        .expect("publish");
    let again = bus
        .publish(&envelope(&ws, "k", "same-id", 1))
        .await
        .expect("publish again");
    assert!(
        again.duplicate,
        "a second publish of one event id is a duplicate"
    );
    assert_eq!(again.sequence, first.sequence);
    // The same event id in another workspace is another event.
    let other = bus
        .publish(&envelope(&WorkspaceId::generate(), "k", "same-id", 2))
        .await
        .expect("publish other workspace");
    assert!(!other.duplicate);
    let mut seen = Vec::new();
    while let Some(d) = next_within(&mut w, Duration::from_millis(800)).await {
        seen.push(n_of(&d));
        d.ack().await.expect("ack");
    }
    seen.sort();
    assert_eq!(seen, vec![1, 2]);
}

pub async fn nak_redelivers_before_anything_later(bus: DynBus) {
    let mut w = sole_worker(&bus).await;
    let ws = WorkspaceId::generate();
    let batch = [envelope(&ws, "c", "a", 0), envelope(&ws, "c", "b", 1)];
    bus.publish_many(&batch).await.expect("publish");
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("first");
    assert_eq!(n_of(&d), 0);
    let delay = Duration::from_millis(300);
    let nak_at = Instant::now();
    d.nak(delay).await.expect("nak");
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("again");
    assert_eq!(
        n_of(&d),
        0,
        "the nak'd message comes back before the next one"
    );
    assert_eq!(d.attempt(), 2);
    assert!(
        nak_at.elapsed() >= delay - Duration::from_millis(50),
        "nak delay honoured"
    );
    d.ack().await.expect("ack");
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("second");
    assert_eq!((n_of(&d), d.attempt()), (1, 1));
    d.ack().await.expect("ack");
}

pub async fn in_progress_holds_off_redelivery(bus: DynBus) {
    let mut w = sole_worker(&bus).await;
    let ack_wait = bus.config().ack_wait;
    bus.publish(&envelope(&WorkspaceId::generate(), "c", "slow", 0))
        .await
        .expect("publish");
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("delivered");
    for _ in 0..3 {
        tokio::time::sleep(ack_wait / 2).await;
        d.in_progress().await.expect("progress");
    }
    // Well past ack_wait since delivery, yet still ours.
    d.ack().await.expect("ack");
    assert!(
        next_within(&mut w, ack_wait + Duration::from_millis(300))
            .await
            .is_none(),
        "a message kept alive with in_progress and then acked is not redelivered"
    );
}

/// What workers saw, per customer, in the order they saw it.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<HashMap<String, Vec<usize>>>>,
    distinct: Arc<AtomicUsize>,
}

impl Recorder {
    fn record(&self, d: &Delivery) {
        let key = d.envelope().partition_key().to_owned();
        let n = n_of(d);
        let mut seen = self.seen.lock().expect("seen");
        let list = seen.entry(key).or_default();
        if !list.contains(&n) {
            self.distinct.fetch_add(1, Ordering::SeqCst);
        }
        list.push(n);
    }

    fn distinct(&self) -> usize {
        self.distinct.load(Ordering::SeqCst)
    }

    /// Every customer saw all of its events, never one after a later one (a redelivery
    /// may repeat a message, but only before anything after it was delivered).
    fn check(&self, published: &HashMap<String, usize>) {
        let seen = self.seen.lock().expect("seen");
        assert_eq!(seen.len(), published.len());
        for (key, list) in seen.iter() {
            assert!(
                list.windows(2).all(|w| w[0] <= w[1]),
                "{key} saw its events out of order: {list:?}"
            );
            let distinct: BTreeSet<usize> = list.iter().copied().collect();
            assert_eq!(distinct, (0..published[key]).collect(), "{key} lost events");
        }
    }
}

/// `count` events over `customers` customers, interleaved; each customer's are numbered
/// 0, 1, 2, ... in publish order. Returns them and how many each customer got.
fn interleaved(count: usize, customers: usize) -> (Vec<Envelope>, HashMap<String, usize>) {
    let ws = WorkspaceId::generate();
    let mut per: HashMap<String, usize> = HashMap::new();
    let envelopes = (0..count)
        .map(|i| {
            let key = format!("user_id:customer-{}", (i * 7 + i / 13) % customers);
            let n = per.entry(key.clone()).or_default();
            let e = envelope(&ws, &key, &format!("e{i}"), *n);
            *n += 1;
            e
        })
        .collect();
    (envelopes, per)
}

/// Handles deliveries (record, pause, ack) until `total` distinct messages were seen or
/// `stop` is set; returns the worker and how many deliveries it handled.
fn handle(
    mut w: Worker,
    rec: Recorder,
    total: usize,
    stop: Arc<AtomicBool>,
    pause: Duration,
) -> tokio::task::JoinHandle<(Worker, usize)> {
    tokio::spawn(async move {
        let mut handled = 0;
        while rec.distinct() < total && !stop.load(Ordering::SeqCst) {
            let Some(d) = next_within(&mut w, Duration::from_millis(100)).await else {
                continue;
            };
            rec.record(&d);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            d.ack().await.expect("ack");
            handled += 1;
        }
        (w, handled)
    })
}

pub async fn order_holds_per_customer_across_workers(bus: DynBus) {
    const MESSAGES: usize = 1000;
    let all = usize::from(bus.config().partitions);
    let a = bus.join(WorkerId::generate()).await.expect("join a");
    let b = bus.join(WorkerId::generate()).await.expect("join b");
    wait_until(bus.config().lease_ttl * 6, || {
        let (x, y) = (a.owned().len(), b.owned().len());
        x + y == all && x.abs_diff(y) <= 1
    })
    .await
    .expect("two workers split the partitions");

    let rec = Recorder::default();
    let never = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = [a, b]
        .into_iter()
        .map(|w| handle(w, rec.clone(), MESSAGES, never.clone(), Duration::ZERO))
        .collect();
    let (envelopes, per_customer) = interleaved(MESSAGES, 37);
    for chunk in envelopes.chunks(100) {
        bus.publish_many(chunk).await.expect("publish");
    }
    let limit = Duration::from_secs(60);
    let done = wait_until(limit, || rec.distinct() >= MESSAGES).await;
    assert!(
        done.is_some(),
        "only {} of {MESSAGES} messages delivered within {limit:?}",
        rec.distinct()
    );
    for (i, t) in tasks.into_iter().enumerate() {
        let (_, handled) = t.await.expect("worker task");
        assert!(handled > 0, "worker {i} handled nothing");
    }
    rec.check(&per_customer);
}

/// Order and completeness hold while partitions move: a second worker joins mid-stream and
/// then the first leaves, with messages in flight throughout.
pub async fn order_holds_while_workers_come_and_go(bus: DynBus) {
    const MESSAGES: usize = 600;
    let pause = Duration::from_millis(2);
    let a = sole_worker(&bus).await;
    let rec = Recorder::default();
    let (stop_a, never) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let task_a = handle(a, rec.clone(), MESSAGES, stop_a.clone(), pause);
    let (envelopes, per_customer) = interleaved(MESSAGES, 23);
    bus.publish_many(&envelopes).await.expect("publish");

    let limit = Duration::from_secs(60);
    wait_until(limit, || rec.distinct() >= MESSAGES / 4)
        .await
        .expect("a makes progress");
    let b = bus.join(WorkerId::generate()).await.expect("join b");
    let task_b = handle(b, rec.clone(), MESSAGES, never, pause);
    wait_until(limit, || rec.distinct() >= MESSAGES / 2)
        .await
        .expect("progress with two workers");
    stop_a.store(true, Ordering::SeqCst);
    let (a, _) = task_a.await.expect("a's task");
    a.leave().await.expect("a leaves");
    let done = wait_until(limit, || rec.distinct() >= MESSAGES).await;
    assert!(
        done.is_some(),
        "only {} of {MESSAGES} messages delivered within {limit:?}",
        rec.distinct()
    );
    let (b, handled_b) = task_b.await.expect("b's task");
    assert!(handled_b > 0, "b handled nothing");
    assert_eq!(b.owned().len(), usize::from(bus.config().partitions));
    rec.check(&per_customer);
}

pub async fn unacked_message_goes_to_the_next_owner(bus: DynBus) {
    let c = bus.config().clone();
    let mut a = sole_worker(&bus).await;
    let e = envelope(&WorkspaceId::generate(), "user_id:z", "crash-1", 0);
    bus.publish(&e).await.expect("publish");
    let d = next_within(&mut a, Duration::from_secs(5))
        .await
        .expect("delivered to a");
    assert_eq!(d.attempt(), 1);
    // The worker dies mid-message: no ack, no nak, no release of its leases.
    let died = Instant::now();
    drop(d);
    drop(a);
    let mut b = bus.join(WorkerId::generate()).await.expect("join b");
    let bound = c.lease_ttl * 2 + redelivery_bound(&c);
    let d = next_within(&mut b, bound)
        .await
        .expect("the unacked message reaches the next owner");
    assert_eq!(d.envelope(), &e);
    assert_eq!(d.attempt(), 2);
    eprintln!(
        "an unacked message reached the next owner {:?} after the crash",
        died.elapsed()
    );
    d.ack().await.expect("ack");
}

/// Watches a set of workers and records any moment two of them own one partition.
struct ExclusivityProbe {
    workers: Arc<Mutex<Vec<(String, Ownership)>>>,
    violations: Arc<Mutex<Vec<String>>>,
    samples: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ExclusivityProbe {
    fn start() -> Self {
        let workers: Arc<Mutex<Vec<(String, Ownership)>>> = Arc::default();
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let samples = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (workers, violations, samples, stop) = (
                workers.clone(),
                violations.clone(),
                samples.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let ws = workers.lock().expect("workers").clone();
                    // Read i, then j, then i again: a partition in all three reads was owned by
                    // i before and after j claimed it, so both owned it at once.
                    for (i, (ni, oi)) in ws.iter().enumerate() {
                        for (j, (nj, oj)) in ws.iter().enumerate() {
                            if i == j {
                                continue;
                            }
                            let before: BTreeSet<_> = oi.owned().into_iter().collect();
                            let other: BTreeSet<_> = oj.owned().into_iter().collect();
                            let after: BTreeSet<_> = oi.owned().into_iter().collect();
                            for p in before.intersection(&other).filter(|p| after.contains(p)) {
                                violations
                                    .lock()
                                    .expect("violations")
                                    .push(format!("partition {p} owned by {ni} and {nj}"));
                            }
                        }
                    }
                    samples.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        };
        Self {
            workers,
            violations,
            samples,
            stop,
            task,
        }
    }

    fn watch(&self, w: &Worker) {
        self.workers
            .lock()
            .expect("workers")
            .push((w.id().to_string(), w.ownership()));
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("probe");
        let v = self.violations.lock().expect("violations");
        assert!(
            v.is_empty(),
            "ownership overlapped: {:?}",
            &v[..v.len().min(10)]
        );
        assert!(
            self.samples.load(Ordering::SeqCst) > 100,
            "the probe barely ran"
        );
    }
}

pub async fn workers_split_partitions_and_take_over(bus: DynBus) {
    let c = bus.config().clone();
    let all = usize::from(c.partitions);
    let probe = ExclusivityProbe::start();
    let split_bound = c.lease_ttl * 4 + Duration::from_secs(2);

    let a = sole_worker(&bus).await;
    probe.watch(&a);
    let b = bus.join(WorkerId::generate()).await.expect("join b");
    probe.watch(&b);
    wait_until(split_bound, || {
        a.owned().len() + b.owned().len() == all && a.owned().len().abs_diff(b.owned().len()) <= 1
    })
    .await
    .expect("a second worker gets half of the partitions");

    // A clean stop hands everything over well within one lease TTL.
    let (b_own, left_at) = (b.ownership(), Instant::now());
    a.leave().await.expect("a leaves");
    wait_until(c.lease_ttl * 3, || b_own.owned().len() == all)
        .await
        .expect("b takes every partition after a leaves");
    let took = left_at.elapsed();
    eprintln!("take-over after a clean leave: {took:?}");
    assert!(
        took <= c.lease_ttl,
        "hand-over after a clean leave took {took:?}, more than the lease TTL"
    );

    let d = bus.join(WorkerId::generate()).await.expect("join d");
    probe.watch(&d);
    wait_until(split_bound, || {
        b.owned().len() + d.owned().len() == all && b.owned().len().abs_diff(d.owned().len()) <= 1
    })
    .await
    .expect("a new worker gets half again");

    // A crash: d's leases are not released, they expire.
    drop(d);
    let crash_bound = c.lease_ttl + c.renew_every() + Duration::from_secs(1);
    let took = wait_until(crash_bound, || b.owned().len() == all)
        .await
        .expect("b takes a crashed worker's partitions once its leases expire");
    eprintln!("take-over after a crash: {took:?}");
    probe.finish().await;
    b.leave().await.expect("b leaves");
}

pub async fn failing_message_is_dead_lettered_and_replayed(bus: DynBus) {
    let max = bus.config().max_attempts;
    let mut w = sole_worker(&bus).await;
    let ws = WorkspaceId::generate();
    let poison = envelope(&ws, "user_id:p", "poison", 0);
    let after = envelope(&ws, "user_id:p", "after", 1);
    bus.publish_many(&[poison.clone(), after.clone()])
        .await
        .expect("publish");
    for attempt in 1..=max {
        let d = next_within(&mut w, Duration::from_secs(5))
            .await
            .expect("delivered");
        assert_eq!(
            d.event_id(),
            "poison",
            "nothing overtakes a failing message"
        );
        assert_eq!(d.attempt(), attempt);
        assert_eq!(d.is_last_attempt(), attempt == max);
        let outcome = d
            .fail(
                format!("boom on attempt {attempt}"),
                Duration::from_millis(20),
            )
            .await
            .expect("fail");
        let expected = if attempt == max {
            Failed::DeadLettered
        } else {
            Failed::WillRetry
        };
        assert_eq!(outcome, expected);
    }
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("the next one flows");
    assert_eq!(d.envelope(), &after);
    d.ack().await.expect("ack");

    let dead = bus.dead_letters(None, 10).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(letter.envelope.as_ref(), Some(&poison));
    assert_eq!(letter.error, format!("boom on attempt {max}"));
    assert_eq!(letter.attempts, max);
    assert_eq!(
        letter.partition,
        bus.partitioner().partition_for(ws.as_str(), "user_id:p")
    );

    bus.replay_dead_letter(letter.id).await.expect("replay");
    let d = next_within(&mut w, Duration::from_secs(5))
        .await
        .expect("replayed");
    assert_eq!(d.envelope(), &poison);
    assert_eq!(d.attempt(), 1, "a replay starts counting afresh");
    d.ack().await.expect("ack");
    assert!(bus.dead_letters(None, 10).await.expect("list").is_empty());
    assert!(matches!(
        bus.replay_dead_letter(letter.id).await,
        Err(BusError::NotFound(_))
    ));
}

pub async fn abandoned_message_is_dead_lettered(bus: DynBus) {
    let c = bus.config().clone();
    let mut w = sole_worker(&bus).await;
    bus.publish(&envelope(&WorkspaceId::generate(), "k", "crasher", 0))
        .await
        .expect("publish");
    // The handler "crashes" every time: the delivery is dropped, never settled.
    for attempt in 1..=c.max_attempts {
        let d = next_within(&mut w, redelivery_bound(&c))
            .await
            .expect("delivered again");
        assert_eq!(d.attempt(), attempt);
        drop(d);
    }
    let bus2 = bus.clone();
    let found = tokio::time::timeout(redelivery_bound(&c), async move {
        loop {
            let dead = bus2.dead_letters(None, 10).await.expect("list");
            if !dead.is_empty() {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("dead-lettered after max_attempts unsettled deliveries");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].attempts, c.max_attempts + 1);
    assert!(
        found[0].error.contains("without being settled"),
        "{}",
        found[0].error
    );
    assert!(next_within(&mut w, Duration::from_millis(300))
        .await
        .is_none());
}

pub async fn dead_letters_page_and_discard(bus: DynBus) {
    let mut w = sole_worker(&bus).await;
    let ws = WorkspaceId::generate();
    let batch: Vec<Envelope> = (0..3)
        .map(|i| envelope(&ws, &format!("k{i}"), &format!("d{i}"), i))
        .collect();
    bus.publish_many(&batch).await.expect("publish");
    for _ in 0..3 {
        let d = next_within(&mut w, Duration::from_secs(5))
            .await
            .expect("delivered");
        d.dead_letter("permanently invalid")
            .await
            .expect("dead letter");
    }
    let first = bus.dead_letters(None, 2).await.expect("page 1");
    assert_eq!(first.len(), 2);
    let rest = bus
        .dead_letters(Some(first[1].id), 10)
        .await
        .expect("page 2");
    assert_eq!(rest.len(), 1);
    assert!(first[0].id < first[1].id && first[1].id < rest[0].id);
    let mut ids: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|l| l.envelope.as_ref().expect("envelope").event_id().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["d0", "d1", "d2"]);
    assert_eq!(first[0].attempts, 1);

    bus.discard_dead_letter(first[0].id).await.expect("discard");
    assert_eq!(bus.dead_letters(None, 10).await.expect("list").len(), 2);
    let again = bus.discard_dead_letter(first[0].id).await;
    assert!(matches!(again, Err(BusError::NotFound(_))), "{again:?}");
    assert!(next_within(&mut w, Duration::from_millis(300))
        .await
        .is_none());
}

pub async fn erasure_removes_a_customer_everywhere(bus: DynBus) {
    let ws = WorkspaceId::generate();
    let other_ws = WorkspaceId::generate();
    let gone = "user_id:gone";
    let mut w = sole_worker(&bus).await;
    bus.publish_many(&[
        envelope(&ws, gone, "g-applied", 1),
        envelope(&ws, "user_id:kept", "k-applied", 2),
        envelope(&ws, gone, "g-dead", 3),
    ])
    .await
    .expect("publish");
    for _ in 0..3 {
        let d = next_within(&mut w, Duration::from_secs(5))
            .await
            .expect("delivered");
        if d.event_id() == "g-dead" {
            d.dead_letter("permanently invalid")
                .await
                .expect("dead letter");
        } else {
            d.ack().await.expect("ack");
        }
    }
    w.leave().await.expect("leave");
    // Queued while no worker runs: one of the erased customer's, one of another customer's,
    // and one with the same key in another workspace.
    bus.publish_many(&[
        envelope(&ws, gone, "g-queued", 4),
        envelope(&ws, "user_id:kept", "k-queued", 5),
        envelope(&other_ws, gone, "o-queued", 6),
    ])
    .await
    .expect("publish");

    let doomed = |e: &Envelope| e.partition_key() == gone;
    let first = bus.erase_where(&ws, None, &doomed).await.expect("erase");
    assert!(first.events >= 1, "the queued event is erased: {first:?}");
    assert_eq!(first.dead_letters, 1, "{first:?}");
    assert!(bus.dead_letters(None, 10).await.expect("list").is_empty());

    // A second pass from the cursor sees only what came later.
    bus.publish(&envelope(&ws, gone, "g-late", 7))
        .await
        .expect("publish late");
    let second = bus
        .erase_where(&ws, Some(first.cursor), &doomed)
        .await
        .expect("erase again");
    assert_eq!((second.events, second.dead_letters), (1, 0), "{second:?}");
    assert!(second.cursor >= first.cursor);
    let third = bus.erase_where(&ws, None, &doomed).await.expect("erase");
    assert_eq!((third.events, third.dead_letters), (0, 0), "{third:?}");

    let mut w = sole_worker(&bus).await;
    let mut seen = Vec::new();
    while let Some(d) = next_within(&mut w, Duration::from_millis(1500)).await {
        seen.push(d.event_id().to_owned());
        d.ack().await.expect("ack");
    }
    seen.sort();
    assert_eq!(
        seen,
        ["k-queued", "o-queued"],
        "erased events are never delivered; others are"
    );
    w.leave().await.expect("leave");
}
