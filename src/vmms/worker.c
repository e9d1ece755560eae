// SPDX-License-Identifier: GPL-2.0-only
/*
 * Workers: one `viridian vmwp --vm-dir DIR` process per running VM. vmms keeps
 * one control connection per worker for state events (watched by the monitor
 * thread, with a pidfd for the process) and opens a short-lived connection per
 * command. Workers outlive vmms; a restarted vmms re-adopts them through their
 * worker.sock.
 */
#include "vmms/core.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define VMMS_REPLY_TIMEOUT_MS 5000
#define VMMS_STOP_WAIT_MS 5000

static int vmms_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int vmms_pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* sun_path holds 108 bytes; going through /proc/self/fd/N of the VM directory
 * keeps long state-dir paths working. */
static int vmms_unix_connect(const char *dir, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int dfd, fd, r;

	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, name);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		close(dfd);
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(dfd);
	if (r < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static struct vmms_conn *vmms_conn_new(int fd)
{
	struct vmms_conn *c = malloc(sizeof(*c));

	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->len = 0;
	return c;
}

static void vmms_conn_free(struct vmms_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Takes one complete line out of the buffer; 1 = line, 0 = none buffered. */
static int vmms_conn_take_line(struct vmms_conn *c, char *line, size_t len)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t n;

	if (!nl)
		return 0;
	n = (size_t)(nl - c->buf);
	snprintf(line, len, "%.*s", (int)n, c->buf);
	memmove(c->buf, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	return 1;
}

/* One line within timeout_ms: 1 = line, 0 = timeout, -1 = EOF or error. */
static int vmms_conn_read_line(struct vmms_conn *c, char *line, size_t len, int timeout_ms)
{
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		uint64_t now;
		ssize_t n;
		int r;

		if (vmms_conn_take_line(c, line, len))
			return 1;
		if (c->len == sizeof(c->buf))
			return -1; /* a line longer than any valid message */
		now = util_now_ns();
		if (now >= deadline)
			return 0;
		r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? 0 : -1;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

static int vmms_conn_send(struct vmms_conn *c, unsigned id, const char *cmd)
{
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "{\"id\": %u, \"cmd\": \"%s\"}\n", id, cmd);

	return (int)send(c->fd, msg, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static int vmms_state_parse(const char *s, enum vmms_state *out)
{
	static const char *const names[] = {"Off", "Starting", "Running", "Paused", "Stopping"};

	for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum vmms_state)i;
			return 0;
		}
	}
	return -1;
}

static const char *vmms_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * A request on a fresh connection; *reply gets the reply object (caller puts it).
 * Returns 0 when the worker answered ok, -1 otherwise (err_set()).
 */
static int vmms_worker_request(struct vmms_vm *vm, const char *cmd, struct json_object **reply)
{
	struct vmms_conn *c;
	uint64_t deadline;
	char line[4096];
	int fd;

	*reply = NULL;
	fd = vmms_unix_connect(vm->dir, "worker.sock");
	if (fd < 0) {
		err_set("cannot reach the worker of VM %s: %s", vm->cfg.name, strerror(errno));
		return -1;
	}
	c = vmms_conn_new(fd);
	if (!c || vmms_conn_send(c, 1, cmd)) {
		err_set("cannot send '%s' to the worker of VM %s", cmd, vm->cfg.name);
		vmms_conn_free(c);
		return -1;
	}
	deadline = util_now_ns() + VMMS_REPLY_TIMEOUT_MS * 1000000ull;
	while (util_now_ns() < deadline) {
		struct json_object *o, *id, *ok;
		int r = vmms_conn_read_line(c, line, sizeof(line),
					    (int)((deadline - util_now_ns()) / 1000000ull) + 1);

		if (r <= 0)
			break;
		o = vmms_json_parse(line, strlen(line));
		if (!o)
			continue;
		if (json_object_object_get_ex(o, "id", &id) && json_object_get_int(id) == 1) {
			vmms_conn_free(c);
			*reply = o;
			if (json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok))
				return 0;
			err_set("the worker of VM %s refused '%s': %.300s", vm->cfg.name, cmd,
				vmms_json_str(o, "error") ? vmms_json_str(o, "error")
							  : "no reason given");
			return -1;
		}
		json_object_put(o);
	}
	vmms_conn_free(c);
	err_set("the worker of VM %s did not answer '%s'", vm->cfg.name, cmd);
	return -1;
}

