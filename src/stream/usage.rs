//! Usage metering: reading token counts and MCP tool calls out of a
//! provider's answer as it streams past, and adding them up per tenant and
//! day. Pure; the shell feeds it chunks and stores the totals in a Durable
//! Object.
//!
//! Only the provider's own `usage` objects are trusted for tokens; MCP calls
//! are counted from `mcp_call` items (OpenAI) and `mcp_tool_use` blocks
//! (Anthropic), per server label.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use memchr::memmem::Finder;

use super::framer::{self, Events, Piece};

/// A JSON answer larger than this is not parsed for usage (it is still
/// counted as a request); it bounds the copy kept for metering.
pub const MAX_JSON_COPY: usize = 8 * 1024 * 1024;

/// What one request used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// MCP tool calls per server label.
    #[serde(default)]
    pub mcp_calls: BTreeMap<String, u64>,
    /// `tools/call` requests the MCP relay forwarded, per server (a relayed
    /// call also shows in `mcp_calls` when the provider reports it). Absent
    /// from the JSON while empty, so tenants without relays see no change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub relay_calls: BTreeMap<String, u64>,
}

impl Usage {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        for (k, v) in &other.mcp_calls {
            *self.mcp_calls.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.relay_calls {
            *self.relay_calls.entry(k.clone()).or_default() += v;
        }
    }
}

/// Body format of the answer being metered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Sse,
    Json,
}

/// Incremental reader of one answer.
#[derive(Debug)]
pub struct UsageMeter {
    kind: BodyKind,
    /// JSON: the body so far.
    buf: Vec<u8>,
    overflow: bool,
    /// SSE: the events; one longer than `MAX_JSON_COPY` carries nothing
    /// counted and is skipped, not held.
    events: Events,
    tally: Tally,
}

/// What has been counted so far.
#[derive(Debug)]
struct Tally {
    /// Searchers for the words of events that can carry what is counted
    /// (built once per answer, not per event).
    words: [Finder<'static>; 2],
    usage: Usage,
    /// Calls already counted: OpenAI reports an item in `output_item.done`
    /// and again in `response.completed`.
    seen_ids: Vec<String>,
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64()
}

impl UsageMeter {
    #[must_use]
    pub fn new(kind: BodyKind) -> Self {
        Self {
            kind,
            buf: Vec::new(),
            overflow: false,
            events: Events::new(MAX_JSON_COPY),
            tally: Tally {
                words: [Finder::new(b"usage"), Finder::new(b"mcp_")],
                usage: Usage { requests: 1, ..Usage::default() },
                seen_ids: Vec::new(),
            },
        }
    }

    /// Feeds the next chunk of the answer.
    pub fn push(&mut self, chunk: &[u8]) {
        match self.kind {
            BodyKind::Json => {
                if self.overflow || self.buf.len() + chunk.len() > MAX_JSON_COPY {
                    self.overflow = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            BodyKind::Sse => {
                // Where the counted words are in this chunk, found in one pass over
                // it: an event that lies in the chunk is searched no further.
                let hits = self.tally.hits(chunk);
                let in_chunk = |e: &[u8]| {
                    let start = (e.as_ptr() as usize).checked_sub(chunk.as_ptr() as usize)?;
                    (start + e.len() <= chunk.len()).then_some(start..start + e.len())
                };
                self.events.push(chunk, |p| match &p {
                    Piece::Event(e) | Piece::Tail(e) => match in_chunk(e) {
                        Some(span)
                            if hits.get(hits.partition_point(|&h| h < span.start)).is_none_or(|&h| h >= span.end) => {}
                        _ => self.tally.piece(&p),
                    },
                    Piece::Oversize { .. } => {}
                });
            }
        }
    }

    /// The totals once the answer has ended.
    #[must_use]
    pub fn finish(mut self) -> Usage {
        match self.kind {
            BodyKind::Json if !self.overflow => {
                // Typed and borrowed: everything but usage and item kinds is skipped, not built.
                let buf = std::mem::take(&mut self.buf);
                if let Ok(answer) = serde_json::from_slice::<JsonAnswer<'_>>(&buf) {
                    self.tally.json_answer(&answer);
                }
            }
            BodyKind::Json => {}
            BodyKind::Sse => self.events.finish(|p| self.tally.piece(&p)),
        }
        self.tally.usage
    }
}

impl Tally {
    fn count_call(&mut self, id: Option<&str>, server: Option<&str>) {
        let Some(server) = server else { return };
        if let Some(id) = id {
            if self.seen_ids.iter().any(|s| s == id) {
                return;
            }
            self.seen_ids.push(id.to_string());
        }
        *self.usage.mcp_calls.entry(server.to_string()).or_default() += 1;
    }

