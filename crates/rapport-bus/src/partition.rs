//! Which partition a customer's events go to, and which worker owns which partition.
//!
//! Both functions must give the same answer in every process and every release, so they use
//! a hash spelled out here rather than std's `DefaultHasher` (whose output may change between
//! Rust versions and is randomly keyed per process):
//!
//! `stable_hash(bytes) = fmix64(fnv1a64(bytes))`
//!
//! FNV-1a 64-bit (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) followed by the
//! MurmurHash3 64-bit finaliser (`fmix64`). The finaliser matters: the low bits of a bare
//! FNV-1a hash depend only on the low bits of the input bytes, so `"user-a"` and `"user-q"`
//! would always share a partition when the count is a power of two. The unit tests pin
//! known outputs; changing them moves every customer to another partition.

use std::fmt;

/// A partition number, `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(u16);

impl Partition {
    pub fn new(index: u16) -> Self {
        Self(index)
    }

    pub fn index(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// MurmurHash3's 64-bit finaliser: spreads every input bit over every output bit.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The hash every placement decision of the bus uses. See the module docs.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    fmix64(fnv1a64(bytes))
}

/// Maps customers to partitions for one partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner {
    count: u16,
}

impl Partitioner {
    /// `count` must be at least 1 (checked by [`crate::BusConfig::validate`]).
    pub fn new(count: u16) -> Self {
        Self {
            count: count.max(1),
        }
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    pub fn all(&self) -> impl Iterator<Item = Partition> {
        (0..self.count).map(Partition)
    }

    /// The partition of a customer: `stable_hash(workspace ++ 0x00 ++ key) % count`. The
    /// workspace is part of the input so that equal keys in different tenants spread
    /// independently.
    pub fn partition_for(&self, workspace: &str, key: &str) -> Partition {
        let mut bytes = Vec::with_capacity(workspace.len() + 1 + key.len());
        bytes.extend_from_slice(workspace.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(key.as_bytes());
        Partition((stable_hash(&bytes) % u64::from(self.count)) as u16)
    }
}

fn affinity(worker: &str, partition: u16) -> u64 {
    let mut bytes = Vec::with_capacity(worker.len() + 3);
    bytes.extend_from_slice(worker.as_bytes());
    bytes.push(0xff);
    bytes.extend_from_slice(&partition.to_le_bytes());
    stable_hash(&bytes)
}

/// Who should own each partition, given the live workers: entry `p` is the index into
/// `workers` of partition `p`'s owner. Empty when there are no workers.
///
/// Balanced: every worker gets `count / n` or one more. Stable: each (worker, partition) pair
/// has a fixed affinity score, and pairs are granted best score first while the worker has
/// room, so when a worker joins or leaves most partitions stay where they were. Every worker
/// computing this from the same membership gets the same answer; workers with different
/// views briefly disagree, which the leases make harmless (one owner at a time, always).
pub fn assign(workers: &[impl AsRef<str>], count: u16) -> Vec<usize> {
    let n = workers.len();
    if n == 0 {
        return Vec::new();
    }
    let mut pairs: Vec<(u64, usize, u16)> = Vec::with_capacity(n * usize::from(count));
    for (w, name) in workers.iter().enumerate() {
        for p in 0..count {
            pairs.push((affinity(name.as_ref(), p), w, p));
        }
    }
    // Best score first; ties (practically never) broken by worker name, then partition.
    pairs.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| workers[a.1].as_ref().cmp(workers[b.1].as_ref()))
            .then_with(|| a.2.cmp(&b.2))
    });
    let floor = usize::from(count) / n;
    let mut extra = usize::from(count) % n;
    let mut load = vec![0usize; n];
    let mut owner = vec![usize::MAX; usize::from(count)];
    let mut left = usize::from(count);
    for (_, w, p) in pairs {
        if left == 0 {
            break;
        }
        let p = usize::from(p);
        if owner[p] != usize::MAX {
            continue;
        }
        let room = if load[w] < floor {
            true
        } else if load[w] == floor && extra > 0 {
            extra -= 1;
            true
        } else {
            false
        };
        if room {
            owner[p] = w;
            load[w] += 1;
            left -= 1;
        }
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_hash_is_pinned() {
        // Published FNV-1a test vectors, then our finalised values. If these change, every
        // customer moves partition: that is a breaking change of the bus.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(stable_hash(b""), 0xefd01f60ba992926);
        assert_eq!(stable_hash(b"a"), 0x82a2a958a9bece5b);
        let p = Partitioner::new(16);
        let golden: Vec<u16> = [
            "user_id:ada",
            "email:ada@example.com",
            "anonymous_id:x1",
            "",
        ]
        .iter()
        .map(|k| {
            p.partition_for("ws_00000000000000000000000000000001", k)
                .index()
        })
        .collect();
        assert_eq!(golden, GOLDEN);
    }

    // Computed independently (a few lines of Python) when the scheme was chosen.
    const GOLDEN: [u16; 4] = [11, 1, 15, 1];

    #[test]
    fn keys_spread_evenly_even_when_they_differ_only_in_high_bits() {
        let p = Partitioner::new(16);
        let mut counts = [0u32; 16];
        for c in b'a'..=b'z' {
            for i in 0..400 {
                let key = format!("user-{}{i}", c as char);
                counts[usize::from(p.partition_for("ws", &key).index())] += 1;
            }
        }
        let expected = 26.0 * 400.0 / 16.0;
        for c in counts {
            assert!(
                (f64::from(c) - expected).abs() < expected * 0.15,
                "{counts:?}"
            );
        }
        // "user-a" and "user-q" differ only above the low nibble.
        let spread: std::collections::HashSet<u16> = (0..64)
            .flat_map(|i| [format!("{i}a"), format!("{i}q")])
            .map(|k| p.partition_for("ws", &k).index())
            .collect();
        assert!(spread.len() > 8);
    }

    fn loads(owner: &[usize], n: usize) -> Vec<usize> {
        let mut l = vec![0; n];
        for o in owner {
            l[*o] += 1;
        }
        l
    }

    #[test]
    fn assignment_is_balanced_and_total() {
        for n in 1..=20usize {
            for count in [1u16, 7, 16, 64] {
                let workers: Vec<String> = (0..n).map(|i| format!("w-{i}")).collect();
                let owner = assign(&workers, count);
                assert_eq!(owner.len(), usize::from(count));
                assert!(owner.iter().all(|o| *o < n));
                let l = loads(&owner, n);
                let (min, max) = (l.iter().min().unwrap(), l.iter().max().unwrap());
                assert!(max - min <= 1, "n={n} count={count} loads={l:?}");
            }
        }
        assert!(assign(&Vec::<String>::new(), 16).is_empty());
    }

    #[test]
    fn assignment_does_not_depend_on_the_order_workers_are_listed() {
        let a = ["w-c", "w-a", "w-b"];
        let b = ["w-a", "w-b", "w-c"];
        let by_name = |ws: &[&str]| -> Vec<String> {
            assign(ws, 16)
                .into_iter()
                .map(|i| ws[i].to_owned())
                .collect()
        };
        assert_eq!(by_name(&a), by_name(&b));
    }

    #[test]
    fn a_leaving_worker_mostly_moves_only_its_own_partitions() {
        let names: Vec<String> = (0..4).map(|i| format!("worker-{i}")).collect();
        let before: Vec<&str> = assign(&names, 64)
            .into_iter()
            .map(|i| names[i].as_str())
            .collect();
        let survivors: Vec<String> = names[..3].to_vec();
        let after: Vec<&str> = assign(&survivors, 64)
            .into_iter()
            .map(|i| survivors[i].as_str())
            .collect();
        let moved_between_survivors = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != "worker-3" && b != a)
            .count();
        // 16 partitions of the leaver must move; churn among the others stays small.
        assert!(moved_between_survivors <= 8, "{moved_between_survivors}");
        let mut per: HashMap<&str, usize> = HashMap::new();
        for a in after {
            *per.entry(a).or_default() += 1;
        }
        assert!(per.values().all(|v| (21..=22).contains(v)), "{per:?}");
    }
}
