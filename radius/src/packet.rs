//! RADIUS packet codec (RFC 2865 section 3, RFC 2866, RFC 5176).

use std::net::Ipv4Addr;

use crate::dict::VENDOR_SPECIFIC;

/// Largest RADIUS packet allowed on the wire (RFC 2865 section 3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Size of the code, identifier, length and authenticator header.
pub const HEADER_LEN: usize = 20;
/// Largest value an attribute can carry: its length octet counts the two header octets too.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 253;

/// RADIUS packet codes this crate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Access-Request (1).
    AccessRequest = 1,
    /// Access-Accept (2).
    AccessAccept = 2,
    /// Access-Reject (3).
    AccessReject = 3,
    /// Accounting-Request (4).
    AccountingRequest = 4,
    /// Accounting-Response (5).
    AccountingResponse = 5,
    /// Access-Challenge (11).
    AccessChallenge = 11,
    /// Disconnect-Request (40, RFC 5176).
    DisconnectRequest = 40,
    /// Disconnect-ACK (41, RFC 5176).
    DisconnectAck = 41,
    /// Disconnect-NAK (42, RFC 5176).
    DisconnectNak = 42,
    /// CoA-Request (43, RFC 5176).
    CoaRequest = 43,
    /// CoA-ACK (44, RFC 5176).
    CoaAck = 44,
    /// CoA-NAK (45, RFC 5176).
    CoaNak = 45,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 12] = [
        Code::AccessRequest,
        Code::AccessAccept,
        Code::AccessReject,
        Code::AccountingRequest,
        Code::AccountingResponse,
        Code::AccessChallenge,
        Code::DisconnectRequest,
        Code::DisconnectAck,
        Code::DisconnectNak,
        Code::CoaRequest,
        Code::CoaAck,
        Code::CoaNak,
    ];

    /// The code for a wire value, or `None` when this crate does not know it.
    pub fn from_u8(v: u8) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_u8() == v)
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for the codes a client sends (the ones that get a reply).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Code::AccessRequest
                | Code::AccountingRequest
                | Code::DisconnectRequest
                | Code::CoaRequest
        )
    }
}

/// One attribute: its type and raw value (without the two header octets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type number (see [`crate::dict`]).
    pub typ: u8,
    /// Raw value, at most [`MAX_ATTRIBUTE_VALUE_LEN`] bytes to be encodable.
    pub value: Vec<u8>,
}

/// A decoded RADIUS packet; attributes keep their wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Packet code.
    pub code: Code,
    /// Identifier that pairs a reply with its request.
    pub identifier: u8,
    /// Request or Response Authenticator as found on (or destined for) the wire.
    pub authenticator: [u8; 16],
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

/// Why bytes could not be decoded as a RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    #[error("packet is {0} bytes, shorter than the 20-byte RADIUS header")]
    TruncatedHeader(usize),
    /// Length field below the header size.
    #[error("packet length field {0} is below the minimum of 20")]
    LengthTooSmall(usize),
    /// Length field above the RFC 2865 maximum.
    #[error("packet length field {0} exceeds 4096")]
    LengthTooLarge(usize),
    /// Length field promises more bytes than were received.
    #[error("packet length field {length} exceeds the {received} bytes received")]
    LengthExceedsBuffer {
        /// The length field.
        length: usize,
        /// Bytes actually received.
        received: usize,
    },
    /// A code this crate does not handle.
    #[error("unknown packet code {0}")]
    UnknownCode(u8),
    /// Only the type octet of an attribute fits before the end of the packet.
    #[error("attribute at offset {offset} is cut off: only its type octet fits in the packet")]
    TruncatedAttributeHeader {
        /// Offset of the attribute from the start of the packet.
        offset: usize,
    },
    /// Attribute length octet below 2 (it counts its own header).
    #[error("attribute type {typ} at offset {offset} has length {len}, below the minimum of 2")]
    AttributeTooShort {
        /// Offset of the attribute from the start of the packet.
        offset: usize,
        /// Attribute type.
        typ: u8,
        /// The length octet.
        len: u8,
    },
    /// Attribute length runs past the end of the packet.
    #[error(
        "attribute type {typ} at offset {offset} has length {len} but only {remaining} bytes remain in the packet"
    )]
    AttributeOverrun {
        /// Offset of the attribute from the start of the packet.
        offset: usize,
        /// Attribute type.
        typ: u8,
        /// The length octet.
        len: u8,
        /// Bytes left in the packet from the attribute's offset.
        remaining: usize,
    },
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An attribute value longer than 253 bytes.
    #[error("attribute type {typ} has a {len}-byte value; at most 253 bytes fit")]
    AttributeTooLong {
        /// Attribute type.
        typ: u8,
        /// Value length.
        len: usize,
    },
    /// The encoded packet would exceed 4096 bytes.
    #[error("encoded packet would be {0} bytes, more than the 4096 allowed")]
    PacketTooLong(usize),
}

