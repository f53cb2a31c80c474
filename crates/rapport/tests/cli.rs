//! The `rapport` binary as a user runs it: separate processes, real files, real signals.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

fn rapport() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    // The tests set their own configuration; none may leak in from the caller's environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("RAPPORT__") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    rapport().args(args).output().expect("run rapport")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn key(dir: &Path, role: &str, workspace: &str) -> String {
    let out = run(&[
        "keys",
        "create",
        "--role",
        role,
        "--workspace",
        workspace,
        "--data-dir",
        dir.to_str().expect("dir"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    last_line(&out)
}

/// A running `rapport serve` (or demo), killed on drop.
struct Server {
    child: Child,
    base: String,
    output: Vec<String>,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        Self::start_with(args, &[])
    }

    /// Starts with extra environment variables (configuration layers).
    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = rapport()
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut output = Vec::new();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read line");
            output.push(line.clone());
            if let Some(addr) = line.strip_prefix("Rapport listening on ") {
                break addr.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Self {
            child,
            base,
            output,
        }
    }

    fn kill_9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tests here are synchronous: a small blocking wrapper over the async HTTP client.
struct Http {
    rt: tokio::runtime::Runtime,
    inner: reqwest::Client,
}

impl Http {
    fn post(&self, url: &str, key: &str, body: &Value) -> (u16, Value) {
        self.rt.block_on(async {
            let r = self
                .inner
                .post(url)
                .basic_auth(key, Some(""))
                .json(body)
                .send()
                .await
                .expect("post");
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        })
    }

    fn get(&self, url: &str, key: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let r = self
                .inner
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("get");
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        })
    }
}

fn client() -> Http {
    Http {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        inner: reqwest::Client::new(),
    }
}

#[test]
fn workspaces_and_keys() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let k = key(dir.path(), "admin", "default");
    assert!(
        k.starts_with("rk_") && k.len() == 43,
        "the key alone on the last line: {k:?}"
    );
    let out = run(&["workspaces", "create", "acme", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    let again = run(&["workspaces", "create", "acme", "--data-dir", d]);
    assert!(
        !again.status.success() && text(&again).contains("already exists"),
        "{}",
        text(&again)
    );
    let bad = run(&["workspaces", "create", "Not Valid", "--data-dir", d]);
    assert!(!bad.status.success());
    let w = key(dir.path(), "write", "acme");
    assert_ne!(w, k);
    let missing = run(&[
        "keys",
        "create",
        "--role",
        "write",
        "--workspace",
        "nope",
        "--data-dir",
        d,
    ]);
    assert!(!missing.status.success() && text(&missing).contains("does not exist"));
    let list = run(&["workspaces", "list", "--data-dir", d]);
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, ["acme", "default"]);
}

#[test]
fn config_is_layered_and_checked_as_a_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let ok = run(&["config", "check"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("addr = \"127.0.0.1:8080\""));

    let file = dir.path().join("rapport.toml");
    std::fs::write(
        &file,
        "[server]\naddr = \"127.0.0.1:9000\"\n[ingest]\nmax_event_bytes = 4096\n",
    )
    .expect("write");
    let f = file.to_str().expect("path");
    let out = run(&["--config", f, "config", "check"]);
    assert!(
        text(&out).contains("addr = \"127.0.0.1:9000\"")
            && text(&out).contains("max_event_bytes = 4096"),
        "{}",
        text(&out)
    );
    let out = rapport()
        .args(["--config", f, "config", "check"])
        .env("RAPPORT__SERVER__ADDR", "127.0.0.1:9100")
        .output()
        .expect("run");
    assert!(
        text(&out).contains("addr = \"127.0.0.1:9100\""),
        "the environment beats the file: {}",
        text(&out)
    );

    std::fs::write(&file, "[server]\nadress = \"x\"\n").expect("write");
    let out = run(&["--config", f, "config", "check"]);
    assert!(
        !out.status.success() && text(&out).contains("adress"),
        "unknown keys are errors: {}",
        text(&out)
    );

    let out = rapport()
        .args(["config", "check"])
        .env("RAPPORT__SERVER__ADDR", "nowhere")
        .env("RAPPORT__DEMO__CUSTOMERS", "3")
        .env("RAPPORT__STORAGE__BACKEND", "oracle")
        .env("RAPPORT__IDENTITY__DEFAULT_PHONE_REGION", "Atlantis")
        .output()
        .expect("run");
    let t = text(&out);
    assert!(!out.status.success());
    for want in [
        "server.addr",
        "demo.customers",
        "storage.backend",
        "identity.default_phone_region",
    ] {
        assert!(
            t.contains(want),
            "every problem is reported at once ({want}): {t}"
        );
    }
}

#[test]
fn flags_beat_the_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let mut child = rapport()
        .args(["serve", "--data-dir", d, "--addr", "127.0.0.1:0"])
        .env("RAPPORT__SERVER__ADDR", "127.0.0.1:1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let line = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("line")
        .expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("Rapport listening on http://127.0.0.1:") && !line.ends_with(":1"),
        "{line}"
    );
}