static void vmms_epoll_add(struct vmms *m, int fd, struct vmms_vm *vm, unsigned kind)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uintptr_t)vm | kind};

	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_error("vmms", "epoll_ctl: %s", strerror(errno));
}

static void vmms_ctl_close(struct vmms *m, struct vmms_vm *vm)
{
	if (!vm->ctl)
		return;
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, vm->ctl->fd, NULL);
	vmms_conn_free(vm->ctl);
	vm->ctl = NULL;
}

static void vmms_unlink_sockets(struct vmms_vm *vm)
{
	char p[PATH_MAX + 16];

	snprintf(p, sizeof(p), "%s/worker.sock", vm->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/console.sock", vm->dir);
	unlink(p);
}

/* Worker process ended: reap it and settle the VM's state. Under m->lock. */
static void vmms_worker_gone(struct vmms *m, struct vmms_vm *vm)
{
	char why[160] = "", tail[VMMS_REASON_MAX], reason[VMMS_REASON_MAX];
	bool clean = false;
	int st = 0;

	if (vm->own_child && waitpid(vm->pid, &st, WNOHANG) == vm->pid) {
		if (WIFEXITED(st)) {
			clean = WEXITSTATUS(st) == 0;
			snprintf(why, sizeof(why), "worker exited with code %d", WEXITSTATUS(st));
		} else if (WIFSIGNALED(st)) {
			snprintf(why, sizeof(why), "worker killed by signal %d (%s)", WTERMSIG(st),
				 strsignal(WTERMSIG(st)));
		}
	} else {
		/* Adopted after a vmms restart: the exit status went to init. */
		snprintf(why, sizeof(why), "worker %d exited (status unknown: adopted worker)",
			 (int)vm->pid);
		clean = vm->off_reported;
	}
	vmms_ctl_close(m, vm);
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, vm->pidfd, NULL);
	close(vm->pidfd);
	vm->pidfd = -1;
	vm->pid = 0;
	vmms_unlink_sockets(vm);
	vmms_vm_log_tail(vm, tail, sizeof(tail));
	if (vm->stop_requested || clean) {
		vmms_vm_set_state(m, vm, VMMS_OFF, vm->stop_requested ? "" : vm->reason);
	} else if (vm->off_reported && !WIFSIGNALED(st)) {
		vmms_vm_set_state(m, vm, VMMS_OFF, vm->reason[0] ? vm->reason : why);
	} else {
		snprintf(reason, sizeof(reason), "%s%s%.300s", why, tail[0] ? ": " : "", tail);
		vmms_vm_set_state(m, vm, VMMS_CRITICAL, reason);
	}
	vm->stop_requested = false;
}

/* A line from a worker's event connection. Under m->lock. */
static void vmms_worker_line(struct vmms *m, struct vmms_vm *vm, const char *line)
{
	struct json_object *o = vmms_json_parse(line, strlen(line));
	const char *ev, *st, *reason;
	enum vmms_state s;

	if (!o)
		return;
	ev = vmms_json_str(o, "event");
	st = vmms_json_str(o, "state");
	reason = vmms_json_str(o, "reason");
	if (ev && !strcmp(ev, "state") && st && !vmms_state_parse(st, &s)) {
		if (s == VMMS_OFF) {
			/* Settled when the process exits (vmms_worker_gone). */
			vm->off_reported = true;
			if (reason)
				snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
		} else if (!(vm->state == VMMS_STOPPING && s == VMMS_RUNNING)) {
			vmms_vm_set_state(m, vm, s, reason);
		}
	}
	json_object_put(o);
}

static void vmms_ctl_readable(struct vmms *m, struct vmms_vm *vm)
{
	char line[4096];
	ssize_t n;

	if (!vm->ctl)
		return;
	n = read(vm->ctl->fd, vm->ctl->buf + vm->ctl->len, sizeof(vm->ctl->buf) - vm->ctl->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0 || (vm->ctl->len += (size_t)n) == sizeof(vm->ctl->buf)) {
		/* EOF: the worker is exiting; its pidfd settles the state. */
		vmms_ctl_close(m, vm);
		return;
	}
	while (vmms_conn_take_line(vm->ctl, line, sizeof(line)))
		vmms_worker_line(m, vm, line);
}

