//! A site's branded RouterOS hotspot directory: the login, after-login, status, logout, error
//! and redirect pages, a stylesheet and a script (CHAP hashing, QR scanning), rendered from the
//! operator's settings. RouterOS fills the `$(...)` variables in when it serves a page, so the
//! files are the same for every visitor; the admin UI offers them as a zip and the agent
//! writes them to the router (`Command::InstallHotspotPages`).

mod archive;
mod texts;

pub use archive::{ZIP_DIR, zip};
pub use texts::{Texts, texts};

use crate::server::AppState;
use askama::Template;
use mikrobill_core::error::DomainError;
use mikrobill_core::locale::Lang;
use mikrobill_protocol::messages::HotspotFile;

/// What the pages show of the operator and the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// The site's name, under the company's.
    pub site_name: String,
    /// The company name from the billing settings.
    pub company: String,
    /// The company phone, shown when set.
    pub phone: String,
    /// The operator's language.
    pub lang: Lang,
    /// The portal's voucher lookup, when the controller's public URL is known.
    pub voucher_check_url: Option<String>,
    /// The portal's voucher shop for this site, when the portal sells vouchers.
    pub buy_url: Option<String>,
    /// The company logo as a `data:` URI, when an admin uploaded one (else the initials).
    pub logo: Option<String>,
}

impl Branding {
    /// Up to two initials of the company name, for the logo badge.
    pub fn initials(&self) -> String {
        self.company
            .split_whitespace()
            .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
            .take(2)
            .flat_map(char::to_uppercase)
            .collect()
    }
}

/// The script every page may load, embedded.
const SCRIPT: &str = include_str!("../../assets/hotspot/mikrobill.js");
/// The stylesheet, embedded.
const STYLESHEET: &str = include_str!("../../assets/hotspot/mikrobill.css");

macro_rules! page {
    ($name:ident, $path:literal) => {
        #[derive(Template)]
        #[template(path = $path)]
        struct $name<'a> {
            b: &'a Branding,
            t: &'static Texts,
        }
    };
}

page!(LoginPage, "hotspot/login.html");
page!(AfterLoginPage, "hotspot/alogin.html");
page!(StatusPage, "hotspot/status.html");
page!(LogoutPage, "hotspot/logout.html");
page!(ErrorPage, "hotspot/error.html");
page!(RedirectPage, "hotspot/redirect.html");

/// Every file of the hotspot directory, in a fixed order.
pub fn render(b: &Branding) -> Result<Vec<HotspotFile>, askama::Error> {
    let t = texts(b.lang);
    let file = |name: &str, contents: String| HotspotFile {
        name: name.to_owned(),
        contents,
    };
    let mut files = vec![
        file("login.html", LoginPage { b, t }.render()?),
        file("alogin.html", AfterLoginPage { b, t }.render()?),
        file("status.html", StatusPage { b, t }.render()?),
        file("logout.html", LogoutPage { b, t }.render()?),
        file("error.html", ErrorPage { b, t }.render()?),
        file("redirect.html", RedirectPage { b, t }.render()?),
        file("mikrobill.js", SCRIPT.to_owned()),
        file("mikrobill.css", STYLESHEET.to_owned()),
    ];
    // Its own file: a logo inside every page would be sent six times and could push a page
    // past what RouterOS writes over its API.
    if let Some(uri) = &b.logo {
        files.push(file(
            "logo.css",
            format!(".logo-image {{ background-image: url(\"{uri}\"); }}\n"),
        ));
    }
    Ok(files)
}

/// The branding of one site from the stored settings: the company, the portal's links
/// under the public URL (none without one: the router's visitors need an absolute link),
/// the shop only while a payment link gateway is configured.
pub async fn branding(state: &AppState, site_id: &str) -> Result<Branding, DomainError> {
    let site = mikrobill_core::sites::by_id(&state.db, site_id).await?;
    let billing = mikrobill_core::settings::billing(&state.db).await?;
    let public_url = mikrobill_core::notify::settings::get(&state.db)
        .await?
        .public_url;
    let portal = (!public_url.is_empty()).then(|| format!("{public_url}/portal"));
    let sells = state.gateways.links().is_some();
    let logo = mikrobill_core::logo::get(&state.db).await?;
    let site_query = form_urlencoded::byte_serialize(site.id.as_bytes()).collect::<String>();
    Ok(Branding {
        site_name: site.name,
        company: billing.company_name,
        phone: billing.company_phone,
        lang: billing.language,
        voucher_check_url: portal.as_ref().map(|p| format!("{p}/voucher")),
        buy_url: portal
            .filter(|_| sells)
            .map(|p| format!("{p}/buy?site={site_query}")),
        logo: logo.map(|l| l.data_uri()),
    })
}

