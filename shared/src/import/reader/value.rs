//! Parsing of the typed cells: quantities, prices, Shopify IDs, positions and
//! booleans. Each parser is strict about anything that could be read two ways,
//! because a wrong stock count or price written into the catalog is worse than
//! an import that stops and says which cell to fix.

use std::str::FromStr;

use rust_decimal::Decimal;

/// Why a cell could not be read: what was expected, and advice for the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    pub(super) expected: &'static str,
    pub(super) hint: String,
}

impl Invalid {
    fn new(expected: &'static str, hint: impl Into<String>) -> Self {
        Invalid {
            expected,
            hint: hint.into(),
        }
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Spreadsheet programs turn long numbers into `1.23457E+13`, losing digits.
fn looks_scientific(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    match lower.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent = exponent.trim_start_matches(['+', '-']);
            !mantissa.is_empty()
                && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && is_digits(exponent)
        }
        None => false,
    }
}

const SPREADSHEET_HINT: &str = "; a spreadsheet program probably rewrote it in scientific notation \
     and lost digits: export the file again and upload it without opening it in a spreadsheet";

/// Stock on hand. Negative is allowed because Shopify allows overselling;
/// a fraction is not a number of skeins. `12.0` is accepted as 12 because
/// spreadsheets write whole numbers that way.
pub(super) fn parse_quantity(raw: &str) -> Result<i64, Invalid> {
    let s = raw.trim();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let expected = "a whole number of items";
    if looks_scientific(s) {
        return Err(Invalid::new(expected, SPREADSHEET_HINT));
    }
    if !is_digits(whole) || !fraction.bytes().all(|b| b == b'0') {
        let hint = if is_digits(whole) && is_digits(fraction) {
            "; stock is counted in whole items (negative numbers are fine for oversold stock)"
        } else {
            "; write the stock as a plain number such as 12 or -3"
        };
        return Err(Invalid::new(expected, hint));
    }
    let magnitude = i64::from_str(whole)
        .map_err(|_| Invalid::new(expected, "; the number is too large to be a stock count"))?;
    Ok(sign * magnitude)
}

/// A price as Shopify writes it: digits with an optional dot and cents. Read as
/// a decimal, never a float, so 19.99 stays 19.99.
pub(super) fn parse_price(raw: &str) -> Result<Decimal, Invalid> {
    let s = raw.trim();
    let expected = "a price such as 19.99";
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let well_formed = is_digits(whole) && (fraction.is_empty() || is_digits(fraction));
    if !well_formed {
        let hint = if s.starts_with('-') {
            "; a price cannot be negative"
        } else if s.contains(',') {
            "; use a dot before the cents and no thousands separator, as Shopify does (1234.50)"
        } else if looks_scientific(s) {
            SPREADSHEET_HINT
        } else {
            "; write only the number, without a currency symbol or code"
        };
        return Err(Invalid::new(expected, hint));
    }
    Decimal::from_str(s).map_err(|_| Invalid::new(expected, "; the number is too long"))
}

/// A Shopify ID, plain (`123`) or as a GID (`gid://shopify/ProductVariant/123`).
/// IDs exceed 2^53, so they are read as integers and never pass through f64.
pub(super) fn parse_id(raw: &str, resource: &'static str) -> Result<u64, Invalid> {
    let s = raw.trim();
    let expected = match resource {
        "Product" => "a Shopify product ID",
        "ProductVariant" => "a Shopify variant ID",
        _ => "a Shopify inventory item ID",
    };
    let digits = match s.strip_prefix("gid://shopify/") {
        Some(rest) => {
            // A GID may carry parameters after `?`; they do not change the ID.
            let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
            let Some((kind, id)) = rest.split_once('/') else {
                return Err(Invalid::new(expected, "; the GID has no number at its end"));
            };
            if kind != resource {
                return Err(Invalid::new(
                    expected,
                    format!("; this GID names a {kind}, but this column holds {resource} IDs"),
                ));
            }
            id
        }
        None => s,
    };
    if looks_scientific(digits) {
        return Err(Invalid::new(expected, SPREADSHEET_HINT));
    }
    if !is_digits(digits) {
        return Err(Invalid::new(
            expected,
            format!("; write the number alone (123) or as a GID (gid://shopify/{resource}/123)"),
        ));
    }
    u64::from_str(digits).map_err(|_| Invalid::new(expected, "; the number is too large"))
}

/// An image position: 1 for the first image.
pub(super) fn parse_position(raw: &str) -> Result<u32, Invalid> {
    let s = raw.trim();
    if !is_digits(s) {
        return Err(Invalid::new(
            "an image position such as 1",
            "; positions are whole numbers counting from 1",
        ));
    }
    u32::from_str(s).map_err(|_| Invalid::new("an image position such as 1", "; it is too large"))
}