/// Checks the header of `buf` and returns the packet length from its length field.
///
/// Shared by [`Packet::decode`] and the authenticator checks, which work on raw bytes.
pub(crate) fn checked_length(buf: &[u8]) -> Result<usize, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::TruncatedHeader(buf.len()));
    }
    let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if length < HEADER_LEN {
        return Err(DecodeError::LengthTooSmall(length));
    }
    if length > MAX_PACKET_LEN {
        return Err(DecodeError::LengthTooLarge(length));
    }
    if length > buf.len() {
        return Err(DecodeError::LengthExceedsBuffer {
            length,
            received: buf.len(),
        });
    }
    Ok(length)
}

/// Walks the attribute area of a packet whose first `HEADER_LEN` bytes are the header,
/// yielding `(offset, type, value)` with offsets relative to the packet start.
pub(crate) fn walk_attributes(
    packet: &[u8],
    mut visit: impl FnMut(usize, u8, &[u8]),
) -> Result<(), DecodeError> {
    let mut offset = HEADER_LEN;
    while offset < packet.len() {
        let remaining = packet.len() - offset;
        if remaining < 2 {
            return Err(DecodeError::TruncatedAttributeHeader { offset });
        }
        let typ = packet[offset];
        let len = packet[offset + 1];
        if len < 2 {
            return Err(DecodeError::AttributeTooShort { offset, typ, len });
        }
        if usize::from(len) > remaining {
            return Err(DecodeError::AttributeOverrun {
                offset,
                typ,
                len,
                remaining,
            });
        }
        visit(offset, typ, &packet[offset + 2..offset + usize::from(len)]);
        offset += usize::from(len);
    }
    Ok(())
}

/// Iterates over the `(type, value)` sub-attributes of a Vendor-Specific value of the
/// given vendor; stops at the first malformed sub-attribute.
fn vendor_sub_attributes(vsa: &[u8], vendor: u32) -> impl Iterator<Item = (u8, &[u8])> {
    let body = match vsa.split_first_chunk::<4>() {
        Some((id, body)) if u32::from_be_bytes(*id) == vendor => body,
        _ => &[],
    };
    SubAttributes { rest: body }
}

/// Iterator over RFC 2865 5.26 style sub-attributes (type, length, value).
struct SubAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubAttributes<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let [typ, len, ..] = *self.rest else {
            self.rest = &[];
            return None;
        };
        let len = usize::from(len);
        if len < 2 || len > self.rest.len() {
            // A vendor using another layout, or garbage: nothing after this point can be trusted.
            self.rest = &[];
            return None;
        }
        let value = &self.rest[2..len];
        self.rest = &self.rest[len..];
        Some((typ, value))
    }
}

impl Packet {
    /// An empty packet.
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Packet {
        Packet {
            code,
            identifier,
            authenticator,
            attributes: Vec::new(),
        }
    }

    /// Decodes a packet, strictly: header length field in 20..=4096 and within `buf`,
    /// known code, every attribute well formed. Bytes past the length field are padding
    /// and ignored (RFC 2865 section 3).
    pub fn decode(buf: &[u8]) -> Result<Packet, DecodeError> {
        let length = checked_length(buf)?;
        let code = Code::from_u8(buf[0]).ok_or(DecodeError::UnknownCode(buf[0]))?;
        let packet = &buf[..length];
        let mut attributes = Vec::new();
        walk_attributes(packet, |_, typ, value| {
            attributes.push(Attribute {
                typ,
                value: value.to_vec(),
            });
        })?;
        let mut authenticator = [0; 16];
        authenticator.copy_from_slice(&packet[4..HEADER_LEN]);
        Ok(Packet {
            code,
            identifier: packet[1],
            authenticator,
            attributes,
        })
    }

