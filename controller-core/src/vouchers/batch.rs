//! Voucher batches: generating up to 100,000 codes in one transaction, reading batches back,
//! and revoking what is left of one.

use super::{
    RECORD_COLUMNS, Scope, ScopeKind, State, UNAMBIGUOUS_ALPHABET, Viewer, record_from_row, sync,
};
use crate::audit::{self, Actor};
use crate::db::{Backend, Db, now_ms};
use crate::error::{DomainError, DomainResult, text};
use mikrobill_protocol::items::{Item, ItemKey};
use mikrobill_protocol::messages::ChangeOp;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::HashSet;

/// Most vouchers one batch may hold.
pub const MAX_COUNT: i64 = 100_000;
/// The random part of a code must have at least this many times more possible values than
/// the batch has codes, so guessing a valid code stays hopeless and collisions rare.
pub const KEYSPACE_FACTOR: u128 = 100;
/// Random part length when none is asked for.
pub const DEFAULT_LENGTH: i64 = 8;
/// Separate password length when none is asked for.
pub const DEFAULT_PASSWORD_LENGTH: i64 = 6;
/// Rounds of regenerating codes that collided with existing ones before giving up.
const MAX_ROUNDS: usize = 8;
/// Vouchers per INSERT. SQLite looks numbered parameters up by name in a list, so a
/// statement's cost grows with the square of its parameters: a few hundred keep it linear
/// (8,000 rows per statement were ten times slower), and PostgreSQL is as fast either way.
const INSERT_CHUNK: usize = 250;

/// How a voucher's password is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordMode {
    /// The code is also the password.
    Code,
    /// A separate random password.
    Separate,
}

impl PasswordMode {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordMode::Code => "code",
            PasswordMode::Separate => "separate",
        }
    }
}

/// What a new batch is made of; checked by [`generate`]. Also the body of
/// `POST /voucher-batches`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// A hotspot plan.
    pub plan_id: String,
    /// Number of vouchers, 1 to [`MAX_COUNT`].
    pub count: i64,
    /// Where the vouchers can be used.
    pub scope: ScopeKind,
    /// The site, for site scope.
    pub site_id: Option<String>,
    /// The site group, for group scope.
    pub group_id: Option<String>,
    /// Fixed start of every code: 0-16 of `A-Z`, `0-9`, `-`.
    pub prefix: Option<String>,
    /// Length of the random part of a code, 4-16.
    pub length: Option<i64>,
    /// How passwords are made (code by default).
    pub password_mode: Option<PasswordMode>,
    /// Separate passwords' length, 4-16.
    pub password_length: Option<i64>,
    /// Separate passwords of digits only (easier to type on phones).
    #[serde(default)]
    pub password_digits: bool,
    /// Price per voucher in minor units; the plan's price when absent.
    pub price: Option<i64>,
    /// Remark.
    pub note: Option<String>,
}

/// A batch as the API shows it (never its codes).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Batch {
    /// Stable id.
    pub id: String,
    /// The plan its vouchers grant.
    pub plan_id: String,
    /// Where its vouchers can be used.
    pub scope: ScopeKind,
    /// The site, for site scope.
    pub site_id: Option<String>,
    /// The site group, for group scope.
    pub group_id: Option<String>,
    /// Number of vouchers generated.
    pub count: i64,
    /// Fixed start of every code.
    pub prefix: String,
    /// Length of the random part of a code.
    pub length: i64,
    /// How passwords were made.
    pub password_mode: PasswordMode,
    /// Price per voucher in minor units.
    pub price: i64,
    /// The reseller that owns it (bought it or had it sold to it).
    pub owner_id: Option<String>,
    /// Remark.
    pub note: Option<String>,
    /// The admin user who generated it.
    pub created_by: Option<String>,
    /// Creation time (unix ms).
    pub created_at: i64,
}

impl Batch {
    /// Its key in the newest-first keyset order.
    pub fn cursor(&self) -> String {
        format!("{}:{}", self.created_at, self.id)
    }
}

/// How many of a batch's vouchers are in each state.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct StateCounts {
    /// Not handed out.
    pub new: i64,
    /// Sold, unused.
    pub sold: i64,
    /// In use.
    pub active: i64,
    /// Validity over.
    pub expired: i64,
    /// Used up.
    pub exhausted: i64,
    /// Withdrawn.
    pub revoked: i64,
}

