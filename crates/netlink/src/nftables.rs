//! Adding and deleting elements of nftables sets and maps, over nfnetlink.
//!
//! Rulesets are best written in nft's own language (`nft -f -`), but starting
//! `nft` costs several milliseconds, most of a container's network setup once
//! its tap is pooled. A container only changes the elements of a few named
//! maps, and that one message type is simple enough to speak directly: a
//! batch (`NFNL_MSG_BATCH_BEGIN`, one `NFT_MSG_NEWSETELEM` or
//! `NFT_MSG_DELSETELEM` per change, `NFNL_MSG_BATCH_END`) that the kernel
//! applies as one transaction, each change acknowledged. An
//! [`NftablesSocket`] carries many batches, as one [`crate::Netlink`] carries
//! many rtnetlink requests.
//!
//! Keys and data are raw register bytes, as the set's type lays them out: a
//! concatenation pads every field to 4 bytes; numbers are big-endian.

use std::os::fd::OwnedFd;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rustix::net::netlink::{NETFILTER, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::NetlinkError;

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// The family of an nftables table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFamily {
    /// `ip`: IPv4 only.
    Ip,
    /// `ip6`: IPv6 only.
    Ip6,
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `bridge`: frames crossing a bridge.
    Bridge,
}

impl TableFamily {
    fn number(self) -> u8 {
        match self {
            Self::Inet => 1,
            Self::Ip => 2,
            Self::Bridge => 7,
            Self::Ip6 => 10,
        }
    }
}

/// One change to a set or map.
#[derive(Debug, Clone)]
struct Change {
    delete: bool,
    set: String,
    key: Vec<u8>,
    data: Option<Vec<u8>>,
}

/// Element changes to sets and maps of one nftables table, applied together
/// by [`SetElementBatch::commit`]: all of them or none.
///
/// ```no_run
/// use containerization_netlink::{SetElementBatch, TableFamily};
///
/// // In `map ports { type inet_service : ipv4_addr . inet_service; }`,
/// // 8080 : 10.88.0.2 . 80
/// let mut batch = SetElementBatch::new(TableFamily::Inet, "containerization");
/// batch.add("ports", &8080u16.to_be_bytes(), Some(&[10, 88, 0, 2, 0, 80, 0, 0]));
/// batch.commit()?;
/// # Ok::<(), containerization_netlink::NetlinkError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SetElementBatch {
    family: TableFamily,
    table: String,
    changes: Vec<Change>,
}

impl SetElementBatch {
    /// An empty batch for table `table` of `family`.
    pub fn new(family: TableFamily, table: &str) -> Self {
        Self {
            family,
            table: table.to_owned(),
            changes: Vec::new(),
        }
    }

    /// Adds element `key` (with `data`, for a map) to `set`. Adding an element
    /// that exists with the same data changes nothing.
    pub fn add(&mut self, set: &str, key: &[u8], data: Option<&[u8]>) {
        self.changes.push(Change {
            delete: false,
            set: set.to_owned(),
            key: key.to_vec(),
            data: data.map(<[u8]>::to_vec),
        });
    }

    /// Deletes element `key` from `set`; the batch fails if it is absent.
    pub fn delete(&mut self, set: &str, key: &[u8]) {
        self.changes.push(Change {
            delete: true,
            set: set.to_owned(),
            key: key.to_vec(),
            data: None,
        });
    }

    /// Whether the batch holds no change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Sends the batch on a socket of its own and waits for the kernel to
    /// apply it. Closing that socket waits for the kernel to free the
    /// transaction (an RCU grace period); an [`NftablesSocket`] kept open
    /// for many batches pays that once, at its end.
    pub fn commit(&self) -> Result<(), NetlinkError> {
        if self.changes.is_empty() {
            return Ok(());
        }
        NftablesSocket::open()?.commit(self)
    }

    /// The whole batch as one buffer; change `i` has sequence number
    /// `first + i`.
    fn encode(&self, first: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let subsys = NFNL_SUBSYS_NFTABLES.to_be_bytes();
        header(&mut out, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, 0, subsys);
        for (i, change) in self.changes.iter().enumerate() {
            let start = out.len();
            let (kind, flags) = if change.delete {
                (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK)
            } else {
                (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE)
            };
            let sequence = first.wrapping_add(u32::try_from(i).unwrap_or(u32::MAX));
            header(
                &mut out,
                (NFNL_SUBSYS_NFTABLES << 8) | kind,
                flags,
                sequence,
                self.family.number(),
                [0, 0],
            );
            attribute(&mut out, NFTA_SET_ELEM_LIST_TABLE, &c_string(&self.table));
            attribute(&mut out, NFTA_SET_ELEM_LIST_SET, &c_string(&change.set));
            let mut element = Vec::new();
            nested(&mut element, NFTA_SET_ELEM_KEY, |key| {
                attribute(key, NFTA_DATA_VALUE, &change.key)
            });
            if let Some(data) = &change.data {
                nested(&mut element, NFTA_SET_ELEM_DATA, |value| {
                    attribute(value, NFTA_DATA_VALUE, data)
                });
            }
            nested(&mut out, NFTA_SET_ELEM_LIST_ELEMENTS, |list| {
                nested(list, NFTA_LIST_ELEM, |e| e.extend_from_slice(&element))
            });
            set_length(&mut out, start);
        }
        let count = u32::try_from(self.changes.len()).unwrap_or(u32::MAX);
        let last = first.wrapping_add(count);
        header(&mut out, NFNL_MSG_BATCH_END, NLM_F_REQUEST, last, 0, subsys);
        out
    }
}

