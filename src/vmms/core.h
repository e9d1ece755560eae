/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The service's shared state: the VM registry (one directory and vm.json per
 * VM), runtime state of each VM's worker, and the event queue. One mutex
 * guards it all; long operations mark a VM busy and drop the lock.
 *
 * Error convention: functions return 0, or -1 with err_set() (one line) and
 * *code (snake_case, mapped to an HTTP status by vmms_code_http()).
 */
#ifndef VIRIDIAN_VMMS_CORE_H
#define VIRIDIAN_VMMS_CORE_H

#include "vmms/config.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define VMMS_MAX_VMS 1024
#define VMMS_REASON_MAX 512
#define VMMS_EVENT_RING 256

enum vmms_state {
	VMMS_OFF,
	VMMS_STARTING,
	VMMS_RUNNING,
	VMMS_PAUSED,
	VMMS_STOPPING,
	VMMS_CRITICAL,
};

/* One control connection to a worker: newline-delimited JSON. */
struct vmms_conn {
	int fd;
	size_t len;
	char buf[16384];
};

struct vmms_vm {
	struct vmms_config cfg;
	char dir[PATH_MAX];
	enum vmms_state state;
	char reason[VMMS_REASON_MAX];
	pid_t pid;
	bool own_child; /* forked by this vmms (waitpid works) */
	int pidfd; /* -1 when no worker */
	struct vmms_conn *ctl; /* event connection watched by the monitor */
	bool busy; /* start/stop/checkpoint in progress */
	bool stop_requested;
	bool off_reported; /* the worker sent state Off before exiting */
	bool gone; /* removed from the registry; freed by the last user */
	unsigned users; /* API threads holding the pointer without the lock */
	char *json; /* cached VM object text; NULL after any change */
	size_t json_len;
};

struct vmms_event {
	uint64_t seq;
	char line[VMMS_NAME_MAX + VMMS_REASON_MAX + 128];
};

struct vmms {
	char state_dir[PATH_MAX];
	char vms_dir[PATH_MAX];
	char worker_exe[PATH_MAX];
	char log_level[16];
	unsigned start_timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* any VM state change, any event */
	struct vmms_vm **vms;
	size_t nvms;
	int epfd;
	int wake_fd;
	pthread_t monitor;
	bool monitor_running;
	bool quit;
	struct vmms_event events[VMMS_EVENT_RING];
	uint64_t event_seq; /* last emitted */
};

const char *vmms_state_name(enum vmms_state s);
int vmms_code_http(const char *code);

/* registry.c */
int vmms_init(struct vmms *m, const char *state_dir);
void vmms_fini(struct vmms *m);
int vmms_registry_load(struct vmms *m);
/* Under m->lock. */
struct vmms_vm *vmms_vm_find(struct vmms *m, const char *name);
int vmms_vm_save(struct vmms *m, struct vmms_vm *vm, const char **code);
/* Takes ownership of cfg on success (uuid and generation are assigned). */
int vmms_vm_create(struct vmms *m, struct vmms_config *cfg, struct vmms_vm **out,
		   const char **code);
int vmms_vm_remove(struct vmms *m, struct vmms_vm *vm, bool delete_disks, const char **code);
/* Pin a VM found under the lock so it stays allocated after unlocking. */
void vmms_vm_get(struct vmms_vm *vm);
void vmms_vm_put(struct vmms *m, struct vmms_vm *vm);
struct json_object *vmms_vm_to_json(struct vmms *m, struct vmms_vm *vm);
/* The same object as text, cached until the VM changes (GET /v1/vms is hot). Under m->lock;
 * NULL when out of memory. */
const char *vmms_vm_json_text(struct vmms *m, struct vmms_vm *vm, size_t *len);
void vmms_vm_set_state(struct vmms *m, struct vmms_vm *vm, enum vmms_state s, const char *reason);
/* Another VM that is not Off/Critical and uses one of cfg's writable disks (or any disk
 * cfg uses writable). Under m->lock. */
struct vmms_vm *vmms_disk_user(struct vmms *m, const struct vmms_config *cfg,
			       const struct vmms_vm *self, const char **path);
/* Last non-empty line of the VM's worker.log, "" when none. */
void vmms_vm_log_tail(struct vmms_vm *vm, char *out, size_t len);
/* Blocks until an event newer than *seq exists or timeout; fills line. 1 = got one,
 * 0 = timeout, -1 = quitting. Under m->lock (waits on m->cond). */
int vmms_event_next(struct vmms *m, uint64_t *seq, char *line, size_t len, unsigned timeout_ms);

/* worker.c */
int vmms_monitor_start(struct vmms *m);
void vmms_monitor_stop(struct vmms *m);
void vmms_workers_adopt(struct vmms *m);
/* vm pinned and busy, lock NOT held. */
int vmms_worker_start(struct vmms *m, struct vmms_vm *vm, const char **code);
int vmms_worker_stop(struct vmms *m, struct vmms_vm *vm, const char **code);
int vmms_worker_shutdown(struct vmms *m, struct vmms_vm *vm, unsigned timeout_s, const char **code);
/* pause/resume/reset; lock NOT held. */
int vmms_worker_command(struct vmms *m, struct vmms_vm *vm, const char *cmd, const char **code);

/* checkpoint.c; vm pinned and busy, lock NOT held. */
/* current = the VM's checkpoint name (copied under the lock), or NULL. */
struct json_object *vmms_checkpoint_list(struct vmms_vm *vm, const char *current,
					 const char **code);
struct json_object *vmms_checkpoint_create(struct vmms *m, struct vmms_vm *vm, const char *name,
					   const char **code);
int vmms_checkpoint_apply(struct vmms *m, struct vmms_vm *vm, const char *name, bool discard,
			  const char **code);
int vmms_checkpoint_delete(struct vmms *m, struct vmms_vm *vm, const char *name, const char **code);
/* Paths of images the VM's checkpoints hold (for delete_disks), one call per path. */
void vmms_checkpoint_images(struct vmms_vm *vm, void (*fn)(const char *path, void *opaque),
			    void *opaque);

/* api.c */
struct vmms_api;
struct vmms_api *vmms_api_start(struct vmms *m, int listen_fd);
void vmms_api_stop(struct vmms_api *api);

#endif