static void *vmms_monitor_main(void *arg)
{
	struct vmms *m = arg;
	struct epoll_event evs[32];

	for (;;) {
		int n = epoll_wait(m->epfd, evs, ARRAY_SIZE(evs), -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		pthread_mutex_lock(&m->lock);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			struct vmms_vm *vm = (struct vmms_vm *)(uintptr_t)(tag & ~(uint64_t)1);

			if (!vm)
				continue;
			if (tag & 1) {
				if (vm->pidfd >= 0)
					vmms_worker_gone(m, vm);
			} else {
				vmms_ctl_readable(m, vm);
			}
		}
		bool quit = m->quit;

		pthread_mutex_unlock(&m->lock);
		if (quit)
			break;
	}
	return NULL;
}

int vmms_monitor_start(struct vmms *m)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};

	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->epfd < 0 || m->wake_fd < 0 ||
	    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->wake_fd, &ev) < 0) {
		err_set("cannot set up the worker monitor: %s", strerror(errno));
		return -1;
	}
	if (pthread_create(&m->monitor, NULL, vmms_monitor_main, m)) {
		err_set("cannot start the worker monitor thread");
		return -1;
	}
	m->monitor_running = true;
	return 0;
}

void vmms_monitor_stop(struct vmms *m)
{
	uint64_t one = 1;

	if (!m->monitor_running)
		return;
	pthread_mutex_lock(&m->lock);
	m->quit = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (write(m->wake_fd, &one, sizeof(one)) < 0)
		log_warn("vmms", "cannot wake the monitor: %s", strerror(errno));
	pthread_join(m->monitor, NULL);
	m->monitor_running = false;
	close(m->epfd);
	close(m->wake_fd);
}

/* Register a connected worker with the monitor. Under m->lock. */
static void vmms_worker_attach(struct vmms *m, struct vmms_vm *vm, pid_t pid, int pidfd,
			       struct vmms_conn *c, bool own)
{
	vm->pid = pid;
	vm->pidfd = pidfd;
	vm->own_child = own;
	vm->ctl = c;
	vmms_epoll_add(m, c->fd, vm, 0);
	vmms_epoll_add(m, pidfd, vm, 1);
}

static pid_t vmms_peer_pid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -1;
	return cr.pid;
}

void vmms_workers_adopt(struct vmms *m)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nvms; i++) {
		struct vmms_vm *vm = m->vms[i];
		char p[PATH_MAX + 16], line[4096], tail[VMMS_REASON_MAX], reason[VMMS_REASON_MAX];
		struct vmms_conn *c;
		enum vmms_state s = VMMS_RUNNING;
		struct stat st;
		int fd, pidfd;
		pid_t pid;

		snprintf(p, sizeof(p), "%s/worker.sock", vm->dir);
		if (lstat(p, &st) < 0)
			continue;
		fd = vmms_unix_connect(vm->dir, "worker.sock");
		pid = fd >= 0 ? vmms_peer_pid(fd) : -1;
		pidfd = pid > 0 ? vmms_pidfd_open(pid) : -1;
		c = pidfd >= 0 ? vmms_conn_new(fd) : NULL;
		if (!c) {
			if (fd >= 0 && pidfd < 0)
				close(fd);
			if (pidfd >= 0)
				close(pidfd);
			vmms_unlink_sockets(vm);
			vmms_vm_log_tail(vm, tail, sizeof(tail));
			snprintf(reason, sizeof(reason),
				 "worker gone while vmms was down (dead control socket)%s%.300s",
				 tail[0] ? ": " : "", tail);
			vmms_vm_set_state(m, vm, VMMS_CRITICAL, reason);
			continue;
		}
		/* The worker's own view of its state; events follow on the same connection. */
		if (!vmms_conn_send(c, 1, "status")) {
			uint64_t deadline = util_now_ns() + 2000000000ull;

			while (util_now_ns() < deadline &&
			       vmms_conn_read_line(c, line, sizeof(line), 2000) == 1) {
				struct json_object *o = vmms_json_parse(line, strlen(line));
				struct json_object *id;
				const char *sv = o ? vmms_json_str(o, "state") : NULL;
				bool is_reply = o && json_object_object_get_ex(o, "id", &id);

				if (sv)
					vmms_state_parse(sv, &s);
				json_object_put(o);
				if (is_reply)
					break;
			}
		}
		vmms_worker_attach(m, vm, pid, pidfd, c, false);
		vmms_vm_set_state(m, vm, s == VMMS_OFF ? VMMS_STOPPING : s, NULL);
		log_info("vmms", "re-adopted the worker of VM %s (pid %d)", vm->cfg.name, (int)pid);
	}
	pthread_mutex_unlock(&m->lock);
}

