//! The push page in a real browser: Debian's Chromium driven by Playwright
//! (`web/e2e`), against the whole local stack — moto, the Shopify simulator,
//! the functions under `cargo lambda watch`, and the gateway stand-in with
//! its JWT authorizer. Each test sets the stack up, lets a scenario click
//! through the page, then checks what the page showed against the shop.
//!
//! Screenshots land in `target/browser-artifacts/<scenario>/`. Needs
//! `make web-build browser` (the page built, its npm packages, Chromium).

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fibermade_sync::domain::{AccountId, ExternalType, LocalRef};
use local_stack::gateway::{Gateway, Issuer};
use local_stack::lambda::LambdaWatch;
use local_stack::resources::api_event;
use local_stack::{LocalStack, SHOP_DOMAIN, project_root};
use serde_json::{Value, json};
use shopify_sim::FaultKind;

const CREATOR: &str = "user-dyer";
const MEMBER: &str = "user-helper";

/// Root fields of the Admin API that change a shop.
const WRITES: &[&str] = &[
    "productSet",
    "productDelete",
    "productVariantsBulkCreate",
    "productVariantsBulkUpdate",
    "productVariantsBulkDelete",
    "inventorySetQuantities",
    "inventoryAdjustQuantities",
    "metafieldsSet",
    "stagedUploadsCreate",
    "bulkOperationRunMutation",
];

/// Attempts the functions make at a 5xx before giving up on an item.
const RETRY_ATTEMPTS: u32 = 3;

