//! Page frame, styles and small formatting helpers shared by the dashboard pages.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

const STYLE: &str = r#"
:root { --ink:#1d2433; --muted:#6b7385; --line:#e3e6ee; --bg:#f6f7fb; --accent:#3b5bdb; --good:#2b8a3e; --bad:#c92a2a; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:10px 24px; display:flex; gap:24px; align-items:center; }
header .brand { font-weight:700; color:var(--accent); font-size:18px; }
header nav a { color:var(--ink); text-decoration:none; margin-right:16px; }
header .ws { margin-left:auto; color:var(--muted); font-size:13px; }
header form { margin:0; }
main { max-width:1180px; margin:0 auto; padding:24px; }
h1 { font-size:22px; margin:0 0 16px; } h2 { font-size:17px; margin:24px 0 10px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(160px, 1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px; }
.card .n { font-size:26px; font-weight:650; } .card .l { color:var(--muted); font-size:13px; }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); border-radius:8px; }
th, td { text-align:left; padding:8px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; color:var(--muted); letter-spacing:.04em; }
a { color:var(--accent); }
.chip { display:inline-block; padding:1px 8px; border-radius:10px; background:#edf0fb; font-size:12px; margin:1px 2px; }
.muted { color:var(--muted); } .mono { font-family:ui-monospace, monospace; font-size:13px; }
.bar { height:10px; background:var(--accent); border-radius:4px; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap:18px; }
.msg { background:#fff; border:1px solid var(--line); border-radius:10px; padding:10px 14px; margin:8px 0; max-width:75%; }
.msg.inbound { margin-right:auto; } .msg.outbound { margin-left:auto; background:#eef3ff; }
.msg .meta { font-size:12px; color:var(--muted); margin-bottom:4px; }
input[type=search], input[type=password], input[type=text] { padding:8px 10px; border:1px solid var(--line); border-radius:6px; font-size:15px; width:320px; }
button { padding:8px 14px; border:0; border-radius:6px; background:var(--accent); color:#fff; font-size:14px; cursor:pointer; }
.login { max-width:460px; margin:80px auto; background:#fff; border:1px solid var(--line); border-radius:10px; padding:28px; }
.error { color:var(--bad); } .live { color:var(--good); font-size:12px; }
pre { white-space:pre-wrap; word-break:break-word; margin:0; font-family:inherit; }
mark { background:#fff3bf; border-radius:3px; padding:0 2px; }
.chips { margin-top:6px; } .chip.hot { background:#ffe3e3; color:#a61e1e; } .chip.warn { background:#fff4e6; color:#a64b00; }
.chip.consent-granted { background:#ebfbee; color:#2b8a3e; } .chip.consent-denied, .chip.consent-withdrawn { background:#ffe3e3; color:#a61e1e; }
.small { font-size:12px; } button.danger { background:#c92a2a; color:#fff; border:0; padding:6px 12px; border-radius:4px; cursor:pointer; }
.chip.good { background:#ebfbee; color:#2b8a3e; } .chip.intent { background:#e7f5ff; color:#1864ab; } .chip.muted { color:var(--muted); }
.spark { display:block; margin-top:4px; }
"#;

pub fn page(title: &str, workspace: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Rapport" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "Rapport" }
                    nav {
                        a href="/" { "Overview" }
                        a href="/customers" { "Customers" }
                        a href="/queue" { "Queue" }
                        a href="/approvals" { "Approvals" }
                        a href="/alerts" { "Alerts" }
                        a href="/audit" { "Audit" }
                        a href="/fairness" { "Fairness" }
                        a href="/dead-letters" { "Dead letters" }
                        a href="/data-quality" { "Data quality" }
                        a href="/duplicates" { "Duplicates" }
                        a href="/intents" { "Intents" }
                    }
                    span.ws { "workspace " strong { (workspace) } " · " a href="/account" { "Account" } " · " a href="/users" { "Users" } }
                    form method="post" action="/logout" { button type="submit" { "Sign out" } }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>, demo: &[crate::DemoAccount]) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Sign in · Rapport" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                div.login {
                    h1 { "Sign in to Rapport" }
                    p.muted { "An admin makes accounts with " span.mono { "rapport users create" } "." }
                    @if let Some(e) = error { p.error #login-error { (e) } }
                    form method="post" action="/login" {
                        p { input #login type="text" name="login" placeholder="login" autocomplete="username" required; }
                        p { input #password type="password" name="password" placeholder="password" autocomplete="current-password" required; }
                        button #sign-in type="submit" { "Sign in" }
                    }
                    @if !demo.is_empty() {
                        table.demo-accounts {
                            caption.muted { "Demo accounts" }
                            @for a in demo {
                                tr {
                                    td.mono { (a.login) }
                                    td { (a.role.as_str()) }
                                    td.mono data-login=(a.login) { (a.password) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "3 min ago" style, with the exact time in the tooltip.
pub fn ago(t: Option<DateTime<Utc>>) -> Markup {
    let Some(t) = t else {
        return html! { span.muted { "never" } };
    };
    let secs = (Utc::now() - t).num_seconds();
    let text = match secs {
        s if s < 0 => "just now".to_owned(),
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    };
    html! { span title=(rapport_core::time::format(t)) { (text) } }
}

pub fn chips<'a>(items: impl IntoIterator<Item = &'a str>) -> Markup {
    html! { @for i in items { span.chip { (i) } } }
}