/// A batch with its vouchers counted by state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchDetail {
    /// The batch.
    #[serde(flatten)]
    pub batch: Batch,
    /// Its vouchers by state (the viewer's only, for a reseller).
    pub counts: StateCounts,
}

const BATCH_COLUMNS: &str = "id, plan_id, scope, site_id, group_id, count, prefix, code_length, password_mode, \
     price, owner_id, note, created_by, created_at";

fn batch_from_row(row: &sqlx::any::AnyRow) -> Result<Batch, sqlx::Error> {
    let decode =
        |what: &str, v: String| sqlx::Error::Decode(format!("unknown {what} {v:?}").into());
    let scope: String = row.try_get("scope")?;
    let mode: String = row.try_get("password_mode")?;
    Ok(Batch {
        id: row.try_get("id")?,
        plan_id: row.try_get("plan_id")?,
        scope: match scope.as_str() {
            "site" => ScopeKind::Site,
            "group" => ScopeKind::Group,
            "all" => ScopeKind::All,
            _ => return Err(decode("scope", scope)),
        },
        site_id: row.try_get("site_id")?,
        group_id: row.try_get("group_id")?,
        count: row.try_get("count")?,
        prefix: row.try_get("prefix")?,
        length: row.try_get("code_length")?,
        password_mode: match mode.as_str() {
            "code" => PasswordMode::Code,
            "separate" => PasswordMode::Separate,
            _ => return Err(decode("password mode", mode)),
        },
        price: row.try_get("price")?,
        owner_id: row.try_get("owner_id")?,
        note: row.try_get("note")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Separate-password rule of a checked spec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PasswordRule {
    length: usize,
    digits: bool,
}

/// A spec whose fields passed every check, with the plan's price resolved.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) plan_id: String,
    pub(crate) count: usize,
    pub(crate) scope: Scope,
    pub(crate) prefix: String,
    pub(crate) length: usize,
    pub(crate) password: Option<PasswordRule>,
    pub(crate) price: i64,
    pub(crate) note: Option<String>,
}

impl Checked {
    /// What the whole batch costs.
    pub(crate) fn total(&self) -> DomainResult<i64> {
        (self.count as i64)
            .checked_mul(self.price)
            .ok_or_else(|| DomainError::invalid("count", "count x price is too large"))
    }
}

/// Checks a spec against the rules and the database (plan, site, group).
pub(crate) async fn check(db: &Db, spec: BatchSpec) -> DomainResult<Checked> {
    let plan = sqlx::query("SELECT price, kind, archived_at FROM plans WHERE id = $1")
        .bind(&spec.plan_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| DomainError::invalid("plan_id", "no such plan"))?;
    if plan.try_get::<String, _>("kind")? != "hotspot" {
        return Err(DomainError::invalid(
            "plan_id",
            "vouchers need a hotspot plan",
        ));
    }
    if plan.try_get::<Option<i64>, _>("archived_at")?.is_some() {
        return Err(DomainError::invalid("plan_id", "the plan is archived"));
    }
    if !(1..=MAX_COUNT).contains(&spec.count) {
        return Err(DomainError::invalid(
            "count",
            format!("must be between 1 and {MAX_COUNT}"),
        ));
    }
    let scope = check_scope(db, &spec).await?;
    let prefix = spec.prefix.unwrap_or_default();
    if prefix.len() > 16
        || !prefix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(DomainError::invalid(
            "prefix",
            "must be at most 16 of A-Z, 0-9 and '-'",
        ));
    }
    let length = spec.length.unwrap_or(DEFAULT_LENGTH);
    if !(4..=16).contains(&length) {
        return Err(DomainError::invalid("length", "must be between 4 and 16"));
    }
    let keyspace = (UNAMBIGUOUS_ALPHABET.len() as u128).pow(length as u32);
    if keyspace < KEYSPACE_FACTOR * spec.count as u128 {
        let needed = (4..=16u32)
            .find(|l| {
                (UNAMBIGUOUS_ALPHABET.len() as u128).pow(*l) >= KEYSPACE_FACTOR * spec.count as u128
            })
            .unwrap_or(16);
        return Err(DomainError::invalid(
            "length",
            format!(
                "{length} characters give {keyspace} codes, fewer than {KEYSPACE_FACTOR} times the count; \
                 use at least {needed}"
            ),
        ));
    }
    let password = match spec.password_mode.unwrap_or(PasswordMode::Code) {
        PasswordMode::Code => {
            if spec.password_length.is_some() {
                return Err(DomainError::invalid(
                    "password_length",
                    "only with password_mode separate",
                ));
            }
            if spec.password_digits {
                return Err(DomainError::invalid(
                    "password_digits",
                    "only with password_mode separate",
                ));
            }
            None
        }
        PasswordMode::Separate => {
            let l = spec.password_length.unwrap_or(DEFAULT_PASSWORD_LENGTH);
            if !(4..=16).contains(&l) {
                return Err(DomainError::invalid(
                    "password_length",
                    "must be between 4 and 16",
                ));
            }
            Some(PasswordRule {
                length: l as usize,
                digits: spec.password_digits,
            })
        }
    };
    let price = match spec.price {
        Some(p) if p < 0 => return Err(DomainError::invalid("price", "must not be negative")),
        Some(p) => p,
        None => plan.try_get("price")?,
    };
    let note = text("note", spec.note, 500)?;
    let checked = Checked {
        plan_id: spec.plan_id,
        count: spec.count as usize,
        scope,
        prefix,
        length: length as usize,
        password,
        price,
        note,
    };
    checked.total()?;
    Ok(checked)
}

async fn check_scope(db: &Db, spec: &BatchSpec) -> DomainResult<Scope> {
    let only_with = |field: &'static str, kind: &str| {
        DomainError::invalid(field, format!("only with scope {kind}"))
    };
    match spec.scope {
        ScopeKind::All => {
            if spec.site_id.is_some() {
                return Err(only_with("site_id", "site"));
            }
            if spec.group_id.is_some() {
                return Err(only_with("group_id", "group"));
            }
            Ok(Scope::All)
        }
        ScopeKind::Site => {
            if spec.group_id.is_some() {
                return Err(only_with("group_id", "group"));
            }
            let id = spec
                .site_id
                .clone()
                .ok_or_else(|| DomainError::invalid("site_id", "is required with scope site"))?;
            let row = sqlx::query("SELECT revoked_at FROM sites WHERE id = $1")
                .bind(&id)
                .fetch_optional(&db.pool)
                .await?
                .ok_or_else(|| DomainError::invalid("site_id", "no such site"))?;
            if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
                return Err(DomainError::invalid("site_id", "the site is revoked"));
            }
            Ok(Scope::Site(id))
        }
        ScopeKind::Group => {
            if spec.site_id.is_some() {
                return Err(only_with("site_id", "site"));
            }
            let id = spec
                .group_id
                .clone()
                .ok_or_else(|| DomainError::invalid("group_id", "is required with scope group"))?;
            sqlx::query("SELECT id FROM site_groups WHERE id = $1")
                .bind(&id)
                .fetch_optional(&db.pool)
                .await?
                .ok_or_else(|| DomainError::invalid("group_id", "no such site group"))?;
            Ok(Scope::Group(id))
        }
    }
}

