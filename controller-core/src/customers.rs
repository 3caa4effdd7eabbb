//! Customers: the people and businesses an ISP bills (PPPoE subscribers, resellers' buyers).

use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult, required_text, text};
use serde::Serialize;
use sqlx::Row;

/// A customer record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    /// Stable id.
    pub id: String,
    /// Customer number shown on invoices and used at the cash desk, e.g. `C000042`.
    pub number: String,
    /// Full name or business name.
    pub name: String,
    /// Phone in international form (`+62...`), used for WhatsApp.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Postal or installation address.
    pub address: Option<String>,
    /// Operator's notes.
    pub notes: Option<String>,
    /// Credit held (minor units); overpayments land here.
    pub balance: i64,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, number, name, phone, email, address, notes, balance, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        address: r.try_get("address")?,
        notes: r.try_get("notes")?,
        balance: r.try_get("balance")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Country calling code assumed for local numbers written with a leading 0 (Indonesia).
pub const DEFAULT_COUNTRY_CODE: &str = "62";

/// Normalises a phone number to `+<country><number>`; WhatsApp gateways need that form.
pub fn normalize_phone(raw: &str) -> DomainResult<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest.to_string()
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = compact.strip_prefix('0') {
        format!("{DEFAULT_COUNTRY_CODE}{rest}")
    } else {
        compact.clone()
    };
    if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "phone",
            "must be a phone number such as 0812-3456-7890 or +62 812 3456 7890",
        ));
    }
    Ok(format!("+{digits}"))
}

fn check_email(e: &str) -> DomainResult<()> {
    let ok = e.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !e.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid("email", "is not an e-mail address"))
    }
}

/// Fields of a new customer.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// Full name or business name.
    pub name: String,
    /// Phone number (normalised to `+62...`).
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

/// Changes to a customer; absent fields stay, empty strings clear.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// New name.
    pub name: Option<String>,
    /// New phone ("" clears).
    pub phone: Option<String>,
    /// New e-mail ("" clears).
    pub email: Option<String>,
    /// New address ("" clears).
    pub address: Option<String>,
    /// New notes ("" clears).
    pub notes: Option<String>,
}

struct Clean {
    name: String,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
    notes: Option<String>,
}

fn clean(input: CustomerInput) -> DomainResult<Clean> {
    let phone = match text("phone", input.phone, 32)? {
        Some(p) => Some(normalize_phone(&p)?),
        None => None,
    };
    let email = text("email", input.email, 254)?.map(|e| e.to_lowercase());
    if let Some(e) = &email {
        check_email(e)?;
    }
    Ok(Clean {
        name: required_text("name", &input.name, 200)?,
        phone,
        email,
        address: text("address", input.address, 500)?,
        notes: text("notes", input.notes, 2000)?,
    })
}

/// Reads a customer inside a transaction or on a connection.
pub(crate) async fn fetch(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Customer> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("customer", id))?;
    Ok(from_row(&row)?)
}

/// Creates a customer with the next customer number.
pub async fn create(db: &Db, actor: &Actor, input: CustomerInput) -> DomainResult<Customer> {
    let mut tx = db.begin().await?;
    let customer = create_in(&mut tx, actor, input, 0, now_ms()).await?;
    tx.commit().await?;
    Ok(customer)
}

