//! The bodies of the fuzz targets in `fuzz/`: each takes arbitrary bytes and panics when a
//! promise breaks. A fuzz target is one line calling its body here, so the same body runs under
//! `cargo test` over the checked-in corpus (`tests/tests/fuzz_corpus.rs`) on stable.
//!
//! To add a target: write `pub fn name(data: &[u8])` here, add it to [`TARGETS`], add
//! `fuzz/fuzz_targets/name.rs` (a copy of any other with the name changed) and its `[[bin]]` in
//! `fuzz/Cargo.toml`, and put a few meaningful seed files in `fuzz/corpus/name/`.

use bytes::Bytes;

use backhaul_core::http::{HttpError, Limits, Method, ResponseEvent, ResponseParser};
use backhaul_core::job::{RedirectPolicy, SecurityFlags};
use backhaul_core::{codes, JobId, JobState};

use crate::sim::{Reply, Resource, Sim, Trace};
use crate::world::{Op, World};

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("http_response", http_response),
    ("job_record", job_record),
    ("security_flags", security_flags),
    ("redirect_location", redirect_location),
    ("engine_ops", engine_ops),
    ("job_id", job_id),
    ("auth_challenge", auth_challenge),
    ("proxy_settings", proxy_settings),
    ("socks5_reply", socks5_reply),
    ("byteranges", byteranges),
    ("daemon_protocol", daemon_protocol),
    ("ntlm_challenge", ntlm_challenge),
];

/// `ResponseParser`: the bytes after a one-byte header (bit 0–1: how many responses and which
/// are to HEAD; bit 2: end of stream after the bytes; bit 3: small limits) are fed whole, one
/// byte at a time, and split in two at every point (beyond 64 bytes, at a data-derived point
/// and its neighbours: every point would make each run quadratic, and the fuzzer varies the
/// point anyway): every way gives the same events, or the same error.
pub fn http_response(data: &[u8]) {
    let Some((&header, wire)) = data.split_first() else {
        return;
    };
    let methods: &[Method] = match header & 3 {
        0 => &[Method::Get],
        1 => &[Method::Head, Method::Get],
        2 => &[Method::Get, Method::Get, Method::Get],
        _ => &[Method::Get, Method::Head],
    };
    let eof = header & 4 != 0;
    let limits = if header & 8 != 0 {
        Limits {
            max_head_bytes: 128,
            max_headers: 4,
        }
    } else {
        Limits::default()
    };
    let whole = parse_pieces(limits, methods, &[wire], eof);
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let bytewise = parse_pieces(limits, methods, &bytes, eof);
    assert_eq!(whole, bytewise, "byte-at-a-time differs from whole");
    for at in split_points(wire.len(), header) {
        let (a, b) = wire.split_at(at);
        let split = parse_pieces(limits, methods, &[a, b], eof);
        assert_eq!(whole, split, "split at {at} differs from whole");
    }
}

/// Inputs up to this long are split at every point.
const EVERY_SPLIT_UP_TO: usize = 64;

/// Where to split `len` bytes in two: every point up to [`EVERY_SPLIT_UP_TO`] bytes; beyond, a
/// point derived from `seed` (a byte of the input) and its neighbours.
fn split_points(len: usize, seed: u8) -> Vec<usize> {
    if len <= EVERY_SPLIT_UP_TO {
        return (0..=len).collect();
    }
    let at = usize::from(seed) * len / 256;
    [at.saturating_sub(1), at, at + 1]
        .into_iter()
        .filter(|at| *at <= len)
        .collect()
}

/// A response event with the body merged, so different splits compare equal.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Head(String),
    Body(Vec<u8>),
    End(bool),
}

fn parse_pieces(
    limits: Limits,
    methods: &[Method],
    pieces: &[&[u8]],
    eof: bool,
) -> Result<Vec<Seen>, HttpError> {
    let mut parser = ResponseParser::new(limits);
    let mut methods = methods.iter().copied();
    parser.expect_response(methods.next().expect("at least one method"));
    let mut seen = Vec::new();
    for piece in pieces {
        parser.push(Bytes::copy_from_slice(piece));
        while let Some(event) = parser.poll_event()? {
            record(&mut parser, &mut methods, &mut seen, event);
        }
    }
    if eof {
        if let Some(event) = parser.handle_eof()? {
            record(&mut parser, &mut methods, &mut seen, event);
            while let Some(event) = parser.poll_event()? {
                record(&mut parser, &mut methods, &mut seen, event);
            }
        }
    }
    Ok(seen)
}