/// `n` new (code, password) pairs whose codes are not in `seen`, which records them.
fn fresh_pairs(c: &Checked, n: usize, seen: &mut HashSet<String>) -> Vec<(String, Option<String>)> {
    const DIGITS: &[u8] = b"0123456789";
    let mut rng = rand::rng();
    let mut random = |alphabet: &[u8], len: usize, out: &mut String| {
        for _ in 0..len {
            out.push(alphabet[rng.random_range(0..alphabet.len())] as char);
        }
    };
    let mut pairs = Vec::with_capacity(n);
    while pairs.len() < n {
        let mut code = String::with_capacity(c.prefix.len() + c.length);
        code.push_str(&c.prefix);
        random(UNAMBIGUOUS_ALPHABET, c.length, &mut code);
        if !seen.insert(code.clone()) {
            continue;
        }
        let password = c.password.map(|rule| {
            let mut pw = String::with_capacity(rule.length);
            let alphabet = if rule.digits {
                DIGITS
            } else {
                UNAMBIGUOUS_ALPHABET
            };
            random(alphabet, rule.length, &mut pw);
            pw
        });
        pairs.push((code, password));
    }
    pairs
}

/// Values every voucher of one batch shares, bound once per INSERT as `$1`..`$9`.
struct Shared<'a> {
    c: &'a Checked,
    batch_id: &'a str,
    state: State,
    sold_at: Option<i64>,
    sold_to: Option<&'a str>,
    now: i64,
}

