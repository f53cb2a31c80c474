//! The embedded SQLite backend.
//!
//! One writer thread owns the write connection. Callers queue jobs; the writer drains the
//! queue, runs each job inside its own savepoint of one shared transaction, commits once
//! (`synchronous=FULL`, so the commit is on disk), and only then answers each caller. A failing
//! job rolls back to its savepoint without disturbing the others. This group commit is what lets
//! many concurrent HTTP requests share one fsync.

pub(crate) mod apply;
mod cache;
mod decide;
mod dedupe;
mod govern;
mod intents;
mod models;
mod nba;
mod read;
mod routing;
pub mod schema;
mod store_impl;
mod transfer;
mod unmerge;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Jobs at most committed together; bounds the latency one commit adds to the first job.
/// (Public so `rapport bench nba`'s disk reference groups its commits the same way.)
pub const MAX_GROUP: usize = 512;
/// Jobs that may wait for the writer; past this, writers wait (backpressure) instead of
/// queueing without bound.
const QUEUE_DEPTH: usize = 1024;
/// Read connections: at most this many reads run at once, each on a connection kept open for
/// the next one. Opening a connection reads the whole schema, so a pool that opened one per
/// read under load spent more time parsing the schema than reading (next-best-action profile).
const READERS: usize = 16;

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// SQLite store in `DATA_DIR/rapport.db`.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<
        Option<(
            Arc<std::sync::atomic::AtomicBool>,
            std::thread::JoinHandle<()>,
        )>,
    >,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_slots: Arc<tokio::sync::Semaphore>,
    /// Since when audit entries have been waiting to join the chain, as the writer saw after
    /// its last commit (see [`AuditWaiting`]).
    audit_waiting: Arc<AuditWaiting>,
    pub(crate) policy: crate::PolicyCell,
}

/// How long an audit entry may wait in `audit_pending` before the writer moves the waiting
/// entries into the chain, at the end of its next write group. At 2,000 offers/s that is a
/// batch of about 40.
const AUDIT_BATCH_AGE: std::time::Duration = std::time::Duration::from_millis(20);

/// Whether, and since when, audit entries wait in `audit_pending` (committed, not yet in the
/// chain). Only the writer thread changes it, after each commit; the checkpointer thread
/// reads it to wake an idle writer for a batch, and audit reads to move the entries into the
/// chain first, so nobody reads a chain without them.
#[derive(Debug)]
struct AuditWaiting {
    /// Microseconds after `epoch` (at least 1) since entries wait; 0 while none do.
    since_us: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
}

