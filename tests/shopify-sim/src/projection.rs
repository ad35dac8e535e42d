//! Projects resolver output through the request's selection sets.
//!
//! Resolvers hand back plain JSON for the objects they return (see
//! `state::render`). This module walks the selection generically: aliases,
//! `__typename`, fragments and inline fragments (type conditions checked
//! against `__typename`), nested objects and lists, references to other
//! nodes, and connections built from plain arrays with `first`/`after`/
//! `last`/`before`/`reverse`, `nodes`, `edges { node cursor }` and
//! `pageInfo`.
//!
//! The one rule for what the simulator does not model: a field absent from
//! the JSON resolves to `null`, or to `[]` when its type is a non-null list.

use apollo_compiler::ast::Type;
use apollo_compiler::executable::{Field, Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node, Schema};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::ids::parse_gid;
use crate::values::{field_arguments, is_included, locations};

/// Where field values that need arguments or other nodes come from.
pub trait FieldSource {
    /// The JSON of the node a `{"__ref": gid}` points at, or `null`.
    fn resolve_ref(&self, gid: &str) -> Value;

    /// The raw value of a field that depends on its arguments (or on other
    /// parts of the shop); `None` to read the field from the parent JSON.
    fn field_with_args(
        &self,
        type_name: &str,
        parent: &Map<String, Value>,
        field: &str,
        args: &Map<String, Value>,
    ) -> Option<Value>;
}

/// One projection of one operation; collects field errors on the way.
pub struct Projection<'a> {
    pub schema: &'a Valid<Schema>,
    pub document: &'a ExecutableDocument,
    pub variables: &'a Map<String, Value>,
    pub source: &'a dyn FieldSource,
    pub errors: Vec<Value>,
}

/// Fields grouped by response key, in selection order.
pub type FieldGroups = Vec<(String, Vec<Node<Field>>)>;

