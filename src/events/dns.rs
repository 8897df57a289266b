//! Decoding DNS query names from the payload of a packet a build tried to
//! send to port 53 (UDP), or from a TCP DNS stream (2-byte length prefix).
//!
//! The payload is attacker text: labels are bounded, pointers are refused
//! (a query's question section never needs them), and the result is only
//! ever displayed escaped.

/// The first question's name and type, e.g. `("c2VjcmV0.evil.example", 1)`.
pub fn query_name(payload: &[u8]) -> Option<(String, u16)> {
    // Header: id, flags, qdcount, ancount, nscount, arcount.
    if payload.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([payload[2], payload[3]]);
    let qdcount = u16::from_be_bytes([payload[4], payload[5]]);
    if flags & 0x8000 != 0 || qdcount == 0 {
        return None; // a response, or no question
    }
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    let mut total = 0;
    loop {
        let len = *payload.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 || len > 63 {
            return None;
        }
        let label = payload.get(pos..pos + len)?;
        pos += len;
        total += len + 1;
        if total > 255 || labels.len() >= 127 {
            return None;
        }
        labels.push(
            label
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                        (b as char).to_string()
                    } else {
                        format!("\\{b:03}")
                    }
                })
                .collect(),
        );
    }
    let qtype = u16::from_be_bytes([*payload.get(pos)?, *payload.get(pos + 1)?]);
    Some((labels.join("."), qtype))
}

/// Same for DNS over TCP: a 2-byte length, then the message.
pub fn query_name_tcp(stream: &[u8]) -> Option<(String, u16)> {
    let len = u16::from_be_bytes([*stream.first()?, *stream.get(1)?]) as usize;
    query_name(stream.get(2..2 + len.min(stream.len() - 2))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p
    }

    #[test]
    fn decodes_a_query() {
        assert_eq!(
            query_name(&query("c2VjcmV0.exfil.example", 16)),
            Some(("c2VjcmV0.exfil.example".into(), 16))
        );
        let mut tcp = (query("a.b", 1).len() as u16).to_be_bytes().to_vec();
        tcp.extend(query("a.b", 1));
        assert_eq!(query_name_tcp(&tcp), Some(("a.b".into(), 1)));
    }

    #[test]
    fn refuses_garbage_pointers_and_responses() {
        assert_eq!(query_name(b"short"), None);
        let mut p = query("a.b", 1);
        p[12] = 0xc0; // compression pointer in a question
        assert_eq!(query_name(&p), None);
        let mut r = query("a.b", 1);
        r[2] |= 0x80; // response bit
        assert_eq!(query_name(&r), None);
        let mut t = query("abc", 1);
        t.truncate(14); // label runs past the end
        assert_eq!(query_name(&t), None);
    }

    #[test]
    fn escapes_odd_bytes_in_labels() {
        let mut p = query("ab.c", 1);
        p[13] = 0x1b; // ESC inside the first label
        assert_eq!(query_name(&p).unwrap().0, "\\027b.c");
    }
}
