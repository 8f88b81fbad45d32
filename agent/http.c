// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "loop.h"

struct http_client {
	struct vakt_http *srv;
	int fd;
	int writing;
	uint64_t deadline_ms;
	size_t rlen;
	char req[VAKT_HTTP_MAX_REQUEST + 1];
	char *resp;
	size_t resp_len, resp_off;
};

struct vakt_http {
	struct vakt_loop *loop;
	int fd;
	int port;
	long timer;
	vakt_http_handler handler;
	void *arg;
	size_t nclients;
	struct http_client *clients[VAKT_HTTP_MAX_CLIENTS];
};

static void client_close(struct http_client *c)
{
	struct vakt_http *srv = c->srv;

	for (size_t i = 0; i < srv->nclients; i++) {
		if (srv->clients[i] == c) {
			srv->clients[i] = srv->clients[--srv->nclients];
			break;
		}
	}
	vakt_loop_del_fd(srv->loop, c->fd);
	close(c->fd);
	free(c->resp);
	free(c);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/* Builds head + body into c->resp; on allocation failure the client is dropped. */
static int build_response(struct http_client *c, int status, const char *ctype, const char *body,
			  size_t blen, int head_only)
{
	FILE *f = open_memstream(&c->resp, &c->resp_len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n",
		status, status_text(status), ctype, blen);
	if (status == 405)
		fputs("Allow: GET, HEAD\r\n", f);
	fputs("\r\n", f);
	if (!head_only && blen)
		fwrite(body, 1, blen, f);
	if (fclose(f))
		return -ENOMEM;
	c->resp_off = 0;
	return 0;
}

static int respond_simple(struct http_client *c, int status, const char *msg)
{
	return build_response(c, status, "text/plain; charset=utf-8", msg, strlen(msg), 0);
}

static int dispatch(struct http_client *c, const char *method, char *path)
{
	const char *ctype = "text/plain; charset=utf-8";
	char *body = NULL, *q;
	size_t blen = 0;
	int head = !strcmp(method, "HEAD"), status, err;
	FILE *f;

	if (strcmp(method, "GET") != 0 && !head)
		return respond_simple(c, 405, "only GET and HEAD\n");
	q = strchr(path, '?');
	if (q)
		*q = '\0';
	f = open_memstream(&body, &blen);
	if (!f)
		return -ENOMEM;
	status = c->srv->handler(c->srv->arg, path, f, &ctype);
	if (fclose(f)) {
		free(body);
		return -ENOMEM;
	}
	err = build_response(c, status, ctype, body, blen, head);
	free(body);
	return err;
}

/* Parses "METHOD SP PATH SP HTTP/1.x" of a complete head and prepares the response. */
static int handle_request(struct http_client *c)
{
	char *line_end = strstr(c->req, "\r\n"), *method, *path, *version, *save = NULL;

	if (!line_end)
		return respond_simple(c, 400, "bad request line\n");
	*line_end = '\0';
	method = strtok_r(c->req, " ", &save);
	path = strtok_r(NULL, " ", &save);
	version = strtok_r(NULL, " ", &save);
	if (!method || !path || !version || strncmp(version, "HTTP/1.", 7) != 0 || path[0] != '/' ||
	    strtok_r(NULL, " ", &save))
		return respond_simple(c, 400, "bad request line\n");
	return dispatch(c, method, path);
}

static void client_start_write(struct http_client *c)
{
	c->writing = 1;
	c->deadline_ms = vakt_now_ms() + VAKT_HTTP_WRITE_TIMEOUT_MS;
	if (vakt_loop_mod_fd(c->srv->loop, c->fd, EPOLLOUT))
		client_close(c);
}

static void client_write(struct http_client *c)
{
	while (c->resp_off < c->resp_len) {
		ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off,
				 MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			break;
		c->resp_off += (size_t)n;
	}
	client_close(c);
}

static void client_read(struct http_client *c)
{
	int err;

	for (;;) {
		size_t room = VAKT_HTTP_MAX_REQUEST - c->rlen;
		ssize_t n;

		if (!room) {
			err = respond_simple(c, 431, "request too large\n");
			goto respond;
		}
		n = recv(c->fd, c->req + c->rlen, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			client_close(c);
			return;
		}
		c->rlen += (size_t)n;
		c->req[c->rlen] = '\0';
		if (memchr(c->req, '\0', c->rlen)) {
			err = respond_simple(c, 400, "NUL in request\n");
			goto respond;
		}
		if (strstr(c->req, "\r\n\r\n")) {
			err = handle_request(c);
			goto respond;
		}
	}
respond:
	if (err) {
		log_warn("http response failed", "err=%d", err);
		client_close(c);
		return;
	}
	client_start_write(c);
}

static void client_event(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct http_client *c = arg;

	(void)l;
	(void)fd;
	if (c->writing)
		client_write(c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(c);
}

static void accept_one(struct vakt_http *srv, int fd)
{
	struct http_client *c;

	/* At the limit, the newcomer is refused rather than an old client evicted. */
	if (srv->nclients >= VAKT_HTTP_MAX_CLIENTS) {
		log_debug("http client refused", "reason=too_many_clients max=%d",
			  VAKT_HTTP_MAX_CLIENTS);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->deadline_ms = vakt_now_ms() + VAKT_HTTP_READ_TIMEOUT_MS;
	if (vakt_loop_add_fd(srv->loop, fd, EPOLLIN, client_event, c)) {
		close(fd);
		free(c);
		return;
	}
	srv->clients[srv->nclients++] = c;
}

static void listener_event(struct vakt_loop *l, int fd, uint32_t events, void *arg)
{
	struct vakt_http *srv = arg;

	(void)l;
	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("http accept failed", "err=%d", -errno);
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		accept_one(srv, cfd);
	}
}

static void expire_clients(struct vakt_loop *l, void *arg)
{
	struct vakt_http *srv = arg;
	uint64_t now = vakt_now_ms();

	(void)l;
	/* Walk backwards: client_close() moves the last client into the hole. */
	for (size_t i = srv->nclients; i-- > 0;) {
		if (i < srv->nclients && srv->clients[i]->deadline_ms <= now)
			client_close(srv->clients[i]);
	}
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	size_t hlen;
	char *end;
	long port;

	if (!colon)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || port < 0 || port > 65535)
		return -EINVAL;
	hlen = (size_t)(colon - addr);
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host + 1, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	*len = sizeof(*s4);
	if (!hlen)
		return 0; /* ":PORT": INADDR_ANY */
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -EINVAL;
}

static int bound_port(int fd)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len = sizeof(u);

	memset(&u, 0, sizeof(u));
	if (getsockname(fd, &u.sa, &len))
		return -errno;
	return ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
}

