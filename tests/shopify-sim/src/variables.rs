//! Variable coercion against the declared types.
//!
//! A real shop refuses a request whose variables do not fit their types
//! (unknown input fields, missing required fields, unknown enum values,
//! numbers out of range) before anything runs, with an `INVALID_VARIABLE`
//! error listing the problems. The simulator does the same so a client
//! cannot pass here and fail there.

use apollo_compiler::Schema;
use apollo_compiler::ast::Type;
use apollo_compiler::executable::Operation;
use apollo_compiler::parser::SourceMap;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use serde_json::{Map, Value, json};

use crate::values::{literal_to_json, locations};

struct Problem {
    path: Vec<Value>,
    explanation: String,
}

/// Checks the variables against the operation's definitions and fills in
/// defaults. Gives one Shopify-shaped error per offending variable.
pub fn coerce(
    schema: &Valid<Schema>,
    operation: &Operation,
    sources: &SourceMap,
    provided: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<Value>> {
    let mut coerced = Map::new();
    let mut errors = Vec::new();
    for definition in &operation.variables {
        let name = definition.name.as_str();
        let value = match provided.get(name) {
            Some(value) => value.clone(),
            None => match &definition.default_value {
                Some(default) => literal_to_json(default, &Map::new()).unwrap_or(Value::Null),
                None if definition.ty.is_non_null() => Value::Null,
                None => continue,
            },
        };
        let mut problems = Vec::new();
        check(
            schema,
            &value,
            &definition.ty,
            &mut Vec::new(),
            &mut problems,
        );
        if problems.is_empty() {
            coerced.insert(name.to_owned(), value);
            continue;
        }
        errors.push(invalid_variable(
            name,
            &definition.ty,
            value,
            &problems,
            locations(definition, sources),
        ));
    }
    if errors.is_empty() {
        Ok(coerced)
    } else {
        Err(errors)
    }
}

fn invalid_variable(
    name: &str,
    ty: &Type,
    value: Value,
    problems: &[Problem],
    locations: Value,
) -> Value {
    let mut message = format!("Variable ${name} of type {ty} was provided invalid value");
    let detailed: Vec<String> = problems
        .iter()
        .filter(|problem| !problem.path.is_empty())
        .map(|problem| format!("{} ({})", join_path(&problem.path), problem.explanation))
        .collect();
    if !detailed.is_empty() {
        message.push_str(" for ");
        message.push_str(&detailed.join(", "));
    }
    let problems: Vec<Value> = problems
        .iter()
        .map(|problem| json!({"path": problem.path, "explanation": problem.explanation}))
        .collect();
    json!({
        "message": message,
        "locations": locations,
        "extensions": {"code": "INVALID_VARIABLE", "value": value, "problems": problems},
    })
}

fn join_path(path: &[Value]) -> String {
    path.iter()
        .map(|segment| match segment {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn check(
    schema: &Valid<Schema>,
    value: &Value,
    ty: &Type,
    path: &mut Vec<Value>,
    problems: &mut Vec<Problem>,
) {
    let mut problem = |explanation: String| {
        problems.push(Problem {
            path: path.clone(),
            explanation,
        })
    };
    if value.is_null() {
        if ty.is_non_null() {
            problem("Expected value to not be null".to_owned());
        }
        return;
    }
    if ty.is_list() {
        let inner = ty.item_type();
        match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(Value::from(index));
                    check(schema, item, inner, path, problems);
                    path.pop();
                }
            }
            single => check(schema, single, inner, path, problems),
        }
        return;
    }
    let type_name = ty.inner_named_type();
    match schema.types.get(type_name) {
        Some(ExtendedType::Scalar(_)) => {
            if let Some(explanation) = scalar_problem(type_name.as_str(), value) {
                problem(explanation);
            }
        }
        Some(ExtendedType::Enum(definition)) => {
            let known = value
                .as_str()
                .is_some_and(|text| definition.values.contains_key(text));
            if !known {
                let names: Vec<&str> = definition.values.keys().map(|key| key.as_str()).collect();
                problem(format!(
                    "Expected {} to be one of: {}",
                    value,
                    names.join(", ")
                ));
            }
        }
        Some(ExtendedType::InputObject(definition)) => {
            let Value::Object(fields) = value else {
                problem(format!("Expected {value} to be a key-value object."));
                return;
            };
            for key in fields.keys() {
                if !definition.fields.contains_key(key.as_str()) {
                    path.push(Value::String(key.clone()));
                    problems.push(Problem {
                        path: path.clone(),
                        explanation: format!("Field is not defined on {type_name}"),
                    });
                    path.pop();
                }
            }
            for (field_name, field) in &definition.fields {
                path.push(Value::String(field_name.to_string()));
                match fields.get(field_name.as_str()) {
                    Some(item) => check(schema, item, &field.ty, path, problems),
                    None if field.ty.is_non_null() && field.default_value.is_none() => {
                        problems.push(Problem {
                            path: path.clone(),
                            explanation: "Expected value to not be null".to_owned(),
                        });
                    }
                    None => {}
                }
                path.pop();
            }
        }
        _ => problem(format!("{type_name} is not an input type")),
    }
}

fn scalar_problem(type_name: &str, value: &Value) -> Option<String> {
    let fits = match type_name {
        "Int" => value
            .as_i64()
            .is_some_and(|number| i32::try_from(number).is_ok()),
        "Float" => value.is_number(),
        "String" => value.is_string(),
        "Boolean" => value.is_boolean(),
        "ID" => value.is_string() || value.is_i64() || value.is_u64(),
        "JSON" => true,
        // Shopify's custom scalars (Money, Decimal, URL, DateTime, …) travel
        // as strings; the numeric ones also take numbers.
        _ => value.is_string() || value.is_number(),
    };
    if fits {
        None
    } else {
        Some(format!("Could not coerce value {value} to {type_name}"))
    }
}
