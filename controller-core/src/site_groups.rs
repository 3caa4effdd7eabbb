//! Site groups: named sets of sites that a voucher can be scoped to. A group voucher reaches
//! exactly the group's members; joining or leaving a group syncs its vouchers to or from
//! the site.

use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult, required_text};
use crate::sync_log;
use crate::vouchers;
use mikrobill_protocol::items::{Item, ItemKey};
use mikrobill_protocol::messages::ChangeOp;
use serde::Serialize;
use sqlx::Row;

/// Vouchers read and synced per step when a site joins or leaves a group.
const SYNC_PAGE: i64 = 5_000;

/// A member site, as a group shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberSite {
    /// Site id.
    pub id: String,
    /// Site name.
    pub name: String,
}

/// A site group with its members.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SiteGroup {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Member sites, by name.
    pub sites: Vec<MemberSite>,
}

async fn members(
    conn: &mut sqlx::AnyConnection,
    group_ids: &[String],
) -> DomainResult<Vec<(String, MemberSite)>> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT m.group_id, s.id, s.name FROM site_group_members m JOIN sites s ON s.id = m.site_id \
         WHERE m.group_id IN ({}) ORDER BY s.name",
        (1..=group_ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in group_ids {
        q = q.bind(id.clone());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("group_id")?,
                MemberSite {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DomainError::from)
}

async fn with_members(
    conn: &mut sqlx::AnyConnection,
    rows: Vec<sqlx::any::AnyRow>,
) -> DomainResult<Vec<SiteGroup>> {
    let mut groups: Vec<SiteGroup> = rows
        .iter()
        .map(|r| {
            Ok(SiteGroup {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                sites: Vec::new(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    for (group_id, site) in members(conn, &ids).await? {
        if let Some(g) = groups.iter_mut().find(|g| g.id == group_id) {
            g.sites.push(site);
        }
    }
    Ok(groups)
}

async fn get_on(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<SiteGroup> {
    let row = sqlx::query("SELECT id, name, created_at FROM site_groups WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| DomainError::not_found("site group", id))?;
    Ok(with_members(conn, vec![row]).await?.remove(0))
}

/// One group with its members.
pub async fn get(db: &Db, id: &str) -> DomainResult<SiteGroup> {
    let mut conn = db.pool.acquire().await?;
    get_on(&mut conn, id).await
}

/// Groups by name, after `after`.
pub async fn list(db: &Db, after: &str, limit: u32) -> DomainResult<Vec<SiteGroup>> {
    let mut conn = db.pool.acquire().await?;
    let rows = sqlx::query(
        "SELECT id, name, created_at FROM site_groups WHERE name > $1 ORDER BY name LIMIT $2",
    )
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    with_members(&mut conn, rows).await
}

/// Creates an empty group with a unique name.
pub async fn create(db: &Db, actor: &Actor, name: &str) -> DomainResult<SiteGroup> {
    let name = required_text("name", name, 64)?;
    let group = SiteGroup {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        created_at: now_ms(),
        sites: Vec::new(),
    };
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO site_groups (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&group.id)
    .bind(&group.name)
    .bind(group.created_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(DomainError::conflict(
            "exists",
            format!("a site group named {:?} already exists", group.name),
        ));
    }
    audit::record(
        &mut tx,
        actor,
        "site_group.create",
        "site_group",
        Some(&group.id),
        None::<&()>,
        Some(&group),
    )
    .await?;
    tx.commit().await?;
    Ok(group)
}

/// Whether a site is revoked; not found when it does not exist. Sites belong to the sites
/// module, but membership needs only these two facts.
async fn site_revoked(db: &Db, id: &str) -> DomainResult<bool> {
    let row = sqlx::query("SELECT revoked_at FROM sites WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| DomainError::not_found("site", id))?;
    Ok(row.try_get::<Option<i64>, _>("revoked_at")?.is_some())
}

/// Syncs every live (not revoked) voucher of a group to or from one site, page by page.
async fn sync_group_to_site(
    conn: &mut sqlx::AnyConnection,
    group_id: &str,
    site_id: &str,
    joining: bool,
) -> DomainResult<()> {
    let mut after = String::new();
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM vouchers WHERE group_id = $1 AND status <> 'revoked' AND code > $2 ORDER BY code LIMIT $3",
            vouchers::RECORD_COLUMNS
        )))
        .bind(group_id)
        .bind(&after)
        .bind(SYNC_PAGE)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("code")?;
        let ops = rows
            .iter()
            .map(|r| {
                let v = vouchers::record_from_row(r)?;
                Ok(if joining {
                    ChangeOp::Upsert(Item::Voucher(v.item()))
                } else {
                    ChangeOp::Delete(ItemKey::Voucher(v.code))
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        sync_log::append(&mut *conn, Some(site_id), &ops).await?;
        if (rows.len() as i64) < SYNC_PAGE {
            return Ok(());
        }
    }
}

/// Adds a site to a group and syncs the group's vouchers to it; adding a member again
/// changes nothing.
pub async fn add_site(
    db: &Db,
    actor: &Actor,
    group_id: &str,
    site_id: &str,
) -> DomainResult<SiteGroup> {
    let before = get(db, group_id).await?;
    let revoked = site_revoked(db, site_id).await?;
    if before.sites.iter().any(|s| s.id == site_id) {
        return Ok(before);
    }
    if revoked {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("site {site_id} is revoked"),
        ));
    }
    let mut tx = db.begin().await?;
    // Under the change-log lock, so a group voucher written concurrently is either seen by
    // the page reads below or sees this member when it is synced.
    sync_log::lock(&mut tx).await?;
    let inserted = sqlx::query(
        "INSERT INTO site_group_members (group_id, site_id) VALUES ($1, $2) ON CONFLICT (group_id, site_id) DO NOTHING",
    )
    .bind(group_id)
    .bind(site_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return get_on(&mut tx, group_id).await;
    }
    sync_group_to_site(&mut tx, group_id, site_id, true).await?;
    let after = get_on(&mut tx, group_id).await?;
    audit::record(
        &mut tx,
        actor,
        "site_group.add_site",
        "site_group",
        Some(group_id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes a site from a group; the group's vouchers are deleted from the site's cache.
pub async fn remove_site(
    db: &Db,
    actor: &Actor,
    group_id: &str,
    site_id: &str,
) -> DomainResult<SiteGroup> {
    let before = get(db, group_id).await?;
    site_revoked(db, site_id).await?;
    let mut tx = db.begin().await?;
    sync_log::lock(&mut tx).await?;
    let removed =
        sqlx::query("DELETE FROM site_group_members WHERE group_id = $1 AND site_id = $2")
            .bind(group_id)
            .bind(site_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if removed == 0 {
        return Err(DomainError::not_found(
            "site group member",
            format!("{group_id}/{site_id}"),
        ));
    }
    sync_group_to_site(&mut tx, group_id, site_id, false).await?;
    let after = get_on(&mut tx, group_id).await?;
    audit::record(
        &mut tx,
        actor,
        "site_group.remove_site",
        "site_group",
        Some(group_id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
