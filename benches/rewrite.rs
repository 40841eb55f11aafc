//! `cargo bench --bench rewrite`: the OpenAI Responses rewrite against plain
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_precision_loss)]
//! `serde_json::Value` parsing of the same body, natively (harness = false,
//! timed with `std::time::Instant`; no dependencies beyond the crate's own).
//!
//! Bodies: the JSON files in `$MCPGATE_BENCH_BODIES` (written by bench/run.mjs,
//! so the worker and the core are timed on identical bytes), or, standalone,
//! generated here in the same shape: a conversation history as filler and two
//! managed MCP servers to complete. `MCPGATE_BENCH_SMOKE=1` runs few iterations.
//!
//! Prints one `BENCH_JSON {...}` line per body for the harness, and a table.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use mcpgate::crypto::Secret;
use mcpgate::crypto::{sha256_hex, MasterKey};
use mcpgate::provider::gemini::rewrite_interactions;
use mcpgate::provider::json;
use mcpgate::provider::openai::rewrite_responses;
use mcpgate::provider::Provider;
use mcpgate::tenant::storage::{open_tenant, seal_tenant, Opening};
use mcpgate::tenant::{Approval, McpAuth, McpMode, McpPolicy, McpServer, Tenant};

fn policy() -> McpPolicy {
    let mut servers = BTreeMap::new();
    servers.insert(
        "crm".to_owned(),
        McpServer {
            url: "https://mcp.example.com/crm".into(),
            auth: McpAuth::Bearer(Secret::new("tok-crm-bench-0123456789")),
            allowed_tools: Some(vec!["search".into(), "lookup".into()]),
            require_approval: Approval::Never,
            mode: McpMode::Direct,
            service: None,
        },
    );
    servers.insert(
        "files".to_owned(),
        McpServer {
            url: "https://files.example.com/mcp".into(),
            auth: McpAuth::Headers(vec![("X-Api-Key".into(), Secret::new("files-key-bench-0123456789"))]),
            allowed_tools: None,
            require_approval: Approval::Never,
            mode: McpMode::Direct,
            service: None,
        },
    );
    servers.insert(
        "docs".to_owned(),
        McpServer {
            url: "https://docs.example.com/mcp".into(),
            auth: McpAuth::None,
            allowed_tools: None,
            require_approval: Approval::Never,
            mode: McpMode::Direct,
            service: None,
        },
    );
    McpPolicy { servers, allow_unmanaged: false }
}

const MSG_TEXT: &str = "The quarterly report says revenue grew 12.5% to $4.2M; \\\"churn\\\" fell to 1.8%. R\u{e9}sum\u{e9} of open items: \u{2713} invoices #1042\u{2013}#1057, \u{2717} the \\\\ backslash case, tabs\\tand\\nnewlines. ";

/// Same shape as bench/run.mjs's `makeBody` (used when run standalone).
fn make_body(size: usize) -> Vec<u8> {
    let msg = |i: usize| {
        let (role, ty) = if i % 2 == 1 { ("assistant", "output_text") } else { ("user", "input_text") };
        format!(r#"{{"role":"{role}","content":[{{"type":"{ty}","text":"{i}: {}"}}]}}"#, MSG_TEXT.repeat(8))
    };
    let msg_len = msg(1000).len() + 1;
    let n = (size / msg_len).max(1);
    let input: Vec<String> = (0..n).map(msg).collect();
    format!(
        r#"{{"model":"gpt-4.1","instructions":"You are a helpful assistant for ACME Corp.","input":[{}],"tools":[{{"type":"mcp","server_label":"crm","allowed_tools":["search","lookup","delete"]}},{{"type":"mcp","server_label":"files","require_approval":"always"}},{{"type":"function","name":"get_weather","description":"Current weather for a city.","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}},"unit":{{"type":"string","enum":["c","f"]}}}},"required":["city"]}}}}],"stream":false,"metadata":{{"run":"bench"}}}}"#,
        input.join(",")
    )
    .into_bytes()
}

/// The same body as a Gemini Interactions request: `tools` in Gemini's
/// `mcp_server` shape (same two managed servers), every other member as is.
fn gemini_body(body: &[u8]) -> Vec<u8> {
    let mut top = json::strict_object(body).expect("object");
    let tools = r#"[{"type":"mcp_server","name":"crm","allowed_tools":[{"tools":["search","lookup","delete"]}]},{"type":"mcp_server","name":"files"},{"type":"function","name":"get_weather"}]"#;
    let raw: Box<serde_json::value::RawValue> = serde_json::from_str(tools).expect("tools");
    top.set("tools", json::Val::json(&raw).expect("val"));
    top.to_vec().expect("body")
}

fn bodies() -> Vec<(String, Vec<u8>)> {
    if let Ok(dir) = std::env::var("MCPGATE_BENCH_BODIES") {
        if !dir.is_empty() {
            let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .map(|p| {
                    let label = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().trim_start_matches("body-").to_uppercase())
                        .unwrap_or_default();
                    let label = label.replace("KB", " KB").replace("MB", " MB");
                    (label, std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
                })
                .collect();
            out.sort_by_key(|(_, b)| b.len());
            return out;
        }
    }
    [("2 KB", 2 << 10), ("100 KB", 100 << 10), ("1 MB", 1 << 20), ("10 MB", 10 << 20)]
        .into_iter()
        .map(|(l, s)| (l.to_owned(), make_body(s)))
        .collect()
}

/// Median seconds per call over `runs` runs of `iters` calls.
fn time<F: FnMut()>(runs: usize, iters: usize, mut f: F) -> f64 {
    let mut per = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        per.push(t.elapsed().as_secs_f64() / iters as f64);
    }
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}

