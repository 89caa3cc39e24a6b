-- Product names for the sellers' low-stock mails, from svc_product's events (a newer event wins).
CREATE TABLE products (
    product_id uuid PRIMARY KEY,
    name       text        NOT NULL,
    updated_at timestamptz NOT NULL
);

INSERT INTO templates (name, subject, body, placeholders) VALUES (
    'low-stock',
    'Low stock: {productName}',
    'Hello {fullName},

{productName} is running low: {available} left to sell, at or below the threshold of {threshold} you
set. Restock it before it sells out:

{link}

-- The Shop team
',
    ARRAY['fullName', 'productName', 'available', 'threshold', 'link']
);
