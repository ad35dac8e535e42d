//! A local stand-in for the HTTP API in front of `inventory-push`: API
//! Gateway's JWT authorizer, its payload 2.0 event, and its mapping of the
//! function's answer back to HTTP. It also serves the push page (`web/dist`)
//! on the same origin, so the page needs no CORS locally.
//!
//! ```text
//! browser ──HTTP──▶ Gateway ──Invoke API──▶ cargo lambda watch ──▶ inventory-push
//!                   (JWT check, event v2)
//! ```
//!
//! The authorizer checks what API Gateway checks (`kid`, `alg`, signature,
//! `iss`, `aud` or `client_id`, `exp`, `nbf`, `iat`) and refuses the same
//! way: 401 with `{"message":"Unauthorized"}` and a `www-authenticate`
//! challenge, before the function runs. Claims reach the function as strings
//! under `requestContext.authorizer.jwt.claims`, as AWS passes them.
//!
//! Limitation: tokens are HS256, signed by a local [`Issuer`] with a shared
//! secret; API Gateway accepts only RSA-signed tokens whose keys it fetches
//! from the issuer's JWKS. Signing RS256 locally would need an RSA crate for
//! no difference the function can see.
//!
//! Limitation: the stand-in neither throttles (the template sets a burst of
//! 50 and 20 requests a second) nor answers CORS preflights; the page is
//! served on the API's origin, so it needs neither locally.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::Error;

/// The HTTP API's routes, as `template.yaml` declares them. Anything else is
/// a 404 from the gateway, without invoking the function.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/accounts/{account_id}/push"),
    ("POST", "/accounts/{account_id}/push/preview"),
    ("GET", "/accounts/{account_id}/push/jobs/{job_id}"),
    ("GET", "/accounts/{account_id}/sync-log"),
];

/// The function behind every route.
const FUNCTION: &str = "inventory-push";

/// API Gateway's limit on an integration's answer.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The identity provider of the local stack: it signs tokens, and the
/// gateway's authorizer trusts it.
#[derive(Clone)]
pub struct Issuer {
    pub issuer: String,
    pub audience: String,
    pub key_id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    pub fn new(issuer: &str, audience: &str, secret: &[u8]) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            key_id: "local-1".to_owned(),
            secret: secret.to_vec(),
        }
    }

    /// The local stack's issuer, with a secret of its own per run.
    pub fn local() -> Self {
        let secret = format!(
            "local-issuer-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        Self::new(
            "https://auth.fibermade.local/",
            "fibermade-api",
            secret.as_bytes(),
        )
    }

    /// A token for `user`, valid for an hour.
    pub fn token_for(&self, user: &str) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.sign(&json!({
            "sub": user,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "token_use": "access",
        }))
    }

    /// Signs any claims, as they are: tests make expired or foreign tokens.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": self.key_id });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.mac(signing_input.as_bytes()).finalize().into_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn mac(&self, input: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(input);
        mac
    }

    /// Checks a token as API Gateway's JWT authorizer does and returns its
    /// claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Value = decode_part(header)?;
        let alg = header["alg"].as_str().unwrap_or_default();
        if alg != "HS256" {
            return Err(TokenError::Algorithm(alg.to_owned()));
        }
        if header["kid"].as_str() != Some(self.key_id.as_str()) {
            return Err(TokenError::UnknownKey);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signed = &token[..header_and_payload_len(token)];
        self.mac(signed.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;

        let claims: Value = decode_part(payload)?;
        let Value::Object(claims) = claims else {
            return Err(TokenError::Malformed);
        };
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::Issuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.audience)),
            Some(_) => false,
            // Cognito access tokens carry client_id instead of aud.
            None => claims.get("client_id").and_then(Value::as_str) == Some(&self.audience),
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        let time = |name: &str| claims.get(name).map(|v| v.as_f64().map(|t| t as i64));
        match time("exp") {
            Some(Some(exp)) if exp > now => {}
            Some(Some(_)) => return Err(TokenError::Expired),
            _ => return Err(TokenError::Malformed),
        }
        match time("nbf") {
            Some(Some(nbf)) if nbf > now => return Err(TokenError::NotYetValid),
            Some(None) => return Err(TokenError::Malformed),
            _ => {}
        }
        match time("iat") {
            Some(Some(iat)) if iat > now => return Err(TokenError::IssuedInFuture),
            Some(None) => return Err(TokenError::Malformed),
            _ => {}
        }
        Ok(claims)
    }
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_part(part: &str) -> Result<Value, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Why the authorizer refused a token; the text is what API Gateway puts in
/// the challenge's `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("signing method {0} is invalid")]
    Algorithm(String),
    #[error("the token's key is not one of the issuer's keys")]
    UnknownKey,
    #[error("signature is invalid")]
    Signature,
    #[error("the token does not have a valid issuer")]
    Issuer,
    #[error("the token does not have a valid audience")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
}

