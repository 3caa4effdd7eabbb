//! What an import did (or, in a dry run, would do) with each source row: created, already
//! imported by an earlier run, or skipped with the reason, the source table (or router menu),
//! line (or entry name) and field.

use serde::Serialize;

/// The kind of record a source row becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A router, as a site.
    Site,
    /// A service plan.
    Plan,
    /// A customer with their balance.
    Customer,
    /// An active PPPoE recharge, as a subscription.
    Subscription,
    /// An active hotspot recharge, as a voucher already in use.
    ActiveVoucher,
    /// An unused voucher.
    Voucher,
}

impl Kind {
    /// Storage name, also `import_sources.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Site => "site",
            Kind::Plan => "plan",
            Kind::Customer => "customer",
            Kind::Subscription => "subscription",
            Kind::ActiveVoucher => "active_voucher",
            Kind::Voucher => "voucher",
        }
    }

    /// Every kind, in the order an import writes them.
    pub const ALL: [Kind; 6] = [
        Kind::Site,
        Kind::Plan,
        Kind::Customer,
        Kind::Subscription,
        Kind::ActiveVoucher,
        Kind::Voucher,
    ];
}

/// Where a row came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Source {
    /// The source table, e.g. `tbl_customers`, or router menu, e.g. `/ip/hotspot/user`.
    pub table: &'static str,
    /// The row's id there (a router's `.id`, e.g. `*1A`).
    pub id: String,
    /// The dump line its values start on (0 for a router's entries).
    pub line: u64,
    /// The entry's name, for a router's entries (whose ids say little to an operator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Created (a dry run: would be created); `what` names it (a name, code or user name).
    Created {
        /// The created record's name.
        what: String,
    },
    /// An earlier run imported it.
    AlreadyImported,
    /// Not imported.
    Skipped {
        /// The source field at fault, when one is.
        field: Option<String>,
        /// Why.
        reason: String,
    },
}

/// One row's entry in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// What it becomes.
    pub kind: Kind,
    /// Where it came from.
    pub source: Source,
    /// What happened.
    pub outcome: Outcome,
}

/// Something an operator should know about a row that is imported, but not as it was: a
/// disabled plan archived, a banned customer's subscription isolated, a length MikroBill
/// keeps differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Note {
    /// What the row becomes.
    pub kind: Kind,
    /// Where it came from.
    pub source: Source,
    /// What differs, and why.
    pub text: String,
}

/// The outcome of a whole import.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Nothing was written.
    pub dry_run: bool,
    /// Every row's entry, in the order they were handled.
    pub entries: Vec<Entry>,
    /// Rows imported differently from how the source had them.
    pub notes: Vec<Note>,
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Created (or would be).
    pub created: usize,
    /// Imported by an earlier run.
    pub already_imported: usize,
    /// Skipped for a reason.
    pub skipped: usize,
}

impl Report {
    /// Counts per kind.
    pub fn counts(&self, kind: Kind) -> Counts {
        let mut c = Counts::default();
        for e in self.entries.iter().filter(|e| e.kind == kind) {
            match e.outcome {
                Outcome::Created { .. } => c.created += 1,
                Outcome::AlreadyImported => c.already_imported += 1,
                Outcome::Skipped { .. } => c.skipped += 1,
            }
        }
        c
    }

    /// The report as an operator reads it: counts per kind, then every skipped row, then
    /// every note.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if self.dry_run {
            out.push_str("Dry run: nothing was written.\n");
        }
        for kind in Kind::ALL {
            let c = self.counts(kind);
            let _ = writeln!(
                out,
                "{:<15} {} {}, {} already imported, {} skipped",
                kind.as_str(),
                if self.dry_run {
                    "would create"
                } else {
                    "created"
                },
                c.created,
                c.already_imported,
                c.skipped
            );
        }
        for e in &self.entries {
            if let Outcome::Skipped { field, reason } = &e.outcome {
                let field = field
                    .as_deref()
                    .map(|f| format!(", field {f}"))
                    .unwrap_or_default();
                let place = match &e.source.name {
                    Some(name) => format!("{name:?}"),
                    None => format!("line {}", e.source.line),
                };
                let _ = writeln!(
                    out,
                    "skipped {} {} id {} ({place}{field}): {reason}",
                    e.kind.as_str(),
                    e.source.table,
                    e.source.id,
                );
            }
        }
        for n in &self.notes {
            let place = match &n.source.name {
                Some(name) => format!("{name:?}"),
                None => format!("line {}", n.source.line),
            };
            let _ = writeln!(
                out,
                "note {} {} id {} ({place}): {}",
                n.kind.as_str(),
                n.source.table,
                n.source.id,
                n.text
            );
        }
        out
    }
}
