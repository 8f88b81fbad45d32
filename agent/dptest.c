// SPDX-License-Identifier: Apache-2.0
/*
 * dptest.c - the real datapath on synthesised packets (see dptest.h).
 *
 * Nothing here touches a pin path: the skeleton's maps are unpinned before
 * load, so a running vaktd and its pinned maps are never seen, let alone
 * changed, and everything goes away with the process.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dptest.h"
#include "log.h"
#include "model.h"
#include "tables.h"
#include "skel.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

/* Counter ranges: one per (ep_id, dir), VAKT_R_MAX reasons each. */
#define NRANGES (VAKT_MAX_ENDPOINTS * VAKT_DIR_MAX)

struct vakt_dptest {
	struct vakt_bpf *skel;
	int prog_fd[VAKT_DPT_NPROGS];
	int ct_fd, frags_fd, counters_fd, endpoints_fd;
	uint32_t mark_mask, mark_shift;
	int ncpus;
	struct vakt_counter *percpu; /* VAKT_R_MAX * ncpus, one batch read */
	/*
	 * Last known packet count of every counter slot, read on first use of
	 * its range: only this process's runs move these private counters, so a
	 * probe needs one read per range instead of one before and one after.
	 */
	uint64_t *seen;
	uint8_t *loaded; /* per range */
};

const char *vakt_dptest_prog_name(enum vakt_dptest_prog p)
{
	switch (p) {
	case VAKT_DPT_FROM_POD:
		return VAKT_PROG_FROM_POD;
	case VAKT_DPT_TO_POD:
		return VAKT_PROG_TO_POD;
	case VAKT_DPT_NODE_EGRESS:
		return VAKT_PROG_NODE_EGRESS;
	case VAKT_DPT_NODE_INGRESS:
		return VAKT_PROG_NODE_INGRESS;
	default:
		return "unknown";
	}
}

static int set_size(struct bpf_object *obj, const char *name, uint32_t n)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m)
		return -ENOENT;
	return bpf_map__set_max_entries(m, n ? n : 1);
}

/*
 * Map sizes: prealloc'd hashes are sized to what t holds (a production
 * ipcache preallocates 256k entries for nothing), the LPM tries keep a
 * limit at least as large as t; conntrack is small, see dptest.h.
 */
static int configure(struct vakt_dptest *d, const struct vakt_tables *t,
		     const struct vakt_dptest_opts *o)
{
	struct bpf_object *obj = d->skel->obj;
	struct bpf_map *m;
	int err = 0;

	bpf_object__for_each_map(m, obj) {
		err = bpf_map__set_pin_path(m, NULL);
		if (err)
			return err;
	}
	d->mark_mask = o->mark_mask ? o->mark_mask : VAKT_MARK_DEFAULT_MASK;
	if (vakt_mark_config(d->mark_mask, &d->mark_shift)) {
		log_error("dptest: invalid mark mask", "mark_mask=0x%x", d->mark_mask);
		return -EINVAL;
	}
	d->skel->rodata->cfg_mark_mask = d->mark_mask;
	d->skel->rodata->cfg_mark_shift = d->mark_shift;
	/* Verdicts are read from counters; drop events would only fill the ring. */
	d->skel->rodata->cfg_event_rate_per_sec = 0;
	err = set_size(obj, VAKT_MAP_CT, o->ct_entries ? o->ct_entries : VAKT_DPTEST_CT_DEFAULT);
	if (!err)
		err = set_size(obj, VAKT_MAP_FRAGS, 256);
	if (err || !t)
		return err;
	for (int id = 0; id < VAKT_T_COUNT && !err; id++) {
		size_t n = vakt_tables_count(t, (enum vakt_table_id)id) + 16;

		if (id == VAKT_T_CIDR || id == VAKT_T_POLICY)
			n = n > vakt_table_capacity((enum vakt_table_id)id) ? n :
				vakt_table_capacity((enum vakt_table_id)id);
		if (n > UINT32_MAX)
			return -ENOSPC;
		err = set_size(obj, vakt_table_name((enum vakt_table_id)id), (uint32_t)n);
	}
	return err;
}

