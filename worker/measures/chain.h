/*
 * chain.h: encounter chains (README "Identity, corrections and voids"), one
 * graph per partition shared by every family that reads encounters (CW13,
 * CAW7): the state module puts each encounter version into it and the
 * families read it, before and after, through struct chain_change.
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
 * `present`, always a root), numbered by the partition's encounter idmap, so
 * the id is stored once and a node is its number in a slab. Each node keeps
 * the compact latest version of its record (what the families' rules read),
 * its out-edge (parent), its reverse edges (children: the records naming it,
 * linked through sibling) and its root's chain, cached; links are node
 * numbers, CHAIN_NIL for none. When a record arrives or its latest version
 * changes its edge, only its in-tree (the records whose path to the root runs
 * through it) is re-rooted: every root that changes lies in it, so at most two
 * chains change, the one it leaves and the one it joins, and the families
 * re-derive exactly those.
 *
 * Chains are numbered too; a family keeps per-chain fields in its own slab
 * indexed by chain number. A chain belongs to its root node for as long as
 * that node is a root; a chain left empty when its root gets an out-edge is
 * recycled for the next new root, so flipping a record's frequency back and
 * forth does not grow memory. The families leave an emptied chain's fields
 * as a new one's (zero): they re-derive it, and an empty chain counts nowhere.
 */
#ifndef QS_CHAIN_H
#define QS_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "event.h"
#include "hashmap.h"

#define CHAIN_NIL UINT32_MAX

/* One node: the latest version of an encounter record, or a placeholder. 48 bytes. */
struct chain_node {
	int64_t offset;                     /* of this version: "latest" means highest */
	uint32_t parent, children, sibling; /* node numbers, CHAIN_NIL for none */
	uint32_t chain;                     /* its root's chain (cached) */
	uint32_t plan;                      /* interned plan_id */
	uint32_t member;                    /* member_id's number in the partition's names */
	int32_t service_to;
	int32_t submitted_day; /* QS_NO_DATE while owed */
	uint8_t frequency;     /* enum qs_frequency */
	uint8_t source;        /* enum qs_source */
	bool ed_visit;
	bool present; /* false: a placeholder, named but not arrived */
};

struct chains {
	struct idmap ids;  /* encounter_id -> node number */
	struct slab nodes; /* struct chain_node by node number */
	struct slab roots; /* uint32_t by chain number: its root node, or (recycled) the next spare chain */
	uint32_t spare;    /* first recycled chain, CHAIN_NIL if none */
	size_t records;    /* present nodes */
};

/* An empty set of chains. */
void chains_init(struct chains *cs);

static inline struct chain_node *chains_node(const struct chains *cs, uint32_t n)
{
	return slab_at(&cs->nodes, n);
}

/* The encounter_id of a node. */
static inline const char *chains_id(const struct chains *cs, uint32_t n)
{
	return idmap_str(&cs->ids, n);
}

/* Chain numbers given so far: a family's per-chain slab covers 0 .. chains_count - 1. */
static inline uint32_t chains_count(const struct chains *cs)
{
	return cs->roots.len;
}

/* The root node of chain c. */
static inline uint32_t chains_root(const struct chains *cs, uint32_t c)
{
	return *(const uint32_t *)slab_at(&cs->roots, c);
}

/*
 * What putting one version changes. chains_begin fills it without changing
 * anything, so the families can read the chains as they were:
 *   record: the node of the version's encounter_id (present or not yet);
 *   from:   the chain that node is in now, CHAIN_NIL for an id never seen;
 *   to:     the chain it will be in, when that chain exists now (it may be
 *           `from`); CHAIN_NIL when it will root a chain of its own that does
 *           not exist yet (its contributions before are none).
 * chains_commit makes the version the record's latest and sets `to` to the
 * chain it is now in; `from`, if different, may have lost records (and, when
 * its root got an out-edge, all of them). The families re-derive both, then
 * the state module calls chains_end.
 */
struct chain_change {
	uint32_t record;
	uint32_t from, to;
	uint32_t named; /* the node the version names, CHAIN_NIL for an ORIGINAL */
	bool moves;     /* its out-edge changes: its in-tree is re-rooted */
};

/* Creates e's node and the node it names as needed; see struct chain_change. Aborts on OOM. */
void chains_begin(struct chains *cs, const struct qs_encounter *e, struct chain_change *ch);

/*
 * Makes e, read at offset, the latest version of ch->record, with its plan
 * and member numbered by the caller.
 */
void chains_commit(struct chains *cs, struct chain_change *ch, const struct qs_encounter *e, int64_t offset,
		   uint32_t plan, uint32_t member);

/* The families have re-derived ch's chains: a chain that commit left empty is recycled. */
void chains_end(struct chains *cs, struct chain_change *ch);

/*
 * Reads chain c. Returns false when it holds a VOID record: it counts
 * nowhere, and both outputs are CHAIN_NIL. Else *original is the original
 * (CHAIN_NIL while it has not arrived, and for a cycle) and *content the
 * record whose clinical content the chain has: its latest replacement, else
 * the original, else CHAIN_NIL. An emptied chain holds nothing: true, both
 * CHAIN_NIL.
 */
bool chain_current(const struct chains *cs, uint32_t c, uint32_t *original, uint32_t *content);

void chains_free(struct chains *cs);

#endif
