// SPDX-License-Identifier: Apache-2.0
#include "bpfload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pkt.h"
#include "skel.h"

int dp_open(struct vakt_bpf **out, const struct dp_cfg *cfg)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct dp_cfg none = { 0 };
	struct vakt_bpf *skel;
	struct bpf_map *m;
	uint32_t shift;
	int err;

	if (!cfg)
		cfg = &none;
	if (cfg->pin_root)
		oo.pin_root_path = cfg->pin_root;
	skel = vakt_bpf__open_opts(&oo);
	if (!skel) {
		err = -errno;
		fprintf(stderr, "dp_open: open skeleton failed err=%d\n", err);
		return err;
	}
	/* Private maps: a test must not see or leave pinned state. */
	if (!cfg->pin_root) {
		bpf_object__for_each_map(m, skel->obj)
		{
			err = bpf_map__set_pin_path(m, NULL);
			if (err)
				goto fail;
		}
	}
	if (cfg->no_events)
		skel->rodata->cfg_event_rate_per_sec = 0;
	else if (cfg->event_rate)
		skel->rodata->cfg_event_rate_per_sec = cfg->event_rate;
	if (cfg->mark_mask) {
		if (vakt_mark_config(cfg->mark_mask, &shift)) {
			fprintf(stderr, "dp_open: invalid mark mask 0x%x\n", cfg->mark_mask);
			err = -EINVAL;
			goto fail;
		}
		skel->rodata->cfg_mark_mask = cfg->mark_mask;
		skel->rodata->cfg_mark_shift = shift;
	}
	err = vakt_bpf__load(skel);
	if (err) {
		fprintf(stderr, "dp_open: load failed err=%d\n", err);
		goto fail;
	}
	*out = skel;
	return 0;
fail:
	vakt_bpf__destroy(skel);
	return err < 0 ? err : -EINVAL;
}

void dp_close(struct vakt_bpf *skel)
{
	vakt_bpf__destroy(skel);
}

int dp_prog_fd(struct vakt_bpf *skel, enum dp_prog prog)
{
	switch (prog) {
	case DP_FROM_POD:
		return bpf_program__fd(skel->progs.vakt_from_pod);
	case DP_TO_POD:
		return bpf_program__fd(skel->progs.vakt_to_pod);
	case DP_NODE_EGRESS:
		return bpf_program__fd(skel->progs.vakt_node_egress);
	case DP_NODE_INGRESS:
		return bpf_program__fd(skel->progs.vakt_node_ingress);
	}
	return -EINVAL;
}

/* ifindex 0: the kernel's default for BPF_PROG_TEST_RUN, the loopback device. */
static int run_ctx(int prog_fd, const void *frame, size_t len, uint32_t repeat, int ifindex,
		   uint32_t mark_in, uint32_t *mark_out, int *ret, uint32_t *ns_per_run)
{
	struct __sk_buff ctx = { .mark = mark_in, .ifindex = (uint32_t)ifindex };
	uint8_t out[PK_MAX + 256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .ctx_out = &ctx, .ctx_size_out = sizeof(ctx),
		    .repeat = repeat);
	int err;

	err = bpf_prog_test_run_opts(prog_fd, &o);
	if (err) {
		err = -errno;
		fprintf(stderr, "dp_run: BPF_PROG_TEST_RUN failed err=%d len=%zu\n", err, len);
		return err;
	}
	if (ret)
		*ret = (int)o.retval;
	if (mark_out)
		*mark_out = ctx.mark;
	if (ns_per_run)
		*ns_per_run = o.duration;
	return 0;
}

int dp_run_fd(int prog_fd, const void *frame, size_t len, uint32_t repeat, uint32_t mark_in,
	      uint32_t *mark_out, int *ret, uint32_t *ns_per_run)
{
	return run_ctx(prog_fd, frame, len, repeat, 0, mark_in, mark_out, ret, ns_per_run);
}

int dp_run_at(struct vakt_bpf *skel, enum dp_prog prog, int ifindex, const void *frame,
	      size_t len, uint32_t mark_in, uint32_t *mark_out, int *ret)
{
	return run_ctx(dp_prog_fd(skel, prog), frame, len, 1, ifindex, mark_in, mark_out, ret,
		       NULL);
}

int dp_run(struct vakt_bpf *skel, enum dp_prog prog, const void *frame, size_t len,
	   uint32_t mark_in, uint32_t *mark_out, int *ret)
{
	return dp_run_fd(dp_prog_fd(skel, prog), frame, len, 1, mark_in, mark_out, ret, NULL);
}

int dp_run_repeat(struct vakt_bpf *skel, enum dp_prog prog, const void *frame, size_t len,
		  uint32_t repeat, uint32_t *ns_per_run)
{
	return dp_run_fd(dp_prog_fd(skel, prog), frame, len, repeat, 0, NULL, NULL, ns_per_run);
}

static int update(int fd, const void *k, const void *v, const char *what)
{
	if (bpf_map_update_elem(fd, k, v, BPF_ANY)) {
		int err = -errno;

		fprintf(stderr, "dp: update %s failed err=%d\n", what, err);
		return err;
	}
	return 0;
}

int dp_put_ipcache(struct vakt_bpf *skel, const char *addr, uint32_t identity)
{
	struct vakt_addr a = pk_addr(addr);
	struct vakt_ip_val v = { .identity = identity };

	return update(bpf_map__fd(skel->maps.ipcache), &a, &v, "ipcache");
}

int dp_put_endpoint(struct vakt_bpf *skel, const char *addr, const struct vakt_ep_val *ep)
{
	struct vakt_addr a = pk_addr(addr);

	return update(bpf_map__fd(skel->maps.endpoints), &a, ep, "endpoints");
}