static int find_fds(struct vakt_dptest *d)
{
	struct vakt_bpf *s = d->skel;

	d->prog_fd[VAKT_DPT_FROM_POD] = bpf_program__fd(s->progs.vakt_from_pod);
	d->prog_fd[VAKT_DPT_TO_POD] = bpf_program__fd(s->progs.vakt_to_pod);
	d->prog_fd[VAKT_DPT_NODE_EGRESS] = bpf_program__fd(s->progs.vakt_node_egress);
	d->prog_fd[VAKT_DPT_NODE_INGRESS] = bpf_program__fd(s->progs.vakt_node_ingress);
	d->ct_fd = bpf_map__fd(s->maps.ct);
	d->frags_fd = bpf_map__fd(s->maps.frags);
	d->counters_fd = bpf_map__fd(s->maps.counters);
	d->endpoints_fd = bpf_map__fd(s->maps.endpoints);
	d->ncpus = libbpf_num_possible_cpus();
	if (d->ncpus <= 0)
		return d->ncpus ? d->ncpus : -EINVAL;
	d->percpu = calloc((size_t)VAKT_R_MAX * (size_t)d->ncpus, sizeof(*d->percpu));
	d->seen = calloc((size_t)VAKT_COUNTERS_MAX, sizeof(*d->seen));
	d->loaded = calloc(NRANGES, 1);
	if (!d->percpu || !d->seen || !d->loaded)
		return -ENOMEM;
	return 0;
}

/* gen 1 as the agent writes it: a zeroed conntrack value never looks current. */
static int state_init(struct vakt_dptest *d)
{
	struct vakt_state st = { .gen = 1, .abi = VAKT_ABI_VERSION };
	uint32_t key = 0;

	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.state), &key, &st, BPF_ANY))
		return -errno;
	return 0;
}

void vakt_dptest_close(struct vakt_dptest *d)
{
	if (!d)
		return;
	if (d->skel)
		vakt_bpf__destroy(d->skel);
	free(d->percpu);
	free(d->seen);
	free(d->loaded);
	free(d);
}

int vakt_dptest_open(struct vakt_dptest **out, const struct vakt_tables *t,
		     const struct vakt_dptest_opts *o)
{
	struct vakt_dptest_opts none = { 0 };
	struct vakt_dptest *d;
	int err;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->skel = vakt_bpf__open();
	if (!d->skel) {
		err = -errno;
		log_error("dptest: cannot open the BPF skeleton", "err=%d", err);
		goto err_free;
	}
	err = configure(d, t, o ? o : &none);
	if (err) {
		log_error("dptest: cannot configure the BPF object", "err=%d", err);
		goto err_free;
	}
	err = vakt_bpf__load(d->skel);
	if (err) {
		/* libbpf returns -EPERM for a missing capability, and -errno otherwise. */
		log_error("dptest: cannot load the BPF programs", "err=%d", err);
		goto err_free;
	}
	err = find_fds(d);
	if (!err)
		err = state_init(d);
	if (err) {
		log_error("dptest: cannot set up the loaded programs", "err=%d", err);
		goto err_free;
	}
	*out = d;
	return 0;

err_free:
	vakt_dptest_close(d);
	return err < 0 ? err : -EINVAL;
}

struct bpf_object *vakt_dptest_obj(struct vakt_dptest *d)
{
	return d->skel->obj;
}

int vakt_dptest_map_fd(struct vakt_dptest *d, const char *name)
{
	int fd = bpf_object__find_map_fd_by_name(d->skel->obj, name);

	return fd < 0 ? -ENOENT : fd;
}

struct fill_arg {
	int fd;
	enum vakt_table_id id;
};

static int fill_one(void *arg, const void *key, const void *val)
{
	struct fill_arg *a = arg;
	int err;

	if (a->id == VAKT_T_ENDPOINTS) {
		const struct vakt_ep_val *ep = val;

		if (!ep->ep_id || ep->ep_id >= VAKT_MAX_ENDPOINTS) {
			log_error("dptest: endpoint id outside the datapath's range", "ep_id=%u max=%u",
				  ep->ep_id, VAKT_MAX_ENDPOINTS - 1);
			return -ERANGE;
		}
	}
	if (bpf_map_update_elem(a->fd, key, val, BPF_ANY)) {
		err = -errno;
		log_error("dptest: map update failed", "map=%s err=%d", vakt_table_name(a->id), err);
		return err;
	}
	return 0;
}

