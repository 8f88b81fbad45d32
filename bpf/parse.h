/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.h - packet parsing for the TC programs: small bounds-checked
 * helpers that advance a cursor (an offset into the skb).
 *
 * The common case (untagged IPv4 without options or IPv6 without extension
 * headers, TCP or UDP, no fragment) is read in place from the linear area by
 * parse_fast(): three bpf_skb_load_bytes() calls cost a third of an
 * established packet. Everything else, and any packet whose headers are not
 * all linear (GRO-built skbs on veth often keep L4 headers outside the
 * linear area), goes to the general parser, which copies headers with
 * bpf_skb_load_bytes(): one bounds check that the verifier and the reader
 * both understand, and one path for the verifier per header instead of two.
 */
#ifndef VAKT_BPF_PARSE_H
#define VAKT_BPF_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#include "vakt/datapath.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define VAKT_NEXTHDR_HOP 0
#define VAKT_NEXTHDR_ROUTING 43
#define VAKT_NEXTHDR_FRAGMENT 44
#define VAKT_NEXTHDR_AH 51
#define VAKT_NEXTHDR_DEST 60
/* Extension headers walked before giving up; real traffic carries 0-2. */
#define VAKT_IPV6_EXT_MAX 6

/* ICMP types (linux/icmp.h drags in libc headers that do not build for BPF). */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

#define VAKT_IP_MF 0x2000
#define VAKT_IP_OFFSET 0x1fff

/* What the parser found. */
enum pkt_kind {
	PK_IP = 0,         /* IPv4/IPv6, headers valid as far as parsed */
	PK_NOT_IP,         /* non-IP ethertype (not pod IP traffic) */
	PK_ARP,            /* ARP */
	PK_BAD_L3,         /* IP ethertype, unreadable or invalid IP header */
	PK_BAD_L4,         /* IP header fine, L4 header truncated or invalid */
};

enum pkt_frag {
	PF_NONE = 0,
	PF_FIRST = 1, /* offset 0, more fragments: carries the L4 header */
	PF_LATER = 2, /* offset > 0: no L4 header */
};

enum pkt_icmp {
	PI_NONE = 0,
	PI_ECHO,    /* echo request or reply: id is the port */
	PI_ERROR,   /* error carrying an inner packet (inner is valid) */
	PI_CONTROL, /* IPv6 neighbour discovery, MLD */
};

struct pkt {
	struct vakt_ct_key k;     /* addresses, ports, proto as seen on the wire */
	struct vakt_ct_key inner; /* the packet inside an ICMP error */
	__u32 frag_id;
	__u16 vport;  /* destination port for the verdict, host order (0: portless) */
	__u8 kind;    /* enum pkt_kind */
	__u8 frag;    /* enum pkt_frag */
	__u8 icmp;    /* enum pkt_icmp */
	__u8 tcp_flags;
	__u8 chunk;   /* first SCTP chunk type */
	__u8 v6;
};

#define VAKT_TCP_FIN 0x01
#define VAKT_TCP_SYN 0x02
#define VAKT_TCP_RST 0x04
#define VAKT_TCP_ACK 0x10

#define VAKT_SCTP_INIT 1
#define VAKT_SCTP_INIT_ACK 2
#define VAKT_SCTP_ABORT 6
#define VAKT_SCTP_SHUTDOWN 7
#define VAKT_SCTP_SHUTDOWN_ACK 8
#define VAKT_SCTP_SHUTDOWN_COMPLETE 14

static __always_inline int ld(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	return bpf_skb_load_bytes(skb, off, to, len);
}

static __always_inline void addr_from_v4(struct vakt_addr *a, __be32 ip)
{
	__u32 *w = (__u32 *)a->b;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0xffff);
	w[3] = ip;
}

