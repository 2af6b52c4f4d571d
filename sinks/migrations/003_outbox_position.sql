-- 003_outbox_position.sql: where the dead-letter publisher's acknowledged
-- messages end in each partition of topics.dead_letters, written in the same
-- transaction that marks them published. A publisher that takes over after a
-- crash reads the topic from here to its end and marks what its predecessor
-- delivered but did not mark, instead of sending it again.
CREATE TABLE qualstream.outbox_position (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    next_offset    bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);
