-- Every replica's edge learns of a committed change-log entry or queued command at once
-- (LISTEN mikrobill_changes) instead of at its next poll of the database. PostgreSQL sends a
-- NOTIFY at commit, never for a rolled-back transaction, and folds a transaction's identical
-- notifications into one, so a batch of changes wakes each listener once.
CREATE FUNCTION mikrobill_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mikrobill_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER sync_log_notify AFTER INSERT ON sync_log
    FOR EACH STATEMENT EXECUTE FUNCTION mikrobill_notify_changes();

CREATE TRIGGER commands_notify AFTER INSERT ON commands
    FOR EACH STATEMENT EXECUTE FUNCTION mikrobill_notify_changes();
