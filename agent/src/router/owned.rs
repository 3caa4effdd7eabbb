//! Router items the agent made in menus that have no `comment` to mark them with.
//!
//! RouterOS's `/ip/hotspot/user/profile` has no `comment` property (it is absent from its
//! printed rows and from client libraries' schemas for that menu) [unverified on a real
//! router]: sending one would make every `add` fail. The agent therefore remembers, in its
//! own database, the names of the hotspot user profiles it created, and changes or removes
//! only those.

use std::collections::BTreeSet;

/// Names of items the agent created, per menu, kept in sled.
#[derive(Clone)]
pub struct Owned {
    tree: sled::Tree,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned").finish_non_exhaustive()
    }
}

fn key(menu: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(menu.len() + name.len() + 1);
    k.extend_from_slice(menu.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

impl Owned {
    /// Opens the `router_owned` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<Owned, sled::Error> {
        Ok(Owned {
            tree: db.open_tree("router_owned")?,
        })
    }

    /// The names recorded for `menu`.
    pub fn names(&self, menu: &str) -> Result<BTreeSet<String>, sled::Error> {
        let prefix = key(menu, "");
        let mut names = BTreeSet::new();
        for entry in self.tree.scan_prefix(&prefix).keys() {
            let k = entry?;
            names.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(names)
    }

    /// Records that the agent created `name` in `menu`, durably: a crash after the router
    /// created it must not leave an item the agent no longer knows it may manage.
    pub async fn insert(&self, menu: &str, name: &str) -> Result<(), sled::Error> {
        self.tree.insert(key(menu, name), &[])?;
        self.flush().await
    }

    /// Forgets `name` in `menu`.
    pub async fn remove(&self, menu: &str, name: &str) -> Result<(), sled::Error> {
        self.tree.remove(key(menu, name))?;
        self.flush().await
    }

    async fn flush(&self) -> Result<(), sled::Error> {
        let tree = self.tree.clone();
        match tokio::task::spawn_blocking(move || tree.flush()).await {
            Ok(result) => result.map(drop),
            Err(e) => Err(sled::Error::Io(std::io::Error::other(format!(
                "flush task failed: {e}"
            )))),
        }
    }
}
