// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_loader.c - libFuzzer target for the manifest loader. Every input is
 * read both as YAML and as JSON; whatever loads is deep-copied and freed so
 * the model's dup/free paths see the same shapes. ASan/UBSan catch crashes,
 * leaks and undefined behaviour; error messages must be NUL-terminated.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Skipped kinds and apiVersions log warnings; keep the fuzzer's output readable. */
	vakt_log_set_level(VAKT_LOG_ERROR);
	return 0;
}

static void roundtrip(const struct vakt_objset *set)
{
	for (size_t i = 0; i < set->nns; i++)
		vakt_namespace_free(vakt_namespace_dup(set->ns[i]));
	for (size_t i = 0; i < set->npods; i++)
		vakt_pod_free(vakt_pod_dup(set->pods[i]));
	for (size_t i = 0; i < set->npols; i++)
		vakt_policy_free(vakt_policy_dup(set->pols[i]));
}

static void load_as(const uint8_t *data, size_t size, const char *origin, int require_ip)
{
	struct vakt_load_opts o = { .require_pod_ip = require_ip };
	struct vakt_objset set = { 0 };
	struct vakt_error err;
	int r;

	r = vakt_load_buffer(&set, (const char *)data, size, origin, &o, &err);
	if (r) {
		/* Failed loads leave nothing behind and always say why. */
		if (set.nns || set.npods || set.npols || !memchr(err.msg, '\0', sizeof(err.msg)) ||
		    !err.msg[0])
			__builtin_trap();
	} else {
		roundtrip(&set);
		/* Loading the same input again into the same set must find duplicates. */
		if ((set.nns || set.npods || set.npols) &&
		    !vakt_load_buffer(&set, (const char *)data, size, origin, &o, &err))
			__builtin_trap();
	}
	vakt_objset_free(&set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The last byte picks the option, so both paths get coverage from one corpus. */
	int require_ip = size && (data[size - 1] & 1);

	load_as(data, size, "fuzz.yaml", require_ip);
	load_as(data, size, "fuzz.json", require_ip);
	return 0;
}
