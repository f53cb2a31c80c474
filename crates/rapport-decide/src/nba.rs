//! Next-best-action arbitration (see the crate docs).
