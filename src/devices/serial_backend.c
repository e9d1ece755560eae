// SPDX-License-Identifier: GPL-2.0-only
/* Serial backends: stdio, pty, unix socket, file, none. */
#include "devices/serial_backend.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int serial_backend_parse(const char *spec, enum serial_kind *kind, const char **path)
{
	*path = NULL;
	if (!strcmp(spec, "stdio")) {
		*kind = SERIAL_STDIO;
	} else if (!strcmp(spec, "pty")) {
		*kind = SERIAL_PTY;
	} else if (!strcmp(spec, "none")) {
		*kind = SERIAL_NONE;
	} else if (!strncmp(spec, "unix:", 5) && spec[5]) {
		*kind = SERIAL_UNIX;
		*path = spec + 5;
		if (strlen(*path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			err_set("--serial unix:PATH: path longer than %zu bytes",
				sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -EINVAL;
		}
	} else if (!strncmp(spec, "file:", 5) && spec[5]) {
		*kind = SERIAL_FILE;
		*path = spec + 5;
		if (strlen(*path) >= sizeof(((struct serial_backend *)0)->path)) {
			err_set("--serial file:PATH: path too long");
			return -EINVAL;
		}
	} else {
		err_set("--serial '%s': expected stdio, pty, unix:PATH, file:PATH or none", spec);
		return -EINVAL;
	}
	return 0;
}

static int serial_open_pty(struct serial_backend *sb)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios tio;
	const char *name;

	if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0 || !(name = ptsname(fd))) {
		err_set("--serial pty: cannot allocate a pty: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	if (tcgetattr(fd, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(fd, TCSANOW, &tio);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	snprintf(sb->path, sizeof(sb->path), "%s", name);
	sb->in_fd = fd;
	sb->out_fd = fd;
	fprintf(stderr, "viridian: serial console on %s\n", sb->path);
	return 0;
}

static int serial_open_unix(struct serial_backend *sb, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		err_set("--serial unix: socket: %s", strerror(errno));
		return -errno;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(sb->path, sizeof(sb->path), "%s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		int e = errno;

		err_set("--serial unix:%s: cannot listen: %s%s", path, strerror(e),
			e == EADDRINUSE ? " (remove the stale socket)" : "");
		close(fd);
		return -e;
	}
	sb->listen_fd = fd;
	return 0;
}

int serial_backend_open(struct serial_backend *sb, const char *spec)
{
	const char *path;
	int r;

	memset(sb, 0, sizeof(*sb));
	sb->in_fd = sb->out_fd = sb->listen_fd = sb->stop_fd = -1;
	pthread_mutex_init(&sb->lock, NULL);
	pthread_mutex_init(&sb->uart_lock, NULL);
	r = serial_backend_parse(spec, &sb->kind, &path);
	if (r < 0)
		return r;
	switch (sb->kind) {
	case SERIAL_NONE:
		break;
	case SERIAL_STDIO:
		sb->in_fd = STDIN_FILENO;
		sb->out_fd = STDOUT_FILENO;
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &sb->saved_tio) == 0) {
			struct termios tio = sb->saved_tio;

			/* Keys go to the guest as typed; ISIG stays so Ctrl-C stops the VM. */
			tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
			tio.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
			tio.c_cc[VMIN] = 1;
			tio.c_cc[VTIME] = 0;
			if (tcsetattr(STDIN_FILENO, TCSANOW, &tio) == 0)
				sb->tty_saved = true;
		}
		break;
	case SERIAL_PTY:
		r = serial_open_pty(sb);
		break;
	case SERIAL_UNIX:
		r = serial_open_unix(sb, path);
		break;
	case SERIAL_FILE:
		snprintf(sb->path, sizeof(sb->path), "%s", path);
		sb->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (sb->out_fd < 0) {
			err_set("--serial file:%s: %s", path, strerror(errno));
			r = -errno;
		}
		break;
	}
	if (r == 0) {
		sb->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (sb->stop_fd < 0) {
			err_set("eventfd: %s", strerror(errno));
			r = -errno;
		}
	}
	if (r < 0)
		serial_backend_close(sb);
	return r;
}