/* Waits (lock held) until the VM has no worker or timeout; true when gone. */
static bool vmms_wait_gone(struct vmms *m, struct vmms_vm *vm, unsigned timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (vm->pidfd >= 0)
		if (pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT)
			break;
	return vm->pidfd < 0;
}

/* Kills a worker that never got attached, and reaps it. */
static void vmms_kill_reap(pid_t pid, int pidfd)
{
	vmms_pidfd_kill(pidfd, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pidfd);
}

static pid_t vmms_spawn(struct vmms *m, struct vmms_vm *vm)
{
	char logp[PATH_MAX + 16];
	int logfd, nullfd;
	pid_t pid;

	snprintf(logp, sizeof(logp), "%s/worker.log", vm->dir);
	logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || nullfd < 0) {
		err_set("cannot open %s: %s", logp, strerror(errno));
		if (logfd >= 0)
			close(logfd);
		if (nullfd >= 0)
			close(nullfd);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"viridian",    "vmwp",	     "--vm-dir", vm->dir,
				"--log-level", m->log_level, NULL};
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		syscall(SYS_close_range, 3, ~0u, 0);
		execv(m->worker_exe, argv);
		/* Only async-signal-safe calls between fork and exec. */
		static const char msg[] = "vmms: cannot execute the worker program\n";

		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	close(logfd);
	close(nullfd);
	if (pid < 0)
		err_set("cannot fork a worker: %s", strerror(errno));
	return pid;
}

static int vmms_start_fail(struct vmms *m, struct vmms_vm *vm, const char *why, const char **code)
{
	char tail[VMMS_REASON_MAX], reason[VMMS_REASON_MAX];

	if (!why || !why[0]) {
		vmms_vm_log_tail(vm, tail, sizeof(tail));
		why = tail[0] ? tail : "the worker exited without a message";
	}
	snprintf(reason, sizeof(reason), "%s", why);
	vmms_unlink_sockets(vm);
	pthread_mutex_lock(&m->lock);
	vmms_vm_set_state(m, vm, VMMS_OFF, reason);
	pthread_mutex_unlock(&m->lock);
	err_set("VM %s did not start: %s", vm->cfg.name, reason);
	*code = "start_failed";
	return -1;
}

