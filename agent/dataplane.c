// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF side of the agent: skeleton lifecycle, pinned maps, attachment.
 * The map writer (apply, reconcile) is in mapwriter.c; both share the
 * internal struct of mapwriter.h.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mapwriter.h"
#include "log.h"
#include "skel.h"
#include "vakt/datapath.h"

static int mkdir_p(const char *path)
{
	char buf[256];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int check_bpffs(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st))
		return -errno;
	if ((unsigned long)st.f_type != BPF_FS_MAGIC) {
		log_error("pin directory is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)",
			  "bpffs=%s", dir);
		return -EINVAL;
	}
	return 0;
}

/*
 * A pinned map that libbpf could not reuse (another layout, another size, an older
 * VAKT_ABI_VERSION) would make the load fail: replace it. Programs a previous agent
 * left attached keep their old maps until attach() swaps in the new programs, which
 * happens only after reconcile() has filled the new maps.
 */
static int pinned_compatible(const struct bpf_map *m, int fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.type == (uint32_t)bpf_map__type(m) && info.key_size == bpf_map__key_size(m) &&
	       info.value_size == bpf_map__value_size(m) &&
	       info.max_entries == bpf_map__max_entries(m) &&
	       info.map_flags == bpf_map__map_flags(m);
}

static int pinned_abi(const char *bpffs)
{
	struct vakt_state st = {};
	char path[320];
	uint32_t key = 0;
	int fd, abi = -1;

	snprintf(path, sizeof(path), "%s/%s", bpffs, VAKT_MAP_STATE);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	if (!bpf_map_lookup_elem(fd, &key, &st))
		abi = (int)st.abi;
	close(fd);
	return abi;
}

static void drop_incompatible_pins(struct vakt_dataplane *dp)
{
	int abi = pinned_abi(dp->bpffs);
	int all = abi > 0 && abi != VAKT_ABI_VERSION;
	struct bpf_map *m;

	if (all)
		log_warn("pinned maps have another ABI version, recreating them", "bpffs=%s abi=%d want=%d",
			 dp->bpffs, abi, VAKT_ABI_VERSION);
	bpf_object__for_each_map(m, dp->skel->obj) {
		const char *path = bpf_map__pin_path(m);
		int fd;

		if (!path)
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (all || !pinned_compatible(m, fd)) {
			if (!all)
				log_warn("pinned map incompatible, recreating it", "map=%s path=%s",
					 bpf_map__name(m), path);
			unlink(path);
		}
		close(fd);
	}
}

static int configure(struct vakt_dataplane *dp, const struct vakt_dataplane_opts *o)
{
	uint32_t mask = o->mark_mask ? o->mark_mask : VAKT_MARK_DEFAULT_MASK, shift;

	if (vakt_mark_config(mask, &shift)) {
		log_error("invalid mark mask: needs 12 contiguous bits", "mark_mask=0x%x", mask);
		return -EINVAL;
	}
	dp->skel->rodata->cfg_mark_mask = mask;
	dp->skel->rodata->cfg_mark_shift = shift;
	dp->skel->rodata->cfg_event_rate_per_sec =
		o->event_rate < 0 ? 0 : o->event_rate ? (uint32_t)o->event_rate : VAKT_EVENT_RATE_DEFAULT;
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		struct bpf_map *m;

		if (!o->max_entries[id])
			continue;
		m = bpf_object__find_map_by_name(dp->skel->obj, vakt_table_name((enum vakt_table_id)id));
		if (!m || bpf_map__set_max_entries(m, o->max_entries[id]))
			return -EINVAL;
	}
	return 0;
}

static int state_init(struct vakt_dataplane *dp)
{
	struct vakt_state st = {};
	uint32_t key = 0;

	if (bpf_map_lookup_elem(dp->state_fd, &key, &st))
		return -errno;
	if (st.abi == VAKT_ABI_VERSION && st.gen) {
		dp->stats.gen = st.gen;
		return 0;
	}
	/* Fresh maps. gen starts at 1 so that a zeroed conntrack value never looks current. */
	st.abi = VAKT_ABI_VERSION;
	st.gen = 1;
	if (bpf_map_update_elem(dp->state_fd, &key, &st, BPF_ANY))
		return -errno;
	dp->stats.gen = st.gen;
	return 0;
}

