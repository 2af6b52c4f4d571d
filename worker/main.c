/*
 * main.c: the qualstream command. Parses the command line and configuration,
 * validates everything before creating any client, and dispatches:
 *   qualstream run -c FILE [-X key=value]...      the streaming worker
 *   qualstream migrate -c FILE [-X key=value]...  create or update the schema
 *   qualstream report -c FILE [--plan P] [--year Y] [--format text|csv|json]
 *                                                 measures met, withhold tier, NTSV
 *   qualstream rules -c FILE                      the rule tables in force
 * Exit status: 0 success, 1 run-time failure, 2 usage or configuration error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "consume.h"
#include "log.h"
#include "pg.h"
#include "pgsink.h"
#include "redact.h"
#include "report.h"
#include "xalloc.h"

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
		     "       qualstream report -c FILE [-X key=value]... [--plan PLAN] [--year YEAR]\n"
		     "                         [--format text|csv|json]\n"
		     "       qualstream rules -c FILE [-X key=value]...\n"
		     "\n"
		     "run      consume the encounter, delivery and member-event topics and keep the\n"
		     "         measures in PostgreSQL up to date (SIGTERM/SIGINT: flush and exit 0)\n"
		     "migrate  create or update the qualstream schema in PostgreSQL\n"
		     "report   per plan and demonstration year: each measure's rate against its benchmark\n"
		     "         and gap closure target, met or not, the withhold tier, and the NTSV rate by\n"
		     "         hospital against the target (default format: text)\n"
		     "rules    print the benchmarks, phase-in, withhold tiers and plans in force\n"
		     "\n"
		     "Configuration keys are listed in README.md (Configuration).\n");
}

static int migrate(const struct config *cfg)
{
	char err[1024];
	struct pg *pg = pg_connect(cfg->pg_conninfo, err, sizeof(err));
	int rc = pg && pgsink_migrate(pg, err, sizeof(err)) == 0 ? 0 : 1;
	if (rc)
		log_error("%s", err);
	else
		log_info("schema qualstream is up to date");
	pg_free(pg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	bool run = !strcmp(cmd, "run"), report = !strcmp(cmd, "report");
	if (!run && !report && strcmp(cmd, "migrate") && strcmp(cmd, "rules")) {
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
	char **overrides = xcalloc((size_t)argc, sizeof(*overrides), "the -X overrides");
	int n_overrides = 0;
	/* --plan, --year and --format belong to `report` only. */
	static const struct option long_options[] = {{"plan", required_argument, NULL, 'P'},
						     {"year", required_argument, NULL, 'Y'},
						     {"format", required_argument, NULL, 'F'},
						     {NULL, 0, NULL, 0}};
	struct report_options ropts = {.plan = NULL, .year = 0, .format = REPORT_TEXT};
	while ((opt = getopt_long(argc, argv, "c:X:", long_options, NULL)) != -1) {
		if (opt == 'c') {
			file = optarg;
		} else if (opt == 'X') {
			overrides[n_overrides++] = optarg;
		} else if (report && opt == 'P') {
			ropts.plan = optarg;
		} else if (report && opt == 'Y') {
			char *end;
			long y = strtol(optarg, &end, 10);
			if (end == optarg || *end || y < 1900 || y > 2199) {
				snprintf(err, sizeof(err), "--year: \"%s\" is not a year from 1900 to 2199", optarg);
				goto config_error;
			}
			ropts.year = (int)y;
		} else if (report && opt == 'F') {
			if (report_parse_format(optarg, &ropts.format)) {
				snprintf(err, sizeof(err), "--format: \"%s\" is not text, csv or json", optarg);
				goto config_error;
			}
		} else {
			goto usage_error;
		}
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
	log_level_current = !strcmp(cfg.log_level, "error")   ? LOG_ERROR
			    : !strcmp(cfg.log_level, "warn")  ? LOG_WARN
			    : !strcmp(cfg.log_level, "debug") ? LOG_DEBUG
							      : LOG_INFO;
	if (run) {
		struct sigaction sa = {0};
		sa.sa_handler = on_signal;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		rc = consume_run(&cfg, &stop_requested);
	} else if (report || !strcmp(cmd, "rules")) {
		rc = report ? report_print(cfg.pg_conninfo, &ropts, stdout, err, sizeof(err))
			    : report_print_rules(cfg.pg_conninfo, stdout, err, sizeof(err));
		if (rc)
			log_error("%s", err);
		rc = rc ? 1 : 0;
	} else {
		rc = migrate(&cfg);
	}
	goto done;
usage_error:
	usage(stderr);
	goto done;
config_error:
	redact(err, sizeof(err));
	fprintf(stderr, "qualstream: %s\n", err);
done:
	free(overrides);
	config_free(&cfg);
	redact_forget();
	return rc;
}