const SHARED_PARAMS: usize = 9;

/// Inserts one chunk, skipping codes that already exist; returns the skipped codes.
async fn insert_chunk(
    conn: &mut sqlx::AnyConnection,
    s: &Shared<'_>,
    chunk: &[(String, Option<String>)],
) -> DomainResult<Vec<String>> {
    let mut sql = String::with_capacity(200 + chunk.len() * 56);
    sql.push_str(
        "INSERT INTO vouchers (code, password, plan_id, site_id, group_id, status, price, batch_id, sold_at, sold_to, created_at) VALUES ",
    );
    for i in 0..chunk.len() {
        let p = SHARED_PARAMS + 1 + 2 * i;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${p}, ${}, $1, $2, $3, $4, $5, $6, $7, $8, $9)",
            p + 1
        ));
    }
    sql.push_str(" ON CONFLICT (code) DO NOTHING");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(s.c.plan_id.clone())
        .bind(s.c.scope.site_id().map(str::to_string))
        .bind(s.c.scope.group_id().map(str::to_string))
        .bind(s.state.as_str())
        .bind(s.c.price)
        .bind(s.batch_id.to_string())
        .bind(s.sold_at)
        .bind(s.sold_to.map(str::to_string))
        .bind(s.now);
    for (code, password) in chunk {
        q = q.bind(code.clone()).bind(password.clone());
    }
    let inserted = q.execute(&mut *conn).await?.rows_affected();
    if inserted == chunk.len() as u64 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT code FROM vouchers WHERE batch_id = $1 AND code IN ({})",
        (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(s.batch_id.to_string());
    for (code, _) in chunk {
        q = q.bind(code.clone());
    }
    let ours: HashSet<String> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("code"))
        .collect::<Result<_, _>>()?;
    Ok(chunk
        .iter()
        .filter(|(code, _)| !ours.contains(code))
        .map(|(code, _)| code.clone())
        .collect())
}