static int ring_sample(void *ctx, void *data, size_t size)
{
	struct vakt_dataplane *dp = ctx;

	if (size < sizeof(struct vakt_drop_event) || !dp->ev_cb)
		return 0;
	dp->ev_cb(dp->ev_arg, data);
	dp->ev_count++;
	return 0;
}

static int find_fds(struct vakt_dataplane *dp)
{
	struct bpf_object *obj = dp->skel->obj;
	struct bpf_program *p;
	size_t n = 0;

	for (int id = 0; id < VAKT_T_COUNT; id++) {
		dp->table_fd[id] = bpf_object__find_map_fd_by_name(obj, vakt_table_name((enum vakt_table_id)id));
		if (dp->table_fd[id] < 0)
			return -ENOENT;
	}
	dp->state_fd = bpf_map__fd(dp->skel->maps.state);
	dp->counters_fd = bpf_map__fd(dp->skel->maps.counters);
	dp->ep_meta_fd = bpf_map__fd(dp->skel->maps.ep_meta);
	dp->ep_ifindex_fd = bpf_map__fd(dp->skel->maps.ep_ifindex);
	dp->prog_fd[DP_FROM_POD] = bpf_program__fd(dp->skel->progs.vakt_from_pod);
	dp->prog_fd[DP_TO_POD] = bpf_program__fd(dp->skel->progs.vakt_to_pod);
	dp->prog_fd[DP_NODE_INGRESS] = bpf_program__fd(dp->skel->progs.vakt_node_ingress);
	dp->prog_fd[DP_NODE_EGRESS] = bpf_program__fd(dp->skel->progs.vakt_node_egress);
	for (int i = 0; i < DP_NPROGS; i++)
		dp->prog_id[i] = vakt_prog_id_of_fd(dp->prog_fd[i]);
	bpf_object__for_each_program(p, obj) {
		if (n + 1 < sizeof(dp->prog_names) / sizeof(dp->prog_names[0]))
			dp->prog_names[n++] = bpf_program__name(p);
	}
	dp->prog_names[n] = NULL;
	return 0;
}

struct vakt_dataplane *vakt_dataplane_open(const struct vakt_dataplane_opts *o, int *err)
{
	const struct vakt_dataplane_opts defaults = {};
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct vakt_dataplane *dp;
	int e;

	if (!o)
		o = &defaults;
	dp = calloc(1, sizeof(*dp));
	if (!dp) {
		e = -ENOMEM;
		goto err;
	}
	snprintf(dp->bpffs, sizeof(dp->bpffs), "%s", o->bpffs ? o->bpffs : VAKT_BPFFS_DEFAULT);
	e = mkdir_p(dp->bpffs);
	if (!e)
		e = check_bpffs(dp->bpffs);
	if (e) {
		log_error("cannot use pin directory", "bpffs=%s err=%d", dp->bpffs, e);
		goto err_free;
	}
	snprintf(dp->att.links_dir, sizeof(dp->att.links_dir), "%s/links", dp->bpffs);
	e = mkdir_p(dp->att.links_dir);
	if (e) {
		log_error("cannot create link pin directory", "path=%s err=%d", dp->att.links_dir, e);
		goto err_free;
	}
	oo.pin_root_path = dp->bpffs;
	dp->skel = vakt_bpf__open_opts(&oo);
	if (!dp->skel) {
		e = -errno;
		log_error("cannot open BPF skeleton", "err=%d", e);
		goto err_free;
	}
	e = configure(dp, o);
	if (e)
		goto err_skel;
	drop_incompatible_pins(dp);
	e = vakt_bpf__load(dp->skel);
	if (e) {
		log_error("cannot load BPF programs", "bpffs=%s err=%d", dp->bpffs, e);
		goto err_skel;
	}
	e = find_fds(dp);
	if (e) {
		log_error("BPF object lacks a map the agent needs", "err=%d", e);
		goto err_skel;
	}
	e = state_init(dp);
	if (e) {
		log_error("cannot initialise the state map", "err=%d", e);
		goto err_skel;
	}
	e = dp_bindings_load(dp);
	if (e)
		goto err_skel;
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus <= 0) {
		e = dp->ncpus ? dp->ncpus : -EINVAL;
		goto err_skel;
	}
	dp->rb = ring_buffer__new(bpf_map__fd(dp->skel->maps.events), ring_sample, dp, NULL);
	if (!dp->rb) {
		e = -errno;
		log_error("cannot open the drop event ring buffer", "err=%d", e);
		goto err_skel;
	}
	dp->att.names = dp->prog_names;
	dp->att.mode = !o->force_clsact && vakt_tcx_supported() ? VAKT_ATTACH_TCX : VAKT_ATTACH_CLSACT;
	vakt_attach_sweep_defunct(&dp->att);
	log_info("dataplane loaded", "bpffs=%s mode=%s gen=%llu", dp->bpffs,
		 vakt_dataplane_mode(dp), (unsigned long long)dp->stats.gen);
	return dp;

