-- No JIT compilation on this database's sessions. PostgreSQL compiles a plan whose estimate passes
-- jit_above_cost (100,000), which the facet statement's custom plans do (jsonb_each_text is estimated
-- at 100 rows a variant): 1.2-1.7 s of compiling, per execution, for a statement that runs in 10-30 ms.
-- Per database (not per connection): a setting in the startup packet would not pass PgBouncer.
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET jit = off', current_database()); END $$;