int vakt_dptest_fill_obj(struct bpf_object *obj, const struct vakt_tables *t)
{
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		struct fill_arg a = { .id = (enum vakt_table_id)id };
		int err;

		a.fd = bpf_object__find_map_fd_by_name(obj, vakt_table_name(a.id));
		if (a.fd < 0) {
			log_error("dptest: the BPF object has no such map", "map=%s", vakt_table_name(a.id));
			return -ENOENT;
		}
		err = vakt_tables_foreach(t, a.id, fill_one, &a);
		if (err)
			return err;
	}
	return 0;
}

int vakt_dptest_fill(struct vakt_dptest *d, const struct vakt_tables *t)
{
	return vakt_dptest_fill_obj(d->skel->obj, t);
}

/* Deletes every entry: keys collected in one walk, then deleted (a delete
 * during the walk would restart it from the first bucket). */
static int clear_hash(int fd, size_t ksize)
{
	uint8_t keys[64][sizeof(struct vakt_ct_key)];
	size_t n;
	int err = 0;

	if (ksize > sizeof(keys[0]))
		return -EINVAL;
	do {
		n = 0;
		while (n < 64 && !bpf_map_get_next_key(fd, n ? keys[n - 1] : NULL, keys[n]))
			n++;
		for (size_t i = 0; i < n; i++)
			if (bpf_map_delete_elem(fd, keys[i]) && errno != ENOENT)
				err = -errno;
	} while (n == 64 && !err);
	return err;
}

int vakt_dptest_reset_ct(struct vakt_dptest *d)
{
	int err = clear_hash(d->ct_fd, sizeof(struct vakt_ct_key));

	if (!err)
		err = clear_hash(d->frags_fd, sizeof(struct vakt_frag_key));
	if (err)
		log_error("dptest: cannot empty conntrack", "err=%d", err);
	return err;
}

/* --- packets ---------------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The L4 header that opens a flow: TCP SYN, a UDP datagram, SCTP INIT. */
static int build_l4(const struct vakt_dptest_pkt *p, uint8_t *l4)
{
	switch (p->proto) {
	case IPPROTO_TCP:
		put16(l4, p->sport);
		put16(l4 + 2, p->dport);
		put32(l4 + 4, 1); /* sequence number */
		l4[12] = 5 << 4;  /* data offset: 20 bytes */
		l4[13] = 0x02;    /* SYN */
		put16(l4 + 14, 64240);
		return 20;
	case IPPROTO_UDP:
		put16(l4, p->sport);
		put16(l4 + 2, p->dport);
		put16(l4 + 4, 8 + 4);
		return 12; /* header and 4 bytes of payload */
	case IPPROTO_SCTP:
		put16(l4, p->sport);
		put16(l4 + 2, p->dport);
		/* verification tag 0, as INIT requires; checksum left 0 */
		l4[12] = 1; /* INIT */
		put16(l4 + 14, 20);
		put32(l4 + 16, 0x76616b74); /* initiate tag */
		put32(l4 + 20, 65536);      /* a_rwnd */
		put16(l4 + 24, 1);          /* outbound streams */
		put16(l4 + 26, 1);          /* inbound streams */
		put32(l4 + 28, 1);          /* initial TSN */
		return 32;
	default:
		return -EINVAL;
	}
}

