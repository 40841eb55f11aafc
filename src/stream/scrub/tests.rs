//! Scrubber tests: bytes mode, SSE mode with secrets split over deltas, and
//! the property that no chunking, event split or escape form lets a secret
//! through, while text without a secret is never changed.

use super::*;
use crate::stream::framer;
use proptest::prelude::*;
use serde_json::{json, Value};

fn run(s: &mut Scrubber, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend(s.push(c));
    }
    out.extend(s.finish());
    out
}

/// One level of JSON string escaping, without the quotes.
fn esc(s: &str) -> String {
    let q = Value::from(s).to_string();
    q[1..q.len() - 1].to_string()
}

/// Every character as `\uXXXX`.
fn esc_u(s: &str) -> String {
    s.encode_utf16().map(|u| format!("\\u{u:04X}")).collect()
}

#[test]
fn replaces_raw_and_escaped_forms() {
    let mut s = Scrubber::new(["tok\"en/123"]).unwrap();
    let body = br#"a tok"en/123 b "tok\"en/123" c tok\"en\/123 d tok\u0022en\u002F123 e"#;
    let out = String::from_utf8(run(&mut s, &[body])).unwrap();
    assert_eq!(out, "a [redacted] b \"[redacted]\" c [redacted] d [redacted] e");
}

#[test]
fn split_across_chunks() {
    let mut s = Scrubber::new(["secret-token"]).unwrap();
    assert_eq!(run(&mut s, &[b"xx secr", b"et-to", b"ken yy"]), b"xx [redacted] yy");
}

#[test]
fn holds_back_only_a_possible_secret_start() {
    let mut s = Scrubber::new(["abcdefgh"]).unwrap();
    assert_eq!(s.push(b"0123456789"), b"0123456789", "nothing here can start the secret");
    assert_eq!(s.push(b"data: x\n\nabcd"), b"data: x\n\n", "only the possible start is held");
    assert_eq!(s.push(b"efgh!\n\n"), b"[redacted]!\n\n");
    assert_eq!(s.push(b"zabcdefg"), b"z");
    assert_eq!(s.finish(), b"abcdefg");
}

#[test]
fn short_secrets_are_ignored() {
    assert!(Scrubber::new(["abc"]).is_none());
    assert!(Scrubber::for_sse(["abc"], SseKind::Anthropic).is_none());
}

#[test]
fn headers_are_scrubbed() {
    let s = Scrubber::new(["sk-secret-1"]).unwrap();
    let h = vec![
        ("x-echo".to_string(), "Bearer sk-secret-1".to_string()),
        ("x-json".to_string(), "{\"k\":\"sk\\u002dsecret-1\"}".to_string()),
        ("content-type".to_string(), "text/plain".to_string()),
    ];
    let out = s.scrub_headers(&h);
    assert_eq!(out[0].1, "Bearer [redacted]");
    assert_eq!(out[1].1, "{\"k\":\"[redacted]\"}");
    assert_eq!(out[2], h[2]);
}

fn openai_delta(text: &str, seq: usize) -> String {
    let data = json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": text, "sequence_number": seq});
    format!("event: response.output_text.delta\ndata: {data}\n\n")
}

fn anthropic_delta(text: &str, kind: &str) -> String {
    let field = match kind {
        "text_delta" => "text",
        "input_json_delta" => "partial_json",
        _ => "thinking",
    };
    let data = json!({"type": "content_block_delta", "index": 1, "delta": {"type": kind, field: text}});
    format!("event: content_block_delta\ndata: {data}\n\n")
}

