//! Parsing of proxy request heads: `CONNECT host:port` and absolute-form `GET http://host/...`,
//! plus the rewrite of an absolute-form request to origin form for the upstream.

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes of the buffer the head took.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Partial,
    Complete(Head),
    Invalid(String),
}

pub fn parse_head(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEAD {
                Parsed::Invalid(format!("request head larger than {MAX_HEAD} bytes"))
            } else {
                Parsed::Partial
            }
        }
        Ok(httparse::Status::Complete(len)) => Parsed::Complete(Head {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
            len,
        }),
        Err(e) => Parsed::Invalid(format!("malformed request: {e}")),
    }
}

/// Splits `host:port` (`[v6]:port` too). The port is required when `default_port` is `None`.
pub fn split_authority(auth: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    if auth.contains('@') {
        return Err("credentials in the authority are refused".into());
    }
    let port_of = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("bad port in `{auth}`")),
    };
    if let Some(rest) = auth.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 literal in `{auth}`"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((format!("[{host}]"), port_of(p)?)),
            None if after.is_empty() => default_port
                .map(|p| (format!("[{host}]"), p))
                .ok_or_else(|| format!("`{auth}` has no port")),
            None => Err(format!("bad authority `{auth}`")),
        };
    }
    match auth.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_string(), port_of(p)?)),
        Some(_) => Err(format!("IPv6 literals need brackets: `{auth}`")),
        None => default_port
            .map(|p| (auth.to_string(), p))
            .ok_or_else(|| format!("`{auth}` has no port")),
    }
}

/// An absolute-form `http://` target: (host, port, origin-form path).
pub fn split_absolute(target: &str) -> Result<(String, u16, String), String> {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        return Err("https:// must go through CONNECT".into());
    } else if target.starts_with('/') {
        return Err("origin-form request: this is a proxy, send an absolute URL or CONNECT".into());
    } else {
        return Err(format!(
            "unsupported request target `{}`",
            target.chars().take(80).collect::<String>()
        ));
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(split);
    if auth.is_empty() {
        return Err("empty host".into());
    }
    let (host, port) = split_authority(auth, Some(80))?;
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('/') {
        path.split('#').next().unwrap_or("/").to_string()
    } else {
        format!("/{}", path.split('#').next().unwrap_or(""))
    };
    Ok((host, port, path))
}

/// Builds the origin-form request for the upstream: proxy and connection headers removed,
/// `Connection: close` set, `Host` kept (or added).
pub fn rewrite(head: &Head, path: &str, host_header: &str) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", head.method, path).into_bytes();
    let mut has_host = false;
    for (name, value) in &head.headers {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "proxy-connection" | "proxy-authorization" | "connection" | "keep-alive"
        ) {
            continue;
        }
        has_host |= lower == "host";
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        out.extend_from_slice(format!("Host: {host_header}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        match parse_head(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\nxyz") {
            Parsed::Complete(h) => {
                assert_eq!(h.method, "CONNECT");
                assert_eq!(h.target, "a.example:443");
                assert_eq!(h.len, 55);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_head(b"GET http://a/ HTTP/1.1\r\nHost: a"),
            Parsed::Partial
        );
        assert!(matches!(
            parse_head(b"\x16\x03\x01garbage\r\n\r\n"),
            Parsed::Invalid(_)
        ));
        let big = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(
            parse_head(&[b"GET /".as_slice(), &big].concat()),
            Parsed::Invalid(_) | Parsed::Partial
        ));
    }

    #[test]
    fn authorities_and_targets() {
        let ok = [
            ("a.example:443", None, ("a.example", 443)),
            ("[::1]:8080", None, ("[::1]", 8080)),
            ("a.example", Some(80), ("a.example", 80)),
        ];
        for (auth, def, (h, p)) in ok {
            assert_eq!(
                split_authority(auth, def).unwrap(),
                (h.to_string(), p),
                "{auth}"
            );
        }
        for bad in [
            "a.example",
            "a.example:0",
            "a.example:x",
            "user@evil:443",
            "::1:443",
            "[::1",
        ] {
            assert!(split_authority(bad, None).is_err(), "{bad}");
        }
        assert_eq!(
            split_absolute("http://a.example/x?y").unwrap(),
            ("a.example".into(), 80, "/x?y".into())
        );
        assert_eq!(
            split_absolute("HTTP://a.example:8080").unwrap(),
            ("a.example".into(), 8080, "/".into())
        );
        assert_eq!(
            split_absolute("http://a.example?q").unwrap(),
            ("a.example".into(), 80, "/?q".into())
        );
        for bad in [
            "https://a.example/",
            "/index.html",
            "ftp://a/",
            "http://allowed.example@evil.example/",
            "http:///x",
        ] {
            assert!(split_absolute(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rewrite_strips_proxy_headers() {
        let Parsed::Complete(h) = parse_head(
            b"GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\nProxy-Authorization: x\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
        ) else {
            panic!()
        };
        let out = String::from_utf8(rewrite(&h, "/p", "a.example")).unwrap();
        assert_eq!(
            out,
            "GET /p HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }
}
