//! Where the simulator may send a delivery: plain `http://` to a loopback
//! address, nothing else. The simulator never sends traffic off the machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

/// The address to POST to, or why the simulator refuses to send there.
///
/// Accepted: `http://` with a host of `localhost`, an address in
/// `127.0.0.0/8`, or `[::1]`. The URL parser normalises numeric forms
/// (`http://2130706433/` is `127.0.0.1`), so the check is made on the host
/// the client would connect to. `localhost` is pinned to `127.0.0.1` by the
/// delivery client rather than looked up.
pub fn loopback_target(uri: &str) -> Result<Url, String> {
    let url = Url::parse(uri.trim()).map_err(|error| format!("not a valid URL ({error})"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{}:// addresses are not delivered by the simulator; only http:// to loopback",
            url.scheme()
        ));
    }
    let host = url.host_str().unwrap_or_default();
    if is_loopback_host(host) {
        Ok(url)
    } else {
        Err(format!(
            "{host} is not a loopback host; the simulator delivers to 127.0.0.1, ::1 or localhost only"
        ))
    }
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_http_addresses_are_accepted() {
        for uri in [
            "http://127.0.0.1:8080/webhooks",
            "http://127.1.2.3/hook",
            "http://localhost:3000/hook",
            "http://LOCALHOST:3000/hook",
            "http://[::1]:9000/hook",
            "http://2130706433:8080/numeric-form-of-127.0.0.1",
        ] {
            assert!(loopback_target(uri).is_ok(), "{uri} should be accepted");
        }
    }

    #[test]
    fn every_other_address_is_refused() {
        for uri in [
            "https://example.com/hook",
            "https://127.0.0.1/hook",
            "http://example.com/hook",
            "http://127.0.0.1.example.com/hook",
            "http://localhost.example.com/hook",
            "http://user@example.com/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest",
            "http://0.0.0.0:8080/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[fe80::1]/hook",
            "pubsub://project:topic",
            "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/x",
            "not a url",
            "",
        ] {
            assert!(loopback_target(uri).is_err(), "{uri} should be refused");
        }
    }
}
