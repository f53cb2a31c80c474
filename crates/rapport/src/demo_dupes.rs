//! Near-duplicate customers in the demo company, and the dedupe run at start-up that finds
//! them: a few customers who also signed up as guests with a typo in their name and another
//! email (merged automatically), a few who look alike but moved house and changed their
//! contact details (queued for a person), and one who opened a second account with the same
//! phone (two user ids: the identity guard refuses the merge and a person sees the pair).

use anyhow::{anyhow, Result};
use chrono::{Duration, Utc};
use rapport_core::{Actor, Identifier, IdentifierKind, WorkspaceId};
use rapport_ingest::parse_value;
use rapport_server::dedupe::DedupeReport;
use rapport_server::engine::Engine;
use serde_json::{json, Value};

/// Guest sign-ups that match their customer well (merged), look-alikes (reviewed), and
/// second accounts (refused by the guard, reviewed).
const MERGED: usize = 3;
const REVIEWED: usize = 2;
const SECOND_ACCOUNTS: usize = 1;

/// A typo a person makes in their own name: the third letter typed twice.
fn typo(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let at = chars.len().min(3);
    chars[..at]
        .iter()
        .chain(chars.get(at.saturating_sub(1)))
        .chain(&chars[at..])
        .collect()
}

fn text(traits: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    traits.get(key).and_then(Value::as_str).map(str::to_owned)
}

struct Original {
    user_id: String,
    first: String,
    last: String,
    phone: String,
}

/// US customers with a usable phone, in customer order (their addresses and postcodes can
/// be made valid without knowing other countries' formats).
async fn originals(
    engine: &Engine,
    ws: &WorkspaceId,
    customers: usize,
    want: usize,
) -> Result<Vec<Original>> {
    let mut out = Vec::new();
    for idx in 3..customers {
        if out.len() == want {
            break;
        }
        let user_id = format!("u_{:06}", idx + 1);
        let id = Identifier::new(IdentifierKind::UserId, &user_id).map_err(|e| anyhow!(e))?;
        let Some(p) = engine.store().profile_by_identifier(ws, &id).await? else {
            continue;
        };
        let t = &p.traits;
        let (Some(first), Some(last), Some(phone)) = (
            text(t, "first_name"),
            text(t, "last_name"),
            text(t, "phone"),
        ) else {
            continue;
        };
        let has_phone = p
            .identities
            .iter()
            .any(|i| i.kind() == IdentifierKind::Phone);
        if text(t, "country").as_deref() != Some("US") || !has_phone || first.chars().count() < 3 {
            continue;
        }
        out.push(Original {
            user_id,
            first,
            last,
            phone,
        });
    }
    Ok(out)
}

fn event(id: String, at: chrono::DateTime<Utc>, who: Value, traits: Value) -> Value {
    let mut e = json!({
        "type": "identify", "messageId": id, "timestamp": at.to_rfc3339(),
        "traits": traits, "context": {"channel": "web"},
    });
    if let (Some(e), Some(w)) = (e.as_object_mut(), who.as_object()) {
        e.extend(w.clone());
    }
    e
}

/// Adds the near-duplicates through the ingest path, then runs dedupe as a person would
/// (`rapport profiles dedupe`), with the configured thresholds.
pub async fn seed(engine: &Engine, ws: &WorkspaceId, customers: usize) -> Result<DedupeReport> {
    let found = originals(engine, ws, customers, MERGED + REVIEWED + SECOND_ACCOUNTS).await?;
    let now = Utc::now();
    let mut events = Vec::new();
    for (k, o) in found.iter().enumerate() {
        let n = k + 1;
        let birthday = format!("19{}-{:02}-{:02}", 60 + n * 4, 1 + n, 3 + n * 2);
        let address = json!({"street": format!("{} {} Street", 10 + n * 7, ["Oak", "Maple", "Cedar", "Elm", "Pine", "Birch"][k % 6]),
            "city": "Springfield", "postalCode": format!("{:05}", 62701 + n), "country": "US"});
        // The customer completes their profile.
        events.push(event(
            format!("demo-dup-{n}-profile"),
            now - Duration::days(20),
            json!({"userId": o.user_id}),
            json!({"birthday": birthday, "address": address}),
        ));
        let email = format!("{}.{}.{n}@mailbox.example.org", o.first, o.last).to_lowercase();
        let (who, traits) = if k < MERGED {
            // A guest checkout: a typo in the name, another email, same birthday and address.
            (
                json!({"anonymousId": format!("demo-guest-{n}")}),
                json!({"first_name": typo(&o.first), "last_name": o.last,
                    "name": format!("{} {}", typo(&o.first), o.last),
                    "email": email, "birthday": birthday, "address": address}),
            )
        } else if k < MERGED + REVIEWED {
            // Same name and birthday, but other contact details and another address.
            let phone = format!("+1 217 555 01{:02}", 80 + n);
            let elsewhere = json!({"street": format!("{} Lake Road", 400 + n), "city": "Chicago",
                "postalCode": format!("{:05}", 60601 + n), "country": "US"});
            (
                json!({"anonymousId": format!("demo-lookalike-{n}")}),
                json!({"first_name": o.first, "last_name": o.last,
                    "name": format!("{} {}", o.first, o.last), "email": email,
                    "phone": phone, "birthday": birthday, "address": elsewhere}),
            )
        } else {
            // A second account with the same phone: two user ids.
            (
                json!({"userId": format!("u_dup_{n:03}"), "anonymousId": format!("demo-second-{n}")}),
                json!({"first_name": typo(&o.first), "last_name": o.last,
                    "name": format!("{} {}", typo(&o.first), o.last),
                    "email": email, "phone": o.phone}),
            )
        };
        events.push(event(
            format!("demo-dup-{n}-signup"),
            now - Duration::days(9 - k as i64),
            who,
            traits,
        ));
    }
    let received = Utc::now();
    let parsed = events
        .into_iter()
        .map(|v| parse_value(v, received).map_err(|e| anyhow!("demo duplicate rejected: {e}")))
        .collect::<Result<Vec<_>>>()?;
    engine.ingest(ws, parsed).await?;
    let report = engine
        .dedupe(ws, engine.dedupe_thresholds(), false, Actor::System)
        .await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_typo_doubles_the_third_letter() {
        assert_eq!(super::typo("Maria"), "Marria");
        assert_eq!(super::typo("Al"), "All");
        assert_eq!(super::typo("Jonathan"), "Jonnathan");
    }
}
