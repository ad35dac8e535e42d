//! Input values: literals in the document and variables, as JSON.

use apollo_compiler::ast::Value as AstValue;
use apollo_compiler::executable::{Field, Operation};
use apollo_compiler::parser::SourceMap;
use apollo_compiler::{Node, ast};
use serde_json::{Map, Number, Value, json};

/// Converts a literal (possibly holding variables) to JSON.
///
/// `None` means "not provided": a variable that was not given. Inside an
/// input object such a field is left out, as GraphQL requires.
pub fn literal_to_json(value: &AstValue, variables: &Map<String, Value>) -> Option<Value> {
    Some(match value {
        AstValue::Null => Value::Null,
        AstValue::Enum(name) => Value::String(name.to_string()),
        AstValue::Variable(name) => return variables.get(name.as_str()).cloned(),
        AstValue::String(text) => Value::String(text.clone()),
        AstValue::Float(float) => float
            .try_to_f64()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        AstValue::Int(int) => match int.as_str().parse::<i64>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::String(int.as_str().to_owned()),
        },
        AstValue::Boolean(flag) => Value::Bool(*flag),
        AstValue::List(items) => Value::Array(
            items
                .iter()
                .map(|item| literal_to_json(item, variables).unwrap_or(Value::Null))
                .collect(),
        ),
        AstValue::Object(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|(name, item)| {
                    literal_to_json(item, variables).map(|json| (name.to_string(), json))
                })
                .collect(),
        ),
    })
}

/// The arguments of a field, with variables substituted and schema defaults
/// filled in. Arguments neither given nor defaulted are absent.
pub fn field_arguments(field: &Field, variables: &Map<String, Value>) -> Map<String, Value> {
    let mut args = Map::new();
    for definition in &field.definition.arguments {
        if let Some(default) = &definition.default_value
            && let Some(json) = literal_to_json(default, variables)
        {
            args.insert(definition.name.to_string(), json);
        }
    }
    for argument in &field.arguments {
        if let Some(json) = literal_to_json(&argument.value, variables) {
            args.insert(argument.name.to_string(), json);
        }
    }
    args
}

/// Whether `@skip` / `@include` leave this selection in.
pub fn is_included(directives: &ast::DirectiveList, variables: &Map<String, Value>) -> bool {
    let flag = |name: &str| {
        directives
            .get(name)
            .and_then(|directive| directive.specified_argument_by_name("if"))
            .and_then(|value| literal_to_json(value, variables))
            .and_then(|json| json.as_bool())
    };
    flag("skip") != Some(true) && flag("include") != Some(false)
}

/// `[{"line", "column"}]` for a node, as GraphQL errors carry it.
pub fn locations<T>(node: &Node<T>, sources: &SourceMap) -> Value {
    match node.location().and_then(|span| span.line_column(sources)) {
        Some(at) => json!([{"line": at.line, "column": at.column}]),
        None => json!([]),
    }
}

/// The root field names of an operation (after fragments), in order.
pub fn root_field_names(
    operation: &Operation,
    document: &apollo_compiler::ExecutableDocument,
) -> Vec<String> {
    operation
        .root_fields(document)
        .map(|field| field.name.to_string())
        .collect()
}
