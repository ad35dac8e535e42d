//! Every document the client can send must validate against the pinned Admin
//! schema, so a typo or a field Shopify removed fails here, not in a dyer's push.

use std::path::PathBuf;

use apollo_compiler::{ExecutableDocument, Schema};
use fibermade_sync::shopify::operations::{ALL, Operation};

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/shopify/admin-2026-07.graphql")
}

fn schema() -> apollo_compiler::validation::Valid<Schema> {
    let sdl =
        std::fs::read_to_string(schema_path()).expect("the Admin schema is beside the project");
    Schema::parse_and_validate(sdl, "admin-2026-07.graphql").expect("the Admin schema validates")
}

fn validate(
    schema: &apollo_compiler::validation::Valid<Schema>,
    op: &Operation,
) -> Result<(), String> {
    ExecutableDocument::parse_and_validate(schema, op.document, format!("{}.graphql", op.name))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn every_client_document_validates_against_the_admin_schema() {
    let schema = schema();
    let failures: Vec<String> = ALL
        .iter()
        .filter_map(|op| {
            validate(&schema, op)
                .err()
                .map(|e| format!("{}: {e}", op.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "documents that do not validate:\n{}",
        failures.join("\n")
    );
    assert!(ALL.len() >= 8, "the list of documents lost entries");
}

#[test]
fn each_document_holds_one_operation_named_like_its_constant() {
    let schema = schema();
    for op in ALL {
        let doc = ExecutableDocument::parse_and_validate(&schema, op.document, op.name).unwrap();
        let names: Vec<_> = doc
            .operations
            .iter()
            .filter_map(|o| o.name.as_ref().map(|n| n.to_string()))
            .collect();
        assert_eq!(
            names,
            vec![op.name.to_string()],
            "document {} must hold exactly its named operation",
            op.name
        );
    }
}

#[test]
fn validation_catches_a_field_the_schema_lacks() {
    let schema = schema();
    let bad = Operation {
        name: "Bad",
        document: "query Bad { shop { nameThatDoesNotExist } }",
        estimated_cost: 1.0,
    };
    assert!(validate(&schema, &bad).is_err());
}

#[test]
fn inventory_writes_carry_an_idempotency_key_and_change_from_quantity() {
    let set = ALL
        .iter()
        .find(|op| op.name == "InventorySetQuantities")
        .unwrap();
    assert!(set.document.contains("@idempotent(key: $idempotencyKey)"));
    // changeFromQuantity travels in each line of the input; the line type
    // always serialises it, null included.
    let line = fibermade_sync::shopify::QuantityLine {
        inventory_item_id: "gid://shopify/InventoryItem/1".parse().unwrap(),
        location_id: "gid://shopify/Location/2".parse().unwrap(),
        quantity: 3,
        change_from_quantity: None,
    };
    let json = serde_json::to_value(&line).unwrap();
    assert!(json.as_object().unwrap().contains_key("changeFromQuantity"));
}

/// Fields of a selection set and below that the schema marks deprecated.
fn deprecated_fields(
    set: &apollo_compiler::executable::SelectionSet,
    document: &ExecutableDocument,
    found: &mut Vec<String>,
) {
    use apollo_compiler::executable::Selection;
    for selection in &set.selections {
        match selection {
            Selection::Field(field) => {
                if field.definition.directives.get("deprecated").is_some() {
                    found.push(format!("{}.{}", set.ty, field.name));
                }
                deprecated_fields(&field.selection_set, document, found);
            }
            Selection::InlineFragment(inline) => {
                deprecated_fields(&inline.selection_set, document, found)
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = spread.fragment_def(document) {
                    deprecated_fields(&fragment.selection_set, document, found);
                }
            }
        }
    }
}

#[test]
fn no_document_selects_a_deprecated_field() {
    let schema = schema();
    let mut found = Vec::new();
    for op in ALL {
        let doc = ExecutableDocument::parse_and_validate(&schema, op.document, op.name).unwrap();
        for operation in doc.operations.iter() {
            deprecated_fields(&operation.selection_set, &doc, &mut found);
        }
    }
    assert!(found.is_empty(), "deprecated in 2026-07: {found:?}");
}

#[test]
fn bulk_lines_carry_every_variable_the_product_set_document_declares() {
    use fibermade_sync::shopify::operations::PRODUCT_SET;
    let schema = schema();
    let doc = ExecutableDocument::parse_and_validate(&schema, PRODUCT_SET.document, "ProductSet")
        .unwrap();
    let declared: Vec<String> = doc
        .operations
        .iter()
        .flat_map(|o| o.variables.iter().map(|v| v.name.to_string()))
        .collect();
    // What `product_set_bulk` writes on each line of the variables file.
    assert_eq!(declared, ["input", "identifier", "variantCount"]);
    let run = ALL
        .iter()
        .find(|op| op.name == "BulkOperationRunMutation")
        .expect("the bulk run document");
    assert!(run.document.contains("stagedUploadPath: $stagedUploadPath"));
}

#[test]
fn the_deprecation_check_catches_current_bulk_operation() {
    let schema = schema();
    let polling = "query Poll { currentBulkOperation(type: MUTATION) { id status } }";
    let doc = ExecutableDocument::parse_and_validate(&schema, polling, "Poll").unwrap();
    let mut found = Vec::new();
    for operation in doc.operations.iter() {
        deprecated_fields(&operation.selection_set, &doc, &mut found);
    }
    assert_eq!(found, ["QueryRoot.currentBulkOperation"]);
}