/// Writes a checked batch, its vouchers and their sync entries inside the caller's
/// transaction. With an `owner` (a reseller) the vouchers are born sold to it.
pub(crate) async fn insert(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    c: &Checked,
    owner: Option<&str>,
) -> DomainResult<Batch> {
    let now = now_ms();
    let batch = Batch {
        id: uuid::Uuid::new_v4().to_string(),
        plan_id: c.plan_id.clone(),
        scope: c.scope.kind(),
        site_id: c.scope.site_id().map(str::to_string),
        group_id: c.scope.group_id().map(str::to_string),
        count: c.count as i64,
        prefix: c.prefix.clone(),
        length: c.length as i64,
        password_mode: if c.password.is_some() {
            PasswordMode::Separate
        } else {
            PasswordMode::Code
        },
        price: c.price,
        owner_id: owner.map(str::to_string),
        note: c.note.clone(),
        created_by: actor.id.clone(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO voucher_batches (id, plan_id, scope, site_id, group_id, count, prefix, code_length, password_mode, \
         price, owner_id, note, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&batch.id)
    .bind(&batch.plan_id)
    .bind(batch.scope.as_str())
    .bind(batch.site_id.as_deref())
    .bind(batch.group_id.as_deref())
    .bind(batch.count)
    .bind(&batch.prefix)
    .bind(batch.length)
    .bind(batch.password_mode.as_str())
    .bind(batch.price)
    .bind(batch.owner_id.as_deref())
    .bind(batch.note.as_deref())
    .bind(batch.created_by.as_deref())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let shared = Shared {
        c,
        batch_id: &batch.id,
        state: if owner.is_some() {
            State::Sold
        } else {
            State::New
        },
        sold_at: owner.map(|_| now),
        sold_to: owner,
        now,
    };
    let mut seen = HashSet::with_capacity(c.count);
    let mut pending = fresh_pairs(c, c.count, &mut seen);
    // In code order, each INSERT touches neighbouring index pages; random order makes
    // SQLite's page cache thrash on every index holding the code (five times slower).
    pending.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut stored: Vec<(String, Option<String>)> = Vec::with_capacity(c.count);
    for _ in 0..MAX_ROUNDS {
        let mut taken = 0;
        for chunk in pending.chunks(INSERT_CHUNK) {
            let skipped: HashSet<String> = insert_chunk(conn, &shared, chunk)
                .await?
                .into_iter()
                .collect();
            taken += skipped.len();
            stored.extend(
                chunk
                    .iter()
                    .filter(|(code, _)| !skipped.contains(code))
                    .cloned(),
            );
        }
        if taken == 0 {
            break;
        }
        tracing::debug!(batch = %batch.id, taken, "codes taken by other batches; regenerating them");
        pending = fresh_pairs(c, taken, &mut seen);
    }
    if stored.len() < c.count {
        return Err(DomainError::conflict(
            "codes_exhausted",
            "too many codes with this prefix and length exist already; use a longer length or another prefix",
        ));
    }
    let changes = stored
        .into_iter()
        .map(|(code, password)| {
            (
                c.scope.clone(),
                ChangeOp::Upsert(Item::Voucher(mikrobill_protocol::items::Voucher {
                    code,
                    password,
                    plan_id: c.plan_id.clone(),
                    status: shared.state.status(),
                    activated_at_ms: None,
                    used_time_secs: 0,
                    used_bytes: 0,
                    sites: Vec::new(),
                    bound_mac: None,
                })),
            )
        })
        .collect();
    sync(conn, changes).await?;
    if let Some(owner) = owner {
        super::sales_daily::add_batch(conn, &batch.id, owner, now).await?;
    }
    Ok(batch)
}

/// Batches at least this large refresh PostgreSQL's statistics of the vouchers table.
const ANALYZE_FROM: usize = 10_000;

/// After a large batch, PostgreSQL's planner still believes a batch holds a handful of
/// rows until autovacuum samples the table, and pages through it by sorting all of it
/// (50 ms a page instead of 8). Refreshing the statistics at once costs a fraction of the
/// generation; failing to is only slower, so it is logged, not returned.
pub(crate) async fn refresh_statistics(db: &Db, inserted: usize) {
    if db.backend == Backend::Postgres
        && inserted >= ANALYZE_FROM
        && let Err(e) = sqlx::query("ANALYZE vouchers").execute(&db.pool).await
    {
        tracing::warn!("ANALYZE vouchers after a large batch failed: {e}");
    }
}

/// Generates a batch for the house (vouchers start new), in one transaction with its sync
/// entries and audit record.
pub async fn generate(db: &Db, actor: &Actor, spec: BatchSpec) -> DomainResult<Batch> {
    let c = check(db, spec).await?;
    let mut tx = db.begin().await?;
    let batch = insert(&mut tx, actor, &c, None).await?;
    audit::record(
        &mut tx,
        actor,
        "voucher_batch.create",
        "voucher_batch",
        Some(&batch.id),
        None::<&()>,
        Some(&batch),
    )
    .await?;
    tx.commit().await?;
    refresh_statistics(db, c.count).await;
    Ok(batch)
}

/// One batch, if the viewer may see it.
pub async fn get(db: &Db, viewer: &Viewer, id: &str) -> DomainResult<Batch> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLUMNS} FROM voucher_batches WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR owner_id = $2)"
    )))
    .bind(id)
    .bind(viewer.reseller())
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| DomainError::not_found("voucher batch", id))?;
    Ok(batch_from_row(&row)?)
}

/// One batch with its vouchers counted by state.
pub async fn detail(db: &Db, viewer: &Viewer, id: &str) -> DomainResult<BatchDetail> {
    let batch = get(db, viewer, id).await?;
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM vouchers WHERE batch_id = $1 \
         AND (CAST($2 AS TEXT) IS NULL OR sold_to = $2) GROUP BY status",
    )
    .bind(id)
    .bind(viewer.reseller())
    .fetch_all(&db.pool)
    .await?;
    let mut counts = StateCounts::default();
    for r in rows {
        let n: i64 = r.try_get("n")?;
        match r.try_get::<String, _>("status")?.as_str() {
            "new" => counts.new = n,
            "sold" => counts.sold = n,
            "active" => counts.active = n,
            "expired" => counts.expired = n,
            "exhausted" => counts.exhausted = n,
            "revoked" => counts.revoked = n,
            _ => {}
        }
    }
    Ok(BatchDetail { batch, counts })
}

