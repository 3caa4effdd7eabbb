//! Writes what a mapping decided, all in one transaction: each row in its own savepoint, so a
//! row the domain refuses (a taken name, an invalid field) is skipped and reported while the
//! rest goes in; a storage failure rolls everything back, and a dry run rolls back at the end.
//! Every created row is remembered in `import_sources` by the source's id, so a second run
//! reports it as already imported instead of creating it again.

use super::phpnuxbill::{Mapped, NewVoucher, SiteRef};
use super::report::{Entry, Kind, Outcome, Report, Source};
use crate::audit::Actor;
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use crate::settings::BillingSettings;
use crate::subscriptions::SubscriptionInput;
use crate::vouchers::carried::CarriedVoucher;
use sqlx::{Connection, Row};
use std::collections::BTreeMap;

/// `import_sources.source` of PHPNuxBill imports.
pub const SOURCE: &str = "phpnuxbill";

/// `import_sources.source` of the import of a site's router: its `.id`s are the router's own.
pub fn router_source(site_id: &str) -> String {
    format!("routeros:{site_id}")
}

/// How an import is written.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// Who imports (the audit log's actor).
    pub actor: &'a Actor,
    /// Billing settings (offset, defaults) for subscriptions.
    pub settings: &'a BillingSettings,
    /// The current time (unix ms).
    pub now: i64,
    /// Roll everything back at the end and only report.
    pub dry_run: bool,
    /// `import_sources.source`: [`SOURCE`] or [`router_source`].
    pub source: &'a str,
}

async fn imported(
    conn: &mut sqlx::AnyConnection,
    source: &str,
    kind: Kind,
    source_id: &str,
) -> DomainResult<Option<String>> {
    let row = sqlx::query(
        "SELECT target_id FROM import_sources WHERE source = $1 AND kind = $2 AND source_id = $3",
    )
    .bind(source)
    .bind(kind.as_str())
    .bind(source_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.try_get("target_id")).transpose()?)
}

