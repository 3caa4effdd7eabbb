//! The subscription status machine: which status a subscription moves to for each cause, as
//! one pure transition table. The I/O in `lifecycle.rs` loads the subscription, asks
//! [`next`], and stores the answer.

use serde::{Deserialize, Serialize};

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Normal service.
    Active,
    /// Overdue or held: logins get the isolation profile.
    Isolated,
    /// Ended: the account is removed from the site.
    Terminated,
}

impl SubscriptionStatus {
    /// Every status, for tests and lists.
    pub const ALL: [SubscriptionStatus; 3] = [
        SubscriptionStatus::Active,
        SubscriptionStatus::Isolated,
        SubscriptionStatus::Terminated,
    ];

    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Isolated => "isolated",
            SubscriptionStatus::Terminated => "terminated",
        }
    }

    /// Reads a storage name; `None` for anything the migrations never write.
    pub fn parse(s: &str) -> Option<SubscriptionStatus> {
        SubscriptionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// Why a subscription is isolated; decides who may lift it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IsolationReason {
    /// An invoice went unpaid past its due date and grace days: a payment that settles every
    /// overdue invoice lifts it.
    Overdue,
    /// An operator isolated it: only an operator lifts it.
    Manual,
}

impl IsolationReason {
    /// Every reason, for tests.
    pub const ALL: [IsolationReason; 2] = [IsolationReason::Overdue, IsolationReason::Manual];

    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationReason::Overdue => "overdue",
            IsolationReason::Manual => "manual",
        }
    }

    /// Reads a storage name; `None` for anything else.
    pub fn parse(s: &str) -> Option<IsolationReason> {
        IsolationReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A status together with the isolation reason it carries (only isolated ones have one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The status.
    pub status: SubscriptionStatus,
    /// Why, while isolated.
    pub reason: Option<IsolationReason>,
}

impl Standing {
    /// Active service.
    pub const ACTIVE: Standing = Standing {
        status: SubscriptionStatus::Active,
        reason: None,
    };

    /// Isolated for `reason`.
    pub fn isolated(reason: IsolationReason) -> Standing {
        Standing {
            status: SubscriptionStatus::Isolated,
            reason: Some(reason),
        }
    }

    /// Terminated.
    pub const TERMINATED: Standing = Standing {
        status: SubscriptionStatus::Terminated,
        reason: None,
    };
}

/// What asks a subscription to change status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// An operator isolates it.
    OperatorIsolates,
    /// The isolation sweep found an invoice overdue.
    Overdue,
    /// An operator lifts an isolation, whatever its reason.
    OperatorReactivates,
    /// A payment left no invoice overdue.
    Settled,
    /// An operator ends it.
    Terminate,
}

impl Cause {
    /// Every cause, for tests.
    pub const ALL: [Cause; 5] = [
        Cause::OperatorIsolates,
        Cause::Overdue,
        Cause::OperatorReactivates,
        Cause::Settled,
        Cause::Terminate,
    ];

    /// The audit action a change for this cause is recorded under.
    pub fn action(self) -> &'static str {
        match self {
            Cause::OperatorIsolates | Cause::Overdue => "subscription.isolate",
            Cause::OperatorReactivates | Cause::Settled => "subscription.reactivate",
            Cause::Terminate => "subscription.terminate",
        }
    }
}

/// The answer of [`next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this standing.
    To(Standing),
    /// Nothing to do, and nothing wrong: a payment on an account that is not isolated for
    /// being overdue, the sweep meeting an account already isolated.
    Stay,
    /// The cause makes no sense in this standing; an operator asking gets an error naming it.
    Refused(SubscriptionStatus),
}

