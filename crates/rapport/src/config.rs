//! Configuration: defaults < file (`--config`) < environment (`RAPPORT__SECTION__KEY`) < flags.
//! Unknown keys are errors, and validation reports every problem at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub ingest: IngestConfig,
    pub demo: DemoConfig,
    pub interpret: InterpretConfig,
    pub identity: IdentityConfig,
    pub governance: GovernanceConfig,
    pub log: LogConfig,
    pub bus: BusSection,
    pub routing: RoutingConfig,
    pub alerts: AlertsConfig,
    pub decisions: DecisionsConfig,
    pub churn: ChurnConfig,
    pub clv: ClvConfig,
}

/// Churn prediction on the workspace's own data: which events mean a customer left, which
/// traits are features, the label horizon, and the training schedule and risk-jump alerts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnConfig {
    /// Track events that mark a customer as gone.
    pub churn_events: Vec<String>,
    /// Traits read as features (as they stood at each cut-off).
    pub traits: Vec<String>,
    /// Days after a cut-off within which a churn event makes the label positive.
    pub horizon_days: u32,
    /// Past cut-offs a training takes snapshots at, one horizon apart.
    pub cutoffs: u32,
    /// Most customers a training reads (the most recently active).
    pub max_training_profiles: usize,
    /// How often each workspace's model is retrained (`24h`), or `off`.
    pub retrain_every: String,
    /// Rise in churn probability under one model version that raises an alert.
    pub jump_threshold: f64,
    /// Probability a jump must reach to raise an alert.
    pub alert_floor: f64,
    /// How often customers with new events are recomputed (`2s`).
    pub refresh_every: String,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        let d = rapport_server::churn::ChurnOptions::default();
        ChurnConfig {
            churn_events: d.features.churn_events,
            traits: d.features.traits,
            horizon_days: d.features.horizon_days,
            cutoffs: d.cutoffs,
            max_training_profiles: d.max_training_profiles,
            retrain_every: d
                .retrain_every
                .map(|e| humantime::format_duration(e).to_string())
                .unwrap_or_else(|| "off".into()),
            jump_threshold: d.jump_threshold,
            alert_floor: d.alert_floor,
            refresh_every: humantime::format_duration(d.refresh_every).to_string(),
        }
    }
}

impl ChurnConfig {
    /// The engine's options, or every problem at once.
    pub fn options(&self) -> Result<rapport_server::churn::ChurnOptions, Vec<String>> {
        let mut problems = Vec::new();
        let mut duration = |key: &str, raw: &str| match humantime::parse_duration(raw.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!("churn.{key} {raw:?}: {e}"));
                None
            }
        };
        let retrain_every = match self.retrain_every.trim() {
            "off" | "" => None,
            raw => duration("retrain_every", raw),
        };
        let refresh_every = duration("refresh_every", &self.refresh_every);
        let clean = |xs: &[String]| -> Vec<String> {
            xs.iter()
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        };
        let options = rapport_server::churn::ChurnOptions {
            features: rapport_predict::features::FeatureConfig {
                traits: clean(&self.traits),
                churn_events: clean(&self.churn_events),
                horizon_days: self.horizon_days,
            },
            cutoffs: self.cutoffs,
            max_training_profiles: self.max_training_profiles,
            retrain_every,
            jump_threshold: self.jump_threshold,
            alert_floor: self.alert_floor,
            refresh_every: refresh_every.unwrap_or_default(),
        };
        if refresh_every.is_some() {
            problems.extend(options.check());
        }
        if problems.is_empty() {
            Ok(options)
        } else {
            Err(problems)
        }
    }
}

/// Customer lifetime value on the workspace's own purchases: the horizon values are counted
/// over, the held-out days a training is measured on, and the training schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClvConfig {
    /// Days ahead a customer's value is counted over.
    pub horizon_days: u32,
    /// Newest days of purchases a training holds out to measure the model.
    pub holdout_days: u32,
    /// How often each workspace's model is retrained (`24h`), or `off`.
    pub retrain_every: String,
}

impl Default for ClvConfig {
    fn default() -> Self {
        let d = rapport_server::clv::ClvOptions::default();
        ClvConfig {
            horizon_days: d.horizon_days,
            holdout_days: d.holdout_days,
            retrain_every: d
                .retrain_every
                .map(|e| humantime::format_duration(e).to_string())
                .unwrap_or_else(|| "off".into()),
        }
    }
}

impl ClvConfig {
    /// The engine's options, or every problem at once.
    pub fn options(&self) -> Result<rapport_server::clv::ClvOptions, Vec<String>> {
        let mut problems = Vec::new();
        let retrain_every = match self.retrain_every.trim() {
            "off" | "" => None,
            raw => match humantime::parse_duration(raw) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(format!("clv.retrain_every {raw:?}: {e}"));
                    None
                }
            },
        };
        let options = rapport_server::clv::ClvOptions {
            horizon_days: self.horizon_days,
            holdout_days: self.holdout_days,
            retrain_every,
        };
        problems.extend(options.check());
        if problems.is_empty() {
            Ok(options)
        } else {
            Err(problems)
        }
    }
}

/// Predictive alerts: what raises them and where they are sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Levels (of five) sentiment must fall within a conversation to raise an alert.
    pub sentiment_drop_levels: u8,
    /// Escalation probability at or above which an alert is raised.
    pub escalation_threshold: f64,
    /// Where each new alert is POSTed as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let d = rapport_server::predictive::AlertOptions::default();
        AlertsConfig {
            sentiment_drop_levels: d.sentiment_drop_levels,
            escalation_threshold: d.escalation_threshold,
            webhook_url: d.webhook_url,
        }
    }
}

impl AlertsConfig {
    pub fn options(&self) -> rapport_server::predictive::AlertOptions {
        rapport_server::predictive::AlertOptions {
            sentiment_drop_levels: self.sentiment_drop_levels,
            escalation_threshold: self.escalation_threshold,
            webhook_url: self
                .webhook_url
                .as_ref()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty()),
        }
    }
}

