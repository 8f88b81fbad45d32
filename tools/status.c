// SPDX-License-Identifier: Apache-2.0
/*
 * status.c - `vakt status`: what the datapath enforces right now, read from
 * the maps vaktd pinned (no agent needed, works while vaktd is down).
 *
 *   vakt status [--bpffs DIR] [-o text|json]
 *
 * Endpoints (endpoints + ep_meta maps) with their isolation and policy entry
 * counts per direction, map fill levels, non-zero counters by endpoint,
 * direction and reason, and the programs attached to the interfaces of the
 * network namespace the command runs in (so run it where vaktd runs to see
 * the attach mode: `nsenter --net=... vakt status`).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "attach.h"
#include "cli.h"
#include "model.h"
#include "reasons.h"
#include "vakt/datapath.h"

#define DEFAULT_BPFFS "/sys/fs/bpf/vakt"

static const char status_usage[] =
	"usage: vakt status [--bpffs DIR] [-o text|json]\n"
	"\n"
	"Shows what the vakt datapath enforces, read from the maps vaktd pinned under DIR\n"
	"(default " DEFAULT_BPFFS "): local endpoints and their isolation per direction,\n"
	"policy entries per endpoint, map fill levels, packet counters by endpoint, direction\n"
	"and reason, and our programs on the interfaces of the current network namespace.\n";

struct ep {
	struct vakt_addr addr[VAKT_POD_MAX_IPS];
	__u32 bound[VAKT_POD_MAX_IPS]; /* ep_ifindex: the veth each address is bound to, 0 none */
	size_t naddr;
	struct vakt_ep_val val;
	struct vakt_ep_meta meta;
};

struct status {
	const char *dir;
	struct ep *eps;
	size_t neps;
	size_t policy_entries_cap;
	uint32_t *policy_entries; /* by endpoint policy id (index), counted from the policy map */
	size_t npolicy_ids;
	json_t *root;
};

static int open_map(const char *dir, const char *name, struct bpf_map_info *info)
{
	char path[512];
	__u32 len = sizeof(*info);
	int fd;

	memset(info, 0, sizeof(*info));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "vakt status: cannot open pinned map %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len)) {
		fprintf(stderr, "vakt status: %s: map info: %s\n", path, strerror(errno));
		close(fd);
		return -errno;
	}
	return fd;
}

/* Number of keys in a hash, LRU or LPM map; arrays report max_entries. */
static long count_entries(int fd, const struct bpf_map_info *info)
{
	unsigned char key[256], next[256];
	long n = 0;
	void *prev = NULL;

	if (info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return info->max_entries;
	if (info->key_size > sizeof(key))
		return -EINVAL;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, info->key_size);
		prev = key;
		n++;
	}
	return n;
}

static struct ep *find_ep(struct status *st, __u32 ep_id)
{
	for (size_t i = 0; i < st->neps; i++)
		if (st->eps[i].val.ep_id == ep_id)
			return &st->eps[i];
	return NULL;
}

static int load_endpoints(struct status *st)
{
	struct bpf_map_info info, minfo;
	struct vakt_addr key, *prev = NULL;
	int fd, mfd, bfd, err = 0;
	char path[512];

	/* Older pins have no bindings: then every address shows 0 (unchecked). */
	snprintf(path, sizeof(path), "%s/%s", st->dir, VAKT_MAP_EP_IFINDEX);
	bfd = bpf_obj_get(path);
	fd = open_map(st->dir, VAKT_MAP_ENDPOINTS, &info);
	if (fd < 0) {
		err = fd;
		goto out_bfd;
	}
	mfd = open_map(st->dir, VAKT_MAP_EP_META, &minfo);
	if (mfd < 0) {
		err = mfd;
		goto out_fd;
	}
	st->eps = calloc(info.max_entries ? info.max_entries : 1, sizeof(*st->eps));
	if (!st->eps) {
		err = -ENOMEM;
		goto out;
	}
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		struct vakt_ep_val v;
		struct ep *e;

		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue; /* deleted meanwhile */
		e = find_ep(st, v.ep_id);
		if (!e) {
			if (st->neps >= info.max_entries)
				break;
			e = &st->eps[st->neps++];
			e->val = v;
			bpf_map_lookup_elem(mfd, &v.ep_id, &e->meta);
		}
		if (e->naddr < VAKT_POD_MAX_IPS) {
			if (bfd < 0 || bpf_map_lookup_elem(bfd, &key, &e->bound[e->naddr]))
				e->bound[e->naddr] = 0;
			e->addr[e->naddr++] = key;
		}
	}