/// A dyer the stand-in hands a token to at `GET /local/session`, so the page
/// opened locally is signed in. API Gateway has no such route.
#[derive(Debug, Clone)]
pub struct LocalSession {
    pub account_id: String,
    pub user_id: String,
}

/// How to start the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `cargo lambda watch`'s Invoke API, e.g. `http://127.0.0.1:9000`.
    pub invoke_url: String,
    /// The built page, served at `/`; `None` serves only the API.
    pub web_dist: Option<PathBuf>,
    pub issuer: Issuer,
    pub session: Option<LocalSession>,
    /// The integration timeout: past it the caller gets a 503, as from AWS.
    pub timeout: Duration,
    /// The port to listen on (loopback); 0 takes a free one.
    pub port: u16,
}

impl GatewayConfig {
    pub fn new(invoke_url: &str, web_dist: Option<PathBuf>, issuer: Issuer) -> Self {
        Self {
            invoke_url: invoke_url.trim_end_matches('/').to_owned(),
            web_dist,
            issuer,
            session: None,
            timeout: INTEGRATION_TIMEOUT,
            port: 0,
        }
    }
}

/// A running gateway on loopback; it stops when dropped.
pub struct Gateway {
    addr: SocketAddr,
    issuer: Issuer,
    task: JoinHandle<()>,
}

struct Shared {
    config: GatewayConfig,
    http: reqwest::Client,
}

impl Gateway {
    /// The API in front of `invoke_url`, the page from `web_dist`, tokens
    /// from `issuer`.
    pub async fn start(
        invoke_url: &str,
        web_dist: Option<PathBuf>,
        issuer: Issuer,
    ) -> Result<Self, Error> {
        Self::start_with(GatewayConfig::new(invoke_url, web_dist, issuer)).await
    }

    pub async fn start_with(config: GatewayConfig) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let issuer = config.issuer.clone();
        let shared = Arc::new(Shared {
            config,
            http: reqwest::Client::builder().no_proxy().build()?,
        });
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Ok(Self { addr, issuer, task })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token_for(&self, user: &str) -> String {
        self.issuer.token_for(user)
    }

    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The push page for `account`, signed in as `user` (the token travels in
    /// the fragment, which the browser never sends to a server).
    pub fn page_url(&self, account: &str, user: &str) -> String {
        format!(
            "{}/#account={account}&token={}",
            self.url(),
            self.token_for(user)
        )
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let path = uri.path().to_owned();
    let (route, response) = match match_route(&method, &path) {
        Some(route) => {
            let request = ApiRequest {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: &body,
                peer,
            };
            let response = api(&shared, &route, request).await;
            (route.key, response)
        }
        None if path == "/local/session" && method == Method::GET => {
            ("local session".to_owned(), local_session(&shared.config))
        }
        None if path.starts_with("/accounts/") => ("no route".to_owned(), not_found()),
        None if method == Method::GET || method == Method::HEAD => {
            ("page".to_owned(), static_file(&shared.config, &path).await)
        }
        None => ("no route".to_owned(), not_found()),
    };
    tracing::info!(
        method = %method,
        path = %path,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        "gateway request"
    );
    response
}

/// A matched route: its key (`POST /accounts/{account_id}/push`) and the
/// values of its path parameters.
struct Route {
    key: String,
    parameters: BTreeMap<String, String>,
}

fn match_route(method: &Method, path: &str) -> Option<Route> {
    let given: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    ROUTES.iter().find_map(|(route_method, template)| {
        if method.as_str() != *route_method {
            return None;
        }
        let wanted: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if wanted.len() != given.len() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (want, got) in wanted.iter().zip(&given) {
            match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !got.is_empty() => {
                    let value = percent_encoding::percent_decode_str(got)
                        .decode_utf8_lossy()
                        .into_owned();
                    parameters.insert(name.to_owned(), value);
                }
                Some(_) => return None,
                None if want == got => {}
                None => return None,
            }
        }
        Some(Route {
            key: format!("{route_method} {template}"),
            parameters,
        })
    })
}

struct ApiRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    peer: SocketAddr,
}