fn record(
    parser: &mut ResponseParser,
    methods: &mut impl Iterator<Item = Method>,
    seen: &mut Vec<Seen>,
    event: ResponseEvent,
) {
    match event {
        ResponseEvent::Head(head) => {
            assert!((100..=599).contains(&head.status), "status {}", head.status);
            seen.push(Seen::Head(format!("{head:?}")));
        }
        ResponseEvent::Body(data) => {
            assert!(!data.is_empty(), "an empty Body event");
            match seen.last_mut() {
                Some(Seen::Body(body)) => body.extend_from_slice(&data),
                _ => seen.push(Seen::Body(data.to_vec())),
            }
        }
        ResponseEvent::End { reusable } => {
            seen.push(Seen::End(reusable));
            if let Some(method) = methods.next() {
                parser.expect_response(method);
            }
        }
    }
}

/// `decode_record`: never panics; a record that decodes re-encodes to one that decodes equal.
/// The bytes are tried as they are and behind a valid magic and version, so the fuzzer reaches
/// the JSON.
pub fn job_record(data: &[u8]) {
    let mut framed = b"BHJR".to_vec();
    framed.extend_from_slice(&backhaul_store::RECORD_VERSION.to_le_bytes());
    framed.extend_from_slice(data);
    for bytes in [data, &framed[..]] {
        if let Ok(record) = backhaul_store::decode_record(bytes) {
            let again = backhaul_store::encode_record(&record);
            let back = backhaul_store::decode_record(&again).expect("a re-encoded record decodes");
            assert_eq!(record, back, "encode → decode changed the record");
        }
    }
}

/// `SecurityFlags::from_bits` against a reference predicate, and the typed builder: the flags
/// it builds from the getters of any valid value are that value.
pub fn security_flags(data: &[u8]) {
    let mut word = [0u8; 4];
    for (i, b) in data.iter().take(4).enumerate() {
        word[i] = *b;
    }
    let bits = u32::from_le_bytes(word);
    let defined = bits & !0x0F1F == 0;
    let policy_ok = matches!(bits & 0x0700, 0x0000 | 0x0100 | 0x0200);
    match SecurityFlags::from_bits(bits) {
        Ok(flags) => {
            assert!(defined && policy_ok, "0x{bits:08X} accepted");
            assert_eq!(flags.bits(), bits);
            let built = SecurityFlags::default()
                .with_crl_check(flags.crl_check())
                .with_ignore_cn_invalid(flags.ignore_cn_invalid())
                .with_ignore_date_invalid(flags.ignore_date_invalid())
                .with_ignore_unknown_ca(flags.ignore_unknown_ca())
                .with_ignore_wrong_usage(flags.ignore_wrong_usage())
                .with_redirect_policy(flags.redirect_policy())
                .with_allow_https_to_http(flags.allow_https_to_http());
            assert_eq!(built, flags, "the builder does not rebuild 0x{bits:08X}");
            assert_eq!(flags.ssl_bits(), bits & 0x1F);
            assert_eq!(flags.redirect_policy().bits(), bits & 0x0700);
        }
        Err(e) => {
            assert!(!(defined && policy_ok), "0x{bits:08X} refused");
            assert_eq!(e.code(), codes::E_NOTIMPL);
        }
    }
}

