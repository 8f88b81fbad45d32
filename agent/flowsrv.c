// SPDX-License-Identifier: Apache-2.0
/*
 * flowsrv.c - the `vakt flows` subscription socket (see flowsrv.h).
 *
 * Every event is formatted once and copied into each subscriber's queue;
 * the queue is written out right away as far as the socket takes it, and
 * the rest waits for EPOLLOUT. Nothing here ever blocks the agent's loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "flowsrv.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "reasons.h"

/*
 * Queue space kept free for the "lost" line, so that a subscriber that lost
 * events can always be told how many before anything newer reaches it.
 */
#define LOST_RESERVE 96
/* After accept() ran out of fds, the listener rests this long (level-triggered
 * epoll would otherwise spin on the pending connection). */
#define ACCEPT_PAUSE_MS 1000

struct flow_client {
	struct vakt_flowsrv *srv;
	int fd;
	int out_armed;  /* EPOLLOUT requested */
	int losing;     /* currently losing events: logged once per episode */
	uint64_t lost;  /* lost since the last "lost" line was queued */
	size_t off;     /* queued bytes are buf[off, len) */
	size_t len;
	char buf[VAKT_FLOWSRV_CLIENT_BUF];
};

struct vakt_flowsrv {
	struct vakt_loop *loop;
	int fd;
	char *path;
	dev_t dev; /* of the socket file we bound: close removes only ours */
	ino_t ino;
	long pause_timer;
	size_t nclients;
	struct flow_client *clients[VAKT_FLOWSRV_MAX_CLIENTS];
	struct vakt_flowsrv_stats st;
};

/* --- formatting ------------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	int full;
};

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = 1;
		return;
	}
	o->len += (size_t)n;
}

/* A JSON string, or null. Bytes outside printable ASCII are \u escaped, so
 * the line is valid JSON whatever the name holds (Kubernetes names are ASCII). */
