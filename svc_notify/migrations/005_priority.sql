-- Which due message goes out first on a channel whose provider is rate-limited: someone waiting on a
-- screen (security: the verification mail) before order and payment news, and those before marketing.
-- Without it a burst of order mails (a sale, a batch of expired orders) held a sign-up's verification
-- mail back for minutes (20 emails/s per process).
ALTER TABLE notifications ADD COLUMN priority smallint NOT NULL DEFAULT 1;
DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (channel, priority, next_attempt_at)
    WHERE status IN ('QUEUED', 'SENDING');
