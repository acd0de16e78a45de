//! Helpers for the observer's tests: an HTTP client over loopback (JSON in, JSON out), raw
//! requests for what a polite client would not send, and a reader of the event stream that
//! waits for events (with a deadline) instead of polling.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A JSON client for one observer.
#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    client: HyperClient<HttpConnector, Full<Bytes>>,
}

/// A response: status, headers, body parsed as JSON (`Value::Null` if it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Reply {
    /// The error code of an error document.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        let client = HyperClient::builder(TokioExecutor::new()).build_http();
        Api { addr, client }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("the observer answers within 10 s")
            .expect("the request goes through");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
            .await
            .expect("the body arrives within 10 s")
            .expect("the body reads")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            text,
        }
    }

    /// `GET path`, read whole but not parsed: the status and the body's length.
    pub async fn fetch(&self, path: &str) -> (StatusCode, usize) {
        let req = Request::builder()
            .uri(format!("http://{}{path}", self.addr))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("the observer answers within 10 s")
            .expect("the request goes through");
        let status = resp.status();
        let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
            .await
            .expect("the body arrives within 10 s")
            .expect("the body reads")
            .to_bytes();
        (status, body.len())
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None, "").await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &str) -> Reply {
        self.request(Method::POST, path, token, body).await
    }

    /// The latest snapshot's services.
    pub async fn services(&self) -> Vec<Value> {
        let reply = self.get("/api/v1/graph").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["services"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The id of the service labelled `label` in the latest snapshot.
    pub async fn id_of(&self, label: &str) -> String {
        let services = self.services().await;
        services
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("no {label} in {services:?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sends `raw` bytes as they are and returns the status line's code and the whole answer.
    pub async fn raw(&self, raw: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        // The server may answer and close before it read all we send (a body over the
        // limit): a failed write is fine, the answer is what counts.
        let _ = stream.write_all(raw).await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        out.extend_from_slice(&buf[..n]);
                        // One answer is enough; the server may keep the connection open.
                        if answer_complete(&out) {
                            break;
                        }
                    }
                }
            }
        })
        .await;
        assert!(read.is_ok(), "no answer within 10 s to {raw:?}");
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        (code, text)
    }
}

/// Whether `buf` holds a whole HTTP/1 answer with a `content-length` body.
fn answer_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..head_end]
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    buf.len() >= head_end + 4 + length
}

/// One event of the stream: its `event:` name and its parsed `data:`.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub id: Option<u64>,
    pub doc: Value,
    /// The `data:` line as it came (the only form a raw stream keeps).
    pub data: String,
    /// When the client had it whole.
    pub received: Instant,
}

/// A client of `/api/v1/events`.
pub struct Stream {
    /// The `seq` of the last event returned.
    pub last_seq: u64,
    /// Each service seen so far, by label: its id and state.
    pub known: std::collections::HashMap<String, (String, String)>,
    body: Incoming,
    /// Whether to parse each event's JSON (a raw stream leaves `doc` null).
    parse_json: bool,
    /// The response ended or failed (not merely: no event in time).
    ended: bool,
    buf: Vec<u8>,
    /// How far `buf` was searched for an event's end already.
    scanned: usize,
    pending: std::collections::VecDeque<Event>,
}

impl Stream {
    pub async fn connect(api: &Api) -> Stream {
        Self::open(api, true).await
    }

    /// A stream that does not parse the events' JSON (cheap, for many clients).
    pub async fn connect_raw(api: &Api) -> Stream {
        Self::open(api, false).await
    }

    async fn open(api: &Api, parse_json: bool) -> Stream {
        let req = Request::builder()
            .uri(format!("http://{}/api/v1/events", api.addr))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), api.client.request(req))
            .await
            .expect("the stream opens within 10 s")
            .expect("the stream request goes through");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            last_seq: 0,
            known: Default::default(),
            body: resp.into_body(),
            parse_json,
            ended: false,
            scanned: 0,
            buf: Vec::new(),
            pending: Default::default(),
        }
    }

    /// Whether the response ended or failed (the server closed it).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next event, or `None` if the stream ended, failed or `within` passed.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.pending.pop_front() {
                if let Some(seq) = event.doc["seq"].as_u64() {
                    self.last_seq = seq;
                }
                self.learn(&event);
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await;
            match frame {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                        self.parse();
                    }
                }
                Ok(None | Some(Err(_))) => {
                    self.ended = true;
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    fn parse(&mut self) {
        loop {
            let from = self.scanned.saturating_sub(1);
            let Some(at) = find(&self.buf[from..], b"\n\n") else {
                self.scanned = self.buf.len();
                return;
            };
            let end = from + at;
            self.scanned = 0;
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let mut kind = String::from("message");
            let mut id = None;
            let mut data = String::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_owned();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            let doc = if self.parse_json {
                serde_json::from_str(&data).unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            self.pending.push_back(Event {
                kind,
                id,
                doc,
                data,
                received: Instant::now(),
            });
        }
    }

    /// Reads events until one has a change for which `pred` holds, within `within`; returns
    /// that change (and panics, naming `what`, if none came in time).
    pub async fn wait_change(
        &mut self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(event) = self.next(left).await else {
                panic!("no change {what} within {within:?}");
            };
            if event.kind != "changes" {
                continue;
            }
            if let Some(found) = event.doc["changes"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| pred(c)))
            {
                return found.clone();
            }
        }
    }
}

impl Stream {
    /// Keeps `known` current.
    fn learn(&mut self, event: &Event) {
        fn note(known: &mut std::collections::HashMap<String, (String, String)>, s: &Value) {
            let label = s["label"].as_str().unwrap_or("").to_owned();
            let id = s["id"].as_str().unwrap_or("").to_owned();
            let state = s["state"].as_str().unwrap_or("").to_owned();
            known.insert(label, (id, state));
        }
        match event.kind.as_str() {
            "snapshot" => {
                for s in event.doc["services"].as_array().into_iter().flatten() {
                    note(&mut self.known, s);
                }
            }
            "changes" => {
                for c in event.doc["changes"].as_array().into_iter().flatten() {
                    match c["kind"].as_str() {
                        Some("added") => note(&mut self.known, &c["service"]),
                        Some("state") => {
                            let to = c["to"].as_str().unwrap_or("").to_owned();
                            for (id, state) in self.known.values_mut() {
                                if c["id"] == id.as_str() {
                                    *state = to.clone();
                                }
                            }
                        }
                        Some("removed") => self.known.retain(|_, (id, _)| c["id"] != id.as_str()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Reads events until the service labelled `label` is known and `running`, within
    /// `within` (at once if it already is); returns its id.
    pub async fn wait_running(&mut self, within: Duration, label: &str) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((id, state)) = self.known.get(label)
                && state == "running"
            {
                return id.clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.next(left).await.is_none() {
                panic!("{label} not seen running within {within:?}");
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The number after `"key":` in a JSON text (cheap: no parse of the rest).
pub fn number_after(text: &str, key: &str) -> Option<u64> {
    let pattern = format!("\"{key}\":");
    let start = text.find(&pattern)? + pattern.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A loopback address with a free port.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}
