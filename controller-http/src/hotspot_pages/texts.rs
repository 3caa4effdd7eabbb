//! Every text of the hotspot pages, in Indonesian and English. One struct, so a text missing
//! in one language does not compile.

use mikrobill_core::locale::Lang;

/// The hotspot pages' texts in one language.
#[derive(Debug)]
pub struct Texts {
    /// Title of the login page.
    pub login_title: &'static str,
    /// Label of the voucher code field.
    pub code: &'static str,
    /// Label of the password field.
    pub password: &'static str,
    /// Under the password field: a voucher without a password uses its code.
    pub password_hint: &'static str,
    /// The login button.
    pub sign_in: &'static str,
    /// The QR scan button.
    pub scan: &'static str,
    /// A photo in which no QR code was found.
    pub scan_failed: &'static str,
    /// Link to the voucher shop.
    pub buy: &'static str,
    /// Link to the voucher shop for someone already online.
    pub buy_more: &'static str,
    /// Link to the voucher lookup in the portal.
    pub check_voucher: &'static str,
    /// Title of the page after a login.
    pub logged_in: &'static str,
    /// Link on to the page first asked for.
    pub go_on: &'static str,
    /// Title of the status page.
    pub status_title: &'static str,
    /// The account's name.
    pub user: &'static str,
    /// The device's IP address.
    pub ip: &'static str,
    /// The device's MAC address.
    pub mac: &'static str,
    /// Time online in this session.
    pub uptime: &'static str,
    /// Time left.
    pub time_left: &'static str,
    /// No time limit.
    pub unlimited: &'static str,
    /// Data received.
    pub downloaded: &'static str,
    /// Data sent.
    pub uploaded: &'static str,
    /// The logout button.
    pub log_out: &'static str,
    /// Title of the page after logging out.
    pub logged_out: &'static str,
    /// Link back to the login page.
    pub log_in_again: &'static str,
    /// Title of the error page.
    pub error_title: &'static str,
    /// Shown while redirecting.
    pub redirecting: &'static str,
    /// Label of the operator's phone number.
    pub phone: &'static str,
}

const ID: Texts = Texts {
    login_title: "Masuk hotspot",
    code: "Kode voucher",
    password: "Kata sandi",
    password_hint: "Kosongkan bila voucher Anda tidak punya kata sandi.",
    sign_in: "Masuk",
    scan: "Pindai kode QR",
    scan_failed: "Kode QR tidak terbaca. Ketik kodenya.",
    buy: "Belum punya voucher? Beli di sini",
    buy_more: "Beli voucher lagi",
    check_voucher: "Cek sisa waktu voucher",
    logged_in: "Anda sudah terhubung",
    go_on: "Lanjutkan",
    status_title: "Status koneksi",
    user: "Pengguna",
    ip: "Alamat IP",
    mac: "Alamat MAC",
    uptime: "Lama terhubung",
    time_left: "Sisa waktu",
    unlimited: "Tanpa batas",
    downloaded: "Diunduh",
    uploaded: "Diunggah",
    log_out: "Keluar",
    logged_out: "Anda sudah keluar",
    log_in_again: "Masuk lagi",
    error_title: "Terjadi kesalahan",
    redirecting: "Mengalihkan…",
    phone: "Telepon",
};

const EN: Texts = Texts {
    login_title: "Hotspot login",
    code: "Voucher code",
    password: "Password",
    password_hint: "Leave empty if your voucher has no password.",
    sign_in: "Log in",
    scan: "Scan QR code",
    scan_failed: "No QR code found. Please type the code.",
    buy: "No voucher yet? Buy one here",
    buy_more: "Buy another voucher",
    check_voucher: "Check your voucher's remaining time",
    logged_in: "You are connected",
    go_on: "Continue",
    status_title: "Connection status",
    user: "User",
    ip: "IP address",
    mac: "MAC address",
    uptime: "Connected for",
    time_left: "Time left",
    unlimited: "Unlimited",
    downloaded: "Downloaded",
    uploaded: "Uploaded",
    log_out: "Log out",
    logged_out: "You are logged out",
    log_in_again: "Log in again",
    error_title: "Something went wrong",
    redirecting: "Redirecting…",
    phone: "Phone",
};

/// The texts in `lang`.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Id => &ID,
        Lang::En => &EN,
    }
}
