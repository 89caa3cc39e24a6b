-- Typo tolerance and suggestions: the vocabulary of the catalog, the words of active products' names
-- (folded like the search), each with how many products carry it. A search word that is neither a word
-- nor the prefix of one here is corrected to its nearest words (svc_product/typos.py).
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

-- The words of a name as the full-text document has them (the 'simple' configuration on folded text).
CREATE FUNCTION catalog_words(name text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN unnest(tsvector_to_array(to_tsvector('simple', catalog_fold(name))));

-- "C" collation: byte order, so `word >= $1 AND word < $1 || U+10FFFF` is a prefix range on the key.
CREATE TABLE search_words (
    word     text COLLATE "C" PRIMARY KEY,
    products int NOT NULL CHECK (products >= 0)
);
-- Nearest words by trigram distance (`<->`, a KNN scan of the GiST index).
CREATE INDEX search_words_trigrams ON search_words USING gist (word gist_trgm_ops);

-- Kept by statement triggers with transition tables: a COPY of 10,000 products is one set-based update,
-- and words are upserted in key order so two concurrent writes lock shared words in the same order.
CREATE FUNCTION search_words_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only a name, a status or a deletion moves the vocabulary; a review's new rating leaves it alone.
    -- (Nested: a transition table that this operation lacks may not even be named in its branch.)
    IF TG_OP = 'UPDATE' THEN
        IF NOT EXISTS (
            SELECT 1 FROM old_rows o JOIN new_rows n USING (id)
            WHERE (o.name, o.status, o.deleted_at) IS DISTINCT FROM (n.name, n.status, n.deleted_at)
        ) THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE search_words w SET products = w.products - gone.n
        FROM (SELECT word, count(*) AS n
              FROM old_rows o CROSS JOIN catalog_words(o.name) AS word
              WHERE o.deleted_at IS NULL AND o.status = 'active'
              GROUP BY word ORDER BY word) gone
        WHERE w.word = gone.word;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO search_words (word, products)
        SELECT word, count(*)
        FROM new_rows n CROSS JOIN catalog_words(n.name) AS word
        WHERE n.deleted_at IS NULL AND n.status = 'active'
        GROUP BY word ORDER BY word
        ON CONFLICT (word) DO UPDATE SET products = search_words.products + excluded.products;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER search_words_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_count();
CREATE TRIGGER search_words_update AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_count();
CREATE TRIGGER search_words_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_count();

INSERT INTO search_words (word, products)
SELECT word, count(*) FROM products p CROSS JOIN catalog_words(p.name) AS word
WHERE p.deleted_at IS NULL AND p.status = 'active'
GROUP BY word;