/// The events of an SSE text and, for delta events, their text pieces.
fn parse(out: &[u8], kind: SseKind) -> (usize, String) {
    let mut ev = framer::Events::new(usize::MAX);
    let mut count = 0;
    let mut text = String::new();
    let mut take = |p: framer::Piece<'_>| {
        let framer::Piece::Event(e) = p else { panic!("unfinished event in the output") };
        count += 1;
        if let Some(d) = framer::data(e) {
            let v: Value = serde_json::from_slice(&d).expect("every event's data is JSON");
            let piece = match kind {
                SseKind::Anthropic => v["delta"]["text"].as_str().or(v["delta"]["partial_json"].as_str()),
                _ => v["delta"].as_str(),
            };
            text.push_str(piece.unwrap_or(""));
        }
    };
    ev.push(out, &mut take);
    ev.finish(&mut take);
    (count, text)
}

#[test]
fn a_secret_split_over_two_deltas_is_found_and_events_stay_whole() {
    let secret = "mcp_tok_9f8e7d6c";
    for (kind, a, b) in [
        (SseKind::OpenAiResponses, openai_delta("key: mcp_tok_9f", 3), openai_delta("8e7d6c end", 4)),
        (
            SseKind::Anthropic,
            anthropic_delta("key: mcp_tok_9f", "text_delta"),
            anthropic_delta("8e7d6c end", "text_delta"),
        ),
    ] {
        let stream = format!("{a}event: ping\ndata: {{\"type\":\"ping\"}}\n\n{b}");
        let mut s = Scrubber::for_sse([secret], kind).unwrap();
        let out = run(&mut s, &[stream.as_bytes()]);
        let (count, text) = parse(&out, kind);
        assert_eq!(count, 3, "{}", String::from_utf8_lossy(&out));
        assert_eq!(text, "key: [redacted] end");
        // Only the delta strings changed.
        let o = String::from_utf8(out).unwrap();
        assert!(o.contains("\"sequence_number\":3") || kind == SseKind::Anthropic);
    }
}

#[test]
fn the_first_event_waits_only_while_a_secret_may_be_starting() {
    let secret = "mcp_tok_9f8e7d6c";
    let mut s = Scrubber::for_sse([secret], SseKind::OpenAiResponses).unwrap();
    let plain = openai_delta("hello world", 1);
    assert_eq!(s.push(plain.as_bytes()), plain.as_bytes(), "no secret start: unchanged, at once");
    let part = openai_delta("see mcp_t", 2);
    assert!(s.push(part.as_bytes()).is_empty(), "held: it may start the secret");
    let done = "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"text\":\"x\"}\n\n";
    let out = s.push(done.as_bytes());
    assert_eq!(out, [part.as_bytes(), done.as_bytes()].concat(), "another event: the held text goes back");
}

#[test]
fn tool_arguments_split_with_escaped_secret() {
    // The model writes JSON arguments: the secret appears JSON-escaped inside the delta text.
    let secret = "hdr/\"x\\y-123";
    let args = format!("{{\"auth\":\"{}\"}}", esc(secret));
    let (a, b) = args.split_at(14);
    let stream = [anthropic_delta(a, "input_json_delta"), anthropic_delta(b, "input_json_delta")].concat();
    let mut s = Scrubber::for_sse([secret], SseKind::Anthropic).unwrap();
    let out = run(&mut s, &[stream.as_bytes()]);
    assert_eq!(parse(&out, SseKind::Anthropic).1, "{\"auth\":\"[redacted]\"}");
}

