//! The saved form of a trained intent classifier (`rapport intents train --output M`): a
//! versioned binary file, so a model trained once is used without retraining.
//!
//! Layout, little-endian: the magic `RPINTENT`, a `u32` format version, a `u32` length and a
//! JSON header (labels, feature settings, threshold, classifier kind, sizes), then per feature
//! its hashed key (`u64`) and IDF (`f32`) in feature order, then the weights (`f32`,
//! feature-major) and, for softmax, one bias per class. Version 1 is the only one so far; a
//! later version must keep reading it.

use serde::{Deserialize, Serialize};

use crate::error::InterpretError;
use crate::intent::{ClassifierKind, IntentConfig};

const MAGIC: &[u8; 8] = b"RPINTENT";
/// The format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    pub labels: Vec<String>,
    pub config: IntentConfig,
    pub threshold: f32,
    pub unknown_idf: f32,
    pub features: usize,
    /// Free-form note kept with the model (what it was trained on).
    #[serde(default)]
    pub note: String,
}

/// What a saved model holds, in plain arrays.
pub(crate) struct Parts {
    pub header: Header,
    pub keys: Vec<u64>,
    pub idf: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

fn bad(msg: impl Into<String>) -> InterpretError {
    InterpretError::InvalidModelFile(msg.into())
}

pub(crate) fn write(p: &Parts) -> Result<Vec<u8>, InterpretError> {
    let header = serde_json::to_vec(&p.header).map_err(|e| bad(format!("header: {e}")))?;
    let mut out = Vec::with_capacity(
        16 + header.len() + p.keys.len() * 12 + (p.weights.len() + p.bias.len()) * 4,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let len = u32::try_from(header.len()).map_err(|_| bad("header too large"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&header);
    for k in &p.keys {
        out.extend_from_slice(&k.to_le_bytes());
    }
    for v in p.idf.iter().chain(&p.weights).chain(&p.bias) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], InterpretError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| bad(format!("file ends inside the {what}")))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, InterpretError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>, InterpretError> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| bad("size overflow"))?, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

pub(crate) fn read(bytes: &[u8]) -> Result<Parts, InterpretError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8, "magic").ok() != Some(MAGIC.as_slice()) {
        return Err(bad("not a Rapport intent model (wrong magic bytes)"));
    }
    let version = r.u32("version")?;
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    let len = r.u32("header length")? as usize;
    let header: Header =
        serde_json::from_slice(r.take(len, "header")?).map_err(|e| bad(format!("header: {e}")))?;
    let classes = header.labels.len();
    if classes == 0 {
        return Err(bad("the model has no intents"));
    }
    let n = header.features;
    let kb = r.take(
        n.checked_mul(8).ok_or_else(|| bad("size overflow"))?,
        "feature keys",
    )?;
    let keys = kb
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let idf = r.f32s(n, "IDF table")?;
    let weights = r.f32s(
        n.checked_mul(classes).ok_or_else(|| bad("size overflow"))?,
        "weights",
    )?;
    let bias = match header.config.classifier {
        ClassifierKind::Softmax => r.f32s(classes, "biases")?,
        ClassifierKind::Centroid => Vec::new(),
    };
    if r.at != bytes.len() {
        return Err(bad(format!(
            "{} unexpected bytes after the model",
            bytes.len() - r.at
        )));
    }
    Ok(Parts {
        header,
        keys,
        idf,
        weights,
        bias,
    })
}
