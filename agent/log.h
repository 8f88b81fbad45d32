/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - one logging module for the agent, the CLI and libbpf's print
 * callback. One line per event: "ts=... level=... msg=... key=value ...".
 * Values with spaces or quotes must be quoted by the caller with %s of
 * vakt_log_quote() or passed through the kv helpers.
 */
#ifndef VAKT_LOG_H
#define VAKT_LOG_H

#include <stdio.h>

enum vakt_log_level {
	VAKT_LOG_ERROR = 0,
	VAKT_LOG_WARN = 1,
	VAKT_LOG_INFO = 2,
	VAKT_LOG_DEBUG = 3,
};

/* Process-wide: the level is configuration set once at startup. */
void vakt_log_set_level(enum vakt_log_level level);
enum vakt_log_level vakt_log_get_level(void);
int vakt_log_parse_level(const char *s); /* -EINVAL if unknown */
void vakt_log_set_stream(FILE *f);       /* default stderr */
/* Route libbpf's messages through vakt_log (warn and above unless debug). */
void vakt_log_hook_libbpf(void);

/* msg is a short constant; fmt, if not NULL, appends " key=value ..." */
void vakt_log(enum vakt_log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(msg, ...) vakt_log(VAKT_LOG_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...) vakt_log(VAKT_LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) vakt_log(VAKT_LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...)                                              \
	do {                                                             \
		if (vakt_log_get_level() >= VAKT_LOG_DEBUG)              \
			vakt_log(VAKT_LOG_DEBUG, msg, __VA_ARGS__);      \
	} while (0)

#endif /* VAKT_LOG_H */
