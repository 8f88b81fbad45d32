// SPDX-License-Identifier: Apache-2.0
#include "pkt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

struct vakt_addr pk_addr(const char *text)
{
	struct vakt_addr a = { 0 };
	struct in_addr v4;

	if (inet_pton(AF_INET, text, &v4) == 1) {
		a.b[10] = 0xff;
		a.b[11] = 0xff;
		memcpy(&a.b[12], &v4, 4);
		return a;
	}
	if (inet_pton(AF_INET6, text, a.b) == 1)
		return a;
	fprintf(stderr, "pk_addr: bad address %s\n", text);
	abort();
}

static int is_v6(const struct pk_spec *s)
{
	return strchr(s->src, ':') != NULL;
}

static uint8_t proto_of(const struct pk_spec *s)
{
	return s->proto ? s->proto : IPPROTO_TCP;
}

size_t pk_l3_off(const struct pk_spec *s)
{
	return 14 + (s->vlan ? 4 : 0);
}

static size_t l3_len(const struct pk_spec *s)
{
	if (!is_v6(s))
		return 20;
	return 40 + (s->v6_ext ? 16 : 0) + (s->frag ? 8 : 0);
}

size_t pk_l4_off(const struct pk_spec *s)
{
	return pk_l3_off(s) + l3_len(s);
}

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

/* L4 header and payload of s at p; returns the bytes written or 0. */
static size_t build_l4(const struct pk_spec *s, uint8_t *p, size_t cap)
{
	uint8_t proto = proto_of(s);
	size_t n;

	if (s->frag == PK_FRAG_LATER) {
		n = s->payload ? s->payload : 64;
		if (n > cap)
			return 0;
		memset(p, 0, n);
		return n;
	}
	switch (proto) {
	case IPPROTO_TCP:
		n = 20;
		break;
	case IPPROTO_UDP:
		n = 8;
		break;
	case IPPROTO_SCTP:
		n = 16;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		n = 8;
		break;
	default:
		n = 8; /* some header of the protocol (GRE, ESP, ...): zeros */
		break;
	}
	if (n + s->payload > cap)
		return 0;
	memset(p, 0, n + s->payload);
	switch (proto) {
	case IPPROTO_TCP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		p[12] = 5 << 4;
		p[13] = s->tcp_flags ? s->tcp_flags : PK_TCP_ACK;
		put16(p + 14, 65535);
		break;
	case IPPROTO_UDP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put16(p + 4, (uint16_t)(8 + s->payload));
		break;
	case IPPROTO_SCTP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		p[12] = s->sctp_chunk;
		put16(p + 14, 4);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		p[0] = s->icmp_type;
		p[1] = s->icmp_code;
		put16(p + 4, s->icmp_id);
		break;
	}
	return n + s->payload;
}

/* IP packet (no Ethernet) of s at p; returns its length or 0. */
static size_t build_ip(const struct pk_spec *s, uint8_t *p, size_t cap)
{
	uint8_t proto = proto_of(s);
	struct vakt_addr sa = pk_addr(s->src), da = pk_addr(s->dst);
	size_t hl = l3_len(s), l4;
	uint8_t *q;

	if (hl > cap)
		return 0;
	memset(p, 0, hl);
	l4 = build_l4(s, p + hl, cap - hl);
	if (!l4)
		return 0;
	/* ICMP errors quote the inner packet after the 8-byte ICMP header. */
	if (s->inner && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) &&
	    s->frag != PK_FRAG_LATER) {
		size_t in = build_ip(s->inner, p + hl + 8, cap - hl - 8);

		if (!in)
			return 0;
		l4 = 8 + in;
	}
	if (!is_v6(s)) {
		p[0] = 0x45;
		put16(p + 2, (uint16_t)(hl + l4));
		put16(p + 4, (uint16_t)s->frag_id);
		if (s->frag == PK_FRAG_FIRST)
			put16(p + 6, 0x2000);
		else if (s->frag == PK_FRAG_LATER)
			put16(p + 6, 0x2000 | 185); /* offset 1480 */
		p[8] = 64;
		p[9] = proto;
		memcpy(p + 12, &sa.b[12], 4);
		memcpy(p + 16, &da.b[12], 4);
		return hl + l4;
	}
	p[0] = 0x60;
	put16(p + 4, (uint16_t)(hl - 40 + l4));
	p[7] = 64;
	memcpy(p + 8, sa.b, 16);
	memcpy(p + 24, da.b, 16);
	q = p + 40;
	{
		uint8_t *nh = &p[6];

		if (s->v6_ext) {
			*nh = 0; /* hop-by-hop */
			nh = q;
			q[1] = 0; /* 8 bytes */
			q[2] = 1; /* PadN */
			q[3] = 4;
			q += 8;
			*nh = 60; /* destination options */
			nh = q;
			q[1] = 0;
			q[2] = 1;
			q[3] = 4;
			q += 8;
		}
		if (s->frag) {
			*nh = 44;
			nh = q;
			if (s->frag == PK_FRAG_FIRST)
				put16(q + 2, 1);
			else
				put16(q + 2, (uint16_t)((1480 / 8) << 3 | 1));
			put32(q + 4, s->frag_id);
			q += 8;
		}
		*nh = proto;
	}
	return hl + l4;
}

size_t pk_build(const struct pk_spec *s, uint8_t *buf, size_t cap)
{
	size_t off = pk_l3_off(s), n;

	if (cap < off)
		return 0;
	memset(buf, 0, off);
	memcpy(buf, "\x02\x00\x00\x00\x00\x02", 6);
	memcpy(buf + 6, "\x02\x00\x00\x00\x00\x01", 6);
	if (s->vlan) {
		put16(buf + 12, 0x8100);
		put16(buf + 14, 100);
	}
	put16(buf + off - 2, is_v6(s) ? 0x86dd : 0x0800);
	n = build_ip(s, buf + off, cap - off);
	if (!n)
		return 0;
	/* Ethernet's minimum frame: pad short packets like a NIC would. */
	if (!s->no_pad && off + n < 60 && cap >= 60) {
		memset(buf + off + n, 0, 60 - off - n);
		return 60;
	}
	return off + n;
}
