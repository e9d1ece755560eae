// SPDX-License-Identifier: GPL-2.0-only
/*
 * The worker's sandbox, installed once the partition exists and before guest code runs:
 * an unprivileged user when vm.json names one, then a seccomp allow-list. After that the
 * process can run vCPUs (ioctl on the KVM fds), do I/O on descriptors it already has, serve
 * its sockets, start threads, reload the kernel for a reboot, and nothing else: no exec, no
 * new sockets, no ptrace, no mount, no privilege changes. Anything else kills the process.
 */
#include "vmwp/vmwp.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vmwp_sandbox_lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		err_set("user '%s' does not exist on this host; create it or remove \"user\" "
			"from the VM's config",
			user);
		return -ENOENT;
	}
	if (pw->pw_uid == 0) {
		err_set("user '%s' is root; the worker drops to an unprivileged user", user);
		return -EINVAL;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int vmwp_sandbox_drop(uid_t uid, gid_t gid)
{
	/* Groups first: once the uid changes we may no longer change them. */
	if (getuid() == 0 && setgroups(1, &gid) < 0) {
		err_set("setgroups: %s", strerror(errno));
		return -errno;
	}
	if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		err_set("cannot switch to uid %u gid %u: %s (the worker must start as root to "
			"drop to a user)",
			(unsigned)uid, (unsigned)gid, strerror(errno));
		return -EPERM;
	}
	if (setuid(0) == 0) {
		err_set("still able to become root after dropping to uid %u", (unsigned)uid);
		return -EPERM;
	}
	return 0;
}

/* Everything the vCPU, I/O and control threads use after setup (and what libc does for them). */
static const char *const vmwp_allowed[] = {
	/* I/O on descriptors the worker already holds */
	"read",
	"write",
	"readv",
	"writev",
	"pread64",
	"pwrite64",
	"preadv",
	"pwritev",
	"preadv2",
	"pwritev2",
	"lseek",
	"close",
	"fstat",
	"newfstatat",
	"statx",
	"fcntl",
	"fsync",
	"fdatasync",
	"fallocate",
	"ftruncate",
	"ioctl",
	/* io_uring for disks */
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register",
	/* event loop and sockets already bound */
	"epoll_create1",
	"epoll_ctl",
	"epoll_wait",
	"epoll_pwait",
	"poll",
	"ppoll",
	"eventfd2",
	"accept4",
	"recvfrom",
	"sendto",
	"recvmsg",
	"sendmsg",
	"shutdown",
	"timerfd_create",
	"timerfd_settime",
	"timerfd_gettime",
	/* memory */
	"mmap",
	"munmap",
	"mprotect",
	"mremap",
	"madvise",
	"brk",
	/* threads, signals, time */
	"futex",
	"clone",
	"clone3",
	"set_robust_list",
	"rseq",
	"exit",
	"exit_group",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sigaltstack",
	"tgkill",
	"tkill",
	"getpid",
	"gettid",
	"sched_yield",
	"sched_getaffinity",
	"nanosleep",
	"clock_nanosleep",
	"clock_gettime",
	"gettimeofday",
	"restart_syscall",
	"getrandom",
	/* a reboot reloads the kernel and initrd into fresh memory; exit removes the sockets */
	"openat",
	"memfd_create",
	"unlink",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
};

int vmwp_sandbox_seccomp(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r;

	if (!ctx) {
		err_set("seccomp_init failed");
		return -ENOMEM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(vmwp_allowed); i++) {
		int nr = seccomp_syscall_resolve_name(vmwp_allowed[i]);

		/* A name this kernel/arch does not know cannot be called either. */
		if (nr == __NR_SCMP_ERROR)
			continue;
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0) {
			err_set("seccomp: cannot allow %s: %s", vmwp_allowed[i], strerror(-r));
			seccomp_release(ctx);
			return r;
		}
	}
	/* Every thread, including the I/O thread and threads the partition started. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0) {
		err_set("cannot install the seccomp filter: %s", strerror(-r));
		return r;
	}
	log_debug("vmwp", "seccomp allow-list installed (%zu syscalls)", ARRAY_SIZE(vmwp_allowed));
	return 0;
}