/// Creates a customer holding `balance` (minor units) inside the caller's transaction, for
/// an import that writes many records at once.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    input: CustomerInput,
    balance: i64,
    now: i64,
) -> DomainResult<Customer> {
    let c = clean(input)?;
    if !(0..=crate::tax::MAX_AMOUNT).contains(&balance) {
        return Err(DomainError::invalid(
            "balance",
            "must be between 0 and 10^15",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    // The counter row's lock hands out numbers without gaps or duplicates across replicas.
    let n: i64 =
        sqlx::query("UPDATE customer_counter SET last = last + 1 WHERE id = 1 RETURNING last")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .next()
            .ok_or(sqlx::Error::RowNotFound)?
            .try_get("last")?;
    sqlx::query(
        "INSERT INTO customers (id, number, name, phone, email, address, notes, balance, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(format!("C{n:06}"))
    .bind(&c.name)
    .bind(&c.phone)
    .bind(&c.email)
    .bind(&c.address)
    .bind(&c.notes)
    .bind(balance)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let customer = fetch(conn, &id).await?;
    audit::record(
        conn,
        actor,
        "customer.create",
        "customer",
        Some(&id),
        None::<&()>,
        Some(&customer),
    )
    .await?;
    Ok(customer)
}

/// One customer by id.
pub async fn get(db: &Db, id: &str) -> DomainResult<Customer> {
    let mut conn = db.pool.acquire().await?;
    fetch(&mut conn, id).await
}

/// Filters of the customer list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Text found in the name, number, phone or e-mail (case-insensitive).
    pub q: Option<String>,
}

/// Customers by id, for lists that show whose a record is (one query per page).
pub async fn by_ids(
    db: &Db,
    ids: &[String],
) -> DomainResult<std::collections::HashMap<String, Customer>> {
    let mut ids: Vec<&String> = ids.iter().collect();
    ids.sort();
    ids.dedup();
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(100) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM customers WHERE id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for row in q.fetch_all(&db.pool).await? {
            let c = from_row(&row)?;
            out.insert(c.id.clone(), c);
        }
    }
    Ok(out)
}

/// A case-insensitive "contains" LIKE pattern for user text.
pub fn like_pattern(q: &str) -> String {
    format!("%{}%", crate::db::escape_like(&q.to_lowercase()))
}

const JSON_FIELDS: &str = "'id', id, 'number', number, 'name', name, 'phone', phone, 'email', email, \
     'address', address, 'notes', notes, 'balance', balance, 'created_at', created_at, 'updated_at', updated_at";

/// Customers ordered by number after `after`, each already rendered as JSON by the database
/// in [`Customer`]'s serialized shape (the list endpoint's fast path).
pub async fn list_json(
    db: &Db,
    f: &CustomerFilter,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<Box<serde_json::value::RawValue>>> {
    // Without a search the plain statement keeps the hot path free of per-row filters.
    let search = "AND (LOWER(name) LIKE $3 ESCAPE '\\' OR LOWER(number) LIKE $3 ESCAPE '\\' \
                  OR phone LIKE $3 ESCAPE '\\' OR email LIKE $3 ESCAPE '\\')";
    let inner = format!(
        "SELECT {COLUMNS} FROM customers WHERE number > $1 {} ORDER BY number LIMIT $2",
        if f.q.is_some() { search } else { "" }
    );
    let pattern = f.q.as_deref().map(like_pattern);
    Ok(
        crate::db::json_rows(db, JSON_FIELDS, &inner, "number", |q| {
            let q = q.bind(after.to_string()).bind(limit as i64);
            match pattern {
                Some(p) => q.bind(p),
                None => q,
            }
        })
        .await?,
    )
}

/// Applies a patch.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: &str,
    patch: CustomerPatch,
) -> DomainResult<Customer> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    let merged = CustomerInput {
        name: patch.name.unwrap_or_else(|| before.name.clone()),
        phone: patch.phone.or_else(|| before.phone.clone()),
        email: patch.email.or_else(|| before.email.clone()),
        address: patch.address.or_else(|| before.address.clone()),
        notes: patch.notes.or_else(|| before.notes.clone()),
    };
    let c = clean(merged)?;
    sqlx::query(
        "UPDATE customers SET name = $1, phone = $2, email = $3, address = $4, notes = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&c.name)
    .bind(&c.phone)
    .bind(&c.email)
    .bind(&c.address)
    .bind(&c.notes)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let after = fetch(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor,
        "customer.update",
        "customer",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Adds `delta` (may be negative) to a customer's credit inside the caller's transaction.
/// The balance stays within ±[`crate::tax::MAX_AMOUNT`]: a change that would leave
/// it is refused on the field `amount` (checked in the UPDATE, so concurrent changes cannot
/// pass it together).
pub async fn adjust_balance(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    delta: i64,
) -> DomainResult<i64> {
    use crate::tax::MAX_AMOUNT;
    let out_of_range = || {
        DomainError::invalid(
            "amount",
            format!("would take the customer's balance beyond ±{MAX_AMOUNT}"),
        )
    };
    if !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&delta) {
        return Err(out_of_range());
    }
    let row = sqlx::query("UPDATE customers SET balance = balance + $1, updated_at = $2 WHERE id = $3 AND balance >= $4 AND balance <= $5 RETURNING balance")
        .bind(delta)
        .bind(now_ms())
        .bind(id)
        .bind(-MAX_AMOUNT - delta)
        .bind(MAX_AMOUNT - delta)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next();
    match row {
        Some(row) => Ok(row.try_get("balance")?),
        None => {
            let exists = sqlx::query("SELECT id FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some();
            Err(if exists {
                out_of_range()
            } else {
                DomainError::not_found("customer", id)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised() {
        assert_eq!(normalize_phone("0812-3456-7890").unwrap(), "+6281234567890");
        assert_eq!(
            normalize_phone("+62 812 3456 7890").unwrap(),
            "+6281234567890"
        );
        assert_eq!(normalize_phone("6281234567890").unwrap(), "+6281234567890");
        assert_eq!(
            normalize_phone("0044 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert!(normalize_phone("12ab").is_err());
        assert!(normalize_phone("0812").is_err());
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("A_b%"), "%a\\_b\\%%");
    }
}
