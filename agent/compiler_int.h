/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compiler_int.h - the compiler's internal state, shared by compiler.c
 * (events, endpoints, endpoint policies), identity.c (identities and the
 * peer-selector cache) and cidrclass.c (ipBlocks and CIDR classes).
 * Not for use outside the compiler.
 */
#ifndef VAKT_COMPILER_INT_H
#define VAKT_COMPILER_INT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "htab.h"

/* A growable array of pointers. */
struct vec {
	void **v;
	size_t n, cap;
};

static inline int vec_push(struct vec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		void **nv = realloc(v->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

/* Removes one occurrence of p (order not kept); 0 or -ENOENT. */
static inline int vec_del(struct vec *v, const void *p)
{
	size_t i;

	for (i = v->n; i-- > 0;) {
		if (v->v[i] == p) {
			v->v[i] = v->v[--v->n];
			return 0;
		}
	}
	return -ENOENT;
}

static inline void vec_free(struct vec *v)
{
	free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

/* A growable list of ids; err is set (and the id dropped) when memory runs out. */
struct idlist {
	uint32_t *v;
	size_t n, cap;
	int err;
};

void idlist_add(struct idlist *l, uint32_t id);

/*
 * Ids of one space that the pinned maps of a previous agent use (see
 * compiler_seed.c). While attached to an allocator they are reserved: never
 * handed out for new content, only adopted (idalloc_take) by content whose
 * meaning the full compile then verifies to be the same.
 */
#define IDS_TAKEN 1  /* adopted and in use */
#define IDS_BANNED 2 /* adoption proved inconsistent: reserve only */
#define IDS_QUAR 4   /* freed, in the allocator's quarantine */
#define IDS_FILL_MAX (1U << 22) /* ids accounted for by the gap fill, see idalloc_seed() */

struct idseed {
	uint32_t *ids;   /* sorted, unique */
	uint8_t *st;     /* IDS_* */
	uint32_t *cnt_a; /* addresses (identities) or prefixes (classes) the maps give it */
	uint32_t *cnt_b; /* the same in the new compile, while verifying */
	size_t n;
	uint32_t fill_max; /* ids up to here are below the allocator's counter */
};

long idseed_find(const struct idseed *s, uint32_t id); /* index or -1 */

/*
 * Ids handed out from [first, max], reused after release.
 *
 * A released id is quarantined until the tables' journal has been drained:
 * the map writer applies a batch make-before-break (puts, endpoint records,
 * then deletes), so an id freed and given to new content within one batch
 * would, between the puts and the deletes, carry entries of both meanings
 * at once. idalloc_settle() ends the quarantine; the compiler calls it only
 * when the journal is empty, i.e. the maps hold exactly the tables, which no
 * longer mention the freed ids.
 */
struct idalloc {
	uint32_t first, next, max;
	struct idlist free; /* reusable now; the last freed first */
	struct idlist quar; /* freed since the last drain, oldest first */
	struct idseed *seed; /* reservations in force, or NULL */
	int soft;            /* when exhausted, a reserved or quarantined id rather than none */
};

uint32_t idalloc_get(struct idalloc *a); /* 0: exhausted or no memory */
/* want if it is a reserved id free for adoption, else any id; 0 as idalloc_get. */
uint32_t idalloc_get_pref(struct idalloc *a, uint32_t want);
void idalloc_put(struct idalloc *a, uint32_t id);
/* The quarantined ids become reusable: their batch has been applied. */
void idalloc_settle(struct idalloc *a);
void idalloc_fini(struct idalloc *a);
/* Attaches reservations to a fresh allocator; detaching frees the unused ones. */
void idalloc_seed(struct idalloc *a, struct idseed *s);
void idalloc_unseed(struct idalloc *a);

/* A pointer table indexed by id - base: id -> object for dumps and lookups. */
struct idmap {
	void **v;
	size_t n;
};

int idmap_set(struct idmap *m, size_t idx, void *p);
static inline void *idmap_get(const struct idmap *m, size_t idx)
{
	return idx < m->n ? m->v[idx] : NULL;
}

/* A pod label set: shared by every pod with equal labels, namespace and named ports. */
struct ident {
	uint64_t hash;
	uint32_t id;
	uint32_t refs;   /* pods */
	int ns_known;    /* the namespace object existed: rep_ns is real, not synthesized */
	struct vakt_pod rep;          /* representative: ns, labels, ports (owned) */
	struct vakt_namespace rep_ns; /* name (shares rep.ns), labels (owned) */
	struct vec sels;              /* selectors whose matched set holds this identity */
	struct idns *bucket;
	size_t bidx;                  /* position in bucket->idents */
};

/* Identities of one namespace, for selector matching. */
struct idns {
	uint64_t hash;
	char *ns;
	struct vec idents;
	struct vec sels; /* podSelector-only peer selectors of policies in this namespace */
};

enum sel_kind {
	SEL_PEER,     /* podSelector and/or namespaceSelector of a policy peer */
	SEL_PORTNAME, /* identities that have a named port (name, proto) */
};

/* A distinct peer selector with the identities it selects (cached). */
struct sel {
	uint64_t hash;
	char *key; /* canonical text: kind, policy namespace, selectors */
	enum sel_kind kind;
	char *policy_ns;
	struct vakt_peer peer; /* owned selector copies, has_ipblock = 0 */
	char *pname;
	uint8_t pproto;
	uint32_t refs;         /* endpoint policies depending on it */
	struct vakt_htab idents; /* matched identities */
	struct vec users;      /* endpoint policies (one entry per dependency) */
};

/* An ipBlock of a local endpoint policy, interned by content. */
struct cblock {
	uint64_t hash;
	char *text; /* canonical: cidr then sorted excepts */
	struct vakt_ipblock b;
	uint32_t refs;
	uint32_t named_refs; /* egress rules combining it with a named port */
	struct vec classes;  /* classes whose content includes this block */
	struct vec users;    /* endpoint policies (one entry per dependency) */
};

/*
 * The named container ports of the pod at one address, restricted to the
 * names that egress rules combining an ipBlock with a named port use: what
 * such a rule needs to know of the destination besides its address. Part of
 * the CIDR class of the address's /128 prefix. Interned by content.
 */
struct csig {
	uint64_t hash;
	char *text; /* canonical: name/proto/port,... in port order */
	uint32_t refs; /* addresses and classes */
	size_t nports;
	struct vakt_named_port *ports; /* owned, sorted by name then proto then port */
};

/* A name used by egress rules that combine ipBlocks with named ports. */
struct pname {
	uint64_t hash;
	char *name;
	uint32_t refs;
};

/* A CIDR class: a set of ipBlocks (and a pod's named ports), numbered by content. */
struct cclass {
	uint64_t hash;
	uint32_t id;
	uint32_t refs; /* prefixes with this class */
	size_t nb;
	struct cblock **b; /* sorted by address */
	struct csig *sig;  /* NULL, or the named ports of the pod at a /128 prefix */
};

/* A prefix of the cidr table and its class. */
struct cpfx {
	uint64_t hash;
	struct vakt_cidr c;
	struct cclass *cls;
	unsigned int mark;
	uint8_t written;  /* the cidr table holds it */
	uint8_t is_block; /* a cidr or except of a live block */
	uint8_t is_addr;  /* the /128 of a pod address carrying a signature */
};

/* One compiled policy entry of an endpoint policy (the key without the policy id). */
struct pentry {
	uint32_t peer;
	uint16_t port; /* network order, masked to plen */
	uint8_t proto;
	uint8_t plen;
	uint32_t rule;
	uint32_t seq; /* generation order: the lowest wins among equal keys */
};

struct cpol;

enum epol_dirty {
	EPOL_DIRTY_ENTRIES = 1, /* identities, classes changed */
	EPOL_DIRTY_DEPS = 2,    /* new, or a policy's content changed */
	EPOL_DIRTY_IDENT = 4,   /* only the entries of the identities in dirty_ids */
};

/* What changed about an endpoint policy in the current batch (struct epol, bflags). */
enum epol_batch {
	EPOL_B_USERS = 1, /* an endpoint that has a record in the maps joined or left it */
	EPOL_B_ENTS = 2,  /* entries were written under its id */
};

/* Beyond this many changed identities an endpoint policy is recomputed whole. */
#define EPOL_DIRTY_IDS_MAX 64

/* An endpoint policy: the effective policy of local pods with equal inputs. */
struct epol {
	uint64_t hash;
	uint32_t id;
	uint8_t dir;
	uint8_t dirty;   /* enum epol_dirty bits */
	uint8_t queued;  /* in c->dirty_epols */
	uint8_t failed;  /* an entry could not be written: users fail closed */
	uint8_t bflags;  /* enum epol_batch bits, valid when bgen is the current batch */
	uint8_t renum;   /* in c->renumber */
	uint32_t bgen;   /* batch of bflags */
	uint32_t fresh;  /* batch in which its id was allocated: not in the maps before it */
	uint32_t kinds;  /* VAKT_EPF_{ID,CLASS,ANY}(0) bits of its entries */
	size_t npols;
	struct cpol **pols; /* sorted by name (one namespace) */
	size_t nports;
	struct vakt_named_port *ports; /* ingress with named ports: the pods' ports */
	struct vec users;   /* struct cep */
	struct vec dsels;   /* struct sel it depends on, in rule walk order */
	struct vec dblocks; /* struct cblock it depends on, in rule walk order */
	struct vec dnamed;  /* struct cblock with a named_refs held (egress ipBlock + named port) */
	struct vec dpnames; /* struct pname held, likewise */
	size_t nents;
	struct pentry *ents; /* sorted by key, as written to the table */
	size_t ndirty_ids;
	uint32_t dirty_ids[EPOL_DIRTY_IDS_MAX];
};

struct cpol {
	uint64_t hash;
	char *ns, *name;
	const struct vakt_policy *pol; /* the store's object; NULL once deleted */
	size_t nrules[VAKT_DIR_MAX];
	uint32_t *rule_ids[VAKT_DIR_MAX];
	struct vec epols;
	uint8_t dead;
};

struct rref {
	struct cpol *p;
	uint8_t dir;
	uint32_t index;
};

struct cpod;

/* A local endpoint. */
struct cep {
	struct cpod *pod;
	uint32_t ep_id; /* 0: none could be allocated (fails closed) */
	uint32_t born;  /* batch in which it appeared: no record in the maps before it */
	struct epol *epol[VAKT_DIR_MAX];
	struct vakt_ep_val val;
	uint8_t val_valid;
	uint8_t queued;
	uint8_t was_failed;
	uint8_t no_epol[VAKT_DIR_MAX]; /* isolated, but no endpoint policy could be made */
};

struct cpod {
	uint64_t hash;
	char *ns, *name;
	const struct vakt_pod *pod; /* the store's object */
	struct ident *id;
	size_t naddr;
	struct vakt_addr addrs[VAKT_POD_MAX_IPS];
	struct cep *ep;
};

/* Everything the tables know about one address. */
struct caddr {
	uint64_t hash;
	struct vakt_addr a;
	int host;
	struct vec owners; /* struct cpod with this address */
	struct cpod *ipo;  /* the owner whose identity the ipcache holds, NULL if none */
	struct csig *sig;  /* its /128 cidr prefix carries these named ports; NULL: no prefix */
	uint8_t ip_written, ep_written;
	struct vakt_ip_val ipv;
	struct vakt_ep_val epv;
};

struct vakt_compiler {
	struct vakt_store *s;
	char *node;
	struct vakt_tables *t;

	struct vakt_htab idents; /* struct ident by content */
	struct vakt_htab idns;   /* struct idns by namespace */
	struct idalloc ident_ids;
	struct idmap ident_by_id; /* id - VAKT_ID_FIRST_POD */

	struct vakt_htab sels;    /* struct sel by key */
	struct vec global_sels;   /* selectors that can match any namespace */

	struct vakt_htab blocks;  /* struct cblock by text */
	struct vakt_htab classes; /* struct cclass by content */
	struct vakt_htab pfx;     /* struct cpfx by prefix */
	struct idalloc class_ids;
	struct idmap class_by_id;
	struct cclass class0;
	struct vakt_htab sigs;    /* struct csig by text */
	struct vakt_htab pnames;  /* struct pname by name */
	struct vec named_blocks;  /* live blocks with named_refs, as of the last class pass */
	size_t nsig_addrs;        /* addresses with a signature prefix */
	int blocks_dirty;
	int sig_dirty;            /* the named blocks or names changed: a class pass is due */
	int in_class_pass;        /* classes_update() relinks and recomputes everything itself */
	int cidr_failed;
	unsigned int pfx_mark;

	struct vakt_htab cpols;
	struct vec dead_cpols;
	struct idalloc rule_ids;
	struct idmap rules; /* struct rref */

	struct vakt_htab epols;
	struct idalloc epol_ids;
	struct idmap epol_by_id;
	struct vec dirty_epols;
	struct vec failed_epols;
	struct vec renumber; /* endpoint policies to move to a fresh id, see epol_batch_note() */
	/*
	 * The batch being compiled: incremented when an event finds the journal
	 * empty (the maps then hold the tables) and after a full compile.
	 */
	uint32_t batch;
	uint64_t ents_written; /* policy entry puts and deletes, to see which recompute wrote */
	/* Addresses whose endpoint record was deleted in batch gone_batch: a pod
	 * appearing at one of them replaces a record the maps still hold. */
	struct vakt_addr *gone;
	size_t ngone, gone_cap;
	uint32_t gone_batch;

	struct vakt_htab cpods;
	struct vakt_htab addrs;
	struct vakt_addr *host; /* this node's addresses (configuration, kept across rebuilds) */
	size_t nhost;
	struct idalloc ep_ids;
	struct idmap ep_by_id;
	struct vec dirty_eps;
	size_t nlocal;

	int table_deletes; /* policy entries deleted in this flush: retry failed ones */
	struct cseed *seed; /* ids of the pinned maps, until vakt_compiler_release_seed() */
	struct vakt_compiler_stats st;
};

/* What the pinned maps hold, for the first full compile after a restart. */
struct cseed {
	struct vakt_tables *t; /* their content; freed once adoption is verified */
	struct idseed ident, cls, epol, ep;
	struct pkent *pk;      /* policy entries sorted by policy id, then key */
	size_t npk;
	int no_adopt;          /* last resort: reserve everything, adopt nothing */
};

struct pkent {
	uint32_t policy, peer;
	uint16_t port;
	uint8_t proto, plen, action;
};

/* identity.c: named container port lists (sorted; names owned by the list) */
uint64_t nports_hash(uint64_t h, const struct vakt_named_port *p, size_t n);
int nports_eq(const struct vakt_named_port *a, size_t na, const struct vakt_named_port *b,
	      size_t nb);
/* *out = a deep copy of p (NULL when n == 0); 0 or -ENOMEM (nothing allocated then). */
int nports_dup(struct vakt_named_port **out, const struct vakt_named_port *p, size_t n);
void nports_free(struct vakt_named_port *p, size_t n);
/* "name/proto/port,...": the canonical text of dumps and signatures. */
void nports_print(FILE *f, const struct vakt_named_port *p, size_t n);

/* identity.c */
struct ident *ident_get(struct vakt_compiler *c, const struct vakt_pod *pod,
			const struct vakt_namespace *ns);
void ident_put(struct vakt_compiler *c, struct ident *id);
/* Acquire a selector for endpoint policy user (recorded in sel->users); NULL on ENOMEM. */
struct sel *sel_get_peer(struct vakt_compiler *c, const struct vakt_peer *peer,
			 const char *policy_ns, struct epol *user);
struct sel *sel_get_portname(struct vakt_compiler *c, const char *name, uint8_t proto,
			     struct epol *user);
void sel_put(struct vakt_compiler *c, struct sel *s, struct epol *user);
int sel_has(const struct sel *s, const struct ident *id);
int ident_desc(const struct ident *id, char **out);
void identity_fini(struct vakt_compiler *c);

/* cidrclass.c */
struct cblock *block_get(struct vakt_compiler *c, const struct vakt_ipblock *b, struct epol *user);
void block_put(struct vakt_compiler *c, struct cblock *b, struct epol *user);
void block_named_ref(struct vakt_compiler *c, struct cblock *b, int delta);
struct pname *pname_get(struct vakt_compiler *c, const char *name);
void pname_put(struct vakt_compiler *c, struct pname *n);
/* Keeps the /128 prefix of an address (signature class) current after its owner changed. */
void addr_sig_update(struct vakt_compiler *c, struct caddr *r);
/* Drops the signature of an address about to be freed. */
void addr_sig_clear(struct vakt_compiler *c, struct caddr *r);
/* Canonical text of an ipBlock (also the dump's form). */
char *block_text(const struct vakt_ipblock *b);
int classes_update(struct vakt_compiler *c);
int class_desc(const struct cclass *cl, char **out);
void cidrclass_fini(struct vakt_compiler *c);

/* compiler_seed.c: adoption candidates (0: none) and verification */
uint32_t seed_want_ident(const struct vakt_compiler *c, const struct vakt_pod *pod);
uint32_t seed_want_class(const struct vakt_compiler *c, const struct vakt_cidr *p);
uint32_t seed_want_epol(const struct vakt_compiler *c, const struct vakt_pod *pod, int dir);
uint32_t seed_want_ep(const struct vakt_compiler *c, const struct vakt_pod *pod);
void seed_attach(struct vakt_compiler *c);
/* After a full compile: bans adoptions whose meaning differs; returns how many. */
size_t seed_verify(struct vakt_compiler *c);
void seed_done_adopting(struct vakt_compiler *c);

/* compiler.c */
struct caddr *caddr_find(const struct vakt_compiler *c, const struct vakt_addr *a);
void epol_mark(struct vakt_compiler *c, struct epol *e, int why);
/* Only the entries whose peer is identity id can have changed. */
void epol_mark_ident(struct vakt_compiler *c, struct epol *e, uint32_t id);
void eps_mark_all(struct vakt_compiler *c);
void compiler_error(struct vakt_compiler *c);

#endif /* VAKT_COMPILER_INT_H */