async fn api(shared: &Shared, route: &Route, request: ApiRequest<'_>) -> Response {
    let claims = match authorize(&shared.config.issuer, request.headers) {
        Ok(claims) => claims,
        Err(refusal) => {
            tracing::warn!(reason = %refusal.description.as_deref().unwrap_or("no token"), "authorizer refused the request");
            return refusal.into_response();
        }
    };
    let event = api_event(route, &request, &claims);
    let url = format!(
        "{}/2015-03-31/functions/{FUNCTION}/invocations",
        shared.config.invoke_url
    );
    let invocation = shared.http.post(url).json(&event).send();
    let answer = match tokio::time::timeout(shared.config.timeout, async {
        let response = invocation.await?;
        let status = response.status();
        let body: Value = response.json().await?;
        Ok::<_, reqwest::Error>((status, body))
    })
    .await
    {
        Err(_) => {
            tracing::error!("the function did not answer within the integration timeout");
            return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the function could not be invoked");
            return internal_error();
        }
        Ok(Ok(answer)) => answer,
    };
    function_response(answer.0, answer.1)
}

/// A refusal by the JWT authorizer.
struct Refusal {
    description: Option<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = match &self.description {
            None => "Bearer".to_owned(),
            Some(d) => format!(r#"Bearer scope="" error="invalid_token" error_description="{d}""#),
        };
        let mut response = message(StatusCode::UNAUTHORIZED, "Unauthorized");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The identity source is `$request.header.Authorization`: the token alone
/// or after `Bearer `.
fn authorize(issuer: &Issuer, headers: &HeaderMap) -> Result<Map<String, Value>, Refusal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(Refusal { description: None })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or(value)
        .trim();
    issuer
        .verify(token, OffsetDateTime::now_utc().unix_timestamp())
        .map_err(|e| Refusal {
            description: Some(e.to_string()),
        })
}

/// A claim as API Gateway passes it: every value a string; numbers in
/// decimal, lists as `[a b]`.
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// The HTTP API's payload format 2.0 event for a request.
fn api_event(route: &Route, request: &ApiRequest<'_>, claims: &Map<String, Value>) -> Value {
    let now = OffsetDateTime::now_utc();
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in request.headers.keys() {
        let values: Vec<&str> = request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == header::COOKIE {
            cookies.extend(values.iter().flat_map(|v| v.split("; ")).map(str::to_owned));
            continue;
        }
        headers.insert(name.as_str().to_owned(), values.join(",").into());
    }
    let forwarded = [
        ("x-forwarded-for", request.peer.ip().to_string()),
        ("x-forwarded-port", request.peer.port().to_string()),
        ("x-forwarded-proto", "http".to_owned()),
    ];
    for (name, value) in forwarded {
        headers.entry(name).or_insert(value.into());
    }
    let host = request
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let user_agent = request
        .headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();

    let raw_query = request.uri.query().unwrap_or_default();
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in url_pairs(raw_query) {
        query.entry(name).or_default().push(value);
    }
    let claims: Map<String, Value> = claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(claim_text(v))))
        .collect();

    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": { "jwt": { "claims": claims, "scopes": null } },
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or_default(),
            "http": {
                "method": request.method.as_str(),
                "path": request.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": request.peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id(),
            "routeKey": route.key,
            "stage": "$default",
            "time": request_time(now),
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "pathParameters": route.parameters,
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = cookies.into();
    }
    if !query.is_empty() {
        let joined: Map<String, Value> = query
            .into_iter()
            .map(|(k, v)| (k, Value::String(v.join(","))))
            .collect();
        event["queryStringParameters"] = joined.into();
    }
    if !request.body.is_empty() {
        match std::str::from_utf8(request.body) {
            Ok(text) => event["body"] = text.into(),
            Err(_) => {
                event["body"] = STANDARD.encode(request.body).into();
                event["isBase64Encoded"] = true.into();
            }
        }
    }
    event
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(name), decode(value))
    })
}

fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    format!("{:08x}-{:04x}-local", nanos as u32, n & 0xffff)
}

/// `03/Nov/2026:13:44:10 +0000`, as `requestContext.time` reads.
fn request_time(now: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    now.format(&format).unwrap_or_default()
}

