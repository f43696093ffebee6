//! Just enough TLS to read the server name a client asks for: reassembles the ClientHello from
//! handshake records and extracts the SNI `host_name`. Ambiguous hellos (two SNI extensions, two
//! host names) are malformed, because different servers would pick different ones.

/// Largest ClientHello accepted (post-quantum key shares make them a few KiB).
pub const MAX_HELLO: usize = 64 * 1024;

/// The outcome of looking at the first bytes a client sent through a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    NeedMore,
    NotTls,
    Malformed(&'static str),
    ClientHello { sni: Option<String> },
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| b[0] as usize)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| (b[0] as usize) << 8 | b[1] as usize)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// Parses the start of a tunnel's client-to-server stream.
pub fn parse(buf: &[u8]) -> Hello {
    let mut hs: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        if buf.len() < pos + 5 {
            return if buf.is_empty() || buf[0] == 0x16 {
                Hello::NeedMore
            } else {
                Hello::NotTls
            };
        }
        let rec = &buf[pos..pos + 5];
        if rec[0] != 0x16 {
            return if pos == 0 {
                Hello::NotTls
            } else {
                Hello::Malformed("non-handshake record inside the ClientHello")
            };
        }
        if rec[1] != 3 {
            return if pos == 0 {
                Hello::NotTls
            } else {
                Hello::Malformed("bad record version")
            };
        }
        let len = (rec[3] as usize) << 8 | rec[4] as usize;
        if len == 0 || len > 16384 + 2048 {
            return Hello::Malformed("bad record length");
        }
        if buf.len() < pos + 5 + len {
            return Hello::NeedMore;
        }
        hs.extend_from_slice(&buf[pos + 5..pos + 5 + len]);
        pos += 5 + len;
        if hs.len() > MAX_HELLO {
            return Hello::Malformed("ClientHello too large");
        }
        if hs.len() >= 4 {
            if hs[0] != 1 {
                return Hello::Malformed("first handshake message is not a ClientHello");
            }
            let body_len = (hs[1] as usize) << 16 | (hs[2] as usize) << 8 | hs[3] as usize;
            if body_len > MAX_HELLO {
                return Hello::Malformed("ClientHello too large");
            }
            if hs.len() >= 4 + body_len {
                return parse_body(&hs[4..4 + body_len]);
            }
        }
    }
}

fn parse_body(body: &[u8]) -> Hello {
    let mut r = Reader { b: body };
    let fields = (|| {
        r.take(2)?; // legacy_version
        r.take(32)?; // random
        r.vec8()?; // session id
        r.vec16()?; // cipher suites
        r.vec8()?; // compression methods
        Some(())
    })();
    if fields.is_none() {
        return Hello::Malformed("truncated ClientHello");
    }
    if r.b.is_empty() {
        return Hello::ClientHello { sni: None };
    }
    let Some(exts) = r.vec16() else {
        return Hello::Malformed("truncated extensions");
    };
    let mut e = Reader { b: exts };
    let mut sni: Option<String> = None;
    let mut seen_sni = false;
    while !e.b.is_empty() {
        let (Some(kind), Some(data)) = (e.u16(), e.vec16()) else {
            return Hello::Malformed("truncated extension");
        };
        if kind != 0 {
            continue;
        }
        if seen_sni {
            return Hello::Malformed("two server_name extensions");
        }
        seen_sni = true;
        let mut s = Reader { b: data };
        let Some(list) = s.vec16() else {
            return Hello::Malformed("truncated server_name");
        };
        let mut l = Reader { b: list };
        while !l.b.is_empty() {
            let (Some(name_type), Some(name)) = (l.u8(), l.vec16()) else {
                return Hello::Malformed("truncated server_name entry");
            };
            if name_type != 0 {
                continue;
            }
            if sni.is_some() {
                return Hello::Malformed("two host names in server_name");
            }
            if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
                return Hello::Malformed("server_name is not an ASCII host name");
            }
            sni = Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    Hello::ClientHello { sni }
}

/// A syntactically valid TLS 1.3-style ClientHello record naming `sni` (for probes and tests).
#[doc(hidden)]
pub fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let n = name.as_bytes();
        let mut entry = vec![0u8];
        entry.extend_from_slice(&(n.len() as u16).to_be_bytes());
        entry.extend_from_slice(n);
        let mut list = (entry.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&entry);
        exts.extend_from_slice(&0u16.to_be_bytes());
        exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
        exts.extend_from_slice(&list);
    }
    // supported_versions: TLS 1.3, TLS 1.2
    exts.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A fatal `access_denied` alert, sent before closing a refused tunnel.
pub const ALERT_ACCESS_DENIED: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31];
/// A fatal `internal_error` alert, sent when the destination could not be reached.
pub const ALERT_INTERNAL_ERROR: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sni() {
        let h = client_hello(Some("api.example.com"));
        assert_eq!(
            parse(&h),
            Hello::ClientHello {
                sni: Some("api.example.com".into())
            }
        );
        assert_eq!(parse(&client_hello(None)), Hello::ClientHello { sni: None });
    }

    #[test]
    fn partial_and_fragmented_input() {
        let h = client_hello(Some("a.example"));
        for cut in [0, 1, 4, 5, 20, h.len() - 1] {
            assert_eq!(parse(&h[..cut]), Hello::NeedMore, "cut at {cut}");
        }
        // Same handshake split over two records.
        let hs = &h[5..];
        let (a, b) = hs.split_at(10);
        let mut two = vec![0x16, 3, 1];
        two.extend_from_slice(&(a.len() as u16).to_be_bytes());
        two.extend_from_slice(a);
        two.extend_from_slice(&[0x16, 3, 1]);
        two.extend_from_slice(&(b.len() as u16).to_be_bytes());
        two.extend_from_slice(b);
        assert_eq!(
            parse(&two),
            Hello::ClientHello {
                sni: Some("a.example".into())
            }
        );
    }

    #[test]
    fn refuses_non_tls_and_ambiguous_hellos() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Hello::NotTls);
        assert_eq!(parse(b"SSH-2.0-OpenSSH_9.2\r\n"), Hello::NotTls);
        // Duplicate the SNI extension.
        let h = client_hello(Some("a.example"));
        let body_start = 5 + 4;
        let mut body = h[body_start..].to_vec();
        let ext_off = 2 + 32 + 1 + 4 + 2;
        let exts_len = u16::from_be_bytes([body[ext_off], body[ext_off + 1]]) as usize;
        let exts = body[ext_off + 2..ext_off + 2 + exts_len].to_vec();
        let sni_len = 4 + u16::from_be_bytes([exts[2], exts[3]]) as usize;
        let mut doubled = exts[..sni_len].to_vec();
        doubled.extend_from_slice(&exts);
        body.truncate(ext_off);
        body.extend_from_slice(&(doubled.len() as u16).to_be_bytes());
        body.extend_from_slice(&doubled);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        assert_eq!(parse(&rec), Hello::Malformed("two server_name extensions"));
    }
}