int dp_put_cidr(struct vakt_bpf *skel, const char *addr, uint32_t plen, uint32_t class_id)
{
	struct vakt_cidr_key k = { .prefixlen = plen, .addr = pk_addr(addr) };
	struct vakt_cidr_val v = { .class_id = class_id };

	return update(bpf_map__fd(skel->maps.cidr), &k, &v, "cidr");
}

int dp_put_policy(struct vakt_bpf *skel, uint32_t policy, uint32_t peer, uint8_t proto,
		  uint16_t port, uint32_t plen, uint32_t rule)
{
	struct vakt_policy_key k = {
		.prefixlen = plen,
		.policy = policy,
		.peer = peer,
		.proto = plen > VAKT_PLEN_ANY_PROTO ? proto : 0,
		.port = plen > VAKT_PLEN_ANY_PORT ? htons(port) : 0,
	};
	struct vakt_policy_val v = { .rule = rule, .action = VAKT_ACTION_ALLOW };

	return update(bpf_map__fd(skel->maps.policy), &k, &v, "policy");
}

int dp_set_gen(struct vakt_bpf *skel, uint64_t gen)
{
	struct vakt_state s = { .gen = gen, .abi = VAKT_ABI_VERSION };
	uint32_t zero = 0;

	return update(bpf_map__fd(skel->maps.state), &zero, &s, "state");
}

int dp_map_fd(struct vakt_bpf *skel, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(skel->obj, name);

	if (!m) {
		fprintf(stderr, "dp: no map %s\n", name);
		return -ENOENT;
	}
	return bpf_map__fd(m);
}

int dp_clear_map(struct vakt_bpf *skel, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(skel->obj, name);
	uint8_t key[256], next[256];
	int fd, err;

	if (!m || bpf_map__key_size(m) > sizeof(key))
		return -EINVAL;
	fd = bpf_map__fd(m);
	if (bpf_map__type(m) == BPF_MAP_TYPE_ARRAY || bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_ARRAY) {
		size_t vs = bpf_map__value_size(m);
		int ncpu = libbpf_num_possible_cpus();
		size_t sz = bpf_map__type(m) == BPF_MAP_TYPE_PERCPU_ARRAY ?
				    ((vs + 7) & ~(size_t)7) * (size_t)ncpu : vs;
		uint32_t n = bpf_map__max_entries(m), i, *keys;
		void *zero = calloc(n, sz);
		LIBBPF_OPTS(bpf_map_batch_opts, bo);

		keys = calloc(n, sizeof(*keys));
		if (!zero || !keys) {
			free(zero);
			free(keys);
			return -ENOMEM;
		}
		for (i = 0; i < n; i++)
			keys[i] = i;
		/* one syscall for the whole array: the counters have 64k slots */
		err = bpf_map_update_batch(fd, keys, zero, &n, &bo) ? -errno : 0;
		free(zero);
		free(keys);
		return err;
	}
	/* Collect every key in one walk, then delete: restarting the walk after
	 * each delete rescans a 256k-bucket hash from the start every time. */
	{
		size_t ks = bpf_map__key_size(m), n = 0, cap = 0;
		uint8_t *keys = NULL;
		void *prev = NULL;
		size_t i;

		while (!bpf_map_get_next_key(fd, prev, next)) {
			if (n == cap) {
				uint8_t *nk = realloc(keys, (cap = cap ? cap * 2 : 256) * ks);

				if (!nk) {
					free(keys);
					return -ENOMEM;
				}
				keys = nk;
			}
			memcpy(keys + n * ks, next, ks);
			prev = keys + n * ks;
			n++;
		}
		for (i = 0, err = 0; i < n; i++)
			if (bpf_map_delete_elem(fd, keys + i * ks) && errno != ENOENT)
				err = -errno;
		free(keys);
		(void)key;
		return err;
	}
}

int dp_map_count(struct vakt_bpf *skel, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(skel->obj, name);
	uint8_t key[256], next[256];
	int fd, n = 0;
	void *prev = NULL;

	if (!m)
		return -ENOENT;
	fd = bpf_map__fd(m);
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, bpf_map__key_size(m));
		prev = key;
		n++;
	}
	return n;
}

int dp_counter(struct vakt_bpf *skel, uint32_t ep_id, uint32_t dir, uint32_t reason,
	       struct vakt_counter *out)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	uint32_t idx = vakt_counter_index(ep_id, dir, reason);
	struct vakt_counter *v;

	if (ncpu <= 0)
		return -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &idx, v)) {
		int err = -errno;

		free(v);
		return err;
	}
	memset(out, 0, sizeof(*out));
	for (i = 0; i < ncpu; i++) {
		out->packets += v[i].packets;
		out->bytes += v[i].bytes;
	}
	free(v);
	return 0;
}

struct ev_arg {
	struct vakt_drop_event *out;
	int max, n;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct ev_arg *a = ctx;

	if (size < sizeof(struct vakt_drop_event) || a->n >= a->max)
		return 0;
	memcpy(&a->out[a->n++], data, sizeof(struct vakt_drop_event));
	return 0;
}

int dp_read_events(struct vakt_bpf *skel, struct vakt_drop_event *out, int max)
{
	struct ev_arg a = { .out = out, .max = max };
	struct ring_buffer *rb;
	int err;

	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, &a, NULL);
	if (!rb)
		return -errno;
	err = ring_buffer__consume(rb);
	ring_buffer__free(rb);
	return err < 0 ? err : a.n;
}
