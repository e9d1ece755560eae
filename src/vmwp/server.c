// SPDX-License-Identifier: GPL-2.0-only
/*
 * The worker's two sockets and the one I/O thread that serves them.
 * worker.sock: control clients (vmms, tools); requests line by line, events to all.
 * console.sock: COM1. Guest output goes to every client (and into a short history that a new
 * client gets first, so output printed before it attached is not lost); input from any
 * client goes to the UART as its FIFO has room.
 * Writes never block: a client that stops reading loses output (console) or is dropped
 * (control) rather than stalling a vCPU or the I/O thread.
 */
#include "vmwp/vmwp.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VMWP_MAX_CLIENTS 32
#define VMWP_LINE_MAX 4096
#define VMWP_HISTORY 16384
#define VMWP_INPUT_MAX 4096

enum { VMWP_TAG_STOP = 1, VMWP_TAG_CTL_LISTEN, VMWP_TAG_CON_LISTEN, VMWP_TAG_CTL, VMWP_TAG_CON };

struct vmwp_ctl_client {
	int fd;
	size_t len;
	char buf[VMWP_LINE_MAX];
};

struct vmwp_server {
	struct run_ctl *ctl;
	char ctl_path[108], con_path[108];
	int ctl_listen, con_listen, stop_fd, epfd;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t ctl_lock; /* control client fds and their writes */
	struct vmwp_ctl_client *ctl_clients[VMWP_MAX_CLIENTS];

	/* Lock order: uart_lock -> uart->lock -> con_lock (tx runs under the UART's lock). */
	pthread_mutex_t uart_lock;
	struct uart *uart;
	pthread_mutex_t con_lock;
	int con_fds[VMWP_MAX_CLIENTS];
	uint8_t history[VMWP_HISTORY];
	size_t hist_head, hist_len;
	/* Input read from clients that the UART FIFO could not take yet (I/O thread only). */
	uint8_t input[VMWP_INPUT_MAX];
	size_t input_len;

	struct run_serial serial;
	_Atomic unsigned ctl_connected, ctl_requests; /* for test hooks */
};

static uint64_t vmwp_tag(int tag, int slot)
{
	return (uint64_t)tag << 32 | (uint32_t)slot;
}

static int vmwp_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		err_set("socket path %s is longer than %zu bytes; use a shorter --vm-dir", path,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		err_set("socket: %s", strerror(errno));
		return r;
	}
	/* A socket left by a worker that died is replaced; a live one is refused below. */
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		err_set("cannot replace %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	/* Created 0600 from the start: no window in which others could connect. */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		err_set("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

static void vmwp_ctl_drop(struct vmwp_server *s, int slot)
{
	struct vmwp_ctl_client *c = s->ctl_clients[slot];

	pthread_mutex_lock(&s->ctl_lock);
	s->ctl_clients[slot] = NULL;
	pthread_mutex_unlock(&s->ctl_lock);
	if (c) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		free(c);
	}
}

/* Called with ctl_lock held. Returns false when the client must be dropped. */
static bool vmwp_ctl_send(struct vmwp_ctl_client *c, const char *line)
{
	size_t len = strlen(line);
	ssize_t n = send(c->fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	/* Replies and events are small; a client whose buffer is full is not reading. */
	return n == (ssize_t)len;
}

void vmwp_server_event(struct vmwp_server *s, enum run_state state, const char *reason)
{
	char line[1024];

	vmwp_control_event(state, reason, line, sizeof(line));
	pthread_mutex_lock(&s->ctl_lock);
	for (int i = 0; i < VMWP_MAX_CLIENTS; i++) {
		struct vmwp_ctl_client *c = s->ctl_clients[i];

		/* The I/O thread closes it; shutting it down here makes it see EOF. */
		if (c && !vmwp_ctl_send(c, line))
			shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&s->ctl_lock);
}

static void vmwp_ctl_readable(struct vmwp_server *s, int slot)
{
	struct vmwp_ctl_client *c = s->ctl_clients[slot];
	char reply[1024];
	ssize_t n;
	char *nl;

	if (!c)
		return;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vmwp_ctl_drop(s, slot);
		return;
	}
	c->len += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t used = (size_t)(nl - c->buf) + 1;
		bool alive;

		*nl = 0;
		if (nl > c->buf && nl[-1] == '\r')
			nl[-1] = 0;
		if (c->buf[0])
			vmwp_control_handle(s->ctl, c->buf, reply, sizeof(reply));
		else
			reply[0] = 0;
		if (reply[0])
			atomic_fetch_add(&s->ctl_requests, 1);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (!reply[0])
			continue;
		pthread_mutex_lock(&s->ctl_lock);
		alive = vmwp_ctl_send(c, reply);
		pthread_mutex_unlock(&s->ctl_lock);
		if (!alive) {
			vmwp_ctl_drop(s, slot);
			return;
		}
	}
	if (c->len == sizeof(c->buf)) {
		/* No newline in 4 KiB: not this protocol. */
		pthread_mutex_lock(&s->ctl_lock);
		vmwp_ctl_send(c,
			      "{\"ok\":false,\"error\":\"request line longer than 4096 bytes\"}\n");
		pthread_mutex_unlock(&s->ctl_lock);
		vmwp_ctl_drop(s, slot);
	}
}

