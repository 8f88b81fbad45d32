/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reasons.h - names of the verdict reasons of include/vakt/maps.h, in one
 * place for the metrics, vakt status and vakt flows.
 */
#ifndef VAKT_REASONS_H
#define VAKT_REASONS_H

#include <linux/types.h>

/* Stable snake_case name ("policy_denied"); "unknown" for an unnamed value. */
const char *vakt_reason_name(__u32 reason);
/* "ingress" or "egress". */
const char *vakt_dir_name(__u32 dir);

#endif /* VAKT_REASONS_H */
