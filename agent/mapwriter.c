// SPDX-License-Identifier: Apache-2.0
/*
 * The map writer: compiled tables -> pinned BPF maps, make-before-break.
 *
 * Order of every batch (apply and reconcile alike):
 *   1. puts of policy, cidr, ipcache entries  (new allows exist before use)
 *   2. puts of endpoint records               (the atomic switch per pod)
 *   3. deletes of endpoints, then ipcache, cidr, policy entries
 *   4. state.gen++ if access may have been revoked (conntrack re-checks)
 * A failed write in step 1 leaves an endpoint policy incomplete: before step
 * 2, every endpoint using it is written with VAKT_EPF_FAIL_CLOSED, so an
 * incomplete policy never decides a verdict. A failed deletion in step 3
 * (a stale entry may still allow) marks its users the same way before step
 * 4. The next apply reconciles fully and lifts the mark once the maps match.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "log.h"
#include "mapwriter.h"

struct batch {
	struct vakt_dataplane *dp;
	struct vakt_tables *t;
	const struct vakt_compiler *c;
	int err;          /* first error, returned by apply/reconcile */
	int revoked;      /* bump the generation at the end */
	int new_failures; /* failures recorded in step 1 of this batch */
	int late_failures; /* failed deletions in step 3: endpoints to fail closed at the end */
	int switched;     /* step 1 is over: fail-closed marks are written */
	int ep_deleted;
	int deleted;      /* something was deleted: room may have been freed */
};

static int is_full(int err)
{
	return err == -E2BIG || err == -ENOSPC;
}

static int policy_failed(const struct vakt_dataplane *dp, uint32_t pol)
{
	for (size_t i = 0; i < dp->nfailed_pol; i++)
		if (dp->failed_pol[i] == pol)
			return 1;
	return 0;
}

static void add_failed_policy(struct vakt_dataplane *dp, uint32_t pol)
{
	uint32_t *p;

	if (policy_failed(dp, pol))
		return;
	if (dp->nfailed_pol == dp->capfailed_pol) {
		size_t cap = dp->capfailed_pol ? dp->capfailed_pol * 2 : 16;

		p = realloc(dp->failed_pol, cap * sizeof(*p));
		if (!p) {
			/* Without the record the endpoint cannot be marked: fail every endpoint. */
			dp->cidr_failed = 2;
			return;
		}
		dp->failed_pol = p;
		dp->capfailed_pol = cap;
	}
	dp->failed_pol[dp->nfailed_pol++] = pol;
}

static int ep_fails_closed(const struct vakt_dataplane *dp, const struct vakt_ep_val *ep)
{
	if (dp->cidr_failed == 2)
		return 1;
	for (int dir = 0; dir < VAKT_DIR_MAX; dir++) {
		if (ep->policy[dir] && policy_failed(dp, ep->policy[dir]))
			return 1;
		if (dp->cidr_failed && ep->policy[dir] && (ep->flags & VAKT_EPF_CLASS(dir)))
			return 1;
	}
	return 0;
}

/* The record as it goes into the map: the compiler's, plus our fail-closed mark. */
static void ep_desired(const struct vakt_dataplane *dp, const struct vakt_ep_val *in,
		       struct vakt_ep_val *out)
{
	*out = *in;
	if (ep_fails_closed(dp, in))
		out->flags |= VAKT_EPF_FAIL_CLOSED;
}

