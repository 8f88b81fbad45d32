/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkt.h - packet builders for the datapath tests and benchmarks: Ethernet
 * frames (the start of a TC program's data) carrying IPv4 or IPv6 and TCP,
 * UDP, SCTP, ICMP or ICMPv6, with fragments, extension headers, VLAN tags
 * and ICMP errors that quote another packet. Checksums are not computed:
 * the datapath does not read them.
 */
#ifndef VAKT_TEST_PKT_H
#define VAKT_TEST_PKT_H

#include <stddef.h>
#include <stdint.h>

#include "vakt/maps.h"

#define PK_MAX 2048

#define PK_TCP_FIN 0x01
#define PK_TCP_SYN 0x02
#define PK_TCP_RST 0x04
#define PK_TCP_ACK 0x10

enum pk_frag { PK_FRAG_NONE = 0, PK_FRAG_FIRST, PK_FRAG_LATER };

struct pk_spec {
	const char *src, *dst; /* IPv4 or IPv6 text; the family follows src */
	uint8_t proto;         /* IPPROTO_*; 0 means TCP */
	uint16_t sport, dport; /* host order; ICMP: dport unused */
	uint8_t tcp_flags;     /* PK_TCP_*; 0 means ACK */
	uint8_t sctp_chunk;    /* first chunk type (1 INIT, 6 ABORT, ...); 0 means DATA */
	uint8_t icmp_type;     /* ICMP/ICMPv6 type */
	uint8_t icmp_code;
	uint16_t icmp_id;      /* echo id */
	enum pk_frag frag;
	uint32_t frag_id;
	uint16_t payload;      /* L4 payload bytes (zeros) */
	int vlan;              /* add an 802.1Q tag */
	int v6_ext;            /* IPv6: hop-by-hop and destination options headers */
	int no_pad;            /* no padding to Ethernet's 60-byte minimum (a veth does not pad) */
	const struct pk_spec *inner; /* ICMP error: the quoted packet */
};

/* Text address -> struct vakt_addr (IPv4 as ::ffff:a.b.c.d). Aborts on bad text. */
struct vakt_addr pk_addr(const char *text);

/* Builds the frame into buf; returns its length, or 0 if it does not fit. */
size_t pk_build(const struct pk_spec *s, uint8_t *buf, size_t cap);

/* Offsets in a built frame, for tests that corrupt headers. */
size_t pk_l3_off(const struct pk_spec *s);
size_t pk_l4_off(const struct pk_spec *s);

#endif /* VAKT_TEST_PKT_H */