    /// A whole JSON answer: OpenAI Response object, Anthropic Message, or Chat Completion.
    fn json_answer(&mut self, a: &JsonAnswer<'_>) {
        if let Some(u) = &a.usage {
            self.usage.input_tokens += u.input_tokens.or(u.prompt_tokens).or(u.total_input_tokens).unwrap_or(0);
            self.usage.output_tokens += u.output_tokens.or(u.completion_tokens).or(u.total_output_tokens).unwrap_or(0);
        }
        for item in a.output.iter().chain(a.content.iter()).chain(a.steps.iter()).chain(a.outputs.iter()).flatten() {
            match item.kind.as_deref() {
                Some("mcp_call") => self.count_call(item.id.as_deref(), item.server_label.as_deref()),
                Some("mcp_tool_use" | "mcp_server_tool_call") => {
                    self.count_call(item.id.as_deref(), item.server_name.as_deref());
                }
                _ => {}
            }
        }
    }

    fn item(&mut self, item: &Value) {
        let id = item.get("id").and_then(Value::as_str);
        match item.get("type").and_then(Value::as_str) {
            Some("mcp_call") => self.count_call(id, item.get("server_label").and_then(Value::as_str)),
            Some("mcp_tool_use" | "mcp_server_tool_call") => {
                self.count_call(id, item.get("server_name").and_then(Value::as_str));
            }
            _ => {}
        }
    }

    /// Where in `bytes` a word of the events that carry what is counted starts, in order.
    fn hits(&self, bytes: &[u8]) -> Vec<usize> {
        let mut at: Vec<usize> = self.words.iter().flat_map(|w| w.find_iter(bytes)).collect();
        at.sort_unstable();
        at
    }

    fn piece(&mut self, piece: &Piece<'_>) {
        match piece {
            Piece::Event(e) | Piece::Tail(e) => self.sse_event(e),
            Piece::Oversize { .. } => {}
        }
    }

