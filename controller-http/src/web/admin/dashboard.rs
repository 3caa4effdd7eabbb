//! The dashboard: revenue, sessions, vouchers sold, overdue subscriptions, sites and two
//! charts. Figures the role may not read are left out.

use super::ctx::Ctx;
use super::error::WebError;
use crate::server::AppState;
use crate::web::chart::{self, Bar};
use axum::extract::State;
use axum::response::Response;
use mikrobill_core::auth::Perm;
use mikrobill_core::sites::{self, Site};
use mikrobill_core::stats::{self, Summary};

/// One site row of the dashboard.
pub struct SiteRow {
    /// The site.
    pub site: Site,
    /// Hotspot + PPP sessions the router last reported.
    pub sessions: i64,
}

#[derive(askama::Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage<'a> {
    c: &'a Ctx,
    money: Option<Summary>,
    sites: Vec<SiteRow>,
    sessions: i64,
    online: usize,
    revenue_chart: String,
    sessions_chart: String,
}

fn router_sessions(site: &Site) -> i64 {
    let Some(r) = &site.router else { return 0 };
    if !site.online {
        return 0;
    }
    ["hotspot_active", "ppp_active"]
        .iter()
        .filter_map(|k| r.get(k).and_then(|v| v.as_i64()))
        .sum()
}

/// `GET /`.
pub async fn page(State(state): State<AppState>, c: Ctx) -> Result<Response, WebError> {
    let now = mikrobill_core::db::now_ms();
    let offset = c.settings.utc_offset_minutes;
    let (money, revenue_chart) = if c.can(Perm::ReadPayments) {
        let summary = stats::summary(&state.db, now, offset).await?;
        let days = stats::revenue_per_day(&state.db, now, offset, 30).await?;
        let bars: Vec<Bar> = days
            .iter()
            .map(|(start, total)| Bar {
                label: c.date(*start).get(8..).unwrap_or_default().to_string(),
                value: *total,
                shown: format!("{} {}", c.date(*start), c.money(*total)),
            })
            .collect();
        (Some(summary), chart::bars(c.t("dash.revenue_chart"), &bars))
    } else {
        (None, String::new())
    };
    let (sites, sessions_chart) = if c.can(Perm::ReadSites) {
        let rows: Vec<SiteRow> = sites::list(&state.db)
            .await?
            .into_iter()
            .filter(|s| s.revoked_at.is_none())
            .map(|site| SiteRow {
                sessions: router_sessions(&site),
                site,
            })
            .collect();
        let bars: Vec<Bar> = rows
            .iter()
            .map(|r| Bar {
                label: r.site.name.clone(),
                value: r.sessions,
                shown: r.sessions.to_string(),
            })
            .collect();
        let svg = chart::bars(c.t("dash.sessions_chart"), &bars);
        (rows, svg)
    } else {
        (Vec::new(), String::new())
    };
    let sessions = sites.iter().map(|s| s.sessions).sum();
    let online = sites.iter().filter(|s| s.site.online).count();
    Ok(c.render(&DashboardPage {
        c: &c,
        money,
        sessions,
        online,
        sites,
        revenue_chart,
        sessions_chart,
    }))
}