/// One nfnetlink socket for many [`SetElementBatch`]es, one at a time.
#[derive(Debug)]
pub struct NftablesSocket {
    /// The socket, and the sequence number of the next message.
    inner: Mutex<(OwnedFd, u32)>,
}

impl NftablesSocket {
    /// Opens the socket.
    pub fn open() -> Result<Self, NetlinkError> {
        let io = |source: rustix::io::Errno| NetlinkError::Io {
            what: "opening an nfnetlink socket".to_owned(),
            source: source.into(),
        };
        let socket = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, Some(NETFILTER))
            .map_err(io)?;
        // A kernel that never answers should not hang the caller.
        rustix::net::sockopt::set_socket_timeout(
            &socket,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(5)),
        )
        .map_err(io)?;
        Ok(Self {
            inner: Mutex::new((socket, 1)),
        })
    }

    /// Sends `batch` and waits for the kernel to apply it: every change, or
    /// none and the first refusal as the error.
    pub fn commit(&self, batch: &SetElementBatch) -> Result<(), NetlinkError> {
        if batch.changes.is_empty() {
            return Ok(());
        }
        let what = format!("nftables table {}", batch.table);
        let io = |source: rustix::io::Errno| NetlinkError::Io {
            what: what.clone(),
            source: source.into(),
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (socket, next) = &mut *inner;
        let first = *next;
        let count = u32::try_from(batch.changes.len()).unwrap_or(u32::MAX);
        *next = first.wrapping_add(count).wrapping_add(1);
        let message = batch.encode(first);
        rustix::net::sendto(
            &*socket,
            &message,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(io)?;

        // One acknowledgement per change, each an NLMSG_ERROR with errno 0
        // or the reason that change (and so the batch) failed. Answers to an
        // earlier batch that failed part way are skipped by their numbers.
        let mut answered = 0;
        let mut buffer = vec![0u8; 16 * 1024];
        while answered < batch.changes.len() {
            let (received, _) =
                rustix::net::recv(&*socket, &mut buffer[..], RecvFlags::empty()).map_err(io)?;
            let mut rest = &buffer[..received.min(buffer.len())];
            while rest.len() >= 16 {
                let length = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let sequence = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                if length < 16 || length > rest.len() {
                    return Err(NetlinkError::Protocol {
                        what,
                        detail: format!("a message of {length} bytes in {}", rest.len()),
                    });
                }
                let index = sequence.wrapping_sub(first) as usize;
                if kind == NLMSG_ERROR && length >= 20 && index < batch.changes.len() {
                    answered += 1;
                    let errno = i32::from_ne_bytes([rest[16], rest[17], rest[18], rest[19]]);
                    if errno != 0 {
                        let change = &batch.changes[index];
                        let verb = if change.delete { "deleting" } else { "adding" };
                        return Err(NetlinkError::from_io(
                            format!("{what}: {verb} an element of {}", change.set),
                            std::io::Error::from_raw_os_error(errno.abs()),
                        ));
                    }
                }
                rest = &rest[align(length).min(rest.len())..];
            }
        }
        Ok(())
    }
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn c_string(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// A netlink header and an nfgenmsg; the length is fixed by [`set_length`]
/// when the message has a body.
fn header(out: &mut Vec<u8>, kind: u16, flags: u16, sequence: u32, family: u8, res_id: [u8; 2]) {
    out.extend_from_slice(&20u32.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&sequence.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[family, 0, res_id[0], res_id[1]]);
}

fn set_length(out: &mut [u8], start: usize) {
    let length = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&length.to_ne_bytes());
}

fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
}

fn nested(out: &mut Vec<u8>, kind: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    body(out);
    let length = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start..start + 2].copy_from_slice(&length.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_encoded_as_nft_sends_it() {
        let mut batch = SetElementBatch::new(TableFamily::Ip, "t");
        batch.add(
            "dnat_tcp",
            &8080u16.to_be_bytes(),
            Some(&[10, 0, 0, 2, 0, 80, 0, 0]),
        );
        let bytes = batch.encode(1);
        // begin (20) + element message (88, as nft 1.0.6 sends it without
        // its set id attribute: 88 - 8) + end (20)
        assert_eq!(bytes.len(), 20 + 80 + 20);
        let element = &bytes[20..100];
        assert_eq!(u32::from_ne_bytes(element[..4].try_into().unwrap()), 80);
        let elements_attribute: &[u8] = &[
            36, 0, 3, 0x80, 32, 0, 1, 0x80, 12, 0, 1, 0x80, 6, 0, 1, 0, 0x1f, 0x90, 0, 0, 16, 0, 2,
            0x80, 12, 0, 1, 0, 10, 0, 0, 2, 0, 80, 0, 0,
        ];
        assert!(element.ends_with(elements_attribute));
    }
}