pub(super) fn parse_bool(raw: &str) -> Result<bool, Invalid> {
    let s = raw.trim();
    if s.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Invalid::new("TRUE or FALSE", ""))
    }
}

/// The statuses Shopify writes, in lowercase.
const STATUSES: [&str; 4] = ["active", "draft", "archived", "unlisted"];

pub(super) fn is_status(raw: &str) -> bool {
    STATUSES.iter().any(|s| raw.trim().eq_ignore_ascii_case(s))
}

/// `deny` or `continue`: what Shopify writes after a tracked quantity.
pub(super) fn is_policy(raw: &str) -> bool {
    let s = raw.trim();
    s.eq_ignore_ascii_case("deny") || s.eq_ignore_ascii_case("continue")
}

pub(super) fn is_web_address(raw: &str) -> bool {
    let s = raw.trim().as_bytes();
    [&b"http://"[..], &b"https://"[..]]
        .iter()
        .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p))
}

/// A price exactly as Shopify writes one (`689`, `689.5`, `689.00`). Looser
/// forms are left out on purpose: this decides which of several neighbouring
/// cells is the price, and a weight such as `0.125` must not compete.
pub(super) fn is_plain_price(raw: &str) -> bool {
    let s = raw.trim();
    let (whole, cents) = s.split_once('.').unwrap_or((s, "0"));
    is_digits(whole) && is_digits(cents) && cents.len() <= 2
}

/// A name that can stand in the inventory tracker column: `shopify`, or the
/// name of a stock app. Numbers, flags, policies and addresses are values of
/// the neighbouring columns, never a tracker.
pub(super) fn is_tracker_name(raw: &str) -> bool {
    let s = raw.trim();
    !s.is_empty()
        && s.chars().any(char::is_alphabetic)
        && parse_price(s).is_err()
        && parse_quantity(s).is_err()
        && parse_bool(s).is_err()
        && !is_policy(s)
        && !s.contains("://")
}

pub(super) fn split_tags(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_accepts_negative_and_whole_decimal_but_not_fractions() {
        assert_eq!(parse_quantity("-3"), Ok(-3));
        assert_eq!(parse_quantity(" 12 "), Ok(12));
        assert_eq!(parse_quantity("12.0"), Ok(12));
        assert!(parse_quantity("1.5").is_err());
        assert!(parse_quantity("1,000").is_err());
        assert!(parse_quantity("shopify").is_err());
        assert!(parse_quantity("1E+3").is_err());
        assert!(parse_quantity("").is_err());
    }

    #[test]
    fn price_is_exact_decimal_and_refuses_symbols_commas_and_signs() {
        assert_eq!(parse_price("19.99"), Ok(Decimal::new(1999, 2)));
        assert_eq!(parse_price("25"), Ok(Decimal::new(25, 0)));
        assert!(parse_price("$19.99").is_err());
        assert!(parse_price("19,99").is_err());
        assert!(parse_price("1_000").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_price("1e3").is_err());
    }

    #[test]
    fn ids_above_two_to_the_53_stay_exact_plain_or_gid() {
        let big = (1u64 << 53) + 1;
        assert_eq!(parse_id(&big.to_string(), "ProductVariant"), Ok(big));
        assert_eq!(
            parse_id(
                "gid://shopify/ProductVariant/9007199254740993",
                "ProductVariant"
            ),
            Ok(big)
        );
        assert_eq!(
            parse_id(
                "gid://shopify/InventoryItem/18446744073709551615",
                "InventoryItem"
            ),
            Ok(u64::MAX)
        );
        assert!(parse_id("gid://shopify/Product/1", "ProductVariant").is_err());
        assert!(parse_id("9.0072E+15", "Product").is_err());
        assert!(parse_id("18446744073709551616", "Product").is_err());
    }

    #[test]
    fn plain_price_has_at_most_two_decimals_and_nothing_else() {
        for price in ["689", "689.5", "689.00", "0.99"] {
            assert!(is_plain_price(price), "{price}");
        }
        for other in ["", "0.125", "1.", ".5", "-1", "$5", "1,00", "TRUE", "1e3"] {
            assert!(!is_plain_price(other), "{other}");
        }
    }

    #[test]
    fn tracker_names_are_words_that_no_neighbouring_column_holds() {
        assert!(is_tracker_name("shopify"));
        assert!(is_tracker_name("Shipwire"));
        for other in [
            "",
            "10",
            "689.00",
            "TRUE",
            "deny",
            "CONTINUE",
            "https://x.test/a.png",
        ] {
            assert!(!is_tracker_name(other), "{other}");
        }
    }

    #[test]
    fn tags_are_split_on_commas_trimmed_and_empties_dropped() {
        assert_eq!(split_tags(" Black, Lamp ,, "), vec!["Black", "Lamp"]);
        assert!(split_tags("").is_empty());
    }
}
