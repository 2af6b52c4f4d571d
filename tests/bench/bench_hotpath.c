/*
 * bench_hotpath.c: qs-bench-hotpath, the in-process micro-benchmark of the
 * worker's hot path (decode_message + state_apply per event). It loads a
 * stream written by `tests/tools/qsgen.py dump` (hex values) into memory and
 * times, over the same messages in the same run:
 *   (a) baseline: one pass that reads every byte of every value (checksum);
 *   (b) decode_message alone;
 *   (c1) decode_message + state_apply into a fresh state (every entity new);
 *   (c2) the same into a state already at its high-water mark (steady state),
 * with state_flushed every --flush-every events as the worker's flushes do.
 * Figures are ns/event, events/s and ratios to (a). A counting malloc
 * interposer (this file defines malloc and friends) counts heap calls per
 * event in (c1) and (c2); mallinfo2 and /proc/self/statm give bytes per held
 * entity. Usage: see usage() below and tests/bench/README.md.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decode.h"
#include "registry.h"
#include "state.h"

/* ---- counting allocator --------------------------------------------------
 * Every allocation of the process goes through these (glibc lets the
 * executable replace malloc); they forward to glibc's own. Counting is on
 * only inside measured phases, which run on this one thread. */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t size);

#define ARENA_CHUNK_MIN (256u * 1024u) /* worker/arena.c CHUNK_SIZE: an allocation this big is an arena chunk */

struct alloc_counts {
	uint64_t calls;  /* malloc + calloc + realloc + memalign */
	uint64_t bytes;  /* requested */
	uint64_t chunks; /* calls of at least ARENA_CHUNK_MIN bytes */
	uint64_t frees;
};

static bool counting;
static struct alloc_counts counts;

static void count(size_t size)
{
	if (!counting)
		return;
	counts.calls++;
	counts.bytes += size;
	if (size >= ARENA_CHUNK_MIN)
		counts.chunks++;
}

void *malloc(size_t size)
{
	count(size);
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	count(n * size);
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	count(size);
	return __libc_realloc(p, size);
}

void free(void *p)
{
	if (counting && p)
		counts.frees++;
	__libc_free(p);
}

void *memalign(size_t align, size_t size)
{
	count(size);
	return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	count(size);
	return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	count(size);
	void *p = __libc_memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static void counting_start(void)
{
	memset(&counts, 0, sizeof(counts));
	counting = true;
}

static struct alloc_counts counting_stop(void)
{
	counting = false;
	return counts;
}

/* ---- the stream ---------------------------------------------------------- */

struct msg {
	enum qs_topic topic;
	int32_t partition;
	size_t off, len; /* value bytes in stream.bytes; len 0 with has_value false: no value */
	bool has_value;
};

struct stream {
	struct msg *msgs;
	size_t n, cap;
	unsigned char *bytes;
	size_t len, bytes_cap;
};

static int topic_of(const char *name)
{
	if (!strcmp(name, "encounters"))
		return QS_TOPIC_ENCOUNTERS;
	if (!strcmp(name, "deliveries"))
		return QS_TOPIC_DELIVERIES;
	if (!strcmp(name, "member-events"))
		return QS_TOPIC_MEMBER_EVENTS;
	return -1;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "qs-bench-hotpath: out of memory\n");
		exit(1);
	}
	return p;
}

/* Messages go to partitions by key like a keyed producer's would: FNV-1a, modulo. */
static int32_t partition_of(const char *key_hex, int partitions)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = key_hex; s && s[0] && s[1]; s += 2) {
		h ^= (unsigned)(hexval(s[0]) << 4 | hexval(s[1]));
		h *= 1099511628211ULL;
	}
	return (int32_t)(h % (uint64_t)partitions);
}

