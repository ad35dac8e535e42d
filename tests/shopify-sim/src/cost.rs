//! Query cost, as Shopify's static analysis describes it.
//!
//! Requested cost (before running):
//! - scalar and enum fields cost 0, object fields 1 plus their selection;
//! - a list of objects costs like one object, except `nodes(ids:)` which
//!   costs one object per id;
//! - a connection costs 2 plus `first` (or `last`) times the cost of one node,
//!   plus its other fields (`pageInfo` is an object: 1);
//! - fragments on different concrete types cost the most expensive of them;
//! - a mutation field costs 10 plus the selection below its payload's fields:
//!   the payload's direct fields (`product`, `userErrors`, …) are included in
//!   the 10, what they select is not.
//!
//! Actual cost (after running) walks the answer with the same rules, counting
//! the nodes a connection really returned and nothing below a null.

use apollo_compiler::executable::{Field, Operation, Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node, Schema};
use serde_json::{Map, Value};

use crate::values::{field_arguments, is_included};

/// What one mutation root field costs before its payload's selection.
pub const MUTATION_COST: u64 = 10;

/// The single-query limit above which Shopify refuses to run a query.
pub const MAX_QUERY_COST: u64 = 1000;

/// Computes costs for one operation of one document.
pub struct CostModel<'a> {
    pub schema: &'a Valid<Schema>,
    pub document: &'a ExecutableDocument,
    pub variables: &'a Map<String, Value>,
}

enum Kind {
    Leaf,
    Object,
    Connection,
}

