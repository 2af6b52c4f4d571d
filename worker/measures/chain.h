/*
 * chain.h: encounter chains (README "Identity, corrections and voids"), kept
 * the same way by every family that reads encounters (CW13, CAW7).
 *
 * Chain membership is a pure function of the set of latest versions, never of
 * the order they arrived in, so that a worker that restores the latest
 * versions (in offset order) rebuilds the chains it had live. The records form
 * a functional graph: every record that is not an ORIGINAL has one out-edge,
 * to the id its original_encounter_id names; an ORIGINAL has none. A record's
 * root is where following the edges ends: an ORIGINAL (its own id), an id no
 * record has arrived for (the missing original), or a cycle (the cycle's
 * smallest id by strcmp: the chain has no original). A chain is the records
 * that share a root.
 *
 * Nodes: one per id that has a record or is named by one (a placeholder: not
 * `present`, always a root). Each node keeps its out-edge (parent), its
 * reverse edges (children: the records naming it, linked through sibling) and
 * its root's chain, cached. When a record arrives or its latest version
 * changes its edge, only its in-tree (the records whose path to the root runs
 * through it) is re-rooted: every root that changes lies in it, so at most two
 * chains change, the one it leaves and the one it joins, and the family
 * re-derives exactly those.
 *
 * A family keeps its own fields by embedding struct chain_record as the first
 * member of its record type and struct chain as the first member of its chain
 * type; struct chains allocates that many bytes, zeroed, in the family's
 * arena. A chain belongs to its root node for as long as that node is a root;
 * a chain left empty when its root gets an out-edge is recycled (zeroed) for
 * the next new root, so flipping a record's frequency back and forth does not
 * grow memory.
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
	struct chain *chain;           /* its root's chain (cached) */
	struct chain_record *parent;   /* the node it names; NULL: a root (an ORIGINAL or a placeholder) */
	struct chain_record *children; /* the records that name it */
	struct chain_record *sibling;  /* the next record naming the same node */
	int64_t offset;                /* offset of this version: "latest" means highest */
	enum qs_frequency frequency;
	bool present; /* false: a placeholder, named but not arrived */
};

struct chain {
	const char *root; /* the root's encounter_id (the node's own copy) */
	union {
		struct chain_record *node; /* the root node, while the chain is in use */
		struct chain *next_spare;  /* once recycled */
	};
};

struct chains {
	struct hashmap nodes; /* encounter_id -> node of record_size bytes, placeholders included */
	struct chain *spare;  /* emptied chains, reused before allocating */
	size_t records;       /* present nodes */
	size_t record_size;   /* sizeof the family's record type, at least sizeof(struct chain_record) */
	size_t chain_size;    /* sizeof the family's chain type, at least sizeof(struct chain) */
};

/* The record of encounter_id (its latest version), or NULL before it arrives. */
struct chain_record *chains_record(const struct chains *cs, const char *encounter_id);

/*
 * What putting one version changes. chains_begin fills it without changing
 * anything, so the family can read the chains as they were:
 *   record: the node of the version's encounter_id (present or not yet);
 *   from:   the chain that node is in now, NULL for an id never seen;
 *   to:     the chain it will be in, when that chain exists now (it may be
 *           `from`); NULL when it will root a chain of its own that does not
 *           exist yet (its contributions before are none).
 * chains_commit makes the version the record's latest and sets `to` to the
 * chain it is now in; `from`, if different, may have lost records (and, when
 * its root got an out-edge, all of them). The family re-derives both, then
 * calls chains_end.
 */
struct chain_change {
	struct chain_record *record;
	struct chain *from, *to;
	struct chain_record *named; /* the node the version names, NULL for an ORIGINAL */
	bool moves;                 /* its out-edge changes: its in-tree is re-rooted */
};

/* Creates e's node and the node it names as needed (in arena); see struct chain_change. */
void chains_begin(struct chains *cs, struct arena *arena, const struct qs_encounter *e, struct chain_change *ch);

/* Makes e, read at offset, the latest version of ch->record; returns it, for the family to fill. */
struct chain_record *chains_commit(struct chains *cs, struct arena *arena, struct chain_change *ch,
				   const struct qs_encounter *e, int64_t offset);

/* The family has re-derived ch's chains: a chain that commit left empty is recycled. */
void chains_end(struct chains *cs, struct chain_change *ch);

/*
 * Reads a chain. Returns false when it holds a VOID record: it counts nowhere,
 * and both outputs are NULL. Else *original is the original (NULL while it has
 * not arrived, and for a cycle) and *content the record whose clinical content
 * the chain has: its latest replacement, else the original, else NULL. An
 * emptied chain holds nothing: true, both NULL.
 */
bool chain_current(const struct chain *c, const struct chain_record **original,
		   const struct chain_record **content);

/* Frees the index table (nodes and chains live in the family's arena). */
void chains_free(struct chains *cs);

#endif