    fn sse_event(&mut self, event: &[u8]) {
        // Cheap filter before parsing: only events that can carry what we count.
        if self.words.iter().all(|w| w.find(event).is_none()) {
            return;
        }
        let Some(data) = framer::data(event) else { return };
        let Ok(v) = serde_json::from_slice::<Value>(&data) else { return };
        // Gemini Interactions names its events in `event_type`.
        match v.get("event_type").and_then(Value::as_str) {
            Some("interaction.completed") => {
                let i = v.get("interaction");
                if let Some(u) = i.and_then(|i| i.get("usage")) {
                    self.usage.input_tokens += u64_at(u, &["total_input_tokens"]).unwrap_or(0);
                    self.usage.output_tokens += u64_at(u, &["total_output_tokens"]).unwrap_or(0);
                }
                for items in ["steps", "outputs"] {
                    for item in i.and_then(|i| i.get(items)).and_then(Value::as_array).into_iter().flatten() {
                        self.item(item);
                    }
                }
                return;
            }
            Some("step.start") => {
                if let Some(step) = v.get("step") {
                    self.item(step);
                }
                return;
            }
            Some(_) => return,
            None => {}
        }
        match v.get("type").and_then(Value::as_str) {
            // OpenAI Responses.
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                if let Some(r) = v.get("response") {
                    if let Some(u) = r.get("usage") {
                        self.usage.input_tokens += u64_at(u, &["input_tokens"]).unwrap_or(0);
                        self.usage.output_tokens += u64_at(u, &["output_tokens"]).unwrap_or(0);
                    }
                    if let Some(items) = r.get("output").and_then(Value::as_array) {
                        for item in items {
                            self.item(item);
                        }
                    }
                }
            }
            Some("response.output_item.done") => {
                if let Some(item) = v.get("item") {
                    self.item(item);
                }
            }
            // Anthropic Messages.
            Some("message_start") => {
                if let Some(u) = v.get("message").and_then(|m| m.get("usage")) {
                    self.usage.input_tokens += u64_at(u, &["input_tokens"]).unwrap_or(0);
                    self.usage.output_tokens += u64_at(u, &["output_tokens"]).unwrap_or(0);
                }
            }
            Some("message_delta") => {
                // Cumulative output count for the message so far: the last one wins.
                if let Some(out) = v.get("usage").and_then(|u| u64_at(u, &["output_tokens"])) {
                    self.usage.output_tokens = out;
                }
            }
            Some("content_block_start") => {
                if let Some(block) = v.get("content_block") {
                    self.item(block);
                }
            }
            // Chat Completions chunks carry `usage` on the last chunk (include_usage).
            _ => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    self.usage.input_tokens += u64_at(u, &["prompt_tokens"]).unwrap_or(0);
                    self.usage.output_tokens += u64_at(u, &["completion_tokens"]).unwrap_or(0);
                }
            }
        }
    }
}

/// The parts of a JSON answer the meter reads; serde skips everything else.
#[derive(Deserialize)]
struct JsonAnswer<'a> {
    #[serde(default)]
    usage: Option<TokenCounts>,
    #[serde(default, borrow)]
    output: Option<Vec<ItemKind<'a>>>,
    #[serde(default, borrow)]
    content: Option<Vec<ItemKind<'a>>>,
    /// Gemini Interactions.
    #[serde(default, borrow)]
    steps: Option<Vec<ItemKind<'a>>>,
    #[serde(default, borrow)]
    outputs: Option<Vec<ItemKind<'a>>>,
}

#[derive(Deserialize)]
struct TokenCounts {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_input_tokens: Option<u64>,
    total_output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ItemKind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    server_label: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    server_name: Option<std::borrow::Cow<'a, str>>,
}

/// Fixed one-minute windows per tenant: whether one more request fits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start of the current window, ms since the epoch.
    pub start_ms: u64,
    pub count: u32,
}

/// The decision for one request at `now_ms` under `limit` requests per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes(Window),
    /// Rejected; retry after this many whole seconds (≥ 1).
    No {
        retry_after_s: u64,
    },
}

const MINUTE_MS: u64 = 60_000;

#[must_use]
pub fn admit(window: Window, limit: u32, now_ms: u64) -> Admit {
    let current = if now_ms >= window.start_ms + MINUTE_MS || now_ms < window.start_ms {
        Window { start_ms: now_ms - now_ms % MINUTE_MS, count: 0 }
    } else {
        window
    };
    if current.count < limit {
        Admit::Yes(Window { count: current.count + 1, ..current })
    } else {
        let left_ms = (current.start_ms + MINUTE_MS).saturating_sub(now_ms);
        Admit::No { retry_after_s: left_ms.div_ceil(1000).max(1) }
    }
}

