//! How the portal writes dates, durations, data amounts, money and status words for a
//! language.

use super::texts::Texts;
use crate::web::{Lang, format_money};
use mikrobill_core::billing::cycle;
use mikrobill_core::billing::invoices::InvoiceStatus;
use mikrobill_core::payments::PaymentMethod;
use mikrobill_core::settings::BillingSettings;
use mikrobill_core::subscriptions::SubscriptionStatus;
use mikrobill_core::vouchers::State;

/// Formats values for one request: the language's texts and the operator's settings.
#[derive(Debug, Clone)]
pub(super) struct Fmt {
    /// The texts.
    pub t: &'static Texts,
    /// Currency, decimals and time zone.
    pub settings: BillingSettings,
}

impl Fmt {
    /// Money in the ledger currency.
    pub(super) fn money(&self, minor: i64) -> String {
        format_money(
            minor,
            &self.settings.currency,
            self.settings.currency_exponent,
            self.t.lang,
        )
    }

    /// A local calendar date: `24/11/2026` in Indonesian, `2026-11-24` in English.
    pub(super) fn date(&self, ms: i64) -> String {
        let d = cycle::local_date(ms, self.settings.utc_offset_minutes);
        match self.t.lang {
            Lang::Id => format!("{:02}/{:02}/{:04}", d.day(), u8::from(d.month()), d.year()),
            Lang::En => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        }
    }

    /// A local date and time to the minute.
    pub(super) fn date_time(&self, ms: i64) -> String {
        let local = ms + i64::from(self.settings.utc_offset_minutes) * 60_000;
        let minute_of_day = local.rem_euclid(86_400_000) / 60_000;
        format!(
            "{} {:02}:{:02}",
            self.date(ms),
            minute_of_day / 60,
            minute_of_day % 60
        )
    }

    /// A period of local days, end exclusive as stored: the last day shown is the day before.
    pub(super) fn period(&self, start: i64, end: i64) -> String {
        format!("{} – {}", self.date(start), self.date(end - 1))
    }

    /// A duration in hours and minutes, e.g. `2 jam 5 menit`.
    pub(super) fn duration(&self, secs: i64) -> String {
        let minutes = secs.max(0) / 60;
        let (h, m) = (minutes / 60, minutes % 60);
        if h == 0 {
            format!("{m} {}", self.t.minutes_short)
        } else {
            format!("{h} {} {m} {}", self.t.hours_short, self.t.minutes_short)
        }
    }

    /// A data amount in decimal units with one decimal place, e.g. `1,5 GB`.
    pub(super) fn bytes(&self, bytes: i64) -> String {
        mikrobill_core::locale::format_bytes(bytes, self.t.lang)
    }

    /// A tax rate in basis points as a percentage, e.g. `11 %` or `12,5 %`.
    pub(super) fn percent(&self, bp: i64) -> String {
        let text = if bp % 100 == 0 {
            format!("{}", bp / 100)
        } else {
            format!("{}.{:02}", bp / 100, bp % 100)
                .trim_end_matches('0')
                .to_string()
        };
        let text = match self.t.lang {
            Lang::Id => text.replace('.', ","),
            Lang::En => text,
        };
        format!("{text} %")
    }

    /// A subscription status.
    pub(super) fn subscription_status(&self, s: SubscriptionStatus) -> &'static str {
        match s {
            SubscriptionStatus::Active => self.t.sub_active,
            SubscriptionStatus::Isolated => self.t.sub_isolated,
            SubscriptionStatus::Terminated => self.t.sub_terminated,
        }
    }

    /// An invoice status.
    pub(super) fn invoice_status(&self, s: InvoiceStatus) -> &'static str {
        match s {
            InvoiceStatus::Unpaid => self.t.inv_unpaid,
            InvoiceStatus::Paid => self.t.inv_paid,
            InvoiceStatus::Void => self.t.inv_void,
        }
    }

    /// A payment method.
    pub(super) fn payment_method(&self, m: PaymentMethod) -> &'static str {
        match m {
            PaymentMethod::Cash => self.t.pay_cash,
            PaymentMethod::Transfer => self.t.pay_transfer,
            PaymentMethod::Gateway => self.t.pay_gateway,
            PaymentMethod::Credit => self.t.pay_credit,
        }
    }

    /// A voucher state.
    pub(super) fn voucher_state(&self, s: State) -> &'static str {
        match s {
            State::New => self.t.v_new,
            State::Sold => self.t.v_sold,
            State::Active => self.t.v_active,
            State::Expired => self.t.v_expired,
            State::Exhausted => self.t.v_exhausted,
            State::Revoked => self.t.v_revoked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(lang: Lang) -> Fmt {
        Fmt {
            t: Texts::of(lang),
            settings: BillingSettings::default(),
        }
    }

    #[test]
    fn locale_formats() {
        let id = fmt(Lang::Id);
        let en = fmt(Lang::En);
        // 2026-11-24 00:30 UTC is 07:30 in WIB (UTC+7, the default).
        let ms = 1_795_480_200_000;
        assert_eq!(id.date(ms), "24/11/2026");
        assert_eq!(en.date(ms), "2026-11-24");
        assert_eq!(en.date_time(ms), "2026-11-24 07:30");
        assert_eq!(id.bytes(1_500_000_000), "1,5 GB");
        assert_eq!(en.bytes(1_500_000_000), "1.5 GB");
        assert_eq!(en.bytes(999), "999 B");
        assert_eq!(id.duration(3_900), "1 jam 5 menit");
        assert_eq!(en.duration(59), "0 min");
        assert_eq!(id.percent(1100), "11 %");
        assert_eq!(id.percent(1250), "12,5 %");
        assert_eq!(en.money(150_000), "Rp 150,000");
    }
}
