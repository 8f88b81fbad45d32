// SPDX-License-Identifier: Apache-2.0
/* Proves include/vakt/verdict.h compiles for BPF with map-backed lookups. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

typedef void *vakt_ctx_t;
#define VAKT_INLINE __always_inline
#include "vakt/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct vakt_addr);
	__type(value, struct vakt_ip_val);
} ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vakt_cidr_key);
	__type(value, struct vakt_cidr_val);
} cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vakt_policy_key);
	__type(value, struct vakt_policy_val);
} policy SEC(".maps");

static __always_inline const struct vakt_ip_val *vakt_lookup_ipcache(vakt_ctx_t c, const struct vakt_addr *a)
{
	return bpf_map_lookup_elem(&ipcache, a);
}
static __always_inline const struct vakt_cidr_val *vakt_lookup_cidr(vakt_ctx_t c, const struct vakt_cidr_key *k)
{
	return bpf_map_lookup_elem(&cidr, k);
}
static __always_inline const struct vakt_policy_val *vakt_lookup_policy(vakt_ctx_t c, const struct vakt_policy_key *k)
{
	return bpf_map_lookup_elem(&policy, k);
}

#include "vakt/verdict.h"

SEC("tc")
int verdict_check(struct __sk_buff *skb)
{
	struct vakt_ep_val ep = { .policy = { 1, 1 }, .flags = ~0U & ~VAKT_EPF_FAIL_CLOSED };
	struct vakt_addr self = {};
	struct vakt_flow f = { .dport = 80, .proto = 6, .dir = (__u8)(skb->len & 1) };
	struct vakt_verdict v;

	f.peer.b[15] = (__u8)skb->len;
	return vakt_verdict(0, &ep, &self, &f, &v);
}

char LICENSE[] SEC("license") = "GPL";
