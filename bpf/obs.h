/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obs.h - per-CPU counters for every verdict and rate-limited drop events.
 * Expects the maps counters, events and event_rl and the rodata
 * cfg_event_rate_per_sec to be defined by the includer.
 */
#ifndef VAKT_BPF_OBS_H
#define VAKT_BPF_OBS_H

#include "vakt/datapath.h"

#ifndef VAKT_NSEC_PER_SEC
#define VAKT_NSEC_PER_SEC 1000000000ULL
#endif

static __always_inline void count(__u32 ep_id, __u32 dir, __u32 reason, __u32 bytes)
{
	struct vakt_counter *c;
	__u32 idx;

	if (ep_id >= VAKT_MAX_ENDPOINTS || reason >= VAKT_R_MAX)
		ep_id = 0;
	idx = vakt_counter_index(ep_id, dir & 1, reason & (VAKT_R_MAX - 1));
	c = bpf_map_lookup_elem(&counters, &idx);
	if (!c)
		return;
	/* Per-CPU slot: no other writer, no atomics needed. */
	c->packets++;
	c->bytes += bytes;
}

/*
 * Token bucket per CPU, in token-nanoseconds: a token is worth 1e9; elapsed
 * time adds rate tokens per second, capped at one second's worth (the
 * burst). A flood costs at most cfg_event_rate_per_sec events per CPU per
 * second, so the agent's reader is never starved.
 */
static __always_inline int event_allowed(__u64 now)
{
	struct vakt_event_rl *rl;
	__u32 zero = 0;
	__u64 rate = cfg_event_rate_per_sec, cap, add;

	rl = bpf_map_lookup_elem(&event_rl, &zero);
	if (!rl || !rate)
		return 0;
	cap = rate * VAKT_NSEC_PER_SEC;
	if (now > rl->last_ns) {
		add = now - rl->last_ns;
		/* avoid overflowing rate * elapsed after a long idle period */
		if (add > VAKT_NSEC_PER_SEC)
			add = VAKT_NSEC_PER_SEC;
		rl->tokens += add * rate;
		if (rl->tokens > cap)
			rl->tokens = cap;
		rl->last_ns = now;
	}
	if (rl->tokens < VAKT_NSEC_PER_SEC) {
		rl->suppressed++;
		return 0;
	}
	rl->tokens -= VAKT_NSEC_PER_SEC;
	return 1;
}

static __always_inline void event_ring_full(void)
{
	struct vakt_event_rl *rl;
	__u32 zero = 0;

	rl = bpf_map_lookup_elem(&event_rl, &zero);
	if (rl)
		rl->ring_full++;
}

static __always_inline void drop_event(struct __sk_buff *skb, const struct vakt_ct_key *k,
				       __u32 ep_id, __u32 dir, __u32 reason)
{
	struct vakt_drop_event *e;
	__u64 now = bpf_ktime_get_ns();

	if (!event_allowed(now))
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		event_ring_full();
		return;
	}
	e->ts_ns = now;
	e->saddr = k->saddr;
	e->daddr = k->daddr;
	e->sport = k->sport;
	e->dport = k->dport;
	e->proto = k->proto;
	e->dir = (__u8)dir;
	e->reason = (__u8)reason;
	e->pad = 0;
	e->ep_id = ep_id;
	e->ifindex = skb->ifindex;
	bpf_ringbuf_submit(e, 0);
}

#endif /* VAKT_BPF_OBS_H */
