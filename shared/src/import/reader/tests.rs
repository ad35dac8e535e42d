//! The reader against real Shopify exports, variants of them made here from
//! their bytes (BOM, CRLF, damage of each kind), and generated files.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use rust_decimal::Decimal;

use super::*;

const LEGACY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/csv/legacy-export-2021.csv"
);
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/csv/template-multi-option.csv"
);
const NEW_FORMAT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/csv/new-format-2025.csv"
);

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn read_all(input: &[u8]) -> Result<Vec<ProductRecord>, ReadError> {
    ProductReader::new(input)?.collect()
}

fn products(input: &[u8]) -> Vec<ProductRecord> {
    read_all(input).unwrap_or_else(|e| panic!("file should read: {e}"))
}

fn error(input: &[u8]) -> ReadError {
    match read_all(input) {
        Ok(products) => panic!("file should be rejected, got {} products", products.len()),
        Err(e) => e,
    }
}

/// Replaces exactly one occurrence, so a test cannot silently damage nothing.
fn replace_once(input: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let hits: Vec<usize> = input
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} should occur once",
        String::from_utf8_lossy(from)
    );
    let at = hits[0];
    [&input[..at], to, &input[at + from.len()..]].concat()
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}

fn find<'a>(products: &'a [ProductRecord], handle: &str) -> &'a ProductRecord {
    products
        .iter()
        .find(|p| p.handle == handle)
        .unwrap_or_else(|| panic!("no product {handle}"))
}

fn variant_count(products: &[ProductRecord]) -> usize {
    products.iter().map(|p| p.variants.len()).sum()
}

fn image_count(products: &[ProductRecord]) -> usize {
    products.iter().map(|p| p.images.len()).sum()
}

fn quantity_sum(products: &[ProductRecord]) -> i64 {
    products
        .iter()
        .flat_map(|p| &p.variants)
        .map(|v| v.inventory_quantity.expect("every variant has a quantity"))
        .sum()
}

// ---------------------------------------------------------------- real files

#[test]
fn legacy_export_yields_the_twenty_products_a_person_counts() {
    let input = bytes(LEGACY);
    let mut reader = ProductReader::new(&input[..]).expect("header");
    assert_eq!(reader.header_generation(), HeaderGeneration::Legacy);
    let products: Vec<_> = reader.by_ref().collect::<Result<_, _>>().expect("reads");
    assert_eq!(reader.rows_read(), 21);

    assert_eq!(products.len(), 20);
    assert_eq!(variant_count(&products), 21);
    assert_eq!(image_count(&products), 21);
    assert_eq!(quantity_sum(&products), 65);
    let lines: Vec<u64> = products.iter().map(|p| p.line).collect();
    let expected: Vec<u64> = [2, 3].into_iter().chain(9..=26).collect();
    assert_eq!(
        lines, expected,
        "physical lines, the description of line 3 spans six"
    );
}

#[test]
fn legacy_single_variant_product_keeps_default_title_and_exact_price() {
    let products = products(&bytes(LEGACY));
    let lamp = &products[0];
    assert_eq!(lamp.handle, "floor-lamp");
    assert_eq!(lamp.title, "Floor Lamp");
    assert_eq!(lamp.description_html, "<p>Black floor lamp</p>");
    assert_eq!(lamp.vendor, "Company 123");
    assert_eq!(lamp.product_type, "Indoor");
    assert_eq!(lamp.tags, vec!["Black", "Lamp"]);
    assert_eq!(lamp.status.as_deref(), Some("active"));
    assert_eq!(lamp.published, Some(true));
    assert_eq!(lamp.option_names, vec!["Title"]);
    assert_eq!(lamp.product_id, None);
    let [variant] = &lamp.variants[..] else {
        panic!("one variant")
    };
    assert_eq!(variant.option_values, vec!["Default Title"]);
    assert_eq!(variant.price, Some(dec("69.99")));
    assert_eq!(variant.price.map(|p| p.scale()), Some(2), "cents kept");
    assert_eq!(variant.inventory_quantity, Some(1));
    assert_eq!(variant.sku, None);
    assert_eq!(variant.variant_id, None);
    assert_eq!(lamp.images[0].position, Some(1));
    assert!(lamp.images[0].src.starts_with("https://cdn.shopify.com/"));
    assert_eq!(lamp.images[0].alt, None);
}

#[test]
fn legacy_multi_line_description_is_kept_intact() {
    let products = products(&bytes(LEGACY));
    let chairs = find(&products, "black-armchairs");
    assert_eq!(chairs.line, 3);
    let html = &chairs.description_html;
    assert!(html.starts_with("<h6><span>Description</span></h6>\n<p><span>Lorem ipsum"));
    assert!(html.ends_with("In id mattis tellus.</span></p>"));
    assert_eq!(html.matches('\n').count(), 5);
    assert!(html.contains("\n<h6><span>Ingredients</span></h6>\n"));
    assert_eq!(chairs.tags, vec!["Black", "Suede"]);
    assert_eq!(chairs.variants[0].inventory_quantity, Some(6));
    // `""` in the SKU cell is an empty value, not a quote.
    assert_eq!(chairs.variants[0].sku, None);
}