out:
	close(mfd);
out_fd:
	close(fd);
out_bfd:
	if (bfd >= 0)
		close(bfd);
	return err;
}

static int count_policy_entries(struct status *st)
{
	struct vakt_policy_key key, *prev = NULL;
	struct bpf_map_info info;
	int fd = open_map(st->dir, VAKT_MAP_POLICY, &info);

	if (fd < 0)
		return fd;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (key.policy >= st->npolicy_ids) {
			size_t n = key.policy + 1024;
			uint32_t *p = realloc(st->policy_entries, n * sizeof(*p));

			if (!p) {
				close(fd);
				return -ENOMEM;
			}
			memset(p + st->npolicy_ids, 0, (n - st->npolicy_ids) * sizeof(*p));
			st->policy_entries = p;
			st->npolicy_ids = n;
		}
		st->policy_entries[key.policy]++;
	}
	close(fd);
	return 0;
}

static uint32_t policy_entries(const struct status *st, __u32 id)
{
	return id < st->npolicy_ids ? st->policy_entries[id] : 0;
}

static json_t *dir_json(const struct status *st, const struct vakt_ep_val *v, int dir)
{
	__u32 id = v->policy[dir];

	return json_pack("{s:b, s:I, s:I}", "isolated", id != 0, "policy", (json_int_t)id,
			 "entries", (json_int_t)policy_entries(st, id));
}

static json_t *endpoints_json(const struct status *st)
{
	json_t *arr = json_array();
	char buf[64];

	for (size_t i = 0; i < st->neps; i++) {
		const struct ep *e = &st->eps[i];
		json_t *addrs = json_array(), *bound = json_array();

		for (size_t j = 0; j < e->naddr; j++) {
			json_array_append_new(addrs, json_string(vakt_addr_str(&e->addr[j], buf,
										  sizeof(buf))));
			json_array_append_new(bound, json_integer(e->bound[j]));
		}
		json_array_append_new(
			arr, json_pack("{s:I, s:s, s:s, s:o, s:o, s:I, s:I, s:b, s:o, s:o}", "ep_id",
				       (json_int_t)e->val.ep_id, "namespace", e->meta.ns, "pod",
				       e->meta.name, "addresses", addrs, "bound_ifindex", bound,
				       "identity",
				       (json_int_t)e->val.identity, "ifindex",
				       (json_int_t)e->val.ifindex, "fail_closed",
				       !!(e->val.flags & VAKT_EPF_FAIL_CLOSED), "ingress",
				       dir_json(st, &e->val, VAKT_DIR_INGRESS), "egress",
				       dir_json(st, &e->val, VAKT_DIR_EGRESS)));
	}
	return arr;
}

static json_t *maps_json(const struct status *st)
{
	static const char *const names[] = { VAKT_MAP_IPCACHE, VAKT_MAP_ENDPOINTS, VAKT_MAP_CIDR,
					     VAKT_MAP_POLICY, VAKT_MAP_CT, VAKT_MAP_FRAGS };
	json_t *arr = json_array();

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct bpf_map_info info;
		int fd = open_map(st->dir, names[i], &info);
		long n;

		if (fd < 0)
			continue;
		n = count_entries(fd, &info);
		close(fd);
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "name", names[i], "entries",
						     (json_int_t)n, "capacity",
						     (json_int_t)info.max_entries));
	}
	return arr;
}

