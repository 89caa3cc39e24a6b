-- A usage stays RESERVED only while its order may still confirm or cancel; the periodic job frees the
-- ones held past that window (their order's outcome never reached us) oldest first, through this index.
CREATE INDEX discount_usages_held ON discount_usages (created_at) WHERE state = 'RESERVED';
