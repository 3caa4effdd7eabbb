-- Fair-usage throttling: a plan with a data limit may name a lower RouterOS rate limit
-- (fup_rate_limit, e.g. 512k/1M) that an account gets once its data reaches the limit,
-- instead of losing its session; NULL keeps the cut-off at the limit.
ALTER TABLE plans ADD COLUMN fup_rate_limit TEXT;