#[test]
fn legacy_two_variant_product_has_an_image_per_variant_row() {
    let products = products(&bytes(LEGACY));
    let gloves = find(&products, "gardening-gloves");
    assert_eq!(gloves.line, 26);
    assert_eq!(gloves.option_names, vec!["Color"]);
    let values: Vec<_> = gloves.variants.iter().map(|v| &v.option_values).collect();
    assert_eq!(values, [&vec!["Green"], &vec!["Yellow"]]);
    let prices: Vec<_> = gloves.variants.iter().map(|v| v.price).collect();
    assert_eq!(prices, [Some(dec("9.99")), Some(dec("15.99"))]);
    let quantities: Vec<_> = gloves
        .variants
        .iter()
        .map(|v| v.inventory_quantity)
        .collect();
    assert_eq!(quantities, [Some(1), Some(3)]);
    assert_eq!(gloves.variants[1].line, 27);
    let images: Vec<_> = gloves.images.iter().map(|i| (i.line, i.position)).collect();
    assert_eq!(images, [(26, Some(1)), (27, Some(2))]);
    // The second row's empty Title does not overwrite the first row's.
    assert_eq!(gloves.title, "Gardening Gloves");
}

#[test]
fn template_yields_three_products_with_two_options_and_an_image_only_row() {
    let products = products(&bytes(TEMPLATE));
    assert_eq!(products.len(), 3);
    assert_eq!(variant_count(&products), 16);
    assert_eq!(image_count(&products), 11);
    assert_eq!(quantity_sum(&products), 95);

    let shirt = &products[0];
    assert_eq!(shirt.handle, "example-shirt");
    assert_eq!(shirt.option_names, vec!["Color", "Size"]);
    assert_eq!(shirt.variants.len(), 12);
    assert_eq!(shirt.images.len(), 6);
    let positions: Vec<_> = shirt.images.iter().map(|i| i.position).collect();
    assert_eq!(positions, (1..=6).map(Some).collect::<Vec<_>>());
    let first = &shirt.variants[0];
    assert_eq!(first.option_values, vec!["Green", "S"]);
    assert_eq!(first.sku.as_deref(), Some("SRT_COT_111"));
    assert_eq!(first.price, Some(dec("25")));
    assert!(
        first
            .image_src
            .as_deref()
            .is_some_and(|s| s.contains("green-t-shirt"))
    );
    assert_eq!(shirt.variants[11].option_values, vec!["Purple", "L"]);
    assert_eq!(shirt.tags, vec!["Made to Order", "Shirt Tag"]);
    assert_eq!(shirt.images[0].alt.as_deref(), Some("A rack of T-Shirts"));

    let pants = &products[1];
    assert_eq!(pants.handle, "example-pants");
    assert_eq!(pants.status.as_deref(), Some("draft"));
    assert_eq!(pants.published, Some(false));
    assert_eq!(
        pants.variants.len(),
        3,
        "the image-only row is not a variant"
    );
    let quantities: Vec<_> = pants
        .variants
        .iter()
        .map(|v| v.inventory_quantity)
        .collect();
    assert_eq!(quantities, [Some(20), Some(15), Some(10)]);
    let last_image = pants.images.last().expect("images");
    assert_eq!(pants.images.len(), 4);
    assert_eq!(last_image.line, 17);
    assert_eq!(last_image.position, Some(4));
    assert_eq!(
        last_image.alt.as_deref(),
        Some("Large tapered stone wash jeans")
    );

    let hat = &products[2];
    assert_eq!(hat.status.as_deref(), Some("archived"));
    assert_eq!(hat.variants[0].option_values, vec!["Default Title"]);
    assert_eq!(hat.variants[0].price, Some(dec("17.99")));
    assert_eq!(hat.variants[0].inventory_quantity, Some(50));
    assert_eq!(hat.line, 18);
}

/// The 2025 file, as published, has rows whose values sit one or two columns
/// away from their header: line 2 puts "shopify" (the inventory tracker) under
/// "Inventory quantity" and the price under "Option3 Linked To"; the variant
/// rows have the price in place but the tracker two columns right. Read by
/// their neighbours, the rows give what a person reads in the file: three
/// products in four sizes, with their prices, ten of each size in stock, and
/// one image each. Every row says that it was read this way.
#[test]
fn shifted_2025_export_reads_three_products_of_four_sizes_by_neighbouring_values() {
    let input = bytes(NEW_FORMAT);
    let mut reader = ProductReader::new(&input[..]).expect("header is fine");
    assert_eq!(reader.header_generation(), HeaderGeneration::Current);
    let products: Vec<_> = reader.by_ref().collect::<Result<_, _>>().expect("reads");
    assert_eq!(reader.rows_read(), 12);

    let expected = [
        (
            "stoa-formal-ski-pant",
            "stOa Formal Ski Pant",
            2,
            "689.00",
            "STOA-02-FSP-S",
            "02/3.png",
            "stOa Formal Ski Pant — charcoal front view",
        ),
        (
            "stoa-performal-shirt",
            "stOa Performal Shirt",
            6,
            "419.00",
            "STOA-03-PS-S",
            "03/4.png",
            "stOa Performal Shirt — white front view",
        ),
        (
            "stoa-rain-cape",
            "stOa Rain Cape",
            10,
            "589.00",
            "STOA-04-RC-S",
            "04/3.png",
            "stOa Rain Cape — dark grey front view",
        ),
    ];
    assert_eq!(products.len(), 3);
    assert_eq!(variant_count(&products), 12);
    assert_eq!(image_count(&products), 3);
    assert_eq!(quantity_sum(&products), 120);
    for (product, (handle, title, line, price, sku, image, alt)) in products.iter().zip(expected) {
        assert_eq!(product.handle, handle);
        assert_eq!(product.title, title);
        assert_eq!(product.line, line);
        assert_eq!(product.vendor, "stOa");
        assert_eq!(product.status.as_deref(), Some("active"));
        assert_eq!(product.published, Some(true));
        assert_eq!(product.option_names, vec!["Size"]);
        assert_eq!(product.tags[0], "stOa");

        let sizes: Vec<_> = product
            .variants
            .iter()
            .map(|v| v.option_values.join("/"))
            .collect();
        assert_eq!(sizes, ["S", "M", "L", "XL"], "{handle}");
        let lines: Vec<_> = product.variants.iter().map(|v| v.line).collect();
        assert_eq!(lines, [line, line + 1, line + 2, line + 3], "{handle}");
        for variant in &product.variants {
            assert_eq!(
                variant.price,
                Some(dec(price)),
                "{handle} line {}",
                variant.line
            );
            assert_eq!(variant.price.map(|p| p.scale()), Some(2), "cents kept");
            assert_eq!(
                variant.inventory_quantity,
                Some(10),
                "{handle} line {}",
                variant.line
            );
            assert_eq!(variant.image_src, None, "the alt text is no variant image");
        }
        let skus: Vec<_> = product.variants.iter().map(|v| v.sku.as_deref()).collect();
        assert_eq!(skus, [Some(sku), None, None, None]);

        let [picture] = &product.images[..] else {
            panic!("{handle} has one image")
        };
        assert_eq!(picture.line, line);
        assert_eq!(
            picture.src,
            format!(
                "https://raw.githubusercontent.com/studiovedelago-ai/stoa/main/stOa%20product/Products/{image}"
            )
        );
        assert_eq!(picture.position, Some(1));
        assert_eq!(picture.alt.as_deref(), Some(alt));

        let first = format!(
            "line {line}: the row has 58 fields but the header has 57, so its columns are \
             shifted; price, stock and image were read by their neighbouring values — check \
             this product after import"
        );
        let sizes_rows = (1..=3).map(|i| {
            format!(
                "line {}: the row has 59 fields but the header has 57, so its columns are \
                 shifted; price and stock were read by their neighbouring values — check this \
                 product after import",
                line + i
            )
        });
        let warnings: Vec<String> = std::iter::once(first).chain(sizes_rows).collect();
        assert_eq!(product.warnings, warnings, "one warning per shifted row");
    }
}