/// A redirect to an arbitrary `Location` (the bytes after a two-byte header: the status and
/// the job's redirect policy), driven through the simulation: nothing panics, the job settles,
/// every connection goes to a host the URL parser accepted, and the file's remote name stays
/// http(s) without user info.
pub fn redirect_location(data: &[u8]) {
    let [status_pick, policy_pick, rest @ ..] = data else {
        return;
    };
    let status = [301, 302, 303, 307, 308, 300][usize::from(*status_pick) % 6];
    let policy = [
        RedirectPolicy::AllowSilent,
        RedirectPolicy::AllowReport,
        RedirectPolicy::Disallow,
    ][usize::from(*policy_pick & 3) % 3];
    let flags = SecurityFlags::default()
        .with_redirect_policy(policy)
        .with_allow_https_to_http(policy_pick & 4 != 0);
    // Header values cannot hold CR or LF: the server could not send them.
    let location: String = String::from_utf8_lossy(rest)
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    let https = policy_pick & 8 != 0;
    let (scheme, port) = if https { ("https", 443) } else { ("http", 80) };
    let mut sim = Sim::new(u64::from(*status_pick));
    let body: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
    sim.serve(
        "files.test",
        port,
        "/next",
        Resource::new(body.clone(), "n"),
    );
    sim.serve("other.test", 80, "/next", Resource::new(body, "n"));
    sim.script(
        "files.test",
        port,
        "/a",
        vec![Reply::Status(status, vec![("Location".into(), location)])],
    );
    let job = sim.create_job("redirect");
    sim.command(|e| {
        let mut j = e.job_mut(job)?;
        j.add_file(
            &format!("{scheme}://files.test/a"),
            std::path::Path::new("/dl/a"),
        )?;
        j.set_security_flags(flags.bits())?;
        j.resume()
    })
    .expect("the job starts");
    for _ in 0..2_000 {
        if matches!(
            sim.state(job),
            JobState::Transferred | JobState::Error | JobState::TransientError
        ) || !sim.step()
        {
            break;
        }
    }
    let view = sim.engine.job(job).expect("job");
    assert!(
        !view.state().is_active(),
        "the job never settled: {}",
        view.state()
    );
    for item in &sim.trace {
        if let Trace::Connect { host, .. } = item {
            assert!(
                !host.is_empty() && !host.contains(['@', '/', ' ']),
                "connected to {host:?}"
            );
        }
    }
    let remote = &view.files()[0].remote_name;
    let url = url::Url::parse(remote).expect("the remote name is a URL");
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "remote name {remote}"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "the remote name {remote} carries user info"
    );
}

/// Arbitrary operations on the two-file [`World`] (the first 8 bytes seed the simulation, then
/// each byte pair is an [`Op`]), with every invariant checked after each.
pub fn engine_ops(data: &[u8]) {
    let (seed, ops) = match data.split_first_chunk::<8>() {
        Some((seed, ops)) => (u64::from_le_bytes(*seed), ops),
        None => (0, data),
    };
    let mut world = World::new(seed);
    for pair in ops.chunks_exact(2).take(200) {
        let op = Op::from_bytes(pair[0], pair[1]);
        if let Err(violation) = world.apply_checked(op) {
            panic!("{violation}");
        }
    }
}

/// `JobId`'s GUID parser (what the CLI reads from its arguments) against a reference predicate:
/// it accepts exactly 8-4-4-4-12 hex digits (surrounding blanks and one pair of braces
/// allowed), and every id prints as a GUID that parses back to it.
pub fn job_id(data: &[u8]) {
    let mut raw = [0u8; 16];
    for (i, b) in data.iter().take(16).enumerate() {
        raw[i] = *b;
    }
    let id = JobId(u128::from_le_bytes(raw));
    assert_eq!(
        id.to_string().parse::<JobId>().ok(),
        Some(id),
        "{id} does not round-trip"
    );
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let accepted = text.parse::<JobId>();
    assert_eq!(accepted.is_ok(), is_guid(text), "{text:?}: {accepted:?}");
    if let Ok(parsed) = accepted {
        assert_eq!(parsed.to_string().parse::<JobId>().ok(), Some(parsed));
    }
}

