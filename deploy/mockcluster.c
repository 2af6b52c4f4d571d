/*
 * mockcluster.c: qs-mockcluster, a Kafka-protocol cluster in one small
 * process, for the quickstart and the fast test tier. It wraps librdkafka's
 * mock cluster (rdkafka_mock.h): creates the brokers and topics, prints the
 * bootstrap servers (and writes them to a file with -f), and serves until
 * SIGTERM or SIGINT. SIGUSR1 takes every broker down (connections refused,
 * as in an outage of the whole cluster) and SIGUSR2 brings them back up, so
 * a test can stage a Kafka outage without a real broker.
 *
 * It is a test double, not a broker: the log lives in memory and each
 * partition keeps only its last ~5 MiB (or 100000 message sets), and the
 * group and transaction coordinators are simplified (a group's first join
 * waits 3 s; a rebalance that adds a member waits up to session.timeout.ms).
 * Anything that depends on real broker behaviour (restarts, retention,
 * coordinator failover) belongs to the real Apache Kafka tier in tests/kafka.
 * The mock answers no CreateTopics request, so topics are made here (-t).
 *
 * Usage: qs-mockcluster [-b brokers] [-t topic:partitions]... [-f file]
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BROKERS 32
#define MAX_PARTITIONS 10000
#define MAX_TOPIC_LEN 249 /* Kafka's own limit on topic names */

struct topic_spec {
	char *name; /* owned */
	int partitions;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: qs-mockcluster [-b brokers] [-t topic:partitions]... [-f bootstrap_file]\n"
		     "  -b N          number of mock brokers (1..%d, default 1)\n"
		     "  -t T:P        create topic T with P partitions (repeatable)\n"
		     "  -f FILE       also write the bootstrap servers to FILE (atomically);\n"
		     "                FILE is removed again on a clean exit\n"
		     "Prints the bootstrap servers on stdout, then serves until SIGTERM or SIGINT.\n"
		     "SIGUSR1 takes every broker down, SIGUSR2 brings them all up again.\n",
		MAX_BROKERS);
}

/* Parses a decimal int in [lo, hi]; returns -1 when s is not one. */
static int parse_int(const char *s, int lo, int hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	return (int)v;
}

/*
 * Parses "topic:partitions" into spec; spec->name is then a copy the caller
 * frees. Returns 0, or -1 with a message on stderr.
 */
static int parse_topic(const char *arg, struct topic_spec *spec)
{
	const char *colon = strrchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : 0;

	if (!colon) {
		fprintf(stderr, "qs-mockcluster: -t %s: expected topic:partitions\n", arg);
		return -1;
	}
	/* The mock accepts any name, but a real broker would not: reject here so
	 * a test never relies on a topic name that fails in production. */
	if (len == 0 || len > MAX_TOPIC_LEN || strspn(arg, "abcdefghijklmnopqrstuvwxyz"
							   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
							   "0123456789._-") != len) {
		fprintf(stderr, "qs-mockcluster: -t %s: topic names are 1..%d of [a-zA-Z0-9._-]\n", arg,
			MAX_TOPIC_LEN);
		return -1;
	}
	spec->partitions = parse_int(colon + 1, 1, MAX_PARTITIONS);
	if (spec->partitions < 0) {
		fprintf(stderr, "qs-mockcluster: -t %s: partitions must be 1..%d\n", arg, MAX_PARTITIONS);
		return -1;
	}
	spec->name = strndup(arg, len);
	if (!spec->name) {
		fprintf(stderr, "qs-mockcluster: out of memory\n");
		return -1;
	}
	return 0;
}

/*
 * Writes "line\n" to path through a temporary file in the same directory and
 * rename(2), so a reader polling for path sees nothing or the whole line.
 * Returns 0, or -1 with a message on stderr.
 */
static int write_file_atomic(const char *path, const char *line)
{
	char tmp[PATH_MAX];
	FILE *fp = NULL;
	int n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fprintf(stderr, "qs-mockcluster: %s: path too long\n", path);
		goto fail;
	}
	fp = fopen(tmp, "w");
	if (!fp) {
		fprintf(stderr, "qs-mockcluster: %s: %s\n", tmp, strerror(errno));
		goto fail;
	}
	if (fprintf(fp, "%s\n", line) < 0 || fflush(fp) != 0) {
		fprintf(stderr, "qs-mockcluster: %s: %s\n", tmp, strerror(errno));
		goto fail;
	}
	n = fclose(fp);
	fp = NULL;
	if (n != 0) {
		fprintf(stderr, "qs-mockcluster: %s: %s\n", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "qs-mockcluster: rename %s -> %s: %s\n", tmp, path, strerror(errno));
		goto fail;
	}
	return 0;

fail:
	if (fp)
		fclose(fp);
	unlink(tmp);
	return -1;
}