async fn remember(
    conn: &mut sqlx::AnyConnection,
    source: &str,
    kind: Kind,
    source_id: &str,
    target_id: &str,
    now: i64,
) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO import_sources (source, kind, source_id, target_id, imported_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(source)
    .bind(kind.as_str())
    .bind(source_id)
    .bind(target_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A refusal that skips the row; `None` for failures that must stop the whole import.
fn refusal(e: &DomainError) -> Option<(Option<String>, String)> {
    match e {
        DomainError::Db(_) => None,
        DomainError::Invalid { field, message } => Some((Some(field.to_string()), message.clone())),
        DomainError::NotFound { .. } | DomainError::Conflict { .. } => Some((None, e.to_string())),
    }
}

struct Writer<'r> {
    run: &'r Run<'r>,
    report: Report,
    ids: BTreeMap<(Kind, String), String>,
}

impl Writer<'_> {
    fn push(&mut self, kind: Kind, source: Source, outcome: Outcome) {
        self.report.entries.push(Entry {
            kind,
            source,
            outcome,
        });
    }

    fn skip(&mut self, kind: Kind, source: Source, field: Option<&str>, reason: String) {
        self.push(
            kind,
            source,
            Outcome::Skipped {
                field: field.map(str::to_string),
                reason,
            },
        );
    }

    /// The MikroBill id created (now or by an earlier run) for a source row.
    async fn target(
        &self,
        conn: &mut sqlx::AnyConnection,
        kind: Kind,
        source_id: &str,
    ) -> DomainResult<Option<String>> {
        if let Some(id) = self.ids.get(&(kind, source_id.to_string())) {
            return Ok(Some(id.clone()));
        }
        imported(conn, self.run.source, kind, source_id).await
    }

    /// Whether an earlier run imported the row (then reported and its id kept).
    async fn seen_before(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        kind: Kind,
        source: &Source,
    ) -> DomainResult<bool> {
        match imported(conn, self.run.source, kind, &source.id).await? {
            Some(target) => {
                self.ids.insert((kind, source.id.clone()), target);
                self.push(kind, source.clone(), Outcome::AlreadyImported);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs one row's writes in a savepoint: kept and remembered when they succeed, undone
    /// and reported when the domain refuses them.
    async fn row<F>(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        kind: Kind,
        source: Source,
        write: F,
    ) -> DomainResult<()>
    where
        F: AsyncFnOnce(&mut sqlx::AnyConnection) -> DomainResult<(String, String)>,
    {
        let mut sp = conn.begin().await?;
        match write(&mut sp).await {
            Ok((target, what)) => {
                remember(
                    &mut sp,
                    self.run.source,
                    kind,
                    &source.id,
                    &target,
                    self.run.now,
                )
                .await?;
                sp.commit().await?;
                self.ids.insert((kind, source.id.clone()), target);
                self.push(kind, source, Outcome::Created { what });
                Ok(())
            }
            Err(e) => match refusal(&e) {
                Some((field, reason)) => {
                    sp.rollback().await?;
                    self.skip(kind, source, field.as_deref(), reason);
                    Ok(())
                }
                None => Err(e),
            },
        }
    }

    async fn site(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        site: &SiteRef,
    ) -> DomainResult<Result<String, String>> {
        match site {
            SiteRef::Id(id) => Ok(Ok(id.clone())),
            SiteRef::Router(id) => Ok(self
                .target(conn, Kind::Site, id)
                .await?
                .ok_or_else(|| format!("router {id} was not imported"))),
            SiteRef::Named(name) => {
                if let Some(id) = self.ids.get(&(Kind::Site, format!("named:{name}"))) {
                    return Ok(Ok(id.clone()));
                }
                let site = match crate::sites::fetch_in(conn, name).await {
                    Ok(site) => site,
                    Err(crate::sites::SiteError::NotFound(_)) => {
                        let created =
                            crate::sites::create_in(conn, self.run.actor, name, self.run.now)
                                .await
                                .map_err(DomainError::from);
                        let site = match created {
                            Ok(site) => site,
                            Err(e) => match refusal(&e) {
                                Some((_, why)) => return Ok(Err(format!("site {name:?}: {why}"))),
                                None => return Err(e),
                            },
                        };
                        self.push(
                            Kind::Site,
                            Source {
                                table: "--site-for-unassigned",
                                id: name.clone(),
                                line: 0,
                                name: None,
                            },
                            Outcome::Created { what: name.clone() },
                        );
                        site
                    }
                    Err(e) => return Err(e.into()),
                };
                self.ids
                    .insert((Kind::Site, format!("named:{name}")), site.id.clone());
                Ok(Ok(site.id))
            }
        }
    }

    async fn voucher(&mut self, conn: &mut sqlx::AnyConnection, v: NewVoucher) -> DomainResult<()> {
        if self.seen_before(conn, v.kind, &v.source).await? {
            return Ok(());
        }
        let Some(plan_id) = self.target(conn, Kind::Plan, &v.plan).await? else {
            let why = format!("plan {} was not imported", v.plan);
            self.skip(v.kind, v.source, Some("plan"), why);
            return Ok(());
        };
        let site_id = match self.site(conn, &v.site).await? {
            Ok(id) => id,
            Err(why) => {
                self.skip(v.kind, v.source, Some("routers"), why);
                return Ok(());
            }
        };
        let (actor, now) = (self.run.actor, self.run.now);
        let carried = CarriedVoucher {
            code: v.code,
            password: v.password,
            plan_id,
            site_id,
            activated_at: v.activated_at,
            expires_at: v.expires_at,
            used: v.used,
        };
        self.row(conn, v.kind, v.source, async move |c| {
            let r = crate::vouchers::carried::create_in(c, actor, carried, now).await?;
            Ok((r.code.clone(), r.code))
        })
        .await
    }
}

/// Writes a mapping in one transaction and reports every row; a dry run writes nothing.
pub async fn apply(db: &Db, run: &Run<'_>, mapped: Mapped) -> DomainResult<Report> {
    let mut tx = db.begin().await?;
    let report = apply_in(&mut tx, run, mapped).await?;
    if run.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// Writes a mapping inside the caller's transaction (which a dry run must roll back), for
/// an import that writes more in the same transaction.
pub async fn apply_in(
    tx: &mut sqlx::AnyConnection,
    run: &Run<'_>,
    mapped: Mapped,
) -> DomainResult<Report> {
    let mut w = Writer {
        run,
        report: Report {
            dry_run: run.dry_run,
            entries: mapped.skipped.clone(),
            notes: mapped.notes.clone(),
        },
        ids: BTreeMap::new(),
    };
    let (actor, now) = (run.actor, run.now);
    for s in mapped.sites {
        if w.seen_before(tx, Kind::Site, &s.source).await? {
            continue;
        }
        let name = s.name;
        w.row(tx, Kind::Site, s.source, async move |c| {
            let site = crate::sites::create_in(c, actor, &name, now)
                .await
                .map_err(DomainError::from)?;
            Ok((site.id, site.name))
        })
        .await?;
    }
    // Plans disabled in the source, archived once what was sold on them is in.
    let mut to_archive = Vec::new();
    for p in mapped.plans {
        if w.seen_before(tx, Kind::Plan, &p.source).await? {
            continue;
        }
        if p.archived {
            to_archive.push(p.source.id.clone());
        }
        let input = p.input;
        w.row(tx, Kind::Plan, p.source, async move |c| {
            let plan = crate::plans::create_in(c, actor, &input, now).await?;
            Ok((plan.id, plan.name))
        })
        .await?;
    }
    for cu in mapped.customers {
        if w.seen_before(tx, Kind::Customer, &cu.source).await? {
            continue;
        }
        let (input, balance) = (cu.input, cu.balance);
        w.row(tx, Kind::Customer, cu.source, async move |c| {
            let customer = crate::customers::create_in(c, actor, input, balance, now).await?;
            Ok((
                customer.id,
                format!("{} {}", customer.number, customer.name),
            ))
        })
        .await?;
    }
    for s in mapped.subscriptions {
        if w.seen_before(tx, Kind::Subscription, &s.source).await? {
            continue;
        }
        let Some(customer_id) = w.target(tx, Kind::Customer, &s.customer).await? else {
            let why = format!("customer {} was not imported", s.customer);
            w.skip(Kind::Subscription, s.source, Some("customer_id"), why);
            continue;
        };
        let Some(plan_id) = w.target(tx, Kind::Plan, &s.plan).await? else {
            let why = format!("plan {} was not imported", s.plan);
            w.skip(Kind::Subscription, s.source, Some("plan_id"), why);
            continue;
        };
        let site_id = match w.site(tx, &s.site).await? {
            Ok(id) => id,
            Err(why) => {
                w.skip(Kind::Subscription, s.source, Some("routers"), why);
                continue;
            }
        };
        let input = SubscriptionInput {
            customer_id,
            plan_id,
            site_id,
            username: s.username,
            password: Some(s.password),
            static_ip: s.static_ip,
            billing_day: None,
            start_date: Some(s.start_date.to_string()),
            bill_from: Some(s.bill_from.to_string()),
            due_days: None,
            grace_days: None,
        };
        let st = run.settings;
        let isolated = s.isolated.is_some();
        w.row(tx, Kind::Subscription, s.source, async move |c| {
            let mut sub = crate::subscriptions::create_in(c, actor, input, st, now).await?;
            if isolated {
                sub = crate::subscriptions::isolate_in(c, actor, &sub.id).await?;
            }
            Ok((sub.id, sub.username))
        })
        .await?;
    }
    for v in mapped.vouchers {
        w.voucher(tx, v).await?;
    }
    for source_id in to_archive {
        // A plan whose row failed was reported skipped and has nothing to archive.
        if let Some(plan_id) = w.target(tx, Kind::Plan, &source_id).await? {
            crate::plans::set_archived_in(tx, actor, &plan_id, true, now).await?;
        }
    }
    // A note tells how a row is (or would be) created: rows an earlier run imported, or
    // that were skipped, are not created now.
    let Report { entries, notes, .. } = &mut w.report;
    notes.retain(|n| {
        entries.iter().any(|e| {
            e.kind == n.kind
                && e.source.table == n.source.table
                && e.source.id == n.source.id
                && matches!(e.outcome, Outcome::Created { .. })
        })
    });
    Ok(w.report)
}