impl AuditWaiting {
    fn new() -> Self {
        Self {
            since_us: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }

    fn any(&self) -> bool {
        self.since_us.load(std::sync::atomic::Ordering::Acquire) != 0
    }

    /// Whether the oldest waiting entry has waited [`AUDIT_BATCH_AGE`].
    fn due(&self) -> bool {
        match self.since_us.load(std::sync::atomic::Ordering::Acquire) {
            0 => false,
            since => {
                let now = self.epoch.elapsed().as_micros() as u64;
                now.saturating_sub(since) >= AUDIT_BATCH_AGE.as_micros() as u64
            }
        }
    }

    /// Notes, after a commit or a rollback, whether entries may still wait.
    fn note(&self, waiting: bool) {
        use std::sync::atomic::Ordering;
        if !waiting {
            self.since_us.store(0, Ordering::Release);
        } else if self.since_us.load(Ordering::Acquire) == 0 {
            let now = (self.epoch.elapsed().as_micros() as u64).max(1);
            self.since_us.store(now, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The database file inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rapport.db")
}

/// Waits for a lock another connection holds, in short steps: SQLite's own busy handler sleeps
/// 1, 2, 5, 10 ms and longer, so a writer that met the checkpointer's brief hold of the write
/// lock lost several milliseconds more than the hold itself. Gives up after about 10 s.
fn busy_wait(tries: i32) -> bool {
    let pause = match tries {
        0..=39 => std::time::Duration::from_micros(50),
        40..=239 => std::time::Duration::from_micros(500),
        240..=2_200 => std::time::Duration::from_millis(5),
        _ => return false,
    };
    std::thread::sleep(pause);
    true
}

/// `FULL` (the default): a commit is on disk before it is acknowledged, so not even a power
/// cut loses an acknowledged write. `RAPPORT_SQLITE_SYNCHRONOUS=normal` skips the fsync at each
/// commit (the WAL is synced at checkpoints): a crash of the process still loses nothing, but
/// a crash of the machine may lose the last commits. Only for measuring what the fsync costs.
fn synchronous() -> &'static str {
    match std::env::var("RAPPORT_SQLITE_SYNCHRONOUS") {
        Ok(v) if v.eq_ignore_ascii_case("normal") => "NORMAL",
        _ => "FULL",
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", synchronous())?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans that do not depend on bound values. Without this, SQLite marks a statement whose
    // plan could use a parameter's value (an ORDER BY or LIMIT next to `col = ?`, among
    // others) to be compiled again whenever that parameter is bound anew, so cached
    // statements were recompiled on almost every use (13% of a next-best-action's time).
    // The store runs no ANALYZE, so there are no statistics such plans could gain from.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, migrates it, and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = database_path(data_dir);
        let mut conn = Connection::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "cannot enable WAL on {}",
                path.display()
            )));
        }
        configure(&conn)?;
        // Deleted content is overwritten, not just unlinked, so an erasure leaves no bytes of
        // the customer in freed pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        // The writer waits for the checkpointer's brief holds of the write lock in short steps.
        conn.busy_handler(Some(busy_wait))?;
        // The writer keeps a larger page cache (its index inserts land all over the tree)
        // and leaves checkpoints to the checkpointer thread, except as a safety valve when
        // the WAL grows past ~200 MB.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.pragma_update(None, "wal_autocheckpoint", 50_000)?;
        schema::migrate(&mut conn)?;
        apply::ensure_default_workspace(&conn)?;
        // Audit entries a crash left waiting join the chain before anything else is written.
        // (Another process, such as `rapport audit verify` beside a running server, may find
        // the server's entries waiting: it takes the write lock first, so the chain's head it
        // reads is the one it appends to.)
        let waiting: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM audit_pending)", [], |r| {
                r.get(0)
            })?;
        if waiting {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            govern::flush_deferred_audit(&tx)?;
            tx.commit()?;
        }

        let (tx, rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
        let audit_waiting = Arc::new(AuditWaiting::new());
        let waiting = audit_waiting.clone();
        let passes = Arc::new(CheckpointPasses::default());
        let seen = passes.clone();
        let thread = std::thread::Builder::new()
            .name("rapport-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &waiting, &seen))
            .map_err(|e| StoreError::Internal(format!("cannot start writer thread: {e}")))?;
        let checkpointer =
            start_checkpointer(&path, tx.downgrade(), audit_waiting.clone(), passes)?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some(checkpointer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_slots: Arc::new(tokio::sync::Semaphore::new(READERS)),
            audit_waiting,
            policy: crate::PolicyCell::default(),
        })
    }

    /// Moves audit entries still waiting into the chain, so a read of the audit log that
    /// follows sees every change committed before it. Costs nothing when none wait.
    pub(crate) async fn flush_deferred_audit(&self) -> Result<(), StoreError> {
        if self.audit_waiting.any() {
            self.write(|c| govern::flush_deferred_audit(c).map(|_| ()))
                .await?;
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the writer's transaction; returns once its effects are durable.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = run_in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                let _ = tx.send(outcome);
            })
        });
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Internal("writer lock poisoned".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("writer thread stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Unavailable("the write could not start; nothing was applied".into())
        })?
    }

    /// Runs `f` on a read-only connection from the pool, on the blocking thread pool.
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        let path = self.path.clone();
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("store is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let conn = match pool.lock().ok().and_then(|mut p| p.pop()) {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&c)?;
                    c
                }
            };
            let result = f(&conn);
            if let Ok(mut p) = pool.lock() {
                if p.len() < READERS {
                    p.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self) {
        if let Some((stop, handle)) = self.checkpointer.lock().ok().and_then(|mut c| c.take()) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = handle.join();
        }
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(handle) = self.writer_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = handle.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// How often the checkpointer copies committed WAL frames into the database while commits
/// arrive. Often, so that little is left for the writer's own checkpoint when the log reaches
/// its autocheckpoint size (with a pass every 250 ms that checkpoint stalled a commit for
/// 12-18 ms every two seconds at 2,000 next-best-actions/s), and so that each pass writes few
/// pages: a commit whose `fsync` meets a pass's writes and `fsync` of the database file waits
/// for them (62-92% of the commits over 3 ms did, with a pass every 20 ms). In alternating
/// runs at 2,000 next-best-actions/s, p99 was 8.4-11.5 ms with a pass every 20 ms, 5.2-6.6 ms
/// every 5 ms and 3.9-7.4 ms every 2 ms; then 5.6-9.3 ms at 20 ms against 2.9-4.3 ms with this
/// build's 2 ms in five pairs (BENCHMARKS.md).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(2);
/// The longest wait between passes once the log is idle: after a pass that found no new frame
/// (and no audit entry waiting), the next waits twice as long, up to this, so an idle server
/// does not wake 500 times a second; the first pass that finds new frames goes back to
/// [`CHECKPOINT_EVERY`].
const IDLE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// WAL frames past which the checkpointer also tries to start the log over; off by default:
/// restarting past 8,192 frames made the tail worse, not better (BENCHMARKS.md), so it stays
/// settable only to repeat that comparison.
const RESTART_AT: i64 = i64::MAX;

/// `RAPPORT_SQLITE_CHECKPOINT_MS` and `RAPPORT_SQLITE_RESTART_FRAMES` override
/// [`CHECKPOINT_EVERY`] and [`RESTART_AT`], so one build can compare them.
fn tuning() -> (std::time::Duration, i64) {
    let every = std::env::var("RAPPORT_SQLITE_CHECKPOINT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(CHECKPOINT_EVERY, std::time::Duration::from_millis);
    let restart = std::env::var("RAPPORT_SQLITE_RESTART_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RESTART_AT);
    (every, restart)
}

/// Checkpoints from a connection of its own, so the writer's commits never pay for copying
/// the WAL back into the database.
///
/// A PASSIVE checkpoint copies frames without blocking anyone, but it never lets the log start
/// over: SQLite rewinds the WAL only when every frame is back in the database and no reader
/// still uses it, which under steady reads and writes does not happen by itself, so the log
/// grows until the writer's autocheckpoint. With a restart threshold set, once the log is past
/// it, right after a PASSIVE pass, the checkpointer asks for a RESTART without waiting for
/// anyone: it holds the write lock to copy the frames committed meanwhile, and if a reader is
/// still on the log it gives up at once and tries again on the next pass.
///
/// It also wakes an idle writer when audit entries have waited [`AUDIT_BATCH_AGE`]: it queues
/// an empty job, and the writer moves the entries into the chain at the end of that group.
fn start_checkpointer(
    path: &Path,
    writer: mpsc::WeakSender<Job>,
    audit_waiting: Arc<AuditWaiting>,
    passes: Arc<CheckpointPasses>,
) -> Result<
    (
        Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    ),
    StoreError,
> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    // Never wait: a busy lock means "try on the next pass".
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let (every, restart_at) = tuning();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("rapport-sqlite-checkpoint".into())
        .spawn(move || {
            let (mut wait, mut last_frames) = (every, -1);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(wait);
                if audit_waiting.due() {
                    if let Some(writer) = writer.upgrade() {
                        // Full queue: the writer is busy and will see the batch is due.
                        let _ = writer.try_send(Box::new(|_: &Connection| -> Completion {
                            Box::new(|_| {})
                        }));
                    }
                }
                let (frames, copied) = match passes.during(|| checkpoint(&conn, "PASSIVE")) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(error = %e, "checkpoint failed; will retry");
                        wait = every;
                        continue;
                    }
                };
                let idle = frames == last_frames && copied == frames && !audit_waiting.any();
                wait = next_wait(wait, every, idle);
                last_frames = frames;
                if frames >= restart_at {
                    if let Err(e) = passes.during(|| checkpoint(&conn, "RESTART")) {
                        tracing::warn!(error = %e, "WAL restart failed; will retry");
                    }
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start checkpoint thread: {e}")))?;
    Ok((stop, handle))
}

/// How long the checkpointer sleeps before its next pass: `every` while the log takes new
/// frames, twice the last wait (up to [`IDLE_EVERY`], never below `every`) after an idle pass.
fn next_wait(
    last: std::time::Duration,
    every: std::time::Duration,
    idle: bool,
) -> std::time::Duration {
    match idle {
        true => (last * 2).min(IDLE_EVERY.max(every)),
        false => every,
    }
}

/// Runs one checkpoint in `mode`; returns the frames in the log it found and how many of them
/// are in the database.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64)> {
    let started = std::time::Instant::now();
    let (busy, frames, copied) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
    // Frames in the log and frames copied into the database so far; `busy` says a RESTART
    // found the writer or a reader in the way (the log did not start over).
    tracing::debug!(
        mode,
        ms = started.elapsed().as_secs_f64() * 1e3,
        busy,
        frames,
        copied,
        "checkpoint"
    );
    Ok((frames, copied))
}

/// Runs one transaction-control statement from the statement cache (parsing it for every
/// job showed in profiles).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    control(conn, "SAVEPOINT job")?;
    let result = f(conn);
    let end = if result.is_ok() {
        control(conn, "RELEASE job")
    } else {
        // Identifiers this job attached are gone again: forget them. Audit entries it moved
        // into the chain are waiting again.
        cache::clear();
        govern::audit_may_wait();
        control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"))
    };
    match (result, end) {
        (Ok(r), Ok(())) => Ok(r),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
    }
}

/// A write group taking longer than this is logged at debug level (`rapport_store=debug`),
/// with how long its jobs ran and how long the commit took.
const SLOW_GROUP: std::time::Duration = std::time::Duration::from_millis(5);

/// What the writer did over the last second, logged once a second at debug level
/// (`rapport_store=debug`) while it is busy: write groups, jobs, and how long running the
/// jobs and committing took (median and slowest), to see where a write's time goes.
#[derive(Default)]
struct GroupStats {
    since: Option<std::time::Instant>,
    groups: usize,
    jobs: usize,
    run_us: Vec<u32>,
    commit_us: Vec<u32>,
    slow_commits: usize,
    slow_commits_in_checkpoint: usize,
}

/// Commits longer than this are counted in the writer's per-second debug line, with how many
/// of them overlapped a checkpoint pass.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(3);

/// The checkpointer's passes, counted so the writer can tell whether one ran during a commit:
/// the count goes up when a pass starts and again when it ends, so it is odd while one runs.
///
/// Why: at 2,000 decisions/s in a noisy half hour, 89% of commits over 3 ms overlapped a
/// pass, while passes took only 8-12% of the time (BENCHMARKS.md): the pass's writes and
/// `fsync` of the database file share the disk with the commit's `fsync` of the log.
#[derive(Default)]
struct CheckpointPasses(std::sync::atomic::AtomicU64);

impl CheckpointPasses {
    fn during<R>(&self, pass: impl FnOnce() -> R) -> R {
        use std::sync::atomic::Ordering::SeqCst;
        self.0.fetch_add(1, SeqCst);
        let out = pass();
        self.0.fetch_add(1, SeqCst);
        out
    }

    fn now(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether a pass ran at some point between two readings of [`Self::now`].
    fn overlapped(before: u64, after: u64) -> bool {
        before % 2 == 1 || after != before
    }
}

impl GroupStats {
    fn add(
        &mut self,
        jobs: usize,
        ran: std::time::Duration,
        commit: std::time::Duration,
        in_checkpoint: bool,
    ) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        self.groups += 1;
        self.jobs += jobs;
        self.run_us
            .push(ran.as_micros().min(u32::MAX as u128) as u32);
        self.commit_us
            .push(commit.as_micros().min(u32::MAX as u128) as u32);
        if commit > SLOW_COMMIT {
            self.slow_commits += 1;
            self.slow_commits_in_checkpoint += usize::from(in_checkpoint);
        }
        if since.elapsed() >= std::time::Duration::from_secs(1) {
            let at = |v: &mut Vec<u32>, q: f64| {
                v.sort_unstable();
                v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e3
            };
            tracing::debug!(
                groups = self.groups,
                jobs = self.jobs,
                run_ms_p50 = at(&mut self.run_us, 0.5),
                run_ms_p99 = at(&mut self.run_us, 0.99),
                commit_ms_p50 = at(&mut self.commit_us, 0.5),
                commit_ms_p99 = at(&mut self.commit_us, 0.99),
                commit_ms_max = at(&mut self.commit_us, 1.0),
                slow_commits = self.slow_commits,
                slow_commits_in_checkpoint = self.slow_commits_in_checkpoint,
                "write groups in the last second"
            );
            *self = GroupStats::default();
        }
    }
}

/// The writer thread: takes the jobs waiting (up to [`MAX_GROUP`]), runs each in a savepoint of
/// one transaction, commits them together, then tells each job how the commit went.
///
/// Audit entries waiting in `audit_pending` (next-best-action offers') join the chain at the
/// end of the first group after they have waited [`AUDIT_BATCH_AGE`], in the same commit.
fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    audit_waiting: &AuditWaiting,
    passes: &CheckpointPasses,
) {
    let mut stats = GroupStats::default();
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            let msg = e.to_string();
            tracing::error!(error = %msg, "cannot begin write transaction");
            // Each job still runs (in autocommit mode it would commit piecemeal), so refuse
            // them all instead: nothing was applied.
            for job in jobs {
                drop(job);
            }
            continue;
        }
        // Holding the write lock now, so no other connection can commit until we do.
        cache::check_data_version(&conn);
        let started = std::time::Instant::now();
        let group = jobs.len();
        let completions: Vec<Completion> = jobs.into_iter().map(|job| job(&conn)).collect();
        if audit_waiting.due() {
            if let Err(e) = run_in_savepoint(&conn, govern::flush_deferred_audit) {
                tracing::error!(error = %e, "cannot move waiting audit entries into the chain; will retry");
            }
        }
        let ran = started.elapsed();
        let before = passes.now();
        let commit = control(&conn, "COMMIT").map_err(|e| e.to_string());
        let committed = started.elapsed();
        let in_checkpoint = CheckpointPasses::overlapped(before, passes.now());
        stats.add(group, ran, committed - ran, in_checkpoint);
        if committed > SLOW_GROUP {
            tracing::debug!(
                jobs = group,
                run_ms = ran.as_secs_f64() * 1e3,
                commit_ms = (committed - ran).as_secs_f64() * 1e3,
                in_checkpoint,
                "slow write group"
            );
        }
        if let Err(e) = &commit {
            tracing::error!(error = %e, "commit failed; rolling back the group");
            let _ = conn.execute_batch("ROLLBACK");
            cache::clear();
            govern::audit_may_wait();
        }
        // Before anyone hears of the commit, so an audit read that follows knows to flush.
        audit_waiting.note(govern::audit_deferred());
        for done in completions {
            done(commit.clone());
        }
    }
    // All senders are gone: waiting audit entries join the chain, and the WAL is folded back
    // into the database for a tidy shutdown.
    let flushed = control(&conn, "BEGIN IMMEDIATE")
        .map_err(StoreError::from)
        .and_then(|()| govern::flush_deferred_audit(&conn))
        .and_then(|_| control(&conn, "COMMIT").map_err(StoreError::from));
    if let Err(e) = flushed {
        tracing::warn!(error = %e, "waiting audit entries stay for the next start");
        let _ = conn.execute_batch("ROLLBACK");
    }
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

