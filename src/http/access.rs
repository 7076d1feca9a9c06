//! Who may use the server: the Host check, the browser Origin check and the optional token.
//!
//! [`check`] guards every data route. Host: a server listening on loopback only answers requests
//! that name a loopback host (or a host given with `--allow-origin`), so a web page that rebinds
//! its DNS name to 127.0.0.1 is refused. Origin: a request without `Origin` is from a non-browser
//! client and allowed; a browser `Origin` must be the server's own host (`http://` or `https://`)
//! or an `--allow-origin`. The own host is the `Host` header, or the host a reverse proxy forwarded
//! (`X-Forwarded-Host`, `Forwarded: host=`) when the connection comes from a `--trust-proxy`
//! address: from anyone else those headers are ignored, since any client can send them.
//! Token: `?token=` or `Authorization: Bearer`, compared in constant time, never logged.

use actix_web::http::header;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use super::error::ApiError;

use super::AppState;

/// Every check a data route needs: Host, Origin, token.
pub fn check(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    check_host(req, state)?;
    check_origin(req, state)?;
    check_token(req, state)
}

/// On a loopback-only server, refuses requests naming a non-loopback host (DNS rebinding).
fn check_host(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if !state.config.loopback_only {
        return Ok(());
    }
    // HTTP/1.0 clients may send no Host; browsers always do.
    let Some(host) = req.headers().get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or("");
    let name = host_name(host);
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let allowed = state.config.allow_origins.iter().any(|origin| {
        let origin_host = origin.split_once("://").map_or(origin.as_str(), |(_, h)| h);
        host_name(origin_host.trim_end_matches('/')).eq_ignore_ascii_case(name)
    });
    if loopback || allowed {
        Ok(())
    } else {
        Err(ApiError::ForbiddenHost(host.to_owned()))
    }
}

/// The name part of a `Host` value: `[::1]:7070` -> `::1`, `example.com:80` -> `example.com`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Checks the token, if one is configured.
fn check_token(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.config.token.as_deref() else {
        return Ok(());
    };
    let given = bearer(req).or_else(|| query_token(req));
    match given {
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Checks the browser Origin, if any.
fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    if state
        .config
        .allow_origins
        .iter()
        .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    // Same host: the Origin's host[:port] equals the Host the browser connected to (or the one a
    // trusted reverse proxy forwarded). The scheme is not compared: the server's own pages are
    // `https://` with --tls-cert or behind a TLS proxy, `http://` otherwise, and one port speaks
    // only one of them.
    let origin_host = origin.split_once("://").map(|(_, host)| host).unwrap_or("");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let forwarded = if from_trusted_proxy(req, state) {
        forwarded_hosts(req)
    } else {
        [None, None]
    };
    let same = !origin_host.is_empty()
        && std::iter::once(host)
            .chain(forwarded)
            .flatten()
            .any(|host| host.eq_ignore_ascii_case(origin_host));
    if same {
        Ok(())
    } else {
        Err(ApiError::ForbiddenOrigin(origin.to_owned()))
    }
}

/// Whether the TCP peer is one of the `--trust-proxy` addresses.
fn from_trusted_proxy(req: &HttpRequest, state: &AppState) -> bool {
    let proxies = &state.config.trust_proxies;
    !proxies.is_empty()
        && req
            .peer_addr()
            .is_some_and(|peer| proxies.iter().any(|range| range.contains(peer.ip())))
}

/// The host a proxy forwarded, from `X-Forwarded-Host` and from `Forwarded: host=`. Where a
/// header lists several (one per proxy in a chain), the last is the one the nearest proxy, the
/// trusted one, added.
fn forwarded_hosts(req: &HttpRequest) -> [Option<&str>; 2] {
    let last_of = |name: &str| {
        let value = req.headers().get(name)?.to_str().ok()?;
        value.rsplit(',').next().map(str::trim)
    };
    let x_forwarded = last_of("x-forwarded-host").filter(|h| !h.is_empty());
    let forwarded = last_of("forwarded").and_then(|element| {
        element.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            key.eq_ignore_ascii_case("host")
                .then(|| value.trim_matches('"'))
                .filter(|h| !h.is_empty())
        })
    });
    [x_forwarded, forwarded]
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(req: &HttpRequest) -> Option<String> {
    form_urlencoded_pairs(req.query_string())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// Decoded `key=value` pairs of a query string.
pub fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(super::host_name("[::1]:7070"), "::1");
        assert_eq!(super::host_name("example.com:80"), "example.com");
        assert_eq!(super::host_name("localhost"), "localhost");
    }

    #[test]
    fn forwarded_hosts_are_the_last_of_each_header() {
        let req = actix_web::test::TestRequest::default()
            .insert_header(("X-Forwarded-Host", "evil.example, logs.example.com"))
            .insert_header((
                "Forwarded",
                r#"for=1.2.3.4;host=evil.example, for=10.0.0.1;proto=https;Host="logs.example.com:8443""#,
            ))
            .to_http_request();
        assert_eq!(
            super::forwarded_hosts(&req),
            [Some("logs.example.com"), Some("logs.example.com:8443")]
        );
        let bare = actix_web::test::TestRequest::default()
            .insert_header(("Forwarded", "for=10.0.0.1"))
            .to_http_request();
        assert_eq!(super::forwarded_hosts(&bare), [None, None]);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