#[test]
fn import_applies_a_good_file_and_nothing_from_a_bad_one() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let good = dir.path().join("good.jsonl");
    let mut f = std::fs::File::create(&good).expect("file");
    writeln!(
        f,
        "{}",
        json!({"type": "identify", "userId": "imp-1", "traits": {"name": "Imported One"}})
    )
    .expect("w");
    writeln!(f).expect("blank lines are skipped");
    writeln!(
        f,
        "{}",
        json!({"type": "track", "userId": "imp-1", "event": "Order Completed"})
    )
    .expect("w");
    drop(f);
    let out = run(&[
        "import",
        "events",
        good.to_str().expect("p"),
        "--data-dir",
        d,
    ]);
    assert!(
        out.status.success() && text(&out).contains("2 applied"),
        "{}",
        text(&out)
    );
    let again = run(&[
        "import",
        "events",
        good.to_str().expect("p"),
        "--data-dir",
        d,
    ]);
    assert!(
        text(&again).contains("0 applied, 2 already present"),
        "re-importing is idempotent: {}",
        text(&again)
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!(
            "{}\n{}\nnot json\n",
            json!({"type": "identify", "userId": "imp-2"}),
            json!({"type": "track", "event": "X"})
        ),
    )
    .expect("w");
    let out = run(&[
        "import",
        "events",
        bad.to_str().expect("p"),
        "--data-dir",
        d,
    ]);
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("line 2")
            && t.contains("missing_identity")
            && t.contains("line 3")
            && t.contains("invalid_json"),
        "{t}"
    );
    assert!(t.contains("nothing was imported"), "{t}");

    let admin = key(dir.path(), "admin", "default");
    let server = Server::start(&["serve", "--data-dir", d, "--addr", "127.0.0.1:0"]);
    let c = client();
    assert_eq!(
        c.get(
            &format!("{}/v1/profiles?user_id=imp-1", server.base),
            &admin
        )
        .0,
        200
    );
    assert_eq!(
        c.get(
            &format!("{}/v1/profiles?user_id=imp-2", server.base),
            &admin
        )
        .0,
        404,
        "nothing from the bad file"
    );
}

#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let write = key(dir.path(), "write", "default");
    let admin = key(dir.path(), "admin", "default");
    let mut server = Server::start(&["serve", "--data-dir", d, "--addr", "127.0.0.1:0"]);
    let c = client();
    let mut acked = 0;
    for b in 0..20 {
        let batch: Vec<Value> = (0..50)
            .map(|i| json!({"type": "track", "userId": format!("k{}", i % 10), "event": "Durable", "messageId": format!("d-{b}-{i}")}))
            .collect();
        let (status, body) = c.post(
            &format!("{}/v1/batch", server.base),
            &write,
            &json!({"batch": batch}),
        );
        assert_eq!(status, 200, "{body}");
        acked += 50;
    }
    let (status, _) = c.post(
        &format!("{}/v1/identify", server.base),
        &write,
        &json!({"userId": "k0", "traits": {"name": "Still Here"}}),
    );
    assert_eq!(status, 200);
    server.kill_9();

    let server = Server::start(&["serve", "--data-dir", d, "--addr", "127.0.0.1:0"]);
    let (_, stats) = c.get(&format!("{}/v1/stats", server.base), &admin);
    assert_eq!(
        stats["events"],
        acked + 1,
        "every acknowledged event is back after kill -9"
    );
    let (_, p) = c.get(&format!("{}/v1/profiles?user_id=k0", server.base), &admin);
    assert_eq!(p["name"], "Still Here");
    assert_eq!(p["event_count"], 101);
}

#[test]
fn demo_builds_a_company_and_serves_it() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let server = Server::start(&[
        "demo",
        "--customers",
        "60",
        "--no-live",
        "--data-dir",
        d,
        "--addr",
        "127.0.0.1:0",
    ]);
    let admin = server
        .output
        .iter()
        .find_map(|l| l.strip_prefix("Admin key (read API):"))
        .expect("admin key printed")
        .trim()
        .to_owned();
    assert!(
        server
            .output
            .iter()
            .any(|l| l.starts_with("Dashboard sign-in (supervisor")),
        "demo accounts printed: {:?}",
        server.output
    );
    let c = client();
    let (status, stats) = c.get(&format!("{}/v1/stats", server.base), &admin);
    assert_eq!(status, 200);
    // 60 customers, and one second account with the same phone that the identity guard keeps
    // apart: the start-up dedupe run merged the guest sign-ups (with so few customers the
    // look-alikes score high enough to merge too) and queued the second account for review.
    assert_eq!(stats["profiles"], 61, "{stats}");
    let (status, review) = c.get(&format!("{}/v1/identity/review", server.base), &admin);
    assert_eq!(status, 200, "{review}");
    assert!(
        review["pairs"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["refusal"] == "unauthenticated_merge")),
        "{review}"
    );
    assert!(stats["events"].as_i64().unwrap_or(0) > 60 * 30, "{stats}");
    let (status, p) = c.get(
        &format!("{}/v1/profiles?user_id=u_000001", server.base),
        &admin,
    );
    assert_eq!(status, 200);
    assert!(p["name"].is_string() && p["email"].is_string());
    // The demo's contact center: the frustrated customer who wrote late went to the senior
    // agent ahead of the calm customers who wrote earlier.
    let (status, q) = c.get(
        &format!("{}/v1/routing/queues/support/entries", server.base),
        &admin,
    );
    assert_eq!(status, 200, "{q}");
    let to_maria: Vec<&serde_json::Value> = q["assigned"]
        .as_array()
        .expect("assigned")
        .iter()
        .filter(|e| e["agent_id"] == "maria")
        .collect();
    assert_eq!(to_maria.len(), 1, "{q}");
    assert!(
        to_maria[0]["why"]
            .as_str()
            .unwrap_or("")
            .contains("very negative"),
        "{q}"
    );
}

