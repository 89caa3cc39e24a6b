-- Whether a product can be bought now, as svc_inventory announces it (inventory.availability-changed),
-- with the time of the announcement it came from (a late, older one changes nothing). A new product
-- has nothing on hand until its seller stocks it; the products here before this were sold as available.
ALTER TABLE products
    ADD COLUMN in_stock boolean NOT NULL DEFAULT true,
    ADD COLUMN stock_changed_at timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE products ALTER COLUMN in_stock SET DEFAULT false;