static void add_counters(json_t *arr, int fd, int ncpu, __u32 ep_id, const struct ep *e)
{
	struct vakt_counter *vals = calloc((size_t)ncpu, sizeof(*vals));

	if (!vals)
		return;
	for (__u32 dir = 0; dir < VAKT_DIR_MAX; dir++) {
		for (__u32 r = 0; r < VAKT_R_MAX; r++) {
			__u32 idx = vakt_counter_index(ep_id, dir, r);
			__u64 pk = 0, by = 0;

			if (bpf_map_lookup_elem(fd, &idx, vals))
				continue;
			for (int c = 0; c < ncpu; c++) {
				pk += vals[c].packets;
				by += vals[c].bytes;
			}
			if (!pk)
				continue;
			json_array_append_new(
				arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "ep_id",
					       (json_int_t)ep_id, "namespace", e ? e->meta.ns : "",
					       "pod", e ? e->meta.name : "", "direction",
					       vakt_dir_name(dir), "reason", vakt_reason_name(r),
					       "drop", vakt_reason_is_drop(r), "packets",
					       (json_int_t)pk, "bytes", (json_int_t)by));
		}
	}
	free(vals);
}

static json_t *counters_json(const struct status *st)
{
	struct bpf_map_info info;
	json_t *arr = json_array();
	int ncpu = libbpf_num_possible_cpus();
	int fd = open_map(st->dir, VAKT_MAP_COUNTERS, &info);

	if (fd < 0 || ncpu <= 0)
		return arr;
	/* ep_id 0: packets no local endpoint owns (or out-of-range ids). */
	add_counters(arr, fd, ncpu, 0, NULL);
	for (size_t i = 0; i < st->neps; i++)
		add_counters(arr, fd, ncpu, st->eps[i].val.ep_id, &st->eps[i]);
	close(fd);
	return arr;
}

static int is_ours(const char *name)
{
	static const char *const names[] = { VAKT_PROG_FROM_POD, VAKT_PROG_TO_POD,
					     VAKT_PROG_NODE_EGRESS, VAKT_PROG_NODE_INGRESS };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strncmp(name, names[i], BPF_OBJ_NAME_LEN - 1))
			return 1;
	return 0;
}

/* The lookups of one vakt status run: read-only, and none needs CAP_SYS_ADMIN. */
struct hooks {
	struct vakt_attacher clsact;
	struct vakt_attacher tcx; /* links_dir: <bpffs>/links, where vaktd pins its tcx links */
};

/*
 * The name of program id for the output. Asking the kernel for a program by
 * id needs CAP_SYS_ADMIN, which vakt status run with the DaemonSet's
 * capabilities (kubectl exec) lacks: then "prog_id=<id>", since the pin or
 * the filter already proved the program ours.
 */
static void prog_label(uint32_t id, char *name, size_t len)
{
	if (vakt_prog_name_by_id(id, name, len))
		snprintf(name, len, "prog_id=%u", id);
}

