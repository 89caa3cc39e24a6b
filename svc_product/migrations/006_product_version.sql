-- A product's revision: 1 when created, raised by every change its events announce (an update, the
-- delete), and carried by product.created/updated/deleted and the detail, so a consumer that keeps
-- products (svc_order's price projection) keeps the newest whatever order the events arrive in.
-- IF NOT EXISTS: databases that ran it as 005_product_version (its number for a few hours) have it.
ALTER TABLE products ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;