fn web_dir() -> PathBuf {
    project_root().join("web")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails with what to run when a tool the browser tests need is missing.
fn require_browser_tools() {
    let missing: Vec<&str> = [
        (chromium().exists(), "Chromium"),
        (
            web_dir().join("node_modules/playwright-core").exists(),
            "the page's npm packages",
        ),
        (web_dir().join("dist/index.html").exists(), "the built page"),
    ]
    .into_iter()
    .filter(|(present, _)| !present)
    .map(|(_, what)| what)
    .collect();
    assert!(
        missing.is_empty(),
        "missing for the browser tests: {}; run `make browser web-build`",
        missing.join(", ")
    );
}

/// The whole stack behind the page, for one account of the dyer.
struct PageStack {
    stack: LocalStack,
    watch: LambdaWatch,
    gateway: Gateway,
    account: AccountId,
}

impl PageStack {
    /// `env` is added to every function's environment.
    async fn start(account: &str, env: &[(&str, &str)]) -> Self {
        require_browser_tools();
        let stack = LocalStack::start().await.unwrap();
        let account = stack
            .seed_account(account, CREATOR, &[MEMBER], true)
            .await
            .unwrap()
            .id;
        let mut function_env = stack.function_env();
        let attempts = RETRY_ATTEMPTS.to_string();
        let defaults = [
            ("SHOPIFY_RETRY_ATTEMPTS", attempts.as_str()),
            // Inline unless a test asks for jobs.
            ("PUSH_JOB_THRESHOLD", "100000"),
        ];
        for (key, value) in defaults.iter().chain(env) {
            function_env.retain(|(k, _)| k != key);
            function_env.push(((*key).to_owned(), (*value).to_owned()));
        }
        let watch = LambdaWatch::start(&function_env).await.unwrap();
        // The first invocation builds the function; do it here, not under
        // the gateway's 30 s integration timeout.
        let warm = api_event(
            "GET",
            &format!("/accounts/{account}/sync-log"),
            None,
            &json!(null),
        )
        .unwrap();
        watch.invoke("inventory-push", &warm).await.unwrap();
        let gateway = Gateway::start(
            &watch.endpoint(),
            Some(web_dir().join("dist")),
            Issuer::local(),
        )
        .await
        .unwrap();
        Self {
            stack,
            watch,
            gateway,
            account,
        }
    }

    /// The page as the dyer opens it; `query` such as `refresh=1`.
    fn page_url(&self, user: &str, query: &str) -> String {
        format!(
            "{}/?{query}#account={}&token={}",
            self.gateway.url(),
            self.account,
            self.gateway.token_for(user)
        )
    }

    async fn import(&self, name: &str, csv: Vec<u8>) {
        self.stack
            .import_file(&self.account, name, csv)
            .await
            .unwrap()
            .unwrap();
    }

    async fn import_yarn_catalog(&self) {
        let csv =
            std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
        self.import("yarn-catalog.csv", csv).await;
    }

    /// Calls the push API through the gateway as the dyer.
    async fn api(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(
                method,
                format!("{}/accounts/{}{path}", self.gateway.url(), self.account),
            )
            .bearer_auth(self.gateway.token_for(CREATOR))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// The dry run's counts.
    async fn preview(&self) -> Value {
        let (status, report) = self.api(reqwest::Method::POST, "/push/preview").await;
        assert_eq!(status, 200, "{report}");
        report
    }

    async fn fault(&self, kind: FaultKind, operation: Option<&str>, count: u32) {
        self.stack
            .sim_control
            .inject_fault(kind, operation, count)
            .await
            .unwrap();
    }

    async fn shop_products(&self) -> Vec<Value> {
        let state = self.stack.sim_control.state().await.unwrap();
        state["products"].as_array().cloned().unwrap_or_default()
    }
}

/// A catalog of `colorways` × the bases, in the legacy export format, for
/// pushes larger than the yarn fixture.
fn catalog_csv(colorways: usize) -> Vec<u8> {
    const NAMES: &[&str] = &[
        "Moss", "Harbour", "Ember", "Thistle", "Fjord", "Saffron", "Heather", "Lichen", "Slate",
        "Bramble", "Peat", "Tide", "Rowan", "Juniper", "Kelp", "Marigold",
    ];
    const BASES: &[(&str, &str)] = &[
        ("Merino Fingering", "28.00"),
        ("Merino DK", "30.00"),
        ("Sock 75/25", "26.00"),
        ("Mohair Lace", "32.00"),
        ("Aran", "31.00"),
    ];
    let mut csv = String::from(
        "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Inventory Qty,Variant Price,Image Src,Image Position,Image Alt Text,Status\n",
    );
    for (i, name) in NAMES.iter().cycle().take(colorways).enumerate() {
        let title = format!("{name} {}", i + 1);
        let handle = title.to_lowercase().replace(' ', "-");
        for (j, (base, price)) in BASES.iter().enumerate() {
            let stock = (i * 7 + j * 3) % 15;
            let sku = format!("{}-{}", handle.to_uppercase(), j + 1);
            if j == 0 {
                csv.push_str(&format!(
                    "{handle},{title},\"<p>{title}, hand dyed.</p>\",Moss & Main,Yarn,Tonal,true,Base,{base},{sku},{stock},{price},,,,active\n"
                ));
            } else {
                csv.push_str(&format!(
                    "{handle},,,,,,,,{base},{sku},{stock},{price},,,,\n"
                ));
            }
        }
    }
    csv.into_bytes()
}

/// Runs `web/e2e/run.mjs <scenario>` on `url`. When the page waits for the
/// stack (`@wait <label>`), `on_wait` acts, and the page goes on. Answers
/// what the scenario reported; a scenario that failed fails the test.
async fn run_scenario<F, Fut>(scenario: &str, url: &str, mut on_wait: F) -> Value
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let artifacts = project_root()
        .join("target/browser-artifacts")
        .join(scenario);
    std::fs::create_dir_all(&artifacts).unwrap();
    let log = std::fs::File::create(artifacts.join("browser.log")).unwrap();
    let child = std::process::Command::new("node")
        .current_dir(web_dir())
        .args(["e2e/run.mjs", scenario])
        .env("PAGE_URL", url)
        .env("ARTIFACTS_DIR", &artifacts)
        .env("CHROMIUM_PATH", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("node runs the browser scenarios (Node.js 20 or later)");
    let mut node = Node(child);
    let mut stdin = node.0.stdin.take().unwrap();
    let stdout = node.0.stdout.take().unwrap();
    // The scenario's lines, read on a thread of their own.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let outcome = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.recv().await {
            if let Some(label) = line.strip_prefix("@wait ") {
                on_wait(label.to_owned()).await;
                writeln!(stdin, "go").unwrap();
                stdin.flush().unwrap();
            } else if let Some(result) = line.strip_prefix("@result ") {
                return Ok(serde_json::from_str::<Value>(result).unwrap());
            } else if let Some(error) = line.strip_prefix("@error ") {
                return Err(error.to_owned());
            }
        }
        Err("the browser run ended without a result".to_owned())
    })
    .await;
    drop(node);
    match outcome {
        Ok(Ok(result)) => {
            assert!(
                result.get("console_errors").is_none(),
                "the page logged errors: {result}"
            );
            result
        }
        Ok(Err(error)) => panic!(
            "scenario {scenario} failed: {error}\n(screenshots and log in {})",
            artifacts.display()
        ),
        Err(_) => panic!("scenario {scenario} did not finish in 300 s"),
    }
}

