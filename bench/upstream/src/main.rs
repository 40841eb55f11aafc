//! A small, fast HTTP/1.1 upstream for mcpgate's benchmarks: std only, one
//! thread per connection, keep-alive. It drains request bodies (Content-Length
//! or chunked) and answers according to the query string:
//!
//! * `r=json` (default): a fixed ~400-byte Responses-API JSON body.
//! * `r=sse&d=MS`: an SSE stream; the first event is sent at once, the rest
//!   after `d` ms (default 20), so time-to-first-byte is measurable.
//! * `r=big&mb=N`: N MiB (default 100) of SSE events, streamed chunked in 64 KiB writes.
//!
//! Every answer carries `x-bench-auth-ok` (1 when the request had
//! `Authorization: Bearer sk-bench-upstream`), `x-bench-body-bytes` and, with
//! `check=1`, `x-bench-injected` (1 when the body contains `"server_url"`).
//!
//! Usage: `bench-upstream PORT` (prints `listening PORT` when ready).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

const JSON_BODY: &str = r#"{"id":"resp_bench","object":"response","created_at":1760000000,"status":"completed","model":"gpt-bench","output":[{"type":"message","id":"msg_bench","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello from the bench upstream.","annotations":[]}]}],"usage":{"input_tokens":12,"output_tokens":7,"total_tokens":19}}"#;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("listening {}", listener.local_addr().expect("addr").port());
    io::stdout().flush().ok();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}

struct Req {
    target: String,
    auth_ok: bool,
    injected: bool,
    body_bytes: u64,
    close: bool,
}

fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let q = target.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Reads one request; `Ok(None)` on a clean EOF between requests.
fn read_request(r: &mut BufReader<TcpStream>, line: &mut String, body: &mut Vec<u8>) -> io::Result<Option<Req>> {
    line.clear();
    if r.read_line(line)? == 0 {
        return Ok(None);
    }
    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let http10 = line.trim_end().ends_with("HTTP/1.0");
    let mut content_length: u64 = 0;
    let mut chunked = false;
    let mut auth_ok = false;
    let mut close = http10;
    loop {
        line.clear();
        if r.read_line(line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            } else if k.eq_ignore_ascii_case("authorization") {
                auth_ok = v == "Bearer sk-bench-upstream";
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
    }
    let check = query_param(&target, "check") == Some("1");
    body.clear();
    let mut body_bytes = 0u64;
    let mut take = |r: &mut BufReader<TcpStream>, n: u64, body: &mut Vec<u8>| -> io::Result<()> {
        if check {
            let start = body.len();
            body.resize(start + n as usize, 0);
            r.read_exact(&mut body[start..])?;
        } else {
            io::copy(&mut r.take(n), &mut io::sink())?;
        }
        body_bytes += n;
        Ok(())
    };
    if chunked {
        loop {
            line.clear();
            r.read_line(line)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                // trailers until an empty line
                loop {
                    line.clear();
                    if r.read_line(line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            take(r, size, body)?;
            line.clear();
            r.read_line(line)?; // CRLF after the chunk
        }
    } else if content_length > 0 {
        take(r, content_length, body)?;
    }
    let injected = check && contains(body, b"\"server_url\"");
    Ok(Some(Req { target, auth_ok, injected, body_bytes, close }))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut line = String::new();
    let mut body = Vec::new();
    let big_chunk = big_chunk();
    while let Some(req) = read_request(&mut r, &mut line, &mut body)? {
        let common = format!(
            "x-bench-auth-ok: {}\r\nx-bench-body-bytes: {}\r\nx-bench-injected: {}\r\n{}",
            u8::from(req.auth_ok),
            req.body_bytes,
            u8::from(req.injected),
            if req.close { "connection: close\r\n" } else { "" }
        );
        match query_param(&req.target, "r").unwrap_or("json") {
            "sse" => {
                let delay: u64 = query_param(&req.target, "d").and_then(|d| d.parse().ok()).unwrap_or(20);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n{common}\r\n");
                w.write_all(head.as_bytes())?;
                write_chunk(&mut w, b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n")?;
                w.flush()?;
                thread::sleep(Duration::from_millis(delay));
                for i in 1..=5 {
                    let ev = format!("event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{i},\"delta\":\"tok{i} \"}}\n\n");
                    write_chunk(&mut w, ev.as_bytes())?;
                }
                write_chunk(&mut w, b"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":6}\n\n")?;
                w.write_all(b"0\r\n\r\n")?;
            }
            "big" => {
                let mb: u64 = query_param(&req.target, "mb").and_then(|d| d.parse().ok()).unwrap_or(100);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n{common}\r\n");
                w.write_all(head.as_bytes())?;
                let total = mb * 1024 * 1024;
                let n = total / big_chunk.len() as u64;
                for _ in 0..n {
                    write_chunk(&mut w, &big_chunk)?;
                }
                w.write_all(b"0\r\n\r\n")?;
            }
            _ => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{common}\r\n",
                    JSON_BODY.len()
                );
                let mut out = Vec::with_capacity(head.len() + JSON_BODY.len());
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(JSON_BODY.as_bytes());
                w.write_all(&out)?;
            }
        }
        w.flush()?;
        if req.close {
            break;
        }
    }
    Ok(())
}

fn write_chunk(w: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)
}

/// 64 KiB of SSE events.
fn big_chunk() -> Vec<u8> {
    let ev = b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n\n";
    let mut out = Vec::with_capacity(65536);
    while out.len() + ev.len() <= 65536 {
        out.extend_from_slice(ev);
    }
    let pad = 65536 - out.len();
    // pad with an SSE comment line so the chunk is exactly 64 KiB
    if pad >= 2 {
        out.push(b':');
        out.extend(std::iter::repeat(b' ').take(pad - 2));
        out.push(b'\n');
    } else {
        out.extend(std::iter::repeat(b'\n').take(pad));
    }
    out
}