/// Routing of conversations to agents: priority weights, time to first response per tier,
/// and how long an agent has to accept an offer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    pub weights: rapport_decide::routing::Weights,
    pub sla: SlaConfig,
    /// How long an offer waits for the agent to accept it before it goes to someone else.
    pub accept_timeout: String,
    /// The customer value that counts as half of the value scale.
    pub value_midpoint: f64,
    /// A priority at or above which the most senior eligible agent is preferred.
    pub senior_score: f64,
    /// A customer-value level (0..1) at or above which the most senior agent is preferred.
    pub senior_value: f64,
}

/// Time to first response per priority tier (`90s`, `15m`, `4h`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    pub low: String,
    pub normal: String,
    pub high: String,
    pub urgent: String,
}

fn duration_text(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl Default for RoutingConfig {
    fn default() -> Self {
        let p = rapport_decide::routing::RoutingPolicy::default();
        RoutingConfig {
            weights: p.weights,
            sla: SlaConfig {
                low: duration_text(p.sla.low),
                normal: duration_text(p.sla.normal),
                high: duration_text(p.sla.high),
                urgent: duration_text(p.sla.urgent),
            },
            accept_timeout: duration_text(p.accept_timeout),
            value_midpoint: p.value_midpoint,
            senior_score: p.senior_score,
            senior_value: p.senior_value,
        }
    }
}

impl Default for SlaConfig {
    fn default() -> Self {
        RoutingConfig::default().sla
    }
}

impl RoutingConfig {
    /// The routing policy, or every problem with it.
    pub fn policy(&self) -> Result<rapport_decide::routing::RoutingPolicy, Vec<String>> {
        let mut problems = Vec::new();
        let mut duration = |key: &str, raw: &str| match humantime::parse_duration(raw.trim()) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!(
                    "routing.{key} {raw:?} is not a duration such as \"90s\" or \"15m\": {e}"
                ));
                std::time::Duration::from_secs(1)
            }
        };
        let sla = rapport_decide::routing::SlaTargets {
            low: duration("sla.low", &self.sla.low),
            normal: duration("sla.normal", &self.sla.normal),
            high: duration("sla.high", &self.sla.high),
            urgent: duration("sla.urgent", &self.sla.urgent),
        };
        let accept_timeout = duration("accept_timeout", &self.accept_timeout);
        let policy = rapport_decide::routing::RoutingPolicy {
            weights: self.weights.clone(),
            sla,
            accept_timeout,
            value_midpoint: self.value_midpoint,
            senior_score: self.senior_score,
            senior_value: self.senior_value,
        };
        if problems.is_empty() {
            problems.extend(policy.check().into_iter().map(|p| format!("routing: {p}")));
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionsConfig {
    /// The next-best-action catalog (TOML, see docs/next-best-action.md). Unset,
    /// next-best-action is off. `POST /v1/decisions/catalog/reload` reads it again; a file
    /// with errors leaves the catalog in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Purposes customers give or refuse consent for, name → what it means to a customer.
    /// Entries in a config file are added to the standard five.
    pub purposes: std::collections::BTreeMap<String, String>,
    /// Keep salted hashes of an erased customer's identifiers so late events naming them are
    /// dropped instead of rebuilding the profile.
    pub erasure_tombstones: bool,
    /// Secret that signs links to customers' own pages (`/why/...`), at least 32 characters.
    /// Unset, a random one is made at each start, so links stop working after a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_secret: Option<Secret>,
    /// The oversight policy file (TOML) naming the high-stakes actions that wait for a
    /// person's approval. Unset, nothing waits (the demo uses the example policy). Edits to
    /// the file are picked up while running; a file with errors leaves the old policy in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
    /// Appended to every automated outbound message.
    pub ai_disclosure: String,
    /// Fairness audits of stored decisions run on a schedule; a crossed limit raises an alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fairness_audits: Vec<rapport_govern::fairness::scheduled::ScheduledAudit>,
}

/// A configuration value never shown: `Debug` and `config check` print `<redacted>`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Region (ISO 3166-1 alpha-2) for phone numbers written without a country code.
    pub default_phone_region: String,
    /// Strip `+tag` from every email's match key, not only for providers known to ignore it.
    pub strip_plus_tags_everywhere: bool,
    /// Apply the guards below in live stitching. `false` leaves only the built-in rule (two
    /// profiles that each have a user id never merge).
    pub guards: bool,
    /// Values that never identify anyone (compared trimmed, case-insensitively).
    pub blocked_values: Vec<String>,
    /// Regular expressions; an identifier value matching one identifies nobody.
    pub blocked_patterns: Vec<String>,
    /// Identifier kinds from strongest to weakest: when limits conflict, the stronger wins.
    pub priority: Vec<String>,
    /// Libraries (`context.library.name`) whose events count as authenticated when they carry
    /// a user id. Unset, a user id from any source authenticates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_sources: Option<Vec<String>>,
    /// Most identifiers of a kind a profile may hold, optionally counted within a window:
    /// `email = { max = 5, window_days = 365 }`. For `external`, per external system.
    pub limits: std::collections::BTreeMap<String, rapport_identity::guards::KindLimit>,
    /// External systems whose ids in `context.externalIds` (by `type`) identify customers.
    pub external_ids: Vec<String>,
    /// Traits holding an external system's id: trait name → system, e.g. `crm_id = "crm"`.
    pub external_id_traits: std::collections::BTreeMap<String, String>,
    /// Dedupe runs (`rapport profiles dedupe`, `POST /v1/identity/dedupe`) merge pairs of
    /// profiles at or above this match probability.
    pub dedupe_auto_merge: f64,
    /// Dedupe runs queue pairs at or above this probability (and below the auto-merge one)
    /// for a person to review.
    pub dedupe_review: f64,
}

impl IdentityConfig {
    /// The thresholds of dedupe runs.
    pub fn dedupe_thresholds(&self) -> rapport_server::dedupe::DedupeThresholds {
        rapport_server::dedupe::DedupeThresholds {
            auto_merge: self.dedupe_auto_merge,
            review: self.dedupe_review,
        }
    }

