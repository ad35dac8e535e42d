//! The Admin API schema and Shopify-shaped validation errors.
//!
//! Requests are parsed and validated with apollo-compiler. Its diagnostics
//! follow graphql-js wording; Shopify answers with graphql-ruby wording and
//! camel-case codes (`undefinedField`, `missingRequiredArguments`, …), so the
//! common diagnostics are translated here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use apollo_compiler::validation::{DiagnosticList, Valid};
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::{Map, Value, json};

use crate::error::SimError;

/// The validated schema, shared by every request.
pub type SharedSchema = Arc<Valid<Schema>>;

/// Schemas already loaded in this process, by path: several simulators in
/// one test binary share one parse.
static LOADED: Mutex<Vec<(PathBuf, SharedSchema)>> = Mutex::new(Vec::new());

/// Reads and validates the SDL, once per path and process.
pub fn load(path: &Path) -> Result<SharedSchema, SimError> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, schema)) = loaded.iter().find(|(known, _)| known == path) {
        return Ok(Arc::clone(schema));
    }
    let schema = read(path)?;
    loaded.push((path.to_owned(), Arc::clone(&schema)));
    Ok(schema)
}

fn read(path: &Path) -> Result<SharedSchema, SimError> {
    let sdl = std::fs::read_to_string(path).map_err(|source| SimError::SchemaRead {
        path: path.to_owned(),
        source,
    })?;
    let schema =
        Schema::parse_and_validate(sdl, path).map_err(|with_errors| SimError::SchemaInvalid {
            path: path.to_owned(),
            message: with_errors.errors.to_string(),
        })?;
    Ok(Arc::new(schema))
}

/// Parses and validates a request document, or gives Shopify-shaped errors.
pub fn parse_document(
    schema: &Valid<Schema>,
    query: &str,
) -> Result<Valid<ExecutableDocument>, Vec<Value>> {
    ExecutableDocument::parse_and_validate(schema, query, "query.graphql")
        .map_err(|with_errors| shopify_errors(&with_errors.errors))
}

fn shopify_errors(diagnostics: &DiagnosticList) -> Vec<Value> {
    // A selection whose only field is unknown is also "missing" a
    // selection to apollo-compiler; Shopify reports the unknown field alone.
    let has_undefined_field = diagnostics
        .iter()
        .any(|diagnostic| diagnostic.error.unstable_error_name() == Some("UndefinedField"));
    diagnostics
        .iter()
        .filter(|diagnostic| {
            !(has_undefined_field
                && diagnostic.error.unstable_error_name() == Some("MissingSubselection"))
        })
        .map(|diagnostic| {
            let name = diagnostic.error.unstable_error_name();
            let compat = diagnostic
                .error
                .unstable_compat_message()
                .unwrap_or_else(|| diagnostic.error.to_string());
            let (message, extensions) = translate(name, &compat);
            let mut error = Map::new();
            error.insert("message".into(), Value::String(message));
            if let Some(range) = diagnostic.line_column_range() {
                error.insert(
                    "locations".into(),
                    json!([{"line": range.start.line, "column": range.start.column}]),
                );
            }
            error.insert("extensions".into(), Value::Object(extensions));
            Value::Object(error)
        })
        .collect()
}

/// The strings between double quotes in a graphql-js style message.
fn quoted(message: &str) -> Vec<&str> {
    message.split('"').skip(1).step_by(2).collect()
}

fn ext(code: &str, extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("code".into(), Value::String(code.to_owned()));
    for (key, value) in extra {
        map.insert((*key).to_owned(), Value::String((*value).to_owned()));
    }
    map
}

