//! The gateway stand-in in front of inventory-push under the Lambda runtime:
//! it refuses as API Gateway's JWT authorizer does, passes the claims on as
//! AWS does, and serves the push page beside the API.

use local_stack::LocalStack;
use local_stack::gateway::{Gateway, GatewayConfig, Issuer, LocalSession};
use local_stack::lambda::LambdaWatch;
use local_stack::resources::api_event;
use serde_json::{Value, json};

const CREATOR: &str = "user-creator";
const MEMBER: &str = "user-member";

async fn stack_and_watch(account: &str) -> (LocalStack, LambdaWatch) {
    let stack = LocalStack::start().await.unwrap();
    stack
        .seed_account(account, CREATOR, &[MEMBER], true)
        .await
        .unwrap();
    let watch = LambdaWatch::start(&stack.function_env()).await.unwrap();
    // Builds the function outside the gateway's 30 s integration timeout.
    let warm = api_event("GET", "/accounts/x/sync-log", None, &json!(null)).unwrap();
    watch.invoke("inventory-push", &warm).await.unwrap();
    (stack, watch)
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn json_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn the_authorizer_refuses_bad_tokens_and_the_function_decides_who_may_push() {
    let (_stack, watch) = stack_and_watch("acct-gateway").await;
    let issuer = Issuer::local();
    let gateway = Gateway::start(&watch.endpoint(), None, issuer.clone())
        .await
        .unwrap();
    let push = format!("{}/accounts/acct-gateway/push/preview", gateway.url());
    let log = format!("{}/accounts/acct-gateway/sync-log?limit=5", gateway.url());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |extra: Value| {
        let mut claims = json!({
            "sub": CREATOR, "iss": issuer.issuer, "aud": issuer.audience,
            "iat": now - 5, "exp": now + 600,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };

    // Refused by the gateway: its body, not the function's.
    let (status, headers, body) = call(reqwest::Method::POST, &push, None).await;
    assert_eq!(status, 401);
    assert_eq!(json_body(&body), json!({ "message": "Unauthorized" }));
    assert_eq!(headers["www-authenticate"], "Bearer");
    let refused = [
        (
            issuer.sign(&claims(json!({ "exp": now - 1 }))),
            "the token has expired",
        ),
        (
            issuer.sign(&claims(json!({ "aud": "another-api" }))),
            "the token does not have a valid audience",
        ),
        (
            Issuer::new(&issuer.issuer, &issuer.audience, b"not the issuer's key")
                .sign(&claims(json!({}))),
            "signature is invalid",
        ),
        ("not-a-jwt".to_owned(), "the token is malformed"),
    ];
    for (token, reason) in &refused {
        let (status, headers, body) = call(reqwest::Method::POST, &push, Some(token)).await;
        assert_eq!(status, 401, "{reason}: {body}");
        assert_eq!(json_body(&body), json!({ "message": "Unauthorized" }));
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains(reason), "{challenge}");
    }

    // Let through: the function reads the caller from the claims.
    let member = issuer.token_for(MEMBER);
    let (status, _, body) = call(reqwest::Method::POST, &push, Some(&member)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(json_body(&body)["error"]["code"], "forbidden");
    let (status, _, body) = call(reqwest::Method::GET, &log, Some(&member)).await;
    assert_eq!(status, 200, "a member may read the activity: {body}");
    assert!(json_body(&body)["entries"].is_array());
    let creator = gateway.token_for(CREATOR);
    let (status, headers, body) = call(reqwest::Method::POST, &push, Some(&creator)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(json_body(&body)["dry_run"], true);

    // Routes the HTTP API does not declare never reach the function.
    let elsewhere = format!("{}/accounts/acct-gateway/catalog", gateway.url());
    let (status, _, body) = call(reqwest::Method::GET, &elsewhere, Some(&creator)).await;
    assert_eq!(
        (status, json_body(&body)),
        (404, json!({ "message": "Not Found" }))
    );
    let session = format!("{}/local/session", gateway.url());
    assert_eq!(call(reqwest::Method::GET, &session, None).await.0, 404);
}

#[tokio::test]
async fn the_page_is_served_beside_the_api_and_signed_in_as_the_local_dyer() {
    let (_stack, watch) = stack_and_watch("acct-gateway-page").await;
    let dist = std::env::temp_dir().join(format!("push-page-{}", std::process::id()));
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><title>Inventory</title>",
    )
    .unwrap();
    std::fs::write(dist.join("assets/page.js"), "console.log('page')").unwrap();
    let mut config = GatewayConfig::new(&watch.endpoint(), Some(dist.clone()), Issuer::local());
    config.session = Some(LocalSession {
        account_id: "acct-gateway-page".into(),
        user_id: CREATOR.into(),
    });
    let gateway = Gateway::start_with(config).await.unwrap();

    let (status, headers, body) = call(reqwest::Method::GET, &gateway.url(), None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("Inventory"));
    let script = format!("{}/assets/page.js", gateway.url());
    let (status, headers, _) = call(reqwest::Method::GET, &script, None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let outside = format!("{}/assets/%2e%2e/%2e%2e/Cargo.toml", gateway.url());
    assert_eq!(call(reqwest::Method::GET, &outside, None).await.0, 404);

    let session = format!("{}/local/session", gateway.url());
    let (status, headers, body) = call(reqwest::Method::GET, &session, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    let session = json_body(&body);
    assert_eq!(session["account_id"], "acct-gateway-page");
    let token = session["token"].as_str().unwrap();
    let preview = format!("{}/accounts/acct-gateway-page/push/preview", gateway.url());
    let (status, _, body) = call(reqwest::Method::POST, &preview, Some(token)).await;
    assert_eq!(status, 200, "the session's token is the creator's: {body}");

    std::fs::remove_dir_all(dist).unwrap();
}