static __always_inline int addr_is_v4mapped(const struct vakt_addr *a)
{
	const __u32 *w = (const __u32 *)a->b;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

/* Ports of an L4 header at off into k; the protocol is k->proto. */
static __always_inline int parse_ports(struct __sk_buff *skb, __u32 off, __u32 end,
				       struct vakt_ct_key *k, __u8 *tcp_flags, __u8 *chunk,
				       __u8 *icmp_type, int outer)
{
	__u8 b[16];

	switch (k->proto) {
	case IPPROTO_TCP:
		/* ports, seq, ack, data offset, flags */
		if (off + 20 > end || ld(skb, off, b, 14))
			return -1;
		if (outer && ((b[12] >> 4) < 5 || off + (__u32)(b[12] >> 4) * 4 > end))
			return -1;
		*tcp_flags = b[13];
		break;
	case IPPROTO_UDP:
		if (off + 8 > end || ld(skb, off, b, 8))
			return -1;
		break;
	case IPPROTO_SCTP:
		/* common header (12) and the first chunk's type */
		if (outer) {
			if (off + 16 > end || ld(skb, off, b, 13))
				return -1;
			*chunk = b[12];
		} else if (off + 8 > end || ld(skb, off, b, 4)) {
			return -1;
		}
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (off + 8 > end || ld(skb, off, b, 8))
			return -1;
		*icmp_type = b[0];
		k->sport = 0;
		k->dport = 0;
		if ((k->proto == IPPROTO_ICMP && b[0] == ICMP_ECHO) ||
		    (k->proto == IPPROTO_ICMPV6 && b[0] == ICMPV6_ECHO_REQUEST))
			__builtin_memcpy(&k->sport, &b[4], 2);
		else if ((k->proto == IPPROTO_ICMP && b[0] == ICMP_ECHOREPLY) ||
			 (k->proto == IPPROTO_ICMPV6 && b[0] == ICMPV6_ECHO_REPLY))
			__builtin_memcpy(&k->dport, &b[4], 2);
		return 0;
	default:
		k->sport = 0;
		k->dport = 0;
		return 0;
	}
	__builtin_memcpy(&k->sport, &b[0], 2);
	__builtin_memcpy(&k->dport, &b[2], 2);
	return 0;
}

/*
 * The packet inside an ICMP error: its IP header and the first 8 bytes of
 * its L4 header (all RFC 792 guarantees). Returns 0 if a tuple was read.
 * Inner IPv6 packets are matched without extension headers.
 */
static __always_inline int parse_inner(struct __sk_buff *skb, __u32 off, int v6, struct pkt *p)
{
	struct vakt_ct_key *k = &p->inner;
	__u8 unused8, itype = 0;
	__u32 end = skb->len;

	if (!v6) {
		struct iphdr ip;

		if (ld(skb, off, &ip, sizeof(ip)) || ip.version != 4 || ip.ihl < 5)
			return -1;
		if (ip.frag_off & bpf_htons(VAKT_IP_OFFSET))
			return -1;
		addr_from_v4(&k->saddr, ip.saddr);
		addr_from_v4(&k->daddr, ip.daddr);
		k->proto = ip.protocol;
		off += ip.ihl * 4;
	} else {
		struct ipv6hdr ip6;

		if (ld(skb, off, &ip6, sizeof(ip6)) || ip6.version != 6)
			return -1;
		__builtin_memcpy(k->saddr.b, &ip6.saddr, 16);
		__builtin_memcpy(k->daddr.b, &ip6.daddr, 16);
		k->proto = ip6.nexthdr;
		off += sizeof(ip6);
	}
	if (parse_ports(skb, off, end, k, &unused8, &unused8, &itype, 0))
		return -1;
	return 0;
}

static __always_inline int icmp4_is_error(__u8 t)
{
	return t == ICMP_DEST_UNREACH || t == ICMP_TIME_EXCEEDED || t == ICMP_PARAMETERPROB;
}

static __always_inline int icmp6_is_error(__u8 t)
{
	return t == ICMPV6_DEST_UNREACH || t == ICMPV6_PKT_TOOBIG || t == ICMPV6_TIME_EXCEED ||
	       t == ICMPV6_PARAMPROB;
}

/* Neighbour discovery (RS, RA, NS, NA, redirect) and MLD: link control. */
static __always_inline int icmp6_is_control(__u8 t)
{
	return (t >= 130 && t <= 137) || t == 143;
}

/* IPv4 header at off. Fills addresses, proto, the L4 offset and end. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, __u32 off, struct pkt *p, __u32 *l4,
				      __u32 *end)
{
	struct iphdr ip;
	__u32 tot, hl;
	__u16 fo;

	if (ld(skb, off, &ip, sizeof(ip)) || ip.version != 4 || ip.ihl < 5)
		return -1;
	hl = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	/* BIG TCP (IPv4 GSO beyond 64k) leaves tot_len 0; only then trust skb->len. */
	if (tot == 0 && skb->gso_size)
		tot = skb->len - off;
	if (tot < hl || off + tot > skb->len)
		return -1;
	*end = off + tot;
	addr_from_v4(&p->k.saddr, ip.saddr);
	addr_from_v4(&p->k.daddr, ip.daddr);
	p->k.proto = ip.protocol;
	fo = bpf_ntohs(ip.frag_off);
	if (fo & VAKT_IP_OFFSET)
		p->frag = PF_LATER;
	else if (fo & VAKT_IP_MF)
		p->frag = PF_FIRST;
	p->frag_id = bpf_ntohs(ip.id);
	*l4 = off + hl;
	return 0;
}

