-- A cancelled order whose stock was already committed (a sale) gives its units back: the reservation
-- ends RETURNED (final: nothing moves it again) and the stock log records the movement as RETURN.
ALTER TABLE reservations
    DROP CONSTRAINT reservations_state_check,
    ADD CONSTRAINT reservations_state_check
        CHECK (state IN ('RESERVED', 'COMMITTED', 'RELEASED', 'EXPIRED', 'RETURNED'));
ALTER TABLE stock_log
    DROP CONSTRAINT stock_log_kind_check,
    ADD CONSTRAINT stock_log_kind_check
        CHECK (kind IN ('RESERVE', 'RELEASE', 'EXPIRE', 'COMMIT', 'ADJUST', 'RETURN'));