#[test]
fn match_link_finds_the_restaurant_pairs() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/restaurants");
    let dir = tempfile::tempdir().expect("dir");
    let pairs = dir.path().join("pairs.csv");
    let out = run(&[
        "match",
        "link",
        "--left",
        data.join("fodors.csv").to_str().expect("p"),
        "--right",
        data.join("zagats.csv").to_str().expect("p"),
        "--id-column",
        "id",
        "--labels",
        data.join("matches_fodors_zagats.csv").to_str().expect("p"),
        "--pairs-out",
        pairs.to_str().expect("p"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let f1 = report
        .pointer("/evaluation/pairwise/f1")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no pairwise F1 in {report}"));
    assert!(f1 > 0.9, "F1 {f1}");
    let written = std::fs::read_to_string(&pairs).expect("pairs.csv");
    assert!(written.lines().count() > 100);
}

#[test]
fn audit_verify_names_the_record_that_was_tampered_with() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let file = dir.path().join("events.jsonl");
    let lines = [
        json!({"type": "page", "anonymousId": "aud-anon-1", "name": "Home"}),
        json!({"type": "identify", "userId": "aud-user-1"}),
        json!({"type": "alias", "userId": "aud-user-1", "previousId": "aud-anon-1"}),
        json!({"type": "track", "userId": "aud-user-1", "event": "Opened",
               "context": {"consent": {"categoryPreferences": {"Analytics": true, "Marketing Email": true}}}}),
        json!({"type": "track", "userId": "aud-user-1", "event": "Opened again",
               "timestamp": "2100-01-01T00:00:00Z",
               "context": {"consent": {"categoryPreferences": {"Marketing Email": false}}}}),
    ];
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
    let out = run(&[
        "import",
        "events",
        file.to_str().expect("p"),
        "--data-dir",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let ok = run(&["audit", "verify", "--data-dir", d]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("checked 4 audit records"),
        "{}",
        text(&ok)
    );
    assert!(text(&ok).contains("the chain is intact"));

    // Someone with write access to the file bypasses the append-only triggers and edits a
    // record; verification names it.
    let db = dir.path().join("rapport.db");
    {
        let c = rusqlite::Connection::open(&db).expect("open");
        c.execute_batch(
            "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
             UPDATE audit_log SET details = '{\"purpose\":\"profiling\"}' WHERE seq = 2;",
        )
        .expect("tamper");
    }
    let bad = run(&["audit", "verify", "--data-dir", d]);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        text(&bad).contains("#2") && text(&bad).contains("edited"),
        "{}",
        text(&bad)
    );

    // A removed record is named too.
    {
        let c = rusqlite::Connection::open(&db).expect("open");
        c.execute_batch("DELETE FROM audit_log WHERE seq = 3;")
            .expect("tamper");
    }
    let bad = run(&["audit", "verify", "--data-dir", d, "--json"]);
    assert!(!bad.status.success());
    let report: Value = serde_json::from_slice(&bad.stdout).expect("json report");
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("kind"))
        .collect();
    assert!(kinds.contains(&"missing"), "{report}");
}

#[test]
fn audit_fairness_reports_and_exits_non_zero_on_a_violated_threshold() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rapport-govern/tests/fixtures/fairness/data.csv");
    let dir = tempfile::tempdir().expect("dir");
    let limits = dir.path().join("limits.toml");
    let base = [
        "audit",
        "fairness",
        "--input",
        data.to_str().expect("p"),
        "--group",
        "sex",
        "--group",
        "age_band",
        "--prediction",
        "approved",
        "--label",
        "repaid",
    ];

    std::fs::write(&limits, "max_demographic_parity_difference = 0.9\n").expect("write");
    let mut args = base.to_vec();
    args.extend(["--thresholds", limits.to_str().expect("p")]);
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("By sex × age_band"), "{table}");
    assert!(table.contains("Thresholds: none violated"), "{table}");

    std::fs::write(&limits, "max_demographic_parity_difference = 0.1\n").expect("write");
    args.extend(["--format", "json"]);
    let out = run(&args);
    assert!(!out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    // Fairlearn's demographic_parity_difference on the intersection, from the fixture.
    let dp = report
        .pointer("/groupings/2/outcomes/0/aggregates/0/value")
        .and_then(Value::as_f64)
        .expect("dp");
    assert!((dp - 0.5608433734939758).abs() < 1e-9, "{dp}");
    assert_eq!(report["violations"].as_array().map(Vec::len), Some(3));
    assert!(text(&out).contains("3 fairness threshold(s) violated"));

    let out = run(&[
        "audit",
        "fairness",
        "--input",
        data.to_str().expect("p"),
        "--group",
        "sexx",
        "--prediction",
        "approved",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown column \"sexx\""),
        "{}",
        text(&out)
    );
}