/// A download response: the zip as an attachment under `filename`.
pub fn attachment(filename: &str, zip: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        zip,
    )
        .into_response()
}

/// The zip's file name for a site: `hotspot-<site name>.zip`, the name reduced to
/// characters every file system and `Content-Disposition` take.
pub fn zip_name(site_name: &str) -> String {
    let name: String = site_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("hotspot-{}.zip", name.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branding(buy: bool) -> Branding {
        Branding {
            site_name: "Warung Kopi".into(),
            company: "Net <Desa> Jaya".into(),
            phone: "0812".into(),
            lang: Lang::En,
            voucher_check_url: Some("https://billing.example.net/portal/voucher".into()),
            buy_url: buy.then(|| "https://billing.example.net/portal/buy?site=s1".into()),
            logo: None,
        }
    }

    #[test]
    fn the_login_form_posts_what_routeros_expects() {
        let files = render(&branding(true)).unwrap();
        let login = &files
            .iter()
            .find(|f| f.name == "login.html")
            .unwrap()
            .contents;
        for needle in [
            r#"action="$(link-login-only)" method="post""#,
            r#"name="username""#,
            r#"name="password""#,
            r#"name="dst" value="$(link-orig)""#,
            r#"name="popup" value="true""#,
            "$(if chap-id)",
            "'$(chap-id)'",
            "'$(chap-challenge)'",
            "$(if error)",
            "Net &#60;Desa&#62; Jaya",
            "/portal/buy?site=s1",
        ] {
            assert!(login.contains(needle), "login.html lacks {needle}");
        }
        assert!(!login.contains("Net <Desa>"), "the company name is escaped");
    }

    #[test]
    fn the_buy_link_is_there_only_when_the_portal_sells() {
        let files = render(&branding(false)).unwrap();
        assert!(files.iter().all(|f| !f.contents.contains("/portal/buy")));
        assert!(
            files
                .iter()
                .find(|f| f.name == "status.html")
                .unwrap()
                .contents
                .contains("/portal/voucher")
        );
    }

    #[test]
    fn every_file_fits_the_routeros_api() {
        for f in render(&branding(true)).unwrap() {
            assert!(f.contents.len() < 60 * 1024, "{} is too big", f.name);
        }
    }

    #[test]
    fn the_largest_logo_rides_in_its_own_file_within_the_api_limit() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.resize(mikrobill_core::logo::MAX_BYTES, 0xff);
        let logo = mikrobill_core::logo::Logo::parse(png).unwrap();
        let b = Branding {
            logo: Some(logo.data_uri()),
            ..branding(true)
        };
        let files = render(&b).unwrap();
        let css = files.iter().find(|f| f.name == "logo.css").unwrap();
        assert!(
            css.contents
                .contains("url(\"data:image/png;base64,iVBORw0KGg")
        );
        for f in &files {
            assert!(f.contents.len() < 60 * 1024, "{} is too big", f.name);
        }
        let login = &files
            .iter()
            .find(|f| f.name == "login.html")
            .unwrap()
            .contents;
        assert!(login.contains(r#"href="logo.css""#) && login.contains("logo-image"));
        assert!(
            !login.contains("<svg class=\"logo\""),
            "no initials beside a logo"
        );
        assert!(
            render(&branding(true))
                .unwrap()
                .iter()
                .all(|f| f.name != "logo.css"),
            "no logo, no file"
        );
    }

    #[test]
    fn initials_and_zip_names() {
        assert_eq!(branding(true).initials(), "ND");
        assert_eq!(zip_name("Warung Kopi/1"), "hotspot-Warung-Kopi-1.zip");
    }
}
