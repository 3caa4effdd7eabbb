//! The voucher lifecycle: its states and which events move a voucher between them, as one
//! pure table. Every writer asks [`next`] (or [`from_states`] for a whole-table update) and
//! stores the answer.

use super::status_str;
use mikrobill_protocol::items::VoucherStatus;
use serde::{Deserialize, Serialize};

/// A voucher's lifecycle state as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Generated, not handed out yet.
    New,
    /// Sold (by a cashier, or to a reseller), never used.
    Sold,
    /// Used at least once; its validity runs.
    Active,
    /// Validity over.
    Expired,
    /// Time or data used up.
    Exhausted,
    /// Withdrawn by an operator.
    Revoked,
}

impl State {
    /// The protocol status the agents know.
    pub fn status(self) -> VoucherStatus {
        match self {
            State::New => VoucherStatus::New,
            State::Sold => VoucherStatus::Sold,
            State::Active => VoucherStatus::Active,
            State::Expired => VoucherStatus::Expired,
            State::Exhausted => VoucherStatus::Exhausted,
            State::Revoked => VoucherStatus::Revoked,
        }
    }

    /// Storage name.
    pub fn as_str(self) -> &'static str {
        status_str(self.status())
    }
}

impl From<VoucherStatus> for State {
    fn from(s: VoucherStatus) -> State {
        match s {
            VoucherStatus::New => State::New,
            VoucherStatus::Sold => State::Sold,
            VoucherStatus::Active => State::Active,
            VoucherStatus::Expired => State::Expired,
            VoucherStatus::Exhausted => State::Exhausted,
            VoucherStatus::Revoked => State::Revoked,
        }
    }
}

impl State {
    /// Every state, for tests.
    pub const ALL: [State; 6] = [
        State::New,
        State::Sold,
        State::Active,
        State::Expired,
        State::Exhausted,
        State::Revoked,
    ];
}

/// What happens to a voucher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A cashier sells it, or its batch goes to a reseller.
    Sell,
    /// A site reports its first session.
    FirstUse,
    /// Its validity has passed.
    Expire,
    /// Its time or data is used up.
    Exhaust,
    /// An operator withdraws it (a single voucher; any that has not ended).
    Revoke,
    /// Its batch is withdrawn: only vouchers nobody has started, so a running session is not
    /// cut by a batch-wide action.
    RevokeUnused,
}

impl Event {
    /// Every event, for tests.
    pub const ALL: [Event; 6] = [
        Event::Sell,
        Event::FirstUse,
        Event::Expire,
        Event::Exhaust,
        Event::Revoke,
        Event::RevokeUnused,
    ];
}

/// The table: the state a voucher in `from` moves to on `event`, or `None` when the event
/// does not apply to it.
pub fn next(from: State, event: Event) -> Option<State> {
    use State::*;
    match (from, event) {
        (New, Event::Sell) => Some(Sold),
        (New | Sold, Event::FirstUse) => Some(Active),
        (Active, Event::Expire) => Some(Expired),
        (Active, Event::Exhaust) => Some(Exhausted),
        (New | Sold | Active, Event::Revoke) => Some(Revoked),
        (New | Sold, Event::RevokeUnused) => Some(Revoked),
        _ => None,
    }
}

/// The states `event` applies to, in table order.
pub fn from_states(event: Event) -> Vec<State> {
    State::ALL
        .into_iter()
        .filter(|s| next(*s, event).is_some())
        .collect()
}

/// `status IN (...)` over the states `event` applies to, for a statement that moves many
/// vouchers at once; `column` names the status column.
pub fn applies_sql(column: &str, event: Event) -> String {
    let names: Vec<String> = from_states(event)
        .into_iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("{column} IN ({})", names.join(", "))
}

/// The message an operator gets when `event` does not apply to a voucher in `state`.
pub fn refusal(code: &str, state: State, event: Event) -> String {
    let allowed: Vec<&str> = from_states(event).into_iter().map(State::as_str).collect();
    let allowed = match allowed.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!(
        "voucher {code} is {}; only {allowed} vouchers can be {}",
        state.as_str(),
        match event {
            Event::Sell => "sold",
            Event::FirstUse => "started",
            Event::Expire => "expired",
            Event::Exhaust => "used up",
            Event::Revoke | Event::RevokeUnused => "revoked",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_vouchers_stay_ended() {
        for from in [State::Expired, State::Exhausted, State::Revoked] {
            for event in Event::ALL {
                assert_eq!(next(from, event), None, "{from:?} {event:?}");
            }
        }
    }

    #[test]
    fn nothing_goes_back_to_new_or_unused() {
        for from in State::ALL {
            for event in Event::ALL {
                let to = next(from, event);
                assert_ne!(to, Some(State::New));
                if to == Some(State::Sold) {
                    assert_eq!((from, event), (State::New, Event::Sell));
                }
            }
        }
    }

    #[test]
    fn only_a_session_starts_a_voucher() {
        for from in State::ALL {
            for event in Event::ALL {
                if next(from, event) == Some(State::Active) {
                    assert_eq!(event, Event::FirstUse);
                }
            }
        }
    }

    #[test]
    fn a_batch_revoke_never_cuts_a_running_voucher() {
        assert_eq!(next(State::Active, Event::RevokeUnused), None);
        for s in from_states(Event::RevokeUnused) {
            assert!(from_states(Event::Revoke).contains(&s));
        }
    }

    #[test]
    fn every_event_moves_somewhere_and_changes_the_state() {
        for event in Event::ALL {
            assert!(!from_states(event).is_empty(), "{event:?} applies nowhere");
            for from in from_states(event) {
                assert_ne!(next(from, event), Some(from));
            }
        }
    }

    #[test]
    fn the_sql_lists_the_same_states() {
        assert_eq!(
            applies_sql("status", Event::FirstUse),
            "status IN ('new', 'sold')"
        );
        assert_eq!(
            applies_sql("v.status", Event::Expire),
            "v.status IN ('active')"
        );
        assert_eq!(
            refusal("ABC", State::Expired, Event::Revoke),
            "voucher ABC is expired; only new, sold or active vouchers can be revoked"
        );
    }
}