#[test]
fn analyze_reads_lines_and_jsonl_and_names_a_bad_line() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("texts.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"t1\", \"text\": \"Thanks so much, that fixed it!\"}\nMy card 4111 1111 1111 1111 was charged twice\n",
    )
    .expect("write");
    let out = run(&["analyze", file.to_str().expect("p")]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "t1");
    assert!(lines[0]["sentiment"]["score"].as_f64().expect("score") > 0.0);
    assert_eq!(lines[1]["id"], 2);
    assert!(lines[1]["redacted"]
        .as_str()
        .expect("redacted")
        .contains("[CARD]"));

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"fine line\nbroken \xff\xfe line\n").expect("write");
    let out = run(&["analyze", bad.to_str().expect("p")]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("line 2") && text(&out).contains("UTF-8"),
        "{}",
        text(&out)
    );
}

#[test]
fn analyze_with_the_neural_model_says_what_is_missing_and_embedded_still_works() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("texts.txt");
    std::fs::write(&file, "my order is late again and nobody answers\n").expect("write");
    let models = dir.path().join("no-models-here");
    let out = run(&[
        "analyze",
        "--model",
        "neural",
        "--models-dir",
        models.to_str().expect("p"),
        file.to_str().expect("p"),
    ]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("rapport models pull minilm"), "{t}");
    assert!(
        out.stdout.is_empty(),
        "nothing is written before the model loads: {t}"
    );
    if cfg!(feature = "neural") {
        // The file that is missing, in the models directory given.
        assert!(
            t.contains("config.json") && t.contains("no-models-here"),
            "{t}"
        );
    } else {
        assert!(t.contains("--features neural"), "{t}");
    }
    let out = run(&["analyze", "--model", "embedded", file.to_str().expect("p")]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_str(text(&out).trim()).expect("one JSON line");
    assert_eq!(v["model"]["name"], "rapport-lexicon");
}

#[test]
fn config_check_never_prints_the_database_password() {
    let out = rapport()
        .args(["config", "check"])
        .env("RAPPORT__STORAGE__BACKEND", "postgres")
        .env(
            "RAPPORT__STORAGE__URL",
            "postgres://rapport:hunter2-secret@db.internal:5432/rapport",
        )
        .output()
        .expect("run");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("url = \"postgres://rapport:***@db.internal:5432/rapport\""),
        "{t}"
    );
    assert!(t.contains("schema = \"rapport\"") && t.contains("connect_timeout_secs = 30"));
    assert!(!t.contains("hunter2"), "{t}");

    let out = rapport()
        .args(["config", "check"])
        .env("RAPPORT__STORAGE__BACKEND", "postgres")
        .output()
        .expect("run");
    assert!(!out.status.success() && text(&out).contains("storage.url is required"));

    // A failed connection names the server, not the password.
    let out = rapport()
        .args(["workspaces", "list"])
        .env("RAPPORT__STORAGE__BACKEND", "postgres")
        .env(
            "RAPPORT__STORAGE__URL",
            "postgres://rapport:hunter2-secret@127.0.0.1:1/rapport",
        )
        .env("RAPPORT__STORAGE__CONNECT_TIMEOUT_SECS", "1")
        .output()
        .expect("run");
    let t = text(&out);
    assert!(!out.status.success() && t.contains("127.0.0.1:1"), "{t}");
    assert!(!t.contains("hunter2"), "{t}");
    let out = rapport()
        .args(["workspaces", "list", "--data-dir", "somewhere"])
        .env("RAPPORT__STORAGE__BACKEND", "postgres")
        .env(
            "RAPPORT__STORAGE__URL",
            "postgres://rapport@127.0.0.1:1/rapport",
        )
        .output()
        .expect("run");
    assert!(
        !out.status.success() && text(&out).contains("--data-dir is for the sqlite backend"),
        "{}",
        text(&out)
    );
}

const PG_URL_VAR: &str = "RAPPORT_TEST_POSTGRES_URL";

/// The test PostgreSQL server's URL, or `None` (after saying so) when this run has none; under
/// `CI=true` a missing server fails the test, since CI must cover both backends.
fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{PG_URL_VAR} is not set, but CI=true: CI must run the PostgreSQL tests"
            );
            eprintln!("skipped {test}: set {PG_URL_VAR} to run it against PostgreSQL");
            None
        }
    }
}

/// Drops a PostgreSQL schema when the test ends, passed or not.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            match tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    if let Err(e) = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                        .await
                    {
                        eprintln!("could not drop schema {}: {e}", self.schema);
                    }
                }
                Err(e) => eprintln!("could not connect to drop schema {}: {e}", self.schema),
            }
        });
    }
}

