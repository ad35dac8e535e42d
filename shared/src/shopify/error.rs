use std::time::Duration;

use serde::Deserialize;

/// One `userErrors` entry of a Shopify mutation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct UserError {
    #[serde(default)]
    pub field: Option<Vec<String>>,
    pub message: String,
    #[serde(default)]
    pub code: Option<String>,
}

impl UserError {
    pub fn field_path(&self) -> String {
        self.field.as_deref().unwrap_or_default().join(".")
    }
}

/// What went wrong talking to Shopify, sorted by what the caller can do
/// about it.
#[derive(Debug, thiserror::Error)]
pub enum ShopifyError {
    /// The shop's rate limit held us back longer than we were willing to wait.
    #[error("Shopify kept throttling {operation} after {attempts} attempts")]
    Throttled {
        operation: &'static str,
        attempts: u32,
    },

    /// A fault that a later retry can fix: 5xx, a timeout, a dropped
    /// connection. Raised only once the retry budget is spent.
    #[error("Shopify {operation} failed after {attempts} attempts: {message}")]
    Transient {
        operation: &'static str,
        attempts: u32,
        message: String,
    },

    /// The access token was refused: the app was uninstalled or its scopes changed.
    #[error(
        "Shopify refused the access token for {shop} (HTTP {status}); reinstall the app or check its scopes"
    )]
    Unauthorized { shop: String, status: u16 },

    /// Shopify answered a status that no retry will change.
    #[error("Shopify answered HTTP {status} to {operation}: {message}")]
    Http {
        operation: &'static str,
        status: u16,
        message: String,
    },

    /// Top-level GraphQL errors: the document or its variables were refused.
    #[error("Shopify refused {operation}: {}", .messages.join("; "))]
    GraphQl {
        operation: &'static str,
        messages: Vec<String>,
        codes: Vec<String>,
    },

    /// The mutation ran and reported problems with its input.
    #[error("Shopify {operation} reported: {}", describe_user_errors(.errors))]
    UserErrors {
        operation: &'static str,
        errors: Vec<UserError>,
    },

    /// A call was asked to carry more lines than Shopify takes in one input.
    #[error("{operation} takes at most {limit} lines a call, not {lines}")]
    InputTooLarge {
        operation: &'static str,
        lines: usize,
        limit: usize,
    },

    /// The answer did not have the shape the document asks for.
    #[error("Shopify's answer to {operation} could not be read: {message}")]
    Decode {
        operation: &'static str,
        message: String,
    },
}

impl ShopifyError {
    /// Whether running the same work again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    /// Whether the call certainly changed nothing on the shop: refused as
    /// sent (user errors, a document or input refused, a client error, the
    /// token). Anything else (retries spent, an answer that could not be
    /// read) may have been applied.
    pub fn applied_nothing(&self) -> bool {
        match self {
            Self::UserErrors { .. }
            | Self::GraphQl { .. }
            | Self::InputTooLarge { .. }
            | Self::Unauthorized { .. } => true,
            Self::Http { status, .. } => (400..500).contains(status),
            Self::Throttled { .. } | Self::Transient { .. } | Self::Decode { .. } => false,
        }
    }

    /// The operation that failed, where the error names one.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Self::Throttled { operation, .. }
            | Self::Transient { operation, .. }
            | Self::Http { operation, .. }
            | Self::GraphQl { operation, .. }
            | Self::UserErrors { operation, .. }
            | Self::InputTooLarge { operation, .. }
            | Self::Decode { operation, .. } => Some(operation),
            Self::Unauthorized { .. } => None,
        }
    }

    /// The codes of the user errors, if that is what this is.
    pub fn user_error_codes(&self) -> Vec<&str> {
        match self {
            Self::UserErrors { errors, .. } => {
                errors.iter().filter_map(|e| e.code.as_deref()).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn has_user_error_code(&self, code: &str) -> bool {
        self.user_error_codes().contains(&code)
    }
}

fn describe_user_errors(errors: &[UserError]) -> String {
    errors
        .iter()
        .map(|e| {
            let code = e.code.as_deref().unwrap_or("no code");
            let field = e.field_path();
            if field.is_empty() {
                format!("{} ({code})", e.message)
            } else {
                format!("{} at {field} ({code})", e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How long to wait before the next attempt, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wait {
    Throttled(Duration),
    RetryAfter(Duration),
    Backoff,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refused_call_is_known_to_have_changed_nothing() {
        let refused = [
            ShopifyError::UserErrors {
                operation: "InventorySetQuantities",
                errors: vec![],
            },
            ShopifyError::Unauthorized {
                shop: "x.myshopify.com".into(),
                status: 401,
            },
            ShopifyError::Http {
                operation: "ProductSet",
                status: 422,
                message: String::new(),
            },
        ];
        assert!(refused.iter().all(ShopifyError::applied_nothing));

        let unsure = [
            ShopifyError::Transient {
                operation: "ProductSet",
                attempts: 5,
                message: "timed out".into(),
            },
            ShopifyError::Throttled {
                operation: "ProductSet",
                attempts: 5,
            },
            // A 200 whose body could not be read: the mutation ran.
            ShopifyError::Decode {
                operation: "ProductSet",
                message: "no product".into(),
            },
        ];
        assert!(!unsure.iter().any(ShopifyError::applied_nothing));
    }
}