/// The reference: `{`? 8-4-4-4-12 hex digits `}`? with blanks around.
fn is_guid(text: &str) -> bool {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let groups: Vec<&str> = t.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `WWW-Authenticate` / `Proxy-Authenticate` values and the Digest state machine: any text
/// parses or is refused without panicking; every Digest challenge that is accepted answers with
/// a counted nonce, and a later challenge (stale or not) is a defined update.
pub fn auth_challenge(data: &[u8]) {
    use backhaul_core::auth::{parse_challenges, parse_fields, DigestState, Secret};
    let text = String::from_utf8_lossy(data);
    // Split near the middle, at a character boundary (the lossy text may hold U+FFFD, three
    // bytes: splitting inside it was this body's own panic, fuzz/regressions/auth_challenge/).
    let mut middle = text.len() / 2 - (text.len() / 2 % 4);
    while !text.is_char_boundary(middle) {
        middle -= 1;
    }
    let (first, second) = text.split_at(middle);
    let Ok(challenges) = parse_challenges(&text) else {
        let _ = parse_fields([first, second]);
        return;
    };
    let again = parse_fields([text.as_ref()]);
    assert_eq!(
        again, challenges,
        "one field parses the same alone and in a list"
    );
    let password = Secret::from("pw");
    for challenge in &challenges {
        if let Ok(mut state) = DigestState::from_challenge(challenge) {
            let one = state.authorization("GET", "/a", "user", &password, "c1");
            let two = state.authorization("GET", "/a", "user", &password, "c2");
            // Outside quoted values only: a nonce may itself hold "nc=" (fuzz/regressions/).
            let (one, two) = (outside_quotes(one.expose()), outside_quotes(two.expose()));
            assert!(one.contains("nc=00000001") || !one.contains("nc="), "{one}");
            assert!(two.contains("nc=00000002") || !two.contains("nc="), "{two}");
            for next in &challenges {
                let _ = state.update(next);
            }
        }
    }
}

/// `header` with every quoted string's content (escapes included) left out.
fn outside_quotes(header: &str) -> String {
    let (mut out, mut quoted, mut escaped) = (String::new(), false, false);
    for c in header.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => quoted = !quoted,
            (true, false, _) => {}
            (false, _, c) => out.push(c),
        }
    }
    out
}

/// Proxy settings and the environment: arbitrary lists, bypass lists and variables route any
/// URL without panicking, to at least one route, or are refused as invalid proxy info.
pub fn proxy_settings(data: &[u8]) {
    use backhaul_core::proxy::{route, ProxyEnvironment, ProxySettings, ProxyUsage};
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let list = parts.next().unwrap_or_default().to_string();
    let bypass = parts.next().unwrap_or_default().to_string();
    let env = parts.next().unwrap_or_default().to_string();
    let url = url::Url::parse(&format!("http://{}/x", parts.next().unwrap_or("h.test")))
        .unwrap_or_else(|_| url::Url::parse("https://files.test/x").expect("a URL"));
    let environment = ProxyEnvironment::from_vars([
        ("http_proxy".to_string(), env.clone()),
        ("no_proxy".to_string(), bypass.clone()),
    ]);
    let settings = [
        ProxySettings::new(ProxyUsage::Override, Some(list), Some(bypass)),
        ProxySettings::new(ProxyUsage::Preconfig, None, None),
    ];
    for settings in settings.into_iter().flatten() {
        match route(&url, &settings, &environment) {
            Ok(routes) => assert!(!routes.is_empty(), "a route list is never empty"),
            Err(e) => assert_eq!(e.code(), backhaul_core::codes::BG_E_INVALID_PROXY_INFO),
        }
    }
}

/// A SOCKS5 proxy's replies, split anywhere: the handshake never panics, and the same bytes
/// fed whole, one at a time, or split in two at every point lead to the same steps and the
/// same outcome.
pub fn socks5_reply(data: &[u8]) {
    use backhaul_core::proxy::socks5::{Socks5Handshake, Step};
    use backhaul_core::proxy::ProxyPassword;
    let password = ProxyPassword::new("pw");
    let steps = |chunks: &mut dyn Iterator<Item = &[u8]>| -> Vec<String> {
        let mut handshake = Socks5Handshake::new("files.test", 443, Some(("user", &password)))
            .expect("a valid target");
        let _ = handshake.initial();
        let mut seen = Vec::new();
        // After each chunk, look at what is buffered until the handshake needs more.
        for chunk in chunks {
            let mut input = chunk;
            for _ in 0..8 {
                match handshake.feed(input) {
                    Ok(Step::NeedMore) => break,
                    Ok(step) => {
                        let done = matches!(step, Step::Done { .. });
                        seen.push(format!("{step:?}"));
                        if done {
                            return seen;
                        }
                    }
                    Err(e) => {
                        seen.push(format!("error {e}"));
                        return seen;
                    }
                }
                input = &[];
            }
        }
        seen
    };
    let whole = steps(&mut std::iter::once(data));
    let bytewise = steps(&mut data.chunks(1));
    // Done's leftover differs with the split (what came after the reply); compare the kinds.
    let kind = |s: &String| s.split(['{', '(']).next().unwrap_or_default().to_string();
    let whole: Vec<String> = whole.iter().map(kind).collect();
    let bytewise: Vec<String> = bytewise.iter().map(kind).collect();
    assert_eq!(
        whole, bytewise,
        "the handshake depends on how the replies were split"
    );
    for at in split_points(data.len(), data.last().copied().unwrap_or(0)) {
        let (a, b) = data.split_at(at);
        let split: Vec<String> = steps(&mut [a, b].into_iter()).iter().map(kind).collect();
        assert_eq!(whole, split, "split at {at} differs from whole");
    }
}

