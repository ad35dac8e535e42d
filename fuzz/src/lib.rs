//! What each fuzz target does with its bytes, apart from libFuzzer, so the
//! same functions replay the corpus as ordinary tests
//! (`shared/tests/fuzz_corpus.rs`) and run under `cargo fuzz`.
//!
//! Every target feeds outside input to the code that first reads it, and
//! checks, beyond "no panic", the promise that code makes: a product export
//! reads the same twice; a delivery passes only when signed; what the ingress
//! queues, the worker reads back as it was; a stream record or a queue
//! message is either understood or refused, never half-read.

use std::io::Read;

use aws_lambda_events::event::dynamodb::EventRecord;
use fibermade_sync::import::reader::ProductReader;
use fibermade_sync::import::survey::survey;
use fibermade_sync::jobs::{Message, decode_message};
use fibermade_sync::observer::observe;
use fibermade_sync::webhook::PullJob;
use fibermade_sync::webhook::ingress::{self, MAX_BODY_BYTES, Refused};
use fibermade_sync::webhook::signature::WebhookSecret;
use lambda_http::http::{HeaderName, HeaderValue, Request};
use lambda_http::{Body, RequestExt};

/// The secret deliveries are signed with when a target signs them.
pub const SECRET: &str = "fuzz-webhook-secret";

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// Each target by name, as `fuzz/corpus/<name>/` holds its seeds.
pub const TARGETS: &[(&str, Target)] = &[
    ("csv_reader", csv_reader),
    ("webhook_delivery", webhook_delivery),
    ("function_url_event", function_url_event),
    ("stream_record", stream_record),
    ("job_message", job_message),
];

/// A reader that hands out its bytes a few at a time, as a network stream
/// does, so a record split across reads is exercised too.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(buf.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Any bytes as a product export: the reader yields products or one error
/// and then stops; reading the same bytes in small pieces gives the same
/// products; the first pass of an import (the survey) agrees with the reader
/// on whether the file is readable.
pub fn csv_reader(data: &[u8]) {
    let read_all = |input: &mut dyn Read| -> Result<Vec<String>, String> {
        let reader = ProductReader::new(input).map_err(|e| e.to_string())?;
        let mut products = Vec::new();
        let mut reader = reader.fuse();
        for product in reader.by_ref() {
            products.push(format!("{:?}", product.map_err(|e| e.to_string())?));
        }
        assert!(reader.next().is_none(), "the reader stops for good");
        Ok(products)
    };
    let whole = read_all(&mut &data[..]);
    let step = 1 + data.first().map_or(0, |b| *b as usize % 61);
    let trickled = read_all(&mut Trickle { data, step });
    assert_eq!(whole, trickled, "reading in pieces of {step} bytes differs");

    let surveyed = survey(data);
    if whole.is_err() {
        assert!(
            surveyed.is_err(),
            "the survey accepted a file the reader refuses"
        );
    }
}

/// Splits `data` into a delivery: the first byte's low bit says whether the
/// harness signs the body (so the fuzzer reaches what comes after the
/// signature), the next bit whether it is a GET; then `name: value` header
/// lines, a blank line, and the body.
fn delivery(data: &[u8]) -> Option<(Request<Body>, bool)> {
    let (&flags, rest) = data.split_first()?;
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let method = if flags & 2 == 0 { "POST" } else { "GET" };
    let mut request = Request::builder()
        .method(method)
        .uri("https://ingress.example/")
        .body(Body::Binary(body.to_vec()))
        .ok()?;
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        request.headers_mut().append(name, value);
    }
    let signed = flags & 1 == 1;
    if signed {
        sign(&mut request);
    }
    Some((request, signed))
}

fn sign(request: &mut Request<Body>) {
    let signature = WebhookSecret::new(SECRET).sign(request.body().as_ref());
    request.headers_mut().insert(
        "x-shopify-hmac-sha256",
        HeaderValue::from_str(&signature).expect("base64 is a header value"),
    );
}

/// The ingress's checks on a delivery, then what it would queue.
fn screen_and_queue(request: &Request<Body>, signed: bool) {
    let secret = WebhookSecret::new(SECRET);
    let body: &[u8] = request.body().as_ref();
    let screened = match ingress::screen(request, &secret) {
        Ok(screened) => screened,
        Err(refused) => {
            let answer = refused.answer();
            assert_eq!(answer.status(), refused.status());
            let text = String::from_utf8_lossy(answer.body().as_ref()).into_owned();
            assert!(!text.contains(SECRET), "the secret is in {text}");
            match refused {
                Refused::TooLarge { .. } => assert!(body.len() > MAX_BODY_BYTES),
                Refused::Method => assert_ne!(request.method(), "POST"),
                Refused::Signature(_) => {
                    assert!(!signed, "a delivery signed with the secret was refused");
                }
            }
            return;
        }
    };
    assert!(body.len() <= MAX_BODY_BYTES);
    let Ok(job) = screened.job(body) else {
        return;
    };
    queued_job_reads_back(&job);
}

/// What the ingress puts on the queue, the worker reads back as it was.
fn queued_job_reads_back(job: &PullJob) {
    let _ = job.dedupe_key();
    let _ = job.event_time();
    let body = serde_json::to_string(job).expect("a pull job serialises");
    match decode_message(&body) {
        Ok(Message::Pull(back)) => assert_eq!(&back, job, "{body}"),
        other => panic!("the worker reads {other:?} from {body}"),
    }
}

/// Any headers and body at the ingress, signed or not.
pub fn webhook_delivery(data: &[u8]) {
    if let Some((request, signed)) = delivery(data) {
        screen_and_queue(&request, signed);
    }
}

/// Any Function URL event (JSON, as Lambda hands it over, base64 bodies
/// included), after the first byte's signing flag, read as the ingress
/// reads it.
pub fn function_url_event(data: &[u8]) {
    let Some((&flags, json)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(json) else {
        return;
    };
    let Ok(mut request) = ingress::request_from_event(text) else {
        return;
    };
    let _ = request.query_string_parameters_ref();
    let signed = flags & 1 == 1;
    if signed {
        sign(&mut request);
    }
    screen_and_queue(&request, signed);
}

/// Any DynamoDB stream record of the catalog table: the observer finds a
/// change, none, or says the record is unreadable.
pub fn stream_record(data: &[u8]) {
    let Ok(record) = serde_json::from_slice::<EventRecord>(data) else {
        return;
    };
    match observe(&record) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Any body on the worker's queues: a catalog job or a pull job, read back
/// the same after a round trip, or refused.
pub fn job_message(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match decode_message(body) {
        Ok(Message::Pull(job)) => queued_job_reads_back(&job),
        Ok(Message::Catalog(job)) => {
            let _ = job.account_id();
            let _ = job.dedupe_id("fuzz");
            let again = serde_json::to_string(&job).expect("a catalog job serialises");
            match decode_message(&again) {
                Ok(Message::Catalog(back)) => assert_eq!(back, job, "{again}"),
                other => panic!("the worker reads {other:?} from {again}"),
            }
        }
        Err(_) => {}
    }
}
