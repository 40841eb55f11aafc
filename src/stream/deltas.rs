//! Text-delta events: the SSE events that carry one piece of a longer text
//! (a message, tool-call arguments, reasoning), so a secret in that text may
//! be split over several of them. Recognises them and locates the piece in
//! the event's bytes, so it can be replaced without touching any other byte.
//!
//! OpenAI Responses: every `response.….delta` event whose `delta` is a
//! string (`output_text`, `function_call_arguments`, `mcp_call_arguments`,
//! `reasoning_text`, `refusal`, …), one text per `type`, `item_id`,
//! `output_index`, `content_index`, `summary_index`. Anthropic Messages:
//! `content_block_delta` with `text_delta` (`text`), `input_json_delta`
//! (`partial_json`) or `thinking_delta` (`thinking`), one text per `index`.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::framer;
use super::sse::SseKind;

/// Which text a delta continues: its event type and the indices that name
/// the text (OpenAI: item, output, content, summary; Anthropic: block index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaKey {
    kind: String,
    item: String,
    indices: [Option<u64>; 3],
}

/// One piece of a text, located in its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// Which text it continues.
    pub key: DeltaKey,
    /// The JSON string literal (quotes included) in the event's bytes.
    pub span: Range<usize>,
    /// Its decoded value.
    pub text: String,
}

#[derive(Deserialize)]
struct OpenAiDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    item_id: Option<Cow<'a, str>>,
    output_index: Option<u64>,
    content_index: Option<u64>,
    summary_index: Option<u64>,
    #[serde(borrow)]
    delta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<AnthropicDelta<'a>>,
}

#[derive(Deserialize)]
struct AnthropicDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    partial_json: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Where the value of the event's only `data` field is; `None` when it has
/// no `data` field or several (providers send one).
fn single_data(event: &[u8]) -> Option<Range<usize>> {
    let mut found = None;
    for span in framer::line_spans(event) {
        let line = &event[span.clone()];
        let Some(rest) = line.strip_prefix(b"data") else { continue };
        let value_at = match rest.first() {
            Some(b':') => span.start + 5 + usize::from(rest.get(1) == Some(&b' ')),
            None => span.end,
            Some(_) => continue,
        };
        if found.is_some() {
            return None;
        }
        found = Some(value_at..span.end);
    }
    found
}

/// The position of `raw` (borrowed from `event`) in `event`.
fn span_in(event: &[u8], raw: &RawValue) -> Option<Range<usize>> {
    let text = raw.get();
    let start = (text.as_ptr() as usize).checked_sub(event.as_ptr() as usize)?;
    let span = start..start + text.len();
    (span.end <= event.len() && text.starts_with('"')).then_some(span)
}

/// The text piece this event carries, if it is a text-delta event.
#[must_use]
pub fn delta_of(kind: SseKind, event: &[u8]) -> Option<Delta> {
    let (raw, key) = match kind {
        SseKind::OpenAiResponses => {
            if !contains(event, b".delta\"") {
                return None;
            }
            let data = &event[single_data(event)?];
            let e: OpenAiDelta<'_> = serde_json::from_slice(data).ok()?;
            if !(e.kind.starts_with("response.") && e.kind.ends_with(".delta")) {
                return None;
            }
            let key = DeltaKey {
                kind: e.kind.into_owned(),
                item: e.item_id.map(Cow::into_owned).unwrap_or_default(),
                indices: [e.output_index, e.content_index, e.summary_index],
            };
            (e.delta?, key)
        }
        SseKind::Anthropic => {
            if !contains(event, b"content_block_delta") {
                return None;
            }
            let data = &event[single_data(event)?];
            let e: AnthropicEvent<'_> = serde_json::from_slice(data).ok()?;
            let d = e.delta.filter(|_| e.kind == "content_block_delta")?;
            let raw = match d.kind.as_ref() {
                "text_delta" => d.text,
                "input_json_delta" => d.partial_json,
                "thinking_delta" => d.thinking,
                _ => None,
            }?;
            (raw, DeltaKey { kind: d.kind.into_owned(), item: String::new(), indices: [Some(e.index?), None, None] })
        }
        // Chat Completions and Google streams: byte scrubbing only (their text
        // deltas are not reassembled).
        SseKind::OpenAiData | SseKind::GeminiInteractions | SseKind::GoogleData => return None,
    };
    let span = span_in(event, raw)?;
    let lit = raw.get();
    // Most pieces carry no escape: their text is the literal's inside.
    let text: String = match lit.get(1..lit.len() - 1) {
        Some(inner) if !inner.contains('\\') => inner.to_string(),
        _ => serde_json::from_str(lit).ok()?,
    };
    Some(Delta { key, span, text })
}

/// `event` with the string at `span` replaced by `text`, every other byte kept.
#[must_use]
pub fn splice(event: &[u8], span: &Range<usize>, text: &str) -> Vec<u8> {
    let lit = serde_json::Value::from(text).to_string();
    let mut out = Vec::with_capacity(event.len() - span.len() + lit.len());
    out.extend_from_slice(&event[..span.start]);
    out.extend_from_slice(lit.as_bytes());
    out.extend_from_slice(&event[span.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_deltas() {
        let ev = b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"m1\",\"output_index\":1,\"content_index\":0,\"delta\":\"a\\\"b\",\"sequence_number\":4}\n\n";
        let d = delta_of(SseKind::OpenAiResponses, ev).unwrap();
        assert_eq!(d.text, "a\"b");
        assert_eq!(&ev[d.span.clone()], b"\"a\\\"b\"");
        let args = b"data: {\"type\":\"response.mcp_call_arguments.delta\",\"item_id\":\"c1\",\"output_index\":0,\"delta\":\"{\\\"q\\\":\"}\r\n\r\n";
        let a = delta_of(SseKind::OpenAiResponses, args).unwrap();
        assert_ne!(a.key, d.key);
        assert_eq!(a.text, "{\"q\":");
        let out = splice(ev, &d.span, "x\ny");
        assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8_lossy(ev).replace("\"a\\\"b\"", "\"x\\ny\""));
        for not in [
            &b"data: {\"type\":\"response.output_text.done\",\"text\":\"x\"}\n\n"[..],
            b"data: {\"type\":\"response.audio.delta\",\"delta\":7}\n\n",
            b"data: {\"type\":\"response.output_text.delta\",\ndata: \"delta\":\"x\"}\n\n",
            b"data: not json .delta\"\n\n",
        ] {
            assert_eq!(delta_of(SseKind::OpenAiResponses, not), None);
        }
    }

    #[test]
    fn anthropic_deltas() {
        let ev = b"event: content_block_delta\ndata:{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}\n\n";
        let d = delta_of(SseKind::Anthropic, ev).unwrap();
        assert_eq!(d.text, "{\"a");
        assert_eq!(
            d.key,
            DeltaKey { kind: "input_json_delta".into(), item: String::new(), indices: [Some(2), None, None] }
        );
        let t = b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
        assert_eq!(delta_of(SseKind::Anthropic, t).unwrap().text, "hi");
        let sig = b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"s\"}}\n\n";
        assert_eq!(delta_of(SseKind::Anthropic, sig), None);
        assert_eq!(delta_of(SseKind::OpenAiData, t), None);
    }
}
