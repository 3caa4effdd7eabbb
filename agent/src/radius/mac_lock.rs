//! MAC lock: a voucher whose plan sets `mac_lock` is bound to the first device
//! (Calling-Station-Id) that logs in with it, at every site. The controller's binding (the
//! fleet's earliest session) wins over the one this site made on its own while offline.
//! Pure: the caller stores the binding a login makes.

use super::policy::RejectReason;

/// A MAC as RouterOS and others write it, in one form: upper case, `:` separated.
pub fn normalize(mac: &str) -> String {
    mac.trim().to_ascii_uppercase().replace('-', ":")
}

/// Whether `device` may log in with the voucher. `Ok(Some(mac))` when the login binds the
/// voucher to `mac` (no binding known yet); a voucher bound to another device, or asked for
/// without a device at all, is refused.
pub fn check(
    locked: bool,
    controller_bound: Option<&str>,
    locally_bound: Option<&str>,
    device: Option<&str>,
) -> Result<Option<String>, RejectReason> {
    if !locked {
        return Ok(None);
    }
    let device = device.map(normalize).filter(|d| !d.is_empty());
    match (controller_bound.or(locally_bound), device) {
        (Some(bound), Some(device)) if normalize(bound) == device => Ok(None),
        (Some(_), _) => Err(RejectReason::MacLocked),
        (None, device) => Ok(device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AA:BB:CC:00:00:01";
    const B: &str = "AA:BB:CC:00:00:02";

    #[test]
    fn the_first_device_binds_and_others_are_refused() {
        assert_eq!(check(true, None, None, Some(A)), Ok(Some(A.into())));
        assert_eq!(
            check(true, None, Some(A), Some(B)),
            Err(RejectReason::MacLocked)
        );
        assert_eq!(
            check(true, None, Some(A), Some("aa-bb-cc-00-00-01")),
            Ok(None)
        );
        assert_eq!(
            check(true, None, Some(A), None),
            Err(RejectReason::MacLocked)
        );
        assert_eq!(
            check(true, None, None, None),
            Ok(None),
            "nothing to bind to yet"
        );
    }

    #[test]
    fn the_controllers_choice_wins_over_an_offline_binding() {
        assert_eq!(check(true, Some(B), Some(A), Some(B)), Ok(None));
        assert_eq!(
            check(true, Some(B), Some(A), Some(A)),
            Err(RejectReason::MacLocked)
        );
    }

    #[test]
    fn without_the_option_any_device_logs_in() {
        assert_eq!(check(false, Some(A), Some(A), Some(B)), Ok(None));
    }
}
