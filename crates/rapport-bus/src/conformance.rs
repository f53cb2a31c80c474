//! The bus contract as runnable checks.
