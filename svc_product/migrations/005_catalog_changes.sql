-- What changed in the catalog, by transaction, for the search index each svc_product process keeps
-- (svc_product/index.py): after a write a process reads the products changed by the transactions its
-- index's snapshot did not see (`pg_visible_in_snapshot`), not the whole catalog. A row says which
-- product changed (`product`), or that the categories, the brands or everything must be read again.
-- Rows older than ten minutes are pruned by the processes; an index older than five is read whole.
CREATE TABLE catalog_changes (
    xact       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    what       text        NOT NULL CHECK (what IN ('product', 'categories', 'brands', 'all')),
    product_id uuid CHECK ((what = 'product') = (product_id IS NOT NULL)),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_changes_xact ON catalog_changes (xact);
CREATE INDEX catalog_changes_at ON catalog_changes (at);

-- Statement triggers with transition tables: a COPY of 10,000 products is one insert here. TG_ARGV[0]
-- names the column holding the product's id (`id` in products, `product_id` in the tables under it).
CREATE FUNCTION catalog_products_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- Nested like search_words_count: a transition table this operation lacks may not be named.
    changed text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT %1$I FROM new_rows'
                               WHEN 'DELETE' THEN 'SELECT %1$I FROM old_rows'
                               ELSE 'SELECT %1$I FROM new_rows UNION SELECT %1$I FROM old_rows' END;
BEGIN
    EXECUTE format('INSERT INTO catalog_changes (what, product_id) SELECT DISTINCT ''product'', id FROM ('
                   || changed || ') AS changed(id)', TG_ARGV[0]);
    RETURN NULL;
END $$;

-- A category or a brand (names, the tree), or a table emptied at once: TG_ARGV[0] says what to read again.
CREATE FUNCTION catalog_tables_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO catalog_changes (what) VALUES (TG_ARGV[0]);
    RETURN NULL;
END $$;

DO $$
DECLARE
    owner record;
BEGIN
    FOR owner IN SELECT * FROM (VALUES ('products', 'id'), ('product_variants', 'product_id'),
                                       ('product_images', 'product_id')) AS t(tab, id_column)
    LOOP
        EXECUTE format('CREATE TRIGGER catalog_changes_insert AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION catalog_products_changed(%L)', owner.tab, owner.id_column);
        EXECUTE format('CREATE TRIGGER catalog_changes_update AFTER UPDATE ON %I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION catalog_products_changed(%L)', owner.tab, owner.id_column);
        EXECUTE format('CREATE TRIGGER catalog_changes_delete AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION catalog_products_changed(%L)', owner.tab, owner.id_column);
        EXECUTE format('CREATE TRIGGER catalog_changes_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION catalog_tables_changed(''all'')', owner.tab);
    END LOOP;
END $$;

CREATE TRIGGER catalog_changes_categories AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_tables_changed('categories');
CREATE TRIGGER catalog_changes_brands AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON brands
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_tables_changed('brands');