fn main() {
    let smoke = std::env::var("MCPGATE_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let (runs, budget) = if smoke { (3, Duration::from_millis(20)) } else { (7, Duration::from_millis(300)) };
    let policy = policy();

    // Per-request tenant work besides the rewrite: hash the gateway key, open the envelopes.
    let master = MasterKey::from_base64(&base64_of_sevens()).expect("master key");
    let tenant =
        Tenant { openai_key: Some(Secret::new("sk-bench-upstream")), mcp: policy.clone(), ..Tenant::default() };
    let stored = seal_tenant(&master, "bench", &tenant).expect("seal");
    let open_s = time(runs, if smoke { 10 } else { 2000 }, || {
        black_box(sha256_hex(black_box(b"mgk_0123456789abcdef0123456789abcdef0123")));
        black_box(open_tenant(&master, "bench", &stored, Opening::Provider(Provider::OpenAi)).expect("open"));
    });

    println!(
        "{:<8} {:>10} {:>14} {:>14} {:>14} {:>14} {:>8} {:>14}",
        "body", "bytes", "Value MB/s", "check MB/s", "members MB/s", "rewrite MB/s", "ratio", "gemini MB/s"
    );
    for (label, body) in bodies() {
        let out = rewrite_responses(&body, &policy).expect("rewrite");
        // The conversation bodies name two managed servers, the prose one one.
        assert!(out.body.is_some() && !out.injected.is_empty(), "{label}: expected injections");
        let gem = gemini_body(&body);
        let out = rewrite_interactions(&gem, &policy).expect("gemini rewrite");
        assert!(out.body.is_some() && !out.injected.is_empty(), "{label}: expected Gemini injections");
        // Calibrate iterations to the time budget with one timed call.
        let t = Instant::now();
        black_box(rewrite_responses(black_box(&body), &policy).expect("rewrite"));
        let iters = ((budget.as_secs_f64() / t.elapsed().as_secs_f64().max(1e-7)) as usize).clamp(1, 100_000);
        let mbps = |s: f64| body.len() as f64 / s / 1e6;
        let (mut v, mut c, mut m, mut r, mut g) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Interleave the four measurements, `runs` times each.
        for _ in 0..runs {
            v.push(time(1, iters, || {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).expect("parse"));
            }));
            c.push(time(1, iters, || json::check_strict(black_box(&body)).expect("strict")));
            m.push(time(1, iters, || {
                black_box(json::strict_object(black_box(&body)).expect("members"));
            }));
            r.push(time(1, iters, || {
                black_box(rewrite_responses(black_box(&body), &policy).expect("rewrite"));
            }));
            g.push(time(1, iters, || {
                black_box(rewrite_interactions(black_box(&gem), &policy).expect("gemini rewrite"));
            }));
        }
        let med = |mut xs: Vec<f64>| {
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        let (v, c, m, r, g) = (med(v), med(c), med(m), med(r), med(g));
        println!(
            "{label:<8} {:>10} {:>14.0} {:>14.0} {:>14.0} {:>14.0} {:>7.2}x {:>14.0}",
            body.len(),
            mbps(v),
            mbps(c),
            mbps(m),
            mbps(r),
            v / r,
            gem.len() as f64 / g / 1e6
        );
        println!(
            "BENCH_JSON {{\"size_label\":\"{label}\",\"bytes\":{},\"iters\":{iters},\"runs\":{runs},\"serde_value_mbps\":{:.3},\"check_strict_mbps\":{:.3},\"strict_object_mbps\":{:.3},\"rewrite_mbps\":{:.3},\"rewrite_vs_serde_value\":{:.4},\"rewrite_us\":{:.3},\"open_tenant_us\":{:.3},\"gemini_rewrite_mbps\":{:.3},\"gemini_rewrite_us\":{:.3}}}",
            body.len(), mbps(v), mbps(c), mbps(m), mbps(r), v / r, r * 1e6, open_s * 1e6, gem.len() as f64 / g / 1e6, g * 1e6
        );
    }
    println!("open_tenant + sha256 per request: {:.1} µs", open_s * 1e6);
}

fn base64_of_sevens() -> String {
    // 32 bytes of 0x07, base64 (the same MASTER_KEY bench/run.mjs uses).
    "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_owned()
}
