//! Helpers both backends share for intent corrections and models.

/// A confidence as parts per million, kept in an integer column so a store copy (see
/// [`crate::transfer`]) compares it exactly.
pub(crate) fn confidence_ppm(confidence: f32) -> i64 {
    (f64::from(confidence.clamp(0.0, 1.0)) * 1_000_000.0).round() as i64
}

pub(crate) fn confidence_from_ppm(ppm: i64) -> f32 {
    (ppm as f64 / 1_000_000.0) as f32
}

/// The audit entries of a new model version with the version (known only once numbered)
/// added to their details.
pub(crate) fn with_version(
    audit: &[rapport_core::AuditEntry],
    version: i64,
) -> Vec<rapport_core::AuditEntry> {
    audit
        .iter()
        .cloned()
        .map(|mut e| {
            if let serde_json::Value::Object(m) = &mut e.details {
                m.insert("version".into(), serde_json::json!(version));
            }
            e
        })
        .collect()
}
