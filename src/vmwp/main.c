// SPDX-License-Identifier: GPL-2.0-only
/*
 * viridian vmwp --vm-dir DIR: the worker of one VM. Order matters: config, sockets (so vmms
 * can connect and see Starting, and then the Off event with the reason if the partition
 * cannot be built), the VM through run_vm(), the sandbox inside its before-guest hook.
 * stderr is worker.log: its last line is the reason vmms shows for a failed start.
 */
#include "vmwp/vmwp.h"

#include "cli/commands.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct vmwp {
	struct vmwp_config cfg;
	struct vmwp_server *server;
	struct run_ctl ctl;
	bool drop, sandboxed;
	uid_t uid;
	gid_t gid;
};

static void vmwp_usage(FILE *f)
{
	fprintf(f, "usage: viridian vmwp --vm-dir DIR [--log-level LEVEL]\n"
		   "  Runs the VM described by DIR/vm.json; serves DIR/worker.sock (control)\n"
		   "  and DIR/console.sock (COM1). Started by `viridian vmms`, not by hand.\n"
		   "exit codes: docs/exit-codes.md\n");
}

static int __attribute__((format(printf, 2, 3))) vmwp_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("viridian vmwp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static int vmwp_before_guest(void *opaque)
{
	struct vmwp *w = opaque;

	if (w->drop && vmwp_sandbox_drop(w->uid, w->gid) < 0)
		return -1;
	if (vmwp_sandbox_seccomp() < 0)
		return -1;
	w->sandboxed = true;
	return 0;
}

static void vmwp_on_state(void *opaque, enum run_state s, const char *reason)
{
	struct vmwp *w = opaque;

	vmwp_server_event(w->server, s, reason);
}

/*
 * Test hook for a host without KVM: VIRIDIAN_VMWP_TEST_WAIT="CLIENTS,REQUESTS" holds the
 * worker (at most 20 s) until that many control clients connected and requests were answered,
 * so a test sees the states and events of a start however slowly its clients come up.
 */
static void vmwp_test_wait(struct vmwp *w)
{
	const char *env = getenv("VIRIDIAN_VMWP_TEST_WAIT");
	unsigned clients = 0, requests = 0;

	if (env && sscanf(env, "%u,%u", &clients, &requests) >= 1)
		vmwp_server_test_wait(w->server, MIN(clients, 32u), MIN(requests, 1000u), 20000);
}

static void *vmwp_test_thread(void *arg)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return arg;
}

/*
 * What a boot does once the filter is on (vCPU and timer threads, fresh guest RAM, the kernel
 * file read again on a reboot, timers and eventfds), minus KVM itself. A gap in the
 * allow-list kills the process here rather than on a KVM host.
 */
static int vmwp_test_boot_syscalls(const char *kernel)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};
	pthread_t t;
	void *ret = NULL, *p;
	char buf[64];
	int fd;

	if (pthread_create(&t, NULL, vmwp_test_thread, buf) || pthread_join(t, &ret) || ret != buf)
		return -1;
	fd = memfd_create("vmwp-test", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		return -1;
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	memset(p, 1, 4096);
	munmap(p, 1 << 20);
	close(fd);
	fd = open(kernel, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, buf, sizeof(buf), 0) < 0)
		return -1;
	close(fd);
	close(eventfd(0, EFD_CLOEXEC));
	close(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
	close(epoll_create1(EPOLL_CLOEXEC));
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	log_info("vmwp", "test: boot syscalls ran under the filter");
	return 0;
}

/*
 * Test hooks for the filter without KVM. "1": a forbidden syscall must kill the process.
 * "serve": the sockets keep working under the filter for a while, then the normal exit path.
 */
static int vmwp_test_seccomp(struct vmwp *w, const char *mode)
{
	if (vmwp_before_guest(w) < 0)
		return vmwp_fail(VIRIDIAN_EXIT_ERROR, "%s", err_msg());
	w->sandboxed = true;
	if (!strcmp(mode, "serve")) {
		if (vmwp_test_boot_syscalls(w->cfg.kernel) < 0)
			return vmwp_fail(VIRIDIAN_EXIT_ERROR, "test: %s", strerror(errno));
		vmwp_test_wait(w);
		vmwp_server_event(w->server, RUN_STATE_OFF,
				  "test: served under the seccomp filter");
		return VIRIDIAN_EXIT_OK;
	}
	syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	return vmwp_fail(VIRIDIAN_EXIT_ERROR, "seccomp filter installed but ptrace was allowed");
}