err_skel:
	dp_bindings_free(dp);
	vakt_bpf__destroy(dp->skel);
err_free:
	free(dp);
err:
	if (err)
		*err = e;
	return NULL;
}

void vakt_dataplane_close(struct vakt_dataplane *dp, int cleanup)
{
	if (!dp)
		return;
	if (cleanup) {
		int err = vakt_attach_remove_all(&dp->att);

		if (err)
			log_error("cleanup: could not detach everywhere", "err=%d", err);
		err = bpf_object__unpin_maps(dp->skel->obj, NULL);
		if (err)
			log_error("cleanup: could not unpin maps", "bpffs=%s err=%d", dp->bpffs, err);
		rmdir(dp->att.links_dir);
		rmdir(dp->bpffs);
		log_info("dataplane removed", "bpffs=%s", dp->bpffs);
	}
	ring_buffer__free(dp->rb);
	dp_bindings_free(dp);
	vakt_bpf__destroy(dp->skel);
	free(dp->failed_pol);
	free(dp);
}

const char *vakt_dataplane_mode(const struct vakt_dataplane *dp)
{
	return dp->att.mode == VAKT_ATTACH_TCX ? "tcx" : "clsact";
}

static int attach_pair(struct vakt_dataplane *dp, int ifindex, const char *ifname, int in_prog,
		       int eg_prog)
{
	int err = vakt_attach_hook(&dp->att, ifindex, ifname, VAKT_HOOK_INGRESS, dp->prog_fd[in_prog]);

	if (!err)
		err = vakt_attach_hook(&dp->att, ifindex, ifname, VAKT_HOOK_EGRESS, dp->prog_fd[eg_prog]);
	if (err && err != -ENODEV)
		dp->stats.attach_errors++;
	return err;
}

static int detach_pair(struct vakt_dataplane *dp, int ifindex, const char *ifname)
{
	int e1 = vakt_detach_hook(&dp->att, ifindex, ifname, VAKT_HOOK_INGRESS);
	int e2 = vakt_detach_hook(&dp->att, ifindex, ifname, VAKT_HOOK_EGRESS);

	if (e1 > 0 || e2 > 0)
		vakt_clsact_remove_if_empty(ifindex, ifname);
	return e1 < 0 ? e1 : e2 < 0 ? e2 : 0;
}

static int pair_attached(const struct vakt_dataplane *dp, int ifindex, int in_prog, int eg_prog)
{
	return vakt_hook_prog_id(&dp->att, ifindex, VAKT_HOOK_INGRESS) == dp->prog_id[in_prog] &&
	       vakt_hook_prog_id(&dp->att, ifindex, VAKT_HOOK_EGRESS) == dp->prog_id[eg_prog];
}

int vakt_dataplane_attach(struct vakt_dataplane *dp, int ifindex, const char *ifname)
{
	return attach_pair(dp, ifindex, ifname, DP_FROM_POD, DP_TO_POD);
}

int vakt_dataplane_detach(struct vakt_dataplane *dp, int ifindex, const char *ifname)
{
	return detach_pair(dp, ifindex, ifname);
}

int vakt_dataplane_attached(const struct vakt_dataplane *dp, int ifindex)
{
	return pair_attached(dp, ifindex, DP_FROM_POD, DP_TO_POD);
}

int vakt_dataplane_attach_uplink(struct vakt_dataplane *dp, int ifindex, const char *ifname)
{
	return attach_pair(dp, ifindex, ifname, DP_NODE_INGRESS, DP_NODE_EGRESS);
}

int vakt_dataplane_detach_uplink(struct vakt_dataplane *dp, int ifindex, const char *ifname)
{
	return detach_pair(dp, ifindex, ifname);
}

int vakt_dataplane_uplink_attached(const struct vakt_dataplane *dp, int ifindex)
{
	return pair_attached(dp, ifindex, DP_NODE_INGRESS, DP_NODE_EGRESS);
}

