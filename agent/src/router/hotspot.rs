//! Writing the site's hotspot login pages into a directory on the router through the
//! RouterOS API (`/file/add` with `contents`, which RouterOS has since 7.9), so that an
//! operator only has to point the hotspot server profile's `html-directory` at it.
//!
//! The agent writes only into its own directory and overwrites only files of that directory;
//! the profile itself is left alone (switching pages under running logins is the operator's
//! call).

use super::{Router, RouterError};
use mikrobill_protocol::messages::HotspotFile;

/// The directory the pages go to (under `flash/` on routers whose storage is there).
pub const HOTSPOT_DIR: &str = "hotspot-mikrobill";

/// The first RouterOS release whose API creates files with contents (`/file/add`).
pub const FILE_ADD_SINCE: (u32, u32) = (7, 9);

/// The largest file RouterOS reads or writes as `contents` (60 KiB).
pub const MAX_FILE_BYTES: usize = 60 * 1024;

/// The most files one upload may carry: a hotspot directory is a handful of pages.
const MAX_FILES: usize = 32;

const FILE_MENU: &str = "/file";

/// Whether a RouterOS version string (`7.16.1`, `7.9beta2`, `7.15 (stable)`) can receive
/// files over the API; `None` when the string is not a version at all.
pub fn receives_files(version: &str) -> Option<bool> {
    let numbers = version.split_whitespace().next()?;
    let mut parts = numbers.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    // The minor may carry a pre-release suffix (`9beta2`, `9rc1`).
    let minor_text = parts.next().unwrap_or("0");
    let digits = minor_text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(minor_text.len());
    let minor: u32 = minor_text[..digits].parse().ok()?;
    Some((major, minor) >= FILE_ADD_SINCE)
}

/// Checks what the controller sent before anything is written: plain file names (no
/// directories, nothing hidden), at most [`MAX_FILE_BYTES`] each.
pub fn check_files(files: &[HotspotFile]) -> Result<(), String> {
    if files.is_empty() {
        return Err("no hotspot files to install".into());
    }
    if files.len() > MAX_FILES {
        return Err(format!(
            "{} hotspot files are more than the {MAX_FILES} a hotspot directory needs",
            files.len()
        ));
    }
    for f in files {
        let plain = !f.name.is_empty()
            && f.name.len() <= 64
            && !f.name.starts_with('.')
            && f.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !plain {
            return Err(format!(
                "hotspot file name {:?} is not a plain file name",
                f.name
            ));
        }
        if f.contents.len() > MAX_FILE_BYTES {
            return Err(format!(
                "hotspot file {} is {} bytes; RouterOS takes at most {MAX_FILE_BYTES} bytes per file over the API: upload the zip with Winbox or FTP instead",
                f.name,
                f.contents.len()
            ));
        }
    }
    Ok(())
}

/// The `.id` of the file named exactly `name`, reading no contents.
async fn file_id(router: &Router, name: &str) -> Result<Option<String>, RouterError> {
    let rows = router
        .call(
            &format!("{FILE_MENU}/print"),
            &[(".proplist", ".id,name,type")],
            &[("name", name)],
        )
        .await?;
    Ok(rows
        .into_iter()
        .find(|r| r.get("name").map(String::as_str) == Some(name))
        .and_then(|mut r| r.remove(".id")))
}

/// Writes every file into the hotspot directory (created when missing, files overwritten)
/// and returns the directory's path on the router.
pub async fn install_hotspot_files(
    router: &Router,
    files: &[HotspotFile],
) -> Result<String, RouterError> {
    let _only_us = router.exclusive().await;
    // Routers with a `flash` disk keep only what is under it across a reboot.
    let dir = if file_id(router, "flash").await?.is_some() {
        format!("flash/{HOTSPOT_DIR}")
    } else {
        HOTSPOT_DIR.to_owned()
    };
    if file_id(router, &dir).await?.is_none() {
        router
            .call(
                &format!("{FILE_MENU}/add"),
                &[("name", &dir), ("type", "directory")],
                &[],
            )
            .await?;
    }
    for f in files {
        let path = format!("{dir}/{}", f.name);
        match file_id(router, &path).await? {
            Some(id) => {
                router
                    .call(
                        &format!("{FILE_MENU}/set"),
                        &[(".id", &id), ("contents", &f.contents)],
                        &[],
                    )
                    .await?;
            }
            None => {
                router
                    .call(
                        &format!("{FILE_MENU}/add"),
                        &[("name", &path), ("contents", &f.contents)],
                        &[],
                    )
                    .await?;
            }
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, len: usize) -> HotspotFile {
        HotspotFile {
            name: name.into(),
            contents: "x".repeat(len),
        }
    }

    #[test]
    fn versions_from_7_9_receive_files() {
        assert_eq!(receives_files("7.16.1"), Some(true));
        assert_eq!(receives_files("7.9"), Some(true));
        assert_eq!(receives_files("7.9beta2"), Some(true));
        assert_eq!(receives_files("7.15.3 (stable)"), Some(true));
        assert_eq!(receives_files("7.8 (stable)"), Some(false));
        assert_eq!(receives_files("6.49.10"), Some(false));
        assert_eq!(receives_files("8"), Some(true));
        assert_eq!(receives_files("unknown"), None);
        assert_eq!(receives_files(""), None);
    }

    #[test]
    fn file_names_and_sizes_are_checked() {
        assert!(check_files(&[file("login.html", 10)]).is_ok());
        assert!(check_files(&[file("login.html", MAX_FILE_BYTES)]).is_ok());
        let big = check_files(&[file("login.html", MAX_FILE_BYTES + 1)]).unwrap_err();
        assert!(big.contains("at most 61440 bytes"), "{big}");
        for bad in ["../x", "a/b", ".hidden", "", "a b"] {
            assert!(check_files(&[file(bad, 1)]).is_err(), "{bad:?}");
        }
        assert!(check_files(&[]).is_err());
    }
}
