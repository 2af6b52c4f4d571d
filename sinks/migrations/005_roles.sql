-- 005_roles.sql: least privilege (README "Security"). Two group roles
-- (NOLOGIN) that an administrator grants to login users:
--   qualstream_writer  what `qualstream run` needs, and no more: read the
--                      schema, insert and update the tables the worker writes,
--                      mark outbox rows published, temporary tables for COPY
--   qualstream_reader  read only: `report`, `rules`, the views
-- Neither owns anything nor may create objects in the schema; the objects stay
-- owned by the role that runs `qualstream migrate`. Roles are cluster-wide, so
-- a second database finds them and only gets its grants. Creating them needs
-- CREATEROLE (or a superuser) the first time.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['qualstream_writer', 'qualstream_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- a migration of another database created it meanwhile
            END;
        END IF;
    END LOOP;
    -- CONNECT and TEMP are PUBLIC's by default; grant them by name so a
    -- database hardened with REVOKE ... FROM PUBLIC still lets them work. The
    -- flush COPYs into two temporary tables (qs_delta, qs_record), hence TEMP.
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO qualstream_writer', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO qualstream_reader', current_database());
END $$;

GRANT USAGE ON SCHEMA qualstream TO qualstream_writer, qualstream_reader;

-- Both read everything in the schema (the worker reads the rules, the plan
-- alerts read the plan and benchmark tables).
GRANT SELECT ON ALL TABLES IN SCHEMA qualstream TO qualstream_writer, qualstream_reader;
-- The functions run as their caller (SECURITY INVOKER), so table privileges
-- decide what they may do: the reader can call alert_evaluate but not write.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA qualstream TO qualstream_writer, qualstream_reader;

-- What the worker writes. Nothing is ever deleted or truncated by it; the
-- rule tables and schema_migrations are the administrator's.
GRANT INSERT, UPDATE ON qualstream.measure_period, qualstream.consumer_offsets, qualstream.record_latest,
    qualstream.outbox_position, qualstream.alert_watermark TO qualstream_writer;
-- The outboxes: rows are appended, and later only marked published.
GRANT INSERT, UPDATE (published_at) ON qualstream.dead_letter, qualstream.alerts TO qualstream_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA qualstream TO qualstream_writer;

-- Objects that later migrations create (run by the same role as this one)
-- are readable by both and callable by both; a later table the worker writes
-- grants its INSERT/UPDATE explicitly, as above, so no write is granted by
-- accident.
ALTER DEFAULT PRIVILEGES IN SCHEMA qualstream GRANT SELECT ON TABLES TO qualstream_writer, qualstream_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA qualstream GRANT EXECUTE ON FUNCTIONS TO qualstream_writer, qualstream_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA qualstream GRANT USAGE ON SEQUENCES TO qualstream_writer;
