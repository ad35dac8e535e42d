//! The simulator's rules, one test each.

mod common;

use std::time::Duration;

use common::{Harness, TOKEN, cost, fixture, user_errors};
use serde_json::{Value, json};
use shopify_sim::{FaultKind, SimConfig};

/// Creates a tracked one-option product through `productSet`, stocked at
/// the first location; gives the product's JSON from the answer.
async fn create_product(h: &Harness, title: &str, colours: &[(&str, i64)]) -> Value {
    let location = h.first_location().await;
    let variants: Vec<Value> = colours
        .iter()
        .map(|(colour, quantity)| {
            json!({
                "optionValues": [{"optionName": "Color", "name": colour}],
                "price": "24.00",
                "sku": format!("SKU-{colour}"),
                "inventoryItem": {"tracked": true},
                "inventoryQuantities": [{"locationId": location, "name": "available", "quantity": quantity}],
            })
        })
        .collect();
    let values: Vec<Value> = colours
        .iter()
        .map(|(colour, _)| json!({"name": colour}))
        .collect();
    let body = h
        .gql(
            &fixture("product-set.graphql"),
            json!({
                "synchronous": true,
                "input": {
                    "title": title,
                    "productOptions": [{"name": "Color", "position": 1, "values": values}],
                    "variants": variants,
                },
            }),
        )
        .await;
    let payload = &body["data"]["productSet"];
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    payload["product"].clone()
}

fn item_of(product: &Value, index: usize) -> String {
    product["variants"]["nodes"][index]["inventoryItem"]["id"]
        .as_str()
        .expect("inventory item id")
        .to_owned()
}

async fn available(h: &Harness, item: &str) -> i64 {
    let location = h.first_location().await;
    let body = h
        .gql(
            &fixture("inventory-level.graphql"),
            json!({"id": item, "locationId": location}),
        )
        .await;
    body["data"]["inventoryItem"]["inventoryLevel"]["quantities"][0]["quantity"]
        .as_i64()
        .expect("available")
}

fn set_input(item: &str, location: &str, quantity: i64, change_from: Value) -> Value {
    json!({
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "logistics://fibermade/test",
        "quantities": [{
            "inventoryItemId": item,
            "locationId": location,
            "quantity": quantity,
            "changeFromQuantity": change_from,
        }],
    })
}

