// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/mgmt: latency of GET /v1/vms on vmms (keep-alive HTTP/1.1 over its Unix
 * socket) next to the floor for such a request: a server thread that answers
 * every request with a canned reply of the same size on a Unix socket. Runs of
 * ours and the peer alternate; per-run median and p99, median over runs.
 * usage: bench_mgmt SOCKET [RUNS] [REQUESTS_PER_RUN]
 */
#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char request[] = "GET /v1/vms HTTP/1.1\r\nHost: v\r\n\r\n";

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "bench_mgmt: cannot connect to %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

/* One request/response; returns the response size, -1 on error. */
static ssize_t roundtrip(int fd, char *buf, size_t cap)
{
	size_t len = 0, want = 0;
	char *hend;

	if (write(fd, request, sizeof(request) - 1) != (ssize_t)sizeof(request) - 1)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
		hend = strstr(buf, "\r\n\r\n");
		if (hend && !want) {
			char *cl = strcasestr(buf, "Content-Length:");

			if (!cl || cl > hend)
				return -1;
			want = (size_t)(hend + 4 - buf) + strtoul(cl + 15, NULL, 10);
		}
		if (want && len >= want)
			return (ssize_t)len;
		if (len + 1 >= cap)
			return -1;
	}
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static char canned[1 << 20];
static size_t canned_len;
static int peer_lfd;

static void *peer_main(void *arg)
{
	char buf[4096];

	for (;;) {
		int c = accept(peer_lfd, NULL, NULL);
		size_t len = 0;

		if (c < 0)
			return NULL;
		for (;;) {
			ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);

			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = 0;
			if (strstr(buf, "\r\n\r\n")) {
				if (write_all(c, canned, canned_len) < 0)
					break;
				len = 0;
			}
		}
		close(c);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run(const char *path, char *buf, size_t cap, uint64_t *lat, int n, uint64_t *med,
		uint64_t *p99)
{
	int fd = unix_connect(path);

	for (int i = 0; i < n; i++) {
		uint64_t t0 = util_now_ns();

		if (roundtrip(fd, buf, cap) < 0) {
			fprintf(stderr, "bench_mgmt: request to %s failed\n", path);
			exit(1);
		}
		lat[i] = util_now_ns() - t0;
	}
	close(fd);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	*med = lat[n / 2];
	*p99 = lat[(n * 99) / 100];
}

int main(int argc, char **argv)
{
	int runs = argc > 2 ? atoi(argv[2]) : 7, n = argc > 3 ? atoi(argv[3]) : 400;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t *lat, om[64], op[64], pm[64], pp[64];
	static char buf[1 << 20];
	pthread_t th;
	ssize_t len;
	int fd;

	if (argc < 2 || runs < 5 || runs > 64 || n < 100) {
		fprintf(stderr, "usage: bench_mgmt SOCKET [RUNS>=5] [REQUESTS>=100]\n");
		return 2;
	}
	/* The peer answers with exactly what vmms answered. */
	fd = unix_connect(argv[1]);
	len = roundtrip(fd, canned, sizeof(canned));
	close(fd);
	if (len < 0)
		return 1;
	canned_len = (size_t)len;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/bench-mgmt-peer.%d.sock", (int)getpid());
	peer_lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	unlink(sa.sun_path);
	if (peer_lfd < 0 || bind(peer_lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(peer_lfd, 4) < 0 || pthread_create(&th, NULL, peer_main, NULL)) {
		perror("bench_mgmt: peer");
		return 1;
	}
	lat = calloc((size_t)n, sizeof(*lat));
	if (!lat)
		return 1;
	for (int r = 0; r < runs; r++) {
		run(argv[1], buf, sizeof(buf), lat, n, &om[r], &op[r]);
		run(sa.sun_path, buf, sizeof(buf), lat, n, &pm[r], &pp[r]);
	}
	unlink(sa.sun_path);
	qsort(om, (size_t)runs, sizeof(uint64_t), cmp_u64);
	qsort(op, (size_t)runs, sizeof(uint64_t), cmp_u64);
	qsort(pm, (size_t)runs, sizeof(uint64_t), cmp_u64);
	qsort(pp, (size_t)runs, sizeof(uint64_t), cmp_u64);
	double o_med = (double)om[runs / 2] / 1000.0, p_med = (double)pm[runs / 2] / 1000.0;
	double o_99 = (double)op[runs / 2] / 1000.0, p_99 = (double)pp[runs / 2] / 1000.0;

	printf("# GET /v1/vms, %zu-byte reply, %d runs x %d requests, keep-alive\n", canned_len,
	       runs, n);
	printf("bench: mgmt-list-median ratio=%.2f goal<=5 ours=%.1fus peer=%.1fus "
	       "(canned reply of the same size on a Unix socket)\n",
	       o_med / p_med, o_med, p_med);
	printf("bench: mgmt-list-p99 ratio=%.2f goal<=5 ours=%.1fus peer=%.1fus "
	       "(canned reply of the same size on a Unix socket)\n",
	       o_99 / p_99, o_99, p_99);
	free(lat);
	return 0;
}
