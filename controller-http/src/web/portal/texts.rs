//! Every text the portal shows, in Indonesian and English. One struct, so a text missing in
//! one language does not compile.

use crate::web::Lang;

/// The portal's texts in one language.
#[derive(Debug)]
pub struct Texts {
    /// The language these are in.
    pub lang: Lang,
    /// Title of every page.
    pub portal: &'static str,
    /// The skip link for keyboard and screen reader users.
    pub skip_to_content: &'static str,
    /// Label of the language switch.
    pub language: &'static str,
    /// Navigation: the overview.
    pub home: &'static str,
    /// Navigation: voucher lookup.
    pub voucher_check: &'static str,
    /// Log in.
    pub log_in: &'static str,
    /// Log out.
    pub log_out: &'static str,
    /// Login form title.
    pub login_title: &'static str,
    /// Login identifier label.
    pub identifier: &'static str,
    /// Hint under the identifier.
    pub identifier_hint: &'static str,
    /// Password label.
    pub password: &'static str,
    /// Wrong credentials.
    pub login_failed: &'static str,
    /// How to get a password.
    pub no_password_hint: &'static str,
    /// Heading of the one-time code login.
    pub code_login_title: &'static str,
    /// Explains the one-time code login.
    pub code_login_hint: &'static str,
    /// Button that sends a code.
    pub send_code: &'static str,
    /// Code field label.
    pub code: &'static str,
    /// After asking for a code (said whether or not the account exists).
    pub code_sent: &'static str,
    /// Wrong or expired code.
    pub code_failed: &'static str,
    /// Telegram section heading.
    pub telegram: &'static str,
    /// The chat is linked.
    pub telegram_linked: &'static str,
    /// Explains linking.
    pub telegram_hint: &'static str,
    /// Button that links the chat.
    pub link_telegram: &'static str,
    /// Greeting before the name.
    pub hello: &'static str,
    /// Customer number label.
    pub customer_number: &'static str,
    /// Credit balance label.
    pub credit: &'static str,
    /// Subscriptions heading.
    pub subscriptions: &'static str,
    /// No subscriptions.
    pub no_subscriptions: &'static str,
    /// User name column.
    pub username: &'static str,
    /// Plan column.
    pub plan: &'static str,
    /// Status column.
    pub status: &'static str,
    /// Usage heading.
    pub usage_this_cycle: &'static str,
    /// Billing cycle label.
    pub cycle: &'static str,
    /// Sessions label.
    pub sessions: &'static str,
    /// Online time label.
    pub online_time: &'static str,
    /// Downloaded data label.
    pub downloaded: &'static str,
    /// Uploaded data label.
    pub uploaded: &'static str,
    /// Invoices heading.
    pub invoices: &'static str,
    /// No invoices.
    pub no_invoices: &'static str,
    /// Number column.
    pub number: &'static str,
    /// Issue date column.
    pub issued: &'static str,
    /// Due date column.
    pub due: &'static str,
    /// Total column.
    pub total: &'static str,
    /// Payments heading.
    pub payments: &'static str,
    /// No payments.
    pub no_payments: &'static str,
    /// Date column.
    pub date: &'static str,
    /// Amount column.
    pub amount: &'static str,
    /// Method column.
    pub method: &'static str,
    /// Link to a record.
    pub view: &'static str,
    /// Invoice heading.
    pub invoice: &'static str,
    /// Billed-to label.
    pub billed_to: &'static str,
    /// Billing period label.
    pub period: &'static str,
    /// Line description column.
    pub description: &'static str,
    /// Subtotal label.
    pub subtotal: &'static str,
    /// Tax label.
    pub tax: &'static str,
    /// Marks tax included in prices.
    pub tax_included: &'static str,
    /// Amount paid label.
    pub amount_paid: &'static str,
    /// Amount still due label.
    pub amount_due: &'static str,
    /// Download link.
    pub download: &'static str,
    /// Pay button.
    pub pay_now: &'static str,
    /// No online payment configured.
    pub pay_at_desk: &'static str,
    /// The gateway failed.
    pub gateway_unavailable: &'static str,
    /// Nothing to pay.
    pub nothing_to_pay: &'static str,
    /// Back link.
    pub back: &'static str,
    /// Voucher lookup heading.
    pub voucher_title: &'static str,
    /// Voucher code label.
    pub voucher_code: &'static str,
    /// Lookup button.
    pub check: &'static str,
    /// Unknown voucher.
    pub voucher_not_found: &'static str,
    /// Time left label.
    pub time_left: &'static str,
    /// Data left label.
    pub data_left: &'static str,
    /// No limit.
    pub unlimited: &'static str,
    /// Validity end label.
    pub valid_until: &'static str,
    /// Validity starts at first use.
    pub validity_not_started: &'static str,
    /// First use label.
    pub first_used: &'static str,
    /// Page not found.
    pub not_found: &'static str,
    /// CSRF failure.
    pub form_expired: &'static str,
    /// Malformed request.
    pub bad_request: &'static str,
    /// Server failure.
    pub internal_error: &'static str,
    /// Throttled, heading.
    pub too_many_attempts: &'static str,
    /// Hours abbreviation.
    pub hours_short: &'static str,
    /// Minutes abbreviation.
    pub minutes_short: &'static str,
    /// Subscription active.
    pub sub_active: &'static str,
    /// Subscription isolated.
    pub sub_isolated: &'static str,
    /// Subscription terminated.
    pub sub_terminated: &'static str,
    /// Invoice unpaid.
    pub inv_unpaid: &'static str,
    /// Invoice paid.
    pub inv_paid: &'static str,
    /// Invoice void.
    pub inv_void: &'static str,
    /// Cash payment.
    pub pay_cash: &'static str,
    /// Bank transfer.
    pub pay_transfer: &'static str,
    /// Gateway payment.
    pub pay_gateway: &'static str,
    /// Paid from credit.
    pub pay_credit: &'static str,
    /// Voucher unused.
    pub v_new: &'static str,
    /// Voucher sold, unused.
    pub v_sold: &'static str,
    /// Voucher in use.
    pub v_active: &'static str,
    /// Voucher in use at its plan's fair-usage rate (data limit used).
    pub v_throttled: &'static str,
    /// Voucher expired.
    pub v_expired: &'static str,
    /// Voucher used up.
    pub v_exhausted: &'static str,
    /// Voucher revoked.
    pub v_revoked: &'static str,
    /// Navigation: buy a voucher.
    pub buy_nav: &'static str,
    /// Voucher purchase page title.
    pub buy_title: &'static str,
    /// Under the purchase title.
    pub buy_intro: &'static str,
    /// When no gateway is configured.
    pub buy_unavailable: &'static str,
    /// When no plan is for sale.
    pub buy_none: &'static str,
    /// Phone field.
    pub buy_phone: &'static str,
    /// Under the phone field.
    pub buy_phone_hint: &'static str,
    /// Purchase button.
    pub buy_submit: &'static str,
    /// Order page title.
    pub order_title: &'static str,
    /// While the payment is not confirmed.
    pub order_pending: &'static str,
    /// Keep this page.
    pub order_keep: &'static str,
    /// Button to the gateway.
    pub order_pay: &'static str,
    /// A paid voucher order.
    pub order_paid_voucher: &'static str,
    /// How to use the code.
    pub order_code_hint: &'static str,
    /// A paid top-up.
    pub order_paid_topup: &'static str,
    /// Top-up page title.
    pub topup_title: &'static str,
    /// Under the top-up title.
    pub topup_intro: &'static str,
    /// Amount field.
    pub topup_amount: &'static str,
    /// Top-up button.
    pub topup_submit: &'static str,
    try_again_prefix: &'static str,
    try_again_suffix: &'static str,
}