impl Projection<'_> {
    /// The fields a selection set selects on an object of `runtime_type`.
    pub fn collect_fields(&self, runtime_type: &str, sets: &[&SelectionSet]) -> FieldGroups {
        let mut groups: FieldGroups = Vec::new();
        for set in sets {
            self.collect_into(runtime_type, set, &mut groups);
        }
        groups
    }

    fn collect_into(&self, runtime_type: &str, set: &SelectionSet, groups: &mut FieldGroups) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    if !is_included(&field.directives, self.variables) {
                        continue;
                    }
                    let key = field.response_key().to_string();
                    match groups.iter_mut().find(|(seen, _)| *seen == key) {
                        Some((_, fields)) => fields.push(field.clone()),
                        None => groups.push((key, vec![field.clone()])),
                    }
                }
                Selection::InlineFragment(inline) => {
                    let applies = inline
                        .type_condition
                        .as_ref()
                        .is_none_or(|condition| self.applies(condition, runtime_type));
                    if applies && is_included(&inline.directives, self.variables) {
                        self.collect_into(runtime_type, &inline.selection_set, groups);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !is_included(&spread.directives, self.variables) {
                        continue;
                    }
                    if let Some(fragment) = spread.fragment_def(self.document)
                        && self.applies(fragment.type_condition(), runtime_type)
                    {
                        self.collect_into(runtime_type, &fragment.selection_set, groups);
                    }
                }
            }
        }
    }

    fn applies(&self, condition: &str, runtime_type: &str) -> bool {
        condition == runtime_type || self.schema.is_subtype(condition, runtime_type)
    }

    /// Completes a field's raw value to its type, projecting objects.
    pub fn complete(
        &mut self,
        fields: &[Node<Field>],
        ty: &Type,
        raw: Value,
        args: &Map<String, Value>,
        path: &mut Vec<Value>,
    ) -> Value {
        let raw = self.dereference(raw);
        if raw.is_null() {
            // What the simulator does not model: null, or [] for `[T]!`.
            return if ty.is_list() && ty.is_non_null() {
                Value::Array(Vec::new())
            } else {
                Value::Null
            };
        }
        if ty.is_list() {
            let mut items = match raw {
                Value::Array(items) => items,
                single => vec![single],
            };
            if let Some(first) = args.get("first").and_then(Value::as_u64) {
                items.truncate(usize::try_from(first).unwrap_or(usize::MAX));
            }
            let inner = ty.item_type();
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                path.push(Value::from(index));
                out.push(self.complete(fields, inner, item, &Map::new(), path));
                path.pop();
            }
            return Value::Array(out);
        }
        let type_name = ty.inner_named_type().as_str();
        match self.schema.types.get(type_name) {
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                let raw = match raw {
                    Value::Array(items) if type_name.ends_with("Connection") => {
                        match self.connection(fields, items, args, path) {
                            Some(connection) => connection,
                            None => return Value::Null,
                        }
                    }
                    other => other,
                };
                match raw {
                    Value::Object(map) => {
                        let sets: Vec<&SelectionSet> =
                            fields.iter().map(|field| &field.selection_set).collect();
                        self.object(&map, type_name, &sets, path)
                    }
                    _ => Value::Null,
                }
            }
            _ => raw,
        }
    }

    /// Projects one object through the merged selection sets.
    pub fn object(
        &mut self,
        map: &Map<String, Value>,
        static_type: &str,
        sets: &[&SelectionSet],
        path: &mut Vec<Value>,
    ) -> Value {
        let runtime_type = map
            .get("__typename")
            .and_then(Value::as_str)
            .unwrap_or(static_type)
            .to_owned();
        let mut out = Map::new();
        for (key, fields) in self.collect_fields(&runtime_type, sets) {
            let field = &fields[0];
            if field.name == "__typename" {
                out.insert(key, Value::String(runtime_type.clone()));
                continue;
            }
            let args = field_arguments(field, self.variables);
            let raw = self
                .source
                .field_with_args(&runtime_type, map, field.name.as_str(), &args)
                .unwrap_or_else(|| map.get(field.name.as_str()).cloned().unwrap_or(Value::Null));
            path.push(Value::String(key.clone()));
            let value = self.complete(&fields, field.ty(), raw, &args, path);
            path.pop();
            out.insert(key, value);
        }
        Value::Object(out)
    }

    fn dereference(&self, raw: Value) -> Value {
        match raw.get("__ref").and_then(Value::as_str) {
            Some(gid) => self.source.resolve_ref(gid),
            None => raw,
        }
    }

    /// A connection object from the full list, paged by the arguments.
    fn connection(
        &mut self,
        fields: &[Node<Field>],
        mut items: Vec<Value>,
        args: &Map<String, Value>,
        path: &[Value],
    ) -> Option<Value> {
        let first = args.get("first").and_then(Value::as_u64);
        let last = args.get("last").and_then(Value::as_u64);
        if first.is_none() && last.is_none() {
            self.errors.push(json!({
                "message": "you must provide one of first or last",
                "locations": locations(&fields[0], &self.document.sources),
                "path": path,
            }));
            return None;
        }
        if args.get("reverse").and_then(Value::as_bool) == Some(true) {
            items.reverse();
        }
        let cursors: Vec<String> = items
            .iter()
            .enumerate()
            .map(|(index, item)| self.cursor(item, index))
            .collect();
        let position = |cursor: Option<&Value>| {
            let cursor = cursor.and_then(Value::as_str)?;
            cursors.iter().position(|known| known == cursor)
        };
        let mut start = position(args.get("after")).map_or(0, |index| index + 1);
        let mut end = position(args.get("before")).unwrap_or(items.len());
        if end < start {
            end = start;
        }
        if let Some(first) = first.and_then(|n| usize::try_from(n).ok()) {
            end = end.min(start.saturating_add(first));
        }
        if let Some(last) = last.and_then(|n| usize::try_from(n).ok()) {
            start = start.max(end.saturating_sub(last));
        }
        let page: Vec<Value> = items[start..end].to_vec();
        let edges: Vec<Value> = page
            .iter()
            .zip(&cursors[start..end])
            .map(|(node, cursor)| json!({"node": node, "cursor": cursor}))
            .collect();
        Some(json!({
            "nodes": page,
            "edges": edges,
            "pageInfo": {
                "hasNextPage": end < items.len(),
                "hasPreviousPage": start > 0,
                "startCursor": cursors.get(start).filter(|_| start < end),
                "endCursor": if end > start { cursors.get(end - 1) } else { None },
            },
        }))
    }

    /// Shopify-like opaque cursor: base64 of `{"last_id":N,"last_value":"N"}`.
    fn cursor(&self, item: &Value, index: usize) -> String {
        let id = item
            .get("__ref")
            .or_else(|| item.get("id"))
            .and_then(Value::as_str)
            .and_then(parse_gid)
            .map(|(_, number)| number);
        let body = match id {
            Some(number) => json!({"last_id": number, "last_value": number.to_string()}),
            None => json!({"index": index}),
        };
        BASE64.encode(body.to_string())
    }
}
