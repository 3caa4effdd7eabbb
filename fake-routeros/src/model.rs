//! The router's configuration as in-memory tables, one per menu, and the RouterOS rules the
//! agent depends on: `*N` ids, unique names, the error messages.

use std::collections::BTreeMap;
use std::time::Instant;

use thiserror::Error;

/// One row: property name to value, `.id` included for list menus.
pub(crate) type Row = BTreeMap<String, String>;

/// A refusal, worded as RouterOS words it in `!trap =message=`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ModelError {
    /// An id (or name) that matches no row.
    #[error("no such item (4)")]
    NoSuchItem,
    /// A second row with the same name in a menu whose names are unique.
    #[error("{0}")]
    Duplicate(&'static str),
}

/// A change that `listen` commands stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub menu: &'static str,
    /// The row after the change; for a removal, the row as it was.
    pub row: Row,
    pub dead: bool,
}

/// The shape of a menu.
#[derive(Debug)]
pub(crate) enum Kind {
    /// Rows with `.id`s: `print add set unset remove listen`.
    List {
        /// The trap message for a duplicate `name`, for menus whose names are unique.
        unique_name: Option<&'static str>,
        /// False for the session tables, which only the router itself fills (the test does,
        /// through the handle); there `remove` is a kick and `add`/`set` do not exist.
        writable: bool,
        /// Values a new row gets for properties the client leaves out.
        defaults: &'static [(&'static str, &'static str)],
        /// Rows present on a fresh router.
        seed: &'static [&'static [(&'static str, &'static str)]],
    },
    /// One row without `.id`: `print listen`, and `set` when settable.
    Settings {
        settable: bool,
        initial: &'static [(&'static str, &'static str)],
    },
}

/// A menu the fake router serves.
#[derive(Debug)]
pub(crate) struct Menu {
    pub path: &'static str,
    pub kind: Kind,
}

const HOTSPOT_USER_PROFILE_DEFAULTS: &[(&str, &str)] = &[
    ("idle-timeout", "none"),
    ("keepalive-timeout", "2m"),
    ("shared-users", "1"),
    ("status-autorefresh", "1m"),
];
const HOTSPOT_PROFILE_DEFAULTS: &[(&str, &str)] = &[
    ("login-by", "cookie,http-chap"),
    ("radius-accounting", "yes"),
    ("radius-interim-update", "received"),
    ("use-radius", "no"),
];
const PPP_PROFILE_DEFAULTS: &[(&str, &str)] = &[("only-one", "default")];