static int stream_load(struct stream *st, const char *path, int partitions, size_t limit)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		fprintf(stderr, "qs-bench-hotpath: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t line_cap = 0;
	ssize_t n;
	size_t lineno = 0;
	int rc = 0;
	while ((n = getline(&line, &line_cap, fp)) > 0 && (!limit || st->n < limit)) {
		lineno++;
		json_error_t jerr;
		json_t *j = json_loadb(line, (size_t)n, 0, &jerr);
		const char *topic = j ? json_string_value(json_object_get(j, "topic")) : NULL;
		json_t *hex = j ? json_object_get(j, "value_hex") : NULL;
		int t = topic ? topic_of(topic) : -1;
		if (!j || t < 0 || !(json_is_string(hex) || json_is_null(hex))) {
			fprintf(stderr, "qs-bench-hotpath: %s:%zu: not a qsgen dump line\n", path, lineno);
			json_decref(j);
			rc = -1;
			break;
		}
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 65536;
			st->msgs = xrealloc(st->msgs, st->cap * sizeof(*st->msgs));
		}
		struct msg *m = &st->msgs[st->n++];
		m->topic = (enum qs_topic)t;
		m->partition = partition_of(json_string_value(json_object_get(j, "key_hex")), partitions);
		m->has_value = json_is_string(hex);
		m->off = st->len;
		m->len = 0;
		if (m->has_value) {
			const char *h = json_string_value(hex);
			size_t hl = strlen(h) / 2;
			if (st->len + hl > st->bytes_cap) {
				st->bytes_cap = (st->bytes_cap ? st->bytes_cap * 2 : 1 << 24) + hl;
				st->bytes = xrealloc(st->bytes, st->bytes_cap);
			}
			for (size_t i = 0; i < hl; i++)
				st->bytes[st->len + i] = (unsigned char)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
			m->len = hl;
			st->len += hl;
		}
		json_decref(j);
	}
	free(line);
	fclose(fp);
	if (!rc && !st->n) {
		fprintf(stderr, "qs-bench-hotpath: %s: no messages\n", path);
		rc = -1;
	}
	return rc;
}

/* ---- measuring ----------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *fp = fopen("/proc/self/statm", "r");
	if (fp) {
		if (fscanf(fp, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(fp);
	}
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

struct bench {
	const struct stream *s;
	struct decoder *dec;
	struct qs_rules rules;
	int partitions;
	size_t flush_every;
	int64_t next_offset[QS_TOPIC_COUNT][1024]; /* per partition, across passes: offsets only grow */
	uint64_t sink;                             /* defeats dead-code elimination */
	size_t ok, rejected;                       /* of the last decode pass */
};

/* (a) Reads every value byte once. */
static void pass_touch(struct bench *b)
{
	const struct stream *s = b->s;
	uint64_t sum = 0;
	for (size_t i = 0; i < s->n; i++) {
		const unsigned char *v = s->bytes + s->msgs[i].off;
		uint64_t x = 0;
		for (size_t k = 0; k < s->msgs[i].len; k++)
			x += v[k];
		sum += x ^ s->msgs[i].len;
	}
	b->sink += sum;
}

/* (b) Decodes every message. */
static void pass_decode(struct bench *b)
{
	const struct stream *s = b->s;
	struct qs_event ev;
	char why[QS_DECODE_ERRSTR_SIZE];
	size_t ok = 0, bad = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct msg *m = &s->msgs[i];
		int rc = decode_message(b->dec, m->topic, m->has_value ? s->bytes + m->off : NULL, m->len, &ev, why,
					sizeof(why));
		if (rc == QS_OK) {
			ok++;
			b->sink += (uint64_t)ev.u.encounter.service_to; /* any field: keeps the decode alive */
		} else {
			bad++;
		}
	}
	b->ok = ok;
	b->rejected = bad;
}

/* (c) Decodes and applies every message like consume.c's handle_message, flushing every flush_every. */
static void pass_apply(struct bench *b, struct state *st)
{
	const struct stream *s = b->s;
	struct qs_event ev;
	char why[QS_DECODE_ERRSTR_SIZE];
	for (size_t i = 0; i < s->n; i++) {
		const struct msg *m = &s->msgs[i];
		struct part *p = state_part(st, m->topic, m->partition);
		if (!p)
			p = state_part_add(st, m->topic, m->partition, b->next_offset[m->topic][m->partition],
					   QS_NO_TS);
		int64_t offset = b->next_offset[m->topic][m->partition]++;
		const void *value = m->has_value ? s->bytes + m->off : NULL;
		if (decode_message(b->dec, m->topic, value, m->len, &ev, why, sizeof(why)) == QS_OK)
			state_apply(st, p, &ev, offset, value, m->len);
		else
			state_dead_letter(st, p, offset, NULL, 0, value, m->len, why);
		if (state_pending(st) >= b->flush_every)
			state_flushed(st); /* what a committed flush leaves behind */
	}
	state_flushed(st);
}