/// `multipart/byteranges` bodies: whole, byte by byte and split in two at every point give the
/// same parts and the same verdict; nothing panics.
pub fn byteranges(data: &[u8]) {
    use backhaul_core::http::{ByterangesParser, PartEvent};
    let run = |chunks: &mut dyn Iterator<Item = &[u8]>| {
        let mut parser = ByterangesParser::new("B0UND");
        let mut events: Vec<PartEvent> = Vec::new();
        for chunk in chunks {
            if let Err(e) = parser.push(bytes::Bytes::copy_from_slice(chunk), &mut events) {
                return (summary(&events), Err(format!("{e:?}")));
            }
        }
        (
            summary(&events),
            parser.finish().map_err(|e| format!("{e:?}")),
        )
    };
    fn summary(events: &[PartEvent]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for event in events {
            match event {
                PartEvent::Data(bytes) => match out.last_mut() {
                    Some(last) if last.starts_with("data ") => {
                        let n: usize = last[5..].parse().unwrap_or(0);
                        *last = format!("data {}", n + bytes.len());
                    }
                    _ => out.push(format!("data {}", bytes.len())),
                },
                other => out.push(format!("{other:?}")),
            }
        }
        out
    }
    let whole = run(&mut std::iter::once(data));
    let bytewise = run(&mut data.chunks(1));
    assert_eq!(whole, bytewise, "byte by byte differs from whole");
    for at in split_points(data.len(), data.last().copied().unwrap_or(0)) {
        let split = run(&mut [&data[..at], &data[at..]].into_iter());
        assert_eq!(whole, split, "split at {at} differs from whole");
    }
}

/// The daemon's request lines (`backhaul_cli`, with no socket). After a one-byte header (bits
/// 0–1: the line limit, 16, 64 or 256 bytes or the daemon's `MAX_LINE`; bit 2: the reader's
/// buffer is 3 bytes, not 8 KiB; bit 3: the caller is an administrator) the bytes are a stream
/// of request lines, read whole, one byte at a time and split in two at every point: every way
/// gives the same lines. Each line is decoded and answered against a plain engine (the
/// daemon's operations, `backhaul_cli::ops::apply`): nothing panics; a line that is too long or
/// not a request gets an error reply, with id 0, that names the problem; every reply carries its
/// request's id and encodes to exactly one JSON line that decodes equal.
pub fn daemon_protocol(data: &[u8]) {
    use backhaul_cli::protocol::{Outcome, Reply, MAX_LINE, VERSION};
    use backhaul_cli::requests;
    use backhaul_core::{Caller, Config, Engine, Owner};
    let Some((&header, wire)) = data.split_first() else {
        return;
    };
    let max = [16, 64, 256, MAX_LINE][usize::from(header & 3)];
    let capacity = if header & 4 != 0 { 3 } else { 8 * 1024 };
    let whole = request_lines(&[wire], max, capacity);
    let bytewise = request_lines(&wire.chunks(1).collect::<Vec<_>>(), max, capacity);
    assert_eq!(whole, bytewise, "byte-at-a-time lines differ from whole");
    for at in split_points(wire.len(), header) {
        let (a, b) = wire.split_at(at);
        let split = request_lines(&[a, b], max, capacity);
        assert_eq!(whole, split, "lines split at {at} differ from whole");
    }
    let caller = Caller {
        owner: Owner("uid:4242".to_string()),
        admin: header & 8 != 0,
    };
    let mut engine = Engine::new(Config::new([7; 32]), crate::sim::START);
    for line in whole {
        let reply = match line {
            None => {
                let reply = requests::too_long(max);
                let message = error_message(&reply);
                assert!(message.contains("longer than"), "{message}");
                reply
            }
            Some(line) => match requests::decode(&line) {
                Err(reply) => {
                    let message = error_message(&reply);
                    let named = message.starts_with("not a request: ") && reply.id == 0
                        || message.starts_with("protocol version ");
                    assert!(named, "a refused line's reply names why: {reply:?}");
                    reply
                }
                Ok(request) => {
                    let outcome = match backhaul_cli::ops::apply(&mut engine, &caller, request.op) {
                        Ok(value) => Outcome::Ok(value),
                        Err(e) => Outcome::Error(e.into()),
                    };
                    Reply {
                        v: VERSION,
                        id: request.id,
                        outcome,
                    }
                }
            },
        };
        let out = requests::encode(&reply);
        assert_eq!(
            out.iter().position(|b| *b == b'\n'),
            Some(out.len() - 1),
            "a reply is one line"
        );
        let again: Reply = serde_json::from_slice(&out).expect("a reply decodes");
        assert_eq!(again, reply, "a reply decodes to itself");
    }
}

