//! Product handles: normalising what a client sends and keeping them unique.

/// Lower-cases, keeps letters and digits of any script, and joins the rest
/// with single dashes: `"  Mixed CASE / 東京 100 % "` → `"mixed-case-東京-100"`.
pub fn normalize(raw: &str) -> String {
    let mut handle = String::new();
    let mut pending_dash = false;
    for c in raw.chars() {
        if c.is_alphanumeric() {
            if pending_dash && !handle.is_empty() {
                handle.push('-');
            }
            pending_dash = false;
            handle.extend(c.to_lowercase());
        } else {
            pending_dash = true;
        }
    }
    handle
}

/// The first free handle from `base`: a handle that ends in a number counts
/// up from it (`…-20260719114534` → `…-20260719114535`), any other gets
/// `-1`, `-2`, … appended, as a real shop does.
pub fn dedupe(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    let (stem, start) = match base.rsplit_once('-') {
        Some((stem, digits))
            if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) =>
        {
            match digits.parse::<u128>() {
                Ok(number) => (stem.to_owned(), number + 1),
                Err(_) => (base.to_owned(), 1),
            }
        }
        _ => (base.to_owned(), 1),
    };
    let mut number = start;
    loop {
        let candidate = format!("{stem}-{number}");
        if !taken(&candidate) {
            return candidate;
        }
        number += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_shopify() {
        assert_eq!(
            normalize("  Mixed CASE / 東京 100 % "),
            "mixed-case-東京-100"
        );
        assert_eq!(normalize("%%%"), "");
        assert_eq!(
            normalize("Hermes ProductSet Missing Identifier 1778123974928"),
            "hermes-productset-missing-identifier-1778123974928"
        );
    }

    #[test]
    fn dedupes_by_counting_up_a_trailing_number() {
        let taken = ["product", "product-1", "name-20260719114534"];
        let is_taken = |h: &str| taken.contains(&h);
        assert_eq!(dedupe("product", is_taken), "product-2");
        assert_eq!(
            dedupe("name-20260719114534", is_taken),
            "name-20260719114535"
        );
        assert_eq!(dedupe("free", is_taken), "free");
    }
}
