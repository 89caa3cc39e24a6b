-- svc_order's projection of the catalog (svc_order/projection.py): per product, what a cart line and an
-- order item show, kept from product.created/updated/deleted, or read once from the catalog for a
-- product no event has brought yet. `version` is the product's revision in svc_product (raised by every
-- change; 0 from a catalog that did not say): a row is only ever replaced by a newer one.
CREATE TABLE catalog_products (
    product_id  uuid          PRIMARY KEY,
    version     bigint        NOT NULL,
    -- Active and not deleted: a product that is not cannot be added to a cart or checked out.
    for_sale    boolean       NOT NULL,
    name        text          NOT NULL,
    price       numeric(14,2) NOT NULL,
    seller_id   uuid          NOT NULL,
    category_id uuid          NOT NULL,
    image       text,
    -- [{id, name, price}]: each variant's own price.
    variants    jsonb         NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now()
);