/// The header of the 2025 file and one product row of it in the length of
/// the header, with the cells named here in their own columns.
fn current_row(header: &[String], cells: &[(&str, &str)]) -> Vec<u8> {
    let mut record = vec![String::new(); header.len()];
    for (name, value) in cells {
        let at = header.iter().position(|h| h == name).expect("column");
        record[at] = (*value).to_owned();
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&record).expect("write");
    out.into_inner().expect("flush")
}

fn current_header() -> (Vec<u8>, Vec<String>) {
    let input = bytes(NEW_FORMAT);
    let header_end = input.iter().position(|b| *b == b'\n').expect("header line");
    let names = String::from_utf8(input[..header_end].to_vec())
        .expect("utf-8")
        .split(',')
        .map(str::to_owned)
        .collect();
    (input[..=header_end].to_vec(), names)
}

/// A row as long as the header is read by position only: "shopify" under
/// Inventory quantity is refused even though a number stands beside it.
#[test]
fn aligned_row_with_a_word_for_its_quantity_is_rejected_not_realigned() {
    let (mut file, header) = current_header();
    file.extend(current_row(
        &header,
        &[
            ("URL handle", "moss"),
            ("Title", "Moss"),
            ("Option1 value", "DK"),
            ("Price", "28.00"),
            ("Inventory quantity", "shopify"),
            ("Continue selling when out of stock", "10"),
        ],
    ));
    let err = error(&file);
    let ReadError::InvalidValue { column, value, .. } = &err else {
        panic!("unexpected error {err}")
    };
    assert_eq!(
        (column.as_str(), value.as_str()),
        ("Inventory quantity", "shopify")
    );
    assert_eq!(
        err.to_string(),
        "line 2 (spreadsheet row 2): the Inventory quantity column holds \"shopify\", which is \
         not a whole number of items; write the stock as a plain number such as 12 or -3"
    );
}

#[test]
fn shifted_row_whose_tracker_has_no_stock_count_after_it_is_rejected_naming_the_line() {
    let input = replace_once(
        &bytes(NEW_FORMAT),
        b"shopify,10,DENY,440,",
        b"shopify,ten,DENY,440,",
    );
    let err = error(&input);
    assert!(matches!(err, ReadError::ShiftedColumns { .. }), "{err}");
    assert_eq!((err.line(), err.record()), (3, Some(3)));
    assert_eq!(
        err.to_string(),
        "line 3 (spreadsheet row 3): the row has 59 fields but the header has 57, so its \
         columns are shifted, and the inventory tracker \"shopify\" under Continue selling when \
         out of stock is followed by \"ten\" under Weight value (grams) where the stock count \
         should be; fix the row or export the file again from Shopify rather than editing it by \
         hand"
    );
}

#[test]
fn shifted_row_whose_stock_is_not_followed_by_a_policy_is_rejected_naming_the_line() {
    let input = replace_once(
        &bytes(NEW_FORMAT),
        b"shopify,10,DENY,420,",
        b"shopify,10,,420,",
    );
    let err = error(&input);
    assert_eq!(err.line(), 2);
    let message = err.to_string();
    assert!(
        message.starts_with(
            "line 2 (spreadsheet row 2): the row has 58 fields but the header has 57, so its \
             columns are shifted, and the inventory tracker \"shopify\" under Inventory quantity \
             and the stock count \"10\" under Continue selling when out of stock are followed by \
             \"\" under Weight value (grams) instead of deny or continue"
        ),
        "{message}"
    );
}

