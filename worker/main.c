/*
 * main.c: the qualstream command. Parses the command line and configuration,
 * validates everything before creating any client, and dispatches:
 *   qualstream run -c FILE [-X key=value]...      the streaming worker
 *   qualstream migrate -c FILE [-X key=value]...  create or update the schema
 * Exit status: 0 success, 1 run-time failure, 2 usage or configuration error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "consume.h"
#include "log.h"
#include "pgsink.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: qualstream run -c FILE [-X key=value]...\n"
		     "       qualstream migrate -c FILE [-X key=value]...\n"
		     "\n"
		     "run      consume the encounter, delivery and member-event topics and keep the\n"
		     "         measures in PostgreSQL up to date (SIGTERM/SIGINT: flush and exit 0)\n"
		     "migrate  create or update the qualstream schema in PostgreSQL\n"
		     "\n"
		     "Configuration keys are listed in README.md (Configuration).\n");
}

static int migrate(const struct config *cfg)
{
	char err[1024];
	static const char *const no_topics[QS_TOPIC_COUNT] = {"", "", ""};
	struct pgsink *ps = pgsink_connect(cfg->pg_conninfo, "", no_topics, err, sizeof(err));
	int rc = ps && pgsink_migrate(ps, err, sizeof(err)) == 0 ? 0 : 1;
	if (rc)
		log_error("%s", err);
	else
		log_info("schema qualstream is up to date");
	pgsink_free(ps);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	bool run = !strcmp(cmd, "run");
	if (!run && strcmp(cmd, "migrate")) {
		fprintf(stderr, "qualstream: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	struct config cfg;
	config_init(&cfg);
	char err[1024];
	const char *file = NULL;
	int rc = 2, opt;
	optind = 2;
	/* The file is read before any -X, so a command-line value always wins: collect -X first. */
	char **overrides = calloc((size_t)argc, sizeof(*overrides));
	int n_overrides = 0;
	while ((opt = getopt(argc, argv, "c:X:")) != -1) {
		if (opt == 'c')
			file = optarg;
		else if (opt == 'X')
			overrides[n_overrides++] = optarg;
		else
			goto usage_error;
	}
	if (!file || optind != argc)
		goto usage_error;
	if (config_load_file(&cfg, file, err, sizeof(err)))
		goto config_error;
	for (int i = 0; i < n_overrides; i++)
		if (config_set(&cfg, overrides[i], "-X", err, sizeof(err)))
			goto config_error;
	if (config_validate(&cfg, run, err, sizeof(err)))
		goto config_error;
	log_level_current = !strcmp(cfg.log_level, "error")  ? LOG_ERROR
			    : !strcmp(cfg.log_level, "warn") ? LOG_WARN
			    : !strcmp(cfg.log_level, "debug") ? LOG_DEBUG
							      : LOG_INFO;
	if (run) {
		struct sigaction sa = {0};
		sa.sa_handler = on_signal;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		rc = consume_run(&cfg, &stop_requested);
	} else {
		rc = migrate(&cfg);
	}
	goto done;
usage_error:
	usage(stderr);
	goto done;
config_error:
	fprintf(stderr, "qualstream: %s\n", err);
done:
	free(overrides);
	config_free(&cfg);
	return rc;
}