/// Every menu, with the defaults a fresh RouterOS 7 shows.
pub(crate) const MENUS: &[Menu] = &[
    Menu {
        path: "/ip/hotspot/user",
        kind: Kind::List {
            unique_name: Some("failure: already have user with this name for this server"),
            writable: true,
            defaults: &[
                ("disabled", "no"),
                ("profile", "default"),
                ("server", "all"),
            ],
            seed: &[],
        },
    },
    Menu {
        path: "/ip/hotspot/user/profile",
        kind: Kind::List {
            unique_name: Some("failure: already have such name"),
            writable: true,
            defaults: HOTSPOT_USER_PROFILE_DEFAULTS,
            seed: &[&[("name", "default")]],
        },
    },
    Menu {
        path: "/ip/hotspot/active",
        kind: Kind::List {
            unique_name: None,
            writable: false,
            defaults: &[],
            seed: &[],
        },
    },
    Menu {
        path: "/ip/hotspot/profile",
        kind: Kind::List {
            unique_name: Some("failure: already have such name"),
            writable: true,
            defaults: HOTSPOT_PROFILE_DEFAULTS,
            seed: &[&[("name", "default")]],
        },
    },
    Menu {
        path: "/ppp/secret",
        kind: Kind::List {
            unique_name: Some("failure: secret with the same name already exists"),
            writable: true,
            defaults: &[
                ("disabled", "no"),
                ("profile", "default"),
                ("service", "any"),
            ],
            seed: &[],
        },
    },
    Menu {
        path: "/ppp/profile",
        kind: Kind::List {
            unique_name: Some("failure: already have such name"),
            writable: true,
            defaults: PPP_PROFILE_DEFAULTS,
            seed: &[
                &[("name", "default"), ("use-encryption", "default")],
                &[("name", "default-encryption"), ("use-encryption", "yes")],
            ],
        },
    },
    Menu {
        path: "/ppp/active",
        kind: Kind::List {
            unique_name: None,
            writable: false,
            defaults: &[],
            seed: &[],
        },
    },
    Menu {
        path: "/radius",
        kind: Kind::List {
            unique_name: None,
            writable: true,
            defaults: &[
                ("accounting-port", "1813"),
                ("authentication-port", "1812"),
                ("disabled", "no"),
                ("require-message-auth", "yes-for-request-resp"),
                ("timeout", "300ms"),
            ],
            seed: &[],
        },
    },
    Menu {
        path: "/radius/incoming",
        kind: Kind::Settings {
            settable: true,
            initial: &[("accept", "no"), ("port", "1700")],
        },
    },
    Menu {
        path: "/ppp/aaa",
        kind: Kind::Settings {
            settable: true,
            initial: &[
                ("accounting", "yes"),
                ("interim-update", "0s"),
                ("use-radius", "no"),
            ],
        },
    },
    Menu {
        path: "/system/resource",
        kind: Kind::Settings {
            settable: false,
            initial: &[
                ("architecture-name", "arm64"),
                ("board-name", "RB5009UG+S+"),
                ("cpu", "ARM64"),
                ("cpu-count", "4"),
                ("cpu-load", "3"),
                ("free-hdd-space", "885784576"),
                ("free-memory", "838860800"),
                ("platform", "MikroTik"),
                ("total-hdd-space", "1073741824"),
                ("total-memory", "1073741824"),
                ("version", "7.16.1"),
            ],
        },
    },
    Menu {
        path: crate::files::MENU,
        kind: Kind::List {
            unique_name: Some("failure: file with such name already exists"),
            writable: true,
            defaults: &[("type", "file")],
            seed: &[],
        },
    },
    Menu {
        path: "/system/identity",
        kind: Kind::Settings {
            settable: true,
            initial: &[("name", "MikroTik")],
        },
    },
];

/// The menu at `path`, if the fake router serves it.
pub(crate) fn menu(path: &str) -> Option<&'static Menu> {
    MENUS.iter().find(|m| m.path == path)
}