#[test]
fn shifted_row_with_two_different_prices_near_the_price_column_is_rejected_as_ambiguous() {
    let input = replace_once(
        &bytes(NEW_FORMAT),
        b",M,,,,,,,,689.00,,",
        b",M,,,,,,,,689.00,700.00,",
    );
    let err = error(&input);
    let ReadError::ShiftedColumns { column, .. } = &err else {
        panic!("unexpected error {err}")
    };
    assert_eq!(column, "Price");
    assert_eq!((err.line(), err.record()), (3, Some(3)));
    assert_eq!(
        err.to_string(),
        "line 3 (spreadsheet row 3): the row has 59 fields but the header has 57, so its \
         columns are shifted, and the cells near the Price column hold two different prices, \
         \"689.00\" under Price and \"700.00\" under Compare-at price, so the price cannot be \
         told; fix the row or export the file again from Shopify rather than editing it by hand"
    );

    // The same price written twice leaves nothing to choose between.
    let input = replace_once(
        &bytes(NEW_FORMAT),
        b",M,,,,,,,,689.00,,",
        b",M,,,,,,,,689.00,689,",
    );
    let products = products(&input);
    assert_eq!(products[0].variants[1].price, Some(dec("689.00")));
}

/// Without a tracker the variant is untracked: its quantity column counts
/// only when it holds a whole number, never a neighbour's word.
#[test]
fn shifted_row_without_a_tracker_takes_its_quantity_column_only_when_it_is_a_number() {
    let header = "Handle,Title,Option1 Value,Price,Inventory tracker,Inventory quantity,\
        Continue selling when out of stock,Product image URL,Image position,Image alt text,\
        Gift card,SEO title\n";
    let input = format!(
        "{header}\
         moss,Moss,DK,,28.00,4,deny,,,,,,\n\
         moss,,Sport,30.00,,deny,,,https://example.com/moss.jpg,2,Moss in Sport,,,\n"
    );
    let products = products(input.as_bytes());
    let moss = &products[0];
    let stock: Vec<_> = moss
        .variants
        .iter()
        .map(|v| (v.price, v.inventory_quantity))
        .collect();
    assert_eq!(
        stock,
        [(Some(dec("28.00")), Some(4)), (Some(dec("30.00")), None)]
    );
    assert_eq!(moss.images.len(), 1);
    assert_eq!(moss.images[0].position, Some(2));
    assert_eq!(moss.images[0].alt.as_deref(), Some("Moss in Sport"));
    assert_eq!(moss.warnings.len(), 2);
    assert!(moss.warnings[0].starts_with(
        "line 2: the row has 13 fields but the header has 12, so its columns are shifted; price \
         and stock were read"
    ));
    assert!(moss.warnings[1].starts_with(
        "line 3: the row has 14 fields but the header has 12, so its columns are shifted; price \
         and image were read"
    ));
}