    /// The guards these settings describe, or every problem with them.
    pub fn guards(&self) -> Result<rapport_identity::IdentityGuards, Vec<String>> {
        use rapport_core::IdentifierKind;
        let mut problems = Vec::new();
        let mut priority = Vec::new();
        for k in &self.priority {
            match IdentifierKind::parse(k) {
                Some(kind) => priority.push(kind),
                None => problems.push(format!(
                    "identity.priority: {k:?} is not an identifier kind ({})",
                    kinds_list()
                )),
            }
        }
        let mut limits = std::collections::BTreeMap::new();
        for (k, limit) in &self.limits {
            match IdentifierKind::parse(k) {
                Some(kind) => {
                    limits.insert(kind, *limit);
                }
                None => problems.push(format!(
                    "identity.limits: {k:?} is not an identifier kind ({})",
                    kinds_list()
                )),
            }
        }
        for system in self
            .external_ids
            .iter()
            .chain(self.external_id_traits.values())
        {
            if rapport_core::Identifier::external(system, "x").is_err() {
                problems.push(format!(
                    "identity external system {system:?} must be lowercase letters, digits, `_` or `-` (at most 32)"
                ));
            }
        }
        let policy = rapport_identity::IdentityPolicy {
            blocked_values: self.blocked_values.clone(),
            blocked_patterns: self.blocked_patterns.clone(),
            limits,
            priority,
            trusted_sources: self.trusted_sources.clone(),
        };
        match rapport_identity::IdentityGuards::new(policy) {
            Ok(g) if problems.is_empty() => Ok(g),
            Ok(_) => Err(problems),
            Err(rapport_identity::IdentityError::InvalidSettings(more)) => {
                problems.extend(more.into_iter().map(|m| format!("identity: {m}")));
                Err(problems)
            }
            Err(e) => {
                problems.push(format!("identity: {e}"));
                Err(problems)
            }
        }
    }
}

fn kinds_list() -> String {
    rapport_core::IdentifierKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InterpretConfig {
    /// Keep customers' original message text; when false only the redacted text is stored.
    pub keep_raw_text: bool,
    /// Seconds between a node's checks of which intent model version each workspace uses
    /// (so a retraining on another node is picked up); 0 checks on every message.
    pub intent_model_check_secs: u64,
    /// Which models read customer messages: `embedded` (lexicons, rules and linear models
    /// built in; no download) or `neural` (the embedded models plus all-MiniLM-L6-v2 for
    /// sentiment and the default taxonomy's intents; needs a build with the cargo feature
    /// `neural` and `rapport models pull minilm`). Loaded at start-up; a missing model stops
    /// the start with the command that fetches it.
    pub model: String,
    /// Models directory for `model = "neural"` (default: $RAPPORT_MODELS_DIR, else
    /// ~/.cache/rapport/models).
    pub models_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, `HOST:PORT`.
    pub addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite`: the embedded store, for one node. `postgres`: a PostgreSQL database that
    /// several nodes share.
    pub backend: String,
    /// Where the embedded store keeps its files (`sqlite`).
    pub data_dir: PathBuf,
    /// The PostgreSQL connection URL or `key=value` string (`postgres`). It may hold a
    /// password, so it prints redacted everywhere.
    pub url: Option<SecretUrl>,
    /// The PostgreSQL schema holding Rapport's tables, created and migrated at start-up.
    pub schema: String,
    /// How long to keep retrying an unreachable PostgreSQL server at start-up, seconds.
    pub connect_timeout_secs: u64,
}

/// A connection URL that may hold a password. Its `Debug` and `Serialize` forms (what logs and
/// `rapport config check` show) hide the password; only [`SecretUrl::expose`] gives it out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL as configured, password included: for opening the connection, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`: in the user-info of a URL, in a
    /// `password` query parameter, or in a `password=` pair of a `key=value` string.
    pub fn redacted(&self) -> String {
        let raw = self.0.trim();
        let url_form = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|scheme| raw.strip_prefix(scheme).map(|rest| (*scheme, rest)));
        match url_form {
            Some((scheme, rest)) => {
                let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
                let authority = match authority.rsplit_once('@') {
                    Some((user_info, hosts)) => match user_info.split_once(':') {
                        Some((user, _password)) => format!("{user}:***@{hosts}"),
                        None => format!("{user_info}@{hosts}"),
                    },
                    None => authority.to_owned(),
                };
                let tail = match tail.split_once('?') {
                    Some((path, query)) => {
                        let query: Vec<String> = query
                            .split('&')
                            .map(|pair| match pair.split_once('=') {
                                Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                                    format!("{k}=***")
                                }
                                _ => pair.to_owned(),
                            })
                            .collect();
                        format!("{path}?{}", query.join("&"))
                    }
                    None => tail.to_owned(),
                };
                format!("{scheme}{authority}{tail}")
            }
            None => redact_key_value_password(raw),
        }
    }
}

