-- Why a usage was RELEASED: its order was cancelled, or its hold expired before any outcome arrived.
-- A confirmation arriving after an expiry makes the usage count again (the order was paid with it); one
-- arriving after a cancellation (delivered out of order) changes nothing.
ALTER TABLE discount_usages ADD COLUMN released_by text CHECK (released_by IN ('cancellation', 'expiry'));
UPDATE discount_usages SET released_by = 'cancellation' WHERE state = 'RELEASED';
ALTER TABLE discount_usages ADD CONSTRAINT discount_usages_released_why
    CHECK ((state = 'RELEASED') = (released_by IS NOT NULL));