#[test]
fn serve_on_postgres_end_to_end() {
    let Some(url) = postgres_url("serve_on_postgres_end_to_end") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let schema = format!("rapport_cli_{}_{nanos}", std::process::id());
    // Declared before the server, so the server is stopped before its schema is dropped.
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let env = [
        ("RAPPORT__STORAGE__BACKEND", "postgres"),
        ("RAPPORT__STORAGE__URL", url.as_str()),
        ("RAPPORT__STORAGE__SCHEMA", schema.as_str()),
        ("RAPPORT__STORAGE__CONNECT_TIMEOUT_SECS", "10"),
    ];
    let key = |role: &str| {
        let out = rapport()
            .args(["keys", "create", "--role", role])
            .envs(env.iter().copied())
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", text(&out));
        last_line(&out)
    };
    let (write, admin) = (key("write"), key("admin"));
    let server = Server::start_with(&["serve", "--addr", "127.0.0.1:0"], &env);
    let c = client();
    let (status, body) = c.post(
        &format!("{}/v1/identify", server.base),
        &write,
        &json!({"userId": "pg-cli-1", "anonymousId": "pg-cli-device",
                "traits": {"name": "Paula Postgres", "email": "paula@example.com"}}),
    );
    assert_eq!(status, 200, "{body}");
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"type": "track", "anonymousId": "pg-cli-device", "event": "Viewed", "messageId": format!("pg-cli-{i}")}))
        .collect();
    let (status, body) = c.post(
        &format!("{}/v1/batch", server.base),
        &write,
        &json!({"batch": batch}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, p) = c.get(
        &format!("{}/v1/profiles?user_id=pg-cli-1", server.base),
        &admin,
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["name"], "Paula Postgres");
    assert_eq!(p["event_count"], 6);

    // The events are in the PostgreSQL schema, not in some local file.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stored: i64 = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .query_one(&format!("SELECT count(*) FROM {schema}.events"), &[])
            .await
            .expect("count")
            .get(0)
    });
    assert_eq!(stored, 6);
}

// ---- rapport intents train / eval, and analyze on awkward input (issue 4) ----

fn intents_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/intents")
        .join(name)
        .to_str()
        .expect("path")
        .to_owned()
}