impl Texts {
    /// The texts for `lang`.
    pub fn of(lang: Lang) -> &'static Texts {
        match lang {
            Lang::Id => &ID,
            Lang::En => &EN,
        }
    }

    /// "Try again in N minutes."
    pub fn try_again_in(&self, minutes: i64) -> String {
        format!(
            "{}{}{}",
            self.try_again_prefix,
            minutes.max(1),
            self.try_again_suffix
        )
    }
}

static ID: Texts = Texts {
    lang: Lang::Id,
    portal: "Portal Pelanggan",
    skip_to_content: "Langsung ke isi",
    language: "Bahasa",
    home: "Beranda",
    voucher_check: "Cek voucher",
    log_in: "Masuk",
    log_out: "Keluar",
    login_title: "Masuk ke portal pelanggan",
    identifier: "Nomor pelanggan atau nomor HP",
    identifier_hint: "Contoh: C000042 atau 0812-3456-7890",
    password: "Kata sandi",
    login_failed: "Nomor atau kata sandi salah.",
    no_password_hint: "Belum punya kata sandi? Hubungi kantor kami.",
    code_login_title: "Masuk dengan kode sekali pakai",
    code_login_hint: "Kami kirim kode ke WhatsApp, Telegram, SMS atau e-mail yang terdaftar.",
    send_code: "Kirim kode",
    code: "Kode",
    code_sent: "Jika nomor terdaftar, kode sudah dikirim ke kontak Anda. Kode berlaku 10 menit.",
    code_failed: "Kode salah atau kedaluwarsa.",
    telegram: "Telegram",
    telegram_linked: "Telegram Anda sudah terhubung: tagihan dan pemberitahuan juga dikirim ke sana.",
    telegram_hint: "Hubungkan Telegram untuk menerima tagihan dan pemberitahuan di sana.",
    link_telegram: "Hubungkan Telegram",
    hello: "Halo",
    customer_number: "Nomor pelanggan",
    credit: "Saldo kredit",
    subscriptions: "Langganan",
    no_subscriptions: "Belum ada langganan.",
    username: "Nama pengguna",
    plan: "Paket",
    status: "Status",
    usage_this_cycle: "Pemakaian siklus ini",
    cycle: "Siklus",
    sessions: "Sesi",
    online_time: "Waktu online",
    downloaded: "Unduh",
    uploaded: "Unggah",
    invoices: "Tagihan",
    no_invoices: "Belum ada tagihan.",
    number: "Nomor",
    issued: "Tanggal",
    due: "Jatuh tempo",
    total: "Total",
    payments: "Pembayaran",
    no_payments: "Belum ada pembayaran.",
    date: "Tanggal",
    amount: "Jumlah",
    method: "Metode",
    view: "Lihat",
    invoice: "Tagihan",
    billed_to: "Ditagihkan kepada",
    period: "Periode",
    description: "Keterangan",
    subtotal: "Subtotal",
    tax: "Pajak",
    tax_included: "sudah termasuk dalam harga",
    amount_paid: "Sudah dibayar",
    amount_due: "Sisa tagihan",
    download: "Unduh",
    pay_now: "Bayar sekarang",
    pay_at_desk: "Pembayaran online belum tersedia. Silakan bayar di kantor kami dengan menyebutkan nomor tagihan ini.",
    gateway_unavailable: "Pembayaran online sedang tidak bisa dipakai. Coba lagi nanti atau bayar di kantor kami.",
    nothing_to_pay: "Tagihan ini tidak perlu dibayar lagi.",
    back: "Kembali",
    voucher_title: "Cek sisa voucher",
    voucher_code: "Kode voucher",
    check: "Cek",
    voucher_not_found: "Voucher tidak ditemukan.",
    time_left: "Sisa waktu",
    data_left: "Sisa kuota",
    unlimited: "Tanpa batas",
    valid_until: "Berlaku sampai",
    validity_not_started: "Masa berlaku dimulai saat voucher pertama kali dipakai.",
    first_used: "Pertama dipakai",
    not_found: "Halaman tidak ditemukan.",
    form_expired: "Formulir sudah kedaluwarsa. Muat ulang halaman lalu coba lagi.",
    bad_request: "Permintaan tidak valid.",
    internal_error: "Terjadi kesalahan. Silakan coba lagi nanti.",
    too_many_attempts: "Terlalu banyak percobaan.",
    hours_short: "jam",
    minutes_short: "menit",
    sub_active: "Aktif",
    sub_isolated: "Diisolir",
    sub_terminated: "Berhenti",
    inv_unpaid: "Belum dibayar",
    inv_paid: "Lunas",
    inv_void: "Dibatalkan",
    pay_cash: "Tunai",
    pay_transfer: "Transfer bank",
    pay_gateway: "Pembayaran online",
    pay_credit: "Saldo kredit",
    v_new: "Belum dipakai",
    v_sold: "Belum dipakai",
    v_active: "Aktif",
    v_throttled: "Aktif, kecepatan diturunkan (kuota data habis)",
    v_expired: "Kedaluwarsa",
    v_exhausted: "Habis",
    v_revoked: "Dibatalkan",
    try_again_prefix: "Coba lagi dalam ",
    try_again_suffix: " menit.",
    buy_nav: "Beli voucher",
    buy_title: "Beli voucher hotspot",
    buy_intro: "Pilih paket, bayar online, dan kode voucher langsung tampil di halaman ini.",
    buy_unavailable: "Pembelian online belum tersedia. Beli voucher di kasir atau reseller kami.",
    buy_none: "Belum ada paket yang dijual online.",
    buy_phone: "Nomor WhatsApp (boleh kosong)",
    buy_phone_hint: "Untuk kami kirimi kodenya juga.",
    buy_submit: "Lanjut ke pembayaran",
    order_title: "Pesanan",
    order_pending: "Menunggu pembayaran. Halaman ini diperbarui sendiri setelah pembayaran diterima.",
    order_keep: "Simpan tautan halaman ini: kode voucher Anda ada di sini.",
    order_pay: "Bayar",
    order_paid_voucher: "Pembayaran diterima. Kode voucher Anda:",
    order_code_hint: "Masukkan kode ini sebagai nama pengguna dan kata sandi di halaman login hotspot.",
    order_paid_topup: "Pembayaran diterima dan sudah masuk ke akun Anda.",
    topup_title: "Isi saldo",
    topup_intro: "Saldo dipakai untuk membayar tagihan terbuka lebih dulu; sisanya menjadi kredit untuk tagihan berikutnya.",
    topup_amount: "Jumlah",
    topup_submit: "Lanjut ke pembayaran",
};