/// The transition table: where a subscription in `from` goes for `cause`.
pub fn next(from: Standing, cause: Cause) -> Transition {
    use IsolationReason as R;
    use SubscriptionStatus as S;
    match (from.status, from.reason, cause) {
        // Ended is ended: nothing brings it back, and background causes leave it alone.
        (S::Terminated, _, Cause::Overdue | Cause::Settled) => Transition::Stay,
        (S::Terminated, _, _) => Transition::Refused(S::Terminated),
        (S::Active, _, Cause::OperatorIsolates) => Transition::To(Standing::isolated(R::Manual)),
        (S::Active, _, Cause::Overdue) => Transition::To(Standing::isolated(R::Overdue)),
        (S::Active, _, Cause::Settled) => Transition::Stay,
        (S::Active, _, Cause::OperatorReactivates) => Transition::Refused(S::Active),
        // An isolation stays what it is: the sweep does not turn a manual one into an overdue
        // one (a payment would then lift what an operator imposed), and an operator who wants
        // to keep an overdue account closed after payment terminates it or isolates it again
        // after the payment lifts it.
        (S::Isolated, _, Cause::OperatorIsolates) => Transition::Refused(S::Isolated),
        (S::Isolated, _, Cause::Overdue) => Transition::Stay,
        (S::Isolated, _, Cause::OperatorReactivates) => Transition::To(Standing::ACTIVE),
        (S::Isolated, Some(R::Overdue), Cause::Settled) => Transition::To(Standing::ACTIVE),
        (S::Isolated, _, Cause::Settled) => Transition::Stay,
        (S::Active | S::Isolated, _, Cause::Terminate) => Transition::To(Standing::TERMINATED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every standing the storage can hold, plus the inconsistent ones (a reason without
    /// isolation, isolation without a reason) that older rows might carry.
    fn standings() -> Vec<Standing> {
        let mut all = Vec::new();
        for status in SubscriptionStatus::ALL {
            all.push(Standing {
                status,
                reason: None,
            });
            for r in IsolationReason::ALL {
                all.push(Standing {
                    status,
                    reason: Some(r),
                });
            }
        }
        all
    }

    #[test]
    fn every_target_is_consistent() {
        for from in standings() {
            for cause in Cause::ALL {
                if let Transition::To(to) = next(from, cause) {
                    assert_eq!(
                        to.reason.is_some(),
                        to.status == SubscriptionStatus::Isolated,
                        "{from:?} {cause:?} -> {to:?}"
                    );
                    assert_ne!(to, from, "{from:?} {cause:?} moves nowhere");
                }
            }
        }
    }

    #[test]
    fn terminated_is_final() {
        for from in standings() {
            if from.status != SubscriptionStatus::Terminated {
                continue;
            }
            for cause in Cause::ALL {
                assert!(
                    !matches!(next(from, cause), Transition::To(_)),
                    "{cause:?} leaves termination"
                );
            }
        }
    }

    #[test]
    fn a_payment_never_lifts_an_operators_isolation() {
        for from in standings() {
            let lifted = next(from, Cause::Settled) == Transition::To(Standing::ACTIVE);
            assert_eq!(
                lifted,
                from == Standing::isolated(IsolationReason::Overdue),
                "{from:?}"
            );
        }
    }

    #[test]
    fn background_causes_are_never_refused() {
        // The sweep and the payment path meet subscriptions in any standing; only operators
        // get refusals to show.
        for from in standings() {
            for cause in [Cause::Overdue, Cause::Settled] {
                assert!(!matches!(next(from, cause), Transition::Refused(_)));
            }
        }
    }

    #[test]
    fn operator_causes_reach_their_status_or_are_refused() {
        for from in standings() {
            for (cause, status) in [
                (Cause::OperatorIsolates, SubscriptionStatus::Isolated),
                (Cause::OperatorReactivates, SubscriptionStatus::Active),
                (Cause::Terminate, SubscriptionStatus::Terminated),
            ] {
                match next(from, cause) {
                    Transition::To(to) => assert_eq!(to.status, status),
                    Transition::Refused(s) => assert_eq!(s, from.status),
                    Transition::Stay => panic!("{from:?} {cause:?} silently stays"),
                }
            }
        }
    }

    #[test]
    fn isolation_reasons_follow_who_isolated() {
        assert_eq!(
            next(Standing::ACTIVE, Cause::OperatorIsolates),
            Transition::To(Standing::isolated(IsolationReason::Manual))
        );
        assert_eq!(
            next(Standing::ACTIVE, Cause::Overdue),
            Transition::To(Standing::isolated(IsolationReason::Overdue))
        );
        let manual = Standing::isolated(IsolationReason::Manual);
        assert_eq!(next(manual, Cause::Overdue), Transition::Stay);
    }

    #[test]
    fn storage_names_round_trip() {
        for s in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(s.as_str()), Some(s));
        }
        for r in IsolationReason::ALL {
            assert_eq!(IsolationReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(SubscriptionStatus::parse("paused"), None);
        assert_eq!(IsolationReason::parse(""), None);
    }
}
