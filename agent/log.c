// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

/* Configuration written once at startup, read everywhere: not worth threading. */
static enum vakt_log_level g_level = VAKT_LOG_INFO;
static FILE *g_stream;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void vakt_log_set_level(enum vakt_log_level level)
{
	g_level = level;
}

enum vakt_log_level vakt_log_get_level(void)
{
	return g_level;
}

int vakt_log_parse_level(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcmp(s, level_names[i]))
			return (int)i;
	return -EINVAL;
}

void vakt_log_set_stream(FILE *f)
{
	g_stream = f;
}

static void vakt_vlog(enum vakt_log_level level, const char *msg, const char *fmt, va_list ap)
{
	FILE *out = g_stream ? g_stream : stderr;
	struct timespec ts;
	struct tm tm;
	char tbuf[32];

	if (level > g_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(out);
	fprintf(out, "ts=%s.%03ldZ level=%s msg=\"%s\"", tbuf, ts.tv_nsec / 1000000,
		level_names[level], msg);
	if (fmt) {
		fputc(' ', out);
		vfprintf(out, fmt, ap);
	}
	fputc('\n', out);
	funlockfile(out);
	fflush(out);
}

void vakt_log(enum vakt_log_level level, const char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vakt_vlog(level, msg, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's info is chatty (every map and program): debug for us. */
	enum vakt_log_level l = level == LIBBPF_WARN ? VAKT_LOG_WARN : VAKT_LOG_DEBUG;
	char buf[1024];
	size_t n;

	if (l > g_level)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '"' || *p == '\n')
			*p = '\'';
	vakt_log(l, "libbpf", "detail=\"%s\"", buf);
	return 0;
}

void vakt_log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