int vakt_dptest_build(const struct vakt_dptest_pkt *p, uint8_t *buf, size_t cap)
{
	/* Locally administered addresses: the programs never look at them. */
	static const uint8_t mac_dst[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t mac_src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	int v4 = vakt_addr_is_v4(&p->src), l4;
	size_t l3 = v4 ? 20 : 40, len;
	uint8_t *ip = buf + 14;

	if (v4 != vakt_addr_is_v4(&p->dst) || cap < 14 + 40 + 32 || cap < 60)
		return -EINVAL;
	memset(buf, 0, cap);
	memcpy(buf, mac_dst, sizeof(mac_dst));
	memcpy(buf + 6, mac_src, sizeof(mac_src));
	put16(buf + 12, v4 ? 0x0800 : 0x86dd);
	l4 = build_l4(p, ip + l3);
	if (l4 < 0)
		return l4;
	if (v4) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(l3 + (size_t)l4));
		put16(ip + 6, 0x4000); /* don't fragment */
		ip[8] = 64;
		ip[9] = p->proto;
		memcpy(ip + 12, &p->src.b[12], 4);
		memcpy(ip + 16, &p->dst.b[12], 4);
		put16(ip + 10, ip_csum(ip, 20));
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)l4);
		ip[6] = p->proto;
		ip[7] = 64;
		memcpy(ip + 8, p->src.b, 16);
		memcpy(ip + 24, p->dst.b, 16);
	}
	len = 14 + l3 + (size_t)l4;
	/* Ethernet's minimum frame, padded as a NIC would. */
	return (int)(len < 60 ? 60 : len);
}

/* --- runs and counters ------------------------------------------------------------------ */

int vakt_dptest_run(struct vakt_dptest *d, enum vakt_dptest_prog prog, const void *frame,
		    size_t len, uint32_t mark_in, uint32_t *mark_out, int *retval)
{
	struct __sk_buff ctx = { .mark = mark_in };
	uint8_t out[VAKT_DPTEST_FRAME_MAX + 64];
	struct bpf_test_run_opts o = {
		.sz = sizeof(o),
		.data_in = frame,
		.data_size_in = (uint32_t)len,
		.data_out = out,
		.data_size_out = sizeof(out),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.ctx_out = &ctx,
		.ctx_size_out = sizeof(ctx),
		.repeat = 1,
	};
	int err;

	if ((unsigned)prog >= VAKT_DPT_NPROGS || len > VAKT_DPTEST_FRAME_MAX)
		return -EINVAL;
	if (bpf_prog_test_run_opts(d->prog_fd[prog], &o)) {
		err = -errno;
		log_error("dptest: BPF_PROG_TEST_RUN failed", "prog=%s len=%zu err=%d",
			  vakt_dptest_prog_name(prog), len, err);
		return err;
	}
	*retval = (int)o.retval;
	if (mark_out)
		*mark_out = ctx.mark;
	return 0;
}

int vakt_dptest_counters(struct vakt_dptest *d, uint32_t ep_id, uint32_t dir,
			 uint64_t packets[VAKT_R_MAX])
{
	uint32_t first = vakt_counter_index(ep_id, dir, 0), prev = first - 1, next, count = VAKT_R_MAX;
	uint32_t keys[VAKT_R_MAX];
	struct bpf_map_batch_opts bo = { .sz = sizeof(bo) };
	int err;

	if (ep_id >= VAKT_MAX_ENDPOINTS || dir >= VAKT_DIR_MAX)
		return -EINVAL;
	/* A batch starts after in_batch; the very first slot has no predecessor. */
	if (bpf_map_lookup_batch(d->counters_fd, first ? &prev : NULL, &next, keys, d->percpu,
				 &count, &bo) && errno != ENOENT) {
		err = -errno;
		log_error("dptest: cannot read counters", "ep_id=%u dir=%u err=%d", ep_id, dir, err);
		return err;
	}
	if (count != VAKT_R_MAX || keys[0] != first) {
		log_error("dptest: short counter read", "ep_id=%u dir=%u count=%u", ep_id, dir, count);
		return -EIO;
	}
	for (uint32_t r = 0; r < VAKT_R_MAX; r++) {
		packets[r] = 0;
		for (int c = 0; c < d->ncpus; c++)
			packets[r] += d->percpu[(size_t)r * (size_t)d->ncpus + (size_t)c].packets;
	}
	return 0;
}

/*
 * The reason whose counter moved in range (ep_id, dir) since the last call for
 * that range: sets *reason and returns the number of packets counted (0, 1 or,
 * if the datapath counted twice, more).
 */
