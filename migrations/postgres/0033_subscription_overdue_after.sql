-- The instant after which a subscription is overdue: its earliest unpaid invoice's due date
-- plus its grace days (billing::overdue::overdue_after), NULL while nothing is unpaid. The
-- dashboard counts overdue subscriptions from an index on it instead of joining every unpaid
-- invoice to its subscription. Triggers keep it with the invoices and the grace days.
ALTER TABLE subscriptions ADD COLUMN overdue_after BIGINT;

UPDATE subscriptions SET overdue_after =
    (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
    + grace_days * 86400000;

CREATE INDEX subscriptions_overdue ON subscriptions (overdue_after);

CREATE FUNCTION invoices_overdue_refile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE subscriptions SET overdue_after =
        (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = subscriptions.id AND i.status = 'unpaid')
        + grace_days * 86400000
    WHERE id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.subscription_id END,
                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.subscription_id END);
    RETURN NULL;
END $$;

CREATE TRIGGER invoices_overdue_insert AFTER INSERT ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_overdue_refile();
CREATE TRIGGER invoices_overdue_update AFTER UPDATE OF status, due_at, subscription_id ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_overdue_refile();
CREATE TRIGGER invoices_overdue_delete AFTER DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_overdue_refile();

CREATE FUNCTION subscriptions_overdue_regrace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.overdue_after :=
        (SELECT MIN(i.due_at) FROM invoices i WHERE i.subscription_id = NEW.id AND i.status = 'unpaid')
        + NEW.grace_days * 86400000;
    RETURN NEW;
END $$;

CREATE TRIGGER subscriptions_overdue_grace BEFORE UPDATE OF grace_days ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subscriptions_overdue_regrace();
