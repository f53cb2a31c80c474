//! The committed `openapi.json` must be what the code generates. Regenerate it with
//! `cargo run -- openapi > openapi.json` (or `UPDATE_OPENAPI=1 cargo test`).

use crate::common::TestApp;

#[tokio::test]
async fn committed_openapi_matches_the_code() {
    let generated = rapport_server::openapi::document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is stale: run `cargo run -- openapi > openapi.json` and commit it"
    );
    let app = TestApp::spawn().await;
    let served = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(served, generated);
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("json");
    for path in [
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/profiles",
        "/v1/profiles/{id}",
        "/v1/profiles/{id}/events",
        "/v1/profiles/search",
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/conversations/{id}/messages",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}