/*
 * Distinct records (topic, id) in the stream, counted here, independently of
 * the state: the denominator of bytes per held record, the same whatever the
 * state counts as an entity. A private open-addressing set of copies.
 */
static size_t count_records(struct bench *b)
{
	const struct stream *s = b->s;
	size_t cap = 1;
	while (cap < s->n * 2)
		cap *= 2;
	char **set = calloc(cap, sizeof(*set));
	if (!set)
		return 0;
	struct qs_event ev;
	char why[QS_DECODE_ERRSTR_SIZE], key[2 + QS_ID_MAX];
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct msg *m = &s->msgs[i];
		if (decode_message(b->dec, m->topic, m->has_value ? s->bytes + m->off : NULL, m->len, &ev, why,
				   sizeof(why)) != QS_OK)
			continue;
		const char *id = ev.topic == QS_TOPIC_ENCOUNTERS   ? ev.u.encounter.encounter_id
				 : ev.topic == QS_TOPIC_DELIVERIES ? ev.u.delivery.delivery_id
								   : ev.u.member.event_id;
		snprintf(key, sizeof(key), "%d%s", (int)ev.topic, id);
		uint64_t h = 1469598103934665603ULL;
		for (const char *p = key; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		size_t j = h & (cap - 1);
		while (set[j] && strcmp(set[j], key))
			j = (j + 1) & (cap - 1);
		if (!set[j]) {
			set[j] = strdup(key);
			n++;
		}
	}
	for (size_t j = 0; j < cap; j++)
		free(set[j]);
	free(set);
	return n;
}

static struct state *fresh_state(struct bench *b)
{
	memset(b->next_offset, 0, sizeof(b->next_offset));
	return state_new(&b->rules, false);
}

struct timing {
	double best, median; /* seconds per pass */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define MAX_REPS 64

static struct timing summarize(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return (struct timing){t[0], n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2};
}

static void report(const char *label, const char *what, struct timing t, size_t n, double base_ns)
{
	double ns = t.median * 1e9 / (double)n;
	printf("hotpath %-4s %-44s %9.1f ns/event %12.0f events/s  x%.2f of (a)   (best %.1f ns)\n", label, what, ns,
	       (double)n / t.median, base_ns > 0 ? ns / base_ns : 1.0, t.best * 1e9 / (double)n);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: qs-bench-hotpath --stream FILE.jsonl --registry DIR [options]\n"
		     "  --stream FILE       JSONL from `tests/tools/qsgen.py dump` (value_hex per line)\n"
		     "  --registry DIR      schema directory from `tests/tools/qsgen.py registry DIR`\n"
		     "  --partitions N      partitions per topic the messages are spread over by key (default 16)\n"
		     "  --flush-every N     state_flushed after this many pending events (default 50000, the worker's\n"
		     "                      flush.max.events)\n"
		     "  --reps N            timed repetitions of each pass; the median is reported (default 5)\n"
		     "  --limit N           load at most N messages\n");
}

