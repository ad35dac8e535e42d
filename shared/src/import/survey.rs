//! The first pass over an export: read every product, check what the catalog
//! would get, and settle each base's price. Nothing is written until this
//! pass reaches the end of the file without an error.

use std::collections::HashMap;
use std::io::Read;

use super::ImportError;
use super::reader::{HeaderGeneration, ProductReader, ProductRecord};
use crate::domain::{Descriptor, Handle, Money};

/// Shopify's limit on a product title.
const MAX_TITLE_CHARS: usize = 255;
/// Far above any real description, and well inside DynamoDB's 400 KB item.
const MAX_DESCRIPTION_BYTES: usize = 256 * 1024;

/// One base as the file prices it.
#[derive(Debug, Clone, PartialEq)]
pub struct BasePrice {
    pub descriptor: Descriptor,
    pub price: Money,
}

/// What the first pass learned.
#[derive(Debug, Clone)]
pub struct Survey {
    pub header: HeaderGeneration,
    pub rows: u64,
    pub products: u64,
    pub variants: u64,
    pub images: u64,
    /// By descriptor key.
    pub bases: HashMap<String, BasePrice>,
    pub warnings: Vec<String>,
}

/// Prices seen for one descriptor, in the order first seen.
#[derive(Debug, Default)]
struct PriceTally {
    descriptor: Option<Descriptor>,
    first_seen: usize,
    /// (price, variants at that price, where it was first seen).
    prices: Vec<(Money, u64, String)>,
}

/// The descriptor of a variant: its option values, joined as Shopify titles
/// variants ("Merino Fingering", or "Small / Red" for two options).
pub fn descriptor_of(option_values: &[String]) -> Option<Descriptor> {
    Descriptor::try_from(option_values.join(" / ")).ok()
}

/// Checks one product beyond what the reader checks: the handle, the prices
/// and the descriptors must be what the catalog can hold.
pub fn check_product(product: &ProductRecord) -> Result<Handle, ImportError> {
    let handle = Handle::try_from(product.handle.clone()).map_err(|e| ImportError::Rejected {
        line: product.line,
        message: format!(
            "the handle {:?} cannot be used: {}",
            product.handle, e.reason
        ),
    })?;
    if product.title.chars().count() > MAX_TITLE_CHARS {
        return Err(ImportError::Rejected {
            line: product.line,
            message: format!(
                "the title of {:?} is longer than Shopify's {MAX_TITLE_CHARS} characters",
                product.handle
            ),
        });
    }
    if product.description_html.len() > MAX_DESCRIPTION_BYTES {
        return Err(ImportError::Rejected {
            line: product.line,
            message: format!(
                "the description of {:?} is {} KB; a colorway's description can hold at most {} KB",
                product.handle,
                product.description_html.len() / 1024,
                MAX_DESCRIPTION_BYTES / 1024
            ),
        });
    }
    let mut seen: HashMap<String, u64> = HashMap::new();
    for variant in &product.variants {
        let descriptor =
            descriptor_of(&variant.option_values).ok_or_else(|| ImportError::Rejected {
                line: variant.line,
                message: format!(
                    "the variant of {:?} has no usable option value (1 to 255 characters)",
                    product.handle
                ),
            })?;
        if let Some(first) = seen.insert(descriptor.key(), variant.line) {
            return Err(ImportError::Rejected {
                line: variant.line,
                message: format!(
                    "{:?} lists the option value {:?} twice (also on line {first}); remove one of the rows",
                    product.handle,
                    descriptor.as_str()
                ),
            });
        }
        if let Some(price) = variant.price {
            Money::try_from(price).map_err(|e| ImportError::Rejected {
                line: variant.line,
                message: format!("the price {price} of {:?} {}", product.handle, e.reason),
            })?;
        }
        if let Some(q) = variant.inventory_quantity
            && q.abs() > crate::domain::QUANTITY_LIMIT
        {
            return Err(ImportError::Rejected {
                line: variant.line,
                message: format!("the quantity {q} is beyond what Shopify allows (±1,000,000,000)"),
            });
        }
    }
    Ok(handle)
}

fn handle_key(handle: &Handle) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same handle gives the same key in every pass.
    let mut hasher = std::hash::DefaultHasher::new();
    handle.as_str().hash(&mut hasher);
    hasher.finish()
}