/* Is id on the tcx hook right now (a pin can outlive a detach by someone else)? */
static int tcx_has(int ifindex, enum vakt_hook hook, uint32_t id)
{
	uint32_t ids[64], n = 64;

	if (vakt_tcx_query(ifindex, hook, ids, &n))
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/*
 * Our program on one hook of an interface of this network namespace, found
 * by asking the kernel: our pinned tcx link (matched against the hook's
 * programs), else any tcx program whose name is ours (the name lookup works
 * with CAP_SYS_ADMIN only: links pinned under another --bpffs), else our
 * clsact filter, whose name the filter dump carries. Read-only, so it is
 * safe to run anywhere, also outside vaktd's namespace.
 * Returns 1 (tcx) or 2 (clsact) with its name, 0 if none.
 */
static int hook_prog(const struct hooks *h, int ifindex, enum vakt_hook hook, char *name,
		     size_t len)
{
	uint32_t ids[64], n = 64;
	int id = vakt_tcx_pinned_prog(&h->tcx, ifindex, hook);

	if (id > 0 && tcx_has(ifindex, hook, (uint32_t)id)) {
		prog_label((uint32_t)id, name, len);
		return 1;
	}
	if (!vakt_tcx_query(ifindex, hook, ids, &n)) {
		for (uint32_t i = 0; i < n; i++) {
			if (!vakt_prog_name_by_id(ids[i], name, len) && is_ours(name))
				return 1;
		}
	}
	if (vakt_clsact_prog(&h->clsact, ifindex, hook, name, len) > 0)
		return 2;
	name[0] = '\0';
	return 0;
}

static json_t *attach_json(const char *bpffs)
{
	static const char *const names[] = { VAKT_PROG_FROM_POD, VAKT_PROG_TO_POD,
					     VAKT_PROG_NODE_EGRESS, VAKT_PROG_NODE_INGRESS, NULL };
	struct hooks h = { .clsact = { .mode = VAKT_ATTACH_CLSACT, .names = names },
			   .tcx = { .mode = VAKT_ATTACH_TCX, .names = names } };
	struct if_nameindex *ifs = if_nameindex(), *i;
	json_t *arr = json_array();
	int tcx = 0, cls = 0;

	snprintf(h.tcx.links_dir, sizeof(h.tcx.links_dir), "%s/links", bpffs);
	for (i = ifs; i && i->if_index; i++) {
		char pname[2][64];
		int m[2];

		for (int k = 0; k < 2; k++)
			m[k] = hook_prog(&h, (int)i->if_index, (enum vakt_hook)k, pname[k],
					 sizeof(pname[k]));
		if (!m[0] && !m[1])
			continue;
		tcx += m[0] == 1 || m[1] == 1;
		cls += m[0] == 2 || m[1] == 2;
		json_array_append_new(
			arr, json_pack("{s:s, s:I, s:s, s:s, s:s}", "interface", i->if_name,
				       "ifindex", (json_int_t)i->if_index, "mode",
				       m[0] == 1 || m[1] == 1 ? "tcx" : "clsact", "ingress",
				       pname[0], "egress", pname[1]));
	}
	if (ifs)
		if_freenameindex(ifs);
	return json_pack("{s:s, s:o}", "mode",
			 tcx && cls ? "mixed" : tcx ? "tcx" : cls ? "clsact" : "none (not in this netns)",
			 "interfaces", arr);
}

static int state_json(struct status *st, json_t *root)
{
	struct bpf_map_info info;
	struct vakt_state s = { 0 };
	__u32 zero = 0;
	int fd = open_map(st->dir, VAKT_MAP_STATE, &info);

	if (fd < 0)
		return fd;
	bpf_map_lookup_elem(fd, &zero, &s);
	close(fd);
	json_object_set_new(root, "abi", json_integer(s.abi));
	json_object_set_new(root, "generation", json_integer((json_int_t)s.gen));
	return 0;
}

/* --- text output ------------------------------------------------------------- */

static const char *dir_text(json_t *d, char *buf, size_t len)
{
	if (!json_is_true(json_object_get(d, "isolated")))
		return "open";
	snprintf(buf, len, "isolated, %lld entries",
		 (long long)json_integer_value(json_object_get(d, "entries")));
	return buf;
}

static void print_text(json_t *root)
{
	json_t *v, *attach = json_object_get(root, "attach");
	char b1[64], b2[64], pod[200];
	size_t i;

	printf("vakt status: bpffs=%s abi=%lld generation=%lld attach=%s\n",
	       json_string_value(json_object_get(root, "bpffs")),
	       (long long)json_integer_value(json_object_get(root, "abi")),
	       (long long)json_integer_value(json_object_get(root, "generation")),
	       json_string_value(json_object_get(attach, "mode")));

	printf("\nendpoints (%zu):\n", json_array_size(json_object_get(root, "endpoints")));
	printf("  %-4s %-32s %-16s %-9s %-24s %-24s\n", "EP", "POD", "ADDRESS", "IDENTITY",
	       "INGRESS", "EGRESS");
	json_array_foreach(json_object_get(root, "endpoints"), i, v) {
		json_t *addrs = json_object_get(v, "addresses");

		snprintf(pod, sizeof(pod), "%s/%s", json_string_value(json_object_get(v, "namespace")),
			 json_string_value(json_object_get(v, "pod")));
		printf("  %-4lld %-32s %-16s %-9lld %-24s %-24s%s\n",
		       (long long)json_integer_value(json_object_get(v, "ep_id")), pod,
		       json_array_size(addrs) ? json_string_value(json_array_get(addrs, 0)) : "-",
		       (long long)json_integer_value(json_object_get(v, "identity")),
		       dir_text(json_object_get(v, "ingress"), b1, sizeof(b1)),
		       dir_text(json_object_get(v, "egress"), b2, sizeof(b2)),
		       json_is_true(json_object_get(v, "fail_closed")) ? "  FAIL-CLOSED" : "");
	}

	printf("\nmaps:\n  %-10s %10s %10s %7s\n", "MAP", "ENTRIES", "CAPACITY", "FILL");
	json_array_foreach(json_object_get(root, "maps"), i, v) {
		json_int_t n = json_integer_value(json_object_get(v, "entries"));
		json_int_t cap = json_integer_value(json_object_get(v, "capacity"));

		printf("  %-10s %10lld %10lld %6.2f%%\n",
		       json_string_value(json_object_get(v, "name")), (long long)n, (long long)cap,
		       cap ? 100.0 * (double)n / (double)cap : 0.0);
	}

	printf("\ncounters (non-zero):\n  %-32s %-8s %-14s %-5s %10s %12s\n", "POD", "DIR",
	       "REASON", "", "PACKETS", "BYTES");
	json_array_foreach(json_object_get(root, "counters"), i, v) {
		const char *ns = json_string_value(json_object_get(v, "namespace"));

		if (ns && *ns)
			snprintf(pod, sizeof(pod), "%s/%s", ns,
				 json_string_value(json_object_get(v, "pod")));
		else
			snprintf(pod, sizeof(pod), "(no endpoint)");
		printf("  %-32s %-8s %-14s %-5s %10lld %12lld\n", pod,
		       json_string_value(json_object_get(v, "direction")),
		       json_string_value(json_object_get(v, "reason")),
		       json_is_true(json_object_get(v, "drop")) ? "DROP" : "",
		       (long long)json_integer_value(json_object_get(v, "packets")),
		       (long long)json_integer_value(json_object_get(v, "bytes")));
	}

	printf("\nprograms in this network namespace:\n");
	if (!json_array_size(json_object_get(attach, "interfaces")))
		printf("  none (run vakt status in vaktd's network namespace to see them)\n");
	json_array_foreach(json_object_get(attach, "interfaces"), i, v) {
		printf("  %-16s %-7s ingress=%-18s egress=%s\n",
		       json_string_value(json_object_get(v, "interface")),
		       json_string_value(json_object_get(v, "mode")),
		       json_string_value(json_object_get(v, "ingress")),
		       json_string_value(json_object_get(v, "egress")));
	}
}

static int collect(struct status *st)
{
	json_t *root = json_object();
	int err;

	st->root = root;
	json_object_set_new(root, "bpffs", json_string(st->dir));
	err = state_json(st, root);
	if (!err)
		err = load_endpoints(st);
	if (!err)
		err = count_policy_entries(st);
	if (err)
		return err;
	json_object_set_new(root, "endpoints", endpoints_json(st));
	json_object_set_new(root, "maps", maps_json(st));
	json_object_set_new(root, "counters", counters_json(st));
	json_object_set_new(root, "attach", attach_json(st->dir));
	return 0;
}

int vakt_cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bpffs", required_argument, NULL, 'b' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct status st = { .dir = DEFAULT_BPFFS };
	int json = 0, c, rc = VAKT_EXIT_ERROR;

	while ((c = getopt_long(argc, argv, "b:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			st.dir = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
				fprintf(stderr, "vakt status: -o takes text or json, not '%s'\n",
					optarg);
				return VAKT_EXIT_ERROR;
			}
			json = !strcmp(optarg, "json");
			break;
		case 'h':
			fputs(status_usage, stdout);
			return VAKT_EXIT_OK;
		default:
			fputs(status_usage, stderr);
			return VAKT_EXIT_ERROR;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vakt status: unexpected argument '%s'\n", argv[optind]);
		return VAKT_EXIT_ERROR;
	}
	if (collect(&st))
		goto out;
	if (json) {
		json_dumpf(st.root, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		print_text(st.root);
	}
	rc = VAKT_EXIT_OK;
out:
	json_decref(st.root);
	free(st.eps);
	free(st.policy_entries);
	return rc;
}