/// Replaces the value of every `password` pair in a libpq `key=value` string (values may be
/// quoted with `'` and escape characters with `\`).
fn redact_key_value_password(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        let lower = rest.to_ascii_lowercase();
        let Some(at) = lower.find("password") else {
            out.push_str(rest);
            return out;
        };
        let after_key = &rest[at + "password".len()..];
        let after_eq = after_key.trim_start();
        let starts_key = at == 0 || rest[..at].ends_with(char::is_whitespace);
        if !starts_key || !after_eq.starts_with('=') {
            out.push_str(&rest[..at + "password".len()]);
            rest = after_key;
            continue;
        }
        out.push_str(&rest[..at]);
        out.push_str("password=***");
        let value = after_eq[1..].trim_start();
        rest = if let Some(quoted) = value.strip_prefix('\'') {
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            &quoted[end.min(quoted.len())..]
        } else {
            &value[value.find(char::is_whitespace).unwrap_or(value.len())..]
        };
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SecretUrl").field(&self.redacted()).finish()
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest single event, bytes (Segment: 32 KB).
    pub max_event_bytes: usize,
    /// Largest batch body, bytes (Segment: 500 KB).
    pub max_batch_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Seed of the generated company: the same seed gives the same company.
    pub seed: u64,
    pub customers: usize,
    /// Keep a trickle of new activity flowing after start-up.
    pub live: bool,
    /// Milliseconds between bursts of live activity.
    pub live_interval_ms: u64,
    /// Where the demo keeps its store (separate from real data).
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `rapport_server=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                addr: "127.0.0.1:8080".into(),
            },
            storage: StorageConfig {
                backend: "sqlite".into(),
                data_dir: PathBuf::from("rapport-data"),
                url: None,
                schema: "rapport".into(),
                connect_timeout_secs: 30,
            },
            ingest: IngestConfig {
                max_event_bytes: 32 * 1024,
                max_batch_bytes: 500 * 1024,
            },
            demo: DemoConfig {
                seed: 42,
                customers: 2000,
                live: true,
                live_interval_ms: 1500,
                data_dir: PathBuf::from("rapport-demo-data"),
            },
            identity: {
                let policy = rapport_identity::IdentityPolicy::default();
                IdentityConfig {
                    default_phone_region: "US".into(),
                    strip_plus_tags_everywhere: false,
                    guards: true,
                    blocked_values: policy.blocked_values,
                    blocked_patterns: policy.blocked_patterns,
                    priority: policy
                        .priority
                        .iter()
                        .map(|k| k.as_str().to_owned())
                        .collect(),
                    trusted_sources: policy.trusted_sources,
                    limits: policy
                        .limits
                        .iter()
                        .map(|(k, l)| (k.as_str().to_owned(), *l))
                        .collect(),
                    external_ids: Vec::new(),
                    external_id_traits: Default::default(),
                    dedupe_auto_merge: rapport_server::dedupe::DedupeThresholds::default()
                        .auto_merge,
                    dedupe_review: rapport_server::dedupe::DedupeThresholds::default().review,
                }
            },
            interpret: InterpretConfig {
                keep_raw_text: true,
                intent_model_check_secs: 5,
                model: "embedded".into(),
                models_dir: None,
            },
            governance: GovernanceConfig {
                purposes: rapport_govern::consent::PurposeRegistry::standard()
                    .iter()
                    .map(|(p, d)| (p.as_str().to_owned(), d.to_owned()))
                    .collect(),
                erasure_tombstones: true,
                link_secret: None,
                policy_file: None,
                ai_disclosure: rapport_server::engine::DEFAULT_AI_DISCLOSURE.to_owned(),
                fairness_audits: Vec::new(),
            },
            log: LogConfig {
                level: "info".into(),
            },
            bus: BusSection::default(),
            routing: RoutingConfig::default(),
            alerts: AlertsConfig::default(),
            decisions: DecisionsConfig::default(),
            churn: ChurnConfig::default(),
            clv: ClvConfig::default(),
        }
    }
}

/// The event bus between API nodes and workers (`rapport serve --mode api`, `rapport
/// worker`). An embedded `rapport serve` does not use it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BusSection {
    /// `nats` (NATS JetStream: API nodes and workers as separate processes, on any machines)
    /// or `inprocess` (the bus lives in memory inside `rapport serve --mode api`, which then
    /// runs its own worker: for development only, accepted events are lost if it dies).
    pub backend: String,
    /// The NATS server, `nats://HOST:PORT` (credentials in the URL are never printed).
    pub url: BusUrl,
    /// Namespace of every stream, consumer and bucket: deployments sharing a NATS server
    /// need different prefixes. Letters, digits, `_` and `-`, at most 32.
    pub prefix: String,
    /// Partitions events are spread over, by customer. Fixed for the life of a bus; every
    /// process of one prefix must agree.
    pub partitions: u16,
    /// A worker's hold on a partition lasts this long without renewal; a crashed worker's
    /// partitions move after about this long. Every process of one prefix must agree.
    pub lease_ttl_ms: u64,
    /// An event delivered to a worker that neither applies it nor fails it within this long
    /// (the worker died) is delivered again. Every process of one prefix must agree.
    pub ack_wait_ms: u64,
    /// Deliveries of an event that keeps failing before it is moved to the dead letters.
    pub max_attempts: u32,
    /// The longest an API node waits for the bus to confirm it stored an event; past that
    /// the request is answered 503 `bus_unavailable`.
    pub publish_timeout_ms: u64,
    /// How long one pull for a partition's next event waits.
    pub fetch_wait_ms: u64,
    /// A repeat of a messageId published within this window is dropped by the bus (later
    /// repeats are skipped by the store).
    pub dedupe_window_secs: u64,
    /// How long accepted events are kept on the bus after they are published.
    pub retention_hours: u64,
    /// Events one worker applies at once (each from a different partition).
    pub worker_concurrency: usize,
    /// Longest wait between attempts to reach the bus when it is down at start.
    pub connect_backoff_max_ms: u64,
    /// Copies NATS keeps of each stream: 1 for one server, 3 for a cluster of three.
    pub replicas: usize,
}

/// A bus URL; `Debug` and `config check` hide the password in it.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct BusUrl(String);

