#!/usr/bin/env python3
"""Drives the fake router with librouteros, an independent RouterOS API client.

Usage: librouteros_check.py HOST PORT USER PASSWORD

Exits 0 when every step behaves as a real router would for librouteros, 1 with a message on
the first mismatch, 3 when librouteros is not installed.
"""

import sys

try:
    import librouteros
    from librouteros import connect
    from librouteros.exceptions import TrapError
    from librouteros.login import plain
    from librouteros.query import Key
except ImportError as e:
    print(f"librouteros is missing ({e}): python3 -m pip install librouteros", file=sys.stderr)
    sys.exit(3)


def check(condition, message):
    if not condition:
        print(f"MISMATCH: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    version = getattr(librouteros, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("librouteros")
    print(f"librouteros {version}")

    api = connect(host=host, port=port, username=user, password=password,
                  login_method=plain, timeout=5)
    print("login: ok")

    users = api.path("ip", "hotspot", "user")
    new_id = users.add(name="lib-user", password="pw1", profile="default",
                       **{"limit-uptime": "1h"})
    check(new_id.startswith("*"), f"add returned {new_id!r}, expected a *N id")
    print(f"add: {new_id}")

    name = Key("name")
    rows = list(users.select(Key(".id"), name, Key("limit-uptime")).where(name == "lib-user"))
    check(len(rows) == 1, f"query print returned {rows!r}")
    row = rows[0]
    check(row.get(".id") == new_id, f"query print .id {row!r}")
    check(row.get("limit-uptime") == "1h", f"query print limit-uptime {row!r}")
    check(set(row) == {".id", "name", "limit-uptime"}, f".proplist not honoured: {row!r}")
    others = list(users.select(name).where(name != "lib-user"))
    check(others == [], f"negated query returned {others!r}")
    print("print with query: ok")

    users.update(**{".id": new_id, "limit-uptime": "2h", "disabled": True})
    row = next(r for r in users if r[".id"] == new_id)
    check(row.get("limit-uptime") == "2h", f"update did not apply: {row!r}")
    # librouteros sends True as "yes" and parses "yes" back as True.
    check(row.get("disabled") is True, f"disabled after update: {row!r}")
    print("update: ok")

    try:
        users.add(name="lib-user")
        check(False, "a duplicate name was accepted")
    except TrapError as e:
        check("already have" in e.message, f"duplicate trap message {e.message!r}")
    print("duplicate add traps: ok")

    users.remove(new_id)
    check(list(users) == [], "the user is still there after remove")
    try:
        users.remove(new_id)
        check(False, "removing a missing id succeeded")
    except TrapError as e:
        check(e.message == "no such item (4)", f"missing id trap {e.message!r}")
    print("remove: ok")

    resource = list(api.path("system", "resource"))
    check(len(resource) == 1, f"/system/resource print gave {resource!r}")
    res = resource[0]
    for key in ("uptime", "version", "board-name", "architecture-name", "cpu-load",
                "free-memory", "total-memory"):
        check(key in res, f"/system/resource lacks {key}: {res!r}")
    check(str(res["version"]).startswith("7."), f"version {res['version']!r}")
    check(isinstance(res["total-memory"], int), f"total-memory not numeric: {res!r}")
    print(f"/system/resource: version {res['version']}, uptime {res['uptime']}")
    api.close()

    try:
        connect(host=host, port=port, username=user, password=password + "-wrong",
                login_method=plain, timeout=5)
        check(False, "a wrong password logged in")
    except TrapError as e:
        check(e.message == "invalid user name or password (6)", f"login trap {e.message!r}")
    print("failed login raises TrapError: ok")
    print("all checks passed")


if __name__ == "__main__":
    main()
