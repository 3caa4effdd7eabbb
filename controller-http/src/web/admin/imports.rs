//! Moving in from PHPNuxBill from the browser: the same import as the CLI and
//! `POST /api/v1/imports/phpnuxbill`, its file uploaded, with the report shown on the page.

use super::ctx::Ctx;
use super::error::WebError;
use super::upload;
use crate::api::v1::imports::MAX_DUMP_BYTES;
use crate::server::AppState;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::response::Response;
use mikrobill_core::db::now_ms;
use mikrobill_core::importer::report::{Kind, Outcome, Report};
use mikrobill_core::importer::{self, ImportError, PhpnuxbillOptions};

#[derive(askama::Template)]
#[template(path = "admin/imports.html")]
struct ImportsPage<'a> {
    c: &'a Ctx,
    /// The site name the form was sent with, shown again.
    site_for_unassigned: String,
    report: Option<Report>,
    error: Option<String>,
}

impl ImportsPage<'_> {
    fn kinds(&self) -> [Kind; Kind::ALL.len()] {
        Kind::ALL
    }

    fn kind_label(&self, kind: &Kind) -> &'static str {
        self.c.t(match kind {
            Kind::Site => "import.kind.site",
            Kind::Plan => "import.kind.plan",
            Kind::Customer => "import.kind.customer",
            Kind::Subscription => "import.kind.subscription",
            Kind::ActiveVoucher => "import.kind.active_voucher",
            Kind::Voucher => "import.kind.voucher",
        })
    }

    /// The notes on rows imported differently: kind, table, id, line, text.
    fn notes(&self) -> Vec<(&'static str, &str, &str, u64, &str)> {
        self.report
            .iter()
            .flat_map(|r| r.notes.iter())
            .map(|n| {
                (
                    self.kind_label(&n.kind),
                    n.source.table,
                    n.source.id.as_str(),
                    n.source.line,
                    n.text.as_str(),
                )
            })
            .collect()
    }

    /// The skipped rows: kind, table, id, line, field, reason.
    fn skipped(&self) -> Vec<(Kind, &str, &str, u64, &str, &str)> {
        self.report
            .iter()
            .flat_map(|r| r.entries.iter())
            .filter_map(|e| match &e.outcome {
                Outcome::Skipped { field, reason } => Some((
                    e.kind,
                    e.source.table,
                    e.source.id.as_str(),
                    e.source.line,
                    field.as_deref().unwrap_or("–"),
                    reason.as_str(),
                )),
                _ => None,
            })
            .collect()
    }
}

fn require(c: &Ctx) -> Result<(), WebError> {
    importer::PERMS.iter().try_for_each(|p| c.require(*p))
}

/// `GET /imports`.
pub async fn page(c: Ctx) -> Result<Response, WebError> {
    require(&c)?;
    Ok(c.render(&ImportsPage {
        c: &c,
        site_for_unassigned: String::new(),
        report: None,
        error: None,
    }))
}

/// `POST /imports`: a dry run unless the operator unticked it.
pub async fn run(
    State(state): State<AppState>,
    c: Ctx,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    // The role first: a role that may not import never uploads 64 MiB.
    require(&c)?;
    let upload = upload::read(&headers, multipart, c.lang, MAX_DUMP_BYTES).await?;
    let site_for_unassigned = upload
        .fields
        .get("site_for_unassigned")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let page = |report, error| ImportsPage {
        c: &c,
        site_for_unassigned: site_for_unassigned.clone(),
        report,
        error,
    };
    let Some(file) = upload.file else {
        return Ok(c.render(&page(None, Some(c.t("import.no_file").to_string()))));
    };
    let result = importer::import_phpnuxbill(
        &state.db,
        &c.actor(),
        std::io::Cursor::new(file),
        PhpnuxbillOptions {
            dry_run: upload.fields.contains_key("dry_run"),
            site_for_unassigned: Some(site_for_unassigned.clone()).filter(|s| !s.is_empty()),
        },
        now_ms(),
    )
    .await;
    match result {
        Ok(report) => Ok(c.render(&page(Some(report), None))),
        Err(e @ ImportError::Dump(_)) => Ok(c.render(&page(None, Some(e.to_string())))),
        Err(ImportError::Domain(d)) => Err(d.into()),
    }
}
