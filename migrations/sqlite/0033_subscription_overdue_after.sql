-- The instant after which a subscription is overdue: its earliest unpaid invoice's due date
-- plus its grace days (billing::overdue::overdue_after), NULL while nothing is unpaid. The
-- dashboard counts overdue subscriptions from an index on it instead of joining every unpaid
-- invoice to its subscription. Triggers keep it with the invoices and the grace days.
ALTER TABLE subscriptions ADD COLUMN overdue_after BIGINT;

UPDATE subscriptions SET overdue_after =
    (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
    + grace_days * 86400000;

CREATE INDEX subscriptions_overdue ON subscriptions (overdue_after);

CREATE TRIGGER invoices_overdue_insert AFTER INSERT ON invoices
WHEN NEW.subscription_id IS NOT NULL
BEGIN
    UPDATE subscriptions SET overdue_after =
        (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
        + grace_days * 86400000
    WHERE id = NEW.subscription_id;
END;

CREATE TRIGGER invoices_overdue_update AFTER UPDATE OF status, due_at, subscription_id ON invoices
BEGIN
    UPDATE subscriptions SET overdue_after =
        (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
        + grace_days * 86400000
    WHERE id IN (OLD.subscription_id, NEW.subscription_id);
END;

CREATE TRIGGER invoices_overdue_delete AFTER DELETE ON invoices
WHEN OLD.subscription_id IS NOT NULL
BEGIN
    UPDATE subscriptions SET overdue_after =
        (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
        + grace_days * 86400000
    WHERE id = OLD.subscription_id;
END;

-- Setting overdue_after does not name grace_days, so this does not fire itself again.
CREATE TRIGGER subscriptions_overdue_grace AFTER UPDATE OF grace_days ON subscriptions
BEGIN
    UPDATE subscriptions SET overdue_after =
        (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
        + grace_days * 86400000
    WHERE id = NEW.id;
END;