/// Reads the whole file once. Any error rejects the file.
pub fn survey<R: Read>(input: R) -> Result<Survey, ImportError> {
    let mut reader = ProductReader::new(input).map_err(ImportError::from)?;
    let header = reader.header_generation();
    let mut tallies: HashMap<String, PriceTally> = HashMap::new();
    let (mut products, mut variants, mut images) = (0u64, 0u64, 0u64);
    let mut warnings = Vec::new();
    // Handles are case-insensitive in Shopify (and lowercased here): two
    // products whose handles differ only in capitals would be one colorway.
    let mut handles: HashMap<u64, u64> = HashMap::new();

    for product in reader.by_ref() {
        let product = product.map_err(ImportError::from)?;
        let handle = check_product(&product)?;
        if let Some(first) = handles.insert(handle_key(&handle), product.line) {
            return Err(ImportError::Rejected {
                line: product.line,
                message: format!(
                    "the handle {:?} is the same as the handle of the product on line {first}, apart from capitals; \
                     Shopify handles are lowercase, so rename one of them",
                    product.handle
                ),
            });
        }
        if let Some(status) = &product.status
            && crate::mapping::colorway_status(status).is_none()
        {
            warnings.push(format!(
                "{} (line {}): status {status:?} is not active, draft or archived; imported as active",
                product.handle, product.line
            ));
        }
        warnings.extend(product.warnings.iter().cloned());
        products += 1;
        images += product.images.len() as u64;
        for variant in &product.variants {
            variants += 1;
            let Some(descriptor) = descriptor_of(&variant.option_values) else {
                continue;
            };
            let order = tallies.len();
            let tally = tallies
                .entry(descriptor.key())
                .or_insert_with(|| PriceTally {
                    first_seen: order,
                    ..PriceTally::default()
                });
            tally.descriptor.get_or_insert(descriptor);
            let Some(price) = variant.price.and_then(|p| Money::try_from(p).ok()) else {
                continue;
            };
            match tally.prices.iter_mut().find(|(p, _, _)| *p == price) {
                Some((_, count, _)) => *count += 1,
                None => tally.prices.push((
                    price,
                    1,
                    format!("{} (line {})", product.handle, variant.line),
                )),
            }
        }
    }

    if products == 0 {
        warnings.push("the file has a header but no products; nothing was imported".to_owned());
    }

    let mut ordered: Vec<(String, PriceTally)> = tallies.into_iter().collect();
    ordered.sort_by_key(|(_, t)| t.first_seen);
    let mut bases = HashMap::with_capacity(ordered.len());
    for (key, tally) in ordered {
        let Some(descriptor) = tally.descriptor else {
            continue;
        };
        let (price, warning) = settle_price(&descriptor, &tally.prices);
        warnings.extend(warning);
        bases.insert(key, BasePrice { descriptor, price });
    }

    Ok(Survey {
        header,
        rows: reader.rows_read(),
        products,
        variants,
        images,
        bases,
        warnings,
    })
}

/// The price rule: when one base carries several prices in the file, the
/// price most of its variants carry wins; on a tie, the one seen first in the
/// file. Either way a warning lists every price and where it was seen.
fn settle_price(
    descriptor: &Descriptor,
    prices: &[(Money, u64, String)],
) -> (Money, Option<String>) {
    let Some(first) = prices.first() else {
        return (
            Money::ZERO,
            Some(format!(
                "Base {:?} has no price in the file; it was given 0.00, set its retail price before pushing",
                descriptor.as_str()
            )),
        );
    };
    // Strictly greater keeps the earliest price on a tie.
    let chosen = prices.iter().fold(first, |best, candidate| {
        if candidate.1 > best.1 {
            candidate
        } else {
            best
        }
    });
    if prices.len() == 1 {
        return (chosen.0, None);
    }
    let listed = prices
        .iter()
        .map(|(price, count, at)| {
            let plural = if *count == 1 { "" } else { "s" };
            format!("{price} on {count} variant{plural}, first at {at}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    let warning = format!(
        "Base {:?} has {} prices in the file ({listed}); kept {}, the price most of its variants carry",
        descriptor.as_str(),
        prices.len(),
        chosen.0
    );
    (chosen.0, Some(warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn descriptor() -> Descriptor {
        Descriptor::try_from("Merino Fingering".to_owned()).unwrap()
    }

    #[test]
    fn one_price_needs_no_warning() {
        let (price, warning) =
            settle_price(&descriptor(), &[(money("28"), 3, "a (line 2)".into())]);
        assert_eq!(price, money("28"));
        assert!(warning.is_none());
    }

    #[test]
    fn the_most_common_price_wins_and_the_conflict_is_warned() {
        let prices = [
            (money("30"), 1, "a (line 2)".into()),
            (money("28"), 4, "b (line 9)".into()),
        ];
        let (price, warning) = settle_price(&descriptor(), &prices);
        assert_eq!(price, money("28"));
        let warning = warning.unwrap();
        assert!(warning.contains("Merino Fingering"));
        assert!(warning.contains("30.00 on 1 variant, first at a (line 2)"));
        assert!(warning.contains("kept 28.00"));
    }

    #[test]
    fn a_tie_keeps_the_price_seen_first() {
        let prices = [
            (money("30"), 2, "a (line 2)".into()),
            (money("28"), 2, "b (line 9)".into()),
        ];
        assert_eq!(settle_price(&descriptor(), &prices).0, money("30"));
    }

    #[test]
    fn no_price_at_all_is_zero_with_a_warning() {
        let (price, warning) = settle_price(&descriptor(), &[]);
        assert_eq!(price, Money::ZERO);
        assert!(warning.unwrap().contains("no price"));
    }
}
