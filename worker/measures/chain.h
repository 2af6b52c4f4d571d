/*
 * chain.h: encounter chains (README "Identity, corrections and voids"), kept
 * the same way by every family that reads encounters (CW13, CAW7). Each
 * encounter_id's latest version is one record; an original and the records
 * that name it, or name a record already in its chain, share one chain.
 *
 * A family keeps its own fields by embedding struct chain_record as the first
 * member of its record type and struct chain as the first member of its chain
 * type; struct chains allocates that many bytes, zeroed, in the family's arena.
 */
#ifndef QS_CHAIN_H
#define QS_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "event.h"
#include "hashmap.h"

struct chain;

struct chain_record {
	struct chain_record *next; /* next record of the same chain */
	struct chain *chain;
	int64_t offset; /* offset of this version: "latest" means highest */
	enum qs_frequency frequency;
};

struct chain {
	const char *root; /* encounter_id of the original */
	struct chain_record *records;
};

struct chains {
	struct hashmap records; /* encounter_id -> record of record_size bytes */
	struct hashmap chains;  /* original's encounter_id -> chain of chain_size bytes */
	size_t record_size;     /* sizeof the family's record type, at least sizeof(struct chain_record) */
	size_t chain_size;      /* sizeof the family's chain type, at least sizeof(struct chain) */
};

/* The record of encounter_id (its latest version), or NULL. */
struct chain_record *chains_record(const struct chains *cs, const char *encounter_id);

/*
 * The chain e belongs to: its own for an original, else the chain of the
 * record it names (or, when that record has not arrived, the chain rooted at
 * the named id). A new chain is created empty in arena.
 */
struct chain *chains_chain_for(struct chains *cs, struct arena *arena, const struct qs_encounter *e);

/*
 * Makes r the latest version of e, read at offset, in chain c: moves it out
 * of its previous chain, sets offset and frequency. r NULL: creates e's record
 * in arena first, and if records that name e arrived before it (a void of a
 * replacement read before the replacement, or restored in offset order after
 * a redelivery), moves them from the chain they started into c, so a chain
 * does not depend on the order its records were read in. *absorbed is that
 * emptied chain (the family recounts it), else NULL. Returns the record; the
 * family fills its own fields.
 */
struct chain_record *chains_put(struct chains *cs, struct arena *arena, struct chain_record *r,
				const struct qs_encounter *e, int64_t offset, struct chain *c,
				struct chain **absorbed);

/*
 * Reads a chain. Returns false when it holds a VOID record: it counts nowhere,
 * and both outputs are NULL. Else *original is the original (NULL while it has
 * not arrived) and *content the record whose clinical content the chain has:
 * its latest replacement, else the original, else NULL.
 */
bool chain_current(const struct chain *c, const struct chain_record **original,
		   const struct chain_record **content);

/* Frees the index tables (records and chains live in the family's arena). */
void chains_free(struct chains *cs);

#endif
