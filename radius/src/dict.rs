//! Attribute numbers (RFC 2865, 2866, 2869, 3576/5176, 2548) and the vendor dictionaries
//! this project needs.

/// User-Name (1).
pub const USER_NAME: u8 = 1;
/// User-Password (2).
pub const USER_PASSWORD: u8 = 2;
/// CHAP-Password (3).
pub const CHAP_PASSWORD: u8 = 3;
/// NAS-IP-Address (4).
pub const NAS_IP_ADDRESS: u8 = 4;
/// NAS-Port (5).
pub const NAS_PORT: u8 = 5;
/// Service-Type (6).
pub const SERVICE_TYPE: u8 = 6;
/// Framed-Protocol (7).
pub const FRAMED_PROTOCOL: u8 = 7;
/// Framed-IP-Address (8).
pub const FRAMED_IP_ADDRESS: u8 = 8;
/// Filter-Id (11).
pub const FILTER_ID: u8 = 11;
/// Reply-Message (18).
pub const REPLY_MESSAGE: u8 = 18;
/// State (24).
pub const STATE: u8 = 24;
/// Class (25).
pub const CLASS: u8 = 25;
/// Vendor-Specific (26).
pub const VENDOR_SPECIFIC: u8 = 26;
/// Session-Timeout (27).
pub const SESSION_TIMEOUT: u8 = 27;
/// Idle-Timeout (28).
pub const IDLE_TIMEOUT: u8 = 28;
/// Called-Station-Id (30).
pub const CALLED_STATION_ID: u8 = 30;
/// Calling-Station-Id (31).
pub const CALLING_STATION_ID: u8 = 31;
/// NAS-Identifier (32).
pub const NAS_IDENTIFIER: u8 = 32;
/// Acct-Status-Type (40).
pub const ACCT_STATUS_TYPE: u8 = 40;
/// Acct-Delay-Time (41).
pub const ACCT_DELAY_TIME: u8 = 41;
/// Acct-Input-Octets (42).
pub const ACCT_INPUT_OCTETS: u8 = 42;
/// Acct-Output-Octets (43).
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
/// Acct-Session-Id (44).
pub const ACCT_SESSION_ID: u8 = 44;
/// Acct-Authentic (45).
pub const ACCT_AUTHENTIC: u8 = 45;
/// Acct-Session-Time (46).
pub const ACCT_SESSION_TIME: u8 = 46;
/// Acct-Input-Packets (47).
pub const ACCT_INPUT_PACKETS: u8 = 47;
/// Acct-Output-Packets (48).
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
/// Acct-Terminate-Cause (49).
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
/// Acct-Multi-Session-Id (50).
pub const ACCT_MULTI_SESSION_ID: u8 = 50;
/// Acct-Input-Gigawords (52).
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
/// Acct-Output-Gigawords (53).
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
/// Event-Timestamp (55).
pub const EVENT_TIMESTAMP: u8 = 55;
/// CHAP-Challenge (60).
pub const CHAP_CHALLENGE: u8 = 60;
/// NAS-Port-Type (61).
pub const NAS_PORT_TYPE: u8 = 61;
/// Port-Limit (62).
pub const PORT_LIMIT: u8 = 62;
/// Message-Authenticator (80).
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
/// Acct-Interim-Interval (85).
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
/// NAS-Port-Id (87).
pub const NAS_PORT_ID: u8 = 87;
/// Framed-Pool (88).
pub const FRAMED_POOL: u8 = 88;
/// Error-Cause (101).
pub const ERROR_CAUSE: u8 = 101;

/// MikroTik's IANA enterprise number (0x3A8C).
pub const VENDOR_MIKROTIK: u32 = 14988;
/// Microsoft's IANA enterprise number.
pub const VENDOR_MICROSOFT: u32 = 311;

/// MikroTik vendor attribute types (vendor 14988).
pub mod mikrotik {
    /// Mikrotik-Recv-Limit (bytes from the client) (1).
    pub const RECV_LIMIT: u8 = 1;
    /// Mikrotik-Xmit-Limit (bytes to the client) (2).
    pub const XMIT_LIMIT: u8 = 2;
    /// Mikrotik-Group (profile name) (3).
    pub const GROUP: u8 = 3;
    /// Mikrotik-Rate-Limit (`rx/tx ...` string) (8).
    pub const RATE_LIMIT: u8 = 8;
    /// Mikrotik-Host-IP (10).
    pub const HOST_IP: u8 = 10;
    /// Mikrotik-Recv-Limit-Gigawords (14).
    pub const RECV_LIMIT_GIGAWORDS: u8 = 14;
    /// Mikrotik-Xmit-Limit-Gigawords (15).
    pub const XMIT_LIMIT_GIGAWORDS: u8 = 15;
    /// Mikrotik-Total-Limit (17).
    pub const TOTAL_LIMIT: u8 = 17;
    /// Mikrotik-Total-Limit-Gigawords (18).
    pub const TOTAL_LIMIT_GIGAWORDS: u8 = 18;
    /// Mikrotik-Address-List (19).
    pub const ADDRESS_LIST: u8 = 19;
}

/// Microsoft vendor attribute types (vendor 311, RFC 2548).
pub mod microsoft {
    /// MS-CHAP-Response (MS-CHAPv1) (1).
    pub const MS_CHAP_RESPONSE: u8 = 1;
    /// MS-CHAP-Error (2).
    pub const MS_CHAP_ERROR: u8 = 2;
    /// MS-MPPE-Encryption-Policy (7).
    pub const MS_MPPE_ENCRYPTION_POLICY: u8 = 7;
    /// MS-MPPE-Encryption-Types (8).
    pub const MS_MPPE_ENCRYPTION_TYPES: u8 = 8;
    /// MS-CHAP-Challenge (11).
    pub const MS_CHAP_CHALLENGE: u8 = 11;
    /// MS-MPPE-Send-Key (16).
    pub const MS_MPPE_SEND_KEY: u8 = 16;
    /// MS-MPPE-Recv-Key (17).
    pub const MS_MPPE_RECV_KEY: u8 = 17;
    /// MS-CHAP2-Response (25).
    pub const MS_CHAP2_RESPONSE: u8 = 25;
    /// MS-CHAP2-Success (26).
    pub const MS_CHAP2_SUCCESS: u8 = 26;
}

/// Acct-Status-Type values (RFC 2866 5.1).
pub mod acct_status {
    /// Start (1).
    pub const START: u32 = 1;
    /// Stop (2).
    pub const STOP: u32 = 2;
    /// Interim-Update (3).
    pub const INTERIM_UPDATE: u32 = 3;
    /// Accounting-On (7).
    pub const ACCOUNTING_ON: u32 = 7;
    /// Accounting-Off (8).
    pub const ACCOUNTING_OFF: u32 = 8;
}