static void out_jstr(struct out *o, const char *s)
{
	size_t n;

	if (!s) {
		out_printf(o, "null");
		return;
	}
	n = strnlen(s, VAKT_NAME_MAX);
	out_printf(o, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			out_printf(o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			out_printf(o, "\\u%04x", ch);
		else
			out_printf(o, "%c", ch);
	}
	out_printf(o, "\"");
}

static const char *proto_name(unsigned int proto, char *buf, size_t len)
{
	switch (proto) {
	case 1: return "icmp";
	case 6: return "tcp";
	case 17: return "udp";
	case 58: return "icmpv6";
	case 132: return "sctp";
	default: snprintf(buf, len, "%u", proto); return buf;
	}
}

static void out_ts(struct out *o, uint64_t mono_ns, int64_t mono_to_real_ns)
{
	int64_t real = (int64_t)mono_ns + mono_to_real_ns;
	time_t secs;
	struct tm tm;
	char date[32];

	if (real < 0)
		real = 0;
	secs = (time_t)(real / 1000000000LL);
	if (!gmtime_r(&secs, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(date, sizeof(date), "1970-01-01T00:00:00");
	out_printf(o, "\"%s.%09lldZ\"", date, (long long)(real % 1000000000LL));
}

int vakt_flowsrv_format(const struct vakt_drop_event *e, const char *ns, const char *pod,
			int64_t mono_to_real_ns, char *buf, size_t len)
{
	struct out o = { .p = buf, .cap = len };
	char src[64], dst[64], pbuf[8];

	if (!len)
		return -ENOSPC;
	vakt_addr_str(&e->saddr, src, sizeof(src));
	vakt_addr_str(&e->daddr, dst, sizeof(dst));
	out_printf(&o, "{\"type\":\"drop\",\"ts\":");
	out_ts(&o, e->ts_ns, mono_to_real_ns);
	out_printf(&o, ",\"src\":\"%s\",\"dst\":\"%s\",\"sport\":%u,\"dport\":%u,\"proto\":\"%s\"",
		   src, dst, ntohs(e->sport), ntohs(e->dport),
		   proto_name(e->proto, pbuf, sizeof(pbuf)));
	out_printf(&o, ",\"namespace\":");
	out_jstr(&o, ns);
	out_printf(&o, ",\"pod\":");
	out_jstr(&o, pod);
	out_printf(&o, ",\"direction\":\"%s\",\"reason\":\"%s\",\"ep_id\":%u,\"ifindex\":%u}\n",
		   vakt_dir_name(e->dir), vakt_reason_name(e->reason), e->ep_id, e->ifindex);
	if (o.full) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	return (int)o.len;
}

/* --- subscribers ------------------------------------------------------------ */

static void client_close(struct flow_client *c, const char *why)
{
	struct vakt_flowsrv *s = c->srv;

	for (size_t i = 0; i < s->nclients; i++) {
		if (s->clients[i] == c) {
			s->clients[i] = s->clients[--s->nclients];
			break;
		}
	}
	log_debug("flows subscriber gone", "fd=%d why=%s lost_unreported=%lu", c->fd, why,
		  (unsigned long)c->lost);
	vakt_loop_del_fd(s->loop, c->fd);
	close(c->fd);
	free(c);
}

static size_t client_room(struct flow_client *c)
{
	if (c->off && c->off == c->len)
		c->off = c->len = 0;
	return sizeof(c->buf) - (c->len - c->off);
}

/* Caller made sure n bytes fit (client_room). */
static void client_append(struct flow_client *c, const char *p, size_t n)
{
	if (sizeof(c->buf) - c->len < n) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static int client_append_lost(struct flow_client *c)
{
	char line[LOST_RESERVE];
	int n = snprintf(line, sizeof(line), "{\"type\":\"lost\",\"count\":%lu,"
					     "\"msg\":\"dropped %lu events\"}\n",
			 (unsigned long)c->lost, (unsigned long)c->lost);

	if (n < 0 || (size_t)n >= sizeof(line) || client_room(c) < (size_t)n)
		return -ENOSPC;
	client_append(c, line, (size_t)n);
	c->lost = 0;
	c->losing = 0;
	return 0;
}

static void client_arm(struct flow_client *c, int out)
{
	if (c->out_armed == out)
		return;
	if (!vakt_loop_mod_fd(c->srv->loop, c->fd, EPOLLIN | (out ? EPOLLOUT : 0)))
		c->out_armed = out;
}

/* Writes what the socket takes; 0, or -errno when the subscriber is gone. */
static int client_flush(struct flow_client *c)
{
	for (;;) {
		ssize_t n;

		if (c->off == c->len) {
			c->off = c->len = 0;
			if (!c->lost || client_append_lost(c))
				break;
		}
		n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			client_arm(c, 1);
			return 0;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		c->off += (size_t)n;
	}
	client_arm(c, 0);
	return 0;
}

static void client_lose(struct flow_client *c)
{
	c->lost++;
	c->srv->st.lost++;
	if (!c->losing) {
		c->losing = 1;
		log_info("flows subscriber too slow, losing events", "fd=%d", c->fd);
	}
}

/* Queues one line for c, the pending "lost" line first; 0 or -errno (gone). */
static int client_queue(struct flow_client *c, const char *line, size_t n)
{
	/* A full queue has EPOLLOUT armed already: it drains without us. */
	if (c->lost) {
		if (client_room(c) < n + 2 * LOST_RESERVE) {
			client_lose(c);
			return 0;
		}
		client_append_lost(c);
	}
	if (client_room(c) < n + LOST_RESERVE) {
		client_lose(c);
		return 0;
	}
	client_append(c, line, n);
	return client_flush(c);
}

static void client_event(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct flow_client *c = arg;
	char scratch[64];
	ssize_t n;
	int err;

	(void)l;
	(void)fd;
	if (events & EPOLLIN) {
		n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n == 0) {
			client_close(c, "closed");
			return;
		}
		if (n > 0) {
			log_warn("flows subscriber sent data, disconnecting (the protocol is one-way)",
				 "fd=%d bytes=%zd", c->fd, n);
			client_close(c, "protocol");
			return;
		}
		if (errno != EAGAIN && errno != EINTR) {
			client_close(c, "recv error");
			return;
		}
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		client_close(c, "hangup");
		return;
	}
	if (events & EPOLLOUT) {
		err = client_flush(c);
		if (err)
			client_close(c, "send error");
	}
}

/* --- listener --------------------------------------------------------------- */

static void reject(struct vakt_flowsrv *s, int fd)
{
	static const char line[] = "{\"type\":\"error\",\"msg\":\"too many vakt flows subscribers\"}\n";
	ssize_t n = send(fd, line, sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)n; /* best effort: the subscriber is turned away either way */
	close(fd);
	s->st.rejected++;
	log_warn("flows subscriber rejected", "max=%d", VAKT_FLOWSRV_MAX_CLIENTS);
}

static void resume_accept(struct vakt_loop *l, void *arg)
{
	struct vakt_flowsrv *s = arg;

	s->pause_timer = 0;
	vakt_loop_mod_fd(l, s->fd, EPOLLIN);
}

static void pause_accept(struct vakt_flowsrv *s, int err)
{
	long t;

	log_warn("flows socket cannot accept, pausing", "err=%d pause_ms=%d", err,
		 ACCEPT_PAUSE_MS);
	if (s->pause_timer > 0)
		return;
	t = vakt_loop_add_timer(s->loop, ACCEPT_PAUSE_MS, 0, resume_accept, s);
	if (t > 0 && !vakt_loop_mod_fd(s->loop, s->fd, 0))
		s->pause_timer = t;
	else if (t > 0)
		vakt_loop_cancel_timer(s->loop, t);
}

static int add_client(struct vakt_flowsrv *s, int fd)
{
	struct flow_client *c = malloc(sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->srv = s;
	c->fd = fd;
	c->out_armed = 0;
	c->losing = 0;
	c->lost = 0;
	c->off = c->len = 0;
	err = vakt_loop_add_fd(s->loop, fd, EPOLLIN, client_event, c);
	if (err) {
		free(c);
		return err;
	}
	s->clients[s->nclients++] = c;
	s->st.accepted++;
	log_debug("flows subscriber connected", "fd=%d clients=%zu", fd, s->nclients);
	return 0;
}

static void on_accept(struct vakt_loop *l, int lfd, uint32_t events, void *arg)
{
	struct vakt_flowsrv *s = arg;

	(void)l;
	(void)events;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), err;

		if (fd < 0) {
			err = -errno;
			if (err == -EINTR || err == -ECONNABORTED)
				continue;
			if (err != -EAGAIN)
				pause_accept(s, err);
			return;
		}
		if (s->nclients >= VAKT_FLOWSRV_MAX_CLIENTS) {
			reject(s, fd);
			continue;
		}
		err = add_client(s, fd);
		if (err) {
			log_warn("flows subscriber dropped", "err=%d", err);
			close(fd);
		}
	}
}

/* mkdir -p of path's parent directory. */
static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * A socket file at the path: another agent's (it answers), or a stale one
 * of an agent that died (refused), which is removed.
 */
static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, err;

	if (lstat(sa->sun_path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : -EADDRINUSE;
	close(fd);
	if (err != -ECONNREFUSED)
		return err;
	return unlink(sa->sun_path) && errno != ENOENT ? -errno : 0;
}

static int bind_listen(struct vakt_flowsrv *s, const struct sockaddr_un *sa)
{
	struct stat st;
	mode_t old;
	int err;

	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	/* The socket file is created by bind with 0777 & ~umask: a strict umask
	 * for that call leaves no moment at which others could connect. The agent
	 * is single-threaded, so the process-wide umask change is not observed. */
	old = umask(0117);
	err = bind(s->fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
	umask(old);
	if (err)
		return err;
	if (chmod(sa->sun_path, 0660) || lstat(sa->sun_path, &st))
		return -errno;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if (listen(s->fd, 16))
		return -errno;
	return vakt_loop_add_fd(s->loop, s->fd, EPOLLIN, on_accept, s);
}

struct vakt_flowsrv *vakt_flowsrv_open(struct vakt_loop *l, const char *path, int *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vakt_flowsrv *s;
	const char *step;
	int e;

	if (!path)
		path = VAKT_FLOWS_SOCKET_DEFAULT;
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		log_error("flows socket path empty or too long", "path=%s max=%zu", path,
			  sizeof(sa.sun_path) - 1);
		*err = -ENAMETOOLONG;
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s = calloc(1, sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->loop = l;
	s->fd = -1;
	s->path = strdup(path);
	step = "alloc";
	e = s->path ? 0 : -ENOMEM;
	if (!e) {
		step = "mkdir";
		e = make_parent(path);
	}
	if (!e) {
		step = "stale_socket";
		e = clear_stale(&sa);
	}
	if (!e) {
		step = "listen";
		e = bind_listen(s, &sa);
	}
	if (e) {
		log_error("cannot open the flows socket", "path=%s step=%s err=%d%s", path, step,
			  e, e == -EADDRINUSE ? " hint=another_vaktd_serves_it" : "");
		goto fail;
	}
	log_info("flows socket listening", "path=%s", path);
	return s;
fail:
	if (s->fd >= 0) {
		vakt_loop_del_fd(l, s->fd);
		close(s->fd);
		if (s->ino) /* bound by us: not another agent's */
			unlink(path);
	}
	free(s->path);
	free(s);
	*err = e;
	return NULL;
}

void vakt_flowsrv_close(struct vakt_flowsrv *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->nclients)
		client_close(s->clients[s->nclients - 1], "server closing");
	if (s->pause_timer > 0)
		vakt_loop_cancel_timer(s->loop, s->pause_timer);
	vakt_loop_del_fd(s->loop, s->fd);
	close(s->fd);
	/* A successor may have replaced the file already: remove only ours. */
	if (!lstat(s->path, &st) && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
}

void vakt_flowsrv_publish(struct vakt_flowsrv *s, const struct vakt_drop_event *e,
			  const char *ns, const char *pod)
{
	struct timespec mono, real;
	char line[VAKT_FLOWSRV_LINE_MAX];
	int64_t off;
	int n;

	s->st.published++;
	if (!s->nclients)
		return;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	off = ((int64_t)real.tv_sec - (int64_t)mono.tv_sec) * 1000000000LL +
	      (real.tv_nsec - mono.tv_nsec);
	n = vakt_flowsrv_format(e, ns, pod, off, line, sizeof(line));
	if (n < 0) {
		log_warn("flow event too long, not published", "ep_id=%u", e->ep_id);
		return;
	}
	/* Backwards: client_close() moves the last subscriber, one already served,
	 * into the freed slot. */
	for (size_t i = s->nclients; i-- > 0;) {
		struct flow_client *c = s->clients[i];

		if (client_queue(c, line, (size_t)n))
			client_close(c, "send error");
	}
}

void vakt_flowsrv_stats(const struct vakt_flowsrv *s, struct vakt_flowsrv_stats *out)
{
	*out = s->st;
	out->clients = s->nclients;
}
