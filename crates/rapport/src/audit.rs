//! `rapport audit verify` (walk the audit chain and name any broken link) and
//! `rapport bench audit` (append and verify rates, and the cost of a consent check, each
//! against a named reference measured in the same run).

use std::time::Instant;

use anyhow::{bail, Result};
use rapport_core::{
    Actor, AuditEntry, ConsentChange, ConsentState, Identifier, IdentifierKind, WorkspaceName,
};
use rapport_govern::audit::ChainVerifier;
use rapport_govern::consent::{Action, ConsentLedger, Gate, PurposeRegistry};
use rapport_store::{AuditQuery, Store};
use serde_json::json;

/// Records read per page while verifying.
const PAGE: usize = 20_000;

/// Hands every audit record to `f`, oldest first, a page at a time.
async fn walk(store: &dyn Store, mut f: impl FnMut(&rapport_core::AuditRecord)) -> Result<()> {
    let mut from = None;
    loop {
        let page = store
            .audit_records(AuditQuery {
                from_seq: from,
                ascending: true,
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        from = Some(last.seq);
        page.iter().for_each(&mut f);
        if page.len() < PAGE {
            return Ok(());
        }
    }
}

/// Walks the whole chain oldest first; prints what it found and fails if anything is broken.
pub async fn verify(store: &dyn Store, as_json: bool) -> Result<()> {
    let started = Instant::now();
    let mut v = ChainVerifier::new();
    walk(store, |r| v.push(r)).await?;
    let report = v.finish();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "checked {} audit records in {:.2} s; head {}",
            report.checked,
            started.elapsed().as_secs_f64(),
            report.head
        );
        for p in &report.problems {
            println!("  #{:<10} {:<10} {}", p.seq, p.kind, p.detail);
        }
        if report.more_problems > 0 {
            println!("  ... and {} more", report.more_problems);
        }
    }
    if !report.ok {
        bail!("the audit log has been tampered with");
    }
    if !as_json {
        println!("the chain is intact");
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct AuditBenchArgs {
    /// Audit records to append (and then verify).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Records per append call.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
}

struct Marketing;
impl Action for Marketing {
    fn kind(&self) -> &str {
        "email.marketing"
    }
    fn purposes(&self) -> Vec<rapport_core::Purpose> {
        vec![rapport_core::Purpose::parse("marketing_email").expect("purpose")]
    }
}

fn entry(i: usize) -> AuditEntry {
    AuditEntry::new(
        None,
        Actor::ApiKey("key_bench".into()),
        "consent.granted",
        Some(format!("prof_{i:032x}")),
        json!({"purpose": "marketing_email", "source": "api"}),
    )
}

pub async fn bench(args: AuditBenchArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "machine: {} cores; {} records in batches of {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.records,
        args.batch
    );

    // Reference: the same rows into a bare SQLite table with the same durability, no hashing,
    // no chain lookup.
    let raw_rate = {
        let conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, at INTEGER, workspace_id TEXT, actor TEXT,
             action TEXT, subject TEXT, details TEXT, prev_hash TEXT, hash TEXT)",
        )?;
        let started = Instant::now();
        let mut done = 0;
        while done < args.records {
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO t (at, workspace_id, actor, action, subject, details, prev_hash, hash)
                     VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for i in done..(done + args.batch).min(args.records) {
                    let e = entry(i);
                    stmt.execute(rusqlite::params![
                        0i64,
                        e.actor.encode(),
                        e.action,
                        e.subject,
                        e.details.to_string(),
                        "0".repeat(64),
                        "0".repeat(64)
                    ])?;
                }
            }
            tx.commit()?;
            done += args.batch;
        }
        args.records as f64 / started.elapsed().as_secs_f64()
    };

    let store = rapport_store::sqlite::SqliteStore::open(&dir.path().join("store"))?;
    let started = Instant::now();
    let mut done = 0;
    while done < args.records {
        let n = args.batch.min(args.records - done);
        store
            .append_audit((done..done + n).map(entry).collect())
            .await?;
        done += n;
    }
    let append_rate = args.records as f64 / started.elapsed().as_secs_f64();

    // Single appends from 16 concurrent callers (group commit batches them).
    let single = 20_000.min(args.records);
    let store = std::sync::Arc::new(store);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..single / 16 {
                s.append_audit(vec![entry(t * 1_000_000 + i)]).await?;
            }
            Ok::<_, rapport_store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let single_rate = (single / 16 * 16) as f64 / started.elapsed().as_secs_f64();

    // Verification against a plain read of the same rows.
    let started = Instant::now();
    let mut read = 0u64;
    walk(store.as_ref(), |_| read += 1).await?;
    let read_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut v = ChainVerifier::new();
    walk(store.as_ref(), |r| v.push(r)).await?;
    let verify_secs = started.elapsed().as_secs_f64();
    let report = v.finish();
    if !report.ok {
        bail!("the benchmark chain does not verify: {:?}", report.problems);
    }

    // Consent check: the gate alone, and the gate with the consent history read from the
    // store, against reading a profile (the read any decision makes anyway).
    let ws = store
        .workspace_by_name(&WorkspaceName::default_workspace())
        .await?
        .expect("default workspace")
        .id;
    let uid = Identifier::new(IdentifierKind::UserId, "bench-consent")?;
    store
        .ingest(
            &ws,
            vec![rapport_store::conformance::event(
                json!({"type": "identify", "userId": "bench-consent", "messageId": "bench-1"}),
            )],
        )
        .await?;
    let profile = store
        .profile_by_identifier(&ws, &uid)
        .await?
        .expect("profile");
    let purposes = PurposeRegistry::standard();
    let changes: Vec<ConsentChange> = purposes
        .iter()
        .flat_map(|(p, _)| {
            [
                ConsentState::Granted,
                ConsentState::Withdrawn,
                ConsentState::Granted,
            ]
            .into_iter()
            .enumerate()
            .map(move |(i, s)| ConsentChange {
                purpose: p.clone(),
                state: s,
                source: "api".into(),
                at: chrono::Utc::now() - chrono::Duration::minutes(10 - i as i64),
            })
        })
        .collect();
    store
        .record_consents(&ws, &profile.id, changes, vec![])
        .await?;
    let gate = Gate::new(purposes);
    let history = store.consents(&ws, &profile.id).await?;
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let ledger = ConsentLedger::from_history(&history);
        let ok = gate.check(&profile.id, &ledger, Marketing);
        std::hint::black_box(ok.is_ok());
    }
    let gate_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let rounds = 2_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let history = store.consents(&ws, &profile.id).await?;
        let ledger = ConsentLedger::from_history(&history);
        std::hint::black_box(gate.check(&profile.id, &ledger, Marketing).is_ok());
    }
    let full_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(store.profile(&ws, &profile.id).await?);
    }
    let profile_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;

    // The oversight policy's check of one action (the example policy's rules, a customer
    // with a dozen traits), and both checks together as a decision makes them, from the
    // stored consent history on.
    let policy = rapport_govern::policy::Policy::example();
    let params: serde_json::Map<String, serde_json::Value> = json!({
        "amount": 80, "currency": "EUR", "channel": "email", "percent": 15
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let traits: serde_json::Map<String, serde_json::Value> = json!({
        "name": "Bench Customer", "email": "bench@example.com", "plan": "fiber-500",
        "tier": "gold", "vulnerable": false, "age_band": "35-44", "country": "DE",
        "tenure_months": 31, "lifetime_value": 1840.5, "contract_end": "2027-03-01",
        "city": "Berlin", "segment": "family"
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let rounds = 20_000;
    let started = Instant::now();
    for kind in ["refund", "offer.discount", "credit", "message.service"]
        .iter()
        .cycle()
        .take(rounds)
    {
        let subject = rapport_govern::policy::Subject {
            kind,
            params: &params,
            traits: &traits,
        };
        std::hint::black_box(policy.assess(&subject).is_high_stakes());
    }
    let policy_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let rounds = 2_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let history = store.consents(&ws, &profile.id).await?;
        let ledger = ConsentLedger::from_history(&history);
        std::hint::black_box(gate.check(&profile.id, &ledger, Marketing).is_ok());
        let subject = rapport_govern::policy::Subject {
            kind: "offer.discount",
            params: &params,
            traits: &traits,
        };
        std::hint::black_box(policy.assess(&subject).is_high_stakes());
    }
    let both_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;

    println!(
        "audit append, batches of {}:  {append_rate:>10.0} records/s",
        args.batch
    );
    println!(
        "raw SQLite, same rows:       {raw_rate:>10.0} records/s  (ratio {:.2})",
        append_rate / raw_rate
    );
    println!("audit append, single x16:    {single_rate:>10.0} records/s");
    println!(
        "verify {} records:      {verify_secs:>10.2} s  ({:.0} records/s; plain read {read_secs:.2} s, ratio {:.2})",
        report.checked,
        report.checked as f64 / verify_secs,
        verify_secs / read_secs.max(1e-9)
    );
    println!("consent gate alone:          {gate_us:>10.2} µs per check (15-decision history)");
    println!(
        "consent gate with store read:{full_us:>10.2} µs per check (profile read alone {profile_us:.2} µs)"
    );
    println!(
        "oversight policy alone:      {policy_us:>10.2} µs per action ({} rules)",
        policy.rules().len()
    );
    println!(
        "consent + policy, store read:{both_us:>10.2} µs per decision (profile read alone {profile_us:.2} µs)"
    );
    Ok(())
}
