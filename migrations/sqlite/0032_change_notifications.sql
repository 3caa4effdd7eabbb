-- PostgreSQL's 0032 wakes every replica's edge when a change-log entry or a command is
-- committed (NOTIFY). SQLite has no notifications between processes: the edge keeps polling,
-- and there is nothing to create here. The migration exists so both engines count the same
-- schema versions.
SELECT 1;
