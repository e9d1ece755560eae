// SPDX-License-Identifier: GPL-2.0-only
/*
 * The worker's sockets without KVM: a real UART stands in for the partition's COM1.
 * Console output reaches every client (a late one gets the history first), input from any
 * client reaches the UART FIFO, control requests get replies and events reach every client.
 */
#include "vmwp/vmwp.h"

#include "devices/uart.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	struct run_ctl ctl;
	struct vmwp_server *s;
	struct uart uart;
};

static int connect_to(struct fixture *f, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", f->dir, name);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until `want` bytes arrived or 5 s passed. */
static size_t read_some(int fd, char *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			break;
		n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	return got;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dev_irq irq = {0};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vmwp-srv-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	run_ctl_init(&f->ctl);
	f->ctl.state = RUN_STATE_STARTING;
	assert_int_equal(vmwp_server_start(&f->s, f->dir, &f->ctl), 0);
	uart_init(&f->uart, &irq,
		  &(struct uart_backend){vmwp_server_serial(f->s)->tx,
					 vmwp_server_serial(f->s)->opaque});
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[128];

	vmwp_server_stop(f->s);
	uart_destroy(&f->uart);
	run_ctl_destroy(&f->ctl);
	snprintf(p, sizeof(p), "%s/worker.sock", f->dir);
	/* The server removed its sockets. */
	assert_int_equal(access(p, F_OK), -1);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_socket_modes(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"worker.sock", "console.sock"};

	for (int i = 0; i < 2; i++) {
		struct stat st;
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
	}
}

static void test_console_fanout_and_history(void **state)
{
	struct fixture *f = *state;
	const struct run_serial *ser = vmwp_server_serial(f->s);
	int a = connect_to(f, "console.sock"), b = connect_to(f, "console.sock"), c;
	char buf[256];

	usleep(100 * 1000); /* let the I/O thread accept both */
	ser->tx(ser->opaque, (const uint8_t *)"hello ", 6);
	ser->tx(ser->opaque, (const uint8_t *)"world\n", 6);
	assert_int_equal(read_some(a, buf, 12), 12);
	assert_string_equal(buf, "hello world\n");
	assert_int_equal(read_some(b, buf, 12), 12);
	assert_string_equal(buf, "hello world\n");
	/* A client that attaches later sees what it missed, then live output. */
	c = connect_to(f, "console.sock");
	assert_int_equal(read_some(c, buf, 12), 12);
	assert_string_equal(buf, "hello world\n");
	ser->tx(ser->opaque, (const uint8_t *)"more", 4);
	assert_int_equal(read_some(c, buf, 4), 4);
	assert_string_equal(buf, "more");
	close(a);
	close(b);
	close(c);
}

static void test_console_input_to_uart(void **state)
{
	struct fixture *f = *state;
	const struct run_serial *ser = vmwp_server_serial(f->s);
	int a = connect_to(f, "console.sock"), b = connect_to(f, "console.sock");
	char got[64] = "";
	size_t n = 0;

	assert_int_equal(ser->attach(ser->opaque, &f->uart), 0);
	assert_int_equal(write(a, "ab", 2), 2);
	usleep(50 * 1000);
	assert_int_equal(write(b, "cd", 2), 2);
	/* The guest reads RBR while LSR says data is ready. */
	for (int tries = 0; tries < 500 && n < 4; tries++) {
		uint8_t lsr = 0, ch = 0;

		uart_io(&f->uart, UART_LSR, &lsr, 1, false);
		if (!(lsr & UART_LSR_DR)) {
			usleep(2000);
			continue;
		}
		uart_io(&f->uart, UART_RBR, &ch, 1, false);
		got[n++] = (char)ch;
	}
	assert_string_equal(got, "abcd");
	assert_int_equal(ser->attach(ser->opaque, NULL), 0);
	close(a);
	close(b);
}

static void test_control_reply_and_events(void **state)
{
	struct fixture *f = *state;
	int a = connect_to(f, "worker.sock"), b = connect_to(f, "worker.sock");
	char buf[1024];
	const char *ev = "{\"event\":\"state\",\"state\":\"Off\",\"reason\":\"because\"}\n";

	assert_int_equal(write(a, "{\"id\":5,\"cmd\":\"status\"}\n", 24), 24);
	read_some(a, buf, strlen("{\"id\":5,\"ok\":true,\"state\":\"Starting\",\"pid\":"));
	assert_non_null(strstr(buf, "{\"id\":5,\"ok\":true,\"state\":\"Starting\",\"pid\":"));
	/* Drain the rest of the reply line. */
	while (!strchr(buf, '\n') && read_some(a, buf, 1) == 1)
		;
	usleep(50 * 1000);
	vmwp_server_event(f->s, RUN_STATE_OFF, "because");
	assert_int_equal(read_some(a, buf, strlen(ev)), strlen(ev));
	assert_string_equal(buf, ev);
	assert_int_equal(read_some(b, buf, strlen(ev)), strlen(ev));
	assert_string_equal(buf, ev);
	close(a);
	close(b);
}

static void test_control_long_line_dropped(void **state)
{
	struct fixture *f = *state;
	int a = connect_to(f, "worker.sock");
	char big[5000], buf[256];

	memset(big, 'x', sizeof(big));
	assert_int_equal(write(a, big, sizeof(big)), (ssize_t)sizeof(big));
	read_some(a, buf, 200);
	assert_non_null(strstr(buf, "longer than 4096 bytes"));
	/* Then the worker hangs up. */
	assert_int_equal(read_some(a, buf, 1), 0);
	close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_fanout_and_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_input_to_uart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_reply_and_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_long_line_dropped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