/// The request lines `pieces` (one stream, delivered a piece per read) hold, as the daemon's
/// line reader reads them: `None` for a line longer than `max`.
fn request_lines(pieces: &[&[u8]], max: usize, capacity: usize) -> Vec<Option<Vec<u8>>> {
    use backhaul_cli::requests::{read_line, ReadLine};
    use std::future::Future as _;
    let stream = Pieces(pieces.iter().copied().filter(|p| !p.is_empty()).collect());
    let mut reader = tokio::io::BufReader::with_capacity(capacity, stream);
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = {
            let read = std::pin::pin!(read_line(&mut reader, &mut line, max));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(read) = read.poll(&mut cx) else {
                panic!("an in-memory stream never waits");
            };
            read.expect("an in-memory stream never fails")
        };
        match read {
            ReadLine::Eof => return lines,
            ReadLine::TooLong => lines.push(None),
            ReadLine::Line => lines.push(Some(line)),
        }
    }
}

/// A stream that hands out one piece per read (never an empty one: that would be its end).
struct Pieces<'a>(std::collections::VecDeque<&'a [u8]>);

impl tokio::io::AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some(piece) = self.0.front_mut() {
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            *piece = &piece[n..];
            if piece.is_empty() {
                self.0.pop_front();
            }
        }
        std::task::Poll::Ready(Ok(()))
    }
}

/// The message of an error reply (panics on any other).
fn error_message(reply: &backhaul_cli::protocol::Reply) -> &str {
    match &reply.outcome {
        backhaul_cli::protocol::Outcome::Error(e) => {
            assert!(
                e.hresult.starts_with("0x") && e.hresult.len() == 10,
                "{e:?}"
            );
            &e.message
        }
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// NTLM and Negotiate client contexts (`core/src/auth/connection.rs`, through `sspi`) after
/// their first token: arbitrary bytes as the server's challenge (after a one-byte header; bit
/// 0: Negotiate, not NTLM; bit 1: the bytes are the header's text as is, not base64-encoded for
/// it) never panic. The answer is a `<scheme> <base64>` token, the end of the exchange, or a
/// `ContextError` that says what was wrong; after an error the context still answers.
pub fn ntlm_challenge(data: &[u8]) {
    use backhaul_core::auth::{
        AuthScheme, AuthTarget, ConnectionContext, Credentials, Secret, Step,
    };
    use base64::Engine as _;
    let Some((&header, token)) = data.split_first() else {
        return;
    };
    let scheme = if header & 1 == 0 {
        AuthScheme::Ntlm
    } else {
        AuthScheme::Negotiate
    };
    let credentials = Credentials::new(
        AuthTarget::Server,
        scheme,
        Some("EXAMPLE\\alice".to_string()),
        Some(Secret::from("Passw0rd!")),
    )
    .expect("valid credentials");
    let mut context = ConnectionContext::new(scheme, &credentials).expect("a context");
    let Ok(Step::Send(_)) = context.step(None) else {
        panic!("the first step sends a token");
    };
    let text = if header & 2 == 0 {
        base64::engine::general_purpose::STANDARD.encode(token)
    } else {
        String::from_utf8_lossy(token).into_owned()
    };
    match context.step(Some(&text)) {
        Ok(Step::Send(answer)) => {
            let answer = answer.expose();
            let encoded = answer
                .strip_prefix(&format!("{scheme} "))
                .unwrap_or_else(|| panic!("{answer:?} does not start with {scheme}"));
            assert!(base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .is_ok_and(|t| !t.is_empty()));
        }
        Ok(Step::Done) => assert!(context.is_complete()),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = context.step(Some(&text));
        }
    }
}