static int listen_on(const char *addr, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	err = parse_addr(addr, &ss, &len);
	if (err) {
		log_error("invalid listen address", "addr=%s want=IP:PORT", addr);
		return err;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
		err = -errno;
		log_error("http listen failed", "addr=%s err=%d (%s)", addr, err, strerror(-err));
		close(fd);
		return err;
	}
	*port = bound_port(fd);
	return fd;
}

int vakt_http_open(struct vakt_loop *loop, const char *addr, vakt_http_handler h, void *arg,
		   struct vakt_http **out)
{
	struct vakt_http *srv = calloc(1, sizeof(*srv));
	int err;

	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->handler = h;
	srv->arg = arg;
	srv->fd = listen_on(addr, &srv->port);
	if (srv->fd < 0) {
		err = srv->fd;
		goto err_free;
	}
	err = vakt_loop_add_fd(loop, srv->fd, EPOLLIN, listener_event, srv);
	if (err)
		goto err_close;
	srv->timer = vakt_loop_add_timer(loop, 500, 500, expire_clients, srv);
	if (srv->timer < 0) {
		err = (int)srv->timer;
		goto err_del;
	}
	log_info("http listening", "addr=%s port=%d", addr, srv->port);
	*out = srv;
	return 0;
err_del:
	vakt_loop_del_fd(loop, srv->fd);
err_close:
	close(srv->fd);
err_free:
	free(srv);
	return err;
}

void vakt_http_close(struct vakt_http *srv)
{
	if (!srv)
		return;
	while (srv->nclients)
		client_close(srv->clients[srv->nclients - 1]);
	vakt_loop_cancel_timer(srv->loop, srv->timer);
	vakt_loop_del_fd(srv->loop, srv->fd);
	close(srv->fd);
	free(srv);
}

int vakt_http_port(const struct vakt_http *srv)
{
	return srv->port;
}