static int range_moved(struct vakt_dptest *d, uint32_t ep_id, uint32_t dir, uint32_t *reason,
		       uint64_t *moved)
{
	uint32_t range = ep_id * VAKT_DIR_MAX + dir;
	uint64_t *seen = d->seen + (size_t)range * VAKT_R_MAX, now[VAKT_R_MAX] = { 0 };
	int err;

	*moved = 0;
	if (!d->loaded[range]) {
		err = vakt_dptest_counters(d, ep_id, dir, seen);
		if (err)
			return err;
		d->loaded[range] = 1;
		return 0;
	}
	err = vakt_dptest_counters(d, ep_id, dir, now);
	if (err)
		return err;
	for (uint32_t r = 0; r < VAKT_R_MAX; r++) {
		if (now[r] == seen[r])
			continue;
		*moved += now[r] - seen[r];
		*reason = r;
		seen[r] = now[r];
	}
	return 0;
}

static uint32_t ep_of(struct vakt_dptest *d, const struct vakt_addr *a)
{
	struct vakt_ep_val ep;

	if (bpf_map_lookup_elem(d->endpoints_fd, a, &ep) || ep.ep_id >= VAKT_MAX_ENDPOINTS)
		return 0;
	return ep.ep_id;
}

/* Reads (or on the first call: primes) the counters of one point. */
static int point_counters(struct vakt_dptest *d, uint32_t ep_id, uint32_t dir, int prime,
			  struct vakt_dptest_point *pt, const char *what)
{
	uint64_t total = 0, m;
	uint32_t r = 0;
	int err;

	/* Unknown sources and destinations are counted under ep_id 0. */
	for (int pass = 0; pass < (ep_id ? 2 : 1); pass++) {
		err = range_moved(d, pass ? ep_id : 0, dir, &r, &m);
		if (err)
			return err;
		if (m)
			pt->reason = r;
		total += m;
	}
	if (prime || total == 1)
		return 0;
	log_error("dptest: the datapath did not count this point exactly once", "point=%s ep_id=%u "
		  "packets=%llu", what, ep_id, (unsigned long long)total);
	return -EPROTO;
}

static int point_rule(struct vakt_dptest *d, const struct vakt_dptest_pkt *p, uint32_t dir,
		      struct vakt_dptest_point *pt)
{
	struct vakt_ct_key k = {
		.saddr = p->src,
		.daddr = p->dst,
		.sport = htons(p->sport),
		.dport = htons(p->dport),
		/*
		 * BPF_PROG_TEST_RUN runs on the loopback device: its index scopes
		 * the veth points; a deferred egress check is scoped by its endpoint.
		 */
		.scope = pt->deferred ? VAKT_CT_SCOPE_EP(pt->ep_id) : 1,
		.proto = p->proto,
		.dir = (uint8_t)dir,
	};
	struct vakt_ct_val v;

	if (pt->reason != VAKT_R_POLICY_ALLOW)
		return 0;
	if (bpf_map_lookup_elem(d->ct_fd, &k, &v)) {
		log_error("dptest: a flow admitted by policy has no conntrack entry", "dir=%u ep_id=%u",
			  dir, pt->ep_id);
		return -EPROTO;
	}
	pt->rule_known = 1;
	pt->rule = v.rule;
	return 0;
}

/* The return code must say what the counter says. */
static int check_ret(const struct vakt_dptest_point *pt, int ret, const char *what)
{
	if ((ret == VAKT_TC_PASS) == !vakt_reason_is_drop(pt->reason) &&
	    (ret == VAKT_TC_PASS || ret == VAKT_TC_DROP))
		return 0;
	log_error("dptest: return code and counter disagree", "point=%s ret=%d reason=%u", what, ret,
		  pt->reason);
	return -EPROTO;
}

