/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VM worker process (Hyper-V's VMWP): one per running VM, started by vmms as
 * `viridian vmwp --vm-dir DIR`. It reads DIR/vm.json, serves DIR/worker.sock (control:
 * newline-delimited JSON, docs in /work/briefs/mgmt-contract.md and docs/vm-cli.md) and
 * DIR/console.sock (COM1, any number of clients), builds the partition with the code of
 * `viridian run`, then locks itself down (privilege drop, seccomp) before guest code runs.
 */
#ifndef VIRIDIAN_VMWP_VMWP_H
#define VIRIDIAN_VMWP_VMWP_H

#include "cli/run.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMWP_MAX_DISKS RUN_MAX_DISKS /* one SCSI controller, LUN i = disks[i] */
#define VMWP_NAME_MAX 64

struct vmwp_disk {
	char *path;
	char format[8]; /* raw|vhd|vhdx */
	bool readonly;
};

/* What the worker takes from vm.json (unknown fields are ignored: vmms validated them). */
struct vmwp_config {
	char name[VMWP_NAME_MAX + 1];
	char uuid[37];
	uint64_t memory_mb;
	unsigned cpus;
	char *kernel, *initrd, *cmdline, *user;
	struct vmwp_disk disks[VMWP_MAX_DISKS];
	unsigned ndisks;
	unsigned ndevices;
	bool echo_device; /* "devices": ["echo"] */
};

/* Parses vm.json text. 0, or -EINVAL with err_set() naming the field. */
int vmwp_config_parse(struct vmwp_config *c, const char *json, size_t len);
/* Reads and parses a file (at most 1 MiB). */
int vmwp_config_load(struct vmwp_config *c, const char *path);
void vmwp_config_free(struct vmwp_config *c);

/*
 * The control protocol, transport-free: one request line in, one reply line out (with '\n').
 * Runs the command against ctl (NULL: every command but status fails as "not running").
 */
void vmwp_control_handle(struct run_ctl *ctl, const char *line, char *reply, size_t reply_size);
/* One state event line (with '\n'). */
void vmwp_control_event(enum run_state s, const char *reason, char *out, size_t size);

struct vmwp_server;

/*
 * Binds dir/worker.sock and dir/console.sock (mode 0600; stale files replaced) and starts the
 * I/O thread. 0 or -errno + err_set().
 */
int vmwp_server_start(struct vmwp_server **out, const char *dir, struct run_ctl *ctl);
/* Sends a state event to every control client. Any thread. */
void vmwp_server_event(struct vmwp_server *s, enum run_state state, const char *reason);
/* COM1 backend that feeds every console client and takes input from any. */
const struct run_serial *vmwp_server_serial(struct vmwp_server *s);
/*
 * Test hook: waits until `clients` control clients have connected and `requests` requests
 * have been answered (counted since start), or timeout_ms. True when reached.
 */
bool vmwp_server_test_wait(struct vmwp_server *s, unsigned clients, unsigned requests,
			   unsigned timeout_ms);
/* Stops the I/O thread, closes every client, removes the socket files. */
void vmwp_server_stop(struct vmwp_server *s);

/* Resolves the user to drop to (before any thread starts: NSS may open files). */
int vmwp_sandbox_lookup_user(const char *user, uid_t *uid, gid_t *gid);
/* setgroups/setgid/setuid to uid:gid; refuses to stay root. */
int vmwp_sandbox_drop(uid_t uid, gid_t gid);
/* Installs the allow-list (SCMP_ACT_KILL_PROCESS for anything else), all threads. */
int vmwp_sandbox_seccomp(void);

/* `viridian vmwp` (src/cli/vmwp.c calls this). */
int vmwp_main(int argc, char **argv);

#endif