fn translate(name: Option<&str>, compat: &str) -> (String, Map<String, Value>) {
    let q = quoted(compat);
    let at = |i: usize| q.get(i).copied().unwrap_or_default();
    match name {
        Some("UndefinedField") => (
            format!("Field '{}' doesn't exist on type '{}'", at(0), at(1)),
            ext(
                "undefinedField",
                &[("typeName", at(1)), ("fieldName", at(0))],
            ),
        ),
        Some("RequiredArgument") if compat.starts_with("Directive") => {
            let directive = at(0).trim_start_matches('@');
            (
                format!(
                    "Directive '{directive}' is missing required arguments: {}",
                    at(1)
                ),
                ext(
                    "missingRequiredArguments",
                    &[
                        ("className", "Directive"),
                        ("name", directive),
                        ("arguments", at(1)),
                    ],
                ),
            )
        }
        Some("RequiredArgument") => (
            format!("Field '{}' is missing required arguments: {}", at(0), at(1)),
            ext(
                "missingRequiredArguments",
                &[
                    ("className", "Field"),
                    ("name", at(0)),
                    ("arguments", at(1)),
                ],
            ),
        ),
        Some("UndefinedArgument") => {
            let field = at(1).rsplit('.').next().unwrap_or_default();
            (
                format!("Field '{field}' doesn't accept argument '{}'", at(0)),
                ext(
                    "argumentNotAccepted",
                    &[
                        ("name", field),
                        ("typeName", "Field"),
                        ("argumentName", at(0)),
                    ],
                ),
            )
        }
        Some("UndefinedVariable") => (
            format!("Variable {} is used but not declared", at(0)),
            ext(
                "variableNotDefined",
                &[("variableName", at(0).trim_start_matches('$'))],
            ),
        ),
        Some("UnusedVariable") => (
            format!("Variable {} is declared but not used", at(0)),
            ext(
                "variableNotUsed",
                &[("variableName", at(0).trim_start_matches('$'))],
            ),
        ),
        Some("UndefinedFragment") => (
            format!("Fragment {} was used, but not defined", at(0)),
            ext("useAndDefineFragment", &[("fragmentName", at(0))]),
        ),
        Some("UnusedFragment") => (
            format!("Fragment {} was defined, but not used", at(0)),
            ext("useAndDefineFragment", &[("fragmentName", at(0))]),
        ),
        Some("UndefinedDefinition") => (
            format!("No such type {}, so it can't be used", at(0)),
            ext("undefinedType", &[("typeName", at(0))]),
        ),
        Some("DisallowedVariableUsage") => {
            let (var_type, arg_type) = (at(1), at(2));
            let kind = if var_type.trim_end_matches('!') == arg_type.trim_end_matches('!') {
                "Nullability mismatch"
            } else {
                "Type mismatch"
            };
            (
                format!("{kind} on variable {} ({var_type} / {arg_type})", at(0)),
                ext(
                    "variableMismatch",
                    &[("variableName", at(0).trim_start_matches('$'))],
                ),
            )
        }
        Some("MissingSubselection") => (
            format!(
                "Field must have selections (field '{}' returns {} but has no selections. Did you mean '{} {{ ... }}'?)",
                at(0),
                at(1),
                at(0)
            ),
            ext("selectionMismatch", &[("nodeName", at(0))]),
        ),
        Some("SubselectionOnScalarType" | "SubselectionOnEnumType") => (
            format!("Selections can't be made on scalars ({compat})"),
            ext("selectionMismatch", &[]),
        ),
        Some(
            "UndefinedEnumValue"
            | "UnsupportedValueType"
            | "IntCoercionError"
            | "FloatCoercionError"
            | "UndefinedInputValue"
            | "RequiredField",
        ) => (
            format!("Argument has an invalid value: {compat}"),
            ext("argumentLiteralsIncompatible", &[]),
        ),
        Some(other) => (compat.to_owned(), ext(&lower_camel(other), &[])),
        None => (format!("Parse error: {compat}"), ext("parseError", &[])),
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_field_reads_like_shopify() {
        let (message, extensions) = translate(
            Some("UndefinedField"),
            r#"Cannot query field "nope" on type "Shop"."#,
        );
        assert_eq!(message, "Field 'nope' doesn't exist on type 'Shop'");
        assert_eq!(extensions["code"], "undefinedField");
    }
}
