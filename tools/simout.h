/* SPDX-License-Identifier: Apache-2.0 */
/*
 * simout.h - how `vakt sim` prints its answers: text for people, JSON for
 * programs (keys fixed by issue 2; keys may be added, never renamed).
 */
#ifndef VAKT_SIMOUT_H
#define VAKT_SIMOUT_H

#include <jansson.h>
#include <stdio.h>

#include "simcore.h"

/* One answered query. */
struct sim_query {
	struct vakt_end src, dst;
	struct sim_port port; /* as given */
	uint16_t resolved;    /* the number used */
	uint8_t proto;
	struct sim_result res;
};

void sim_query_print_text(FILE *f, const struct sim_world *w, const struct sim_query *q);
/* NULL on allocation failure. */
json_t *sim_query_json(const struct sim_world *w, const struct sim_query *q);

/* The label of a port in tables and JSON: "80" or "serve-80-tcp". buf >= 16. */
const char *sim_port_label(const struct sim_port *p, char *buf, size_t len);

/*
 * One reachability table: rows = from, columns = to, '.' allowed, 'X'
 * denied (allowed[from * n + to]). Format, parsed by tests:
 *   # port <P> <PROTO>
 *   <pad>  <col> <col> ...
 *   <row>  .     X     ...
 * Columns aligned on the longest name; no trailing blanks.
 */
void sim_matrix_print_text(FILE *f, const char *const *names, size_t n, const char *port_label, const char *proto,
			   const unsigned char *allowed);

#endif /* VAKT_SIMOUT_H */