/// The real 2025 header with rows that line up with it, holding the values a
/// person reads in the published file for its first product.
#[test]
fn current_header_reads_every_field_by_its_new_name() {
    let input = bytes(NEW_FORMAT);
    let header_end = input.iter().position(|b| *b == b'\n').expect("header line");
    let header: Vec<String> = String::from_utf8(input[..header_end].to_vec())
        .expect("utf-8")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(header.len(), 57);
    let row = |cells: &[(&str, &str)]| -> Vec<u8> {
        let mut record = vec![String::new(); header.len()];
        for (name, value) in cells {
            let at = header.iter().position(|h| h == name).expect("column");
            record[at] = (*value).to_owned();
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(&record).expect("write");
        out.into_inner().expect("flush")
    };
    let image = "https://raw.githubusercontent.com/studiovedelago-ai/stoa/main/stOa%20product/Products/02/3.png";
    let mut file = input[..=header_end].to_vec();
    file.extend(row(&[
        ("Title", "stOa Formal Ski Pant"),
        ("URL handle", "stoa-formal-ski-pant"),
        ("Description", "A precision-tailored flared pant.\nDrop 02."),
        ("Vendor", "stOa"),
        ("Type", "Trousers"),
        ("Tags", "stOa, Drop 02, Formal"),
        ("Published on online store", "TRUE"),
        ("Status", "Active"),
        ("SKU", "STOA-02-FSP-S"),
        ("Option1 name", "Size"),
        ("Option1 value", "S"),
        ("Price", "689.00"),
        ("Inventory quantity", "10"),
        ("Product image URL", image),
        ("Image position", "1"),
        (
            "Image alt text",
            "stOa Formal Ski Pant — charcoal front view",
        ),
    ]));
    for size in ["M", "L", "XL"] {
        file.extend(row(&[
            ("URL handle", "stoa-formal-ski-pant"),
            ("Option1 value", size),
            ("Price", "689.00"),
            ("Inventory quantity", "10"),
        ]));
    }

    let mut reader = ProductReader::new(&file[..]).expect("header");
    assert_eq!(reader.header_generation(), HeaderGeneration::Current);
    let products: Vec<_> = reader.by_ref().collect::<Result<_, _>>().expect("reads");
    let [pant] = &products[..] else {
        panic!("one product")
    };
    assert_eq!(pant.title, "stOa Formal Ski Pant");
    assert_eq!(
        pant.description_html,
        "A precision-tailored flared pant.\nDrop 02."
    );
    assert_eq!(pant.status.as_deref(), Some("active"), "lowercased");
    assert_eq!(pant.published, Some(true));
    assert_eq!(pant.option_names, vec!["Size"]);
    assert_eq!(pant.variants.len(), 4);
    assert!(
        pant.variants
            .iter()
            .all(|v| v.price == Some(dec("689.00")) && v.inventory_quantity == Some(10))
    );
    assert_eq!(pant.variants[0].sku.as_deref(), Some("STOA-02-FSP-S"));
    assert_eq!(
        pant.variants[3].line, 6,
        "the description spans lines 2 and 3"
    );
    assert_eq!(pant.images.len(), 1);
    assert_eq!(pant.images[0].src, image);
    assert_eq!(
        pant.images[0].alt.as_deref(),
        Some("stOa Formal Ski Pant — charcoal front view")
    );
}

/// The whole legacy file under current column names reads the same.
#[test]
fn header_generations_differ_only_in_names() {
    let legacy = bytes(LEGACY);
    let header_end = legacy.iter().position(|b| *b == b'\n').expect("header");
    let renamed = String::from_utf8(legacy[..header_end].to_vec())
        .expect("utf-8")
        .split(',')
        .map(|name| match name {
            "Handle" => "URL handle",
            "Body (HTML)" => "Description",
            "Published" => "Published on online store",
            "Option1 Name" => "Option1 name",
            "Option1 Value" => "Option1 value",
            "Option2 Name" => "Option2 name",
            "Option2 Value" => "Option2 value",
            "Option3 Name" => "Option3 name",
            "Option3 Value" => "Option3 value",
            "Variant SKU" => "SKU",
            "Variant Grams" => "Weight value (grams)",
            "Variant Inventory Qty" => "Inventory quantity",
            "Variant Price" => "Price",
            "Variant Compare At Price" => "Compare-at price",
            "Variant Barcode" => "Barcode",
            "Image Src" => "Product image URL",
            "Image Position" => "Image position",
            "Image Alt Text" => "Image alt text",
            "Variant Image" => "Variant image URL",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",");
    let current = [renamed.as_bytes(), &legacy[header_end..]].concat();
    let reader = ProductReader::new(&current[..]).expect("header");
    assert_eq!(reader.header_generation(), HeaderGeneration::Current);
    let from_current: Vec<_> = reader.collect::<Result<_, _>>().expect("reads");
    assert_eq!(from_current, products(&legacy));
}

// ------------------------------------------------- encodings and line endings

#[test]
fn utf8_byte_order_mark_is_skipped() {
    let plain = bytes(TEMPLATE);
    let with_bom = [&[0xEF, 0xBB, 0xBF][..], &plain].concat();
    assert_eq!(products(&with_bom), products(&plain));
    let current = [&[0xEF, 0xBB, 0xBF][..], &bytes(NEW_FORMAT)].concat();
    let reader = ProductReader::new(&current[..]).expect("header");
    assert_eq!(reader.header_generation(), HeaderGeneration::Current);
}

#[test]
fn crlf_file_reads_the_same_products_on_the_same_lines() {
    let lf = bytes(LEGACY);
    assert!(!lf.contains(&b'\r'));
    let crlf: Vec<u8> = lf
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    let from_lf = products(&lf);
    let from_crlf = products(&crlf);
    assert_eq!(from_crlf.len(), 20);
    for (a, b) in from_lf.iter().zip(&from_crlf) {
        assert_eq!(a.line, b.line, "{}", a.handle);
        assert_eq!(a.variants, b.variants);
        assert_eq!(a.images, b.images);
        // Line breaks inside a quoted field are data: kept as the file has them.
        assert_eq!(a.description_html.replace('\n', "\r\n"), b.description_html);
    }
}

#[test]
fn lone_carriage_returns_count_as_line_breaks() {
    let lf = bytes(LEGACY);
    let cr: Vec<u8> = lf
        .iter()
        .map(|&b| if b == b'\n' { b'\r' } else { b })
        .collect();
    let lines: Vec<u64> = products(&cr).iter().map(|p| p.line).collect();
    let expected: Vec<u64> = [2, 3].into_iter().chain(9..=26).collect();
    assert_eq!(lines, expected);
}

#[test]
fn blank_lines_and_rows_of_empty_cells_are_skipped_and_lines_still_count() {
    let input = b"Handle,Title,Option1 Value,Variant Inventory Qty\n\
        \n\
        moss,Moss,Fingering,3\n\
        ,,,\n\
        \r\n\
        fern,Fern,DK,4\n";
    let products = products(input);
    let lines: Vec<_> = products
        .iter()
        .map(|p| (p.handle.as_str(), p.line))
        .collect();
    assert_eq!(lines, [("moss", 3), ("fern", 6)]);
}

#[test]
fn file_without_a_final_line_break_reads_its_last_row() {
    let input = b"Handle,Title,Option1 Value,Variant Inventory Qty\nmoss,Moss,Fingering,3";
    assert_eq!(products(input)[0].variants[0].inventory_quantity, Some(3));
}

// ---------------------------------------------------------------- ragged rows

#[test]
fn rows_shorter_than_the_header_read_missing_cells_as_empty() {
    let full = bytes(TEMPLATE);
    let text = String::from_utf8(full.clone()).expect("utf-8");
    let trimmed: String = text
        .lines()
        .map(|line| format!("{}\n", line.trim_end_matches(',')))
        .collect();
    assert_ne!(trimmed.as_bytes(), &full[..], "some rows became shorter");
    assert_eq!(products(trimmed.as_bytes()), products(&full));
}

#[test]
fn rows_longer_than_the_header_are_accepted_while_the_extra_cells_are_empty() {
    let full = bytes(TEMPLATE);
    let text = String::from_utf8(full.clone()).expect("utf-8");
    let padded: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                format!("{line}\n")
            } else {
                format!("{line},,\n")
            }
        })
        .collect();
    assert_eq!(products(padded.as_bytes()), products(&full));
}

#[test]
fn a_value_beyond_the_last_header_column_is_rejected_naming_its_line() {
    // An unquoted decimal comma splits the price in two and pushes every
    // later value one column to the right.
    let input = replace_once(&bytes(LEGACY), b",69.99,85.00,", b",69,99,85.00,");
    let err = error(&input);
    assert!(matches!(err, ReadError::TooManyFields { .. }), "{err}");
    assert_eq!(err.line(), 2);
    let message = err.to_string();
    assert!(
        message.starts_with(
            "line 2 (spreadsheet row 2): the row has 49 fields but the header has 48, and field \
             49 beyond the header holds \"active\""
        ),
        "{message}"
    );
}