/* IPv6 header and extension headers. Fills proto and the L4 offset. */
static __always_inline int parse_ipv6(struct __sk_buff *skb, __u32 off, struct pkt *p, __u32 *l4,
				      __u32 *end)
{
	struct ipv6hdr ip6;
	__u32 plen;
	__u8 nh;
	int i;

	if (ld(skb, off, &ip6, sizeof(ip6)) || ip6.version != 6)
		return -1;
	plen = bpf_ntohs(ip6.payload_len);
	/* BIG TCP / jumbograms: payload_len 0 on a GSO skb. */
	if (plen == 0 && skb->gso_size)
		plen = skb->len - off - sizeof(ip6);
	if (plen == 0 || off + sizeof(ip6) + plen > skb->len)
		return -1;
	*end = off + sizeof(ip6) + plen;
	__builtin_memcpy(p->k.saddr.b, &ip6.saddr, 16);
	__builtin_memcpy(p->k.daddr.b, &ip6.daddr, 16);
	/*
	 * IPv4-mapped addresses never appear on the wire (RFC 4291 2.5.5.2; the
	 * kernel drops them later). Here they would alias the IPv4 addresses of
	 * our tables, so refuse them before any lookup.
	 */
	if (addr_is_v4mapped(&p->k.saddr) || addr_is_v4mapped(&p->k.daddr))
		return -1;
	p->v6 = 1;
	nh = ip6.nexthdr;
	off += sizeof(ip6);

#pragma unroll
	for (i = 0; i < VAKT_IPV6_EXT_MAX; i++) {
		__u8 h[8];

		switch (nh) {
		case VAKT_NEXTHDR_HOP:
		case VAKT_NEXTHDR_ROUTING:
		case VAKT_NEXTHDR_DEST:
			if (off + 8 > *end || ld(skb, off, h, 2))
				return -1;
			nh = h[0];
			off += ((__u32)h[1] + 1) * 8;
			break;
		case VAKT_NEXTHDR_AH:
			if (off + 8 > *end || ld(skb, off, h, 2))
				return -1;
			nh = h[0];
			off += ((__u32)h[1] + 2) * 4;
			break;
		case VAKT_NEXTHDR_FRAGMENT: {
			__u16 fo;

			if (off + 8 > *end || ld(skb, off, h, 8))
				return -1;
			nh = h[0];
			fo = ((__u16)h[2] << 8) | h[3];
			p->frag_id = ((__u32)h[4] << 24) | ((__u32)h[5] << 16) |
				     ((__u32)h[6] << 8) | h[7];
			off += 8;
			if (fo & 0xfff8) {
				p->frag = PF_LATER;
				p->k.proto = nh;
				*l4 = off;
				return 0;
			}
			if (fo & 1)
				p->frag = PF_FIRST;
			break;
		}
		default:
			p->k.proto = nh;
			*l4 = off;
			return 0;
		}
	}
	/* Still inside extension headers after the bound: refuse. */
	return -1;
}

/*
 * The common case, read in place from the linear area: untagged Ethernet,
 * IPv4 without options or IPv6 without extension headers, no fragment, TCP
 * or UDP. It fills p exactly as the general parser below would, and returns
 * 0 when the packet is anything else (or its headers are not all linear):
 * then the general parser decides. One bounds check per family covers the
 * IP header and the 8 bytes every L4 header here has (a UDP header), one
 * more the first 14 bytes of a TCP header, so that the verifier explores a
 * few extra paths, not one per header; a UDP datagram with a payload of
 * under 6 bytes (which a single 14-byte check refused) stays on this path.
 */