/// The forms a test puts a secret in (inside the delta text, before the event's own JSON escaping).
fn form(secret: &str, which: u8) -> String {
    match which {
        0 => secret.to_string(),
        1 => esc(secret),
        2 => esc(&esc(secret)),
        _ => esc_u(secret),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over random delta splits, pings in between, random chunkings and escape
    /// forms: the reassembled text is the original with the secret replaced,
    /// every event is whole JSON, no form of the secret is in the output; a
    /// stream without the secret keeps its text (and its bytes, when nothing
    /// in it could start a secret, so nothing was held back).
    #[test]
    fn sse_never_lets_a_secret_through(
        secret in prop::sample::select(vec!["Sk-live_\"9/x\\y", "Qmcp_tok_abcdef123456", "Zhdr/\"é\\q"]),
        prefix in "[a-j ,.:{}\"\\\\]{0,30}",
        suffix in "[a-j ,.:{}\"\\\\]{0,30}",
        with_secret in any::<bool>(),
        which in 0u8..4,
        anthropic in any::<bool>(),
        splits in proptest::collection::vec(0usize..200, 0..6),
        pings in proptest::collection::vec(any::<bool>(), 8),
        cuts in proptest::collection::vec(0usize..2000, 0..10),
    ) {
        let kind = if anthropic { SseKind::Anthropic } else { SseKind::OpenAiResponses };
        let middle = if with_secret { form(secret, which) } else { String::new() };
        let text = format!("{prefix}{middle}{suffix}");
        let mut points: Vec<usize> = splits.iter().map(|&c| c.min(text.len())).filter(|&c| text.is_char_boundary(c)).collect();
        points.sort_unstable();
        points.dedup();
        let mut stream = String::from("event: start\ndata: {\"type\":\"start\"}\n\n");
        let mut last = 0;
        for (n, p) in points.iter().copied().chain(std::iter::once(text.len())).enumerate() {
            let piece = &text[last..p];
            last = p;
            stream.push_str(&if anthropic { anthropic_delta(piece, "text_delta") } else { openai_delta(piece, n) });
            if pings.get(n).copied().unwrap_or(false) {
                stream.push_str("event: ping\ndata: {\"type\":\"ping\"}\n\n");
            }
        }
        stream.push_str("event: stop\ndata: {\"type\":\"stop\"}\n\n");
        let bytes = stream.as_bytes();
        let mut at: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for c in at { chunks.push(&bytes[from..c]); from = c; }
        chunks.push(&bytes[from..]);
        let mut s = Scrubber::for_sse([secret], kind).unwrap();
        let out = run(&mut s, &chunks);
        let in_count = parse(bytes, kind).0;
        let (count, got) = parse(&out, kind);
        prop_assert_eq!(count, in_count, "one event out per event in");
        if with_secret {
            // A backslash before a form may read as part of it (both readings are redacted).
            let swallowed = prefix.strip_suffix('\\').map(|p| format!("{p}[redacted]{suffix}"));
            prop_assert!(got == format!("{prefix}[redacted]{suffix}") || Some(&got) == swallowed.as_ref(), "{got:?}");
            let o = String::from_utf8(out).unwrap();
            for f in 0..4 {
                let shown = form(secret, f);
                prop_assert!(!o.contains(&shown) && !o.contains(&esc(&shown)), "form {f} leaked");
            }
        } else {
            prop_assert_eq!(got, text.clone(), "the text is unchanged");
            if !text.contains('\\') {
                // Nothing here can start a secret: nothing is held or moved.
                prop_assert_eq!(&out, &bytes.to_vec());
            }
        }
    }

    /// Bytes mode: any chunking gives the same result as one chunk, never a secret.
    #[test]
    fn bytes_any_chunking_gives_the_same_result(
        prefix in "[a-z \"\\\\]{0,40}",
        suffix in "[a-z \"\\\\]{0,40}",
        which in 0u8..4,
        cuts in proptest::collection::vec(0usize..200, 0..8),
    ) {
        let secret = "Sk-live_\"9/x\\y";
        let body = format!("{prefix}{secret}{suffix}{}{prefix}", form(secret, which));
        let mut whole = Scrubber::new([secret]).unwrap();
        let expect = run(&mut whole, &[body.as_bytes()]);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points { chunks.push(&body.as_bytes()[last..p]); last = p; }
        chunks.push(&body.as_bytes()[last..]);
        let mut split = Scrubber::new([secret]).unwrap();
        let got = run(&mut split, &chunks);
        prop_assert_eq!(&got, &expect);
        let text = String::from_utf8(got).unwrap();
        for f in 0..4 {
            prop_assert!(!text.contains(&form(secret, f)));
        }
    }
}