/// The function's answer as HTTP: a `{statusCode, headers, body}` object as
/// given, anything else as a 200 with that JSON, as payload 2.0 infers. A
/// function error is API Gateway's 500.
fn function_response(invoke_status: reqwest::StatusCode, answer: Value) -> Response {
    if !invoke_status.is_success() || answer.get("errorType").is_some() {
        tracing::error!(invoke_status = invoke_status.as_u16(), answer = %answer, "the function failed");
        return internal_error();
    }
    let Some(status) = answer.get("statusCode") else {
        let mut response = (StatusCode::OK, answer.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return response;
    };
    let Some(status) = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return internal_error();
    };
    let body = match answer.get("body") {
        Some(Value::String(text)) if answer["isBase64Encoded"] == true => {
            match STANDARD.decode(text) {
                Ok(bytes) => bytes,
                Err(_) => return internal_error(),
            }
        }
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    // Only what the function set.
    headers.remove(header::CONTENT_TYPE);
    for (field, split) in [("headers", false), ("multiValueHeaders", true)] {
        let Some(map) = answer.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in map {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            let values: Vec<String> = match (value, split) {
                (Value::Array(items), true) => items.iter().map(claim_text).collect(),
                (value, _) => vec![claim_text(value)],
            };
            for value in values {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

fn message(status: StatusCode, text: &str) -> Response {
    let mut response = (status, json!({ "message": text }).to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

fn internal_error() -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

fn local_session(config: &GatewayConfig) -> Response {
    let Some(session) = &config.session else {
        return not_found();
    };
    let body = json!({
        "account_id": session.account_id,
        "user_id": session.user_id,
        "token": config.issuer.token_for(&session.user_id),
    });
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A file of the built page; `/` is `index.html`.
async fn static_file(config: &GatewayConfig, path: &str) -> Response {
    let Some(root) = &config.web_dist else {
        return not_found();
    };
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let relative = percent_encoding::percent_decode_str(relative).decode_utf8_lossy();
    let relative = Path::new(relative.as_ref());
    // Only plain names below the page's folder.
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return not_found();
    }
    let file = root.join(relative);
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return not_found();
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer::new("https://auth.test/", "fibermade-api", b"secret")
    }

    const NOW: i64 = 1_800_000_000;

    fn claims(extra: Value) -> Value {
        let mut claims = json!({
            "sub": "user-creator",
            "iss": "https://auth.test/",
            "aud": "fibermade-api",
            "iat": NOW - 10,
            "exp": NOW + 60,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    #[test]
    fn a_token_from_the_issuer_is_accepted_with_its_claims() {
        let token = issuer().sign(&claims(json!({})));
        let verified = issuer().verify(&token, NOW).unwrap();
        assert_eq!(verified["sub"], "user-creator");
    }

    #[test]
    fn tokens_api_gateway_would_refuse_are_refused() {
        let i = issuer();
        let cases = [
            (json!({ "exp": NOW - 1 }), TokenError::Expired),
            (json!({ "nbf": NOW + 60 }), TokenError::NotYetValid),
            (json!({ "iat": NOW + 60 }), TokenError::IssuedInFuture),
            (json!({ "iss": "https://elsewhere/" }), TokenError::Issuer),
            (json!({ "aud": "another-api" }), TokenError::Audience),
            (json!({ "exp": "soon" }), TokenError::Malformed),
        ];
        for (extra, expected) in cases {
            let token = i.sign(&claims(extra.clone()));
            assert_eq!(i.verify(&token, NOW), Err(expected), "{extra}");
        }
        let mut no_exp = claims(json!({}));
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(i.verify(&i.sign(&no_exp), NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn an_audience_list_or_a_client_id_may_name_the_api() {
        let i = issuer();
        let listed = i.sign(&claims(json!({ "aud": ["other", "fibermade-api"] })));
        assert!(i.verify(&listed, NOW).is_ok());
        let mut cognito = claims(json!({ "client_id": "fibermade-api" }));
        cognito.as_object_mut().unwrap().remove("aud");
        assert!(i.verify(&i.sign(&cognito), NOW).is_ok());
    }

    #[test]
    fn another_key_a_changed_payload_or_alg_none_is_refused() {
        let token = issuer().sign(&claims(json!({})));
        let other = Issuer::new("https://auth.test/", "fibermade-api", b"other secret");
        assert_eq!(other.verify(&token, NOW), Err(TokenError::Signature));

        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(claims(json!({ "sub": "user-other" })).to_string());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(issuer().verify(&tampered, NOW), Err(TokenError::Signature));

        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"local-1"}"#);
        let unsigned = format!("{none}.{}.", parts[1]);
        assert_eq!(
            issuer().verify(&unsigned, NOW),
            Err(TokenError::Algorithm("none".into()))
        );
        assert_eq!(
            issuer().verify("not a token", NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn claims_reach_the_function_as_strings() {
        assert_eq!(claim_text(&json!(1_800_000_000)), "1800000000");
        assert_eq!(claim_text(&json!(["a", "b"])), "[a b]");
        assert_eq!(claim_text(&json!(true)), "true");
    }

    #[test]
    fn routes_match_the_template_and_name_their_parameters() {
        let route = match_route(&Method::POST, "/accounts/acct-1/push/preview").unwrap();
        assert_eq!(route.key, "POST /accounts/{account_id}/push/preview");
        assert_eq!(route.parameters["account_id"], "acct-1");
        let job = match_route(&Method::GET, "/accounts/acct-1/push/jobs/j-9").unwrap();
        assert_eq!(job.parameters["job_id"], "j-9");
        assert!(match_route(&Method::GET, "/accounts/acct-1/push").is_none());
        assert!(match_route(&Method::POST, "/accounts//push").is_none());
    }
}
