//! The functions under the real Lambda runtime (`cargo lambda watch`): the
//! same binaries as in AWS, invoked with the events AWS sends.

use local_stack::lambda::LambdaWatch;
use local_stack::resources::api_event;
use local_stack::{LocalStack, project_root};
use serde_json::{Value, json};

#[tokio::test]
async fn import_and_push_run_under_the_lambda_runtime() {
    let stack = LocalStack::start().await.unwrap();
    let account = stack
        .seed_account("acct-runtime", "user-creator", &[], true)
        .await
        .unwrap();
    let watch = LambdaWatch::start(&stack.function_env()).await.unwrap();

    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv")).unwrap();
    let event = stack
        .upload(&account.id, "yarn catalog.csv", csv)
        .await
        .unwrap();
    assert!(
        event["Records"][0]["s3"]["object"]["key"]
            .as_str()
            .unwrap()
            .contains("yarn+catalog.csv"),
        "S3 encodes a space as +"
    );
    let imported = watch.invoke("csv-import", &event).await.unwrap();
    assert_eq!(imported[0]["products"], 3, "{imported}");
    assert_eq!(
        stack
            .store
            .load_catalog(&account.id)
            .await
            .unwrap()
            .inventory
            .len(),
        7
    );

    let path = "/accounts/acct-runtime/push";
    let anonymous = watch
        .invoke(
            "inventory-push",
            &api_event("POST", path, None, &json!({})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(anonymous["statusCode"], 401);

    let claims = json!({ "sub": "user-creator", "exp": "4102444800" });
    let answer = watch
        .invoke(
            "inventory-push",
            &api_event("POST", path, Some(claims), &json!({})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let report: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["products_created"], 3);
    assert_eq!(report["quantities_set"], 9);

    let state = stack.sim_control.state().await.unwrap();
    let stock: i64 = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["variants"].as_array().unwrap().iter())
        .map(|v| v["levels"][0]["available"].as_i64().unwrap())
        .sum();
    assert_eq!(stock, 50, "the file's 50 skeins are on the shop");
}
