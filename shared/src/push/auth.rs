//! Who may push: the account's creator, as named by the JWT claims the API
//! Gateway authorizer has already verified and passes on.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::domain::{Account, UserId};

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token: sign in to push")]
    MissingClaims,
    #[error("the token's claims are malformed: {0}")]
    Malformed(&'static str),
    #[error("the token has expired: sign in again")]
    Expired,
    #[error("only the account's creator may push its catalog to Shopify")]
    Forbidden,
}

impl AuthError {
    /// 401 for who-are-you problems, 403 for you-may-not.
    pub fn status(&self) -> u16 {
        match self {
            Self::Forbidden => 403,
            _ => 401,
        }
    }
}

/// Reads the caller from the authorizer's claims.
///
/// API Gateway has checked the signature and expiry already; the expiry is
/// checked again so a misconfigured authorizer cannot let an old token in.
pub fn caller_from_claims(
    claims: Option<&HashMap<String, String>>,
    now: OffsetDateTime,
) -> Result<Caller, AuthError> {
    let claims = claims
        .filter(|c| !c.is_empty())
        .ok_or(AuthError::MissingClaims)?;
    let sub = claims
        .get("sub")
        .ok_or(AuthError::Malformed("no sub claim"))?;
    let user_id = sub
        .parse::<UserId>()
        .map_err(|_| AuthError::Malformed("the sub claim is not a user id"))?;
    if let Some(exp) = claims.get("exp") {
        let exp: i64 = exp
            .trim()
            .parse::<f64>()
            .map(|e| e as i64)
            .map_err(|_| AuthError::Malformed("the exp claim is not a number"))?;
        if exp <= now.unix_timestamp() {
            return Err(AuthError::Expired);
        }
    }
    Ok(Caller { user_id })
}

/// Only the account's creator may push. An account that does not exist is
/// refused the same way, so the answer tells nothing about other accounts.
pub fn authorize_push(caller: &Caller, account: Option<&Account>) -> Result<(), AuthError> {
    match account {
        Some(account) if account.creator == caller.user_id => Ok(()),
        _ => Err(AuthError::Forbidden),
    }
}

/// Any member (the creator included) may read the account's sync activity.
pub fn authorize_read(caller: &Caller, account: Option<&Account>) -> Result<(), AuthError> {
    match account {
        Some(account)
            if account.creator == caller.user_id || account.members.contains(&caller.user_id) =>
        {
            Ok(())
        }
        _ => Err(AuthError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "acct-1".parse().unwrap(),
            name: "Dyer".into(),
            creator: "user-creator".parse().unwrap(),
            members: vec!["user-member".parse().unwrap()],
            auto_catalog_sync: false,
        }
    }

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn creator_may_push() {
        let caller = caller_from_claims(Some(&claims(&[("sub", "user-creator")])), now()).unwrap();
        assert_eq!(authorize_push(&caller, Some(&account())), Ok(()));
    }

    #[test]
    fn another_member_may_not_push_but_may_read() {
        let caller = caller_from_claims(Some(&claims(&[("sub", "user-member")])), now()).unwrap();
        assert_eq!(
            authorize_push(&caller, Some(&account())),
            Err(AuthError::Forbidden)
        );
        assert_eq!(authorize_read(&caller, Some(&account())), Ok(()));
    }

    #[test]
    fn a_user_of_another_account_is_forbidden() {
        let caller =
            caller_from_claims(Some(&claims(&[("sub", "user-elsewhere")])), now()).unwrap();
        assert_eq!(
            authorize_push(&caller, Some(&account()))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(authorize_push(&caller, None).unwrap_err().status(), 403);
    }

    #[test]
    fn missing_malformed_and_expired_claims_are_unauthenticated() {
        assert_eq!(
            caller_from_claims(None, now()),
            Err(AuthError::MissingClaims)
        );
        assert_eq!(
            caller_from_claims(Some(&HashMap::new()), now()),
            Err(AuthError::MissingClaims)
        );
        let no_sub = claims(&[("email", "a@b.c")]);
        assert!(matches!(
            caller_from_claims(Some(&no_sub), now()),
            Err(AuthError::Malformed(_))
        ));
        let bad_sub = claims(&[("sub", "a#b")]);
        assert!(matches!(
            caller_from_claims(Some(&bad_sub), now()),
            Err(AuthError::Malformed(_))
        ));
        let expired = claims(&[("sub", "user-creator"), ("exp", "1700000000")]);
        assert_eq!(
            caller_from_claims(Some(&expired), now()),
            Err(AuthError::Expired)
        );
        assert_eq!(AuthError::Expired.status(), 401);
    }
}
