// SPDX-License-Identifier: GPL-2.0-only
#include "devices/serial_backend.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void test_parse(void **state)
{
	enum serial_kind k;
	const char *p;

	assert_int_equal(serial_backend_parse("stdio", &k, &p), 0);
	assert_int_equal(k, SERIAL_STDIO);
	assert_int_equal(serial_backend_parse("none", &k, &p), 0);
	assert_int_equal(k, SERIAL_NONE);
	assert_int_equal(serial_backend_parse("unix:/tmp/x", &k, &p), 0);
	assert_true(k == SERIAL_UNIX && !strcmp(p, "/tmp/x"));
	assert_int_equal(serial_backend_parse("file:out.log", &k, &p), 0);
	assert_true(k == SERIAL_FILE && !strcmp(p, "out.log"));
	assert_int_equal(serial_backend_parse("unix:", &k, &p), -EINVAL);
	assert_int_equal(serial_backend_parse("tcp:1234", &k, &p), -EINVAL);
	assert_non_null(strstr(err_msg(), "stdio, pty, unix:PATH, file:PATH or none"));
}

static void test_file_backend(void **state)
{
	char path[] = "/tmp/test_serial_XXXXXX", spec[64], buf[16] = {0};
	struct serial_backend sb;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(serial_backend_open(&sb, spec), 0);
	serial_backend_tx(&sb, (const uint8_t *)"hello\n", 6);
	serial_backend_close(&sb);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "hello\n");
	close(fd);
	unlink(path);
}

static void test_unix_backend_roundtrip(void **state)
{
	char path[64], spec[80], buf[8] = {0};
	struct serial_backend sb;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct uart u;
	struct uart_backend be = {.tx = serial_backend_tx, .opaque = &sb};
	int c;
	uint8_t v;

	snprintf(path, sizeof(path), "/tmp/test_serial_%d.sock", (int)getpid());
	unlink(path);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	assert_int_equal(serial_backend_open(&sb, spec), 0);
	uart_init(&u, NULL, &be);
	assert_int_equal(serial_backend_attach(&sb, &u), 0);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* Client to guest: the byte shows up in the receive buffer. */
	assert_int_equal(write(c, "k", 1), 1);
	for (int i = 0; i < 200; i++) {
		uart_io(&u, UART_LSR, &v, 1, false);
		if (v & UART_LSR_DR)
			break;
		poll(NULL, 0, 5);
	}
	assert_true(v & UART_LSR_DR);
	uart_io(&u, UART_RBR, &v, 1, false);
	assert_int_equal(v, 'k');
	/* Guest to client. */
	v = 'G';
	uart_io(&u, UART_THR, &v, 1, true);
	assert_int_equal(read(c, buf, 1), 1);
	assert_int_equal(buf[0], 'G');
	close(c);
	serial_backend_close(&sb);
	uart_destroy(&u);
	assert_int_equal(access(path, F_OK), -1); /* socket removed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_file_backend),
		cmocka_unit_test(test_unix_backend_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
