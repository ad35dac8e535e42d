//! Shopify's webhook signature: base64 of HMAC-SHA256 over the raw body,
//! keyed with the app's secret, in `X-Shopify-Hmac-Sha256`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::CtOutput;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The app's webhook signing secret. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self(secret.as_ref().to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    /// The header value Shopify would send for `body` (used by tests and the
    /// simulator-facing tools).
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Shopify-Hmac-Sha256 header is missing")]
    Missing,
    #[error("the X-Shopify-Hmac-Sha256 header is not a base64 SHA-256 digest")]
    Malformed,
    #[error("the X-Shopify-Hmac-Sha256 header does not match the body")]
    Mismatch,
}

/// A signature parsed from its header: exactly 32 bytes.
#[derive(Clone)]
pub struct HmacSignature([u8; 32]);

impl PartialEq for HmacSignature {
    /// In constant time, as [`HmacSignature::verify`] compares: a comparison
    /// that stops at the first differing byte would tell a forger, by its
    /// timing, how much of a guessed signature is right.
    fn eq(&self, other: &Self) -> bool {
        CtOutput::<HmacSha256>::new(self.0.into()) == CtOutput::new(other.0.into())
    }
}

impl Eq for HmacSignature {}

impl HmacSignature {
    pub fn parse(header: Option<&str>) -> Result<Self, SignatureError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(SignatureError::Missing)?;
        let bytes = STANDARD
            .decode(header)
            .map_err(|_| SignatureError::Malformed)?;
        let digest: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::Malformed)?;
        Ok(Self(digest))
    }

    /// Checks the signature over the raw body in constant time (the MAC's own
    /// comparison), before anything reads the body.
    pub fn verify(&self, secret: &WebhookSecret, body: &[u8]) -> Result<(), SignatureError> {
        let mut mac = secret.mac();
        mac.update(body);
        mac.verify_slice(&self.0)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl fmt::Debug for HmacSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSignature(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        secret: String,
        body: String,
        x_shopify_hmac_sha256: String,
    }

    fn vector() -> Vector {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/webhooks/hmac-vector.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_known_good_vector_verifies() {
        let v = vector();
        let secret = WebhookSecret::new(&v.secret);
        let signature = HmacSignature::parse(Some(&v.x_shopify_hmac_sha256)).unwrap();
        assert_eq!(signature.verify(&secret, v.body.as_bytes()), Ok(()));
        assert_eq!(secret.sign(v.body.as_bytes()), v.x_shopify_hmac_sha256);
    }

    #[test]
    fn a_changed_body_or_secret_is_refused() {
        let v = vector();
        let signature = HmacSignature::parse(Some(&v.x_shopify_hmac_sha256)).unwrap();
        let tampered = v.body.replace("123.45", "0.01");
        assert_eq!(
            signature.verify(&WebhookSecret::new(&v.secret), tampered.as_bytes()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            signature.verify(&WebhookSecret::new("another-secret"), v.body.as_bytes()),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_truncated_and_garbled_signatures_are_refused() {
        let v = vector();
        assert_eq!(HmacSignature::parse(None), Err(SignatureError::Missing));
        assert_eq!(
            HmacSignature::parse(Some("  ")),
            Err(SignatureError::Missing)
        );
        let truncated = &v.x_shopify_hmac_sha256[..20];
        assert_eq!(
            HmacSignature::parse(Some(truncated)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            HmacSignature::parse(Some("not base64!!")),
            Err(SignatureError::Malformed)
        );
        // A valid base64 string of the wrong length is not a SHA-256 digest.
        assert_eq!(
            HmacSignature::parse(Some("QUJD")),
            Err(SignatureError::Malformed)
        );
    }

    /// Refusing a forgery takes as long whether it is wrong from its first
    /// byte or only in its last: the comparison is the MAC's constant-time
    /// one (`subtle`), not a byte-by-byte search. Timed on interleaved rounds
    /// and judged on medians, with a margin wide enough for a busy machine.
    #[test]
    fn a_forgery_is_refused_in_the_same_time_however_much_of_it_is_right() {
        use std::time::Instant;
        let v = vector();
        let secret = WebhookSecret::new(&v.secret);
        let body = v.body.as_bytes();
        let good = HmacSignature::parse(Some(&v.x_shopify_hmac_sha256)).unwrap();
        let mut wrong_first = good.0;
        wrong_first[0] ^= 0x01;
        let mut wrong_last = good.0;
        wrong_last[31] ^= 0x01;
        let forgeries = [HmacSignature(wrong_first), HmacSignature(wrong_last)];

        let mut rounds: [Vec<u128>; 2] = [Vec::new(), Vec::new()];
        for round in 0..60 {
            for i in 0..2 {
                // Alternate which forgery goes first, so neither gains from
                // a warm cache.
                let which = (i + round) % 2;
                let started = Instant::now();
                for _ in 0..200 {
                    let refused = std::hint::black_box(&forgeries[which])
                        .verify(&secret, std::hint::black_box(body));
                    assert_eq!(refused, Err(SignatureError::Mismatch));
                }
                rounds[which].push(started.elapsed().as_nanos());
            }
        }
        let median = |times: &mut Vec<u128>| {
            times.sort_unstable();
            times[times.len() / 2] as f64
        };
        let first = median(&mut rounds[0]);
        let last = median(&mut rounds[1]);
        let ratio = first / last;
        assert!(
            (0.67..1.5).contains(&ratio),
            "wrong first byte {first} ns, wrong last byte {last} ns a round"
        );

        // Comparing two parsed signatures is constant-time too.
        assert_ne!(forgeries[0], good);
        assert_ne!(forgeries[1], good);
        assert_eq!(good.clone(), good);
    }

    #[test]
    fn secrets_and_signatures_are_never_printed() {
        let v = vector();
        let secret = WebhookSecret::new(&v.secret);
        assert!(!format!("{secret:?}").contains(&v.secret));
        let signature = HmacSignature::parse(Some(&v.x_shopify_hmac_sha256)).unwrap();
        assert!(!format!("{signature:?}").contains(&v.x_shopify_hmac_sha256));
    }
}
