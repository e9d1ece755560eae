/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Where COM1 goes: stdio, a pty, a unix socket (we listen; one client at a time), a file
 * (output only) or nowhere. The backend outlives VM resets; the UART it feeds is attached
 * per boot. Input is read by one thread that pushes into the UART as its FIFO has room.
 */
#ifndef VIRIDIAN_DEVICES_SERIAL_BACKEND_H
#define VIRIDIAN_DEVICES_SERIAL_BACKEND_H

#include "devices/uart.h"

#include <pthread.h>
#include <stdbool.h>
#include <termios.h>

enum serial_kind {
	SERIAL_NONE,
	SERIAL_STDIO,
	SERIAL_PTY,
	SERIAL_UNIX,
	SERIAL_FILE,
};

struct serial_backend {
	enum serial_kind kind;
	char path[108]; /* unix socket or file path; pty: the slave's name */
	int in_fd, out_fd, listen_fd;
	int stop_fd; /* eventfd that ends the input thread */
	bool tty_saved, thread_started;
	struct termios saved_tio;
	pthread_t thread;
	/*
	 * Lock order: uart_lock -> uart->lock -> lock. The vCPU transmits holding the UART's
	 * lock and takes lock; the input thread holds uart_lock while it pushes into the UART.
	 */
	pthread_mutex_t lock; /* guards the fds */
	pthread_mutex_t uart_lock; /* guards uart */
	struct uart *uart;
};

/* Parses "stdio|pty|unix:PATH|file:PATH|none". 0 or -EINVAL with err_set(). */
int serial_backend_parse(const char *spec, enum serial_kind *kind, const char **path);
int serial_backend_open(struct serial_backend *sb, const char *spec);
/* The UART's transmit callback (opaque = sb). */
void serial_backend_tx(void *opaque, const uint8_t *buf, size_t len);
/* Starts the input thread once; later calls only switch the UART (NULL detaches). */
int serial_backend_attach(struct serial_backend *sb, struct uart *u);
void serial_backend_close(struct serial_backend *sb);

#endif
