//! Rapport's identity stage, the data-integrity library. It owns:
//!
//! - **standardization** ([`standardize`]): types that can only be built valid and keep the
//!   raw value beside the standardized one ([`Email`] with a policy-driven match key,
//!   [`PhoneE164`], [`PersonName`] with nickname-aware `canonical_first`, [`PostalAddress`]
//!   with postcode checks, [`IsoDate`], ISO 3166 country codes), and
//!   [`standardize_traits`], which reports refused values as [`DataQualityIssue`]s;
//! - **identity-graph guards** ([`guards`]): a TOML-configurable [`IdentityPolicy`] and the pure
//!   [`decide_stitch`] function deciding which profiles an event may merge and which
//!   identifiers it may attach, each refusal with a reason for the merge log;
//! - **probabilistic record matching** ([`matching`]): Fellegi-Sunter with EM-estimated
//!   parameters, blocking, term-frequency adjustments, explainable scores, clustering and
//!   evaluation, in dedupe and link modes, with [`csv_io`] for the CLI.
//!
//! It does not own storage of the graph or the merge log (the store does), HTTP (the server)
//! or argument parsing (the CLI wraps [`matching::dedupe`] and [`matching::link`]). It is pure
//! apart from [`csv_io`] and the file-reading entry points of [`matching`].

pub mod csv_io;
pub mod error;
pub mod guards;
pub mod matching;
pub mod standardize;

pub use error::{IdentityError, ValueProblem};
pub use guards::{decide_stitch, IdentityGuards, IdentityPolicy, StitchDecision};
pub use matching::{dedupe, link, MatchOptions, MatchReport};
pub use standardize::{
    standardize_traits, DataQualityIssue, Email, EmailPolicy, IsoDate, PersonName, PhoneE164,
    PostalAddress, StandardizePolicy,
};
