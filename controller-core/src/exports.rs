//! What each list exports as CSV: the columns, how each is read, and the query, newest first
//! by a time column a range can narrow. The HTTP layer streams the rows as they come, so a
//! million accounting records leave without being held in memory.

use crate::auth::Perm;

/// How a column's value is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text as stored (NULL as empty).
    Text,
    /// An integer (counts, minor units, seconds, octets).
    Int,
    /// Unix ms, written as local date and time at the operator's offset.
    Time,
}

/// One list that can be exported.
#[derive(Debug, Clone, Copy)]
pub struct Export {
    /// Name in the URL and the file name.
    pub name: &'static str,
    /// Who may export it.
    pub perm: Perm,
    /// `SELECT ... FROM ...` with the columns in order; `WHERE`/`ORDER BY` are added.
    pub select: &'static str,
    /// The time column `from`/`to` narrow, also the order (newest first).
    pub time_column: &'static str,
    /// Header and kind of each selected column.
    pub columns: &'static [(&'static str, Kind)],
}

use Kind::{Int, Text, Time};

/// Every exportable list.
pub const EXPORTS: &[Export] = &[
    Export {
        name: "customers",
        perm: Perm::ReadCustomers,
        select: "SELECT number, name, phone, email, address, balance, created_at FROM customers",
        time_column: "created_at",
        columns: &[
            ("number", Text),
            ("name", Text),
            ("phone", Text),
            ("email", Text),
            ("address", Text),
            ("balance_minor", Int),
            ("created", Time),
        ],
    },
    Export {
        name: "subscriptions",
        perm: Perm::ReadSubscriptions,
        select: "SELECT c.number AS customer_number, c.name AS customer, s.username, p.name AS plan, \
                 si.name AS site, s.status, s.isolation_reason, s.billing_day, s.started_at, \
                 s.isolated_at, s.terminated_at, s.created_at FROM subscriptions s \
                 JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id \
                 JOIN sites si ON si.id = s.site_id",
        time_column: "s.created_at",
        columns: &[
            ("customer_number", Text),
            ("customer", Text),
            ("username", Text),
            ("plan", Text),
            ("site", Text),
            ("status", Text),
            ("isolation_reason", Text),
            ("billing_day", Int),
            ("started", Time),
            ("isolated", Time),
            ("terminated", Time),
            ("created", Time),
        ],
    },
    Export {
        name: "invoices",
        perm: Perm::ReadInvoices,
        select: "SELECT i.number, c.number AS customer_number, c.name AS customer, i.kind, \
                 i.subtotal, i.tax, i.total, i.amount_paid, i.status, i.issued_at, i.due_at, \
                 i.paid_at FROM invoices i JOIN customers c ON c.id = i.customer_id",
        time_column: "i.issued_at",
        columns: &[
            ("number", Text),
            ("customer_number", Text),
            ("customer", Text),
            ("kind", Text),
            ("subtotal_minor", Int),
            ("tax_minor", Int),
            ("total_minor", Int),
            ("paid_minor", Int),
            ("status", Text),
            ("issued", Time),
            ("due", Time),
            ("paid", Time),
        ],
    },
    Export {
        name: "payments",
        perm: Perm::ReadPayments,
        select: "SELECT p.id, c.number AS customer_number, c.name AS customer, i.number AS invoice, \
                 p.amount, p.method, p.gateway, p.external_id, p.reference, p.received_at \
                 FROM payments p JOIN customers c ON c.id = p.customer_id \
                 LEFT JOIN invoices i ON i.id = p.invoice_id",
        time_column: "p.received_at",
        columns: &[
            ("id", Text),
            ("customer_number", Text),
            ("customer", Text),
            ("invoice", Text),
            ("amount_minor", Int),
            ("method", Text),
            ("gateway", Text),
            ("gateway_reference", Text),
            ("reference", Text),
            ("received", Time),
        ],
    },
    Export {
        name: "revenue",
        perm: Perm::ReadPayments,
        select: "SELECT r.source, r.reference, r.amount, r.method, si.name AS site, p.name AS plan, \
                 a.username AS reseller, r.received_at FROM revenue r \
                 LEFT JOIN sites si ON si.id = r.site_id LEFT JOIN plans p ON p.id = r.plan_id \
                 LEFT JOIN admin_users a ON a.id = r.reseller_id",
        time_column: "r.received_at",
        columns: &[
            ("source", Text),
            ("reference", Text),
            ("amount_minor", Int),
            ("method", Text),
            ("site", Text),
            ("plan", Text),
            ("reseller", Text),
            ("received", Time),
        ],
    },
    Export {
        // Codes without passwords: printing goes through the print page, and a file that
        // leaves the building should not log anyone in where passwords differ from codes.
        name: "vouchers",
        perm: Perm::ReadVouchers,
        select: "SELECT v.code, p.name AS plan, si.name AS site, v.status, v.price, \
                 a.username AS sold_to, v.sold_at, v.activated_at, v.expires_at, v.created_at \
                 FROM vouchers v JOIN plans p ON p.id = v.plan_id \
                 LEFT JOIN sites si ON si.id = v.site_id LEFT JOIN admin_users a ON a.id = v.sold_to",
        time_column: "v.created_at",
        columns: &[
            ("code", Text),
            ("plan", Text),
            ("site", Text),
            ("status", Text),
            ("price_minor", Int),
            ("sold_to", Text),
            ("sold", Time),
            ("activated", Time),
            ("expires", Time),
            ("created", Time),
        ],
    },
    Export {
        name: "accounting",
        perm: Perm::ReadSubscriptions,
        select: "SELECT si.name AS site, r.nas_identifier, r.session_id, r.username, r.status, \
                 r.event_time, r.session_time_secs, r.input_octets, r.output_octets, r.framed_ip, \
                 r.calling_station_id, r.terminate_cause FROM accounting_records r \
                 JOIN sites si ON si.id = r.site_id",
        time_column: "r.event_time",
        columns: &[
            ("site", Text),
            ("nas", Text),
            ("session_id", Text),
            ("username", Text),
            ("status", Text),
            ("event", Time),
            ("session_time_secs", Int),
            ("input_octets", Int),
            ("output_octets", Int),
            ("framed_ip", Text),
            ("calling_station_id", Text),
            ("terminate_cause", Int),
        ],
    },
    Export {
        name: "audit",
        perm: Perm::ReadAudit,
        select: "SELECT at, actor_name, action, entity, entity_id, remote_addr, before_json, \
                 after_json FROM audit_log",
        time_column: "at",
        columns: &[
            ("at", Time),
            ("actor", Text),
            ("action", Text),
            ("entity", Text),
            ("entity_id", Text),
            ("remote_addr", Text),
            ("before", Text),
            ("after", Text),
        ],
    },
];

/// The export called `name`.
pub fn find(name: &str) -> Option<&'static Export> {
    EXPORTS.iter().find(|e| e.name == name)
}

impl Export {
    /// The full query: rows whose time column is in `[$1, $2)`, newest first.
    pub fn sql(&self) -> String {
        format!(
            "{} WHERE {t} >= $1 AND {t} < $2 ORDER BY {t} DESC",
            self.select,
            t = self.time_column
        )
    }
}
