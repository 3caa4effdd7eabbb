//! Printable voucher sheets: a batch on an A4 grid or a 58 mm thermal roll, each voucher
//! with its code, password when separate, plan, price, validity, site or company, and a QR
//! code of the hotspot login URL. Plain HTML with print CSS; the browser prints it.

use super::ctx::Ctx;
use super::ctx::not_found;
use super::error::WebError;
use super::form_values::{self, opt};
use super::lookups;
use super::vouchers::viewer;
use crate::server::AppState;
use crate::web::pager::Pager;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use mikrobill_core::vouchers::batch;
use mikrobill_core::vouchers::{self, VoucherFilter};
use qrcode::QrCode;
use qrcode::render::svg;
use serde::Deserialize;

/// Vouchers per printed sheet (a page of the sheet view; the rest follow by a link).
pub const SHEET_ROWS: u32 = 400;

/// One voucher as printed.
pub struct PrintedVoucher {
    /// The login code.
    pub code: String,
    /// The password, when it is not the code.
    pub password: Option<String>,
    /// The login URL the QR code holds.
    pub url: String,
    /// The QR code as inline SVG.
    pub qr: String,
}

#[derive(askama::Template)]
#[template(path = "admin/print.html")]
struct PrintPage<'a> {
    c: &'a Ctx,
    template: &'static str,
    vouchers: Vec<PrintedVoucher>,
    plan: String,
    price: String,
    validity: String,
    time_limit: String,
    place: String,
    batch_id: String,
    pager: Pager,
}

/// `?template=a4|thermal&after=`.
#[derive(Debug, Deserialize)]
pub struct PrintQuery {
    template: Option<String>,
    after: Option<String>,
}

/// The QR code of `text` as an inline `<svg>` (no XML declaration), labelled for screen
/// readers.
pub fn qr_svg(text: &str, label: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::new(text.as_bytes())?;
    let svg = code
        .render::<svg::Color>()
        .quiet_zone(true)
        .min_dimensions(120, 120)
        .build();
    let body = svg.split_once("?>").map(|(_, s)| s).unwrap_or(&svg);
    Ok(body.replacen(
        "<svg ",
        &format!(
            r#"<svg role="img" aria-label="{}" "#,
            crate::web::chart::esc(label)
        ),
        1,
    ))
}

/// `GET /vouchers/batches/{id}/print`.
pub async fn sheet(
    State(state): State<AppState>,
    c: Ctx,
    Path(id): Path<String>,
    Query(q): Query<PrintQuery>,
) -> Result<Response, WebError> {
    let v = viewer(&c)?;
    let template = match q.template.as_deref() {
        Some("thermal") => "thermal",
        _ => "a4",
    };
    let b = batch::get(&state.db, &v, &id)
        .await
        .map_err(|e| not_found(&c, e))?;
    let after = opt(&q.after).unwrap_or_default();
    let filter = VoucherFilter {
        batch_id: Some(id.clone()),
        ..VoucherFilter::default()
    };
    let mut rows = vouchers::list(&state.db, &v, &filter, &after, SHEET_ROWS + 1).await?;
    if rows.len() > SHEET_ROWS as usize {
        rows.truncate(SHEET_ROWS as usize);
    }
    let more = rows.len() == SHEET_ROWS as usize;
    let pager = Pager {
        next: more
            .then(|| rows.last())
            .flatten()
            .map(|v| crate::web::pager::query(&[("template", template), ("after", &v.code)])),
        first: (!after.is_empty()).then(|| crate::web::pager::query(&[("template", template)])),
    };
    let plans = lookups::by_id(&lookups::plans(&state.db, None).await?);
    let plan = plans.get(&b.plan_id);
    let place = match &b.site_id {
        Some(s) => lookups::site_names(&state.db)
            .await?
            .get(s)
            .cloned()
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut vouchers = Vec::with_capacity(rows.len());
    for v in rows {
        let url = c.settings.login_url(&v.code, v.password.as_deref());
        let qr = qr_svg(&url, &format!("QR {}", v.code))
            .map_err(|e| WebError::BadRequest(c.lang, format!("QR code: {e}")))?;
        vouchers.push(PrintedVoucher {
            code: v.code,
            password: v.password,
            url,
            qr,
        });
    }
    let validity = plan
        .and_then(|p| p.validity_secs)
        .map(form_values::duration)
        .unwrap_or_default();
    let time_limit = plan
        .and_then(|p| p.time_limit_secs)
        .map(form_values::duration)
        .unwrap_or_default();
    Ok(c.render(&PrintPage {
        c: &c,
        template,
        vouchers,
        plan: plan.map(|p| p.name.clone()).unwrap_or_default(),
        price: c.money(b.price),
        validity,
        time_limit,
        place,
        batch_id: id,
        pager,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_are_inline_svg_without_xml_declaration() {
        let svg = qr_svg(
            "http://hotspot.lan/login?username=AB12&password=AB12",
            "QR AB12",
        )
        .unwrap();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"QR AB12\" xmlns="),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>") && !svg.contains("<?xml"));
    }
}
