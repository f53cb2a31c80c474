//! End to end in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) signs in with an admin key and opens a customer's page.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::common::{skip, TestApp};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn a_browser_signs_in_and_opens_a_customer() {
    let (Some(driver), Some(chrome)) = (
        find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]),
        find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]),
    ) else {
        skip(
            "a_browser_signs_in_and_opens_a_customer",
            "chromium and chromium-driver are not installed",
        );
        return;
    };
    let app = TestApp::spawn().await;
    app.send("/v1/identify", &json!({"userId": "b1", "traits": {"name": "Wangari Maathai", "email": "wangari@example.com"}})).await;
    let (_, p) = app.get("/v1/profiles?user_id=b1").await;
    let profile_id = p["id"].as_str().expect("id").to_owned();

    let port = free_port();
    let _driver = Driver(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let profile_dir = tempfile::tempdir().expect("profile dir");
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chrome,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", format!("--user-data-dir={}", profile_dir.path().display())]
        }
    });
    let caps = caps.as_object().expect("caps").clone();
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = client.expect("chromedriver answered");
    let result = async {
        c.goto(&app.url(&format!("/customers/{profile_id}")))
            .await?;
        // Not signed in: the dashboard sends the browser to the login page.
        assert!(c.current_url().await?.path().ends_with("/login"));
        c.find(Locator::Id("login"))
            .await?
            .send_keys(&app.admin_login)
            .await?;
        c.find(Locator::Id("password"))
            .await?
            .send_keys(crate::common::PASSWORD)
            .await?;
        c.find(Locator::Id("sign-in")).await?.click().await?;
        c.wait().for_element(Locator::Id("n-profiles")).await?;
        c.goto(&app.url(&format!("/customers/{profile_id}")))
            .await?;
        let name = c
            .wait()
            .for_element(Locator::Id("customer-name"))
            .await?
            .text()
            .await?;
        assert_eq!(name, "Wangari Maathai");
        let identities = c.find(Locator::Id("identities")).await?.text().await?;
        assert!(identities.contains("wangari@example.com"));
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.expect("browser steps");
}