#[tokio::test]
async fn schema_validation_rejects_an_unknown_field_with_shopifys_shape() {
    let h = Harness::start().await;
    let body = h.gql("query Shop {\n  shop { nope }\n}", json!({})).await;
    let error = &body["errors"][0];
    assert_eq!(
        error["message"],
        "Field 'nope' doesn't exist on type 'Shop'"
    );
    assert_eq!(error["extensions"]["code"], "undefinedField");
    assert_eq!(error["locations"], json!([{"line": 2, "column": 10}]));
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn variables_that_do_not_fit_their_type_are_refused() {
    let h = Harness::start().await;
    let location = h.first_location().await;
    let mut input = set_input("gid://shopify/InventoryItem/1", &location, 1, json!(0));
    input["ignoreCompareQuantity"] = json!(true);
    let body = h
        .gql(
            &fixture("inventory-set.graphql"),
            json!({"input": input, "idempotencyKey": "k"}),
        )
        .await;
    let error = &body["errors"][0];
    assert_eq!(
        error["message"],
        "Variable $input of type InventorySetQuantitiesInput! was provided invalid value for ignoreCompareQuantity (Field is not defined on InventorySetQuantitiesInput)"
    );
    assert_eq!(error["extensions"]["code"], "INVALID_VARIABLE");
    assert_eq!(
        error["extensions"]["problems"][0]["path"],
        json!(["ignoreCompareQuantity"])
    );

    let body = h
        .gql(
            &fixture("product-set-minimal.graphql"),
            json!({"input": {"title": "x", "status": "ENABLED"}}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["problems"][0]["explanation"],
        "Expected \"ENABLED\" to be one of: ACTIVE, ARCHIVED, DRAFT, UNLISTED"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_with_401() {
    let h = Harness::start().await;
    for token in [Some("shpat_wrong"), None] {
        let mut request = h
            .http
            .post(h.sim.graphql_url())
            .json(&json!({"query": "{ shop { name } }"}));
        if let Some(token) = token {
            request = request.header("X-Shopify-Access-Token", token);
        }
        let response = request.send().await.expect("answered");
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body,
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
        );
    }
}

#[tokio::test]
async fn other_api_versions_are_not_found() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(format!(
            "{}/admin/api/2024-01/graphql.json",
            h.sim.base_url()
        ))
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&json!({"query": "{ shop { name } }"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn product_set_creates_then_upserts_by_handle_without_duplicating() {
    let h = Harness::start().await;
    let document = fixture("product-set-minimal.graphql");
    let first = h
        .gql(
            &document,
            json!({"identifier": {"handle": "moss-garden"}, "input": {"title": "Moss Garden", "handle": "moss-garden"}}),
        )
        .await;
    let second = h
        .gql(
            &document,
            json!({"identifier": {"handle": "moss-garden"}, "input": {"title": "Moss Garden (renamed)"}}),
        )
        .await;
    let created = &first["data"]["productSet"]["product"];
    let updated = &second["data"]["productSet"]["product"];
    assert_eq!(created["id"], updated["id"]);
    assert_eq!(updated["title"], "Moss Garden (renamed)");
    assert_eq!(updated["handle"], "moss-garden");
    let state = h.control.state().await.expect("state");
    assert_eq!(state["products"].as_array().expect("products").len(), 1);
}

#[tokio::test]
async fn product_set_generates_handles_and_counts_up_on_collision() {
    let h = Harness::start().await;
    let document = fixture("product-set-minimal.graphql");
    let mut handles = Vec::new();
    for _ in 0..3 {
        let body = h
            .gql(&document, json!({"input": {"title": "Moss Garden"}}))
            .await;
        handles.push(body["data"]["productSet"]["product"]["handle"].clone());
    }
    assert_eq!(
        handles,
        vec![
            json!("moss-garden"),
            json!("moss-garden-1"),
            json!("moss-garden-2")
        ]
    );
}

#[tokio::test]
async fn product_set_replaces_variants_wholesale() {
    let h = Harness::start().await;
    let product = create_product(
        &h,
        "Sea Glass",
        &[("Fingering", 3), ("DK", 4), ("Sport", 5)],
    )
    .await;
    let dk = product["variants"]["nodes"][1]["id"].clone();
    let body = h
        .gql(
            &fixture("product-set.graphql"),
            json!({
                "synchronous": true,
                "identifier": {"id": product["id"]},
                "input": {
                    "productOptions": [{"name": "Color", "values": [{"name": "DK"}, {"name": "Worsted"}]}],
                    "variants": [
                        {"optionValues": [{"optionName": "Color", "name": "DK"}], "price": "26.50"},
                        {"optionValues": [{"optionName": "Color", "name": "Worsted"}], "price": "28"},
                    ],
                },
            }),
        )
        .await;
    let updated = &body["data"]["productSet"]["product"];
    let nodes = updated["variants"]["nodes"].as_array().expect("variants");
    let titles: Vec<&Value> = nodes.iter().map(|node| &node["title"]).collect();
    assert_eq!(titles, vec![&json!("DK"), &json!("Worsted")]);
    assert_eq!(
        nodes[0]["id"], dk,
        "the DK variant is matched by its option value"
    );
    assert_eq!(nodes[0]["price"], "26.50");
    assert_eq!(nodes[1]["price"], "28.00");
    assert_eq!(updated["options"][0]["values"], json!(["DK", "Worsted"]));
}

#[tokio::test]
async fn duplicate_option_value_combinations_are_refused() {
    let h = Harness::start().await;
    let body = h
        .gql(
            &fixture("product-set-user-errors.graphql"),
            json!({
                "synchronous": true,
                "input": {
                    "title": "Twins",
                    "productOptions": [{"name": "Base", "values": [{"name": "DK"}]}],
                    "variants": [
                        {"optionValues": [{"optionName": "Base", "name": "DK"}]},
                        {"optionValues": [{"optionName": "Base", "name": "DK"}]},
                    ],
                },
            }),
        )
        .await;
    assert_eq!(
        body["data"]["productSet"]["userErrors"],
        json!([{"field": ["input", "variants", "1"], "message": "The variant 'DK' already exists. Please change at least one option value."}])
    );
}

#[tokio::test]
async fn change_from_quantity_stale_leaves_stock_unchanged() {
    let h = Harness::start().await;
    let product = create_product(&h, "Stale", &[("Red", 5), ("Blue", 7)]).await;
    let location = h.first_location().await;
    let (red, blue) = (item_of(&product, 0), item_of(&product, 1));
    let input = json!({
        "name": "available",
        "reason": "correction",
        "quantities": [
            {"inventoryItemId": red, "locationId": location, "quantity": 1, "changeFromQuantity": 5},
            {"inventoryItemId": blue, "locationId": location, "quantity": 2, "changeFromQuantity": 6},
        ],
    });
    let body = h
        .gql(
            &fixture("inventory-set.graphql"),
            json!({"input": input, "idempotencyKey": "stale-1"}),
        )
        .await;
    let payload = &body["data"]["inventorySetQuantities"];
    assert_eq!(payload["inventoryAdjustmentGroup"], Value::Null);
    assert_eq!(
        user_errors(payload),
        vec![(
            json!(["input", "quantities", "1", "changeFromQuantity"]),
            json!("CHANGE_FROM_QUANTITY_STALE")
        )]
    );
    assert_eq!(
        available(&h, &red).await,
        5,
        "no line of the call is applied"
    );
    assert_eq!(available(&h, &blue).await, 7);
}

#[tokio::test]
async fn more_than_250_quantities_are_refused_before_running() {
    let h = Harness::start().await;
    let product = create_product(&h, "Many", &[("Red", 5)]).await;
    let location = h.first_location().await;
    let item = item_of(&product, 0);
    let line = json!({"inventoryItemId": item, "locationId": location, "quantity": 1, "changeFromQuantity": null});
    let input = json!({"name": "available", "reason": "correction", "quantities": vec![line; 251]});
    let body = h
        .gql(
            &fixture("inventory-set.graphql"),
            json!({"input": input, "idempotencyKey": "many"}),
        )
        .await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "MAX_INPUT_SIZE_EXCEEDED");
    assert_eq!(
        error["message"],
        "The input array size of 251 is greater than the maximum allowed of 250."
    );
    assert_eq!(
        error["path"],
        json!(["inventorySetQuantities", "input", "quantities"])
    );
    assert_eq!(body["data"]["inventorySetQuantities"], Value::Null);
    assert_eq!(available(&h, &item).await, 5);
}

#[tokio::test]
async fn inventory_mutations_require_the_idempotent_directive() {
    let h = Harness::start().await;
    let location = h.first_location().await;
    let input = set_input("gid://shopify/InventoryItem/1", &location, 1, json!(0));
    let body = h
        .gql(
            &fixture("inventory-set-without-idempotent.graphql"),
            json!({"input": input}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(
        body["errors"][0]["message"],
        "The @idempotent directive is required for this mutation but was not provided."
    );
    assert_eq!(body["errors"][0]["path"], json!(["inventorySetQuantities"]));
}

#[tokio::test]
async fn the_same_idempotency_key_replays_without_applying_twice() {
    let h = Harness::start().await;
    let product = create_product(&h, "Replay", &[("Red", 0)]).await;
    let location = h.first_location().await;
    let item = item_of(&product, 0);
    let adjust = json!({
        "name": "available",
        "reason": "correction",
        "changes": [{"inventoryItemId": item, "locationId": location, "delta": 3, "changeFromQuantity": null}],
    });
    let variables = json!({"input": adjust, "idempotencyKey": "replay-1"});
    let first = h
        .gql(&fixture("inventory-adjust.graphql"), variables.clone())
        .await;
    let second = h.gql(&fixture("inventory-adjust.graphql"), variables).await;
    assert_eq!(
        first["data"]["inventoryAdjustQuantities"],
        second["data"]["inventoryAdjustQuantities"]
    );
    assert_eq!(
        available(&h, &item).await,
        3,
        "the second call applied nothing"
    );

    let set =
        json!({"input": set_input(&item, &location, 10, json!(3)), "idempotencyKey": "replay-2"});
    h.gql(&fixture("inventory-set.graphql"), set.clone()).await;
    let again = h.gql(&fixture("inventory-set.graphql"), set).await;
    assert_eq!(
        again["data"]["inventorySetQuantities"]["userErrors"],
        json!([])
    );
    assert_eq!(available(&h, &item).await, 10);
}

#[tokio::test]
async fn reusing_an_idempotency_key_with_other_input_is_refused() {
    let h = Harness::start().await;
    let product = create_product(&h, "Mismatch", &[("Red", 0)]).await;
    let location = h.first_location().await;
    let item = item_of(&product, 0);
    let document = fixture("inventory-set.graphql");
    h.gql(
        &document,
        json!({"input": set_input(&item, &location, 4, json!(0)), "idempotencyKey": "same"}),
    )
    .await;
    let body = h
        .gql(
            &document,
            json!({"input": set_input(&item, &location, 9, json!(4)), "idempotencyKey": "same"}),
        )
        .await;
    assert_eq!(
        user_errors(&body["data"]["inventorySetQuantities"]),
        vec![(Value::Null, json!("IDEMPOTENCY_KEY_PARAMETER_MISMATCH"))]
    );
    assert_eq!(available(&h, &item).await, 4);
}

#[tokio::test]
async fn setting_stock_at_an_unstocked_location_is_refused() {
    let config = SimConfig {
        locations: vec!["Studio".to_owned(), "Market stall".to_owned()],
        ..SimConfig::default()
    };
    let h = Harness::start_with(config).await;
    let product = create_product(&h, "Unstocked", &[("Red", 2)]).await;
    let locations = h.locations().await;
    let body = h
        .gql(
            &fixture("inventory-set.graphql"),
            json!({"input": set_input(&item_of(&product, 0), &locations[1], 1, json!(0)), "idempotencyKey": "u"}),
        )
        .await;
    assert_eq!(
        user_errors(&body["data"]["inventorySetQuantities"]),
        vec![(
            json!(["input", "quantities", "0", "locationId"]),
            json!("ITEM_NOT_STOCKED_AT_LOCATION")
        )]
    );
}

#[tokio::test]
async fn the_bucket_throttles_when_drained_and_refills_with_time() {
    let config = SimConfig {
        bucket_size: 12.0,
        restore_rate: 20.0,
        ..SimConfig::default()
    };
    let h = Harness::start_with(config).await;
    let document = fixture("product-set-minimal.graphql");
    let first = h.gql(&document, json!({"input": {"title": "One"}})).await;
    assert_eq!(cost(&first), (json!(10), json!(10)));
    let throttled = h.gql(&document, json!({"input": {"title": "Two"}})).await;
    assert_eq!(throttled["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(throttled["errors"][0]["message"], "Throttled");
    assert_eq!(
        throttled["extensions"]["cost"]["actualQueryCost"],
        Value::Null
    );
    assert_eq!(
        throttled["extensions"]["cost"]["throttleStatus"]["maximumAvailable"],
        12
    );
    assert!(throttled.get("data").is_none(), "nothing ran");
    let state = h.control.state().await.expect("state");
    assert_eq!(state["products"].as_array().expect("products").len(), 1);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = h.gql(&document, json!({"input": {"title": "Two"}})).await;
    assert!(later.get("errors").is_none(), "{later}");
}

#[tokio::test]
async fn a_query_above_the_single_query_limit_is_refused() {
    let h = Harness::start().await;
    let query = "{ products(first: 250) { nodes { id variants(first: 250) { nodes { id } } } } }";
    let body = h.gql(query, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
    assert_eq!(body["errors"][0]["extensions"]["maxCost"], 1000);
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn every_answer_carries_the_cost_and_throttle_status() {
    let h = Harness::start().await;
    let body = h.gql("{ shop { name myshopifyDomain } }", json!({})).await;
    assert_eq!(
        body["data"]["shop"]["myshopifyDomain"],
        "fibermade-sim.myshopify.com"
    );
    assert_eq!(cost(&body), (json!(1), json!(1)));
    let status = &body["extensions"]["cost"]["throttleStatus"];
    assert_eq!(status["maximumAvailable"], 2000);
    assert_eq!(status["restoreRate"], 100);
    assert!(status["currentlyAvailable"].as_i64().expect("available") >= 1998);
}

#[tokio::test]
async fn a_lost_response_still_applies_the_write() {
    let h = Harness::start().await;
    h.control
        .inject_fault(
            FaultKind::LostResponse { status: None },
            Some("productSet"),
            1,
        )
        .await
        .expect("fault queued");
    let result = h
        .http
        .post(h.sim.graphql_url())
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&json!({"query": fixture("product-set-minimal.graphql"), "variables": {"input": {"title": "Lost"}}}))
        .send()
        .await;
    let read = match result {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(read.is_err(), "the client never sees the answer");
    let product = h.control.product_by_handle("lost").await.expect("control");
    assert!(product.is_some(), "the product was created anyway");
    let calls = h.control.calls().await.expect("calls");
    assert_eq!(calls.last().expect("a call")["outcome"], "lost_response");
}

#[tokio::test]
async fn a_lost_response_can_answer_504_instead() {
    let h = Harness::start().await;
    h.control
        .inject_fault(FaultKind::LostResponse { status: Some(504) }, None, 1)
        .await
        .expect("fault queued");
    let (status, _) = h
        .post(
            &fixture("product-set-minimal.graphql"),
            json!({"input": {"title": "Timed Out"}}),
        )
        .await;
    assert_eq!(status, 504);
    assert!(
        h.control
            .product_by_handle("timed-out")
            .await
            .expect("control")
            .is_some()
    );
}

#[tokio::test]
async fn network_drops_and_server_errors_run_nothing() {
    let h = Harness::start().await;
    h.control
        .inject_fault(FaultKind::NetworkDrop, Some("productSet"), 1)
        .await
        .expect("fault queued");
    h.control
        .inject_fault(
            FaultKind::ServerError { status: 503 },
            Some("productSet"),
            1,
        )
        .await
        .expect("fault queued");
    let request = || {
        h.http
            .post(h.sim.graphql_url())
            .header("X-Shopify-Access-Token", TOKEN)
            .json(&json!({"query": fixture("product-set-minimal.graphql"), "variables": {"input": {"title": "Dropped"}}}))
            .send()
    };
    let dropped = match request().await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(dropped.is_err());
    let failed = request().await.expect("answered");
    assert_eq!(failed.status().as_u16(), 503);
    assert!(
        h.control
            .product_by_handle("dropped")
            .await
            .expect("control")
            .is_none()
    );
    let ok = request().await.expect("answered");
    assert_eq!(ok.status().as_u16(), 200);
    assert!(
        h.control
            .product_by_handle("dropped")
            .await
            .expect("control")
            .is_some()
    );
}

#[tokio::test]
async fn a_throttled_fault_answers_throttled_without_running() {
    let h = Harness::start().await;
    h.control
        .inject_fault(FaultKind::Throttled, None, 1)
        .await
        .expect("fault queued");
    let body = h
        .gql(
            &fixture("product-set-minimal.graphql"),
            json!({"input": {"title": "Never"}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
    assert!(
        h.control
            .product_by_handle("never")
            .await
            .expect("control")
            .is_none()
    );
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let h = Harness::start().await;
    h.control
        .inject_fault(FaultKind::Latency { ms: 300 }, None, 1)
        .await
        .expect("fault queued");
    let started = std::time::Instant::now();
    h.gql("{ shop { name } }", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn large_ids_survive_as_strings() {
    let h = Harness::start().await;
    let product = create_product(&h, "Big Numbers", &[("Red", 1)]).await;
    let id = product["id"].as_str().expect("product ids are strings");
    let number: u64 = id.rsplit('/').next().expect("number").parse().expect("u64");
    assert!(number > 1 << 53, "ids start above 2^53: {number}");
    let body = h
        .gql(&fixture("product-read.graphql"), json!({"id": id}))
        .await;
    assert_eq!(body["data"]["product"]["id"], id, "{body}");
}

#[tokio::test]
async fn a_sale_lowers_available_and_on_hand() {
    let h = Harness::start().await;
    let product = create_product(&h, "Sold", &[("Red", 5)]).await;
    let item = item_of(&product, 0);
    let level = h.control.sale(&item, None, 2).await.expect("sale");
    assert_eq!((level.available, level.on_hand), (3, 3));
    assert_eq!(available(&h, &item).await, 3);
    let state = h.control.state().await.expect("state");
    let events = state["inventoryEvents"].as_array().expect("events");
    assert_eq!(events.last().expect("event")["source"], "sale");
    let level = h
        .control
        .set_stock(&item, None, 12)
        .await
        .expect("set stock");
    assert_eq!(level.available, 12);
}

#[tokio::test]
async fn products_can_be_found_by_handle_and_title() {
    let h = Harness::start().await;
    create_product(&h, "Moss Garden", &[("Red", 1)]).await;
    create_product(&h, "Sea Glass", &[("Red", 1)]).await;
    let query = "query Find($q: String) { products(first: 5, query: $q) { nodes { handle } } }";
    let by_handle = h.gql(query, json!({"q": "handle:sea-glass"})).await;
    assert_eq!(
        by_handle["data"]["products"]["nodes"],
        json!([{"handle": "sea-glass"}])
    );
    let by_title = h.gql(query, json!({"q": "title:'Moss Garden'"})).await;
    assert_eq!(
        by_title["data"]["products"]["nodes"],
        json!([{"handle": "moss-garden"}])
    );
    let by_identifier = h
        .gql(
            "{ productByIdentifier(identifier: {handle: \"moss-garden\"}) { title } }",
            json!({}),
        )
        .await;
    assert_eq!(
        by_identifier["data"]["productByIdentifier"]["title"],
        "Moss Garden"
    );
}

#[tokio::test]
async fn connections_page_with_first_and_after() {
    let h = Harness::start().await;
    for title in ["A", "B", "C"] {
        create_product(&h, title, &[("Red", 1)]).await;
    }
    let query = "query Page($after: String) { products(first: 2, after: $after) { edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }";
    let first = h.gql(query, json!({})).await;
    let page = &first["data"]["products"];
    assert_eq!(page["edges"].as_array().expect("edges").len(), 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let second = h
        .gql(query, json!({"after": page["pageInfo"]["endCursor"]}))
        .await;
    let page = &second["data"]["products"];
    assert_eq!(page["edges"][0]["node"]["title"], "C");
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn fragments_aliases_and_typename_are_projected() {
    let h = Harness::start().await;
    let product = create_product(&h, "Fragments", &[("Red", 1)]).await;
    let query = "query Nodes($ids: [ID!]!) { found: nodes(ids: $ids) { __typename ...P ... on ProductVariant { sku } } }
                 fragment P on Product { name: title }";
    let variant = product["variants"]["nodes"][0]["id"].clone();
    let body = h
        .gql(
            query,
            json!({"ids": [product["id"], variant, "gid://shopify/Product/1"]}),
        )
        .await;
    assert_eq!(
        body["data"]["found"],
        json!([
            {"__typename": "Product", "name": "Fragments"},
            {"__typename": "ProductVariant", "sku": "SKU-Red"},
            null,
        ])
    );
}

#[tokio::test]
async fn metafields_set_validates_integers() {
    let h = Harness::start().await;
    let product = create_product(&h, "Per Pan", &[("Red", 1)]).await;
    let set = |value: &str| json!({"metafields": [{"ownerId": product["id"], "namespace": "fibermade", "key": "per_pan", "type": "number_integer", "value": value}]});
    let bad = h.gql(&fixture("metafields-set.graphql"), set("six")).await;
    assert_eq!(
        user_errors(&bad["data"]["metafieldsSet"]),
        vec![(json!(["metafields", "0", "value"]), json!("INVALID_VALUE"))]
    );
    let good = h.gql(&fixture("metafields-set.graphql"), set("6")).await;
    assert_eq!(good["data"]["metafieldsSet"]["metafields"][0]["value"], "6");
    let read = h
        .gql(
            "query M($id: ID!) { product(id: $id) { metafield(namespace: \"fibermade\", key: \"per_pan\") { value type } } }",
            json!({"id": product["id"]}),
        )
        .await;
    assert_eq!(
        read["data"]["product"]["metafield"],
        json!({"value": "6", "type": "number_integer"})
    );
}

#[tokio::test]
async fn product_set_files_become_ready_media_in_order() {
    let h = Harness::start().await;
    let body = h
        .gql(
            &fixture("product-set-minimal.graphql"),
            json!({"input": {"title": "Pictured", "files": [
                {"originalSource": "https://cdn.example/primary.jpg", "alt": "primary", "contentType": "IMAGE"},
                {"originalSource": "https://cdn.example/second.jpg", "contentType": "IMAGE"},
            ]}}),
        )
        .await;
    let id = body["data"]["productSet"]["product"]["id"].clone();
    let read = h
        .gql(&fixture("product-read.graphql"), json!({"id": id}))
        .await;
    let media = read["data"]["product"]["media"]["nodes"]
        .as_array()
        .expect("media")
        .clone();
    assert_eq!(media.len(), 2);
    assert_eq!(media[0]["__typename"], "MediaImage");
    assert_eq!(media[0]["status"], "READY");
    assert_eq!(media[0]["image"]["url"], "https://cdn.example/primary.jpg");
}

#[tokio::test]
async fn the_call_log_and_stats_record_every_request() {
    let h = Harness::start().await;
    h.gql("{ shop { name } }", json!({})).await;
    h.gql("{ shop { nope } }", json!({})).await;
    let calls = h.control.calls().await.expect("calls");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["rootFields"], json!(["shop"]));
    assert_eq!(calls[0]["outcome"], "ok");
    assert_eq!(calls[0]["requestedCost"], 1);
    assert_eq!(calls[1]["outcome"], "invalid");
    let stats = h.control.stats().await.expect("stats");
    assert_eq!(stats["calls"], 2);
    assert_eq!(stats["byRootField"]["shop"], 1);
    h.control.clear_calls().await.expect("cleared");
    assert!(h.control.calls().await.expect("calls").is_empty());
}

#[tokio::test]
async fn reset_empties_the_shop_and_config_changes_the_bucket() {
    let h = Harness::start().await;
    create_product(&h, "Gone", &[("Red", 1)]).await;
    h.control.reset().await.expect("reset");
    let state = h.control.state().await.expect("state");
    assert_eq!(state["products"], json!([]));
    let status = h
        .control
        .configure_bucket(Some(50.0), Some(5.0), true)
        .await
        .expect("config");
    assert_eq!(status["throttleStatus"]["maximumAvailable"], 50);
    assert_eq!(status["throttleStatus"]["currentlyAvailable"], 50);
}

#[tokio::test]
async fn webhook_subscriptions_are_stored_and_deleted() {
    let h = Harness::start().await;
    let created = h
        .gql(
            &fixture("webhook-create.graphql"),
            json!({"topic": "INVENTORY_LEVELS_UPDATE", "webhookSubscription": {"uri": "http://127.0.0.1:9/webhooks", "format": "JSON"}}),
        )
        .await;
    let subscription = &created["data"]["webhookSubscriptionCreate"]["webhookSubscription"];
    assert_eq!(subscription["topic"], "INVENTORY_LEVELS_UPDATE");
    let listed = h.gql(&fixture("webhooks-read.graphql"), json!({})).await;
    assert_eq!(
        listed["data"]["webhookSubscriptions"]["nodes"][0]["uri"],
        "http://127.0.0.1:9/webhooks"
    );
    let deleted = h
        .gql(
            &fixture("webhook-delete.graphql"),
            json!({"id": subscription["id"]}),
        )
        .await;
    assert_eq!(
        deleted["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"],
        subscription["id"]
    );
    let state = h.control.state().await.expect("state");
    assert_eq!(state["webhookSubscriptions"], json!([]));
}

#[tokio::test]
async fn the_binary_prints_its_address_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shopify-sim"))
        .args(["--port", "0", "--token", "t", "--bucket", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let base = line.trim().trim_start_matches("listening on ").to_owned();
    let health: Value = reqwest::get(format!("{base}/_sim/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["ok"], true);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}