void serial_backend_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct serial_backend *sb = opaque;

	pthread_mutex_lock(&sb->lock);
	while (len && sb->out_fd >= 0) {
		ssize_t n;

		if (sb->kind == SERIAL_UNIX)
			n = send(sb->out_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			n = write(sb->out_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Nobody reads (full pty, gone client): drop rather than stall the vCPU. */
			if (sb->kind == SERIAL_UNIX && errno != EAGAIN) {
				close(sb->out_fd);
				sb->out_fd = sb->in_fd = -1;
			}
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&sb->lock);
}

static void *serial_input_thread(void *arg)
{
	struct serial_backend *sb = arg;
	bool in_eof = false;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = sb->stop_fd, .events = POLLIN}};
		size_t space = 0;
		int in, timeout = -1;
		nfds_t n = 1;

		pthread_mutex_lock(&sb->lock);
		in = sb->in_fd;
		pthread_mutex_unlock(&sb->lock);
		pthread_mutex_lock(&sb->uart_lock);
		if (sb->uart)
			space = uart_rx_space(sb->uart);
		pthread_mutex_unlock(&sb->uart_lock);
		if (sb->kind == SERIAL_UNIX && in < 0) {
			pfd[1] = (struct pollfd){.fd = sb->listen_fd, .events = POLLIN};
			n = 2;
		} else if (in >= 0 && !in_eof) {
			if (space) {
				pfd[1] = (struct pollfd){.fd = in, .events = POLLIN};
				n = 2;
			} else {
				timeout = 10; /* FIFO full: the guest has not read yet */
			}
		}
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (n < 2 || !pfd[1].revents)
			continue;
		if (pfd[1].fd == sb->listen_fd) {
			int c = accept4(sb->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0) {
				pthread_mutex_lock(&sb->lock);
				sb->in_fd = sb->out_fd = c;
				pthread_mutex_unlock(&sb->lock);
			}
			continue;
		}
		{
			uint8_t buf[UART_FIFO_SIZE];
			ssize_t got = read(in, buf, MIN(space, sizeof(buf)));

			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got <= 0) {
				if (sb->kind == SERIAL_UNIX) {
					pthread_mutex_lock(&sb->lock);
					if (sb->in_fd == in) {
						close(in);
						sb->in_fd = sb->out_fd = -1;
					}
					pthread_mutex_unlock(&sb->lock);
				} else if (sb->kind == SERIAL_PTY) {
					/* EIO until someone opens the slave: retry later. */
					poll(NULL, 0, 100);
				} else {
					in_eof = true;
				}
				continue;
			}
			pthread_mutex_lock(&sb->uart_lock);
			if (sb->uart)
				uart_rx_push(sb->uart, buf, (size_t)got);
			pthread_mutex_unlock(&sb->uart_lock);
		}
	}
	return NULL;
}

int serial_backend_attach(struct serial_backend *sb, struct uart *u)
{
	int r;

	pthread_mutex_lock(&sb->uart_lock);
	sb->uart = u;
	pthread_mutex_unlock(&sb->uart_lock);
	if (sb->thread_started || (sb->in_fd < 0 && sb->listen_fd < 0))
		return 0;
	r = pthread_create(&sb->thread, NULL, serial_input_thread, sb);
	if (r) {
		err_set("serial: cannot start the input thread: %s", strerror(r));
		return -r;
	}
	sb->thread_started = true;
	return 0;
}

void serial_backend_close(struct serial_backend *sb)
{
	if (sb->thread_started) {
		uint64_t one = 1;

		if (write(sb->stop_fd, &one, sizeof(one)) < 0)
			log_warn("devices", "serial: cannot signal the input thread");
		pthread_join(sb->thread, NULL);
		sb->thread_started = false;
	}
	if (sb->tty_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &sb->saved_tio);
	sb->tty_saved = false;
	if (sb->kind == SERIAL_UNIX || sb->kind == SERIAL_PTY || sb->kind == SERIAL_FILE) {
		if (sb->in_fd >= 0)
			close(sb->in_fd);
		if (sb->out_fd >= 0 && sb->out_fd != sb->in_fd)
			close(sb->out_fd);
	}
	if (sb->listen_fd >= 0) {
		close(sb->listen_fd);
		unlink(sb->path);
	}
	if (sb->stop_fd >= 0)
		close(sb->stop_fd);
	sb->in_fd = sb->out_fd = sb->listen_fd = sb->stop_fd = -1;
	sb->uart = NULL;
}