static void addr_str(const struct vakt_addr *a, char *buf, size_t len)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (!memcmp(a->b, v4mapped, sizeof(v4mapped)))
		inet_ntop(AF_INET, &a->b[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
}

/*
 * A write or deletion the kernel refused. A failed write leaves an endpoint
 * policy incomplete; a failed deletion (other than ENOENT) leaves a stale
 * entry that may still allow what the tables no longer do. Either way the
 * users of a policy or cidr entry fail closed (before step 2 for writes,
 * at the end of the batch for deletions, which come after it), and the
 * next apply reconciles fully, which lifts the mark once the maps match. A
 * stale endpoint or ipcache entry belongs to a pod that is gone: the retry
 * is enough.
 */
static void record_failure(struct batch *b, enum vakt_table_id id, const void *key, int err,
			   int is_del)
{
	struct vakt_dataplane *dp = b->dp;
	const char *name = vakt_table_name(id);
	const char *what = is_del ? "map delete failed" : is_full(err) ? "map full" : "map write failed";
	char addr[INET6_ADDRSTRLEN], msg[96];

	dp->stats.map_errors++;
	if (!is_del && is_full(err))
		dp->stats.map_full++;
	if (!b->err)
		b->err = err;
	dp->retry = 1;
	switch (id) {
	case VAKT_T_POLICY: {
		const struct vakt_policy_key *k = key;

		snprintf(msg, sizeof(msg), "%s, failing endpoint policy closed", what);
		log_error(msg, "map=%s policy=%u peer=0x%x proto=%u port=%u prefixlen=%u err=%d", name,
			  k->policy, k->peer, k->proto, ntohs(k->port), k->prefixlen, err);
		add_failed_policy(dp, k->policy);
		break;
	}
	case VAKT_T_CIDR:
		snprintf(msg, sizeof(msg), "%s, failing endpoints with ipBlock peers closed", what);
		log_error(msg, "map=%s err=%d", name, err);
		dp->cidr_failed = 1;
		break;
	default:
		/*
		 * A missing ipcache address resolves to the world identity: it can
		 * only lose access. A missing endpoint record leaves the pod not
		 * enforced at all: loudest possible.
		 */
		addr_str(key, addr, sizeof(addr));
		snprintf(msg, sizeof(msg), "%s, %s", what,
			 is_del ? "will retry" :
			 id == VAKT_T_IPCACHE ? "address not resolvable to its identity" :
						"endpoint record not written: pod unenforced");
		log_error(msg, "map=%s addr=%s err=%d", name, addr, err);
		return;
	}
	if (is_del)
		b->late_failures = 1;
	else
		b->new_failures = 1;
}

static void trace(struct vakt_dataplane *dp, enum vakt_table_id id, int is_del, const void *key)
{
	if (dp->write_hook)
		dp->write_hook(dp->write_hook_arg, vakt_table_name(id), is_del, key);
}

void vakt_dataplane_set_write_hook(struct vakt_dataplane *dp,
				   void (*hook)(void *arg, const char *map, int del, const void *key),
				   void *arg)
{
	dp->write_hook = hook;
	dp->write_hook_arg = arg;
}

/* Put: 1 if the key was new, 0 if it existed (value replaced), -errno. */
static int map_put(int fd, const void *key, const void *val)
{
	if (!bpf_map_update_elem(fd, key, val, BPF_NOEXIST))
		return 1;
	if (errno != EEXIST)
		return -errno;
	return bpf_map_update_elem(fd, key, val, BPF_EXIST) ? -errno : 0;
}

static int put(struct batch *b, enum vakt_table_id id, const void *key, const void *val)
{
	struct vakt_dataplane *dp = b->dp;
	int r = map_put(dp->table_fd[id], key, val);

	trace(dp, id, 0, key);
	if (r < 0) {
		record_failure(b, id, key, r, 0);
		return r;
	}
	if (r)
		dp->entries[id]++;
	return 0;
}

static int del(struct batch *b, enum vakt_table_id id, const void *key)
{
	struct vakt_dataplane *dp = b->dp;

	trace(dp, id, 1, key);
	if (bpf_map_delete_elem(dp->table_fd[id], key)) {
		int err = -errno;

		if (err == -ENOENT)
			return 0;
		record_failure(b, id, key, err, 1);
		return err;
	}
	if (dp->entries[id])
		dp->entries[id]--;
	b->revoked = 1;
	b->deleted = 1;
	return 0;
}

static void zero_counters(struct vakt_dataplane *dp, uint32_t ep_id)
{
	struct vakt_counter *zero = calloc((size_t)dp->ncpus, sizeof(*zero));

	if (!zero)
		return;
	for (uint32_t dir = 0; dir < VAKT_DIR_MAX; dir++) {
		for (uint32_t r = 0; r < VAKT_R_MAX; r++) {
			uint32_t k = vakt_counter_index(ep_id, dir, r);

			bpf_map_update_elem(dp->counters_fd, &k, zero, BPF_ANY);
		}
	}
	free(zero);
}

/* Learn what the map holds for ep_id the first time we look at it (after a restart). */
static void meta_load(struct vakt_dataplane *dp, uint32_t ep_id)
{
	if (dp->meta_state[ep_id])
		return;
	dp->meta_state[ep_id] =
		bpf_map_lookup_elem(dp->ep_meta_fd, &ep_id, &dp->meta[ep_id]) ? 2 : 1;
}

/* Names before the record: vakt status and metrics never see a nameless endpoint. */
static void ensure_meta(struct batch *b, uint32_t ep_id)
{
	struct vakt_dataplane *dp = b->dp;
	struct vakt_ep_meta m = {};

	if (!ep_id || ep_id >= VAKT_MAX_ENDPOINTS || !b->c)
		return;
	if (vakt_compiler_ep_meta(b->c, ep_id, &m))
		return;
	meta_load(dp, ep_id);
	if (dp->meta_state[ep_id] == 1 && !memcmp(&dp->meta[ep_id], &m, sizeof(m)))
		return;
	if (bpf_map_update_elem(dp->ep_meta_fd, &ep_id, &m, BPF_ANY)) {
		dp->stats.map_errors++;
		log_error("ep_meta write failed", "ep_id=%u ns=%s pod=%s err=%d", ep_id, m.ns, m.name,
			  -errno);
		return;
	}
	/* Another pod had this ep_id: its counters are not the new pod's. */
	if (dp->meta_state[ep_id] == 1)
		zero_counters(dp, ep_id);
	dp->meta[ep_id] = m;
	dp->meta_state[ep_id] = 1;
}

static int put_endpoint(struct batch *b, const void *key, const struct vakt_ep_val *val)
{
	struct vakt_ep_val want;

	ensure_meta(b, val->ep_id);
	ep_desired(b->dp, val, &want);
	return put(b, VAKT_T_ENDPOINTS, key, &want);
}

struct ep_scan {
	struct batch *b;
	uint8_t used[VAKT_MAX_ENDPOINTS];
};

static int mark_one(void *arg, const void *key, const void *val)
{
	struct batch *b = arg;
	const struct vakt_ep_val *ep = val;

	if (ep_fails_closed(b->dp, ep)) {
		put_endpoint(b, key, ep);
		b->revoked = 1;
	}
	return 0;
}

/* Before any endpoint switches to (or keeps using) an incomplete policy, fail it closed. */
static void mark_failed_endpoints(struct batch *b)
{
	vakt_tables_foreach(b->t, VAKT_T_ENDPOINTS, mark_one, b);
}

static void end_of_step1(struct batch *b)
{
	if (b->switched)
		return;
	b->switched = 1;
	if (b->new_failures)
		mark_failed_endpoints(b);
}

static int drain_cb(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	struct batch *b = arg;

	if (id >= VAKT_T_COUNT)
		return 0;
	if (!val || id == VAKT_T_ENDPOINTS)
		end_of_step1(b);
	if (!val) {
		if (id == VAKT_T_ENDPOINTS)
			b->ep_deleted = 1;
		del(b, id, key);
	} else if (id == VAKT_T_ENDPOINTS) {
		put_endpoint(b, key, val);
	} else {
		put(b, id, key, val);
	}
	/* Errors are recorded, not returned: the rest of the batch must still apply. */
	return 0;
}

static int used_cb(void *arg, const void *key, const void *val)
{
	struct ep_scan *s = arg;
	const struct vakt_ep_val *ep = val;

	(void)key;
	if (ep->ep_id < VAKT_MAX_ENDPOINTS)
		s->used[ep->ep_id] = 1;
	return 0;
}

/* Names and counters of ep_ids no endpoint uses any more go, so status does not list gone pods. */
static void prune_meta(struct batch *b)
{
	struct vakt_dataplane *dp = b->dp;
	struct ep_scan *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	s->b = b;
	vakt_tables_foreach(b->t, VAKT_T_ENDPOINTS, used_cb, s);
	for (uint32_t id = 1; id < VAKT_MAX_ENDPOINTS; id++) {
		if (s->used[id])
			continue;
		meta_load(dp, id);
		if (dp->meta_state[id] != 1)
			continue;
		if (bpf_map_delete_elem(dp->ep_meta_fd, &id) && errno != ENOENT)
			continue;
		/* The pod is gone; a later pod given this ep_id must start from zero. */
		zero_counters(dp, id);
		dp->meta_state[id] = 2;
	}
	free(s);
}

int dp_bump_gen(struct vakt_dataplane *dp)
{
	struct vakt_state st = {};
	uint32_t key = 0;

	/* Only the agent writes state, so read-modify-write cannot race. */
	if (bpf_map_lookup_elem(dp->state_fd, &key, &st))
		goto err;
	st.gen++;
	st.abi = VAKT_ABI_VERSION;
	if (bpf_map_update_elem(dp->state_fd, &key, &st, BPF_ANY))
		goto err;
	dp->stats.gen = st.gen;
	if (dp->write_hook)
		dp->write_hook(dp->write_hook_arg, "state", 0, NULL);
	return 0;
err:
	dp->stats.map_errors++;
	log_error("generation bump failed: revoked flows stay established", "err=%d", -errno);
	return -errno;
}

static void count_fail_closed(struct batch *b);

static int finish(struct batch *b)
{
	if (b->late_failures)
		mark_failed_endpoints(b);
	if (b->revoked) {
		int err = dp_bump_gen(b->dp);

		if (err && !b->err)
			b->err = err;
	}
	count_fail_closed(b);
	return b->err;
}

int vakt_dataplane_apply(struct vakt_dataplane *dp, struct vakt_tables *t,
			 const struct vakt_compiler *c)
{
	struct batch b = { .dp = dp, .t = t, .c = c };
	int revoked = 0, err;

	/* First use after open, or failed writes to retry: only a full diff is safe. */
	if (dp->retry || !dp->reconciled)
		return vakt_dataplane_reconcile(dp, t, c);
	vakt_tables_drain(t, drain_cb, &b, &revoked);
	end_of_step1(&b);
	if (b.ep_deleted)
		prune_meta(&b);
	b.revoked |= revoked;
	err = finish(&b);
	/* The deletions at the end of the batch may have made room for what did not fit. */
	if (err && b.deleted)
		return vakt_dataplane_reconcile(dp, t, c);
	return err;
}

/* ---- reconcile ---- */

static int value_differs(int fd, const void *key, const void *val, size_t vsize)
{
	unsigned char cur[256];

	/* An exact LPM key exists here, so the longest-prefix lookup returns exactly it. */
	if (vsize > sizeof(cur) || bpf_map_lookup_elem(fd, key, cur))
		return 1;
	return memcmp(cur, val, vsize) != 0;
}

static int sync_put(struct batch *b, enum vakt_table_id id, const void *key, const void *val)
{
	struct vakt_dataplane *dp = b->dp;
	int fd = dp->table_fd[id];
	int r;

	if (!bpf_map_update_elem(fd, key, val, BPF_NOEXIST)) {
		trace(dp, id, 0, key);
		return 0;
	}
	if (errno != EEXIST) {
		record_failure(b, id, key, -errno, 0);
		return 0;
	}
	if (!value_differs(fd, key, val, vakt_table_value_size(id)))
		return 0;
	r = bpf_map_update_elem(fd, key, val, BPF_EXIST) ? -errno : 0;
	trace(dp, id, 0, key);
	if (r)
		record_failure(b, id, key, r, 0);
	else
		b->revoked = 1; /* a changed value (identity, policy switch) may revoke */
	return 0;
}

struct sync_ctx {
	struct batch *b;
	enum vakt_table_id id;
};

static int sync_put_cb(void *arg, const void *key, const void *val)
{
	struct sync_ctx *s = arg;

	if (s->id == VAKT_T_ENDPOINTS) {
		struct vakt_ep_val want;

		ensure_meta(s->b, ((const struct vakt_ep_val *)val)->ep_id);
		ep_desired(s->b->dp, val, &want);
		return sync_put(s->b, s->id, key, &want);
	}
	return sync_put(s->b, s->id, key, val);
}

/* Delete map keys the tables do not have. Keys are collected first: deleting while
 * walking a hash map can restart the walk. */
static int sync_deletes(struct batch *b, enum vakt_table_id id)
{
	struct vakt_dataplane *dp = b->dp;
	size_t ks = vakt_table_key_size(id), n = 0, cap = 0;
	unsigned char *stale = NULL, cur[64], next[64];
	void *prev = NULL;
	uint64_t present = 0;
	int err = 0;

	if (ks > sizeof(cur))
		return -E2BIG;
	while (!bpf_map_get_next_key(dp->table_fd[id], prev, next)) {
		present++;
		memcpy(cur, next, ks);
		prev = cur;
		if (vakt_tables_get(b->t, id, cur))
			continue;
		if (n == cap) {
			unsigned char *p = realloc(stale, (cap = cap ? cap * 2 : 256) * ks);

			if (!p) {
				err = -ENOMEM;
				goto out;
			}
			stale = p;
		}
		memcpy(stale + n * ks, cur, ks);
		n++;
	}
	if (errno != ENOENT) {
		err = -errno;
		log_error("map walk failed", "map=%s err=%d", vakt_table_name(id), err);
		goto out;
	}
	dp->entries[id] = present;
	for (size_t i = 0; i < n; i++)
		del(b, id, stale + i * ks);
out:
	free(stale);
	if (err && !b->err)
		b->err = err;
	return err;
}

static int fc_cb(void *arg, const void *key, const void *val)
{
	struct batch *b = arg;

	(void)key;
	if (ep_fails_closed(b->dp, val))
		b->dp->stats.fail_closed++;
	return 0;
}

static void count_fail_closed(struct batch *b)
{
	b->dp->stats.fail_closed = 0;
	if (b->dp->nfailed_pol || b->dp->cidr_failed)
		vakt_tables_foreach(b->t, VAKT_T_ENDPOINTS, fc_cb, b);
}

static int discard_cb(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	(void)arg;
	(void)id;
	(void)key;
	(void)val;
	return 0;
}

static int reconcile_pass(struct vakt_dataplane *dp, struct vakt_tables *t,
			  const struct vakt_compiler *c, int *deleted)
{
	static const enum vakt_table_id puts[] = { VAKT_T_POLICY, VAKT_T_CIDR, VAKT_T_IPCACHE,
						   VAKT_T_ENDPOINTS };
	static const enum vakt_table_id dels[] = { VAKT_T_ENDPOINTS, VAKT_T_IPCACHE, VAKT_T_CIDR,
						   VAKT_T_POLICY };
	struct batch b = { .dp = dp, .t = t, .c = c };

	/* Failures are recomputed from scratch: what fits now is written and unmarked. */
	dp->nfailed_pol = 0;
	dp->cidr_failed = 0;
	dp->retry = 0;
	for (size_t i = 0; i < sizeof(puts) / sizeof(puts[0]); i++) {
		struct sync_ctx s = { .b = &b, .id = puts[i] };

		vakt_tables_foreach(t, puts[i], sync_put_cb, &s);
	}
	for (size_t i = 0; i < sizeof(dels) / sizeof(dels[0]); i++)
		sync_deletes(&b, dels[i]);
	/* The maps now equal the tables: the journal describes nothing left to do. */
	vakt_tables_drain(t, discard_cb, NULL, NULL);
	prune_meta(&b);
	dp->reconciled = 1;
	/* After a restart, flows admitted by the previous agent are re-checked once. */
	b.revoked = 1;
	*deleted = b.deleted;
	return finish(&b);
}

int vakt_dataplane_reconcile(struct vakt_dataplane *dp, struct vakt_tables *t,
			     const struct vakt_compiler *c)
{
	int deleted = 0;
	int err = reconcile_pass(dp, t, c, &deleted);

	/* Writes come before deletions, so a nearly full map may only fit the new entries
	 * once the stale ones are gone: one more pass then. */
	if (err && deleted)
		err = reconcile_pass(dp, t, c, &deleted);
	log_info("maps reconciled", "ipcache=%llu endpoints=%llu cidr=%llu policy=%llu err=%d",
		 (unsigned long long)dp->entries[VAKT_T_IPCACHE],
		 (unsigned long long)dp->entries[VAKT_T_ENDPOINTS],
		 (unsigned long long)dp->entries[VAKT_T_CIDR],
		 (unsigned long long)dp->entries[VAKT_T_POLICY], err);
	return err;
}

/* ---- reading the pinned maps back (restart seed) ---- */

static int read_map(struct vakt_dataplane *dp, enum vakt_table_id id, struct vakt_tables *t)
{
	size_t ks = vakt_table_key_size(id), vs = vakt_table_value_size(id);
	unsigned char cur[64], next[64], val[64];
	void *prev = NULL;
	int fd = dp->table_fd[id], err;

	if (ks > sizeof(cur) || vs > sizeof(val))
		return -E2BIG;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(cur, next, ks);
		prev = cur;
		/* LPM keys: the key exists, so the longest match is exactly it. */
		if (bpf_map_lookup_elem(fd, cur, val))
			continue; /* deleted meanwhile: nobody else writes, but be safe */
		err = vakt_tables_put(t, id, cur, val);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

static int discard_journal(void *arg, enum vakt_table_id id, const void *key, const void *val)
{
	(void)arg;
	(void)id;
	(void)key;
	(void)val;
	return 0;
}

int vakt_dataplane_pinned_ids(struct vakt_dataplane *dp, struct vakt_compiler_seed *out)
{
	struct vakt_tables *t = vakt_tables_new();
	int err = t ? 0 : -ENOMEM;

	out->t = NULL;
	for (int id = 0; !err && id < VAKT_T_COUNT; id++) {
		vakt_tables_set_limit(t, (enum vakt_table_id)id, 0);
		err = read_map(dp, (enum vakt_table_id)id, t);
		if (err)
			log_error("cannot read pinned map", "map=%s bpffs=%s err=%d",
				  vakt_table_name((enum vakt_table_id)id), dp->bpffs, err);
	}
	if (err) {
		vakt_tables_free(t);
		return err;
	}
	vakt_tables_drain(t, discard_journal, NULL, NULL);
	out->t = t;
	return 0;
}
