-- Events a consumer (notifications, webhooks) failed to handle. A row counts the attempts
-- while the consumer retries; after the last allowed attempt the event is parked (parked_at
-- set) and the consumer's cursor moves past it, so one poison event never blocks the rest.
-- An operator asks for another try with retry_requested; success deletes the row.
CREATE TABLE consumer_failures (
    consumer        TEXT NOT NULL,
    event_id        BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT NOT NULL,
    first_failed_at BIGINT NOT NULL,
    last_failed_at  BIGINT NOT NULL,
    parked_at       BIGINT,
    retry_requested BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX consumer_failures_parked ON consumer_failures (consumer, parked_at);
