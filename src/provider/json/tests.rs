//! Unit tests of `json` (kept apart so the module stays readable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn err_message(body: &[u8]) -> String {
    match check_strict(body) {
        Err(e @ GatewayError::BadRequest { param: None, .. }) => {
            assert_eq!(e.wire().status, 400);
            e.message()
        }
        other => panic!("expected a 400 without param, got {other:?}"),
    }
}

#[test]
fn accepts_objects_with_whitespace() {
    check_strict(b"  \n{\"a\": [1, {\"b\": null}], \"c\": {}}\r\n\t").unwrap();
    check_strict(b"{}").unwrap();
}

#[test]
fn rejects_non_objects() {
    for body in [&b"[]"[..], b"1", b"\"x\"", b"null", b"true", b"  [{}]"] {
        assert!(err_message(body).contains("must be a JSON object"), "{body:?}");
    }
    assert!(err_message(b"").contains("empty"));
    assert!(err_message(b"   ").contains("empty"));
}

#[test]
fn rejects_invalid_json_with_position() {
    let m = err_message(b"{\"a\": 1,}");
    assert!(m.starts_with("Request body is not valid JSON: "), "{m}");
    assert!(m.contains("line 1"), "{m}");
    assert!(err_message(b"{} {}").contains("not valid JSON"));
    assert!(err_message(b"{\"a\":1} x").contains("trailing"));
    assert!(err_message(b"{\"a\":").contains("not valid JSON"));
    assert!(err_message(b"{\"a\":\"\\x\"}").contains("not valid JSON"));
}

#[test]
fn rejects_invalid_utf8() {
    assert!(err_message(b"{\"a\":\"\xff\"}").contains("UTF-8"));
    assert!(err_message(b"{\"\xc3\":1}").contains("UTF-8"));
}

#[test]
fn rejects_duplicate_keys_at_any_depth() {
    assert_eq!(
        err_message(br#"{"tools":[],"tools":[]}"#).split(" (").next().unwrap(),
        "Duplicate key \"tools\" in request body"
    );
    assert!(err_message(br#"{"a":{"b":[{"c":1,"c":2}]}}"#).contains("\"c\""));
    // Same key after unescaping.
    assert!(err_message(br#"{"x":{"a":1,"\u0061":2}}"#).contains("Duplicate key \"a\""));
    // Large objects take the sort path.
    let mut body = String::from("{");
    for i in 0..40 {
        std::fmt::Write::write_fmt(&mut body, format_args!("\"k{i}\":{i},")).unwrap();
    }
    body.push_str("\"k7\":0}");
    assert!(err_message(body.as_bytes()).contains("Duplicate key \"k7\""));
    // Same key in sibling objects is fine.
    check_strict(br#"{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}"#).unwrap();
}

#[test]
fn duplicate_key_message_is_truncated() {
    let key = "é".repeat(500);
    let body = format!("{{\"{key}\":1,\"{key}\":2}}");
    let m = err_message(body.as_bytes());
    assert!(m.chars().count() < 140, "{m}");
    assert!(m.contains('…'));
}

#[test]
fn deep_nesting_is_a_clean_400() {
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(err_message(deep.as_bytes()).contains("recursion limit"));
    let deep_obj = format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(err_message(deep_obj.as_bytes()).contains("recursion limit"));
    assert!(err_message("[".repeat(10_000).as_bytes()).contains("must be a JSON object"));
    let unclosed = format!("{{\"a\":{}", "[".repeat(10_000));
    assert!(err_message(unclosed.as_bytes()).contains("not valid JSON"));
    // 100 levels are fine.
    let ok = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
    check_strict(ok.as_bytes()).unwrap();
}

#[test]
fn serde_value_limits_are_refused() {
    assert!(err_message(br#"{"n":1e400}"#).contains("number out of range"));
    assert!(err_message(br#"{"s":"\ud800"}"#).contains("not valid JSON"));
    check_strict(br#"{"n":123456789012345678901234567890,"m":1e-400,"s":"\ud83d\ude00"}"#).unwrap();
}

#[test]
fn members_keep_raw_values_and_order() {
    let body = br#" { "b" : 1.0000000000000000001 , "a":"\u00e9" ,"c": { "x" : [ 1 ,2 ] } } "#;
    let m = strict_object(body).unwrap();
    let keys: Vec<_> = m.iter().map(|(k, _)| k.to_owned()).collect();
    assert_eq!(keys, ["b", "a", "c"]);
    assert_eq!(m.get("b").unwrap().get(), "1.0000000000000000001");
    assert_eq!(m.get("a").unwrap().get(), r#""\u00e9""#);
    assert_eq!(m.get("c").unwrap().get(), r#"{ "x" : [ 1 ,2 ] }"#);
    assert_eq!(
        String::from_utf8(m.to_vec().unwrap()).unwrap(),
        r#"{"b":1.0000000000000000001,"a":"\u00e9","c":{ "x" : [ 1 ,2 ] }}"#
    );
}

#[test]
fn members_edit_in_place_and_append() {
    let body = br#"{"a":1,"b":2,"c":3}"#;
    let mut m = strict_object(body).unwrap();
    m.set("b", Val::json("two").unwrap());
    m.set("d", Val::json(&[1, 2]).unwrap());
    m.remove("a");
    m.push("c", Val::json(&serde_json::json!({"k": null})).unwrap());
    assert_eq!(String::from_utf8(m.to_vec().unwrap()).unwrap(), r#"{"b":"two","d":[1,2],"c":{"k":null}}"#);
    assert!(m.get("a").is_none());
}

#[test]
fn escaped_keys_are_unescaped_and_rewritten() {
    let m = strict_object(br#"{"t\u006fols":1,"q\"":2}"#).unwrap();
    assert!(m.get("tools").is_some());
    assert_eq!(String::from_utf8(m.to_vec().unwrap()).unwrap(), r#"{"tools":1,"q\"":2}"#);
}

#[test]
fn arrays_and_scalars() {
    let raw: &RawValue = serde_json::from_str(r#"[ {"a":1} , "x", 2 ]"#).unwrap();
    let items = parse_array(raw).unwrap();
    assert_eq!(items.iter().map(|r| kind(r)).collect::<Vec<_>>(), [Kind::Object, Kind::String, Kind::Number]);
    let vals: Vec<Val<'_>> = items.iter().map(|r| Val::raw(r)).collect();
    assert_eq!(write_array(&vals).get(), r#"[{"a":1},"x",2]"#);
    assert_eq!(write_array(&[]).get(), "[]");
    let s: &RawValue = serde_json::from_str(r#""a\nb""#).unwrap();
    assert_eq!(as_str(s).unwrap(), "a\nb");
    let b: &RawValue = serde_json::from_str("true").unwrap();
    assert_eq!(as_bool(b), Some(true));
    assert_eq!(as_str(b), None);
    let arr: &RawValue = serde_json::from_str(r#"["a","b"]"#).unwrap();
    assert_eq!(as_str_array(arr).unwrap(), ["a", "b"]);
    let bad: &RawValue = serde_json::from_str(r#"["a",1]"#).unwrap();
    assert!(as_str_array(bad).is_none());
}
