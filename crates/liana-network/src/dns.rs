//! A minimal DNS responder for the containers of one network (like aardvark-dns): A
//! records for container names, answered on the network's gateway address. Other
//! names are forwarded, query and answer untouched, to upstream name servers (the
//! host's, a local stub resolver on 127.0.0.53 included: the responder runs on the
//! host), each forward on a thread of its own; with no upstream they get REFUSED, so
//! that resolvers move on to the next `nameserver` of their /etc/resolv.conf.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Forwards in flight at most; beyond, SERVFAIL at once.
const MAX_FORWARDS: usize = 128;
/// How long one upstream has to answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// A parsed question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Transaction id.
    pub id: u16,
    /// The name asked, lower case, without the final dot.
    pub name: String,
    /// Query type (1 = A).
    pub qtype: u16,
    /// Recursion desired.
    pub rd: bool,
    /// End of the question section in the packet.
    end: usize,
}

/// Parses a standard query with one question (None for anything else).
pub fn parse_query(b: &[u8]) -> Option<Query> {
    if b.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([b[2], b[3]]);
    let qd = u16::from_be_bytes([b[4], b[5]]);
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qd != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let n = *b.get(i)? as usize;
        i += 1;
        if n == 0 {
            break;
        }
        if n > 63 {
            return None;
        }
        let l = b.get(i..i + n)?;
        labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
        i += n;
    }
    let qtype = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]);
    let _class = u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]);
    Some(Query {
        id: u16::from_be_bytes([b[0], b[1]]),
        name: labels.join("."),
        qtype,
        rd: flags & 0x0100 != 0,
        end: i + 4,
    })
}

/// Response codes.
pub const NOERROR: u16 = 0;
/// Name error.
pub const NXDOMAIN: u16 = 3;
/// Server failure.
pub const SERVFAIL: u16 = 2;
/// Refused.
pub const REFUSED: u16 = 5;

