//! The writer thread's memory of which profile each identifier belongs to, so stitching an
//! event usually costs no identity query.
//!
//! It lives in a thread-local of the writer thread and is only ever trusted there. A merge
//! moves every identifier of the merged profile to the survivor, so the cache notes the
//! redirect and follows it on the next read, instead of forgetting everything: with live
//! stitching merging every few events, emptying it at each merge sent most lookups back to
//! the database. It is emptied whenever it could be wrong: after a job or a commit is rolled
//! back (attached identifiers vanish), after an unmerge or an erasure, and when another
//! connection (another process, such as `rapport import`) has committed, which SQLite reports
//! through `PRAGMA data_version`.

use std::cell::RefCell;
use std::collections::HashMap;

use rapport_core::IdentifierKind;

/// Entries kept before the cache starts over; bounds its memory (about 100 bytes an entry).
const CAPACITY: usize = 500_000;

type Key = (String, IdentifierKind, String);

thread_local! {
    static CACHE: RefCell<HashMap<Key, String>> = RefCell::new(HashMap::new());
    /// Merged profile -> the profile it was merged into, for merges since the cache was last
    /// emptied.
    static MERGED: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    static DATA_VERSION: RefCell<Option<i64>> = const { RefCell::new(None) };
}

pub(super) fn get(ws: &str, kind: IdentifierKind, value: &str) -> Option<String> {
    let key = (ws.to_owned(), kind, value.to_owned());
    let cached = CACHE.with(|c| c.borrow().get(&key).cloned())?;
    let resolved = MERGED.with(|m| {
        let m = m.borrow();
        let mut p = &cached;
        // Each merge points at a profile that was live when it happened, so the chain ends;
        // the bound only guards against a bug turning it into a loop.
        for _ in 0..64 {
            match m.get(p) {
                Some(next) => p = next,
                None => return Some(p.clone()),
            }
        }
        None
    });
    match resolved {
        Some(p) if p == cached => Some(p),
        Some(p) => {
            // Remember the end of the chain, so the next read goes straight there.
            CACHE.with(|c| c.borrow_mut().insert(key, p.clone()));
            Some(p)
        }
        None => {
            clear();
            None
        }
    }
}

pub(super) fn put(ws: &str, kind: IdentifierKind, value: &str, profile: &str) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CAPACITY {
            c.clear();
            MERGED.with(|m| m.borrow_mut().clear());
        }
        c.insert((ws.to_owned(), kind, value.to_owned()), profile.to_owned());
    });
}

/// Notes that every identifier of `loser` now belongs to `survivor`.
pub(super) fn merged(loser: &str, survivor: &str) {
    MERGED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= CAPACITY {
            m.clear();
            CACHE.with(|c| c.borrow_mut().clear());
        }
        m.insert(loser.to_owned(), survivor.to_owned());
    });
}

pub(super) fn clear() {
    CACHE.with(|c| c.borrow_mut().clear());
    MERGED.with(|m| m.borrow_mut().clear());
}

/// Empties the cache if another connection committed since the last check.
pub(super) fn check_data_version(conn: &rusqlite::Connection) {
    let now: Option<i64> = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok();
    DATA_VERSION.with(|v| {
        let mut v = v.borrow_mut();
        if now.is_none() || *v != now {
            clear();
        }
        *v = now;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_merges_to_the_last_survivor() {
        clear();
        put("ws", IdentifierKind::Email, "a@example.com", "p1");
        put("ws", IdentifierKind::AnonymousId, "dev-1", "p2");
        put("ws", IdentifierKind::UserId, "u-3", "p3");
        merged("p1", "p2");
        merged("p2", "p3");
        assert_eq!(
            get("ws", IdentifierKind::Email, "a@example.com").as_deref(),
            Some("p3")
        );
        assert_eq!(
            get("ws", IdentifierKind::AnonymousId, "dev-1").as_deref(),
            Some("p3")
        );
        assert_eq!(
            get("ws", IdentifierKind::UserId, "u-3").as_deref(),
            Some("p3")
        );
        // Another workspace's identifier of the same value is not this one.
        assert_eq!(get("other", IdentifierKind::Email, "a@example.com"), None);
        clear();
        assert_eq!(get("ws", IdentifierKind::Email, "a@example.com"), None);
    }

    #[test]
    fn a_redirect_loop_empties_the_cache_instead_of_answering() {
        clear();
        put("ws", IdentifierKind::Email, "b@example.com", "p1");
        merged("p1", "p2");
        merged("p2", "p1");
        assert_eq!(get("ws", IdentifierKind::Email, "b@example.com"), None);
        assert_eq!(get("ws", IdentifierKind::Email, "b@example.com"), None);
    }
}
