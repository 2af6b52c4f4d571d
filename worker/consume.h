/*
 * consume.h: the worker's run loop. Consumes the three input topics in one
 * consumer group, decodes each message, folds it into the state and flushes
 * to PostgreSQL on flush.interval.ms / flush.max.events, then publishes what
 * the flush committed to the outbox (dead letters and alerts, outbox.h).
 * Partition ownership and resume positions come from PostgreSQL
 * (qualstream.consumer_offsets), never from Kafka's committed offsets.
 */
#ifndef QS_CONSUME_H
#define QS_CONSUME_H

#include <signal.h>

#include "config.h"

/* Runs until *stop is set (SIGTERM/SIGINT) or, with run.exit.at.end, until caught up. 0 on a clean exit. */
int consume_run(const struct config *cfg, volatile sig_atomic_t *stop);

#endif
