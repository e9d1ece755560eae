// SPDX-License-Identifier: GPL-2.0-only
/*
 * Stand-in worker for the vmms tests on hosts without /dev/kvm: speaks the
 * worker control protocol (mgmt contract) without a partition. vmms runs it
 * instead of `viridian vmwp` when VIRIDIAN_VMWP names it. The VM's cmdline
 * picks a behaviour: "fake=fail" (exit 1 with an error before binding),
 * "fake=noshutdown" (ignores the power button).
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 32

static struct pollfd fds[2 + MAX_CLIENTS];
static char bufs[2 + MAX_CLIENTS][4096];
static size_t lens[2 + MAX_CLIENTS];
static int nfds;
static const char *state = "Starting";

static int listen_on(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
	unlink(name);
	umask(0077);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		fprintf(stderr, "fake vmwp: cannot bind %s: %s\n", name, strerror(errno));
		exit(1);
	}
	return fd;
}

static void send_line(int fd, const char *s)
{
	if (send(fd, s, strlen(s), MSG_NOSIGNAL) < 0)
		return;
}

static void event(const char *st, const char *reason)
{
	char line[512];

	state = st;
	snprintf(line, sizeof(line),
		 "{\"event\": \"state\", \"state\": \"%s\", \"reason\": \"%s\"}\n", st, reason);
	for (int i = 2; i < nfds; i++)
		if (fds[i].fd >= 0)
			send_line(fds[i].fd, line);
}

static void finish(int code)
{
	unlink("worker.sock");
	unlink("console.sock");
	fprintf(stderr, "fake vmwp: exiting with %d\n", code);
	exit(code);
}

static void reply(int fd, int id, bool ok, const char *err)
{
	char line[512];

	if (ok)
		snprintf(line, sizeof(line),
			 "{\"id\": %d, \"ok\": true, \"state\": \"%s\", \"pid\": %d}\n", id, state,
			 (int)getpid());
	else
		snprintf(line, sizeof(line), "{\"id\": %d, \"ok\": false, \"error\": \"%s\"}\n", id,
			 err);
	send_line(fd, line);
}

static bool noshutdown;
static bool shutdown_pending;

static void handle(int fd, const char *line)
{
	struct json_object *o = json_tokener_parse(line), *v;
	const char *cmd = "";
	int id = 0;

	if (!o)
		return;
	if (json_object_object_get_ex(o, "id", &v))
		id = json_object_get_int(v);
	if (json_object_object_get_ex(o, "cmd", &v))
		cmd = json_object_get_string(v);
	if (!strcmp(cmd, "status")) {
		reply(fd, id, true, NULL);
	} else if (!strcmp(cmd, "stop")) {
		reply(fd, id, true, NULL);
		event("Off", "");
		finish(0);
	} else if (!strcmp(cmd, "shutdown")) {
		reply(fd, id, true, NULL);
		if (!noshutdown)
			shutdown_pending = true;
	} else if (!strcmp(cmd, "pause") && !strcmp(state, "Running")) {
		event("Paused", "");
		reply(fd, id, true, NULL);
	} else if (!strcmp(cmd, "resume") && !strcmp(state, "Paused")) {
		event("Running", "");
		reply(fd, id, true, NULL);
	} else if (!strcmp(cmd, "reset")) {
		reply(fd, id, true, NULL);
	} else {
		reply(fd, id, false, "command not valid in this state");
	}
	json_object_put(o);
}

int main(int argc, char **argv)
{
	struct json_object *cfg, *v;
	const char *dir = NULL, *cmdline = "";

	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--vm-dir"))
			dir = argv[i + 1];
	if (argc < 2 || strcmp(argv[1], "vmwp") || !dir || chdir(dir) < 0) {
		fprintf(stderr, "fake vmwp: usage: fake_vmwp vmwp --vm-dir DIR\n");
		return 2;
	}
	cfg = json_object_from_file("vm.json");
	if (!cfg) {
		fprintf(stderr, "fake vmwp: cannot read vm.json\n");
		return 1;
	}
	if (json_object_object_get_ex(cfg, "cmdline", &v))
		cmdline = json_object_get_string(v);
	fprintf(stderr, "fake vmwp: starting pid %d\n", (int)getpid());
	if (strstr(cmdline, "fake=fail")) {
		fprintf(stderr, "fake vmwp: cannot build the partition: /dev/kvm is missing\n");
		json_object_put(cfg);
		return 1;
	}
	noshutdown = strstr(cmdline, "fake=noshutdown") != NULL;
	signal(SIGPIPE, SIG_IGN);
	fds[0] = (struct pollfd){.fd = listen_on("worker.sock"), .events = POLLIN};
	fds[1] = (struct pollfd){.fd = listen_on("console.sock"), .events = POLLIN};
	nfds = 2;
	state = "Running";
	fprintf(stderr, "fake vmwp: running\n");
	for (;;) {
		if (poll(fds, (nfds_t)nfds, shutdown_pending ? 100 : -1) == 0 && shutdown_pending) {
			event("Off", "guest powered off");
			finish(0);
		}
		for (int i = 0; i < 2; i++) {
			if (!(fds[i].revents & POLLIN))
				continue;
			int c = accept(fds[i].fd, NULL, NULL);

			if (c < 0)
				continue;
			if (i == 1 || nfds == 2 + MAX_CLIENTS) {
				if (i == 1)
					send_line(c, "ready\n");
				close(c);
				continue;
			}
			lens[nfds] = 0;
			fds[nfds++] = (struct pollfd){.fd = c, .events = POLLIN};
		}
		for (int i = 2; i < nfds; i++) {
			char *nl;
			ssize_t n;

			if (!(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(fds[i].fd, bufs[i] + lens[i], sizeof(bufs[i]) - 1 - lens[i]);
			if (n <= 0) {
				close(fds[i].fd);
				fds[i] = fds[nfds - 1];
				lens[i] = lens[nfds - 1];
				memcpy(bufs[i], bufs[nfds - 1], lens[i]);
				nfds--;
				i--;
				continue;
			}
			lens[i] += (size_t)n;
			bufs[i][lens[i]] = 0;
			while ((nl = strchr(bufs[i], '\n'))) {
				*nl = 0;
				handle(fds[i].fd, bufs[i]);
				lens[i] -= (size_t)(nl + 1 - bufs[i]);
				memmove(bufs[i], nl + 1, lens[i] + 1);
			}
		}
	}
}
