//! Every text of the admin UI in Indonesian and English: `(key, Indonesian, English)`.
//! Templates ask `c.t("key")`; a unit test checks that every key they use exists here.

use crate::web::Lang;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The catalog.
const TEXTS: &[(&str, &str, &str)] = &[
    ("lang.name", "Bahasa Indonesia", "English"),
    ("skip", "Lewati ke isi", "Skip to content"),
    ("nav.label", "Menu utama", "Main menu"),
    ("nav.dashboard", "Dasbor", "Dashboard"),
    ("nav.customers", "Pelanggan", "Customers"),
    ("nav.plans", "Paket", "Plans"),
    ("nav.vouchers", "Voucher", "Vouchers"),
    (
        "nav.subscriptions",
        "Langganan PPPoE",
        "PPPoE subscriptions",
    ),
    ("nav.invoices", "Tagihan", "Invoices"),
    ("nav.cash", "Kasir", "Cash desk"),
    ("nav.payments", "Pembayaran", "Payments"),
    ("nav.sites", "Lokasi", "Sites"),
    ("nav.admins", "Pengguna admin", "Admin users"),
    ("nav.audit", "Log audit", "Audit log"),
    ("nav.settings", "Pengaturan", "Settings"),
    ("nav.sales", "Penjualan", "Sales"),
    ("nav.subscribers", "Langganan", "Subscribers"),
    ("nav.network", "Jaringan", "Network"),
    ("nav.reports", "Laporan", "Reports"),
    ("nav.sessions", "Pengguna online", "Online users"),
    (
        "session.hint",
        "Sesi yang terbuka menurut accounting; sesi tanpa kabar lebih dari 2,5 kali interval interim tidak ditampilkan.",
        "Open sessions as accounting reports them; a session silent for more than 2.5 interim intervals is not shown.",
    ),
    ("session.user", "Pengguna", "User"),
    ("session.nas", "NAS", "NAS"),
    ("session.ip", "Alamat IP", "IP address"),
    ("session.mac", "MAC", "MAC"),
    ("session.started", "Mulai", "Started"),
    ("session.uptime", "Durasi", "Uptime"),
    ("session.bytes_in", "Unggah", "Upload"),
    ("session.bytes_out", "Unduh", "Download"),
    ("session.kick", "Putuskan", "Kick"),
    ("nav.system", "Sistem", "System"),
    ("report.revenue", "Pendapatan", "Revenue"),
    ("report.sales", "Penjualan voucher", "Voucher sales"),
    ("report.receivables", "Umur piutang", "Receivables aging"),
    (
        "report.subscribers",
        "Pergerakan pelanggan",
        "Subscriber movements",
    ),
    ("report.usage", "Pemakaian", "Usage"),
    ("report.bad_view", "laporan tidak dikenal", "no such report"),
    (
        "report.bad_period",
        "pilih hari atau bulan",
        "choose day or month",
    ),
    (
        "report.bad_by",
        "pengelompokan tidak tersedia untuk laporan ini",
        "this report cannot be grouped that way",
    ),
    (
        "report.bad_date",
        "tanggal harus berbentuk TTTT-BB-HH",
        "the date must look like YYYY-MM-DD",
    ),
    ("report.group", "Kelompok", "Group"),
    ("report.count", "Jumlah", "Count"),
    ("report.amount", "Nilai", "Amount"),
    ("report.total", "Total", "Total"),
    ("report.totals", "Total per kelompok", "Totals by group"),
    ("report.per_period", "Per periode", "Per period"),
    ("report.period", "Periode", "Period"),
    ("report.period_day", "Harian", "By day"),
    ("report.period_month", "Bulanan", "By month"),
    ("report.from", "Dari", "From"),
    ("report.to", "Sampai", "To"),
    ("report.by", "Kelompokkan menurut", "Group by"),
    ("report.show", "Tampilkan", "Show"),
    ("report.csv", "Unduh CSV", "Download CSV"),
    ("report.online", "Waktu online", "Online time"),
    ("report.bytes_in", "Unggah", "Upload"),
    ("report.bytes_out", "Unduh", "Download"),
    ("report.sessions", "Sesi", "Sessions"),
    (
        "report.chart.revenue",
        "Pendapatan per periode",
        "Revenue per period",
    ),
    (
        "report.chart.sales",
        "Penjualan voucher per periode",
        "Voucher sales per period",
    ),
    (
        "report.chart.aging",
        "Piutang menurut umur",
        "Receivables by age",
    ),
    (
        "report.chart.new",
        "Pelanggan baru per periode",
        "New subscribers per period",
    ),
    (
        "report.chart.usage",
        "Trafik per periode",
        "Traffic per period",
    ),
    ("report.bucket", "Umur", "Age"),
    ("report.bucket.current", "Belum jatuh tempo", "Not yet due"),
    ("report.bucket.1_30", "1-30 hari", "1-30 days"),
    ("report.bucket.31_60", "31-60 hari", "31-60 days"),
    ("report.bucket.61_90", "61-90 hari", "61-90 days"),
    (
        "report.bucket.over_90",
        "Lebih dari 90 hari",
        "Over 90 days",
    ),
    ("report.buckets", "Per umur", "By age"),
    ("report.invoices", "Tagihan", "Invoices"),
    (
        "report.top_debtors",
        "Pelanggan dengan piutang terbesar",
        "Customers who owe most",
    ),
    ("report.new", "Baru", "New"),
    ("report.isolated", "Diisolir", "Isolated"),
    ("report.reactivated", "Aktif kembali", "Reactivated"),
    ("report.terminated", "Berhenti", "Terminated"),
    ("report.top", "Pemakai terbesar", "Top users"),
    ("report.by.source", "Sumber", "Source"),
    ("report.by.method", "Metode pembayaran", "Payment method"),
    ("report.by.site", "Lokasi", "Site"),
    ("report.by.plan", "Paket", "Plan"),
    ("report.by.reseller", "Reseller", "Reseller"),
    ("report.by.batch", "Batch", "Batch"),
    ("report.by.customer", "Pelanggan", "Customer"),
    ("report.by.account", "Akun", "Account"),
    ("report.exports", "Ekspor data", "Export lists"),
    (
        "report.exports_help",
        "Seluruh daftar sebagai CSV (waktu lokal, uang dalam satuan terkecil). Kata sandi voucher tidak ikut diekspor.",
        "Whole lists as CSV (local times, money in minor units). Voucher passwords are never exported.",
    ),
    ("export.customers", "Pelanggan", "Customers"),
    (
        "export.subscriptions",
        "Langganan PPPoE",
        "PPPoE subscriptions",
    ),
    ("export.invoices", "Tagihan", "Invoices"),
    ("export.payments", "Pembayaran", "Payments"),
    ("export.revenue", "Buku pendapatan", "Revenue ledger"),
    ("export.vouchers", "Voucher", "Vouchers"),
    (
        "export.accounting",
        "Catatan accounting",
        "Accounting records",
    ),
    ("export.audit", "Log audit", "Audit log"),
    ("admin", "admin", "admin"),
    ("operator", "operator", "operator"),
    ("cashier", "kasir", "cashier"),
    ("reseller", "reseller", "reseller"),
    ("viewer", "pemantau", "viewer"),
    ("logout", "Keluar", "Sign out"),
    ("login.title", "Masuk ke MikroBill", "Sign in to MikroBill"),
    ("login.username", "Nama pengguna", "Username"),
    ("login.password", "Kata sandi", "Password"),
    ("login.submit", "Masuk", "Sign in"),
    (
        "login.failed",
        "Nama pengguna atau kata sandi salah, atau akun dinonaktifkan.",
        "Wrong username or password, or the account is disabled.",
    ),
    (
        "login.locked",
        "Terlalu banyak percobaan gagal. Coba lagi nanti.",
        "Too many failed attempts. Try again later.",
    ),
    ("totp.title", "Verifikasi dua langkah", "Two-factor sign-in"),
    (
        "totp.intro",
        "Selain kata sandi, masuk meminta kode 6 digit dari aplikasi autentikator di ponsel Anda.",
        "Besides the password, signing in asks for a 6-digit code from an authenticator app on your phone.",
    ),
    (
        "totp.enrol_required",
        "Peran Anda mewajibkan verifikasi dua langkah: aktifkan dulu sebelum melanjutkan.",
        "Your role requires two-factor sign-in: turn it on before you continue.",
    ),
    (
        "totp.enforced",
        "Peran Anda mewajibkan verifikasi dua langkah; hanya administrator yang dapat menyetelnya ulang.",
        "Your role requires two-factor sign-in; only an administrator can reset it.",
    ),
    ("totp.on", "Aktif", "On"),
    ("totp.off", "Tidak aktif", "Off"),
    ("totp.start", "Siapkan", "Set up"),
    (
        "totp.scan",
        "Pindai kode QR ini dengan aplikasi autentikator (mis. Aegis, Google Authenticator), atau ketik kuncinya, lalu masukkan kode yang tampil.",
        "Scan this QR code with an authenticator app (e.g. Aegis, Google Authenticator), or type the key, then enter the code it shows.",
    ),
    (
        "totp.qr",
        "Kode QR untuk aplikasi autentikator",
        "QR code for the authenticator app",
    ),
    ("totp.secret", "Kunci", "Key"),
    ("totp.uri", "URI", "URI"),
    ("totp.code", "Kode 6 digit", "6-digit code"),
    ("totp.confirm", "Aktifkan", "Turn on"),
    (
        "totp.enabled",
        "Verifikasi dua langkah aktif.",
        "Two-factor sign-in is on.",
    ),
    (
        "totp.disable",
        "Matikan verifikasi dua langkah",
        "Turn two-factor sign-in off",
    ),
    (
        "totp.disabled",
        "Verifikasi dua langkah dimatikan.",
        "Two-factor sign-in is off.",
    ),
    (
        "totp.wrong_code",
        "Kode salah atau kedaluwarsa; coba kode yang tampil sekarang.",
        "Wrong or expired code; try the one shown now.",
    ),
    ("totp.column", "2FA", "2FA"),
    ("totp.reset", "Setel ulang 2FA", "Reset 2FA"),
    (
        "totp.reset_hint",
        "Untuk ponsel yang hilang: sesi akun ini berakhir dan ia masuk dengan kata sandi saja (atau mendaftar ulang bila perannya mewajibkan).",
        "For a lost phone: this account's sessions end and it signs in with its password alone (or enrols again if its role requires it).",
    ),
    (
        "totp.reset_done",
        "2FA akun ini disetel ulang; sesinya berakhir.",
        "This account's 2FA was reset; its sessions ended.",
    ),
    ("security.title", "Keamanan", "Security"),
    (
        "security.totp_roles",
        "Peran yang wajib verifikasi dua langkah",
        "Roles that must use two-factor sign-in",
    ),
    (
        "security.hint",
        "Akun peran ini yang belum memakai 2FA hanya dapat membuka halaman pendaftarannya sampai mengaktifkannya. Token API integrasi tidak terpengaruh.",
        "Accounts of these roles without 2FA can only open its set-up page until they turn it on. Integrations' API tokens are not affected.",
    ),
    ("login.totp_title", "Kode verifikasi", "Verification code"),
    (
        "login.totp_hint",
        "Kode 6 digit dari aplikasi autentikator Anda",
        "The 6-digit code from your authenticator app",
    ),
    (
        "login.totp_invalid",
        "Kode salah, kedaluwarsa, atau sudah dipakai.",
        "The code is wrong, expired or was used already.",
    ),
    (
        "login.totp_expired",
        "Waktu masuk habis; masukkan kata sandi lagi.",
        "The sign-in timed out; enter your password again.",
    ),
    ("login.totp_restart", "Mulai lagi", "Start over"),
    ("password.title", "Ganti kata sandi", "Change password"),
    (
        "password.hint",
        "Setelah diganti, semua sesi dan token akun ini berakhir.",
        "After the change, every session and token of this account ends.",
    ),
    (
        "password.current",
        "Kata sandi sekarang",
        "Current password",
    ),
    (
        "password.new",
        "Kata sandi baru (min. 10 karakter)",
        "New password (at least 10 characters)",
    ),
    (
        "password.confirm",
        "Ulangi kata sandi baru",
        "Repeat the new password",
    ),
    ("password.submit", "Simpan kata sandi", "Save password"),
    (
        "password.mismatch",
        "Kata sandi baru tidak sama.",
        "The new passwords do not match.",
    ),
    (
        "password.changed",
        "Kata sandi diganti.",
        "Password changed.",
    ),
    ("error.home", "Kembali ke dasbor", "Back to the dashboard"),
    ("error.forbidden", "Akses ditolak", "Forbidden"),
    (
        "error.forbidden.detail",
        "Peran Anda tidak mengizinkan halaman atau tindakan ini.",
        "Your role does not allow this page or action.",
    ),
    ("error.csrf", "Permintaan ditolak", "Request refused"),
    (
        "error.csrf.detail",
        "Formulir kedaluwarsa atau berasal dari situs lain. Muat ulang halaman dan coba lagi.",
        "The form expired or came from another site. Reload the page and try again.",
    ),
    ("error.not_found", "Tidak ditemukan", "Not found"),
    (
        "error.not_found.detail",
        "Halaman atau data ini tidak ada.",
        "This page or record does not exist.",
    ),
    ("error.bad_request", "Permintaan tidak valid", "Bad request"),
    ("error.internal", "Kesalahan server", "Server error"),
    ("empty", "Belum ada data.", "Nothing here yet."),
    ("dash.figures", "Angka utama", "Key figures"),
    ("dash.revenue_today", "Pendapatan hari ini", "Revenue today"),
    (
        "dash.revenue_month",
        "Pendapatan bulan ini",
        "Revenue this month",
    ),
    (
        "dash.vouchers_sold",
        "Voucher terjual hari ini",
        "Vouchers sold today",
    ),
    ("dash.this_month", "bulan ini", "this month"),
    (
        "dash.overdue",
        "Langganan menunggak",
        "Overdue subscriptions",
    ),
    ("dash.isolated", "diisolir", "isolated"),
    ("dash.sessions", "Sesi aktif", "Active sessions"),
    ("dash.sites_online", "Lokasi online", "Sites online"),
    (
        "dash.revenue_chart",
        "Pendapatan per hari (30 hari)",
        "Revenue per day (30 days)",
    ),
    (
        "dash.sessions_chart",
        "Sesi per lokasi",
        "Sessions per site",
    ),
    ("site.name", "Lokasi", "Site"),
    ("site.state", "Status", "State"),
    ("site.last_seen", "Terakhir terlihat", "Last seen"),
    ("site.online", "online", "online"),
    ("site.offline", "offline", "offline"),
    ("pager.label", "Halaman", "Pages"),
    ("pager.first", "« Halaman pertama", "« First page"),
    ("pager.next", "Berikutnya »", "Next »"),
    ("any", "Semua", "Any"),
    ("filter", "Saring", "Filter"),
    ("actions", "Tindakan", "Actions"),
    ("confirm", "Yakin?", "Are you sure?"),
    ("price", "Harga", "Price"),
    ("created", "Dibuat", "Created"),
    ("new", "baru", "new"),
    ("sold", "terjual", "sold"),
    ("active", "aktif", "active"),
    ("expired", "kedaluwarsa", "expired"),
    ("exhausted", "habis", "exhausted"),
    ("revoked", "dicabut", "revoked"),
    ("scope.all", "Semua lokasi", "All sites"),
    ("scope.group", "Grup lokasi", "Site group"),
    ("scope.site", "Satu lokasi", "One site"),
    ("plan.name", "Paket", "Plan"),
    ("plan.validity", "Masa berlaku", "Valid for"),
    ("voucher.code", "Kode", "Code"),
    ("voucher.code_prefix", "Awalan kode", "Code prefix"),
    ("voucher.status", "Status", "Status"),
    ("voucher.sold_at", "Terjual", "Sold"),
    ("voucher.used", "Terpakai", "Used"),
    ("voucher.sell", "Jual", "Sell"),
    ("voucher.revoke", "Cabut", "Revoke"),
    ("voucher.revoked", "Voucher dicabut.", "Voucher revoked."),
    ("voucher.sold", "Voucher terjual.", "Voucher sold."),
    ("batch.list", "Batch voucher", "Voucher batches"),
    ("batch.new", "Buat batch", "Generate a batch"),
    ("batch.title", "Batch voucher", "Voucher batch"),
    ("batch.id", "ID batch", "Batch id"),
    ("batch.count", "Jumlah", "Count"),
    ("batch.price", "Harga per voucher", "Price per voucher"),
    (
        "batch.price_hint",
        "kosong = harga paket",
        "empty = the plan's price",
    ),
    ("batch.note", "Catatan", "Note"),
    ("batch.what", "Paket dan jumlah", "Plan and count"),
    ("batch.where", "Berlaku di", "Valid at"),
    ("batch.scope", "Cakupan", "Scope"),
    ("batch.codes", "Kode dan kata sandi", "Codes and passwords"),
    ("batch.prefix", "Awalan", "Prefix"),
    ("batch.length", "Panjang kode", "Code length"),
    ("batch.password_mode", "Kata sandi", "Password"),
    (
        "batch.password_code",
        "Sama dengan kode",
        "Same as the code",
    ),
    ("batch.password_separate", "Terpisah", "Separate"),
    ("batch.generate", "Buat voucher", "Generate vouchers"),
    ("batch.created", "Batch dibuat.", "Batch generated."),
    (
        "batch.revoke",
        "Cabut semua voucher batch ini",
        "Revoke every voucher of this batch",
    ),
    ("batch.revoked", "Batch dicabut.", "Batch revoked."),
    (
        "batch.sell",
        "Jual batch ke reseller",
        "Sell the batch to a reseller",
    ),
    (
        "batch.sold",
        "Batch dijual ke reseller.",
        "Batch sold to the reseller.",
    ),
    (
        "batch.no_resellers",
        "Belum ada akun reseller.",
        "There are no reseller accounts yet.",
    ),
    ("batch.vouchers", "Lihat voucher", "Show vouchers"),
    ("print.title", "Cetak voucher", "Print vouchers"),
    ("print.a4", "Cetak A4", "Print A4"),
    (
        "print.thermal",
        "Cetak thermal 58 mm",
        "Print thermal 58 mm",
    ),
    ("print.print", "Cetak", "Print"),
    (
        "print.hint",
        "Gunakan menu cetak browser (Ctrl+P); menu dan tombol tidak ikut tercetak.",
        "Use the browser's print command (Ctrl+P); menus and buttons are not printed.",
    ),
    ("unpaid", "belum dibayar", "unpaid"),
    ("paid", "lunas", "paid"),
    ("void", "dibatalkan", "void"),
    ("isolated", "diisolir", "isolated"),
    ("terminated", "berhenti", "terminated"),
    ("cash", "tunai", "cash"),
    ("transfer", "transfer", "transfer"),
    ("gateway", "payment gateway", "payment gateway"),
    ("credit", "saldo", "credit"),
    ("sub.title", "Langganan", "Subscription"),
    ("sub.username", "Username PPPoE", "PPPoE username"),
    ("sub.username_prefix", "Awalan username", "Username prefix"),
    ("sub.next_cycle", "Siklus berikutnya", "Next cycle"),
    ("sub.static_ip", "IP statis", "Static IP"),
    ("sub.billing_day", "Tanggal tagihan", "Billing day"),
    ("sub.started", "Mulai", "Started"),
    ("sub.isolate", "Isolir", "Isolate"),
    ("sub.reactivate", "Aktifkan kembali", "Re-activate"),
    ("sub.terminate", "Hentikan langganan", "Terminate"),
    ("sub.new_plan", "Paket baru", "New plan"),
    ("sub.change_plan", "Ganti paket", "Change plan"),
    (
        "sub.isolated",
        "Langganan diisolir.",
        "Subscription isolated.",
    ),
    (
        "sub.reactivated",
        "Langganan aktif kembali.",
        "Subscription re-activated.",
    ),
    (
        "sub.terminated",
        "Langganan dihentikan.",
        "Subscription terminated.",
    ),
    ("sub.plan_changed", "Paket diganti.", "Plan changed."),
    ("customer.name", "Pelanggan", "Customer"),
    ("customer.number", "No. pelanggan", "Customer no."),
    ("customer.phone", "Telepon", "Phone"),
    ("customer.email", "E-mail", "E-mail"),
    ("customer.address", "Alamat", "Address"),
    ("customer.notes", "Catatan", "Notes"),
    ("customer.balance", "Saldo", "Credit"),
    ("invoice.title", "Tagihan", "Invoice"),
    ("invoice.number", "No. tagihan", "Invoice no."),
    ("invoice.issued", "Terbit", "Issued"),
    ("invoice.due", "Jatuh tempo", "Due"),
    ("invoice.total", "Total", "Total"),
    ("invoice.paid", "Dibayar", "Paid"),
    ("invoice.overdue", "Lewat jatuh tempo", "Overdue"),
    ("invoice.period", "Periode", "Period"),
    ("invoice.line", "Uraian", "Description"),
    ("invoice.subtotal", "Subtotal", "Subtotal"),
    ("invoice.tax", "PPN", "Tax"),
    ("invoice.included", "termasuk", "included"),
    ("cash.find", "Cari pelanggan", "Find a customer"),
    (
        "cash.find_hint",
        "nama, nomor, telepon",
        "name, number, phone",
    ),
    ("cash.search", "Cari", "Search"),
    ("cash.results", "Hasil pencarian", "Search results"),
    (
        "cash.none_found",
        "Tidak ada pelanggan yang cocok.",
        "No customer matches.",
    ),
    ("cash.due", "Total tagihan", "Amount due"),
    ("cash.unpaid", "Tagihan belum dibayar", "Unpaid invoices"),
    ("cash.take_payment", "Terima pembayaran", "Take a payment"),
    ("cash.for_invoice", "Untuk tagihan", "For invoice"),
    (
        "cash.oldest_first",
        "Tagihan terlama dulu",
        "Oldest invoices first",
    ),
    ("cash.amount", "Jumlah", "Amount"),
    ("cash.method", "Cara bayar", "Method"),
    ("cash.cash", "Tunai", "Cash"),
    ("cash.transfer", "Transfer bank", "Bank transfer"),
    ("cash.reference", "Referensi", "Reference"),
    ("cash.record", "Simpan pembayaran", "Record the payment"),
    ("cash.recorded", "Pembayaran diterima:", "Payment received:"),
    (
        "cash.reactivated",
        "langganan aktif kembali:",
        "subscriptions re-activated:",
    ),
    ("cash.credited", "menjadi saldo:", "kept as credit:"),
    ("receipt.title", "Kuitansi", "Receipt"),
    ("receipt.number", "No. kuitansi", "Receipt no."),
    ("receipt.date", "Tanggal", "Date"),
    ("receipt.by", "Diterima oleh", "Received by"),
    (
        "receipt.thanks",
        "Terima kasih atas pembayaran Anda.",
        "Thank you for your payment.",
    ),
    ("saved", "Tersimpan.", "Saved."),
    ("save", "Simpan", "Save"),
    ("hotspot", "hotspot (voucher)", "hotspot (voucher)"),
    ("pppoe", "PPPoE (bulanan)", "PPPoE (monthly)"),
    ("customer.new", "Pelanggan baru", "New customer"),
    ("customer.create", "Tambah pelanggan", "Add customer"),
    (
        "customer.created",
        "Pelanggan ditambahkan.",
        "Customer added.",
    ),
    ("plan.kind", "Jenis", "Kind"),
    ("plan.limits", "Batasan", "Limits"),
    ("plan.time_limit", "Batas waktu", "Time limit"),
    (
        "plan.show_archived",
        "Tampilkan yang diarsipkan",
        "Show archived",
    ),
    ("plan.archived", "diarsipkan", "archived"),
    ("plan.archive", "Arsipkan", "Archive"),
    ("plan.restore", "Pulihkan", "Restore"),
    ("plan.new", "Paket baru", "New plan"),
    ("plan.create", "Tambah paket", "Add plan"),
    ("plan.created", "Paket ditambahkan.", "Plan added."),
    (
        "plan.rate_limit",
        "Batas kecepatan (unggah/unduh pelanggan)",
        "Rate limit (subscriber upload/download)",
    ),
    (
        "plan.shared_users",
        "Perangkat bersamaan",
        "Devices at once",
    ),
    ("site.agent", "Versi agen", "Agent version"),
    ("site.outbox", "Antrean akunting", "Accounting queue"),
    ("site.new", "Daftarkan lokasi baru", "Enroll a new site"),
    ("site.enroll", "Daftarkan", "Enroll"),
    (
        "site.token_hours",
        "Token berlaku (jam)",
        "Token valid (hours)",
    ),
    (
        "site.token_once",
        "Token ini hanya ditampilkan sekali. Berikan kepada teknisi sekarang.",
        "This token is shown once. Hand it to the technician now.",
    ),
    (
        "site.token_expires",
        "Token berlaku sampai",
        "Token valid until",
    ),
    ("site.token", "Token pendaftaran", "Enrollment token"),
    (
        "site.command",
        "Perintah untuk teknisi",
        "The technician's command",
    ),
    ("site.open", "Buka halaman lokasi", "Open the site's page"),
    ("site.new_token", "Buat token baru", "Issue a new token"),
    ("site.revoke", "Cabut lokasi ini", "Revoke this site"),
    (
        "site.revoked",
        "Lokasi dicabut; agennya tidak bisa tersambung lagi.",
        "Site revoked; its agent can no longer connect.",
    ),
    (
        "site.is_revoked",
        "Lokasi ini sudah dicabut.",
        "This site is revoked.",
    ),
    (
        "site.edge_unknown",
        "Alamat edge controller belum diketahui.",
        "The controller's edge address is not known yet.",
    ),
    ("router.title", "Router", "Router"),
    ("router.reachable", "terjangkau", "reachable"),
    ("router.unreachable", "tidak terjangkau", "unreachable"),
    (
        "router.none",
        "Agen belum melaporkan router.",
        "The agent has not reported a router.",
    ),
    ("router.identity", "Identitas", "Identity"),
    ("router.board", "Perangkat", "Board"),
    ("router.version", "Versi RouterOS", "RouterOS version"),
    ("router.cpu", "Beban CPU", "CPU load"),
    ("router.memory", "Memori bebas", "Free memory"),
    ("router.uptime", "Uptime", "Uptime"),
    ("router.hotspot", "Sesi hotspot", "Hotspot sessions"),
    ("router.ppp", "Sesi PPP", "PPP sessions"),
    ("router.error", "Galat terakhir", "Last error"),
    ("router.checked", "Dibaca", "Read at"),
    ("admin.display_name", "Nama tampilan", "Display name"),
    ("admin.role", "Peran", "Role"),
    ("admin.disabled", "nonaktif", "disabled"),
    ("admin.new", "Pengguna admin baru", "New admin user"),
    ("admin.create", "Tambah pengguna", "Add user"),
    ("admin.created", "Pengguna ditambahkan.", "User added."),
    (
        "admin.new_password",
        "Kata sandi baru (kosong = tetap)",
        "New password (empty = unchanged)",
    ),
    (
        "admin.sessions_end",
        "Peran baru, kata sandi baru atau penonaktifan mengakhiri semua sesinya.",
        "A new role, a new password or disabling ends all of the user's sessions.",
    ),
    ("reseller.title", "Saldo reseller", "Reseller balances"),
    ("reseller.credit", "Tambah saldo", "Add credit"),
    (
        "reseller.credited",
        "Saldo reseller ditambah.",
        "Reseller credited.",
    ),
    ("token.title", "Token API", "API tokens"),
    (
        "token.once",
        "Rahasia token ini hanya ditampilkan sekali.",
        "This token's secret is shown once.",
    ),
    ("token.name", "Nama", "Name"),
    ("token.expires", "Kedaluwarsa", "Expires"),
    ("token.last_used", "Terakhir dipakai", "Last used"),
    ("token.new", "Token baru", "New token"),
    (
        "token.days",
        "Berlaku (hari, kosong = selamanya)",
        "Valid (days, empty = forever)",
    ),
    ("token.create", "Buat token", "Create token"),
    ("token.revoked", "Token dicabut.", "Token revoked."),
    ("audit.entity", "Jenis data", "Record type"),
    ("audit.entity_id", "ID data", "Record id"),
    ("audit.actor", "Pelaku", "Actor"),
    ("audit.action", "Tindakan", "Action"),
    ("audit.change", "Perubahan", "Change"),
    ("settings.company", "Perusahaan", "Company"),
    ("settings.company_name", "Nama perusahaan", "Company name"),
    ("settings.language", "Bahasa bawaan", "Default language"),
    ("settings.money", "Uang dan tagihan", "Money and billing"),
    ("settings.currency", "Mata uang (ISO)", "Currency (ISO)"),
    ("settings.exponent", "Angka desimal", "Decimal places"),
    (
        "settings.tax_bp",
        "Pajak (basis poin, 1100 = 11 %)",
        "Tax (basis points, 1100 = 11 %)",
    ),
    (
        "settings.tax_inclusive",
        "Harga sudah termasuk pajak",
        "Prices include tax",
    ),
    (
        "settings.offset",
        "Zona waktu (menit dari UTC)",
        "Time zone (minutes from UTC)",
    ),
    (
        "settings.due_days",
        "Jatuh tempo (hari)",
        "Due after (days)",
    ),
    (
        "settings.grace_days",
        "Masa tenggang (hari)",
        "Grace (days)",
    ),
    (
        "settings.login_url",
        "URL login hotspot ({code}, {password})",
        "Hotspot login URL ({code}, {password})",
    ),
    ("sub.new", "Langganan PPPoE baru", "New PPPoE subscription"),
    ("sub.create", "Buat langganan", "Create subscription"),
    (
        "sub.created",
        "Langganan dibuat; tagihan pertama terbit.",
        "Subscription created; the first invoice is issued.",
    ),
    (
        "sub.password",
        "Kata sandi PPPoE (kosong = dibuat otomatis)",
        "PPPoE password (empty = generated)",
    ),
    ("sub.start_date", "Mulai layanan", "Service start"),
    ("sub.bill_from", "Mulai ditagih", "Bill from"),
    (
        "sub.bill_from_help",
        "Untuk pelanggan pindahan: tagihan dimulai dari tanggal ini, bukan dari mulai layanan (kosong = mulai layanan). Tanggal di masa depan: belum ada tagihan sampai tanggal itu.",
        "For a subscriber moved from another system: billing starts on this date, not at the service start (empty = service start). A future date issues no invoice until then.",
    ),
    ("invoice.void", "Batalkan tagihan", "Void the invoice"),
    (
        "invoice.void_reason",
        "Alasan pembatalan",
        "Reason for voiding",
    ),
    ("invoice.voided", "Tagihan dibatalkan.", "Invoice voided."),
    ("group.title", "Grup lokasi", "Site groups"),
    (
        "group.hint",
        "Voucher untuk sebuah grup berlaku di semua lokasi anggotanya.",
        "Vouchers for a group work at every member site.",
    ),
    ("group.new", "Grup baru", "New group"),
    ("group.create", "Buat grup", "Create group"),
    ("group.created", "Grup dibuat.", "Group created."),
    ("group.add", "Tambahkan lokasi", "Add site"),
    ("group.remove", "keluarkan", "remove"),
    ("job.title", "Tugas terjadwal", "Scheduled jobs"),
    ("job.name", "Tugas", "Job"),
    ("job.last_run", "Terakhir jalan", "Last run"),
    ("job.outcome", "Hasil", "Outcome"),
    ("job.holder", "Sedang dijalankan oleh", "Running on"),
    ("job.run", "Jalankan sekarang", "Run now"),
    (
        "job.changed",
        "selesai; data berubah",
        "done; records changed",
    ),
    (
        "job.busy",
        "Tugas ini sedang berjalan di tempat lain.",
        "The job is running elsewhere.",
    ),
    ("nav.shop", "Beli voucher", "Buy vouchers"),
    ("shop.buy", "Beli batch voucher", "Buy a voucher batch"),
    (
        "shop.hint",
        "Dibayar dengan harga paket dari saldo Anda.",
        "Paid at the plan's price from your balance.",
    ),
    ("shop.submit", "Beli", "Buy"),
    ("shop.bought", "Voucher dibeli.", "Vouchers bought."),
    ("shop.mine", "Batch saya", "My batches"),
    ("command.title", "Perintah ke agen", "Commands to the agent"),
    ("command.kind", "Perintah", "Command"),
    ("command.by", "Oleh", "By"),
    ("command.result", "Hasil", "Result"),
    (
        "command.queued",
        "Perintah diantrekan; dikirim saat lokasi online.",
        "Command queued; it is sent while the site is online.",
    ),
    (
        "command.resync",
        "Terapkan ulang konfigurasi router",
        "Re-apply the router configuration",
    ),
    (
        "command.disconnect_user",
        "Putuskan sesi akun",
        "Disconnect an account's sessions",
    ),
    ("command.disconnect", "Putuskan", "Disconnect"),
    (
        "hotspot.title",
        "Halaman login hotspot",
        "Hotspot login pages",
    ),
    (
        "hotspot.explain",
        "Halaman login, status, logout dan error bermerek perusahaan Anda untuk hotspot lokasi ini. Unduh zip dan unggah foldernya ke router lewat Winbox atau FTP, atau biarkan agen mengunggahnya (RouterOS 7.9 ke atas); lalu isi html-directory profil server hotspot dengan folder itu.",
        "Login, status, logout and error pages with your company's branding for this site's hotspot. Download the zip and upload its folder to the router with Winbox or FTP, or let the agent upload it (RouterOS 7.9 or newer); then set the hotspot server profile's html-directory to that folder.",
    ),
    (
        "hotspot.download",
        "Unduh halaman hotspot (zip)",
        "Download hotspot pages (zip)",
    ),
    ("hotspot.upload", "Unggah ke router", "Upload to router"),
    (
        "import.title",
        "Impor dari router",
        "Import from the router",
    ),
    (
        "import.explain",
        "Baca user hotspot (voucher Mikhmon) dan secret PPP router ini lewat agen, lihat uji cobanya, lalu impor; tidak ada yang terputus.",
        "Read this router's hotspot users (Mikhmon vouchers) and PPP secrets through the agent, review the dry run, then import; nobody is disconnected.",
    ),
    (
        "import.start",
        "Baca akun router",
        "Read the router's accounts",
    ),
    (
        "import.read_queued",
        "Pembacaan router diantrekan.",
        "The router read is queued.",
    ),
    ("import.read", "Pembacaan router", "Router read"),
    ("import.reason", "Hasil", "Result"),
    (
        "import.dry_run",
        "Uji coba (belum ada yang disimpan)",
        "Dry run (nothing written yet)",
    ),
    ("import.kind", "Jenis", "Kind"),
    ("import.created", "Dibuat", "Created"),
    ("import.already", "Sudah diimpor", "Already imported"),
    ("import.skipped", "Dilewati", "Skipped"),
    ("import.entry", "Entri router", "Router entry"),
    ("import.outcome", "Hasil", "Outcome"),
    ("import.field", "Kolom", "Field"),
    ("import.detail", "Keterangan", "Detail"),
    ("import.mode", "Entri router", "Router entries"),
    (
        "import.retire",
        "Pensiunkan (mode RADIUS)",
        "Retire (RADIUS mode)",
    ),
    ("import.adopt", "Ambil alih (mode API)", "Adopt (API mode)"),
    ("import.apply", "Impor", "Import"),
    (
        "import.modes_explain",
        "Pensiunkan: entri yang tidak sedang online dihapus dari router sehingga RADIUS yang menjawab; yang online dibiarkan. Ambil alih: agen mengelola entri itu mulai sekarang.",
        "Retire: entries whose login is not online are removed from the router so RADIUS answers them; online ones stay. Adopt: the agent manages the entries from now on.",
    ),
    (
        "import.nothing",
        "Router tidak punya akun.",
        "The router has no accounts.",
    ),
    (
        "import.waiting",
        "Menunggu agen membaca router.",
        "Waiting for the agent to read the router.",
    ),
    ("import.refresh", "Muat ulang", "Refresh"),
    ("import.applied", "Diimpor, dibuat", "Imported, created"),
    (
        "import.take_over_queued",
        "perintah untuk entri router",
        "command for the router entries",
    ),
    ("command.kick", "Putuskan sesi", "Kick sessions"),
    ("event.title", "Peristiwa", "Events"),
    ("event.kind", "Jenis peristiwa", "Event kind"),
    ("event.refs", "Terkait", "Concerns"),
    (
        "event.parked",
        "Peristiwa yang ditunda (gagal diproses berulang kali)",
        "Parked events (failed again and again)",
    ),
    ("event.consumer", "Pemroses", "Consumer"),
    ("event.attempts", "Percobaan", "Attempts"),
    ("event.error", "Galat terakhir", "Last error"),
    ("event.parked_at", "Ditunda pada", "Parked at"),
    ("event.retry", "Coba lagi", "Retry"),
    ("event.retry_pending", "Menunggu percobaan", "Retry pending"),
    (
        "event.retry_requested",
        "Peristiwa akan dicoba lagi sebentar lagi.",
        "The event will be tried again shortly.",
    ),
    ("webhook.title", "Webhook", "Webhooks"),
    (
        "webhook.secret_once",
        "Rahasia penanda tangan webhook ini hanya ditampilkan sekali.",
        "This webhook's signing secret is shown once.",
    ),
    ("webhook.new", "Webhook baru", "New webhook"),
    ("webhook.all", "Semua peristiwa", "Every event"),
    ("webhook.create", "Buat webhook", "Create webhook"),
    ("webhook.deactivate", "Nonaktifkan", "Deactivate"),
    (
        "webhook.deliveries",
        "Pengiriman webhook",
        "Webhook deliveries",
    ),
    ("webhook.attempts", "Percobaan", "Attempts"),
    ("webhook.last", "Jawaban terakhir", "Last answer"),
    ("webhook.delivered", "Terkirim", "Delivered"),
    ("webhook.replay", "Kirim ulang peristiwa", "Replay events"),
    (
        "webhook.after_event",
        "Setelah peristiwa #",
        "After event #",
    ),
    (
        "webhook.replayed",
        "Peristiwa dijadwalkan untuk dikirim ulang.",
        "Events scheduled to be sent again.",
    ),
    (
        "plan.validity_text",
        "Masa berlaku (mis. 1d, 12h)",
        "Valid for (e.g. 1d, 12h)",
    ),
    (
        "plan.time_limit_text",
        "Batas waktu pakai (mis. 2h 30m)",
        "Usage time limit (e.g. 2h 30m)",
    ),
    ("plan.data_limit_mb", "Batas data (MB)", "Data limit (MB)"),
    (
        "plan.interim",
        "Interval interim akunting",
        "Accounting interim interval",
    ),
    (
        "plan.router_group",
        "Grup/profil router",
        "Router group/profile",
    ),
    ("plan.address_list", "Address list", "Address list"),
    (
        "plan.isolation_profile",
        "Profil isolir",
        "Isolation profile",
    ),
    (
        "plan.edit_hint",
        "Perubahan dikirim ke semua lokasi; harga baru berlaku untuk tagihan dan voucher berikutnya.",
        "Changes reach every site; a new price applies to the next invoices and vouchers.",
    ),
    (
        "cash.by_username",
        "Cocok dengan username PPPoE",
        "Matching PPPoE user names",
    ),
    ("notify.title", "Notifikasi", "Notifications"),
    ("notify.messages", "Pesan terkirim", "Message log"),
    ("notify.templates", "Template pesan", "Message templates"),
    ("notify.channels", "Saluran", "Channels"),
    ("notify.pending", "menunggu", "pending"),
    ("notify.sending", "sedang dikirim", "sending"),
    ("notify.sent", "terkirim", "sent"),
    ("notify.dead", "gagal", "dead"),
    ("notify.cancelled", "dibatalkan", "cancelled"),
    ("notify.channel", "Saluran", "Channel"),
    ("notify.topic", "Topik", "Topic"),
    ("notify.customer_id", "ID pelanggan", "Customer id"),
    ("notify.recipient", "Penerima", "Recipient"),
    ("notify.last_error", "Galat terakhir", "Last error"),
    (
        "notify.retried",
        "Pesan dijadwalkan untuk dikirim ulang.",
        "Message scheduled to be sent again.",
    ),
    ("notify.message", "Pesan", "Message"),
    ("notify.sent_at", "Terkirim pada", "Sent at"),
    (
        "notify.next_attempt",
        "Percobaan berikutnya",
        "Next attempt",
    ),
    ("notify.retry", "Kirim ulang", "Retry"),
    (
        "notify.retry_hint",
        "Pesan dikirim lagi dengan jatah percobaan baru.",
        "The message is sent again with a fresh attempt budget.",
    ),
    ("notify.subject", "Subjek", "Subject"),
    ("notify.body", "Isi pesan", "Text"),
    ("notify.attempt_log", "Riwayat percobaan", "Attempt log"),
    ("notify.outcome", "Hasil", "Outcome"),
    ("notify.detail", "Keterangan", "Detail"),
    (
        "notify.templates_hint",
        "Subjek hanya dipakai untuk e-mail. Tulis nilai yang tersedia sebagai {{nama}}.",
        "The subject is used for e-mail only. Write the values a topic offers as {{name}}.",
    ),
    ("notify.custom", "diubah", "custom"),
    ("notify.builtin", "bawaan", "built-in"),
    ("notify.placeholders", "Nilai yang tersedia", "Placeholders"),
    ("notify.reset", "Kembalikan ke bawaan", "Reset to built-in"),
    (
        "notify.reset_done",
        "Template kembali ke teks bawaan.",
        "The template is back to the built-in text.",
    ),
    ("notify.channel_name", "Nama saluran", "Channel name"),
    ("notify.rate", "Pesan per menit", "Messages per minute"),
    ("notify.max_attempts", "Maks. percobaan", "Max attempts"),
    (
        "notify.config",
        "Pengaturan gateway (JSON)",
        "Gateway settings (JSON)",
    ),
    ("notify.kind", "Jenis", "Kind"),
    ("notify.channel_new", "Saluran baru", "New channel"),
    ("notify.channel_create", "Buat saluran", "Create channel"),
    (
        "notify.channel_created",
        "Saluran dibuat.",
        "Channel created.",
    ),
    (
        "notify.examples",
        "Contoh pengaturan per jenis",
        "Example settings per kind",
    ),
    (
        "notify.examples_hint",
        "Salin satu contoh ke kolom pengaturan lalu ganti nilainya. Token dan kata sandi tidak pernah ditampilkan lagi.",
        "Copy an example into the settings field and replace its values. Tokens and passwords are never shown again.",
    ),
    (
        "notify.redacted_hint",
        "Rahasia tampil sebagai <redacted>; biarkan begitu untuk memakai nilai yang tersimpan, atau tulis nilai baru.",
        "Secrets show as <redacted>; leave them so to keep the stored value, or type a new one.",
    ),
    (
        "notify.settings",
        "Pengaturan notifikasi",
        "Notification settings",
    ),
    (
        "notify.reminder_days",
        "Pengingat (hari sebelum jatuh tempo, pisahkan dengan koma)",
        "Reminders (days before the due date, comma-separated)",
    ),
    (
        "notify.offline_delay",
        "Peringatan lokasi offline setelah (detik)",
        "Site offline alert after (seconds)",
    ),
    (
        "notify.public_url",
        "Alamat publik (untuk tautan pembayaran)",
        "Public URL (for payment links)",
    ),
    (
        "notify.default_lang",
        "Bahasa bawaan pesan",
        "Default message language",
    ),
    (
        "notify.customer_messages",
        "Pesan untuk pelanggan ini",
        "Messages to this customer",
    ),
    ("notify.lang", "Bahasa pesan", "Message language"),
    (
        "notify.lang_default",
        "Sesuai pengaturan notifikasi",
        "As in the notification settings",
    ),
    ("notify.telegram_chat", "Chat Telegram", "Telegram chat"),
    (
        "notify.opt_out",
        "Tidak menerima notifikasi",
        "No notifications",
    ),
    (
        "notify.channels_hint",
        "Tanpa centang: semua saluran yang punya alamat pelanggan.",
        "None ticked: every channel the customer has an address for.",
    ),
    ("notify.all_channels", "Semua saluran", "Every channel"),
];