static int probe(struct vakt_dptest *d, const struct vakt_dptest_flow *f, const uint8_t *frame,
		 size_t len, struct vakt_dptest_verdict *v)
{
	struct vakt_dptest_point *eg = &v->dir[VAKT_DIR_EGRESS], *in = &v->dir[VAKT_DIR_INGRESS];
	uint32_t mark = 0, field;
	int ret_eg = VAKT_TC_PASS, ret_in = VAKT_TC_PASS, err = 0;

	eg->ep_id = ep_of(d, &f->pkt.src);
	in->ep_id = ep_of(d, &f->pkt.dst);
	if (f->egress)
		err = point_counters(d, eg->ep_id, VAKT_DIR_EGRESS, 1, eg, "egress");
	if (!err && f->ingress)
		err = point_counters(d, in->ep_id, VAKT_DIR_INGRESS, 1, in, "ingress");
	if (err)
		return err;
	if (f->egress) {
		eg->ran = 1;
		eg->prog = VAKT_DPT_FROM_POD;
		err = vakt_dptest_run(d, VAKT_DPT_FROM_POD, frame, len, 0, &mark, &ret_eg);
		if (err)
			return err;
		field = (mark & d->mark_mask) >> d->mark_shift;
		eg->deferred = ret_eg == VAKT_TC_PASS && (field & VAKT_MARK_DEFER);
		/* Deferred toward a local pod: its vakt_to_pod checks first; else the uplink does. */
		eg->prog = !eg->deferred ? VAKT_DPT_FROM_POD :
			   f->ingress	 ? VAKT_DPT_TO_POD :
					   VAKT_DPT_NODE_EGRESS;
		if (eg->deferred && !f->ingress) {
			err = vakt_dptest_run(d, VAKT_DPT_NODE_EGRESS, frame, len, mark, NULL, &ret_eg);
			if (err)
				return err;
		}
	}
	if (f->ingress) {
		in->ran = 1;
		in->prog = VAKT_DPT_TO_POD;
		/* The mark travels with the skb from the sender's veth to the receiver's. */
		err = vakt_dptest_run(d, VAKT_DPT_TO_POD, frame, len, mark, NULL, &ret_in);
		if (err)
			return err;
	}
	if (f->egress) {
		err = point_counters(d, eg->ep_id, VAKT_DIR_EGRESS, 0, eg, "egress");
		if (err)
			return err;
		/* With a deferred check in vakt_to_pod its return code covers both points. */
		if (eg->deferred && f->ingress)
			ret_eg = vakt_reason_is_drop(eg->reason) ? ret_in : VAKT_TC_PASS;
		err = check_ret(eg, ret_eg, "egress");
		if (err)
			return err;
	}
	if (!f->ingress)
		return 0;
	if (eg->deferred && vakt_reason_is_drop(eg->reason)) {
		/*
		 * The deferred egress check dropped the packet before the ingress
		 * check: ask the ingress point alone, as if egress were not enforced.
		 */
		err = vakt_dptest_run(d, VAKT_DPT_TO_POD, frame, len, 0, NULL, &ret_in);
		if (err)
			return err;
	}
	err = point_counters(d, in->ep_id, VAKT_DIR_INGRESS, 0, in, "ingress");
	if (!err)
		err = check_ret(in, ret_in, "ingress");
	return err;
}

int vakt_dptest_flow(struct vakt_dptest *d, const struct vakt_dptest_flow *f,
		     struct vakt_dptest_verdict *v)
{
	uint8_t frame[VAKT_DPTEST_FRAME_MAX];
	int len, err, rerr;

	memset(v, 0, sizeof(*v));
	len = vakt_dptest_build(&f->pkt, frame, sizeof(frame));
	if (len < 0) {
		log_error("dptest: cannot build the packet", "proto=%u", f->pkt.proto);
		return len;
	}
	err = probe(d, f, frame, (size_t)len, v);
	for (int dir = 0; dir < VAKT_DIR_MAX && !err; dir++) {
		if (v->dir[dir].ran)
			err = point_rule(d, &f->pkt, (uint32_t)dir, &v->dir[dir]);
	}
	v->allowed = 1;
	for (int dir = 0; dir < VAKT_DIR_MAX; dir++) {
		v->dir[dir].allowed = !v->dir[dir].ran || !vakt_reason_is_drop(v->dir[dir].reason);
		v->allowed &= v->dir[dir].allowed;
	}
	/* Every probe starts from empty conntrack, whatever happened. */
	rerr = vakt_dptest_reset_ct(d);
	return err ? err : rerr;
}
