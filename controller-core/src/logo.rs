//! The company logo shown on the hotspot login pages: a small raster image an admin uploads,
//! stored as its own settings document so the billing settings every page loads stay small.
//! Only PNG, JPEG, GIF and WebP are taken, recognised by their signature rather than a name
//! or a declared type: an SVG could carry script into pages served on every router.

use crate::audit::{self, Actor};
use crate::db::Db;
use crate::error::{DomainError, DomainResult};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const KEY: &str = "logo";

/// The largest logo taken: as base64 in the hotspot directory's `logo.css` it must stay
/// under the 60 KiB RouterOS reads or writes as a file's contents over its API.
pub const MAX_BYTES: usize = 32 * 1024;

/// A validated logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub content_type: &'static str,
    /// The image file.
    pub bytes: Vec<u8>,
}

/// What the audit log and the API say about a logo (never the image itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogoInfo {
    /// The image type.
    pub content_type: &'static str,
    /// Its size in bytes.
    pub bytes: usize,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    content_type: String,
    data: String,
}

impl Logo {
    /// Checks an uploaded file: not empty, at most [`MAX_BYTES`], one of the raster types.
    pub fn parse(bytes: Vec<u8>) -> DomainResult<Logo> {
        if bytes.is_empty() {
            return Err(DomainError::invalid("logo", "the file is empty"));
        }
        if bytes.len() > MAX_BYTES {
            return Err(DomainError::invalid(
                "logo",
                format!(
                    "the image is {} KiB; at most {} KiB is taken (the router's hotspot directory carries it)",
                    bytes.len().div_ceil(1024),
                    MAX_BYTES / 1024
                ),
            ));
        }
        let content_type = sniff(&bytes).ok_or_else(|| {
            DomainError::invalid("logo", "the file is not a PNG, JPEG, GIF or WebP image")
        })?;
        Ok(Logo {
            content_type,
            bytes,
        })
    }

    /// The image as a `data:` URI, for pages that must work before the visitor is online.
    pub fn data_uri(&self) -> String {
        format!(
            "data:{};base64,{}",
            self.content_type,
            base64::engine::general_purpose::STANDARD.encode(&self.bytes)
        )
    }

    /// Type, size and digest.
    pub fn info(&self) -> LogoInfo {
        LogoInfo {
            content_type: self.content_type,
            bytes: self.bytes.len(),
            sha256: hex::encode(Sha256::digest(&self.bytes)),
        }
    }
}

/// The image type of a file by its first bytes.
fn sniff(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The stored logo, if an admin uploaded one.
pub async fn get(db: &Db) -> DomainResult<Option<Logo>> {
    let Some(json) = db.setting(KEY).await? else {
        return Ok(None);
    };
    let corrupt = |why: String| {
        DomainError::Db(crate::db::DbError::Sqlx(sqlx::Error::Decode(
            format!("the stored logo is corrupt: {why}").into(),
        )))
    };
    let stored: Stored = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stored.data)
        .map_err(|e| corrupt(e.to_string()))?;
    Logo::parse(bytes)
        .map(Some)
        .map_err(|e| corrupt(e.to_string()))
}

/// Replaces the logo, audited by type, size and digest.
pub async fn set(db: &Db, actor: &Actor, logo: &Logo) -> DomainResult<LogoInfo> {
    let before = get(db).await?.map(|l| l.info());
    let stored = Stored {
        content_type: logo.content_type.to_string(),
        data: base64::engine::general_purpose::STANDARD.encode(&logo.bytes),
    };
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(KEY)
        .bind(serde_json::to_string(&stored).expect("logo serializes"))
        .execute(&mut *tx)
        .await?;
    let info = logo.info();
    audit::record(
        &mut tx,
        actor,
        "settings.logo",
        "settings",
        Some(KEY),
        before.as_ref(),
        Some(&info),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// Removes the logo (the pages show the company's initials again); false when there was none.
pub async fn clear(db: &Db, actor: &Actor) -> DomainResult<bool> {
    let Some(before) = get(db).await?.map(|l| l.info()) else {
        return Ok(false);
    };
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM settings WHERE key = $1")
        .bind(KEY)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        actor,
        "settings.logo",
        "settings",
        Some(KEY),
        Some(&before),
        None::<&LogoInfo>,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

    #[test]
    fn raster_images_are_taken_by_their_signature() {
        let logo = Logo::parse(PNG_1X1.to_vec()).unwrap();
        assert_eq!(logo.content_type, "image/png");
        assert!(
            logo.data_uri()
                .starts_with("data:image/png;base64,iVBORw0KGgo")
        );
        assert_eq!(logo.info().bytes, PNG_1X1.len());
        for (file, ty) in [
            (&b"\xff\xd8\xff\xe0\0\x10JFIF"[..], "image/jpeg"),
            (b"GIF89a\x01\0\x01\0", "image/gif"),
            (b"RIFF\x10\0\0\0WEBPVP8 ", "image/webp"),
        ] {
            assert_eq!(Logo::parse(file.to_vec()).unwrap().content_type, ty);
        }
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        let why = |b: &[u8]| Logo::parse(b.to_vec()).unwrap_err().to_string();
        assert!(why(b"").contains("empty"));
        assert!(why(b"<svg onload=alert(1)></svg>").contains("not a PNG, JPEG, GIF or WebP"));
        assert!(why(b"RIFF\0\0\0\0WAVE").contains("not a PNG"));
        let mut big = PNG_1X1.to_vec();
        big.resize(MAX_BYTES + 1, 0);
        assert!(why(&big).contains("at most 32 KiB"));
    }
}