/// Filters of [`list`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct BatchFilter {
    /// Only this plan.
    pub plan_id: Option<String>,
    /// Only this reseller's.
    pub owner_id: Option<String>,
}

/// Batches the viewer may see, newest first, after the cursor `after` ("" for the start).
pub async fn list(
    db: &Db,
    viewer: &Viewer,
    f: &BatchFilter,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<Batch>> {
    let (after_at, after_id) = if after.is_empty() {
        (i64::MAX, String::new())
    } else {
        after
            .split_once(':')
            .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
            .ok_or_else(|| DomainError::invalid("cursor", "is not a cursor this API handed out"))?
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BATCH_COLUMNS} FROM voucher_batches WHERE (CAST($1 AS TEXT) IS NULL OR owner_id = $1) \
         AND (CAST($2 AS TEXT) IS NULL OR plan_id = $2) AND (CAST($3 AS TEXT) IS NULL OR owner_id = $3) \
         AND (created_at < $4 OR (created_at = $4 AND id < $5)) ORDER BY created_at DESC, id DESC LIMIT $6"
    )))
    .bind(viewer.reseller())
    .bind(f.plan_id.as_deref())
    .bind(f.owner_id.as_deref())
    .bind(after_at)
    .bind(after_id)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(batch_from_row).collect::<Result<_, _>>()?)
}

/// What revoking a batch did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchRevoked {
    /// The batch.
    pub batch_id: String,
    /// Vouchers revoked (those that were new or sold).
    pub revoked: u64,
}

/// Revokes a batch's new and sold vouchers (active ones keep running); they disappear
/// from the agents' caches.
pub async fn revoke(db: &Db, actor: &Actor, id: &str) -> DomainResult<BatchRevoked> {
    let batch = get(db, &Viewer::All, id).await?;
    let mut tx = db.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE vouchers SET status = 'revoked' WHERE batch_id = $1 AND {} \
         RETURNING {RECORD_COLUMNS}",
        super::lifecycle::applies_sql("status", super::lifecycle::Event::RevokeUnused)
    )))
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("batch {id} has no new or sold vouchers left to revoke"),
        ));
    }
    let mut changes = Vec::with_capacity(rows.len());
    for row in &rows {
        let v = record_from_row(row)?;
        changes.push((v.scope(), ChangeOp::Delete(ItemKey::Voucher(v.code))));
    }
    sync(&mut tx, changes).await?;
    let done = BatchRevoked {
        batch_id: id.to_string(),
        revoked: rows.len() as u64,
    };
    audit::record(
        &mut tx,
        actor,
        "voucher_batch.revoke",
        "voucher_batch",
        Some(id),
        Some(&batch),
        Some(&done),
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(count: usize, password: Option<PasswordRule>) -> Checked {
        Checked {
            plan_id: "p".into(),
            count,
            scope: Scope::All,
            prefix: "HS-".into(),
            length: 6,
            password,
            price: 0,
            note: None,
        }
    }

    #[test]
    fn fresh_pairs_are_unique_prefixed_and_unambiguous() {
        let c = checked(
            5_000,
            Some(PasswordRule {
                length: 5,
                digits: true,
            }),
        );
        let mut seen = HashSet::new();
        let first = fresh_pairs(&c, 5_000, &mut seen);
        let more = fresh_pairs(&c, 100, &mut seen);
        let codes: HashSet<&String> = first.iter().chain(&more).map(|(c, _)| c).collect();
        assert_eq!(codes.len(), 5_100);
        for (code, pw) in first.iter().chain(&more) {
            assert!(code.starts_with("HS-") && code.len() == 9);
            assert!(code[3..].bytes().all(|b| UNAMBIGUOUS_ALPHABET.contains(&b)));
            let pw = pw.as_ref().unwrap();
            assert!(pw.len() == 5 && pw.bytes().all(|b| b.is_ascii_digit()));
        }
        assert!(
            fresh_pairs(&checked(3, None), 3, &mut HashSet::new())
                .iter()
                .all(|(_, pw)| pw.is_none())
        );
    }
}