impl BusUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `<redacted>` (in each server of a
    /// comma-separated list).
    pub fn redacted(&self) -> String {
        self.0
            .split(',')
            .map(|one| match one.split_once("://") {
                Some((scheme, rest)) => match rest.rsplit_once('@') {
                    Some((user, host)) => {
                        let name = user.split_once(':').map_or(user, |(n, _)| n);
                        format!("{scheme}://{name}:<redacted>@{host}")
                    }
                    None => one.to_owned(),
                },
                None => one.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Debug for BusUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for BusUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl Default for BusSection {
    fn default() -> Self {
        let d = rapport_bus::BusConfig::default();
        let ms = |t: std::time::Duration| t.as_millis() as u64;
        Self {
            backend: "nats".into(),
            url: BusUrl("nats://127.0.0.1:4222".into()),
            prefix: d.prefix.as_str().to_owned(),
            partitions: d.partitions,
            lease_ttl_ms: ms(d.lease_ttl),
            ack_wait_ms: ms(d.ack_wait),
            max_attempts: d.max_attempts,
            publish_timeout_ms: ms(d.publish_timeout),
            fetch_wait_ms: ms(d.fetch_wait),
            dedupe_window_secs: d.dedupe_window.as_secs(),
            retention_hours: d.retention.as_secs() / 3600,
            worker_concurrency: 16,
            connect_backoff_max_ms: 30_000,
            replicas: d.replicas,
        }
    }
}

impl BusSection {
    /// The bus settings, or every problem with them.
    pub fn bus_config(&self) -> Result<rapport_bus::BusConfig, Vec<String>> {
        use std::time::Duration;
        let mut problems = Vec::new();
        let prefix = rapport_bus::Prefix::parse(&self.prefix)
            .map_err(|e| problems.push(format!("bus.prefix: {e}")))
            .unwrap_or_default();
        let cfg = rapport_bus::BusConfig {
            prefix,
            partitions: self.partitions,
            lease_ttl: Duration::from_millis(self.lease_ttl_ms),
            ack_wait: Duration::from_millis(self.ack_wait_ms),
            max_attempts: self.max_attempts,
            publish_timeout: Duration::from_millis(self.publish_timeout_ms),
            fetch_wait: Duration::from_millis(self.fetch_wait_ms),
            dedupe_window: Duration::from_secs(self.dedupe_window_secs),
            retention: Duration::from_secs(self.retention_hours.saturating_mul(3600)),
            replicas: self.replicas,
        };
        if let Err(rapport_bus::BusError::InvalidConfig(p)) = cfg.validate() {
            problems.extend(p.into_iter().map(|p| format!("bus: {p}")));
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = self.bus_config().err().unwrap_or_default();
        match self.backend.as_str() {
            "inprocess" => {}
            "nats" => {
                let url = self.url.expose();
                let scheme_ok = ["nats://", "tls://"].iter().any(|s| url.starts_with(s));
                if !scheme_ok || url.split_once("://").is_none_or(|(_, h)| h.is_empty()) {
                    problems.push(format!(
                        "bus.url {:?} is not a NATS URL such as \"nats://127.0.0.1:4222\"",
                        self.url.redacted()
                    ));
                }
            }
            other => problems.push(format!(
                "bus.backend {other:?} is not available; use \"nats\" or \"inprocess\""
            )),
        }
        if !(1..=1024).contains(&self.worker_concurrency) {
            problems.push("bus.worker_concurrency must be between 1 and 1024".into());
        }
        if self.connect_backoff_max_ms < 100 {
            problems.push("bus.connect_backoff_max_ms must be at least 100".into());
        }
        problems
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Config::default().server
    }
}
impl Default for StorageConfig {
    fn default() -> Self {
        Config::default().storage
    }
}
impl Default for IngestConfig {
    fn default() -> Self {
        Config::default().ingest
    }
}
impl Default for DemoConfig {
    fn default() -> Self {
        Config::default().demo
    }
}
impl Default for IdentityConfig {
    fn default() -> Self {
        Config::default().identity
    }
}
impl Default for InterpretConfig {
    fn default() -> Self {
        Config::default().interpret
    }
}
impl Default for GovernanceConfig {
    fn default() -> Self {
        Config::default().governance
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        Config::default().log
    }
}

/// Loads the layers below the flags. `env` is the process environment (passed in for tests).
pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, Vec<String>> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(f) = file {
        if !f.exists() {
            return Err(vec![format!("config file {} does not exist", f.display())]);
        }
        fig = fig.merge(Toml::file(f));
    }
    // `RAPPORT__SERVER__ADDR=...` sets `server.addr`. The environment is passed in rather than
    // read here, so tests can layer it without touching the process environment.
    for (k, v) in env {
        if let Some(path) = k.strip_prefix("RAPPORT__") {
            let key = path.to_ascii_lowercase().replace("__", ".");
            let value: figment::value::Value = v
                .parse()
                .unwrap_or_else(|e: std::convert::Infallible| match e {});
            fig = fig.merge(Serialized::default(&key, value));
        }
    }
    let config: Config = fig
        .extract()
        .map_err(|e| e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    config.validate()?;
    Ok(config)
}

impl StorageConfig {
    /// What is wrong with the storage settings; the settings of the backend not chosen are not
    /// checked.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match self.backend.as_str() {
            "sqlite" => {
                if self.data_dir.as_os_str().is_empty() {
                    problems.push("storage.data_dir is empty".into());
                }
            }
            "postgres" => {
                match &self.url {
                    None => problems.push(
                        "storage.url is required when storage.backend is \"postgres\" \
                         (e.g. postgres://rapport:PASSWORD@db.example.com:5432/rapport)"
                            .into(),
                    ),
                    Some(url) => {
                        if let Err(e) = rapport_store::postgres::check_url(url.expose()) {
                            problems.push(format!("storage.url {}: {e}", url.redacted()));
                        }
                    }
                }
                if !rapport_store::postgres::valid_schema_name(&self.schema) {
                    problems.push(format!(
                        "storage.schema {:?} must be lowercase ASCII letters, digits and _, \
                         start with a letter or _ (not pg_), and be at most 63 bytes",
                        self.schema
                    ));
                }
                if !(1..=3600).contains(&self.connect_timeout_secs) {
                    problems.push("storage.connect_timeout_secs must be between 1 and 3600".into());
                }
            }
            other => problems.push(format!(
                "storage.backend {other:?} is not a backend; use \"sqlite\" or \"postgres\""
            )),
        }
        problems
    }
}

impl Config {
    /// Every problem with the configuration, or `Ok`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.server.addr.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.addr {:?} is not HOST:PORT (e.g. 127.0.0.1:8080)",
                self.server.addr
            ));
        }
        problems.extend(self.storage.problems());
        if !(1024..=1024 * 1024).contains(&self.ingest.max_event_bytes) {
            problems.push("ingest.max_event_bytes must be between 1024 and 1048576".into());
        }
        if self.ingest.max_batch_bytes < self.ingest.max_event_bytes
            || self.ingest.max_batch_bytes > 16 * 1024 * 1024
        {
            problems.push(
                "ingest.max_batch_bytes must be at least max_event_bytes and at most 16 MiB".into(),
            );
        }
        if !(10..=200_000).contains(&self.demo.customers) {
            problems.push("demo.customers must be between 10 and 200000".into());
        }
        if self.interpret.intent_model_check_secs > 3600 {
            problems.push("interpret.intent_model_check_secs must be at most 3600".into());
        }
        match self.interpret.model.as_str() {
            "embedded" => {}
            "neural" if cfg!(feature = "neural") => {}
            "neural" => problems.push(
                "interpret.model = \"neural\" needs a build with the cargo feature `neural` \
                 (`cargo build --release -p rapport --features neural`) and \
                 `rapport models pull minilm`; \"embedded\" needs neither"
                    .into(),
            ),
            other => problems.push(format!(
                "interpret.model must be \"embedded\" or \"neural\", not {other:?}"
            )),
        }
        if self.demo.live_interval_ms < 50 {
            problems.push("demo.live_interval_ms must be at least 50".into());
        }
        let region = &self.identity.default_phone_region;
        if region.len() != 2
            || rapport_identity::standardize::country_code(region).ok() != Some(region.as_str())
        {
            problems.push(format!(
                "identity.default_phone_region {region:?} is not an ISO 3166-1 alpha-2 region such as \"US\" or \"GB\""
            ));
        }
        problems.extend(
            self.identity
                .dedupe_thresholds()
                .problems()
                .into_iter()
                .map(|p| format!("identity.dedupe: {p}")),
        );
        if let Err(errors) = self.identity.guards() {
            problems.extend(errors);
        }
        if self
            .governance
            .link_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            problems.push("governance.link_secret must be at least 32 characters".into());
        }
        problems.extend(self.bus.problems());
        if let Err(errors) = self.policy() {
            problems.extend(errors);
        }
        if let Err(errors) = self.nba_catalog() {
            problems.extend(errors);
        }
        let mut audit_names = std::collections::BTreeSet::new();
        for a in &self.governance.fairness_audits {
            problems.extend(
                a.problems()
                    .into_iter()
                    .map(|p| format!("governance.fairness_audits: {p}")),
            );
            if !audit_names.insert(a.name.as_str()) {
                problems.push(format!(
                    "governance.fairness_audits: two audits are named {:?}",
                    a.name
                ));
            }
        }
        if self.governance.ai_disclosure.trim().is_empty() {
            problems.push(
                "governance.ai_disclosure must not be empty: automated messages must say so".into(),
            );
        }
        if let Err(errors) = self.routing.policy() {
            problems.extend(errors);
        }
        problems.extend(self.alerts.options().check());
        if let Err(errors) = self.churn.options() {
            problems.extend(errors);
        }
        if let Err(errors) = self.clv.options() {
            problems.extend(errors);
        }
        if let Err(errors) = self.purposes() {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| format!("governance.purposes: {e}")),
            );
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            problems.push(format!(
                "log.level {:?} is not a valid filter",
                self.log.level
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The interpreter `interpret.model` asks for: `None` for the embedded default (built
    /// by the engine), the neural one loaded from the models directory otherwise.
    pub fn interpreter(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<rapport_interpret::Interpreter>>> {
        match self.interpret.model.as_str() {
            "neural" => {
                crate::models::neural_interpreter(self.interpret.models_dir.as_deref()).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// [`Config::engine_options`] with the interpreter `interpret.model` asks for loaded:
    /// for the commands that read customer messages (serve, demo, worker).
    pub fn engine_options_with_models(
        &self,
    ) -> anyhow::Result<rapport_server::engine::EngineOptions> {
        let mut options = self.engine_options();
        options.interpreter = self
            .interpreter()?
            .map(rapport_server::engine::SharedInterpreter);
        Ok(options)
    }

    pub fn engine_options(&self) -> rapport_server::engine::EngineOptions {
        let mut standardize = rapport_identity::standardize::StandardizePolicy {
            default_phone_region: self.identity.default_phone_region.clone(),
            ..Default::default()
        };
        standardize.email.strip_plus_tag_everywhere = self.identity.strip_plus_tags_everywhere;
        rapport_server::engine::EngineOptions {
            keep_raw_text: self.interpret.keep_raw_text,
            standardize,
            purposes: self
                .purposes()
                .unwrap_or_else(|_| rapport_govern::consent::PurposeRegistry::standard()),
            erasure_tombstones: self.governance.erasure_tombstones,
            link_secret: self
                .governance
                .link_secret
                .as_ref()
                .map(|s| s.expose().as_bytes().to_vec())
                .unwrap_or_else(rapport_server::engine::random_secret),
            policy: self
                .policy()
                .unwrap_or_else(|_| rapport_govern::policy::Policy::empty()),
            policy_file: self.governance.policy_file.clone(),
            ai_disclosure: self.governance.ai_disclosure.clone(),
            fairness_audits: self.governance.fairness_audits.clone(),
            guards: if self.identity.guards {
                self.identity.guards().ok()
            } else {
                None
            },
            external_ids: rapport_server::engine::ExternalIdSources {
                systems: self.identity.external_ids.clone(),
                traits: self.identity.external_id_traits.clone(),
            },
            routing: self.routing.policy().unwrap_or_default(),
            alerts: self.alerts.options(),
            nba_catalog: self.nba_catalog().ok().flatten(),
            nba_catalog_file: self.decisions.catalog.clone(),
            churn: self.churn.options().unwrap_or_default(),
            clv: self.clv.options().unwrap_or_default(),
            dedupe: self.identity.dedupe_thresholds(),
            intent_check_every: std::time::Duration::from_secs(
                self.interpret.intent_model_check_secs,
            ),
            interpreter: None,
        }
    }

    /// The next-best-action catalog the configuration names (`None` when none), or every
    /// problem in its file, each with its line.
    pub fn nba_catalog(
        &self,
    ) -> Result<Option<rapport_decide::nba::catalog::Catalog>, Vec<String>> {
        let Some(path) = &self.decisions.catalog else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![format!(
                "decisions.catalog {}: cannot be read: {e}",
                path.display()
            )]
        })?;
        rapport_decide::nba::catalog::Catalog::parse(&text)
            .map(Some)
            .map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| format!("decisions.catalog {}: {e}", path.display()))
                    .collect()
            })
    }

    /// The oversight policy the configuration names (empty when none), or every problem in
    /// its file, each with its line.
    pub fn policy(&self) -> Result<rapport_govern::policy::Policy, Vec<String>> {
        let Some(path) = &self.governance.policy_file else {
            return Ok(rapport_govern::policy::Policy::empty());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![format!(
                "governance.policy_file {}: cannot be read: {e}",
                path.display()
            )]
        })?;
        rapport_govern::policy::Policy::parse(&text).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| format!("governance.policy_file {}: {e}", path.display()))
                .collect()
        })
    }

    fn purposes(
        &self,
    ) -> Result<rapport_govern::consent::PurposeRegistry, Vec<rapport_govern::consent::RegistryError>>
    {
        rapport_govern::consent::PurposeRegistry::new(
            self.governance
                .purposes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    pub fn limits(&self) -> rapport_ingest::Limits {
        rapport_ingest::Limits {
            max_event_bytes: self.ingest.max_event_bytes,
            max_batch_bytes: self.ingest.max_batch_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        load(None, &env(pairs)).expect_err("invalid")
    }

    #[test]
    fn the_interpretation_model_is_checked() {
        let c = load(None, &env(&[])).expect("defaults");
        assert_eq!(c.interpret.model, "embedded");
        assert!(c.interpreter().expect("embedded").is_none());
        let p = problems(&[("RAPPORT__INTERPRET__MODEL", "bert")]);
        assert!(
            p.iter()
                .any(|x| x.contains("interpret.model") && x.contains("\"bert\"")),
            "{p:?}"
        );
        let neural = load(None, &env(&[("RAPPORT__INTERPRET__MODEL", "neural")]));
        if cfg!(feature = "neural") {
            let c = neural.expect("valid in a neural build");
            // An empty models directory: the start stops and says how to fetch the model.
            let mut c = c;
            let empty =
                std::env::temp_dir().join(format!("rapport-no-models-{}", std::process::id()));
            c.interpret.models_dir = Some(empty);
            let err = format!("{:#}", c.interpreter().expect_err("no model there"));
            assert!(err.contains("rapport models pull minilm"), "{err}");
        } else {
            let p = neural.expect_err("a build without the feature refuses it");
            assert!(
                p.iter().any(|x| x.contains("cargo feature `neural`")),
                "{p:?}"
            );
        }
    }

    #[test]
    fn postgres_settings_come_from_the_environment() {
        let c = load(
            None,
            &env(&[
                ("RAPPORT__STORAGE__BACKEND", "postgres"),
                (
                    "RAPPORT__STORAGE__URL",
                    "postgres://rapport:pw@db:5432/rapport",
                ),
                ("RAPPORT__STORAGE__SCHEMA", "tenant_7"),
                ("RAPPORT__STORAGE__CONNECT_TIMEOUT_SECS", "5"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.storage.backend, "postgres");
        assert_eq!(
            c.storage.url.as_ref().map(SecretUrl::expose),
            Some("postgres://rapport:pw@db:5432/rapport")
        );
        assert_eq!(c.storage.schema, "tenant_7");
        assert_eq!(c.storage.connect_timeout_secs, 5);
        let d = Config::default();
        assert_eq!(
            (
                d.storage.url,
                d.storage.schema.as_str(),
                d.storage.connect_timeout_secs
            ),
            (None, "rapport", 30)
        );
    }

    #[test]
    fn routing_is_configured_and_checked_as_a_whole() {
        let c = load(
            None,
            &env(&[
                ("RAPPORT__ROUTING__WEIGHTS__URGENCY", "5"),
                ("RAPPORT__ROUTING__SLA__URGENT", "2m"),
                ("RAPPORT__ROUTING__ACCEPT_TIMEOUT", "45s"),
            ]),
        )
        .expect("valid");
        let p = c.engine_options().routing;
        assert_eq!(p.weights.urgency, 5.0);
        assert_eq!(p.sla.urgent, std::time::Duration::from_secs(120));
        assert_eq!(p.accept_timeout, std::time::Duration::from_secs(45));
        let found = problems(&[
            ("RAPPORT__ROUTING__WEIGHTS__SLA", "-1"),
            ("RAPPORT__ROUTING__SLA__HIGH", "soon"),
            ("RAPPORT__ROUTING__ACCEPT_TIMEOUT", "0s"),
        ]);
        let routing: Vec<&String> = found.iter().filter(|p| p.starts_with("routing")).collect();
        assert_eq!(routing.len(), 1, "durations first: {found:?}");
        assert!(routing[0].contains("sla.high"), "{found:?}");
        let found = problems(&[
            ("RAPPORT__ROUTING__WEIGHTS__SLA", "-1"),
            ("RAPPORT__ROUTING__ACCEPT_TIMEOUT", "0s"),
            ("RAPPORT__ROUTING__SLA__URGENT", "8h"),
        ]);
        assert_eq!(
            found.iter().filter(|p| p.starts_with("routing")).count(),
            3,
            "{found:?}"
        );
    }

    #[test]
    fn identity_guards_are_configured_and_checked_as_a_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("rapport.toml");
        std::fs::write(
            &file,
            r#"
            [identity]
            blocked_values = ["nobody"]
            blocked_patterns = ["@mailinator\\.com$"]
            trusted_sources = ["analytics-node"]
            external_ids = ["crm"]
            external_id_traits = { billing_account = "billing" }
            [identity.limits]
            user_id = { max = 1 }
            email = { max = 3, window_days = 90 }
            external = { max = 1 }
            "#,
        )
        .expect("write");
        let c = load(Some(&file), &[]).expect("valid");
        let g = c.identity.guards().expect("valid guards");
        let p = g.policy();
        assert_eq!(p.blocked_values, vec!["nobody".to_owned()]);
        assert_eq!(p.trusted_sources, Some(vec!["analytics-node".to_owned()]));
        // Configured limits are laid over the defaults (which also limit other kinds).
        use rapport_core::IdentifierKind as K;
        assert_eq!(p.limits[&K::UserId].max, 1);
        assert_eq!(p.limits[&K::Email].max, 3);
        assert_eq!(p.limits[&K::Email].window_days, Some(90));
        assert_eq!(p.limits[&K::External].max, 1);
        let opts = c.engine_options();
        assert!(opts.guards.is_some());
        assert_eq!(opts.external_ids.systems, vec!["crm".to_owned()]);
        assert_eq!(opts.external_ids.traits["billing_account"], "billing");
        let off = load(None, &env(&[("RAPPORT__IDENTITY__GUARDS", "false")])).expect("valid");
        assert!(off.engine_options().guards.is_none());

        std::fs::write(
            &file,
            r#"
            [identity]
            blocked_patterns = ["("]
            priority = ["user_id", "fax"]
            external_ids = ["CRM"]
            [identity.limits]
            email = { max = 0 }
            pager = { max = 1 }
            "#,
        )
        .expect("write");
        let p = load(Some(&file), &[]).expect_err("invalid");
        assert_eq!(p.len(), 5, "every problem at once: {p:?}");
        assert!(p
            .iter()
            .any(|m| m.contains("\"fax\" is not an identifier kind")));
        assert!(p
            .iter()
            .any(|m| m.contains("\"pager\" is not an identifier kind")));
        assert!(p.iter().any(|m| m.contains("\"CRM\"")));
        assert!(p.iter().any(|m| m.contains("blocked pattern")));
        assert!(p
            .iter()
            .any(|m| m.contains("limit for email must be at least 1")));
        std::fs::write(&file, "[identity]\nsurprise = 1\n").expect("write");
        assert!(load(Some(&file), &[]).is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_next_best_action_catalog_is_checked_with_its_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let catalog = dir.path().join("nba.toml");
        std::fs::write(
            &catalog,
            "[traits]\nplan = \"string\"\n[[action]]\nid = \"a\"\nkind = \"upsell\"\nvalue = 1\neligibility = ['plann == \"x\"']\n",
        )
        .expect("write");
        let path = catalog.display().to_string();
        let env = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        let p = load(None, &env("RAPPORT__DECISIONS__CATALOG", &path)).expect_err("invalid");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("line 7") && p[0].contains("plann"), "{p:?}");
        std::fs::write(&catalog, crate::demo_nba::CATALOG).expect("write");
        let c = load(None, &env("RAPPORT__DECISIONS__CATALOG", &path)).expect("valid");
        let opts = c.engine_options();
        assert_eq!(opts.nba_catalog.expect("catalog").actions.len(), 6);
        assert_eq!(opts.nba_catalog_file.as_deref(), Some(catalog.as_path()));
        assert!(load(None, &[])
            .expect("valid")
            .engine_options()
            .nba_catalog
            .is_none());
    }

    #[test]
    fn storage_problems_are_named() {
        let p = problems(&[("RAPPORT__STORAGE__BACKEND", "oracle")]);
        assert!(
            p.iter().any(|m| m.contains("storage.backend \"oracle\"")
                && m.contains("\"sqlite\" or \"postgres\"")),
            "{p:?}"
        );

        let p = problems(&[
            ("RAPPORT__STORAGE__BACKEND", "postgres"),
            ("RAPPORT__STORAGE__SCHEMA", "Bad-Name"),
            ("RAPPORT__STORAGE__CONNECT_TIMEOUT_SECS", "0"),
        ]);
        assert_eq!(p.len(), 3, "every problem at once: {p:?}");
        assert!(p[0].starts_with("storage.url is required when storage.backend is \"postgres\""));
        assert!(p[1].starts_with("storage.schema \"Bad-Name\" must be lowercase"));
        assert!(p[2].starts_with("storage.connect_timeout_secs must be between 1 and 3600"));

        let p = problems(&[
            ("RAPPORT__STORAGE__BACKEND", "postgres"),
            (
                "RAPPORT__STORAGE__URL",
                "postgres://rapport:hunter2@db:notaport/x",
            ),
        ]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("storage.url postgres://rapport:***@db:notaport/x"),
            "{p:?}"
        );
        assert!(!p[0].contains("hunter2"), "{p:?}");

        // The other backend's settings are not checked.
        load(None, &env(&[("RAPPORT__STORAGE__SCHEMA", "Not Used")])).expect("sqlite");
        load(
            None,
            &env(&[
                ("RAPPORT__STORAGE__BACKEND", "postgres"),
                ("RAPPORT__STORAGE__URL", "host=db user=rapport password=x"),
                ("RAPPORT__STORAGE__DATA_DIR", ""),
            ]),
        )
        .expect("postgres");
    }

    #[test]
    fn the_url_never_shows_its_password() {
        let cases = [
            (
                "postgres://rapport:s3cret-pw@db.internal:5432/rapport",
                "postgres://rapport:***@db.internal:5432/rapport",
            ),
            (
                "postgresql://rapport:s3cret-pw@db1:5432,db2:5432/rapport?sslmode=require&password=s3cret-pw",
                "postgresql://rapport:***@db1:5432,db2:5432/rapport?sslmode=require&password=***",
            ),
            ("postgres://rapport@db/rapport", "postgres://rapport@db/rapport"),
            ("postgres://u:p%40ss@db/x", "postgres://u:***@db/x"),
            (
                "host=db user=rapport password=s3cret-pw dbname=rapport",
                "host=db user=rapport password=*** dbname=rapport",
            ),
            (
                "host=db password = 's3cret pw \\' quoted' dbname=rapport",
                "host=db password=*** dbname=rapport",
            ),
            ("host=db passwordless=1", "host=db passwordless=1"),
        ];
        for (raw, shown) in cases {
            let url = SecretUrl::new(raw);
            assert_eq!(url.redacted(), shown, "{raw}");
            assert_eq!(url.expose(), raw);
        }

        let mut config = Config::default();
        config.storage.backend = "postgres".into();
        config.storage.url = Some(SecretUrl::new("postgres://rapport:s3cret-pw@db/x"));
        let debug = format!("{config:?} {config:#?}");
        let json = serde_json::to_string(&config).expect("json");
        for text in [&debug, &json] {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("postgres://rapport:***@db/x"), "{text}");
        }
    }

    #[test]
    fn every_server_of_a_bus_url_list_hides_its_password() {
        let url = BusUrl("nats://a:pw1@n1:4222,nats://n2:4222,nats://b:pw2@n3:4222".into());
        assert_eq!(
            url.redacted(),
            "nats://a:<redacted>@n1:4222,nats://n2:4222,nats://b:<redacted>@n3:4222"
        );
        let mut config = Config::default();
        config.bus.url = url;
        config.bus.replicas = 3;
        assert!(config.bus.bus_config().is_ok());
        config.bus.replicas = 0;
        assert!(config.bus.bus_config().is_err());
    }
}
