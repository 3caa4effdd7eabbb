//! Roles and the permissions each grants: the single table the API consults.

use serde::{Deserialize, Serialize};

/// An admin user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including admin users, settings and the audit log.
    Admin,
    /// Day-to-day operations: customers, subscriptions, vouchers, sites.
    Operator,
    /// The cash desk: payments, selling vouchers, reseller top-ups.
    Cashier,
    /// Buys vouchers from its own balance and sees only its own.
    Reseller,
    /// Reads everything an operator can, changes nothing.
    Viewer,
}

/// Every role, for listings and the role x endpoint tests.
pub const ALL_ROLES: [Role; 5] = [
    Role::Admin,
    Role::Operator,
    Role::Cashier,
    Role::Reseller,
    Role::Viewer,
];

/// One thing an API caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    /// List and read customers.
    ReadCustomers,
    /// Create and change customers.
    WriteCustomers,
    /// List and read plans.
    ReadPlans,
    /// Create and change plans (prices).
    WritePlans,
    /// List sites, groups and their state.
    ReadSites,
    /// Add, enroll, group and revoke sites.
    WriteSites,
    /// See every voucher and batch.
    ReadVouchers,
    /// Generate batches and revoke vouchers.
    WriteVouchers,
    /// Sell vouchers (mark sold, sell a batch to a reseller).
    SellVouchers,
    /// Buy vouchers from one's own balance (resellers).
    BuyVouchers,
    /// List and read PPPoE subscriptions.
    ReadSubscriptions,
    /// Create, change, isolate, re-activate and terminate subscriptions.
    WriteSubscriptions,
    /// List and read invoices.
    ReadInvoices,
    /// Run invoicing, void invoices.
    WriteInvoices,
    /// List and read payments.
    ReadPayments,
    /// Record payments.
    WritePayments,
    /// See resellers and credit their balance.
    ManageResellerBalance,
    /// List admin users and their tokens.
    ReadAdmins,
    /// Create and change admin users, revoke anyone's tokens.
    WriteAdmins,
    /// Read the audit log.
    ReadAudit,
    /// Read billing settings (tax, currency).
    ReadSettings,
    /// Change billing settings.
    WriteSettings,
    /// Trigger scheduled jobs by hand.
    RunJobs,
    /// See and step the controller's CA rotation.
    ManageCa,
}

impl Role {
    /// Whether this role grants `perm`.
    pub fn allows(self, perm: Perm) -> bool {
        use Perm::*;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(
                perm,
                ReadCustomers
                    | WriteCustomers
                    | ReadPlans
                    | ReadSites
                    | WriteSites
                    | ReadVouchers
                    | WriteVouchers
                    | SellVouchers
                    | ReadSubscriptions
                    | WriteSubscriptions
                    | ReadInvoices
                    | ReadPayments
                    | ReadSettings
            ),
            Role::Cashier => matches!(
                perm,
                ReadCustomers
                    | ReadPlans
                    | ReadVouchers
                    | SellVouchers
                    | ReadSubscriptions
                    | ReadInvoices
                    | ReadPayments
                    | WritePayments
                    | ManageResellerBalance
                    | ReadSettings
            ),
            Role::Reseller => matches!(perm, ReadPlans | BuyVouchers),
            Role::Viewer => matches!(
                perm,
                ReadCustomers
                    | ReadPlans
                    | ReadSites
                    | ReadVouchers
                    | ReadSubscriptions
                    | ReadInvoices
                    | ReadPayments
                    | ReadSettings
            ),
        }
    }

    /// Storage and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Cashier => "cashier",
            Role::Reseller => "reseller",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_ROLES
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}: use admin, operator, cashier, reseller or viewer")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in ALL_ROLES {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn only_admin_manages_admins_and_reads_audit() {
        for r in ALL_ROLES {
            assert_eq!(r.allows(Perm::WriteAdmins), r == Role::Admin);
            assert_eq!(r.allows(Perm::ReadAudit), r == Role::Admin);
            assert_eq!(r.allows(Perm::ManageCa), r == Role::Admin);
        }
    }

    #[test]
    fn viewer_writes_nothing() {
        use Perm::*;
        for p in [
            WriteCustomers,
            WritePlans,
            WriteSites,
            WriteVouchers,
            SellVouchers,
            BuyVouchers,
            WriteSubscriptions,
            WriteInvoices,
            WritePayments,
            ManageResellerBalance,
            WriteSettings,
            RunJobs,
            ManageCa,
        ] {
            assert!(!Role::Viewer.allows(p), "{p:?}");
        }
    }
}