#[test]
fn intents_train_then_eval_reports_accuracy_macro_f1_and_out_of_scope() {
    let dir = tempfile::tempdir().expect("dir");
    let model = dir.path().join("m.rpi");
    let model = model.to_str().expect("p");
    let out = run(&[
        "intents",
        "train",
        "--input",
        &intents_fixture("train.csv"),
        "--text-column",
        "text",
        "--label-column",
        "category",
        "--output",
        model,
        "--validation",
        &intents_fixture("val.csv"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("3 intents, 18 examples"),
        "{}",
        text(&out)
    );

    let out = run(&[
        "intents",
        "eval",
        "--model",
        model,
        "--input",
        &intents_fixture("test.csv"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    for line in [
        "accuracy:",
        "macro-F1:",
        "out-of-scope precision:",
        "out-of-scope recall:",
    ] {
        assert!(t.contains(line), "{line} missing in {t}");
    }

    let json = |extra: &[&str]| -> Value {
        let mut args = vec!["intents", "eval", "--model", model, "--json", "--input"];
        let test = intents_fixture("test.csv");
        args.push(&test);
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let r = json(&[]);
    assert_eq!(
        (r["rows"].as_u64(), r["oos_rows"].as_u64()),
        (Some(9), Some(3))
    );
    // Threshold 0 never answers out of scope; threshold 1 always does.
    let never = json(&["--threshold", "0"]);
    assert_eq!(never["oos_recall"].as_f64(), Some(0.0));
    let always = json(&["--threshold", "1"]);
    assert_eq!(always["oos_recall"].as_f64(), Some(1.0));
    assert_eq!(always["in_scope_accuracy"].as_f64(), Some(0.0));
    let (acc, mf1) = (never["accuracy"].as_f64(), never["macro_f1"].as_f64());
    assert!(acc.is_some() && mf1.is_some(), "{never}");
}

#[test]
fn intents_train_can_spend_a_budget_of_in_scope_accuracy_on_out_of_scope_recall() {
    let dir = tempfile::tempdir().expect("dir");
    let model = dir.path().join("m.rpi");
    let model = model.to_str().expect("p");
    let val = intents_fixture("val.csv");
    let train = |extra: &[&str]| {
        let input = intents_fixture("train.csv");
        let mut args = vec!["intents", "train", "--input", &input, "--output", model];
        args.extend_from_slice(&["--validation", &val]);
        args.extend_from_slice(extra);
        run(&args)
    };
    // The model's figures on the validation file, at its own threshold or at `threshold`.
    let on_val = |threshold: Option<&str>| -> Value {
        let mut args = vec![
            "intents", "eval", "--model", model, "--json", "--input", &val,
        ];
        if let Some(t) = threshold {
            args.extend_from_slice(&["--threshold", t]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    // A budget of nothing keeps the in-scope accuracy the classifier has without a
    // threshold.
    let out = train(&["--max-in-scope-cost", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let unthresholded = on_val(Some("0"))["in_scope_accuracy"]
        .as_f64()
        .expect("acc");
    let none = on_val(None);
    assert_eq!(none["in_scope_accuracy"].as_f64(), Some(unthresholded));
    // The whole budget reaches at least as much out-of-scope recall.
    let out = train(&["--max-in-scope-cost", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = on_val(None);
    assert!(
        all["oos_recall"].as_f64() >= none["oos_recall"].as_f64(),
        "{all} vs {none}"
    );
    let bad = train(&["--max-in-scope-cost", "2"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("--max-in-scope-cost"), "{}", text(&bad));
    let both = train(&["--max-in-scope-cost", "0.01", "--min-oos-recall", "0.8"]);
    assert!(!both.status.success(), "{}", text(&both));
}

#[test]
fn intents_commands_name_the_bad_file_line_or_column() {
    let dir = tempfile::tempdir().expect("dir");
    let model = dir.path().join("m.rpi");
    let model = model.to_str().expect("p");
    let out = run(&[
        "intents",
        "train",
        "--input",
        &intents_fixture("train.csv"),
        "--label-column",
        "intent",
        "--output",
        model,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no column \"intent\""),
        "{}",
        text(&out)
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "text,category\nwhere is it,delivery\n,refund\nrefund me,\n",
    )
    .expect("w");
    let out = run(&[
        "intents",
        "train",
        "--input",
        bad.to_str().expect("p"),
        "--output",
        model,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("line(s) 3, 4"), "{}", text(&out));

    // Text that is not UTF-8 (Latin-1 "é") is refused with its line.
    let latin1 = dir.path().join("latin1.csv");
    std::fs::write(
        &latin1,
        b"text,category\nwhere is it,delivery\ncaf\xe9 refund please,refund\n",
    )
    .expect("w");
    let out = run(&[
        "intents",
        "train",
        "--input",
        latin1.to_str().expect("p"),
        "--output",
        model,
    ]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("latin1.csv, line 3") && t.to_lowercase().contains("utf-8"),
        "{t}"
    );

    let junk = dir.path().join("junk.rpi");
    std::fs::write(&junk, "not a model").expect("w");
    let out = run(&[
        "intents",
        "eval",
        "--model",
        junk.to_str().expect("p"),
        "--input",
        &intents_fixture("test.csv"),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("junk.rpi is not a usable intent model"),
        "{}",
        text(&out)
    );
}

#[test]
fn analyze_flags_empty_and_truncated_texts_and_reads_emoji_and_mixed_languages() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("awkward.jsonl");
    let big = "slow internet again. ".repeat(50_000); // about 1 MB
    let lines = [
        json!({"id": "empty", "text": ""}),
        json!({"id": "blank", "text": "   \t  "}),
        json!({"id": "emoji", "text": "😡😡😡"}),
        json!({"id": "mixed", "text": "Hola, my internet no funciona desde ayer, please help"}),
        json!({"id": "big", "text": big}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, body).expect("write");
    let out = run(&["analyze", file.to_str().expect("p"), "--max-chars", "20000"]);
    assert!(out.status.success(), "{}", text(&out));
    let got: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(
        (got[0]["empty"].as_bool(), got[1]["empty"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(got[0]["emotions"], json!([]));
    assert_eq!(got[2]["emotions"][0]["kind"], "anger");
    assert_eq!(got[3]["empty"], false);
    assert!(got[3]["urgency"]["reasons"].as_array().is_some());
    assert_eq!(got[4]["truncated"], true);
    assert_eq!(got[4]["chars"].as_u64(), Some(20_000));
    assert_eq!(got[2]["truncated"], false);
}

#[test]
fn users_are_made_reset_disabled_and_enabled_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = rapport()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let made = with_stdin(
        &[
            "users",
            "create",
            "--login",
            "Ana.Silva",
            "--role",
            "agent",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        "a password of length\n",
    );
    assert!(made.status.success(), "{}", text(&made));
    let short = with_stdin(
        &[
            "users",
            "password",
            "--login",
            "ana.silva",
            "--password-stdin",
            "--data-dir",
            d,
        ],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(text(&short).contains("weak_password"), "{}", text(&short));
    let reset = run(&["users", "password", "--login", "ana.silva", "--data-dir", d]);
    assert!(reset.status.success(), "{}", text(&reset));
    assert_eq!(
        last_line(&reset).len(),
        20,
        "a generated password: {}",
        text(&reset)
    );

    let off = run(&["users", "disable", "--login", "ana.silva", "--data-dir", d]);
    assert!(off.status.success(), "{}", text(&off));
    let list = run(&["users", "list", "--data-dir", d]);
    assert!(
        text(&list).contains("ana.silva\tagent") && text(&list).contains("\tdisabled"),
        "{}",
        text(&list)
    );
    let on = run(&["users", "enable", "--login", "ana.silva", "--data-dir", d]);
    assert!(on.status.success(), "{}", text(&on));
    assert!(text(&run(&["users", "list", "--data-dir", d])).contains("\tactive"));

    let nobody = run(&["users", "disable", "--login", "nobody", "--data-dir", d]);
    assert!(!nobody.status.success());
    assert!(
        text(&nobody).contains("no account has the login nobody"),
        "{}",
        text(&nobody)
    );
    // Every change is in the audit trail, which still verifies.
    let verify = run(&["audit", "verify", "--data-dir", d]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn churn_models_are_trained_listed_and_activated_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    // Nothing to learn from in an empty store: a clear error, no version.
    let empty = run(&["churn", "train", "--data-dir", d]);
    assert!(!empty.status.success());
    assert!(
        text(&empty).contains("training_data_insufficient"),
        "{}",
        text(&empty)
    );

    // 240 customers over 160 days; the unhappy third (low NPS) mostly cancel.
    let now = chrono::Utc::now();
    let mut lines = String::new();
    for i in 0..240i64 {
        let unhappy = i % 3 == 0;
        let start = now - chrono::Duration::days(160) + chrono::Duration::hours(i * 7 % 200);
        let leaves = if unhappy { i % 5 != 0 } else { i % 29 == 0 };
        let end = start + chrono::Duration::days(35 + (i * 13) % 120);
        let end = if leaves && end < now { end } else { now };
        let mut push = |v: Value| {
            lines.push_str(&v.to_string());
            lines.push('\n');
        };
        push(
            json!({"type": "identify", "userId": format!("c{i}"), "timestamp": start.to_rfc3339(),
            "messageId": format!("c{i}-id"), "traits": {"plan": "fiber"}}),
        );
        let mut t = start;
        let mut n = 0;
        while t < end {
            n += 1;
            push(
                json!({"type": "page", "userId": format!("c{i}"), "name": "Home",
                "timestamp": t.to_rfc3339(), "messageId": format!("c{i}-p{n}")}),
            );
            if n % 5 == 0 {
                let score = if unhappy {
                    (i + n) % 4
                } else {
                    8 + (i + n) % 3
                };
                push(
                    json!({"type": "track", "userId": format!("c{i}"), "event": "Survey Responded",
                    "timestamp": t.to_rfc3339(), "messageId": format!("c{i}-s{n}"),
                    "properties": {"survey": "nps", "score": score}}),
                );
            }
            t += chrono::Duration::days(4);
        }
        if end < now {
            push(
                json!({"type": "track", "userId": format!("c{i}"), "event": "Subscription Cancelled",
                "timestamp": end.to_rfc3339(), "messageId": format!("c{i}-bye")}),
            );
        }
    }
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines).expect("write");
    let imported = run(&[
        "import",
        "events",
        file.to_str().expect("path"),
        "--data-dir",
        d,
    ]);
    assert!(imported.status.success(), "{}", text(&imported));

    let trained = run(&["churn", "train", "--json", "--data-dir", d]);
    assert!(trained.status.success(), "{}", text(&trained));
    let report: Value = serde_json::from_slice(&trained.stdout).expect("json");
    assert_eq!(report["version"]["version"], 1);
    assert_eq!(report["version"]["active"], true);
    assert!(
        report["summary"]["holdout"]["roc_auc"]
            .as_f64()
            .expect("auc")
            > 0.6,
        "{report}"
    );

    let second = run(&["churn", "train", "--activate", "false", "--data-dir", d]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("version 2 (not active)"),
        "{}",
        text(&second)
    );
    let listed = run(&["churn", "versions", "--data-dir", d]);
    let out = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        out.lines().next().is_some_and(|l| l.starts_with("2\t-")),
        "{out}"
    );
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("1\tactive")),
        "{out}"
    );
    let wrong = run(&["churn", "activate", "--version", "7", "--data-dir", d]);
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("not found"), "{}", text(&wrong));
    let swapped = run(&["churn", "activate", "--version", "2", "--data-dir", d]);
    assert!(swapped.status.success(), "{}", text(&swapped));
    let listed = run(&["churn", "versions", "--data-dir", d]);
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("2\tactive"));
}

#[test]
fn profiles_dedupe_merges_queues_and_dry_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    let file = dir.path().join("people.jsonl");
    let home = json!({"street": "12 Oak Street", "postalCode": "94105"});
    let lines = [
        json!({"type": "identify", "anonymousId": "g-1", "traits": {"first_name": "Maria",
            "last_name": "Gonzalez", "email": "maria@a.io", "birthday": "1980-03-14", "address": home}}),
        json!({"type": "identify", "anonymousId": "g-2", "traits": {"first_name": "Marria",
            "last_name": "Gonzalez", "email": "mg@b.io", "birthday": "1980-03-14", "address": home}}),
        json!({"type": "identify", "anonymousId": "r-1", "traits": {"first_name": "Peter",
            "last_name": "Novak", "email": "peter@c.io", "birthday": "1975-06-02",
            "address": {"street": "1 Elm Street", "postalCode": "10001"}}}),
        json!({"type": "identify", "anonymousId": "r-2", "traits": {"first_name": "Peter",
            "last_name": "Novak", "email": "pn@d.io", "birthday": "1975-06-02",
            "address": {"street": "400 Lake Road", "postalCode": "60601"}}}),
    ];
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
    let out = run(&[
        "import",
        "events",
        file.to_str().expect("p"),
        "--data-dir",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let dedupe = |extra: &[&str]| {
        let mut args = vec![
            "profiles",
            "dedupe",
            "--data-dir",
            d,
            "--auto-merge-threshold",
            "0.99999",
            "--review-threshold",
            "0.5",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let json_of = |o: &Output| -> Value {
        assert!(o.status.success(), "{}", text(o));
        serde_json::from_slice(&o.stdout).expect("json report")
    };

    let dry = json_of(&dedupe(&["--dry-run", "--json"]));
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["profiles_scanned"].as_u64()),
        (Some(true), Some(4))
    );
    assert_eq!(
        (dry["merged"].as_u64(), dry["queued"].as_u64()),
        (Some(1), Some(1)),
        "{dry}"
    );
    assert_eq!(dry["actions"][0]["action"], "would_merge");

    let out = dedupe(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let summary = text(&out);
    assert!(summary.contains("profiles scanned: 4"), "{summary}");
    assert!(summary.contains(": 1, queued for review"), "{summary}");

    let again = json_of(&dedupe(&["--json"]));
    assert_eq!(
        (again["merged"].as_u64(), again["queued"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(
        again["profiles_scanned"], 3,
        "the merged pair is one profile now"
    );
    assert_eq!(
        again["skipped_known"], 1,
        "the queued pair is not queued twice"
    );

    let bad = run(&[
        "profiles",
        "dedupe",
        "--data-dir",
        d,
        "--review-threshold",
        "1.5",
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("not between 0 and 1"), "{}", text(&bad));
    let missing = run(&["profiles", "dedupe", "--data-dir", d, "--workspace", "nope"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("workspace nope does not exist"),
        "{}",
        text(&missing)
    );
}

#[test]
fn intents_retrain_learns_from_the_corrections_in_the_store() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("dir");
    // Without corrections: a first version from the taxonomy alone.
    let first = run(&["intents", "retrain", "--data-dir", d, "--json"]);
    assert!(first.status.success(), "{}", text(&first));
    let first: Value = serde_json::from_str(&last_line(&first)).expect("json");
    assert_eq!(first["model"]["version"], 1);
    assert_eq!(first["report"]["corrections"], 0);
    assert_eq!(first["activated"], true);

    // Agents' corrections as the store keeps them (redacted texts): double charges are
    // billing disputes here, and weather questions are out of scope.
    {
        let c = rusqlite::Connection::open(dir.path().join("rapport.db")).expect("open");
        let ws: String = c
            .query_row(
                "SELECT id FROM workspaces WHERE name = 'default'",
                [],
                |r| r.get(0),
            )
            .expect("default workspace");
        let rows = [
            (
                "m1",
                "I want my money back for the double charge",
                Some("billing_dispute"),
            ),
            (
                "m2",
                "money back for the double charge please",
                Some("billing_dispute"),
            ),
            (
                "m3",
                "I want my money back, you charged me double",
                Some("billing_dispute"),
            ),
            (
                "m4",
                "give me my money back for the double charge on my card [EMAIL]",
                Some("billing_dispute"),
            ),
            ("m5", "what is the weather like in lisbon tomorrow", None),
            ("m6", "any rain expected in lisbon this weekend", None),
        ];
        for (id, text, label) in rows {
            c.execute(
                "INSERT INTO intent_corrections (workspace_id, message_id, conversation_id, profile_id,
                    text, predicted, confidence_ppm, model_version, corrected, corrected_by, corrected_at)
                 VALUES (?1, ?2, 'cnv_x', 'prof_x', ?3, 'refund_request', 600000, 1, ?4, 'user:usr_a', 1700000000000)",
                rusqlite::params![ws, id, text, label],
            )
            .expect("insert");
        }
    }
    let second = run(&["intents", "retrain", "--data-dir", d]);
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(
        out.contains("trained intent model version 2 of workspace default")
            && out.contains("and 6 corrections (2 out of scope, 0 skipped)")
            && out.contains("version 2 is now in use"),
        "{out}"
    );
    {
        let c = rusqlite::Connection::open(dir.path().join("rapport.db")).expect("open");
        let active: i64 = c
            .query_row("SELECT version FROM intent_active", [], |r| r.get(0))
            .expect("active");
        assert_eq!(active, 2);
        let trained: i64 = c
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'intent.model_trained'",
                [],
                |r| r.get(0),
            )
            .expect("audit");
        assert_eq!(trained, 2);
    }

    let nowhere = run(&["intents", "retrain", "--workspace", "nope", "--data-dir", d]);
    assert!(!nowhere.status.success());
    assert!(text(&nowhere).contains("nope"), "{}", text(&nowhere));
}

/// A reader that stops early (`rapport openapi | head`) ends the command quietly, not with a
/// panic about printing to stdout.
#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let mut child = rapport()
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rapport openapi");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    // The reader is dropped here; the document (about 200 KB) is larger than a pipe holds.
    assert!(first.starts_with('{'), "{first}");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc_sigpipe()),
            "{:?}",
            out.status
        );
    }
}

/// SIGPIPE's number on Linux and the BSDs.
#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13
}