static __always_inline int parse_fast(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 l4, end, need;
	__u8 *th;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) + 8 > data_end)
			return 0;
		if (*(__u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(VAKT_IP_MF | VAKT_IP_OFFSET)))
			return 0;
		end = ETH_HLEN + bpf_ntohs(ip->tot_len);
		if (end < ETH_HLEN + sizeof(*ip) || end > skb->len)
			return 0;
		addr_from_v4(&p->k.saddr, ip->saddr);
		addr_from_v4(&p->k.daddr, ip->daddr);
		p->k.proto = ip->protocol;
		p->frag_id = bpf_ntohs(ip->id);
		th = (void *)(ip + 1);
		l4 = ETH_HLEN + sizeof(*ip);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) + 8 > data_end)
			return 0;
		if (ip6->version != 6 || ip6->payload_len == 0)
			return 0;
		end = ETH_HLEN + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		if (end > skb->len)
			return 0;
		__builtin_memcpy(p->k.saddr.b, &ip6->saddr, 16);
		__builtin_memcpy(p->k.daddr.b, &ip6->daddr, 16);
		if (addr_is_v4mapped(&p->k.saddr) || addr_is_v4mapped(&p->k.daddr))
			return 0;
		p->v6 = 1;
		p->k.proto = ip6->nexthdr;
		th = (void *)(ip6 + 1);
		l4 = ETH_HLEN + sizeof(*ip6);
	} else {
		return 0;
	}
	if (p->k.proto == IPPROTO_TCP) {
		/* ports, seq, ack, data offset, flags: the TCP header's first 14 bytes */
		if ((void *)(th + 14) > data_end)
			return 0;
		need = (__u32)(th[12] >> 4) * 4;
		if (need < 20 || l4 + need > end)
			return 0;
		p->tcp_flags = th[13];
	} else if (p->k.proto == IPPROTO_UDP) {
		if (l4 + 8 > end)
			return 0;
	} else {
		return 0;
	}
	__builtin_memcpy(&p->k.sport, th, 2);
	__builtin_memcpy(&p->k.dport, th + 2, 2);
	p->vport = bpf_ntohs(p->k.dport);
	return 1;
}

/*
 * parse_general - Ethernet (up to two VLAN tags), IPv4/IPv6, then the L4
 * header unless the packet is a later fragment. Returns enum pkt_kind.
 */
static __always_inline int parse_general(struct __sk_buff *skb, struct pkt *p)
{
	__u32 off = ETH_HLEN, l4 = 0, end = 0;
	__u8 icmp_type = 0;
	__be16 proto;
	int i;

	if (ld(skb, 12, &proto, 2))
		return PK_NOT_IP;
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (ld(skb, off + 2, &proto, 2))
			return PK_NOT_IP;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_ARP))
		return PK_ARP;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_ipv4(skb, off, p, &l4, &end))
			return PK_BAD_L3;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ipv6(skb, off, p, &l4, &end))
			return PK_BAD_L3;
	} else {
		return PK_NOT_IP;
	}
	if (p->frag == PF_LATER)
		return PK_IP;
	if (parse_ports(skb, l4, end, &p->k, &p->tcp_flags, &p->chunk, &icmp_type, 1))
		return PK_BAD_L4;

	switch (p->k.proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		p->vport = bpf_ntohs(p->k.dport);
		break;
	case IPPROTO_ICMP:
		if (icmp_type == ICMP_ECHO || icmp_type == ICMP_ECHOREPLY)
			p->icmp = PI_ECHO;
		else if (icmp4_is_error(icmp_type) && !p->v6 && !parse_inner(skb, l4 + 8, 0, p))
			p->icmp = PI_ERROR;
		break;
	case IPPROTO_ICMPV6:
		if (icmp_type == ICMPV6_ECHO_REQUEST || icmp_type == ICMPV6_ECHO_REPLY)
			p->icmp = PI_ECHO;
		else if (icmp6_is_control(icmp_type))
			p->icmp = PI_CONTROL;
		else if (icmp6_is_error(icmp_type) && p->v6 && !parse_inner(skb, l4 + 8, 1, p))
			p->icmp = PI_ERROR;
		break;
	}
	return PK_IP;
}

/* parse - any packet: the common case in place, else the general parser. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	if (parse_fast(skb, p))
		return PK_IP;
	return parse_general(skb, p);
}

#endif /* VAKT_BPF_PARSE_H */
