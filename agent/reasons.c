// SPDX-License-Identifier: Apache-2.0
#include "reasons.h"

#include "vakt/maps.h"

/* Metric label values and JSON fields: renaming one breaks dashboards. */
static const char *const reason_names[VAKT_R_MAX] = {
	[VAKT_R_NOT_ISOLATED] = "not_isolated",
	[VAKT_R_POLICY_ALLOW] = "policy_allow",
	[VAKT_R_ESTABLISHED] = "established",
	[VAKT_R_REPLY] = "reply",
	[VAKT_R_RELATED] = "related",
	[VAKT_R_HOST] = "host",
	[VAKT_R_SELF] = "self",
	[VAKT_R_CONTROL] = "control",
	[VAKT_R_NO_ENDPOINT] = "no_endpoint",
	[VAKT_R_FRAGMENT] = "fragment",
	[VAKT_R_POLICY_DENIED] = "policy_denied",
	[VAKT_R_MALFORMED] = "malformed",
	[VAKT_R_REVOKED] = "revoked",
	[VAKT_R_FAIL_CLOSED] = "fail_closed",
	[VAKT_R_FRAG_UNKNOWN] = "frag_unknown",
	[VAKT_R_CT_FULL] = "ct_full",
	[VAKT_R_SPOOFED] = "spoofed",
};

const char *vakt_reason_name(__u32 reason)
{
	if (reason >= VAKT_R_MAX || !reason_names[reason])
		return "unknown";
	return reason_names[reason];
}

const char *vakt_dir_name(__u32 dir)
{
	return dir == VAKT_DIR_EGRESS ? "egress" : "ingress";
}