fn table() -> &'static HashMap<&'static str, (&'static str, &'static str)> {
    static TABLE: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| TEXTS.iter().map(|(k, id, en)| (*k, (*id, *en))).collect())
}

/// The text for `key` in `lang`; `??` for a key missing from the catalog (the tests
/// prevent that).
pub fn text(lang: Lang, key: &str) -> &'static str {
    match table().get(key) {
        Some((id, en)) => match lang {
            Lang::Id => id,
            Lang::En => en,
        },
        None => "??",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn keys_used_in(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                keys_used_in(&path, out);
                continue;
            }
            if path.ends_with("texts.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for pattern in [
                "t(\"",
                "text(lang, \"",
                "text(l, \"",
                "text(*l, \"",
                "text(self.lang, \"",
            ] {
                for (i, _) in text.match_indices(pattern) {
                    let before = text[..i].chars().last().unwrap_or(' ');
                    if pattern == "t(\"" && (before.is_alphanumeric() || before == '_') {
                        continue;
                    }
                    let rest = &text[i + pattern.len()..];
                    if let Some(end) = rest.find('"') {
                        out.push((rest[..end].to_string(), path.display().to_string()));
                    }
                }
            }
        }
    }

    #[test]
    fn keys_made_from_enum_names_exist() {
        use mikrobill_core::auth::roles::ALL_ROLES;
        let mut keys: Vec<&str> = ALL_ROLES.iter().map(|r| r.as_str()).collect();
        keys.extend(
            crate::web::admin::vouchers::STATES
                .iter()
                .map(|s| s.as_str()),
        );
        keys.extend(
            crate::web::admin::subscriptions::STATUSES
                .iter()
                .map(|s| s.as_str()),
        );
        keys.extend([
            "unpaid", "paid", "void", "cash", "transfer", "gateway", "credit",
        ]);
        keys.extend(["hotspot", "pppoe"]);
        for key in keys {
            assert!(table().contains_key(key), "no text for {key:?}");
        }
        use mikrobill_core::billing::invoices::InvoiceStatus;
        use mikrobill_core::payments::PaymentMethod;
        for s in [
            InvoiceStatus::Unpaid,
            InvoiceStatus::Paid,
            InvoiceStatus::Void,
        ] {
            assert!(table().contains_key(s.as_str()));
        }
        for m in [
            PaymentMethod::Cash,
            PaymentMethod::Transfer,
            PaymentMethod::Gateway,
            PaymentMethod::Credit,
        ] {
            assert!(table().contains_key(m.as_str()));
        }
    }

    #[test]
    fn every_key_used_exists_and_keys_are_unique() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = Vec::new();
        keys_used_in(&root.join("templates/admin"), &mut used);
        keys_used_in(&root.join("src/web/admin"), &mut used);
        assert!(used.len() > 20);
        for (key, file) in used {
            assert!(
                table().contains_key(key.as_str()),
                "text key {key:?} used in {file} is missing"
            );
        }
        assert_eq!(table().len(), TEXTS.len(), "duplicate keys in the catalog");
        for (k, id, en) in TEXTS {
            assert!(!id.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