static void vmwp_accept(struct vmwp_server *s, bool console)
{
	int fd = accept4(console ? s->con_listen : s->ctl_listen, NULL, NULL,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	int slot = -1;

	if (fd < 0)
		return;
	if (console) {
		pthread_mutex_lock(&s->con_lock);
		for (int i = 0; i < VMWP_MAX_CLIENTS && slot < 0; i++)
			if (s->con_fds[i] < 0)
				slot = i;
		if (slot >= 0) {
			/* History first, in order, then live output (same lock as tx). */
			size_t start = (s->hist_head + VMWP_HISTORY - s->hist_len) % VMWP_HISTORY;
			size_t first = MIN(s->hist_len, VMWP_HISTORY - start);

			if (first)
				send(fd, s->history + start, first, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (s->hist_len > first)
				send(fd, s->history, s->hist_len - first,
				     MSG_DONTWAIT | MSG_NOSIGNAL);
			s->con_fds[slot] = fd;
		}
		pthread_mutex_unlock(&s->con_lock);
		ev.data.u64 = vmwp_tag(VMWP_TAG_CON, slot);
	} else {
		struct vmwp_ctl_client *c = NULL;

		for (int i = 0; i < VMWP_MAX_CLIENTS && slot < 0; i++)
			if (!s->ctl_clients[i])
				slot = i;
		if (slot >= 0)
			c = calloc(1, sizeof(*c));
		if (!c) {
			slot = -1;
		} else {
			c->fd = fd;
			pthread_mutex_lock(&s->ctl_lock);
			s->ctl_clients[slot] = c;
			pthread_mutex_unlock(&s->ctl_lock);
			atomic_fetch_add(&s->ctl_connected, 1);
		}
		ev.data.u64 = vmwp_tag(VMWP_TAG_CTL, slot);
	}
	if (slot < 0) {
		log_warn_ratelimited("vmwp", "%s: more than %d clients; refusing one",
				     console ? "console" : "control", VMWP_MAX_CLIENTS);
		close(fd);
		return;
	}
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void vmwp_con_drop(struct vmwp_server *s, int slot)
{
	int fd;

	pthread_mutex_lock(&s->con_lock);
	fd = s->con_fds[slot];
	s->con_fds[slot] = -1;
	pthread_mutex_unlock(&s->con_lock);
	if (fd >= 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
		close(fd);
	}
}

/* Pushes pending input into the UART; true when some is still waiting. */
static bool vmwp_con_flush_input(struct vmwp_server *s)
{
	size_t n = 0;

	if (!s->input_len)
		return false;
	pthread_mutex_lock(&s->uart_lock);
	if (s->uart)
		n = uart_rx_push(s->uart, s->input, s->input_len);
	else
		n = s->input_len; /* between boots: nobody to type to */
	pthread_mutex_unlock(&s->uart_lock);
	memmove(s->input, s->input + n, s->input_len - n);
	s->input_len -= n;
	return s->input_len > 0;
}

static void vmwp_con_readable(struct vmwp_server *s, int slot)
{
	ssize_t n;
	int fd;

	pthread_mutex_lock(&s->con_lock);
	fd = s->con_fds[slot];
	pthread_mutex_unlock(&s->con_lock);
	if (fd < 0)
		return;
	/* Only the I/O thread closes console fds, so fd stays valid here. */
	if (s->input_len == sizeof(s->input))
		return; /* back-pressure: read again once the UART took some */
	n = recv(fd, s->input + s->input_len, sizeof(s->input) - s->input_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vmwp_con_drop(s, slot);
		return;
	}
	s->input_len += (size_t)n;
}

static void *vmwp_io_thread(void *arg)
{
	struct vmwp_server *s = arg;

	for (;;) {
		struct epoll_event evs[16];
		/* While input waits for FIFO room, poll the UART every 2 ms. */
		int n = epoll_wait(s->epfd, evs, ARRAY_SIZE(evs), s->input_len ? 2 : -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			int tag = (int)(evs[i].data.u64 >> 32),
			    slot = (int)(uint32_t)evs[i].data.u64;

			switch (tag) {
			case VMWP_TAG_STOP:
				return NULL;
			case VMWP_TAG_CTL_LISTEN:
				vmwp_accept(s, false);
				break;
			case VMWP_TAG_CON_LISTEN:
				vmwp_accept(s, true);
				break;
			case VMWP_TAG_CTL:
				vmwp_ctl_readable(s, slot);
				break;
			case VMWP_TAG_CON:
				if (s->input_len < sizeof(s->input) || !(evs[i].events & EPOLLIN))
					vmwp_con_readable(s, slot);
				break;
			}
		}
		/* Still full: the guest reads slowly; let it (level-triggered epoll would spin). */
		if (vmwp_con_flush_input(s) && s->input_len == sizeof(s->input))
			usleep(2000);
	}
	return NULL;
}

static void vmwp_serial_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct vmwp_server *s = opaque;

	pthread_mutex_lock(&s->con_lock);
	for (size_t i = 0; i < len; i++) {
		s->history[s->hist_head] = buf[i];
		s->hist_head = (s->hist_head + 1) % VMWP_HISTORY;
	}
	s->hist_len = MIN(s->hist_len + len, (size_t)VMWP_HISTORY);
	for (int i = 0; i < VMWP_MAX_CLIENTS; i++)
		if (s->con_fds[i] >= 0)
			send(s->con_fds[i], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	pthread_mutex_unlock(&s->con_lock);
}

static int vmwp_serial_attach(void *opaque, struct uart *u)
{
	struct vmwp_server *s = opaque;

	pthread_mutex_lock(&s->uart_lock);
	s->uart = u;
	pthread_mutex_unlock(&s->uart_lock);
	return 0;
}

bool vmwp_server_test_wait(struct vmwp_server *s, unsigned clients, unsigned requests,
			   unsigned timeout_ms)
{
	uint64_t end = util_now_ns() + (uint64_t)timeout_ms * 1000000;

	while (atomic_load(&s->ctl_connected) < clients ||
	       atomic_load(&s->ctl_requests) < requests) {
		if (util_now_ns() > end)
			return false;
		usleep(5000);
	}
	return true;
}

const struct run_serial *vmwp_server_serial(struct vmwp_server *s)
{
	return &s->serial;
}

int vmwp_server_start(struct vmwp_server **out, const char *dir, struct run_ctl *ctl)
{
	struct vmwp_server *s = calloc(1, sizeof(*s));
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	*out = NULL;
	if (!s) {
		err_set("out of memory");
		return -ENOMEM;
	}
	s->ctl = ctl;
	s->ctl_listen = s->con_listen = s->stop_fd = s->epfd = -1;
	for (int i = 0; i < VMWP_MAX_CLIENTS; i++)
		s->con_fds[i] = -1;
	pthread_mutex_init(&s->ctl_lock, NULL);
	pthread_mutex_init(&s->con_lock, NULL);
	pthread_mutex_init(&s->uart_lock, NULL);
	s->serial = (struct run_serial){vmwp_serial_tx, vmwp_serial_attach, s};
	snprintf(s->ctl_path, sizeof(s->ctl_path), "%s/worker.sock", dir);
	snprintf(s->con_path, sizeof(s->con_path), "%s/console.sock", dir);
	if (strlen(dir) + sizeof("/console.sock") > sizeof(s->con_path)) {
		err_set("--vm-dir %s: too long for a socket path (at most %zu bytes)", dir,
			sizeof(s->con_path) - sizeof("/console.sock"));
		r = -ENAMETOOLONG;
		goto fail;
	}
	r = s->ctl_listen = vmwp_listen(s->ctl_path);
	if (r >= 0)
		r = s->con_listen = vmwp_listen(s->con_path);
	if (r < 0)
		goto fail;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->stop_fd < 0 || s->epfd < 0) {
		r = -errno;
		err_set("cannot set up the worker's event loop: %s", strerror(errno));
		goto fail;
	}
	ev.data.u64 = vmwp_tag(VMWP_TAG_STOP, 0);
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_fd, &ev);
	ev.data.u64 = vmwp_tag(VMWP_TAG_CTL_LISTEN, 0);
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ctl_listen, &ev);
	ev.data.u64 = vmwp_tag(VMWP_TAG_CON_LISTEN, 0);
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->con_listen, &ev);
	r = pthread_create(&s->thread, NULL, vmwp_io_thread, s);
	if (r) {
		err_set("cannot start the worker's I/O thread: %s", strerror(r));
		r = -r;
		goto fail;
	}
	s->thread_started = true;
	*out = s;
	return 0;
fail:
	vmwp_server_stop(s);
	return r;
}

void vmwp_server_stop(struct vmwp_server *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		uint64_t one = 1;

		if (write(s->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(s->thread, NULL);
	}
	for (int i = 0; i < VMWP_MAX_CLIENTS; i++) {
		if (s->ctl_clients[i]) {
			close(s->ctl_clients[i]->fd);
			free(s->ctl_clients[i]);
		}
		if (s->con_fds[i] >= 0)
			close(s->con_fds[i]);
	}
	if (s->ctl_listen >= 0) {
		close(s->ctl_listen);
		unlink(s->ctl_path);
	}
	if (s->con_listen >= 0) {
		close(s->con_listen);
		unlink(s->con_path);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	pthread_mutex_destroy(&s->ctl_lock);
	pthread_mutex_destroy(&s->con_lock);
	pthread_mutex_destroy(&s->uart_lock);
	free(s);
}