fn to_row(pairs: &[(&str, &str)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_id(id: &str) -> Option<u32> {
    u32::from_str_radix(id.strip_prefix('*')?, 16).ok()
}

#[derive(Debug)]
enum Table {
    List { rows: Vec<Row>, next_id: u32 },
    Settings(Row),
}

/// All tables of one fake router.
#[derive(Debug)]
pub(crate) struct Model {
    tables: BTreeMap<&'static str, Table>,
    started: Instant,
}

impl Model {
    /// A fresh router: default rows and settings.
    pub(crate) fn new() -> Model {
        let mut tables = BTreeMap::new();
        for menu in MENUS {
            let table = match &menu.kind {
                Kind::List { defaults, seed, .. } => {
                    let mut table = Table::List {
                        rows: Vec::new(),
                        next_id: 1,
                    };
                    for attrs in *seed {
                        let mut row = to_row(defaults);
                        row.extend(to_row(attrs));
                        insert(&mut table, row);
                    }
                    table
                }
                Kind::Settings { initial, .. } => Table::Settings(to_row(initial)),
            };
            tables.insert(menu.path, table);
        }
        Model {
            tables,
            started: Instant::now(),
        }
    }

    /// A snapshot of a menu's rows, in id order; `None` for an unknown menu.
    pub(crate) fn rows(&self, menu: &str) -> Option<Vec<Row>> {
        let (path, table) = self.tables.get_key_value(menu)?;
        Some(match table {
            Table::List { rows, .. } => rows.clone(),
            Table::Settings(row) => {
                let mut row = row.clone();
                // Uptime runs unless a test pinned it through the handle.
                if *path == "/system/resource" && !row.contains_key("uptime") {
                    row.insert("uptime".into(), format_uptime(self.started.elapsed()));
                }
                vec![row]
            }
        })
    }

    /// The RouterOS version the router reports (`/system/resource`).
    pub(crate) fn version(&self) -> String {
        match self.tables.get("/system/resource") {
            Some(Table::Settings(row)) => row.get("version").cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// Adds a row to a list menu and returns its new `.id` and the change to broadcast.
    ///
    /// # Panics
    /// If `menu` is not a list menu: the caller dispatches on [`Kind`] first.
    pub(crate) fn add(
        &mut self,
        menu: &'static Menu,
        attrs: &[(String, String)],
    ) -> Result<(String, Change), ModelError> {
        let Kind::List {
            unique_name,
            defaults,
            ..
        } = &menu.kind
        else {
            panic!("{} is a settings menu", menu.path);
        };
        let table = self.table_mut(menu);
        let mut row = to_row(defaults);
        // API attributes such as `.id` are the router's to assign.
        row.extend(
            attrs
                .iter()
                .filter(|(k, _)| !k.starts_with('.'))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        if let (Some(message), Some(name)) = (unique_name, row.get("name"))
            && list_rows(table).iter().any(|r| r.get("name") == Some(name))
        {
            return Err(ModelError::Duplicate(message));
        }
        if menu.path == crate::files::MENU {
            crate::files::derive(&mut row);
        }
        let id = insert(table, row.clone());
        row.insert(".id".into(), id.clone());
        Ok((
            id,
            Change {
                menu: menu.path,
                row,
                dead: false,
            },
        ))
    }

    /// Changes properties of the rows named by `ids` (a comma-separated list of `*N` ids, or
    /// names where names are unique), or of a settings menu's single row (`ids` ignored).
    pub(crate) fn set(
        &mut self,
        menu: &'static Menu,
        ids: Option<&str>,
        attrs: &[(String, String)],
    ) -> Result<Vec<Change>, ModelError> {
        let attrs: Vec<_> = attrs
            .iter()
            .filter(|(k, _)| !k.starts_with('.') && k != "numbers")
            .collect();
        self.update(menu, ids, |row| {
            for (k, v) in &attrs {
                row.insert(k.clone(), v.clone());
            }
            if menu.path == crate::files::MENU {
                crate::files::derive(row);
            }
        })
    }

    /// Removes properties (back to unset) from rows, as `unset =value-name=a,b` does.
    pub(crate) fn unset(
        &mut self,
        menu: &'static Menu,
        ids: Option<&str>,
        names: &[&str],
    ) -> Result<Vec<Change>, ModelError> {
        self.update(menu, ids, |row| {
            for name in names {
                row.remove(*name);
            }
        })
    }

    fn update(
        &mut self,
        menu: &'static Menu,
        ids: Option<&str>,
        change: impl Fn(&mut Row),
    ) -> Result<Vec<Change>, ModelError> {
        let unique_name = match &menu.kind {
            Kind::List { unique_name, .. } => *unique_name,
            Kind::Settings { .. } => None,
        };
        match self.table_mut(menu) {
            Table::Settings(row) => {
                change(row);
                Ok(vec![Change {
                    menu: menu.path,
                    row: row.clone(),
                    dead: false,
                }])
            }
            Table::List { rows, .. } => {
                let targets = resolve(rows, ids.unwrap_or(""), unique_name.is_some())?;
                // Check the whole batch before touching anything, as the router does: a
                // refused `set` leaves every row as it was.
                let mut updated: Vec<(usize, Row)> = targets
                    .iter()
                    .map(|&i| {
                        let mut row = rows[i].clone();
                        change(&mut row);
                        (i, row)
                    })
                    .collect();
                if let Some(message) = unique_name {
                    for (i, row) in &updated {
                        let Some(name) = row.get("name") else {
                            continue;
                        };
                        let clash_elsewhere = rows
                            .iter()
                            .enumerate()
                            .any(|(j, r)| !targets.contains(&j) && r.get("name") == Some(name));
                        let clash_within = updated
                            .iter()
                            .any(|(j, r)| j != i && r.get("name") == Some(name));
                        if clash_elsewhere || clash_within {
                            return Err(ModelError::Duplicate(message));
                        }
                    }
                }
                Ok(updated
                    .drain(..)
                    .map(|(i, row)| {
                        rows[i] = row.clone();
                        Change {
                            menu: menu.path,
                            row,
                            dead: false,
                        }
                    })
                    .collect())
            }
        }
    }

    /// Removes the rows named by `ids`; all or nothing.
    pub(crate) fn remove(
        &mut self,
        menu: &'static Menu,
        ids: &str,
    ) -> Result<Vec<Change>, ModelError> {
        let by_name = matches!(
            menu.kind,
            Kind::List {
                unique_name: Some(_),
                ..
            }
        );
        let Table::List { rows, .. } = self.table_mut(menu) else {
            return Err(ModelError::NoSuchItem);
        };
        let mut targets = resolve(rows, ids, by_name)?;
        targets.sort_unstable();
        targets.dedup();
        let mut changes = Vec::with_capacity(targets.len());
        for i in targets.into_iter().rev() {
            changes.push(Change {
                menu: menu.path,
                row: rows.remove(i),
                dead: true,
            });
        }
        changes.reverse();
        Ok(changes)
    }

    fn table_mut(&mut self, menu: &Menu) -> &mut Table {
        self.tables
            .get_mut(menu.path)
            .expect("every menu has a table")
    }
}

fn list_rows(table: &Table) -> &[Row] {
    match table {
        Table::List { rows, .. } => rows,
        Table::Settings(_) => &[],
    }
}

/// Appends a row with the table's next id and returns that id.
fn insert(table: &mut Table, mut row: Row) -> String {
    let Table::List { rows, next_id } = table else {
        unreachable!("rows are inserted into list tables only");
    };
    let id = format!("*{:X}", *next_id);
    *next_id += 1;
    row.insert(".id".into(), id.clone());
    rows.push(row);
    id
}

/// Row indexes for a comma-separated id list; every element must match.
fn resolve(rows: &[Row], ids: &str, by_name: bool) -> Result<Vec<usize>, ModelError> {
    let mut out = Vec::new();
    for item in ids.split(',').map(str::trim) {
        let found = match parse_id(item) {
            Some(n) => rows
                .iter()
                .position(|r| r.get(".id").and_then(|id| parse_id(id)) == Some(n)),
            // RouterOS also takes a row's name where names are unique.
            None if by_name && !item.is_empty() => rows
                .iter()
                .position(|r| r.get("name").map(String::as_str) == Some(item)),
            None => None,
        };
        out.push(found.ok_or(ModelError::NoSuchItem)?);
    }
    Ok(out)
}

/// RouterOS's duration format: `1w2d3h4m5s`, zero units left out, `0s` for nothing.
fn format_uptime(d: std::time::Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn uptime_format() {
        assert_eq!(format_uptime(Duration::ZERO), "0s");
        assert_eq!(format_uptime(Duration::from_secs(694_861)), "1w1d1h1m1s");
        assert_eq!(format_uptime(Duration::from_secs(3_600)), "1h");
    }

    #[test]
    fn ids_count_per_table_in_hex() {
        let mut m = Model::new();
        let users = menu("/ip/hotspot/user").unwrap();
        for i in 1..=10 {
            let (id, _) = m.add(users, &attrs(&[("name", &format!("u{i}"))])).unwrap();
            assert_eq!(id, format!("*{i:X}"));
        }
        let profiles = menu("/ppp/profile").unwrap();
        let (id, _) = m.add(profiles, &attrs(&[("name", "p")])).unwrap();
        assert_eq!(id, "*3", "two default ppp profiles come first");
    }

    #[test]
    fn set_is_all_or_nothing() {
        let mut m = Model::new();
        let users = menu("/ip/hotspot/user").unwrap();
        m.add(users, &attrs(&[("name", "a")])).unwrap();
        m.add(users, &attrs(&[("name", "b")])).unwrap();
        assert_eq!(
            m.set(users, Some("*1,*2"), &attrs(&[("name", "c")])),
            Err(ModelError::Duplicate(
                "failure: already have user with this name for this server"
            ))
        );
        assert_eq!(
            m.set(users, Some("*1,*9"), &attrs(&[("comment", "x")])),
            Err(ModelError::NoSuchItem)
        );
        assert!(
            m.rows(users.path)
                .unwrap()
                .iter()
                .all(|r| !r.contains_key("comment"))
        );
        m.set(users, Some("b"), &attrs(&[("comment", "by name")]))
            .unwrap();
        assert_eq!(m.rows(users.path).unwrap()[1]["comment"], "by name");
    }
}