/// The scenario's node process, in a process group of its own with the
/// Chromium it starts.
struct Node(std::process::Child);

impl Drop for Node {
    /// Gives the scenario a moment to close its browser, then stops the
    /// whole group.
    fn drop(&mut self) {
        for _ in 0..100 {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let group = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &group])
            .status();
        let _ = self.0.wait();
    }
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not shown in {value}"))
}

#[tokio::test]
async fn a_push_shows_its_progress_then_the_counts_the_shop_got() {
    let page = PageStack::start("acct-page-success", &[]).await;
    page.import_yarn_catalog().await;
    // Slow Shopify down a little, so the loading state is there to see.
    page.fault(FaultKind::Latency { ms: 400 }, None, 4).await;

    let url = page.page_url(CREATOR, "");
    let shown = run_scenario("push-success", &url, |_| async {}).await;

    let products = page.shop_products().await;
    let variants: usize = products
        .iter()
        .map(|p| p["variants"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        count(&shown["shown"], "products_created"),
        products.len() as u64,
        "the page counts the products the shop got: {shown}"
    );
    assert_eq!(
        count(&shown["pending_before"], "variants_affected"),
        variants as u64,
        "the page's pending count was every variant the shop got"
    );
    let logged = page
        .stack
        .store
        .recent_logs(&page.account, 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.entity == format!("account:{}", page.account))
        .expect("the push is logged");
    for key in ["variants_updated", "products_created", "quantities_set"] {
        assert_eq!(
            shown["shown"][key], logged.data[key],
            "the page shows the push's own {key}"
        );
    }
    assert!(count(&shown["shown"], "quantities_set") > 0);
    assert_eq!(count(&shown["pending_after"], "variants_affected"), 0);
    assert_eq!(shown["busy_label"], "Pushing…");
    assert!(
        shown["activity_top"]["message"]
            .as_str()
            .unwrap()
            .contains(SHOP_DOMAIN)
    );
}

#[tokio::test]
async fn a_push_with_errors_names_each_colorway_that_did_not_reach_the_shop() {
    let page = PageStack::start("acct-page-errors", &[]).await;
    page.import_yarn_catalog().await;
    // Every attempt at the first product's write fails; the rest go through.
    page.fault(
        FaultKind::ServerError { status: 502 },
        Some("productSet"),
        RETRY_ATTEMPTS,
    )
    .await;

    let url = page.page_url(CREATOR, "");
    let shown = run_scenario("push-errors", &url, |_| async {}).await;

    let on_shop: Vec<String> = page
        .shop_products()
        .await
        .iter()
        .filter_map(|p| p["title"].as_str().map(str::to_owned))
        .collect();
    let catalog = page.stack.store.load_catalog(&page.account).await.unwrap();
    let mut missing: Vec<String> = catalog
        .colorways
        .iter()
        .map(|c| c.name.clone())
        .filter(|name| !on_shop.contains(name))
        .collect();
    let mut named: Vec<String> = shown["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    missing.sort();
    named.sort();
    assert!(
        !missing.is_empty(),
        "the fault kept a colorway off the shop"
    );
    assert!(!on_shop.is_empty(), "the other colorways reached the shop");
    assert_eq!(
        named, missing,
        "the page names exactly the colorways missing from the shop"
    );
    assert_eq!(
        count(&shown["shown"], "products_created"),
        on_shop.len() as u64
    );
    for failure in shown["failures"].as_array().unwrap() {
        assert_eq!(
            failure["advice"], "push again later",
            "a 5xx is worth retrying: {failure}"
        );
        assert!(!failure["message"].as_str().unwrap().is_empty());
    }
    assert!(
        shown["title"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} ", missing.len()))
    );
    assert_eq!(shown["logged"]["status"], "error");
}

#[tokio::test]
async fn a_push_of_fifty_variants_or_more_is_confirmed_first_and_cancel_sends_nothing() {
    let page = PageStack::start("acct-page-confirm", &[]).await;
    page.import("large.csv", catalog_csv(12)).await;
    let preview = page.preview().await;
    let affected = count(&preview, "variants_affected");
    assert!(affected >= 50, "the catalog is large enough: {preview}");
    page.stack.sim_control.clear_calls().await.unwrap();

    let url = page.page_url(CREATOR, "");
    let shown = run_scenario("confirm-cancel", &url, |_| async {}).await;

    assert_eq!(count(&shown["pending"], "variants_affected"), affected);
    assert_eq!(
        shown["title"],
        format!("Push {affected} variants to Shopify?"),
        "the dialog asks with the dry run's count"
    );
    assert_eq!(
        count(&shown["in_dialog"], "products_created"),
        count(&preview, "products_created")
    );
    assert!(
        page.shop_products().await.is_empty(),
        "nothing reached the shop"
    );
    let writes: Vec<Value> = page
        .stack
        .sim_control
        .calls()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            c["rootFields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| WRITES.contains(&f.as_str().unwrap_or_default()))
        })
        .collect();
    assert!(writes.is_empty(), "no Shopify write was made: {writes:?}");
    let pushes = page
        .stack
        .store
        .recent_logs(&page.account, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.source == fibermade_sync::domain::LogSource::ManualPush)
        .count();
    assert_eq!(pushes, 0, "no push ran");
    assert_eq!(
        count(&shown["pending_after"], "variants_affected"),
        affected,
        "everything is still waiting"
    );
}

#[tokio::test]
async fn a_push_run_as_a_job_shows_products_done_until_it_ends() {
    let page = PageStack::start("acct-page-job", &[("PUSH_JOB_THRESHOLD", "10")]).await;
    let queue = page.stack.catalog_queue.clone();
    page.import("large.csv", catalog_csv(12)).await;
    let preview = page.preview().await;
    // A little latency on every Shopify call, so the job takes long enough
    // for its progress to be read more than once.
    page.fault(FaultKind::Latency { ms: 250 }, None, 40).await;

    // The queue's event source: hand its messages to sync-worker until the
    // test ends.
    let sqs = page.stack.sqs.clone();
    let watch = &page.watch;
    let worker = async {
        loop {
            local_stack::router::drain_queue_with(&sqs, &queue, |event| async move {
                let answer = watch.invoke("sync-worker", &event).await?;
                Ok(answer["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect())
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let url = page.page_url(CREATOR, "");
    let shown = tokio::select! {
        shown = run_scenario("job-progress", &url, |_| async {}) => shown,
        () = worker => unreachable!("the worker loop runs until the page is done"),
    };

    let products = page.shop_products().await;
    assert_eq!(products.len() as u64, count(&preview, "products_created"));
    assert_eq!(
        count(&shown["shown"], "products_created"),
        products.len() as u64
    );
    assert_eq!(
        shown["max"].as_u64(),
        Some(count(&preview, "products_created")),
        "the bar counts the job's products: {shown}"
    );
    let values: Vec<u64> = shown["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "progress only goes forward: {values:?}"
    );
}

#[tokio::test]
async fn the_activity_panel_shows_a_sale_pulled_from_the_shop_without_a_reload() {
    let page = PageStack::start("acct-page-activity", &[]).await;
    page.import_yarn_catalog().await;
    let (status, pushed) = page.api(reqwest::Method::POST, "/push").await;
    assert_eq!(status, 200, "{pushed}");
    let ingress = format!("{}/lambda-url/webhook-ingress/", page.watch.endpoint());
    let shop = fibermade_sync::shopify::Shop {
        domain: SHOP_DOMAIN.to_owned(),
        access_token: fibermade_sync::shopify::AccessToken::new(local_stack::ACCESS_TOKEN),
    };
    fibermade_sync::webhook::registration::ensure_inventory_subscription(
        &page.stack.shopify,
        &shop,
        &ingress,
    )
    .await
    .unwrap();

    // The row with the most stock, and its inventory item on the shop.
    let catalog = page.stack.store.load_catalog(&page.account).await.unwrap();
    let row = catalog
        .inventory
        .iter()
        .max_by_key(|r| r.quantity)
        .unwrap()
        .clone();
    let colorway = catalog
        .colorways
        .iter()
        .find(|c| c.id == row.key.colorway_id)
        .unwrap()
        .name
        .clone();
    let (integration, _) = page
        .stack
        .store
        .account_integration(&page.account)
        .await
        .unwrap()
        .unwrap();
    let item = page
        .stack
        .store
        .load_links(&integration.id)
        .await
        .unwrap()
        .into_iter()
        .find(|l| {
            l.local == LocalRef::Inventory(row.key.clone())
                && l.external_type == ExternalType::ShopifyInventoryItem
        })
        .unwrap()
        .external_id;

    let url = page.page_url(MEMBER, "refresh=1");
    let stack = &page.stack;
    let watch = &page.watch;
    let item = &item;
    let shown = run_scenario("activity-updates", &url, |_| async move {
        // A customer buys a skein; the webhook goes through the ingress and
        // the queue to sync-worker.
        stack
            .sim_control
            .sale(item.as_str(), None, 1)
            .await
            .unwrap();
        stack.sim_control.flush_webhooks().await.unwrap();
        local_stack::router::drain_queue_with(&stack.sqs, &stack.pull_queue, |event| async move {
            watch.invoke("sync-worker", &event).await?;
            Ok(Vec::new())
        })
        .await
        .unwrap();
    })
    .await;

    let after = page
        .stack
        .store
        .get_inventory(&page.account, &row.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.quantity,
        row.quantity - 1,
        "Fibermade's stock followed"
    );
    let arrived = &shown["arrived"];
    assert_eq!(arrived["label"], "Pull");
    assert!(
        arrived["message"].as_str().unwrap().contains(&colorway),
        "the entry names the colorway: {arrived}"
    );
    assert!(arrived["datetime"].as_str().is_some());
}

#[tokio::test]
async fn a_dyer_without_a_valid_token_is_asked_to_sign_in_and_cannot_push() {
    let page = PageStack::start("acct-page-signed-out", &[]).await;
    page.import_yarn_catalog().await;
    let foreign = Issuer::new(
        &page.gateway.issuer().issuer,
        &page.gateway.issuer().audience,
        b"a key the gateway does not trust",
    );
    let url = format!(
        "{}/#account={}&token={}",
        page.gateway.url(),
        page.account,
        foreign.token_for(CREATOR)
    );
    let shown = run_scenario("unauthorized", &url, |_| async {}).await;
    assert!(shown["note"].as_str().unwrap().contains("Sign in"));
    assert!(page.shop_products().await.is_empty());
}