impl CostModel<'_> {
    /// The cost charged before execution.
    pub fn requested(&self, operation: &Operation) -> u64 {
        let roots = self.fields(&operation.selection_set);
        if operation.is_mutation() {
            roots
                .iter()
                .map(|root| MUTATION_COST + self.payload_requested(root))
                .sum()
        } else {
            roots.iter().map(|field| self.field_requested(field)).sum()
        }
    }

    /// The cost of what the answer's `data` really holds.
    pub fn actual(&self, operation: &Operation, data: Option<&Value>) -> u64 {
        let roots = self.fields(&operation.selection_set);
        let value_of = |field: &Node<Field>| {
            data.and_then(|data| data.get(field.response_key().as_str()))
                .unwrap_or(&Value::Null)
        };
        if operation.is_mutation() {
            roots
                .iter()
                .map(|root| {
                    let payload = value_of(root);
                    let below: u64 = self
                        .fields(&root.selection_set)
                        .iter()
                        .map(|child| {
                            let value = payload.get(child.response_key().as_str());
                            let value = value.unwrap_or(&Value::Null);
                            self.field_actual(child, value)
                                .saturating_sub(self.own_cost(child, value))
                        })
                        .sum();
                    MUTATION_COST + below
                })
                .sum()
        } else {
            roots
                .iter()
                .map(|field| self.field_actual(field, value_of(field)))
                .sum()
        }
    }

    fn kind(&self, field: &Field) -> Kind {
        let name = field.ty().inner_named_type();
        match self.schema.types.get(name) {
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                if name.as_str().ends_with("Connection") {
                    Kind::Connection
                } else {
                    Kind::Object
                }
            }
            _ => Kind::Leaf,
        }
    }

    fn page_size(&self, field: &Field) -> u64 {
        let args = field_arguments(field, self.variables);
        args.get("first")
            .or_else(|| args.get("last"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    fn ids_count(&self, field: &Field) -> Option<u64> {
        let args = field_arguments(field, self.variables);
        args.get("ids")
            .and_then(Value::as_array)
            .map(|ids| ids.len() as u64)
    }

    fn payload_requested(&self, root: &Field) -> u64 {
        self.fields(&root.selection_set)
            .iter()
            .map(|child| {
                let own = match self.kind(child) {
                    Kind::Object if !self.is_union(child) => 1,
                    _ => 0,
                };
                self.field_requested(child) - own
            })
            .sum()
    }

    fn field_requested(&self, field: &Field) -> u64 {
        match self.kind(field) {
            Kind::Leaf => 0,
            Kind::Object if self.is_union(field) => self.set_requested(&field.selection_set),
            Kind::Object => {
                let one = 1 + self.set_requested(&field.selection_set);
                one * self.ids_count(field).unwrap_or(1)
            }
            Kind::Connection => {
                let page = self.page_size(field);
                let mut cost = 2;
                for child in self.fields(&field.selection_set) {
                    cost += match child.name.as_str() {
                        "nodes" => page * (1 + self.set_requested(&child.selection_set)),
                        "edges" => page * self.set_requested(&child.selection_set),
                        _ => self.field_requested(&child),
                    };
                }
                cost
            }
        }
    }

    /// Fields common to every type, plus the dearest group of fragments on
    /// one concrete type.
    fn set_requested(&self, set: &SelectionSet) -> u64 {
        let mut common = 0;
        let mut by_type: Vec<(String, u64)> = Vec::new();
        self.walk_requested(set, &set.ty, &mut common, &mut by_type);
        common + by_type.iter().map(|(_, cost)| *cost).max().unwrap_or(0)
    }

    fn walk_requested(
        &self,
        set: &SelectionSet,
        parent: &str,
        common: &mut u64,
        by_type: &mut Vec<(String, u64)>,
    ) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    if is_included(&field.directives, self.variables) {
                        let cost = self.field_requested(field);
                        let concrete = set.ty.as_str() != parent && self.is_object(&set.ty);
                        if concrete {
                            add_to(by_type, set.ty.as_str(), cost);
                        } else {
                            *common += cost;
                        }
                    }
                }
                Selection::InlineFragment(inline) => {
                    if is_included(&inline.directives, self.variables) {
                        self.walk_requested(&inline.selection_set, parent, common, by_type);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if is_included(&spread.directives, self.variables)
                        && let Some(fragment) = spread.fragment_def(self.document)
                    {
                        self.walk_requested(&fragment.selection_set, parent, common, by_type);
                    }
                }
            }
        }
    }

    /// A union-typed field costs only what its fragments select (a real
    /// store charges 0 for `endpoint { ... on WebhookHttpEndpoint { callbackUrl } }`).
    fn is_union(&self, field: &Field) -> bool {
        matches!(
            self.schema.types.get(field.ty().inner_named_type()),
            Some(ExtendedType::Union(_))
        )
    }

    fn is_object(&self, name: &str) -> bool {
        matches!(self.schema.types.get(name), Some(ExtendedType::Object(_)))
    }

    fn own_cost(&self, field: &Field, value: &Value) -> u64 {
        match self.kind(field) {
            Kind::Object if self.is_union(field) => 0,
            Kind::Object if !value.is_null() => 1,
            _ => 0,
        }
    }

    fn field_actual(&self, field: &Field, value: &Value) -> u64 {
        if value.is_null() {
            return 0;
        }
        match self.kind(field) {
            Kind::Leaf => 0,
            Kind::Object => match value {
                Value::Array(items) if self.ids_count(field).is_some() => items
                    .iter()
                    .map(|item| self.object_actual(&field.selection_set, item))
                    .sum(),
                Value::Array(items) if items.is_empty() => self.field_requested(field),
                Value::Array(items) => items
                    .iter()
                    .map(|item| self.object_actual(&field.selection_set, item))
                    .max()
                    .unwrap_or(0),
                single => self.object_actual(&field.selection_set, single),
            },
            Kind::Connection => {
                let mut cost = 2;
                for child in self.fields(&field.selection_set) {
                    let child_value = value
                        .get(child.response_key().as_str())
                        .unwrap_or(&Value::Null);
                    cost += match (child.name.as_str(), child_value) {
                        ("nodes", Value::Array(nodes)) => nodes
                            .iter()
                            .map(|node| self.object_actual(&child.selection_set, node))
                            .sum(),
                        ("edges", Value::Array(edges)) => edges
                            .iter()
                            .map(|edge| self.selection_actual(&child.selection_set, edge))
                            .sum(),
                        _ => self.field_actual(&child, child_value),
                    };
                }
                cost
            }
        }
    }

    fn object_actual(&self, set: &SelectionSet, value: &Value) -> u64 {
        if value.is_null() {
            return 0;
        }
        let own = match self.schema.types.get(&set.ty) {
            Some(ExtendedType::Union(_)) => 0,
            _ => 1,
        };
        own + self.selection_actual(set, value)
    }

    fn selection_actual(&self, set: &SelectionSet, value: &Value) -> u64 {
        self.fields(set)
            .iter()
            .map(|field| {
                let child = value
                    .get(field.response_key().as_str())
                    .unwrap_or(&Value::Null);
                self.field_actual(field, child)
            })
            .sum()
    }

    /// Every included field of a selection set, fragments flattened, one per
    /// response key.
    fn fields(&self, set: &SelectionSet) -> Vec<Node<Field>> {
        let mut out: Vec<Node<Field>> = Vec::new();
        self.flatten(set, &mut out);
        out
    }

    fn flatten(&self, set: &SelectionSet, out: &mut Vec<Node<Field>>) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    let key = field.response_key();
                    if is_included(&field.directives, self.variables)
                        && !out.iter().any(|seen| seen.response_key() == key)
                    {
                        out.push(field.clone());
                    }
                }
                Selection::InlineFragment(inline) => {
                    if is_included(&inline.directives, self.variables) {
                        self.flatten(&inline.selection_set, out);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if is_included(&spread.directives, self.variables)
                        && let Some(fragment) = spread.fragment_def(self.document)
                    {
                        self.flatten(&fragment.selection_set, out);
                    }
                }
            }
        }
    }
}

fn add_to(groups: &mut Vec<(String, u64)>, name: &str, cost: u64) {
    match groups.iter_mut().find(|(group, _)| group == name) {
        Some((_, total)) => *total += cost,
        None => groups.push((name.to_owned(), cost)),
    }
}
