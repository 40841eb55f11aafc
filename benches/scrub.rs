//! `cargo bench --bench scrub`: scrubber and SSE framer throughput, natively,
//! on a synthetic OpenAI Responses stream (small text deltas with JSON escapes,
//! tool-call output that echoes a secret) fed in 1 KiB chunks. Timed with
//! `std::time::Instant`; `MCPGATE_BENCH_SMOKE=1` runs few iterations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use mcpgate::stream::framer::Events;
use mcpgate::stream::scrub::Scrubber;
use mcpgate::stream::sse::SseKind;
use mcpgate::stream::usage::{BodyKind, UsageMeter};

const SECRET: &str = "mcp_tok_\"b3nch/\\0123456789";

fn stream() -> Vec<u8> {
    let mut out = String::new();
    let esc = serde_json::Value::from(SECRET).to_string();
    for i in 0..4000 {
        let text = if i % 500 == 7 { format!("echo {esc} tail") } else { format!("word{i} \"quoted\" \\path\\ ") };
        let data = serde_json::json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1,
            "content_index": 0, "delta": text, "sequence_number": i});
        out.push_str(&format!("event: response.output_text.delta\ndata: {data}\n\n"));
    }
    out.into_bytes()
}

fn time(iters: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() / iters as f64
}

fn main() {
    let smoke = std::env::var("MCPGATE_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let iters = if smoke { 2 } else { 30 };
    let body = stream();
    let mbps = |s: f64| body.len() as f64 / s / 1e6;
    let run = |mut s: Scrubber| {
        let mut n = 0;
        for c in body.chunks(1024) {
            n += s.push(black_box(c)).len();
        }
        n + s.finish().len()
    };
    let bytes = time(iters, || {
        black_box(run(Scrubber::new([SECRET]).unwrap()));
    });
    let sse = time(iters, || {
        black_box(run(Scrubber::for_sse([SECRET], SseKind::OpenAiResponses).unwrap()));
    });
    let frame = time(iters, || {
        let mut ev = Events::new(8 << 20);
        let mut n = 0;
        for c in body.chunks(1024) {
            ev.push(black_box(c), |_| n += 1);
        }
        black_box(n);
    });
    let meter = time(iters, || {
        let mut m = UsageMeter::new(BodyKind::Sse);
        for c in body.chunks(1024) {
            m.push(black_box(c));
        }
        black_box(m.finish());
    });
    println!("stream: {} bytes, 4000 delta events, 1 KiB chunks", body.len());
    println!("framer          {:>8.1} MB/s", mbps(frame));
    println!("usage meter     {:>8.1} MB/s", mbps(meter));
    println!("scrub (bytes)   {:>8.1} MB/s", mbps(bytes));
    println!("scrub (SSE)     {:>8.1} MB/s", mbps(sse));
}
