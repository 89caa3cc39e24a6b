-- What inventory.availability-changed last said of each product (svc_product's in-stock facet and
-- filter). NULL: nothing yet, so the next look announces whatever holds. The row is also what two
-- writers of one product lock to take turns (store.LOCK_AVAILABILITY).
CREATE TABLE availability (
    product_id uuid PRIMARY KEY,
    available  boolean,
    changed_at timestamptz NOT NULL DEFAULT now()
);