/// The plan SQLite chooses for `sql` with `params` on a freshly migrated in-memory database,
/// its steps joined by `; ` (for tests that check a query stays on an index).
#[cfg(test)]
pub(crate) fn query_plan(sql: &str, params: &[&dyn rusqlite::ToSql]) -> String {
    let mut conn = Connection::open_in_memory().expect("db");
    schema::migrate(&mut conn).expect("migrate");
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("plan");
    let steps = stmt
        .query_map(params, |r| r.get::<_, String>(3))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect::<Vec<_>>();
    steps.join("; ")
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    /// A cached statement is compiled once, however its parameters change: SQLite would
    /// otherwise recompile statements whose plan could use a bound value (here the ORDER BY
    /// and LIMIT beside `col = ?`) every time they are bound anew.
    #[test]
    fn cached_statements_are_not_compiled_again_when_rebound() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(dir.path()).unwrap();
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        super::configure(&conn).unwrap();
        let sql = "SELECT ts, name FROM events WHERE profile_id = ?1 AND workspace_id = ?2
                   ORDER BY ts DESC, seq DESC LIMIT ?3";
        for i in 0..5i64 {
            let mut st = conn.prepare_cached(sql).unwrap();
            let rows = st
                .query_map(rusqlite::params![format!("p{i}"), "ws", 10 + i], |_| Ok(()))
                .unwrap()
                .count();
            assert_eq!(rows, 0);
            if i == 4 {
                assert_eq!(st.get_status(StatementStatus::Run), 5);
                assert_eq!(st.get_status(StatementStatus::RePrepare), 0);
            }
        }
        drop(conn);
        store.close();
    }

    /// A commit overlapped a checkpoint pass if one was running when it began, or one
    /// started or ended before it finished.
    #[test]
    fn commits_know_whether_a_checkpoint_pass_overlapped_them() {
        let passes = super::CheckpointPasses::default();
        let idle = passes.now();
        assert!(!super::CheckpointPasses::overlapped(idle, passes.now()));
        let (inside, out) = passes.during(|| (passes.now(), 7));
        assert_eq!(out, 7);
        assert!(super::CheckpointPasses::overlapped(inside, passes.now()));
        assert!(super::CheckpointPasses::overlapped(idle, passes.now()));
        assert!(super::CheckpointPasses::overlapped(inside, inside));
        let after = passes.now();
        assert!(!super::CheckpointPasses::overlapped(after, passes.now()));
    }

    /// The checkpointer passes every `every` while frames arrive, backs off to
    /// `IDLE_EVERY` while none do, and comes straight back at the first new frame.
    #[test]
    fn checkpoint_passes_slow_down_only_while_the_log_is_idle() {
        use std::time::Duration;
        let every = Duration::from_millis(2);
        let mut wait = every;
        let mut seen = vec![];
        for _ in 0..8 {
            wait = super::next_wait(wait, every, true);
            seen.push(wait.as_millis());
        }
        assert_eq!(seen, [4, 8, 16, 32, 50, 50, 50, 50]);
        assert_eq!(super::next_wait(wait, every, false), every);
        // A setting above the idle ceiling is kept as it is.
        let slow = Duration::from_millis(250);
        assert_eq!(super::next_wait(slow, slow, true), slow);
    }

    /// An offer's audit entries, waiting in `audit_pending`.
    mod waiting_audit {
        use std::path::{Path, PathBuf};
        use std::sync::Arc;

        use chrono::Utc;
        use rapport_core::{Actor, AuditEntry, AuditRecord, IdentifierKind, GENESIS_HASH};
        use serde_json::json;

        use crate::conformance::{default_ws, event, profile_of, DynStore};
        use crate::conformance_nba::{contact, offer};
        use crate::sqlite::{database_path, govern, SqliteStore};
        use crate::AuditQuery;

        fn entry(ws: &rapport_core::WorkspaceId, action: &str, subject: &str) -> AuditEntry {
            AuditEntry::new(
                Some(ws.clone()),
                Actor::System,
                action,
                Some(subject.to_owned()),
                json!({"n": subject}),
            )
        }

        fn open(dir: &Path) -> (DynStore, PathBuf) {
            let store = SqliteStore::open(dir).expect("open");
            (Arc::new(store), database_path(dir))
        }

        /// (entries waiting, the whole chain), read straight from the file, past the store.
        fn raw(path: &Path) -> (i64, Vec<AuditRecord>) {
            let conn = rusqlite::Connection::open(path).expect("raw");
            let waiting = conn
                .query_row("SELECT count(*) FROM audit_pending", [], |r| r.get(0))
                .expect("count");
            let all = AuditQuery {
                ascending: true,
                limit: 100_000,
                ..Default::default()
            };
            (waiting, govern::audit_records(&conn, &all).expect("chain"))
        }

        fn assert_intact(chain: &[AuditRecord]) {
            let mut prev = GENESIS_HASH.to_owned();
            for (i, r) in chain.iter().enumerate() {
                assert_eq!(r.seq, i as i64 + 1, "no gaps");
                assert_eq!(r.prev_hash, prev, "linked to the one before");
                assert_eq!(r.hash, r.compute_hash(), "hash matches the fields");
                prev.clone_from(&r.hash);
            }
            assert!(
                chain.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
                "times never go back along the chain"
            );
        }

        fn subjects(chain: &[AuditRecord]) -> Vec<&str> {
            chain.iter().filter_map(|r| r.subject.as_deref()).collect()
        }

        /// Offers `ids` to one customer, each with its audit entry.
        async fn offer_to(store: &DynStore, ids: &[&str]) -> rapport_core::WorkspaceId {
            let ws = default_ws(store).await;
            let identify = json!({"type": "identify", "userId": "wa-1", "messageId": "wa-m1"});
            store
                .ingest(&ws, vec![event(identify)])
                .await
                .expect("ingest");
            let p = profile_of(store, &ws, IdentifierKind::UserId, "wa-1").await;
            for id in ids {
                let now = Utc::now();
                store
                    .record_nba_offers(
                        &ws,
                        vec![offer(id, &p, now)],
                        vec![contact(id, "fiber_discount", "email", now)],
                        vec![entry(&ws, "nba.offered", id)],
                    )
                    .await
                    .expect("offer");
            }
            ws
        }

        /// With nothing else written, the checkpointer wakes the writer and the entries join
        /// the chain by themselves, in the order they were recorded.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn waiting_entries_join_the_chain_without_another_write() {
            let dir = tempfile::tempdir().expect("dir");
            let (store, path) = open(dir.path());
            offer_to(&store, &["dec_wa_0", "dec_wa_1", "dec_wa_2"]).await;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let chain = loop {
                let (waiting, chain) = raw(&path);
                if waiting == 0 && chain.iter().any(|r| r.action == "nba.offered") {
                    break chain;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "still waiting: {waiting}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            assert_eq!(subjects(&chain), ["dec_wa_0", "dec_wa_1", "dec_wa_2"]);
            assert_intact(&chain);
            store.close();
        }

        /// Any other audited change appends after the entries waiting, so the chain keeps the
        /// order of the commits; and a read of the audit log sees them at once.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_later_entry_comes_after_the_waiting_ones_and_reads_see_them() {
            let dir = tempfile::tempdir().expect("dir");
            let (store, path) = open(dir.path());
            let ws = offer_to(&store, &["dec_wa_0", "dec_wa_1"]).await;
            store
                .append_audit(vec![entry(&ws, "test.later", "later")])
                .await
                .expect("append");
            let (waiting, chain) = raw(&path);
            assert_eq!(waiting, 0);
            assert_eq!(subjects(&chain), ["dec_wa_0", "dec_wa_1", "later"]);
            assert_intact(&chain);

            offer_to(&store, &["dec_wa_2"]).await;
            let read = store
                .audit_records(AuditQuery {
                    subject: Some("dec_wa_2".into()),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .expect("audit");
            assert_eq!(
                read.len(),
                1,
                "the read moved the waiting entry into the chain first"
            );
            store.close();
        }

        /// Entries a crash left waiting (committed with their offer, not yet linked) join the
        /// chain when the store opens again.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn entries_left_waiting_by_a_crash_join_the_chain_at_the_next_start() {
            let dir = tempfile::tempdir().expect("dir");
            let (store, path) = open(dir.path());
            let ws = offer_to(&store, &["dec_wa_0"]).await;
            store
                .append_audit(vec![entry(&ws, "test.before", "before")])
                .await
                .expect("append");
            store.close();
            drop(store);
            // What a crash between an offer's commit and its batch leaves behind.
            let conn = rusqlite::Connection::open(&path).expect("raw");
            conn.execute(
                "INSERT INTO audit_pending (at, workspace_id, actor, action, subject, details)
                 VALUES (?1, NULL, 'system', 'nba.offered', 'dec_crash', '{}')",
                [Utc::now().timestamp_millis()],
            )
            .expect("insert");
            drop(conn);
            let (waiting, before) = raw(&path);
            assert_eq!(waiting, 1);

            let (store, _) = open(dir.path());
            let (waiting, chain) = raw(&path);
            assert_eq!(waiting, 0);
            assert_eq!(chain.len(), before.len() + 1);
            assert_eq!(subjects(&chain), ["dec_wa_0", "before", "dec_crash"]);
            assert_intact(&chain);
            store.close();
        }
    }
}