/// `YYYY-MM-DD` of a UTC instant (ms since the epoch), without a date library.
#[must_use]
pub fn day_of(ms: u64) -> String {
    let days = i64::try_from(ms / 86_400_000).unwrap_or(0);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// `true` for a real calendar date written `YYYY-MM-DD` (the usage API's `from`/`to`).
#[must_use]
pub fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    (1..=days_in_month).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(kind: BodyKind, chunks: &[&str]) -> Usage {
        let mut m = UsageMeter::new(kind);
        for c in chunks {
            m.push(c.as_bytes());
        }
        m.finish()
    }

    #[test]
    fn openai_json() {
        let body = r#"{"id":"resp_1","object":"response","output":[
            {"type":"mcp_list_tools","id":"l1","server_label":"crm","tools":[]},
            {"type":"mcp_call","id":"c1","server_label":"crm","name":"search","arguments":"{}","output":"x"},
            {"type":"mcp_call","id":"c2","server_label":"files","name":"get","arguments":"{}","output":"y"},
            {"type":"message","content":[{"type":"output_text","text":"usage mcp_call"}]}],
            "usage":{"input_tokens":12,"output_tokens":34,"total_tokens":46}}"#;
        let (a, b) = body.split_at(40);
        let u = meter(BodyKind::Json, &[a, b]);
        assert_eq!((u.requests, u.input_tokens, u.output_tokens), (1, 12, 34));
        assert_eq!(u.mcp_calls, BTreeMap::from([("crm".into(), 1), ("files".into(), 1)]));
    }

    #[test]
    fn openai_sse_counts_items_once() {
        let item = r#"{"type":"mcp_call","id":"c1","server_label":"crm","name":"search"}"#;
        let events = [
            "event: response.created\ndata: {\"type\":\"response.created\"}\n\n".to_string(),
            format!("event: response.output_item.done\ndata: {{\"type\":\"response.output_item.done\",\"item\":{item}}}\n\n"),
            format!("event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"output\":[{item}],\"usage\":{{\"input_tokens\":5,\"output_tokens\":7}}}}}}\n\n"),
        ];
        let all = events.concat();
        // Split at every byte boundary in three places.
        for cut in [3, all.len() / 2, all.len() - 2] {
            let (a, b) = all.split_at(cut);
            let u = meter(BodyKind::Sse, &[a, b]);
            assert_eq!((u.input_tokens, u.output_tokens), (5, 7), "cut {cut}");
            assert_eq!(u.mcp_calls.get("crm"), Some(&1), "cut {cut}");
        }
    }

    #[test]
    fn anthropic_sse_and_json() {
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"mcp_tool_use\",\"id\":\"t1\",\"name\":\"search\",\"server_name\":\"crm\",\"input\":{}}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":30}}\n\n",
        );
        let u = meter(BodyKind::Sse, &[sse]);
        assert_eq!((u.input_tokens, u.output_tokens), (20, 30));
        assert_eq!(u.mcp_calls.get("crm"), Some(&1));
        let json = r#"{"type":"message","content":[{"type":"mcp_tool_use","id":"t1","name":"a","server_name":"crm","input":{}},{"type":"mcp_tool_result","tool_use_id":"t1"}],"usage":{"input_tokens":3,"output_tokens":4}}"#;
        let u = meter(BodyKind::Json, &[json]);
        assert_eq!((u.input_tokens, u.output_tokens, u.mcp_calls.get("crm").copied()), (3, 4, Some(1)));
    }

    #[test]
    fn gemini_interactions_json_and_sse() {
        let json = r#"{"id":"v1_1","object":"interaction","status":"completed","steps":[
            {"type":"mcp_server_tool_call","id":"c1","name":"search","server_name":"crm","arguments":{}},
            {"type":"mcp_server_tool_result","call_id":"c1","server_name":"crm","result":"mcp_server_tool_call"},
            {"type":"model_output","content":[{"type":"text","text":"usage"}]}],
            "usage":{"total_input_tokens":11,"total_output_tokens":22,"total_tokens":33}}"#;
        let u = meter(BodyKind::Json, &[json]);
        assert_eq!((u.input_tokens, u.output_tokens, u.mcp_calls.get("crm").copied()), (11, 22, Some(1)));
        let call = r#"{"type":"mcp_server_tool_call","id":"c1","name":"search","server_name":"crm","arguments":{}}"#;
        let sse = [
            "event: interaction.created\ndata: {\"event_type\":\"interaction.created\",\"interaction\":{\"id\":\"v1_1\",\"usage\":null}}\n\n".to_string(),
            format!("event: step.start\ndata: {{\"event_type\":\"step.start\",\"index\":0,\"step\":{call}}}\n\n"),
            "event: step.delta\ndata: {\"event_type\":\"step.delta\",\"index\":1,\"delta\":{\"type\":\"text\",\"text\":\"usage mcp_\"}}\n\n".to_string(),
            format!("event: interaction.completed\ndata: {{\"event_type\":\"interaction.completed\",\"interaction\":{{\"id\":\"v1_1\",\"steps\":[{call}],\"usage\":{{\"total_input_tokens\":4,\"total_output_tokens\":6}}}}}}\n\n"),
            "event: done\ndata: [DONE]\n\n".to_string(),
        ]
        .concat();
        let u = meter(BodyKind::Sse, &[&sse]);
        assert_eq!((u.input_tokens, u.output_tokens, u.mcp_calls.get("crm").copied()), (4, 6, Some(1)));
    }

    #[test]
    fn chat_usage_and_garbage() {
        let sse = "data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":9}}\n\ndata: [DONE]\n\n";
        let u = meter(BodyKind::Sse, &[sse]);
        assert_eq!((u.input_tokens, u.output_tokens), (2, 9));
        let u = meter(BodyKind::Json, &["{not json"]);
        assert_eq!((u.requests, u.input_tokens), (1, 0));
    }

    #[test]
    fn sse_usage_is_the_same_wherever_the_chunks_are_cut() {
        let stream = concat!(
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n",
            "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"item\":",
            "{\"type\":\"mcp_call\",\"id\":\"c1\",\"server_label\":\"crm\"}}\n\n",
            ": ping\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[],",
            "\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}}\n\n",
        );
        let whole = meter(BodyKind::Sse, &[stream]);
        assert_eq!((whole.input_tokens, whole.output_tokens, whole.mcp_calls.get("crm")), (5, 7, Some(&1)));
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            for (third, rest) in [(b, ""), b.split_at(b.len() / 2)] {
                assert_eq!(meter(BodyKind::Sse, &[a, third, rest]), whole, "cut at {cut}");
            }
        }
    }

    #[test]
    fn every_line_ending_is_framed_alike() {
        let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":30}}\n\n";
        for eol in ["\r\n", "\r"] {
            let s = sse.replace('\n', eol);
            for cut in 0..s.len() {
                let (a, b) = s.split_at(cut);
                let u = meter(BodyKind::Sse, &[a, b]);
                assert_eq!((u.input_tokens, u.output_tokens), (20, 30), "{eol:?} cut {cut}");
            }
        }
    }

    #[test]
    fn rate_windows() {
        let w = Window::default();
        let Admit::Yes(w) = admit(w, 2, 120_500) else { panic!() };
        let Admit::Yes(w) = admit(w, 2, 121_000) else { panic!() };
        assert_eq!(admit(w, 2, 150_000), Admit::No { retry_after_s: 30 });
        assert_eq!(admit(w, 2, 179_999), Admit::No { retry_after_s: 1 });
        assert!(matches!(admit(w, 2, 180_000), Admit::Yes(Window { count: 1, start_ms: 180_000 })));
        assert!(matches!(admit(w, 0, 150_000), Admit::No { .. }));
    }

    #[test]
    fn days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_795_661_244_000), "2026-11-26");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
        assert!(is_day("2026-11-26") && !is_day("2026-1-26") && !is_day("../../x"));
        assert!(is_day("2024-02-29") && !is_day("2026-02-29") && !is_day("2000-02-30"));
        for bad in ["2026-00-10", "2026-13-01", "2026-01-00", "2026-01-32", "2026-04-31"] {
            assert!(!is_day(bad), "{bad}");
        }
    }

    #[test]
    fn add_merges() {
        let mut a = Usage {
            requests: 1,
            input_tokens: 2,
            output_tokens: 3,
            mcp_calls: BTreeMap::from([("x".into(), 1)]),
            relay_calls: BTreeMap::from([("r".into(), 1)]),
        };
        a.add(&a.clone());
        assert_eq!((a.requests, a.input_tokens, a.mcp_calls["x"], a.relay_calls["r"]), (2, 4, 2, 2));
    }
}