    /// Length of the encoded packet, checking every attribute and the total size.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let mut total = HEADER_LEN;
        for a in &self.attributes {
            if a.value.len() > MAX_ATTRIBUTE_VALUE_LEN {
                return Err(EncodeError::AttributeTooLong {
                    typ: a.typ,
                    len: a.value.len(),
                });
            }
            total += 2 + a.value.len();
        }
        if total > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong(total));
        }
        Ok(total)
    }

    /// Encodes the packet exactly as the struct says; no authenticator is computed
    /// (the `auth` module computes and checks those).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let total = self.encoded_len()?;
        let mut out = Vec::with_capacity(total);
        out.push(self.code.as_u8());
        out.push(self.identifier);
        // encoded_len bounds total by MAX_PACKET_LEN, so it fits in u16.
        out.extend_from_slice(&(total as u16).to_be_bytes());
        out.extend_from_slice(&self.authenticator);
        for a in &self.attributes {
            out.push(a.typ);
            out.push((a.value.len() + 2) as u8);
            out.extend_from_slice(&a.value);
        }
        Ok(out)
    }

    /// Value of the first attribute of type `typ`.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.get_all(typ).next()
    }

    /// Values of every attribute of type `typ`, in wire order.
    pub fn get_all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// First attribute of type `typ` as text (invalid UTF-8 replaced, never an error).
    pub fn get_string(&self, typ: u8) -> Option<String> {
        self.get(typ)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// First attribute of type `typ` as a big-endian integer; `None` unless exactly 4 bytes.
    pub fn get_u32(&self, typ: u8) -> Option<u32> {
        self.get(typ).and_then(be_u32)
    }

    /// First attribute of type `typ` as an IPv4 address; `None` unless exactly 4 bytes.
    pub fn get_ipv4(&self, typ: u8) -> Option<Ipv4Addr> {
        self.get_u32(typ).map(Ipv4Addr::from)
    }

    /// Every vendor sub-attribute as `(vendor, vendor_type, value)`, in wire order.
    ///
    /// Vendor-Specific attributes shorter than the 4-byte vendor id are skipped, and a
    /// VSA's sub-attributes are read up to the first malformed one.
    pub fn vendor_attributes(&self) -> impl Iterator<Item = (u32, u8, &[u8])> {
        self.get_all(VENDOR_SPECIFIC).flat_map(|vsa| {
            let vendor = vsa
                .first_chunk::<4>()
                .map(|id| u32::from_be_bytes(*id))
                .unwrap_or(0);
            vendor_sub_attributes(vsa, vendor).map(move |(t, v)| (vendor, t, v))
        })
    }

    /// Value of the first sub-attribute `vendor_type` of `vendor` across all
    /// Vendor-Specific attributes (one VSA may hold several sub-attributes).
    pub fn get_vendor(&self, vendor: u32, vendor_type: u8) -> Option<&[u8]> {
        self.get_all(VENDOR_SPECIFIC)
            .flat_map(|vsa| vendor_sub_attributes(vsa, vendor))
            .find(|(t, _)| *t == vendor_type)
            .map(|(_, v)| v)
    }

    /// Vendor sub-attribute as a big-endian integer; `None` unless exactly 4 bytes.
    pub fn get_vendor_u32(&self, vendor: u32, vendor_type: u8) -> Option<u32> {
        self.get_vendor(vendor, vendor_type).and_then(be_u32)
    }

    /// Vendor sub-attribute as text (invalid UTF-8 replaced).
    pub fn get_vendor_string(&self, vendor: u32, vendor_type: u8) -> Option<String> {
        self.get_vendor(vendor, vendor_type)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Appends an attribute; an over-long value is reported by [`Packet::encode`].
    pub fn push(&mut self, typ: u8, value: impl Into<Vec<u8>>) {
        self.attributes.push(Attribute {
            typ,
            value: value.into(),
        });
    }

    /// Appends a 4-byte big-endian integer attribute.
    pub fn push_u32(&mut self, typ: u8, v: u32) {
        self.push(typ, v.to_be_bytes());
    }

    /// Appends an IPv4 address attribute.
    pub fn push_ipv4(&mut self, typ: u8, addr: Ipv4Addr) {
        self.push(typ, addr.octets());
    }

    /// Appends one Vendor-Specific attribute holding one sub-attribute.
    ///
    /// A value over 247 bytes makes the VSA too long, which [`Packet::encode`] reports.
    pub fn push_vendor(&mut self, vendor: u32, vendor_type: u8, value: &[u8]) {
        let mut vsa = Vec::with_capacity(6 + value.len());
        vsa.extend_from_slice(&vendor.to_be_bytes());
        vsa.push(vendor_type);
        // Saturating keeps this panic-free; such a VSA never reaches the wire (see above).
        vsa.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        vsa.extend_from_slice(value);
        self.push(VENDOR_SPECIFIC, vsa);
    }

    /// Appends a Vendor-Specific attribute holding a 4-byte big-endian integer.
    pub fn push_vendor_u32(&mut self, vendor: u32, vendor_type: u8, v: u32) {
        self.push_vendor(vendor, vendor_type, &v.to_be_bytes());
    }

    /// Removes every attribute of type `typ`.
    pub fn remove_all(&mut self, typ: u8) {
        self.attributes.retain(|a| a.typ != typ);
    }
}

/// Reads a value that must be exactly 4 bytes as a big-endian integer.
fn be_u32(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}