/// The reply to `q` (asked in `packet`) with `answers` (A records) and `rcode`.
pub fn reply(packet: &[u8], q: &Query, answers: &[Ipv4Addr], rcode: u16) -> Vec<u8> {
    let mut flags: u16 = 0x8000 | 0x0400 | rcode;
    if q.rd {
        flags |= 0x0100;
    }
    let mut out = Vec::with_capacity(q.end + 16 * answers.len());
    out.extend_from_slice(&q.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&packet[12..q.end]);
    for a in answers {
        // Name: a pointer to the question's name at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        out.extend_from_slice(&5u32.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    out
}

/// Asks `upstreams` in turn for `packet` and relays the first answer (with the query's
/// id) to `client` through `sock`; SERVFAIL when none answers.
fn forward(
    sock: &UdpSocket,
    packet: &[u8],
    q: &Query,
    client: SocketAddr,
    upstreams: &[SocketAddr],
) {
    let mut buf = [0u8; 4096];
    for up in upstreams {
        let local: SocketAddr = if up.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(s) = UdpSocket::bind(local) else {
            continue;
        };
        if s.set_read_timeout(Some(FORWARD_TIMEOUT)).is_err()
            || s.connect(up).is_err()
            || s.send(packet).is_err()
        {
            continue;
        }
        let deadline = std::time::Instant::now() + FORWARD_TIMEOUT;
        while std::time::Instant::now() < deadline {
            match s.recv(&mut buf) {
                Ok(n) if n >= 12 && buf[..2] == packet[..2] => {
                    let _ = sock.send_to(&buf[..n], client);
                    return;
                }
                Ok(_) => continue, // not the answer to this query
                Err(_) => break,
            }
        }
    }
    let _ = sock.send_to(&reply(packet, q, &[], SERVFAIL), client);
}

/// Serves queries on `sock` with `lookup` (name → addresses, None when the name is
/// not ours), forwarding other names to `upstreams` (REFUSED when there are none),
/// until `keep_going` says no (checked at least every second).
pub fn serve(
    sock: &UdpSocket,
    mut lookup: impl FnMut(&str) -> Option<Vec<Ipv4Addr>>,
    upstreams: &[SocketAddr],
    mut keep_going: impl FnMut() -> bool,
) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;
    let own = sock.local_addr()?;
    let upstreams: Arc<Vec<SocketAddr>> =
        Arc::new(upstreams.iter().copied().filter(|u| *u != own).collect());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut buf = [0u8; 1500];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let Some(q) = parse_query(&buf[..n]) else {
                    continue;
                };
                let out = match lookup(&q.name) {
                    // Ours: A records; other types get an empty NOERROR.
                    Some(ips) if q.qtype == 1 => reply(&buf[..n], &q, &ips, NOERROR),
                    Some(_) => reply(&buf[..n], &q, &[], NOERROR),
                    None if upstreams.is_empty() => reply(&buf[..n], &q, &[], REFUSED),
                    None if in_flight.load(Ordering::Relaxed) >= MAX_FORWARDS => {
                        reply(&buf[..n], &q, &[], SERVFAIL)
                    }
                    None => {
                        let (sock, packet) = (sock.try_clone()?, buf[..n].to_vec());
                        let (ups, count) = (upstreams.clone(), in_flight.clone());
                        count.fetch_add(1, Ordering::Relaxed);
                        std::thread::spawn(move || {
                            forward(&sock, &packet, &q, from, &ups);
                            count.fetch_sub(1, Ordering::Relaxed);
                        });
                        continue;
                    }
                };
                let _ = sock.send_to(&out, from);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        if !keep_going() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p
    }

    #[test]
    fn query_and_reply() {
        let p = query("Web.dns", 1);
        let q = parse_query(&p).unwrap();
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype, q.rd),
            (0x1234, "web.dns", 1, true)
        );
        let r = reply(&p, &q, &[Ipv4Addr::new(10, 89, 0, 2)], NOERROR);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 89, 0, 2]);
        assert_eq!(u16::from_be_bytes([r[2], r[3]]) & 0xf, NOERROR);
        let r = reply(&p, &q, &[], REFUSED);
        assert_eq!(u16::from_be_bytes([r[2], r[3]]) & 0xf, REFUSED);
        assert!(parse_query(&p[..5]).is_none());
        assert!(parse_query(&r).is_none(), "a reply is not a query");
    }

    #[test]
    fn serves_on_loopback() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut n = 0;
            serve(
                &s,
                |name| (name == "web").then(|| vec![Ipv4Addr::new(10, 89, 0, 2)]),
                &[],
                || {
                    n += 1;
                    n < 3
                },
            )
            .unwrap();
        });
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(&query("web", 1), addr).unwrap();
        let mut b = [0u8; 512];
        let n = c.recv(&mut b).unwrap();
        assert_eq!(&b[n - 4..n], &[10, 89, 0, 2]);
        c.send_to(&query("elsewhere", 1), addr).unwrap();
        let n = c.recv(&mut b).unwrap();
        assert_eq!(u16::from_be_bytes([b[2], b[3]]) & 0xf, REFUSED);
        assert!(n > 12);
        t.join().unwrap();
    }

    #[test]
    fn forwards_other_names_upstream() {
        // An upstream on loopback answering every A query with 192.0.2.77.
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up_addr = up.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 512];
            while let Ok((n, from)) = up.recv_from(&mut b) {
                let q = parse_query(&b[..n]).unwrap();
                let _ = up.send_to(
                    &reply(&b[..n], &q, &[Ipv4Addr::new(192, 0, 2, 77)], NOERROR),
                    from,
                );
            }
        });
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap(); // never answers
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        let ups = [addr, dead.local_addr().unwrap(), up_addr];
        let t = std::thread::spawn(move || {
            let mut n = 0;
            serve(
                &s,
                |_| None,
                &ups,
                || {
                    n += 1;
                    n < 5
                },
            )
            .unwrap();
        });
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        c.send_to(&query("outside.example", 1), addr).unwrap();
        let mut b = [0u8; 512];
        let n = c.recv(&mut b).unwrap();
        assert_eq!(&b[..2], &[0x12, 0x34]);
        assert_eq!(&b[n - 4..n], &[192, 0, 2, 77]);
        t.join().unwrap();
    }
}