int main(int argc, char **argv)
{
	struct topic_spec *topics = NULL;
	int topic_cnt = 0;
	int brokers = 1;
	const char *bootstrap_file = NULL;
	int file_written = 0;
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_t *rk = NULL;
	rd_kafka_mock_cluster_t *mcluster = NULL;
	const char *bootstraps;
	char errstr[512];
	sigset_t sigs;
	int sig;
	int opt;
	int rc = 1;
	int i;

	/* Block the stop signals first: librdkafka's threads inherit the
	 * mask, so only sigwait() below ever takes them and no handler runs on
	 * a librdkafka thread. SIGPIPE is blocked too so that a closed stdout
	 * is an error return, not a silent death. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGPIPE);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0) {
		fprintf(stderr, "qs-mockcluster: sigprocmask: %s\n", strerror(errno));
		goto out;
	}
	sigdelset(&sigs, SIGPIPE);

	/* At most one topic per argument, so argc bounds the table. */
	topics = calloc((size_t)argc, sizeof(*topics));
	if (!topics) {
		fprintf(stderr, "qs-mockcluster: out of memory\n");
		goto out;
	}
	while ((opt = getopt(argc, argv, "b:t:f:h")) != -1) {
		switch (opt) {
		case 'b':
			brokers = parse_int(optarg, 1, MAX_BROKERS);
			if (brokers < 0) {
				fprintf(stderr, "qs-mockcluster: -b must be 1..%d, not '%s'\n", MAX_BROKERS,
					optarg);
				rc = 2;
				goto out;
			}
			break;
		case 't':
			if (parse_topic(optarg, &topics[topic_cnt]) != 0) {
				rc = 2;
				goto out;
			}
			topic_cnt++;
			break;
		case 'f':
			bootstrap_file = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "qs-mockcluster: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		rc = 2;
		goto out;
	}

	/* The mock cluster needs an rd_kafka_t for its thread and bookkeeping
	 * only; this one never talks to a broker, so it has no bootstrap
	 * servers. A NOTICE about that is below the log level set here. */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "qs-mockcluster: %s\n", errstr);
		goto out;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "qs-mockcluster: rd_kafka_new: %s\n", errstr);
		goto out;
	}
	conf = NULL; /* rd_kafka_new took it */

	mcluster = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mcluster) {
		fprintf(stderr, "qs-mockcluster: could not create a mock cluster of %d brokers\n",
			brokers);
		goto out;
	}
	for (i = 0; i < topic_cnt; i++) {
		/* Replication is bookkeeping in the mock; match a real cluster
		 * of this size up to the usual factor of 3. */
		int rf = brokers < 3 ? brokers : 3;
		rd_kafka_resp_err_t err =
			rd_kafka_mock_topic_create(mcluster, topics[i].name, topics[i].partitions, rf);
		if (err) {
			fprintf(stderr, "qs-mockcluster: create topic %s: %s\n", topics[i].name,
				rd_kafka_err2str(err));
			goto out;
		}
	}

	bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
	/* The file is written before stdout so that a caller reading stdout
	 * can also trust the file to exist. */
	if (bootstrap_file) {
		if (write_file_atomic(bootstrap_file, bootstraps) != 0)
			goto out;
		file_written = 1;
	}
	if (printf("%s\n", bootstraps) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "qs-mockcluster: stdout: %s\n", strerror(errno));
		goto out;
	}

	for (;;) {
		int err = sigwait(&sigs, &sig);
		if (err == EINTR)
			continue;
		if (err != 0) {
			fprintf(stderr, "qs-mockcluster: sigwait: %s\n", strerror(err));
			goto out;
		}
		if (sig != SIGUSR1 && sig != SIGUSR2)
			break;
		/* The mock numbers its brokers 1..N. */
		for (i = 1; i <= brokers; i++) {
			rd_kafka_resp_err_t e = sig == SIGUSR1 ? rd_kafka_mock_broker_set_down(mcluster, i)
							       : rd_kafka_mock_broker_set_up(mcluster, i);
			if (e)
				fprintf(stderr, "qs-mockcluster: broker %d: %s\n", i, rd_kafka_err2str(e));
		}
		fprintf(stderr, "qs-mockcluster: all %d brokers %s\n", brokers, sig == SIGUSR1 ? "down" : "up");
	}
	rc = 0;

out:
	/* A bootstrap file that outlives the cluster would point the next
	 * reader at a dead port. */
	if (file_written && unlink(bootstrap_file) != 0 && errno != ENOENT)
		fprintf(stderr, "qs-mockcluster: %s: %s\n", bootstrap_file, strerror(errno));
	if (mcluster)
		rd_kafka_mock_cluster_destroy(mcluster);
	if (rk)
		rd_kafka_destroy(rk);
	if (conf)
		rd_kafka_conf_destroy(conf);
	for (i = 0; i < topic_cnt; i++)
		free(topics[i].name);
	free(topics);
	return rc;
}
