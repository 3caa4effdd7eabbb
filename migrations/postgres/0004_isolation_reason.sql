-- Why a subscription is isolated: 'overdue' (the sweep; a payment lifts it) or 'manual' (an
-- operator; only an operator lifts it).
ALTER TABLE subscriptions ADD COLUMN isolation_reason TEXT;