int vmwp_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"vm-dir", required_argument, NULL, 'd'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct vmwp w;
	const char *dir = NULL;
	static struct run_disk disks[VMWP_MAX_DISKS];
	struct run_config rc;
	enum log_level level;
	sigset_t sigs;
	char path[4200];
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &level) < 0)
				return vmwp_fail(VIRIDIAN_EXIT_USAGE,
						 "--log-level '%s': expected error, warn, info, "
						 "debug or trace",
						 optarg);
			log_set_level(level);
			break;
		case 'h':
			vmwp_usage(stdout);
			return VIRIDIAN_EXIT_OK;
		default:
			return vmwp_fail(VIRIDIAN_EXIT_USAGE,
					 "unknown option or missing value '%s'; see viridian vmwp "
					 "--help",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vmwp_fail(VIRIDIAN_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
	if (!dir)
		return vmwp_fail(VIRIDIAN_EXIT_USAGE, "--vm-dir DIR is required");
	if (strlen(dir) > 4000)
		return vmwp_fail(VIRIDIAN_EXIT_USAGE, "--vm-dir: path too long");
	snprintf(path, sizeof(path), "%s/vm.json", dir);
	if (vmwp_config_load(&w.cfg, path) < 0)
		return vmwp_fail(VIRIDIAN_EXIT_ERROR, "%s", err_msg());
	log_set_vm_name(w.cfg.name);
	/* NSS may open files and sockets: resolve the user while that is still allowed. */
	if (w.cfg.user) {
		if (vmwp_sandbox_lookup_user(w.cfg.user, &w.uid, &w.gid) < 0) {
			vmwp_config_free(&w.cfg);
			return vmwp_fail(VIRIDIAN_EXIT_ERROR, "%s", err_msg());
		}
		w.drop = true;
	}
	run_ctl_init(&w.ctl);
	/* For vmms, the worker is Starting from exec until the guest runs or it gives up. */
	w.ctl.state = RUN_STATE_STARTING;
	signal(SIGPIPE, SIG_IGN);
	/*
	 * SIGINT/SIGTERM are run_vm()'s (a signalfd, then a clean stop and the Off event): block
	 * them before the I/O thread exists so that it never takes one with the default action.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (vmwp_server_start(&w.server, dir, &w.ctl) < 0) {
		vmwp_config_free(&w.cfg);
		return vmwp_fail(VIRIDIAN_EXIT_ERROR, "%s", err_msg());
	}
	if (getenv("VIRIDIAN_VMWP_TEST_SECCOMP")) {
		r = vmwp_test_seccomp(&w, getenv("VIRIDIAN_VMWP_TEST_SECCOMP"));
		goto out;
	}
	vmwp_test_wait(&w);
	for (unsigned i = 0; i < w.cfg.ndisks; i++) {
		const char *f = w.cfg.disks[i].format;

		/* LUN i is disks[i], in vm.json order. */
		disks[i] = (struct run_disk){
			.path = w.cfg.disks[i].path,
			.read_only = w.cfg.disks[i].readonly,
			.format = !strcmp(f, "vhd")    ? DISK_FORMAT_VHD
				  : !strcmp(f, "vhdx") ? DISK_FORMAT_VHDX
						       : DISK_FORMAT_RAW,
		};
	}
	rc = (struct run_config){
		.prog = "viridian vmwp",
		.name = w.cfg.name,
		.kernel = w.cfg.kernel,
		.initrd = w.cfg.initrd,
		.cmdline = w.cfg.cmdline,
		.serial_ops = vmwp_server_serial(w.server),
		.memory = w.cfg.memory_mb << 20,
		.cpus = w.cfg.cpus,
		.disks = disks,
		.ndisks = w.cfg.ndisks,
		.echo_device = w.cfg.echo_device,
		.ctl = &w.ctl,
		.before_guest = vmwp_before_guest,
		.on_state = vmwp_on_state,
		.opaque = &w,
	};
	r = run_config_check(&rc);
	if (r) {
		/* run_config_check printed the line; clients get it as the Off reason too. */
		vmwp_server_event(w.server, RUN_STATE_OFF, err_msg()[0] ? err_msg() : "bad config");
		r = VIRIDIAN_EXIT_ERROR;
	} else {
		r = run_vm(&rc);
	}
out:
	vmwp_server_stop(w.server);
	run_ctl_destroy(&w.ctl);
	vmwp_config_free(&w.cfg);
	/*
	 * Under the filter, exit handlers are not ours to vet (a sanitizer's leak check stops
	 * the world with ptrace): leave with what is flushed.
	 */
	if (w.sandboxed) {
		fflush(NULL);
		_exit(r);
	}
	return r;
}
