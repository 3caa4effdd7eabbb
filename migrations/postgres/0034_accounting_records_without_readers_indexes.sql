-- Every accounting record paid for two index entries nothing reads any more: the customer
-- portal's usage now comes from usage_sessions (username, last_at), and no query looks
-- records up by session. Ingest writes these entries for every record, so they cost the
-- accounting drain about a tenth of its rate.
DROP INDEX accounting_records_session;
DROP INDEX accounting_records_username;
