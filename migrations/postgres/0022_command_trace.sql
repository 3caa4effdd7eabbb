-- The W3C traceparent of the request that queued a command, so that its delivery and the
-- agent's apply join the same trace (NULL when traces are not exported).
ALTER TABLE commands ADD COLUMN trace_parent TEXT;