// ------------------------------------------------------------- malformed files

#[test]
fn unterminated_quote_is_rejected_at_the_line_where_it_opens() {
    let mut input = bytes(LEGACY);
    input.extend_from_slice(b"extra-skein,Extra Skein,\"<p>Never closed\n<p>still open</p>\n");
    let err = error(&input);
    assert!(matches!(err, ReadError::UnterminatedQuote { .. }), "{err}");
    assert_eq!(err.line(), 28);
    assert_eq!(err.record(), Some(23));
    assert_eq!(
        err.to_string(),
        "line 28 (spreadsheet row 23): unterminated quoted field that opens here; check the \
         Body (HTML) column for a missing closing quote (\")"
    );
}

#[test]
fn missing_closing_quote_before_later_quotes_is_rejected_at_the_line_where_it_opens() {
    // Without its closing quote the description swallows the next cells up to
    // the quote that opens the tags, and the quotes pair up wrongly from there.
    let input = replace_once(
        &bytes(LEGACY),
        b"</span></p>\",Company",
        b"</span></p>,Company",
    );
    let err = error(&input);
    let ReadError::TextAfterQuote {
        line,
        record,
        column,
        close_line,
    } = &err
    else {
        panic!("unexpected error {err}")
    };
    assert_eq!((*line, *record, *close_line), (3, 3, 8));
    assert_eq!(column, "Body (HTML)");
    assert!(err.to_string().starts_with(
        "line 3 (spreadsheet row 3): the quoted field that opens here is closed on line 8"
    ));
}

#[test]
fn unterminated_quote_in_an_endless_input_fails_at_the_row_limit_not_at_the_end() {
    struct Endless {
        head: io::Cursor<Vec<u8>>,
        consumed: Rc<Cell<u64>>,
    }
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.head.read(buf)?;
            let n = if n > 0 {
                n
            } else {
                buf.fill(b'x');
                buf.len()
            };
            self.consumed.set(self.consumed.get() + n as u64);
            Ok(n)
        }
    }
    let consumed = Rc::new(Cell::new(0));
    let input = Endless {
        head: io::Cursor::new(
            b"Handle,Title,Body (HTML),Variant Price\nmoss,Moss,\"<p>never closed\n".to_vec(),
        ),
        consumed: Rc::clone(&consumed),
    };
    let limit = 64 * 1024;
    let err = ProductReader::with_limits(input, limit, MAX_ROWS_PER_PRODUCT)
        .expect("header")
        .next()
        .expect("an item")
        .expect_err("refused");
    assert!(matches!(err, ReadError::UnterminatedQuote { .. }), "{err}");
    assert_eq!(err.line(), 2);
    assert!(err.to_string().contains("check the Body (HTML) column"));
    assert!(
        consumed.get() < limit + 64 * 1024,
        "read {} bytes",
        consumed.get()
    );
}

