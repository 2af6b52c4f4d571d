-- 007_outbox_batch.sql: the outboxes are marked published by a per-group
-- high-water mark instead of a column of each row (issue 11, item 1).
--
-- Marking each delivered row (UPDATE ... SET published_at) rewrote the row and
-- every index entry of it, and the publisher's read of the unpublished rows
-- went through a partial index full of the dead entries this left; together
-- they were the largest cost of a drain. Since a flush writes a group's outbox
-- rows under the group's advisory lock (pgsink_flush), a group's ids become
-- visible in increasing order, so "every row of the group up to id H is on the
-- topic" is sound: the publisher reads the rows after H in id order and, once
-- a batch of them is acknowledged in full, records the batch's last id here,
-- in the transaction that moves qualstream.outbox_position.

-- One row per delivered batch: it covers the group's rows of the stream after
-- the previous batch's last_id up to its own (so no first id is stored). The
-- largest last_id is the stream's high-water mark.
CREATE TABLE qualstream.outbox_batch (
    consumer_group text        NOT NULL,
    stream         text        NOT NULL CHECK (stream IN ('dead_letter', 'alerts')),
    last_id        bigint      NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, stream, last_id)
);

-- Then, for each outbox table:
-- 1. Upgrade: the rows already published become batches, one per run of equal
--    published_at in id order (one mark transaction's now()), up to each
--    group's first unpublished row, so they keep the time they were marked. A
--    row published above an unpublished one (an out-of-order commit, or a batch
--    acknowledged in part, under the per-row marks) cannot be covered by the
--    mark: for such a group the outbox positions are forgotten, so the next
--    publisher reads both topics back from their beginning and skips what it
--    finds there, as after any crash (sinks/outbox.c, rule 4); until its batch
--    is marked, such a row shows as not yet published. (A message the topic's
--    retention has already deleted would be sent again: that needs a row left
--    unpublished below it for the whole retention time.)
-- 2. The publisher's read, consumer_group = $1 AND id > H ORDER BY id, gets an
--    index (<table>_by_group) in place of the partial index of unpublished
--    rows: so each insert still updates as many indexes. Without it the read
--    is served by the primary key only once the table has statistics; before
--    the first analyze the planner took alerts_by_alert and sorted every row of
--    the group, each read slower than the last (tests/bench/README.md, "The
--    outbox high-water mark").
-- 3. published_at goes, and the view <table>_outbox shows every row with the
--    time its batch was marked published (the batch with the smallest last_id
--    at or above the row's id), NULL while it is not on the topic yet.
--    alert_open (004) names every column of qualstream.alerts through its `*`,
--    so it is dropped first and made again below, the same view without
--    published_at.
DROP VIEW qualstream.alert_open;
DO $$
DECLARE
    outbox text;
BEGIN
    FOREACH outbox IN ARRAY ARRAY['dead_letter', 'alerts'] LOOP
        EXECUTE format($q$
            WITH firsts AS (
                SELECT consumer_group, min(id) FILTER (WHERE published_at IS NULL) AS first_unpublished
                FROM qualstream.%1$I GROUP BY consumer_group
            ), prefix AS (
                SELECT t.consumer_group, t.id, t.published_at,
                       row_number() OVER (PARTITION BY t.consumer_group ORDER BY t.id)
                       - row_number() OVER (PARTITION BY t.consumer_group, t.published_at ORDER BY t.id) AS run
                FROM qualstream.%1$I t JOIN firsts f USING (consumer_group)
                WHERE f.first_unpublished IS NULL OR t.id < f.first_unpublished
            )
            INSERT INTO qualstream.outbox_batch (consumer_group, stream, last_id, published_at)
            SELECT consumer_group, %1$L, max(id), published_at FROM prefix
            GROUP BY consumer_group, published_at, run$q$, outbox);
        EXECUTE format($q$
            DELETE FROM qualstream.outbox_position o
            WHERE EXISTS (SELECT 1 FROM qualstream.%1$I t
                          WHERE t.consumer_group = o.consumer_group AND t.published_at IS NOT NULL
                            AND t.id > coalesce((SELECT max(b.last_id) FROM qualstream.outbox_batch b
                                                 WHERE b.consumer_group = t.consumer_group
                                                   AND b.stream = %1$L), 0))$q$, outbox);
        EXECUTE format('CREATE INDEX %I ON qualstream.%I (consumer_group, id)', outbox || '_by_group', outbox);
        EXECUTE format('DROP INDEX qualstream.%I', outbox || '_unpublished');
        EXECUTE format('ALTER TABLE qualstream.%I DROP COLUMN published_at', outbox);
        EXECUTE format($q$
            CREATE VIEW qualstream.%2$I AS
            SELECT t.*, b.published_at
            FROM qualstream.%1$I t
            LEFT JOIN LATERAL (SELECT b.published_at FROM qualstream.outbox_batch b
                               WHERE b.consumer_group = t.consumer_group AND b.stream = %1$L
                                 AND b.last_id >= t.id
                               ORDER BY b.last_id LIMIT 1) b ON true$q$, outbox, outbox || '_outbox');
    END LOOP;
END $$;
CREATE VIEW qualstream.alert_open AS
SELECT consumer_group, alert_id, kind, plan_id, source, member_id, encounter_id, hospital_id,
       period_start, due_date, detected_at AS raised_at, details
FROM (SELECT DISTINCT ON (consumer_group, alert_id) *
      FROM qualstream.alerts ORDER BY consumer_group, alert_id, id DESC) latest
WHERE state = 'RAISED';

-- The writer appends batches and never changes one; the outbox rows
-- themselves are no longer updated (their UPDATE (published_at) grant went
-- with the column). Both roles read the table and the views by 005's default
-- privileges.
GRANT INSERT ON qualstream.outbox_batch TO qualstream_writer;
