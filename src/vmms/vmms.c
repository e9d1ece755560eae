// SPDX-License-Identifier: GPL-2.0-only
/* `viridian vmms`: options, the API socket, signals; workers keep running when it exits. */
#include "vmms/vmms.h"

#include "cli/commands.h"
#include "lib/err.h"
#include "lib/log.h"
#include "vmms/core.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VMMS_DEFAULT_STATE_DIR "/var/lib/viridian"
#define VMMS_DEFAULT_SOCKET "/run/viridian/vmms.sock"

static const char vmms_help[] =
	"usage: viridian vmms [--state-dir DIR] [--socket PATH] [--log-level LEVEL]\n"
	"Runs the management service in the foreground: the VM registry in DIR\n"
	"(default " VMMS_DEFAULT_STATE_DIR "), the REST API v1 on the Unix socket PATH\n"
	"(default " VMMS_DEFAULT_SOCKET ", mode 0660, group 'viridian' when it exists)\n"
	"and one worker process per running VM. Workers keep running when vmms exits;\n"
	"a restarted vmms adopts them. LEVEL: error, warn, info (default), debug, trace.\n";

/* A live socket means another vmms owns it; a dead one is a leftover. */
static int vmms_socket_bind(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd;

	if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path)) {
		err_set("--socket must be an absolute path shorter than %zu bytes",
			sizeof(sa.sun_path));
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			err_set("cannot create %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err_set("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		err_set("another vmms is already serving %s", path);
		return -1;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err_set("socket: %s", strerror(errno));
		return -1;
	}
	/* Not world-accessible even for the moment between bind and chmod. */
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));

	umask(old);
	if (r < 0) {
		err_set("cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, 0660) < 0) {
		err_set("cannot chmod %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct group *g = getgrnam("viridian");

	if (g && geteuid() == 0 && chown(path, 0, g->gr_gid) < 0)
		log_warn("vmms", "cannot give %s to group viridian: %s", path, strerror(errno));
	if (listen(fd, 128) < 0) {
		err_set("listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int vmms_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"state-dir", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, 's'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *state_dir = VMMS_DEFAULT_STATE_DIR, *sock = VMMS_DEFAULT_SOCKET;
	const char *level = "info", *exe;
	static struct vmms m;
	struct vmms_api *api = NULL;
	enum log_level lv;
	sigset_t set;
	int c, fd, sig, lockfd;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			state_dir = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &lv) < 0) {
				fprintf(stderr,
					"viridian vmms: bad --log-level '%s' (error, warn, "
					"info, debug, trace)\n",
					optarg);
				return VIRIDIAN_EXIT_USAGE;
			}
			log_set_level(lv);
			level = optarg;
			break;
		case 'h':
			fputs(vmms_help, stdout);
			return VIRIDIAN_EXIT_OK;
		default:
			fputs(vmms_help, stderr);
			return VIRIDIAN_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "viridian vmms: unexpected argument '%s'\n", argv[optind]);
		return VIRIDIAN_EXIT_USAGE;
	}
	/* Signals go to sigwait() here; every thread created below inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (vmms_init(&m, state_dir) < 0) {
		fprintf(stderr, "viridian vmms: %s\n", err_msg());
		return VIRIDIAN_EXIT_ERROR;
	}
	snprintf(m.log_level, sizeof(m.log_level), "%s", level);
	/* Two services on one registry would undo each other's writes. */
	char lockp[PATH_MAX + 16];

	snprintf(lockp, sizeof(lockp), "%s/vmms.lock", m.state_dir);
	lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "viridian vmms: %s: %s\n", lockp,
			errno == EWOULDBLOCK ? "another vmms uses this state directory"
					     : strerror(errno));
		return VIRIDIAN_EXIT_ERROR;
	}
	/* Tests substitute a stand-in worker; the real one is this same binary. */
	exe = getenv("VIRIDIAN_VMWP");
	snprintf(m.worker_exe, sizeof(m.worker_exe), "%s", exe && *exe ? exe : "/proc/self/exe");
	fd = vmms_socket_bind(sock);
	if (fd < 0 || vmms_registry_load(&m) < 0 || vmms_monitor_start(&m) < 0) {
		fprintf(stderr, "viridian vmms: %s\n", err_msg());
		if (fd >= 0) {
			close(fd);
			unlink(sock);
		}
		return VIRIDIAN_EXIT_ERROR;
	}
	vmms_workers_adopt(&m);
	api = vmms_api_start(&m, fd);
	if (!api) {
		fprintf(stderr, "viridian vmms: %s\n", err_msg());
		vmms_monitor_stop(&m);
		close(fd);
		unlink(sock);
		return VIRIDIAN_EXIT_ERROR;
	}
	log_info("vmms", "serving REST API v1 on %s (state in %s)", sock, state_dir);
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		log_info("vmms", "SIGHUP ignored");
	log_info("vmms", "%s: stopping (workers keep running)", strsignal(sig));
	pthread_mutex_lock(&m.lock);
	m.quit = true;
	pthread_cond_broadcast(&m.cond);
	pthread_mutex_unlock(&m.lock);
	vmms_api_stop(api);
	vmms_monitor_stop(&m);
	close(fd);
	unlink(sock);
	vmms_fini(&m);
	close(lockfd);
	return VIRIDIAN_EXIT_OK;
}
