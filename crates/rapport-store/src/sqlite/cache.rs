//! The writer thread's memory of which profile each identifier belongs to, so stitching an
//! event usually costs no identity query.
//!
//! It lives in a thread-local of the writer thread and is only ever trusted there. It is
//! emptied whenever it could be wrong: after a merge (identifiers move), after a job or a
//! commit is rolled back (attached identifiers vanish), and when another connection (another
//! process, such as `rapport import`) has committed, which SQLite reports through
//! `PRAGMA data_version`.

use std::cell::RefCell;
use std::collections::HashMap;

use rapport_core::IdentifierKind;

/// Entries kept before the cache starts over; bounds its memory (about 100 bytes an entry).
const CAPACITY: usize = 500_000;

thread_local! {
    static CACHE: RefCell<HashMap<(String, IdentifierKind, String), String>> = RefCell::new(HashMap::new());
    static DATA_VERSION: RefCell<Option<i64>> = const { RefCell::new(None) };
}

pub(super) fn get(ws: &str, kind: IdentifierKind, value: &str) -> Option<String> {
    CACHE.with(|c| {
        c.borrow()
            .get(&(ws.to_owned(), kind, value.to_owned()))
            .cloned()
    })
}

pub(super) fn put(ws: &str, kind: IdentifierKind, value: &str, profile: &str) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert((ws.to_owned(), kind, value.to_owned()), profile.to_owned());
    });
}

pub(super) fn clear() {
    CACHE.with(|c| c.borrow_mut().clear());
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