int vmms_worker_start(struct vmms *m, struct vmms_vm *vm, const char **code)
{
	char line[4096], why[VMMS_REASON_MAX] = "";
	struct vmms_conn *c = NULL;
	enum vmms_state s = VMMS_STARTING;
	uint64_t deadline;
	int pidfd, fd = -1, st;
	pid_t pid;

	vmms_unlink_sockets(vm);
	pid = vmms_spawn(m, vm);
	if (pid < 0)
		return vmms_start_fail(m, vm, err_msg(), code);
	pidfd = vmms_pidfd_open(pid);
	if (pidfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return vmms_start_fail(m, vm, "pidfd_open failed (Linux 5.3 or newer is needed)",
				       code);
	}
	deadline = util_now_ns() + (uint64_t)m->start_timeout_ms * 1000000ull;
	/* The worker binds worker.sock before it builds the partition. */
	while (util_now_ns() < deadline) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};

		fd = vmms_unix_connect(vm->dir, "worker.sock");
		if (fd >= 0)
			break;
		if (poll(&p, 1, 10) == 1) {
			waitpid(pid, &st, 0);
			close(pidfd);
			if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
				snprintf(why, sizeof(why), "cannot execute %s", m->worker_exe);
			return vmms_start_fail(m, vm, why, code);
		}
	}
	if (fd < 0) {
		vmms_kill_reap(pid, pidfd);
		return vmms_start_fail(m, vm, "the worker did not open its control socket in time",
				       code);
	}
	c = vmms_conn_new(fd);
	if (!c || vmms_conn_send(c, 1, "status")) {
		vmms_conn_free(c);
		vmms_kill_reap(pid, pidfd);
		return vmms_start_fail(m, vm, "cannot talk to the worker", code);
	}
	/* Until Running (or Paused): reply to status, then state events. */
	while (s == VMMS_STARTING) {
		uint64_t now = util_now_ns();
		struct json_object *o;
		const char *sv, *ev, *rs;
		int r;

		r = now < deadline ? vmms_conn_read_line(c, line, sizeof(line),
							 (int)((deadline - now) / 1000000ull) + 1)
				   : 0;
		if (r <= 0) {
			vmms_conn_free(c);
			if (r == 0) {
				vmms_kill_reap(pid, pidfd);
				return vmms_start_fail(
					m, vm, "the worker did not reach Running in time", code);
			}
			/* EOF: the worker is exiting (e.g. no /dev/kvm); collect its status. */
			struct pollfd p = {.fd = pidfd, .events = POLLIN};

			if (poll(&p, 1, 5000) != 1)
				vmms_pidfd_kill(pidfd, SIGKILL);
			waitpid(pid, &st, 0);
			close(pidfd);
			return vmms_start_fail(m, vm, why, code);
		}
		o = vmms_json_parse(line, strlen(line));
		if (!o)
			continue;
		sv = vmms_json_str(o, "state");
		ev = vmms_json_str(o, "event");
		rs = vmms_json_str(o, "reason");
		if (!ev && vmms_json_str(o, "error"))
			snprintf(why, sizeof(why), "%s", vmms_json_str(o, "error"));
		if (sv && vmms_state_parse(sv, &s) == 0 && s == VMMS_OFF) {
			if (rs && rs[0])
				snprintf(why, sizeof(why), "%s", rs);
			/* Wait for the exit, then report. */
			s = VMMS_STARTING;
			json_object_put(o);
			continue;
		}
		if (s == VMMS_STOPPING)
			s = VMMS_STARTING;
		json_object_put(o);
	}
	pthread_mutex_lock(&m->lock);
	vmms_worker_attach(m, vm, pid, pidfd, c, true);
	vmms_vm_set_state(m, vm, s, NULL);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vmms_worker_stop(struct vmms *m, struct vmms_vm *vm, const char **code)
{
	struct json_object *reply;
	bool gone;

	pthread_mutex_lock(&m->lock);
	if (vm->pidfd < 0) {
		vmms_vm_set_state(m, vm, VMMS_OFF, "");
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	vm->stop_requested = true;
	vmms_vm_set_state(m, vm, VMMS_STOPPING, "");
	pthread_mutex_unlock(&m->lock);
	vmms_worker_request(vm, "stop", &reply);
	json_object_put(reply);
	pthread_mutex_lock(&m->lock);
	gone = vmms_wait_gone(m, vm, VMMS_STOP_WAIT_MS);
	if (!gone) {
		log_warn("vmms", "VM %s: worker %d ignored stop; killing it", vm->cfg.name,
			 (int)vm->pid);
		vmms_pidfd_kill(vm->pidfd, SIGKILL);
		gone = vmms_wait_gone(m, vm, VMMS_STOP_WAIT_MS);
	}
	pthread_mutex_unlock(&m->lock);
	if (!gone) {
		err_set("the worker of VM %s did not exit after SIGKILL", vm->cfg.name);
		*code = "internal";
		return -1;
	}
	return 0;
}

int vmms_worker_shutdown(struct vmms *m, struct vmms_vm *vm, unsigned timeout_s, const char **code)
{
	struct json_object *reply;
	bool gone;
	int r;

	r = vmms_worker_request(vm, "shutdown", &reply);
	json_object_put(reply);
	if (r) {
		*code = "invalid_state";
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	if (vm->pidfd >= 0)
		vmms_vm_set_state(m, vm, VMMS_STOPPING, NULL);
	gone = vmms_wait_gone(m, vm, timeout_s * 1000u);
	pthread_mutex_unlock(&m->lock);
	if (gone)
		return 0;
	log_info("vmms", "VM %s: no power-off within %u s; stopping it hard", vm->cfg.name,
		 timeout_s);
	return vmms_worker_stop(m, vm, code);
}

int vmms_worker_command(struct vmms *m, struct vmms_vm *vm, const char *cmd, const char **code)
{
	struct json_object *reply;
	enum vmms_state s;
	const char *sv;
	int r;

	r = vmms_worker_request(vm, cmd, &reply);
	if (r) {
		json_object_put(reply);
		*code = reply ? "invalid_state" : "internal";
		return -1;
	}
	sv = vmms_json_str(reply, "state");
	pthread_mutex_lock(&m->lock);
	if (sv && !vmms_state_parse(sv, &s) && s != VMMS_OFF && vm->pidfd >= 0)
		vmms_vm_set_state(m, vm, s, NULL);
	else if (!sv && vm->pidfd >= 0)
		vmms_vm_set_state(m, vm, !strcmp(cmd, "pause") ? VMMS_PAUSED : VMMS_RUNNING, NULL);
	pthread_mutex_unlock(&m->lock);
	json_object_put(reply);
	return 0;
}