#[test]
fn semicolon_delimited_file_is_rejected_with_advice_to_export_with_commas() {
    let input: Vec<u8> = bytes(TEMPLATE)
        .into_iter()
        .map(|b| if b == b',' { b';' } else { b })
        .collect();
    let err = error(&input);
    assert!(
        matches!(
            err,
            ReadError::Delimiter {
                delimiter: b';',
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.line(), 1);
    assert_eq!(
        err.to_string(),
        "line 1: the file uses ';' as its delimiter; export it again as comma-separated \
         (Shopify's own export always is)"
    );
}

#[test]
fn tab_delimited_file_is_rejected_with_advice_to_export_with_commas() {
    let input: Vec<u8> = bytes(LEGACY)
        .into_iter()
        .map(|b| if b == b',' { b'\t' } else { b })
        .collect();
    let err = error(&input);
    assert!(
        matches!(
            err,
            ReadError::Delimiter {
                delimiter: b'\t',
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("line 1: the file uses tabs as its delimiter")
    );
}

#[test]
fn non_utf8_byte_is_rejected_naming_its_line_and_byte_offset() {
    // "Brown" with a Latin-1 ö, as a spreadsheet saving in Windows-1252 writes it.
    let legacy = bytes(LEGACY);
    let input = replace_once(&legacy, b"Brown clay pots", b"Br\xF6wn clay pots");
    let offset = 3799 + 2;
    assert_eq!(input[offset], 0xF6);
    let err = error(&input);
    let ReadError::InvalidUtf8 {
        line,
        record,
        byte_offset,
        byte,
    } = err
    else {
        panic!("unexpected error {err}")
    };
    assert_eq!(
        (line, record, byte_offset, byte),
        (12, 7, offset as u64, 0xF6)
    );
    assert!(err.to_string().starts_with(
        "line 12 (spreadsheet row 7): byte 0xF6 at byte offset 3801 is not UTF-8; the file \
         must be UTF-8 as Shopify exports it"
    ));

    // The offset is counted in the file as uploaded, byte order mark included.
    let with_bom = [&[0xEF, 0xBB, 0xBF][..], &input].concat();
    let ReadError::InvalidUtf8 { byte_offset, .. } = error(&with_bom) else {
        panic!("utf-8 error expected")
    };
    assert_eq!(byte_offset, offset as u64 + 3);
}

#[test]
fn utf8_sequence_cut_short_at_the_end_of_the_file_is_rejected() {
    let input = b"Handle,Title,Variant Price\nmoss,Mo\xC3";
    let err = error(input);
    assert!(
        matches!(
            err,
            ReadError::InvalidUtf8 {
                line: 2,
                byte_offset: 34,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn header_without_shopify_columns_is_rejected_listing_what_is_missing() {
    let err = error(b"Name,Colour,Stock\nMoss,green,3\n");
    assert!(matches!(err, ReadError::MissingColumns { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "line 1: this does not look like a Shopify product export: the header lacks a handle \
         column (\"Handle\" or \"URL handle\"), a \"Title\" or \"Option1 Value\" column and a \
         quantity or price column (\"Variant Inventory Qty\", \"Inventory quantity\", \
         \"Variant Price\" or \"Price\"); export the products from Shopify (Products → Export) \
         and upload that file"
    );
    let err = error(b"Handle,Title\nmoss,Moss\n");
    assert!(
        err.to_string().contains("lacks a quantity or price column"),
        "{err}"
    );
}

#[test]
fn empty_file_is_rejected() {
    for input in [&b""[..], &[0xEF, 0xBB, 0xBF][..], &b"\r\n\n"[..]] {
        let err = error(input);
        assert!(matches!(err, ReadError::Empty), "{err}");
        assert_eq!(err.line(), 1);
        assert!(err.to_string().starts_with("line 1: the file is empty"));
    }
}

#[test]
fn header_only_file_has_no_products() {
    let input = b"Handle,Title,Option1 Value,Variant Inventory Qty\n";
    assert!(products(input).is_empty());
}

#[test]
fn fractional_quantity_is_rejected_on_the_line_its_cell_is_on() {
    // black-armchairs starts on line 3, but its description spans six lines,
    // so the quantity cell is on line 8.
    let input = replace_once(&bytes(LEGACY), b"\"\",0.0,,6,deny", b"\"\",0.0,,6.5,deny");
    let err = error(&input);
    assert_eq!(err.line(), 8);
    assert_eq!(err.record(), Some(3));
    assert_eq!(
        err.to_string(),
        "line 8 (spreadsheet row 3): the Variant Inventory Qty column holds \"6.5\", which is \
         not a whole number of items; stock is counted in whole items (negative numbers are \
         fine for oversold stock)"
    );
}

#[test]
fn negative_quantity_is_oversold_stock_and_accepted() {
    let input = replace_once(
        &bytes(LEGACY),
        b",0.0,,0,deny,manual,25.99",
        b",0.0,,-2,deny,manual,25.99",
    );
    let products = products(&input);
    let can = find(&products, "watering-can");
    assert_eq!(can.variants[0].inventory_quantity, Some(-2));
}

#[test]
fn unparseable_price_is_rejected_naming_line_column_and_value() {
    let input = replace_once(&bytes(LEGACY), b",69.99,85.00,", b",$69.99,85.00,");
    let err = error(&input);
    assert_eq!(err.line(), 2);
    assert_eq!(
        err.to_string(),
        "line 2 (spreadsheet row 2): the Variant Price column holds \"$69.99\", which is not a \
         price such as 19.99; write only the number, without a currency symbol or code"
    );
}

#[test]
fn unparseable_image_position_and_published_flag_are_rejected() {
    let input = replace_once(&bytes(TEMPLATE), b"1500,4,Large", b"1500,fourth,Large");
    let err = error(&input);
    assert_eq!(err.line(), 17);
    assert!(
        err.to_string()
            .contains("the Image Position column holds \"fourth\""),
        "{err}"
    );

    let input = b"Handle,Title,Published,Variant Price\nmoss,Moss,yes,1\n";
    let err = error(input);
    assert!(
        err.to_string()
            .contains("the Published column holds \"yes\", which is not TRUE or FALSE")
    );
}

#[test]
fn handle_that_reappears_after_another_product_is_rejected_naming_both_lines() {
    let legacy = bytes(LEGACY);
    let second_line_end = legacy[..]
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .map(|(i, _)| i)
        .expect("two lines");
    let header_end = legacy.iter().position(|b| *b == b'\n').expect("header");
    let floor_lamp_row = &legacy[header_end + 1..=second_line_end];
    let input = [&legacy[..], floor_lamp_row].concat();
    let err = error(&input);
    assert_eq!(
        err.to_string(),
        "line 28 (spreadsheet row 23): the handle \"floor-lamp\" appears again here, but that \
         product started on line 2 and other products came in between; keep all rows of a \
         product together, one after another"
    );
}

#[test]
fn row_without_a_handle_is_rejected() {
    let input = b"Handle,Title,Option1 Value,Variant Price\nmoss,Moss,DK,1\n,,Sock,2\n";
    let err = error(input);
    assert!(
        matches!(err, ReadError::MissingHandle { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("the Handle column is empty"));
}

#[test]
fn handle_only_row_adds_nothing() {
    let input = b"Handle,Title,Option1 Value,Variant Price\nmoss,Moss,DK,1\nmoss,,,\n";
    let products = products(input);
    assert_eq!(products[0].variants.len(), 1);
    assert!(products[0].images.is_empty());
}

#[test]
fn product_with_more_rows_than_the_limit_is_rejected() {
    let mut input = b"Handle,Title,Option1 Value,Variant Price\n".to_vec();
    for i in 0..5 {
        input.extend_from_slice(format!("moss,Moss,Base {i},1\n").as_bytes());
    }
    let err = ProductReader::with_limits(&input[..], MAX_ROW_BYTES, 4)
        .expect("header")
        .collect::<Result<Vec<_>, _>>()
        .expect_err("too many rows");
    assert!(
        matches!(err, ReadError::ProductTooLarge { line: 6, .. }),
        "{err}"
    );
}

#[test]
fn unquoted_row_longer_than_the_limit_is_rejected() {
    let mut input = b"Handle,Title,Variant Price\nmoss,".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    let err = ProductReader::with_limits(&input[..], 1024, MAX_ROWS_PER_PRODUCT)
        .expect("header")
        .collect::<Result<Vec<_>, _>>()
        .expect_err("too long");
    assert!(
        matches!(
            err,
            ReadError::RowTooLarge {
                line: 2,
                record: 2,
                limit: 1024
            }
        ),
        "{err}"
    );
}

#[test]
fn two_header_columns_for_one_field_are_rejected() {
    let err = error(b"Handle,URL handle,Title,Price\nmoss,moss,Moss,1\n");
    assert_eq!(
        err.to_string(),
        "line 1: the header has two columns for the same thing, \"Handle\" (column 1) and \"URL \
         handle\" (column 2); delete one of them"
    );
}

// ------------------------------------------------------------------- ID columns

#[test]
fn id_columns_are_read_as_u64_from_plain_numbers_and_gids_above_two_to_the_53() {
    let input = "ID,Handle,Title,Option1 Name,Option1 Value,Variant ID,Variant Inventory Item ID,Variant Price\n\
        gid://shopify/Product/9007199254740993,moss,Moss,Base,Fingering,gid://shopify/ProductVariant/9007199254740995,gid://shopify/InventoryItem/18446744073709551615,28.00\n\
        ,moss,,,DK,9007199254740997,49148385706175,30.50\n";
    let products = products(input.as_bytes());
    let moss = &products[0];
    assert_eq!(moss.product_id, Some(9_007_199_254_740_993));
    let ids: Vec<_> = moss
        .variants
        .iter()
        .map(|v| (v.variant_id, v.inventory_item_id))
        .collect();
    assert_eq!(
        ids,
        [
            (Some(9_007_199_254_740_995), Some(u64::MAX)),
            (Some(9_007_199_254_740_997), Some(49_148_385_706_175)),
        ]
    );
    assert_eq!(moss.variants[1].price, Some(dec("30.50")));
}

#[test]
fn gid_of_the_wrong_resource_is_rejected() {
    let input = "Handle,Title,Option1 Value,Variant ID,Variant Price\n\
        moss,Moss,DK,gid://shopify/Product/1,1\n";
    let err = error(input.as_bytes());
    assert!(
        err.to_string().contains(
            "the Variant ID column holds \"gid://shopify/Product/1\", which is not a Shopify \
             variant ID; this GID names a Product"
        ),
        "{err}"
    );
}

// ------------------------------------------------------------------- streaming

/// Writes a product export on the fly: a header, then products of four rows
/// (three bases and an image-only row), every product the same size, so the
/// test knows where each one ends without keeping anything.
struct GeneratedExport {
    products: u64,
    next: u64,
    chunk: Vec<u8>,
    at: usize,
    consumed: Rc<Cell<u64>>,
}

const GENERATED_HEADER: &[u8] =
    b"Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant Inventory Qty,Variant Price,Image Src,Image Position\n";

fn generated_product(index: u64) -> Vec<u8> {
    format!(
        "colorway-{index:06},Colorway {index:06},\"<p>Hand-dyed, lot {index:06}.</p>\n<p>Washes well.</p>\",Base,Merino Fingering,{q1:02},28.00,https://example.com/{index:06}-a.jpg,1\n\
         colorway-{index:06},,,,Merino DK,{q2:02},30.50,,\n\
         colorway-{index:06},,,,Sock with Nylon,-{q3:01},29.75,,\n\
         colorway-{index:06},,,,,,,https://example.com/{index:06}-b.jpg,2\n",
        q1 = index % 100,
        q2 = (index * 7) % 100,
        q3 = index % 10,
    )
    .into_bytes()
}

impl Read for GeneratedExport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.chunk.len() {
            if self.next == self.products {
                return Ok(0);
            }
            self.chunk = generated_product(self.next);
            self.at = 0;
            self.next += 1;
        }
        let n = (self.chunk.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn two_hundred_thousand_rows_stream_holding_one_product_at_a_time() {
    let products = 50_000;
    let product_bytes = generated_product(0).len() as u64;
    assert_eq!(generated_product(products - 1).len() as u64, product_bytes);
    let consumed = Rc::new(Cell::new(0));
    let input = io::Cursor::new(GENERATED_HEADER).chain(GeneratedExport {
        products,
        next: 0,
        chunk: Vec::new(),
        at: 0,
        consumed: Rc::clone(&consumed),
    });
    let mut reader = ProductReader::new(input).expect("header");
    let header_bytes = GENERATED_HEADER.len() as u64;
    // The csv parser's buffer plus the scanner's three-byte peek.
    let slack = 8 * 1024 + 3;

    let mut count = 0u64;
    let mut quantity = 0i64;
    while let Some(product) = reader.next() {
        let product = product.expect("generated file is valid");
        assert_eq!(product.handle, format!("colorway-{count:06}"));
        assert_eq!(product.variants.len(), 3);
        assert_eq!(product.images.len(), 2);
        assert_eq!(product.line, 2 + count * 5, "four rows, five lines");
        quantity += product
            .variants
            .iter()
            .filter_map(|v| v.inventory_quantity)
            .sum::<i64>();
        count += 1;
        // By structure: all the reader holds is the next product's first row.
        if count < products {
            assert_eq!(reader.pending.as_ref().map(|p| p.rows), Some(1));
            assert_eq!(
                reader.pending.as_ref().map(|p| p.product.variants.len()),
                Some(1)
            );
        }
        // By bytes: it has read no further than one row past this product,
        // plus one buffer.
        let read = header_bytes + consumed.get();
        assert!(
            read <= header_bytes + (count + 1) * product_bytes + slack,
            "after product {count} the reader had taken {read} bytes"
        );
        assert_eq!(reader.csv.get_ref().offset(), header_bytes + consumed.get());
    }
    assert_eq!(count, products);
    assert_eq!(reader.rows_read(), 200_000);
    let expected: i64 = (0..products as i64)
        .map(|i| i % 100 + (i * 7) % 100 - i % 10)
        .sum();
    assert_eq!(quantity, expected);
}
