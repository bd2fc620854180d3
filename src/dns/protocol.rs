//! Numbers the DNS standards fix and more than one layer needs: the UDP
//! payload limit, the Extended DNS Error codes, and which record types are
//! DNSSEC's own. The rules that use them live in `codec`; this file only
//! names them, so nothing else writes 1232 or 15 by hand.

use hickory_resolver::proto::rr::RecordType;

/// The largest UDP payload Lollipop sends or asks for: the DNS flag day
/// 2020 figure, which avoids IP fragmentation on ordinary networks.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The UDP payload of a client without EDNS (RFC 1035 4.2.1).
pub const MIN_UDP_PAYLOAD: u16 = 512;

/// EDNS option code of an Extended DNS Error (RFC 8914).
pub const EDE_OPTION: u16 = 15;

/// RFC 8914 info code "Other": the text says what happened (a lookup
/// refused because too many are waiting).
pub const EDE_OTHER: u16 = 0;

/// RFC 8914 info code "Stale Answer": served from the cache past its TTL
/// because the upstreams did not answer in time (RFC 8767).
pub const EDE_STALE_ANSWER: u16 = 3;

/// RFC 8914 info code "DNSSEC Bogus": the answer's signatures did not
/// validate.
pub const EDE_DNSSEC_BOGUS: u16 = 6;

/// RFC 8914 info code "Signature Expired": Bogus because a signature's
/// validity ended.
pub const EDE_SIGNATURE_EXPIRED: u16 = 7;

/// RFC 8914 info code "Signature Not Yet Valid": Bogus because a
/// signature's validity has not begun.
pub const EDE_SIGNATURE_NOT_YET_VALID: u16 = 8;

/// RFC 8914 info code "DNSKEY Missing": a signature names a key the zone
/// does not publish.
pub const EDE_DNSKEY_MISSING: u16 = 9;

/// RFC 8914 info code "No Reachable Authority": the upstreams were silent
/// or could not answer.
pub const EDE_NO_REACHABLE_AUTHORITY: u16 = 22;

/// RFC 8914 info code "Network Error": the upstreams could not be reached.
pub const EDE_NETWORK_ERROR: u16 = 23;

/// RFC 8914 info code "Blocked": by the school's own choice or a locked list.
pub const EDE_BLOCKED: u16 = 15;

/// RFC 8914 info code "Filtered": by a category the profile filters.
pub const EDE_FILTERED: u16 = 17;

/// Records a client that did not set the DO bit is not sent.
pub fn is_dnssec_only(record_type: RecordType) -> bool {
    matches!(
        record_type,
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
    )
}
