//! The official Segment Python library (`segment-analytics-python` from PyPI), pointed at our
//! host and otherwise unchanged, sends events that we read back.

use std::process::Command;

use serde_json::Value;

use crate::common::{skip, TestApp};

const SCRIPT: &str = r#"
import sys
import segment.analytics as analytics

errors = []
analytics.write_key = sys.argv[1]
analytics.host = sys.argv[2]
analytics.sync_mode = True
analytics.on_error = lambda error, items: errors.append(repr(error))

analytics.page(anonymous_id='sdk-anon', name='Pricing', properties={'path': '/pricing'})
analytics.identify('sdk-user', {'name': 'Octavia Butler', 'email': 'octavia@example.com', 'plan': 'fiber-500'},
                   anonymous_id='sdk-anon')
analytics.track('sdk-user', 'Order Completed', {'revenue': 89.9, 'currency': 'USD'}, context={'channel': 'purchase'})
analytics.group('sdk-user', 'acme-co', {'name': 'Acme Co'})
analytics.alias('sdk-old-id', 'sdk-user')
analytics.flush()
if errors:
    print('\n'.join(errors), file=sys.stderr)
    sys.exit(1)
print('sent')
"#;

fn python_with_segment() -> Option<String> {
    for py in ["python3", "python"] {
        let ok = Command::new(py)
            .args(["-c", "import segment.analytics"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py.to_owned());
        }
    }
    None
}

#[tokio::test]
async fn the_official_python_library_works_unchanged() {
    let Some(py) = python_with_segment() else {
        skip(
            "the_official_python_library_works_unchanged",
            "python3 with segment-analytics-python is not installed (pip install segment-analytics-python)",
        );
        return;
    };
    let app = TestApp::spawn().await;
    let (key, base) = (app.write_key.clone(), app.base.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py).args(["-c", SCRIPT, &key, &base]).output()
    })
    .await
    .expect("join")
    .expect("run python");
    assert!(
        out.status.success(),
        "the SDK reported errors: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, p) = app.get("/v1/profiles?user_id=sdk-user").await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["name"], "Octavia Butler");
    assert_eq!(p["traits"]["plan"], "fiber-500");
    assert_eq!(p["event_count"], 5);
    let (_, by_anon) = app.get("/v1/profiles?anonymous_id=sdk-anon").await;
    assert_eq!(
        by_anon["id"], p["id"],
        "the page view before identify is stitched"
    );
    let (_, by_alias) = app.get("/v1/profiles?anonymous_id=sdk-old-id").await;
    assert_eq!(by_alias["id"], p["id"], "alias links the previous id");
    let (_, page) = app
        .get(&format!(
            "/v1/profiles/{}/events",
            p["id"].as_str().expect("id")
        ))
        .await;
    let events = page["events"].as_array().expect("events");
    let order = events
        .iter()
        .find(|e| e["name"] == "Order Completed")
        .expect("track event");
    assert_eq!(order["body"]["properties"]["revenue"], 89.9);
    assert_eq!(order["channel"], "purchase");
    assert!(order["body"]["context"]["library"]["name"]
        .as_str()
        .is_some_and(|n| n.contains("python")));
    assert!(
        events.iter().all(|e| e["body"].get("writeKey").is_none()),
        "the write key is never stored"
    );
    assert!(events.iter().all(|e| e["body"]["messageId"].is_string()));
    let _: &Value = &page;
}