static EN: Texts = Texts {
    lang: Lang::En,
    portal: "Customer portal",
    skip_to_content: "Skip to content",
    language: "Language",
    home: "Home",
    voucher_check: "Check a voucher",
    log_in: "Log in",
    log_out: "Log out",
    login_title: "Log in to the customer portal",
    identifier: "Customer number or phone number",
    identifier_hint: "For example C000042 or 0812-3456-7890",
    password: "Password",
    login_failed: "Wrong number or password.",
    no_password_hint: "No password yet? Contact our office.",
    code_login_title: "Log in with a one-time code",
    code_login_hint: "We send a code to your registered WhatsApp, Telegram, SMS or e-mail.",
    send_code: "Send code",
    code: "Code",
    code_sent: "If the number is registered, a code is on its way to your contacts. It is valid for 10 minutes.",
    code_failed: "Wrong or expired code.",
    telegram: "Telegram",
    telegram_linked: "Your Telegram is linked: invoices and notices go there too.",
    telegram_hint: "Link Telegram to get invoices and notices there.",
    link_telegram: "Link Telegram",
    hello: "Hello",
    customer_number: "Customer number",
    credit: "Credit balance",
    subscriptions: "Subscriptions",
    no_subscriptions: "No subscriptions yet.",
    username: "User name",
    plan: "Plan",
    status: "Status",
    usage_this_cycle: "Usage this cycle",
    cycle: "Cycle",
    sessions: "Sessions",
    online_time: "Online time",
    downloaded: "Downloaded",
    uploaded: "Uploaded",
    invoices: "Invoices",
    no_invoices: "No invoices yet.",
    number: "Number",
    issued: "Issued",
    due: "Due",
    total: "Total",
    payments: "Payments",
    no_payments: "No payments yet.",
    date: "Date",
    amount: "Amount",
    method: "Method",
    view: "View",
    invoice: "Invoice",
    billed_to: "Billed to",
    period: "Period",
    description: "Description",
    subtotal: "Subtotal",
    tax: "Tax",
    tax_included: "included in the prices",
    amount_paid: "Paid",
    amount_due: "Amount due",
    download: "Download",
    pay_now: "Pay now",
    pay_at_desk: "Online payment is not available. Please pay at our office, quoting this invoice number.",
    gateway_unavailable: "Online payment is not working right now. Try again later or pay at our office.",
    nothing_to_pay: "There is nothing left to pay on this invoice.",
    back: "Back",
    voucher_title: "Check a voucher's balance",
    voucher_code: "Voucher code",
    check: "Check",
    voucher_not_found: "No such voucher.",
    time_left: "Time left",
    data_left: "Data left",
    unlimited: "Unlimited",
    valid_until: "Valid until",
    validity_not_started: "Validity starts when the voucher is first used.",
    first_used: "First used",
    not_found: "Page not found.",
    form_expired: "This form has expired. Reload the page and try again.",
    bad_request: "Invalid request.",
    internal_error: "Something went wrong. Please try again later.",
    too_many_attempts: "Too many attempts.",
    hours_short: "h",
    minutes_short: "min",
    sub_active: "Active",
    sub_isolated: "Suspended",
    sub_terminated: "Terminated",
    inv_unpaid: "Unpaid",
    inv_paid: "Paid",
    inv_void: "Void",
    pay_cash: "Cash",
    pay_transfer: "Bank transfer",
    pay_gateway: "Online payment",
    pay_credit: "Credit balance",
    v_new: "Unused",
    v_sold: "Unused",
    v_active: "Active",
    v_throttled: "Active, slowed down (data limit used)",
    v_expired: "Expired",
    v_exhausted: "Used up",
    v_revoked: "Revoked",
    try_again_prefix: "Try again in ",
    try_again_suffix: " minutes.",
    buy_nav: "Buy a voucher",
    buy_title: "Buy a hotspot voucher",
    buy_intro: "Choose a plan and pay online; the voucher code appears on this page at once.",
    buy_unavailable: "Online purchase is not available. Buy a voucher at our desk or from a reseller.",
    buy_none: "No plan is on sale online.",
    buy_phone: "WhatsApp number (optional)",
    buy_phone_hint: "So we can send you the code as well.",
    buy_submit: "Continue to payment",
    order_title: "Order",
    order_pending: "Waiting for the payment. This page updates itself once the payment is received.",
    order_keep: "Keep this page's link: your voucher code is shown here.",
    order_pay: "Pay",
    order_paid_voucher: "Payment received. Your voucher code:",
    order_code_hint: "Type this code as both user name and password on the hotspot login page.",
    order_paid_topup: "Payment received and added to your account.",
    topup_title: "Top up",
    topup_intro: "The money pays your open invoices first; the rest is credit for the next ones.",
    topup_amount: "Amount",
    topup_submit: "Continue to payment",
};
