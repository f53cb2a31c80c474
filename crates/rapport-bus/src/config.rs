//! Settings shared by every bus implementation, the names derived from the prefix, and worker
//! identities.

use std::fmt;
use std::time::Duration;

use crate::BusError;

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The namespace of one bus. Every stream, consumer, subject and key-value bucket name is
/// derived from it, so two deployments (or two test runs) on one broker never see each
/// other's messages. Letters, digits, `_` and `-`, at most 32 characters: that is what is
/// valid in a NATS stream name, a bucket name and a subject token alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, BusError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.bytes().all(is_name_char) {
            return Err(BusError::InvalidInput(format!(
                "bus prefix {raw:?} must be 1-{} letters, digits, '_' or '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A prefix nobody else uses, for tests and throwaway runs.
    pub fn unique(stem: &str) -> Self {
        let stem: String = stem
            .bytes()
            .filter(|b| is_name_char(*b))
            .take(12)
            .map(char::from)
            .collect();
        let rand = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("{stem}{}", &rand[..12]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self("rapport".to_owned())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every broker-side name of one bus, derived from its [`Prefix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: Prefix,
}

impl Names {
    pub fn new(prefix: &Prefix) -> Self {
        Self {
            prefix: prefix.clone(),
        }
    }

    /// The stream holding accepted events, one subject per partition.
    pub fn events_stream(&self) -> String {
        format!("{}_events", self.prefix)
    }

    /// `<prefix>.events.<partition>`
    pub fn events_subject(&self, partition: u16) -> String {
        format!("{}.events.{partition}", self.prefix)
    }

    pub fn events_wildcard(&self) -> String {
        format!("{}.events.*", self.prefix)
    }

    /// The stream holding dead letters, one subject per partition.
    pub fn dlq_stream(&self) -> String {
        format!("{}_dlq", self.prefix)
    }

    /// `<prefix>.dlq.<partition>`
    pub fn dlq_subject(&self, partition: u16) -> String {
        format!("{}.dlq.{partition}", self.prefix)
    }

    pub fn dlq_wildcard(&self) -> String {
        format!("{}.dlq.*", self.prefix)
    }

    /// The durable pull consumer of one partition.
    pub fn partition_consumer(&self, partition: u16) -> String {
        format!("{}_p{partition}", self.prefix)
    }

    /// The key-value bucket holding worker registrations and partition leases.
    pub fn lease_bucket(&self) -> String {
        format!("{}_leases", self.prefix)
    }
}

/// Who a worker is, as other workers see it in the lease bucket. Letters, digits, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(String);

impl WorkerId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, BusError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.bytes().all(is_name_char) {
            return Err(BusError::InvalidInput(format!(
                "worker id {raw:?} must be 1-{} letters, digits, '_' or '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh id, unique across processes.
    pub fn generate() -> Self {
        Self(format!("w-{}", uuid::Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Settings of a bus. All processes sharing one prefix must agree on `partitions` and
/// `lease_ttl`; the NATS implementation refuses to start when they differ from the bus found
/// on the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct BusConfig {
    pub prefix: Prefix,
    /// How many partitions events are spread over. Fixed for the life of a bus: changing it
    /// moves customers between partitions, so it needs an empty bus.
    pub partitions: u16,
    /// How long a partition lease (and a worker registration) lives without renewal. A worker
    /// renews every third of it; a killed worker's partitions move after at most about this
    /// long.
    pub lease_ttl: Duration,
    /// How long a delivered message may stay unsettled before it is delivered again (to
    /// whoever owns its partition then). Long handlers call [`crate::Delivery::in_progress`].
    pub ack_wait: Duration,
    /// Deliveries before a failing message is moved to the dead-letter stream.
    pub max_attempts: u32,
    /// The longest a publish may wait for the broker's acknowledgement.
    pub publish_timeout: Duration,
    /// How long one pull for a partition's next message waits on the broker. Bounds how late
    /// a worker notices that it should hand a partition over.
    pub fetch_wait: Duration,
    /// A second publish of the same (workspace, event id) within this window is recognised
    /// as a duplicate and not stored again.
    pub dedupe_window: Duration,
    /// How long accepted events are kept on the broker (applied or not).
    pub retention: Duration,
    /// Copies the broker keeps of every stream (events, dead letters, leases): 1 on a single
    /// NATS server, 3 on a three-server cluster (a publish is then confirmed once a majority
    /// stored it, so one server may fail without losing an acknowledged event). Applies when
    /// the streams are created. 1-5, as JetStream allows.
    pub replicas: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            prefix: Prefix::default(),
            partitions: 16,
            lease_ttl: Duration::from_secs(10),
            ack_wait: Duration::from_secs(30),
            max_attempts: 5,
            publish_timeout: Duration::from_secs(5),
            fetch_wait: Duration::from_secs(1),
            dedupe_window: Duration::from_secs(120),
            retention: Duration::from_secs(7 * 24 * 3600),
            replicas: 1,
        }
    }
}

impl BusConfig {
    pub const MAX_PARTITIONS: u16 = 1024;

    /// Short timings for tests: leases of 1.5 s, redelivery after 1.5 s, three attempts.
    pub fn for_tests(prefix: Prefix) -> Self {
        Self {
            prefix,
            partitions: 16,
            lease_ttl: Duration::from_millis(1500),
            ack_wait: Duration::from_millis(1500),
            max_attempts: 3,
            publish_timeout: Duration::from_secs(2),
            fetch_wait: Duration::from_millis(200),
            dedupe_window: Duration::from_secs(60),
            retention: Duration::from_secs(3600),
            replicas: 1,
        }
    }

    /// Checks the settings as a whole and reports every problem at once.
    pub fn validate(&self) -> Result<(), BusError> {
        let mut problems = Vec::new();
        if self.partitions == 0 || self.partitions > Self::MAX_PARTITIONS {
            problems.push(format!(
                "partitions must be 1-{}, not {}",
                Self::MAX_PARTITIONS,
                self.partitions
            ));
        }
        if self.lease_ttl < Duration::from_millis(500) {
            problems.push("lease_ttl must be at least 500 ms".to_owned());
        }
        if self.ack_wait < Duration::from_millis(100) {
            problems.push("ack_wait must be at least 100 ms".to_owned());
        }
        if self.max_attempts == 0 {
            problems.push("max_attempts must be at least 1".to_owned());
        }
        if self.publish_timeout.is_zero() {
            problems.push("publish_timeout must be positive".to_owned());
        }
        if self.fetch_wait < Duration::from_millis(10) || self.fetch_wait >= self.lease_ttl {
            problems
                .push("fetch_wait must be at least 10 ms and shorter than lease_ttl".to_owned());
        }
        if self.dedupe_window.is_zero() || self.dedupe_window > self.retention {
            problems.push("dedupe_window must be positive and no longer than retention".to_owned());
        }
        if !(1..=5).contains(&self.replicas) {
            problems.push(format!("replicas must be 1-5, not {}", self.replicas));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BusError::InvalidConfig(problems))
        }
    }

    /// How often a worker heartbeats and renews its leases.
    pub fn renew_every(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// How long, from the moment a lease write was sent, the worker trusts the lease. The
    /// broker keeps the entry for `lease_ttl` from when it stored it, which is later than
    /// the send; the tenth held back covers scheduling delays and clock-rate drift.
    pub fn trusted_lease(&self) -> Duration {
        self.lease_ttl - self.lease_ttl / 10
    }

    pub fn names(&self) -> Names {
        Names::new(&self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_worker_ids_are_name_safe() {
        assert!(Prefix::parse("rapport").is_ok());
        assert!(Prefix::parse("a.b").is_err());
        assert!(Prefix::parse("").is_err());
        assert!(Prefix::parse(&"x".repeat(33)).is_err());
        let u = Prefix::unique("t.e st");
        assert!(Prefix::parse(u.as_str()).is_ok(), "{u}");
        assert_ne!(Prefix::unique("t"), Prefix::unique("t"));
        assert!(WorkerId::parse(WorkerId::generate().as_str()).is_ok());
        assert!(WorkerId::parse("w>1").is_err());
    }

    #[test]
    fn validation_lists_every_problem() {
        let cfg = BusConfig {
            partitions: 0,
            max_attempts: 0,
            replicas: 7,
            ..BusConfig::default()
        };
        match cfg.validate() {
            Err(BusError::InvalidConfig(p)) => assert_eq!(p.len(), 3, "{p:?}"),
            other => panic!("{other:?}"),
        }
        BusConfig::default().validate().expect("defaults are valid");
        BusConfig::for_tests(Prefix::unique("t"))
            .validate()
            .expect("test settings are valid");
    }

    #[test]
    fn names_derive_from_the_prefix() {
        let n = Names::new(&Prefix::parse("acme").unwrap());
        assert_eq!(n.events_subject(3), "acme.events.3");
        assert_eq!(n.dlq_subject(3), "acme.dlq.3");
        assert_eq!(n.events_stream(), "acme_events");
        assert_eq!(n.partition_consumer(15), "acme_p15");
        assert_eq!(n.lease_bucket(), "acme_leases");
    }
}