int vakt_dataplane_events_fd(struct vakt_dataplane *dp)
{
	return ring_buffer__epoll_fd(dp->rb);
}

int vakt_dataplane_events_consume(struct vakt_dataplane *dp,
				  void (*cb)(void *arg, const struct vakt_drop_event *e), void *arg)
{
	int err;

	dp->ev_cb = cb;
	dp->ev_arg = arg;
	dp->ev_count = 0;
	err = ring_buffer__consume(dp->rb);
	dp->ev_cb = NULL;
	if (err < 0) {
		log_error("drop event ring buffer read failed", "err=%d", err);
		return err;
	}
	return dp->ev_count;
}

/* Per-CPU counters read in batches: one syscall per chunk instead of one per key. */
#define COUNTER_CHUNK 4096

int vakt_dataplane_counters(struct vakt_dataplane *dp,
			    int (*cb)(void *arg, uint32_t ep_id, int dir, int reason,
				      uint64_t packets, uint64_t bytes),
			    void *arg)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	size_t ncpu = (size_t)dp->ncpus;
	struct vakt_counter *vals;
	uint32_t *keys, in = 0, out = 0;
	int ret = 0, first = 1;

	keys = calloc(COUNTER_CHUNK, sizeof(*keys));
	vals = calloc(COUNTER_CHUNK * ncpu, sizeof(*vals));
	if (!keys || !vals) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		uint32_t n = COUNTER_CHUNK;
		int err = bpf_map_lookup_batch(dp->counters_fd, first ? NULL : &in, &out, keys, vals,
					       &n, &bo);

		if (err && errno != ENOENT) {
			ret = -errno;
			log_error("counters read failed", "err=%d", ret);
			goto out;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint64_t p = 0, b = 0;
			uint32_t k = keys[i];

			for (size_t c = 0; c < ncpu; c++) {
				p += vals[i * ncpu + c].packets;
				b += vals[i * ncpu + c].bytes;
			}
			if (!p && !b)
				continue;
			ret = cb(arg, k / (VAKT_DIR_MAX * VAKT_R_MAX), (int)(k / VAKT_R_MAX % VAKT_DIR_MAX),
				 (int)(k % VAKT_R_MAX), p, b);
			if (ret)
				goto out;
		}
		if (err) /* ENOENT: that was the last chunk */
			break;
		in = out;
		first = 0;
	}
out:
	free(keys);
	free(vals);
	return ret;
}

static int count_keys(int fd, uint32_t key_size, uint64_t *n)
{
	unsigned char cur[256], next[256];
	void *prev = NULL;

	if (key_size > sizeof(cur))
		return -E2BIG;
	*n = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		(*n)++;
		memcpy(cur, next, key_size);
		prev = cur;
	}
	return errno == ENOENT ? 0 : -errno;
}

int vakt_dataplane_map_usage(struct vakt_dataplane *dp, const char *map, uint64_t *entries,
			     uint64_t *capacity)
{
	struct bpf_map *m = bpf_object__find_map_by_name(dp->skel->obj, map);
	enum bpf_map_type type;

	if (!m || bpf_map__is_internal(m))
		return -ENOENT;
	*capacity = bpf_map__max_entries(m);
	for (int id = 0; id < VAKT_T_COUNT; id++) {
		if (!strcmp(map, vakt_table_name((enum vakt_table_id)id))) {
			*entries = dp->entries[id];
			return 0;
		}
	}
	type = bpf_map__type(m);
	if (type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	    type == BPF_MAP_TYPE_RINGBUF) {
		/* Arrays are always full by construction; a ring buffer has no entries. */
		*entries = type == BPF_MAP_TYPE_RINGBUF ? 0 : *capacity;
		return 0;
	}
	return count_keys(bpf_map__fd(m), bpf_map__key_size(m), entries);
}

void vakt_dataplane_stats(const struct vakt_dataplane *dp, struct vakt_dataplane_stats *out)
{
	*out = dp->stats;
}

int vakt_dataplane_map_fd(const struct vakt_dataplane *dp, const char *map)
{
	int fd = bpf_object__find_map_fd_by_name(dp->skel->obj, map);

	return fd < 0 ? -ENOENT : fd;
}

int vakt_dataplane_prog_fd(const struct vakt_dataplane *dp, const char *prog)
{
	struct bpf_program *p = bpf_object__find_program_by_name(dp->skel->obj, prog);

	return p ? bpf_program__fd(p) : -ENOENT;
}