int main(int argc, char **argv)
{
	const char *stream_path = NULL, *registry_dir = NULL;
	int partitions = 16, reps = 5;
	size_t flush_every = 50000, limit = 0;
	static const struct option opts[] = {
		{"stream", required_argument, NULL, 's'},
		{"registry", required_argument, NULL, 'r'},
		{"partitions", required_argument, NULL, 'p'},
		{"flush-every", required_argument, NULL, 'f'},
		{"reps", required_argument, NULL, 'n'},
		{"limit", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			stream_path = optarg;
			break;
		case 'r':
			registry_dir = optarg;
			break;
		case 'p':
			partitions = atoi(optarg);
			break;
		case 'f':
			flush_every = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'n':
			reps = atoi(optarg);
			break;
		case 'l':
			limit = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!stream_path || !registry_dir || optind != argc || partitions < 1 || partitions > 1024 || reps < 1 ||
	    reps > MAX_REPS || flush_every < 1) {
		usage(stderr);
		return 2;
	}

	int rc = 1;
	char err[512];
	struct stream s = {0};
	struct registry *reg = NULL;
	struct bench *b = calloc(1, sizeof(*b));
	struct state *st = NULL;
	if (!b)
		goto done;
	double t0 = now_s();
	if (stream_load(&s, stream_path, partitions, limit))
		goto done;
	size_t by_topic[QS_TOPIC_COUNT] = {0};
	for (size_t i = 0; i < s.n; i++)
		by_topic[s.msgs[i].topic]++;
	printf("hotpath stream %s: %zu messages (%zu encounters, %zu deliveries, %zu member events), %.1f MB of "
	       "values, %.1f bytes/message; loaded in %.1f s\n",
	       stream_path, s.n, by_topic[0], by_topic[1], by_topic[2], (double)s.len / 1e6,
	       (double)s.len / (double)s.n, now_s() - t0);
	printf("hotpath setup: %d partitions per topic, state_flushed every %zu events, median of %d passes\n",
	       partitions, flush_every, reps);

	reg = registry_new(NULL, registry_dir, err, sizeof(err));
	if (!reg) {
		fprintf(stderr, "qs-bench-hotpath: %s\n", err);
		goto done;
	}
	b->dec = decode_new(reg, err, sizeof(err));
	if (!b->dec) {
		fprintf(stderr, "qs-bench-hotpath: %s\n", err);
		goto done;
	}
	b->s = &s;
	b->partitions = partitions;
	b->flush_every = flush_every;
	b->rules.cw13_timely_days = 180; /* the seeded qualstream.rule values */
	b->rules.alert_due_soon_days = 150;

	/* Warm-up: compiles every (schema id, topic) plan and faults the stream in. */
	pass_touch(b);
	pass_decode(b);
	printf("hotpath decode: %zu ok, %zu rejected\n", b->ok, b->rejected);
	size_t records = count_records(b);

	double t[MAX_REPS];
	struct timing ta, tb, tc1, tc2;
	for (int r = 0; r < reps; r++) {
		double s0 = now_s();
		pass_touch(b);
		t[r] = now_s() - s0;
	}
	ta = summarize(t, reps);

	counting_start();
	for (int r = 0; r < reps; r++) {
		double s0 = now_s();
		pass_decode(b);
		t[r] = now_s() - s0;
	}
	struct alloc_counts a_dec = counting_stop();
	tb = summarize(t, reps);

	/* (c1): every pass starts from an empty state, so every entity is new. */
	struct alloc_counts a_new = {0};
	size_t entities = 0, heap_per_state = 0, rss_per_state = 0;
	for (int r = 0; r < reps; r++) {
		size_t h0 = heap_in_use(), r0 = rss_bytes();
		st = fresh_state(b);
		counting_start();
		double s0 = now_s();
		pass_apply(b, st);
		t[r] = now_s() - s0;
		struct alloc_counts a = counting_stop();
		if (r == 0) {
			a_new = a;
			entities = state_entities(st);
			heap_per_state = heap_in_use() - h0;
			rss_per_state = rss_bytes() - r0;
		}
		if (r + 1 < reps) {
			state_free(st);
			st = NULL;
		}
	}
	tc1 = summarize(t, reps);

	/* (c2): st has seen the stream once; a further warm-up pass brings every
	 * table and vector to its high-water mark, then the timed passes re-apply
	 * events whose entities all exist (corrections of known records). */
	pass_apply(b, st);
	size_t entities_after = state_entities(st);
	counting_start();
	for (int r = 0; r < reps; r++) {
		double s0 = now_s();
		pass_apply(b, st);
		t[r] = now_s() - s0;
	}
	struct alloc_counts a_steady = counting_stop();
	tc2 = summarize(t, reps);
	state_free(st);
	st = NULL;

	/* Bytes per entity of what each topic's events build: a state fed that topic only. */
	size_t fam_entities[QS_TOPIC_COUNT] = {0}, fam_heap[QS_TOPIC_COUNT] = {0};
	for (int topic = 0; topic < QS_TOPIC_COUNT; topic++) {
		if (!by_topic[topic])
			continue;
		struct stream one = s;
		one.msgs = malloc(by_topic[topic] * sizeof(*one.msgs));
		if (!one.msgs)
			goto done;
		one.n = 0;
		for (size_t i = 0; i < s.n; i++)
			if (s.msgs[i].topic == (enum qs_topic)topic)
				one.msgs[one.n++] = s.msgs[i];
		b->s = &one;
		size_t h0 = heap_in_use();
		st = fresh_state(b);
		pass_apply(b, st);
		fam_entities[topic] = state_entities(st);
		fam_heap[topic] = heap_in_use() - h0;
		state_free(st);
		st = NULL;
		free(one.msgs);
		b->s = &s;
	}

	double base_ns = ta.median * 1e9 / (double)s.n;
	report("(a)", "baseline: read every value byte", ta, s.n, 0);
	report("(b)", "decode_message", tb, s.n, base_ns);
	report("(c1)", "decode + state_apply, fresh state (new)", tc1, s.n, base_ns);
	report("(c2)", "decode + state_apply, steady state (re-applied)", tc2, s.n, base_ns);
	double n_dec = (double)s.n * reps;
	printf("hotpath allocs (b)  decode_message: %.6f per event (%llu calls in %.0f events)\n",
	       (double)a_dec.calls / n_dec, (unsigned long long)a_dec.calls, n_dec);
	printf("hotpath allocs (c1) fresh state: %llu calls, %llu frees, %.1f MB requested for %zu new entities: "
	       "%.4f per new entity, %.4f per event; %llu of them arena-sized (>= 256 KiB)\n",
	       (unsigned long long)a_new.calls, (unsigned long long)a_new.frees, (double)a_new.bytes / 1e6, entities,
	       entities ? (double)a_new.calls / (double)entities : 0.0, (double)a_new.calls / (double)s.n,
	       (unsigned long long)a_new.chunks);
	printf("hotpath allocs (c2) steady state: %llu calls, %llu frees in %.0f re-applied events: %.6f per event"
	       " (%llu arena-sized >= 256 KiB: %.6f per event; other: %.6f per event); %.1f bytes requested per "
	       "event; entities %zu -> %zu\n",
	       (unsigned long long)a_steady.calls, (unsigned long long)a_steady.frees, n_dec,
	       (double)a_steady.calls / n_dec, (unsigned long long)a_steady.chunks, (double)a_steady.chunks / n_dec,
	       (double)(a_steady.calls - a_steady.chunks) / n_dec, (double)a_steady.bytes / n_dec, entities,
	       entities_after);
	printf("hotpath memory: %zu entities held; heap %.1f MiB = %.0f bytes/entity; RSS +%.1f MiB = %.0f "
	       "bytes/entity (after the final flush)\n",
	       entities, (double)heap_per_state / 1048576.0, entities ? (double)heap_per_state / (double)entities : 0.0,
	       (double)rss_per_state / 1048576.0, entities ? (double)rss_per_state / (double)entities : 0.0);
	printf("hotpath memory: %zu distinct records (topic, id) in the stream: heap %.0f bytes/record\n", records,
	       records ? (double)heap_per_state / (double)records : 0.0);
	static const char *const fam[QS_TOPIC_COUNT] = {"encounters only", "deliveries only", "member events only"};
	for (int topic = 0; topic < QS_TOPIC_COUNT; topic++)
		if (by_topic[topic])
			printf("hotpath memory %-20s %8zu entities, heap %.1f MiB = %.0f bytes/entity\n", fam[topic],
			       fam_entities[topic], (double)fam_heap[topic] / 1048576.0,
			       fam_entities[topic] ? (double)fam_heap[topic] / (double)fam_entities[topic] : 0.0);
	/* One line for scripts. */
	printf("hotpath-summary events=%zu a_ns=%.2f b_ns=%.2f c1_ns=%.2f c2_ns=%.2f b_ratio=%.3f c1_ratio=%.3f "
	       "c2_ratio=%.3f c2_allocs_per_event=%.6f c2_other_allocs_per_event=%.6f c1_allocs_per_new_entity=%.4f "
	       "entities=%zu heap_bytes_per_entity=%.0f rss_bytes_per_entity=%.0f records=%zu heap_bytes_per_record=%.0f "
	       "sink=%llu\n",
	       s.n, base_ns, tb.median * 1e9 / (double)s.n, tc1.median * 1e9 / (double)s.n,
	       tc2.median * 1e9 / (double)s.n, tb.median / ta.median, tc1.median / ta.median, tc2.median / ta.median,
	       (double)a_steady.calls / n_dec, (double)(a_steady.calls - a_steady.chunks) / n_dec,
	       entities ? (double)a_new.calls / (double)entities : 0.0, entities,
	       entities ? (double)heap_per_state / (double)entities : 0.0,
	       entities ? (double)rss_per_state / (double)entities : 0.0, records,
	       records ? (double)heap_per_state / (double)records : 0.0, (unsigned long long)(b->sink & 0xff));
	rc = 0;
done:
	state_free(st);
	if (b)
		decode_free(b->dec);
	registry_free(reg);
	free(b);
	free(s.msgs);
	free(s.bytes);
	return rc;
}
