//! A node with the neural path keeps a neural intent head with each intent model version it
//! retrains, and reads that version's intents with it; nodes without the neural path read the
//! same version with its n-gram classifier. Needs the all-MiniLM-L6-v2 weights (`rapport
//! models pull minilm`); skipped without them, except under `CI=true`, where it fails.
#![cfg(feature = "neural")]

use std::sync::Arc;
use std::time::Duration;

use rapport_core::{Actor, WorkspaceName};
use rapport_interpret::neural::{default_models_dir, minilm_dir, minilm_present, MiniLm};
use rapport_interpret::{IntentTaxonomy, Interpreter};
use rapport_server::intents::{retrain, IntentModels};
use rapport_store::sqlite::SqliteStore;
use rapport_store::Store;

#[tokio::test]
async fn a_neural_node_stores_a_head_with_the_version_and_reads_intents_with_it() {
    let dir = minilm_dir(&default_models_dir());
    if !minilm_present(&dir) {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "all-MiniLM-L6-v2 not found in {}: run `rapport models pull minilm` first",
            dir.display()
        );
        println!("SKIPPED: model not pulled ({})", dir.display());
        return;
    }
    let model = MiniLm::load(&dir).expect("load all-MiniLM-L6-v2");
    let neural =
        Arc::new(Interpreter::neural(IntentTaxonomy::default_cx(), model).expect("neural"));
    let embedded = Arc::new(Interpreter::embedded(IntentTaxonomy::default_cx()).expect("embedded"));
    let data = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(data.path()).expect("store");
    let ws = store
        .workspace_by_name(&WorkspaceName::default_workspace())
        .await
        .expect("read")
        .expect("the default workspace")
        .id;
    let text = "where is my parcel? it was due on monday";

    let with_head = retrain(&store, &ws, Actor::System, true, Some(neural.clone()))
        .await
        .expect("retrain");
    assert!(with_head.activated);
    assert_eq!(with_head.model.summary["neural_head"], true);
    let version = Some(with_head.model.version as u64);

    let read = |base: Arc<Interpreter>| {
        let store = &store;
        let ws = &ws;
        async move {
            IntentModels::new(base, Duration::ZERO)
                .interpreter(store, ws)
                .await
                .analyze(text)
        }
    };
    let a = read(neural.clone()).await;
    assert_eq!(a.model.intent_model_version, version);
    assert!(
        a.model.neural.as_ref().expect("neural").intent,
        "{:?}",
        a.model
    );
    assert_eq!(a.intent.label, neural.analyze(text).intent.label);
    // A node without the neural path reads the same version with its classifier.
    let b = read(embedded.clone()).await;
    assert_eq!(b.model.intent_model_version, version);
    assert!(b.model.neural.is_none());
    assert_eq!(b.intent.label, embedded.analyze(text).intent.label);

    // Retrained where there is no neural path: no head, and a neural node reads that
    // version's intents with its classifier (and sentiment still with the neural path).
    let without = retrain(&store, &ws, Actor::System, true, None)
        .await
        .expect("retrain");
    assert_eq!(without.model.summary["neural_head"], false);
    let c = read(neural).await;
    assert_eq!(
        c.model.intent_model_version,
        Some(without.model.version as u64)
    );
    assert!(!c.model.neural.expect("neural sentiment").intent);
}
