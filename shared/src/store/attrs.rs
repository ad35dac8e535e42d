//! Reading and writing DynamoDB attribute maps without losing what a value
//! was: numbers stay exact, missing and malformed attributes are told apart.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::StoreError;

pub type Item = HashMap<String, AttributeValue>;

/// Builds an item attribute by attribute.
#[derive(Debug, Default, Clone)]
pub struct ItemBuilder(Item);

impl ItemBuilder {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S(pk.into()));
        item.insert("sk".into(), AttributeValue::S(sk.into()));
        Self(item)
    }

    pub fn s(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), AttributeValue::S(value.into()));
        self
    }

    pub fn opt_s(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.s(name, v),
            None => self,
        }
    }

    pub fn n(mut self, name: &str, value: impl ToString) -> Self {
        self.0
            .insert(name.into(), AttributeValue::N(value.to_string()));
        self
    }

    pub fn opt_n(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.n(name, v),
            None => self,
        }
    }

    pub fn b(mut self, name: &str, value: bool) -> Self {
        self.0.insert(name.into(), AttributeValue::Bool(value));
        self
    }

    /// A list of strings; stored as a list (not a set) to keep order and allow
    /// an empty value.
    pub fn list(mut self, name: &str, values: &[String]) -> Self {
        let list = values.iter().cloned().map(AttributeValue::S).collect();
        self.0.insert(name.into(), AttributeValue::L(list));
        self
    }

    pub fn time(self, name: &str, at: OffsetDateTime) -> Self {
        let text = at.format(&Rfc3339).unwrap_or_default();
        self.s(name, text)
    }

    pub fn opt_time(self, name: &str, at: Option<OffsetDateTime>) -> Self {
        match at {
            Some(at) => self.time(name, at),
            None => self,
        }
    }

    pub fn build(self) -> Item {
        self.0
    }
}

/// Reads attributes of one item, naming the item in every error.
pub struct ItemReader<'a> {
    item: &'a Item,
}

impl<'a> ItemReader<'a> {
    pub fn new(item: &'a Item) -> Self {
        Self { item }
    }

    fn key(&self) -> String {
        let part = |name: &str| match self.item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => "?".into(),
        };
        format!("{}/{}", part("pk"), part("sk"))
    }

    fn corrupt(&self, name: &str, problem: &str) -> StoreError {
        StoreError::Corrupt {
            key: self.key(),
            message: format!("attribute {name} {problem}"),
        }
    }

    pub fn opt_s(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.corrupt(name, "is not a string")),
        }
    }

    pub fn s(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    pub fn parse<T: FromStr>(&self, name: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.s(name)?;
        text.parse()
            .map_err(|e: T::Err| self.corrupt(name, &format!("does not parse: {e}")))
    }

    pub fn opt_parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt_s(name)? {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e: T::Err| self.corrupt(name, &format!("does not parse: {e}"))),
        }
    }

    pub fn opt_n<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(name, "is not a number of the expected kind")),
            Some(_) => Err(self.corrupt(name, "is not a number")),
        }
    }

    pub fn n<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_n(name)?
            .ok_or_else(|| self.corrupt(name, "is missing"))
    }

    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(default),
            Some(AttributeValue::Bool(b)) => Ok(*b),
            Some(_) => Err(self.corrupt(name, "is not a boolean")),
        }
    }

    pub fn list(&self, name: &str) -> Result<Vec<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| match v {
                    AttributeValue::S(s) => Ok(s.clone()),
                    _ => Err(self.corrupt(name, "holds a value that is not a string")),
                })
                .collect(),
            Some(AttributeValue::Ss(values)) => Ok(values.clone()),
            Some(_) => Err(self.corrupt(name, "is not a list")),
        }
    }

    pub fn opt_time(&self, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        match self.opt_s(name)? {
            None => Ok(None),
            Some(text) => OffsetDateTime::parse(text, &Rfc3339)
                .map(Some)
                .map_err(|_| self.corrupt(name, "is not an RFC 3339 time")),
        }
    }
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
