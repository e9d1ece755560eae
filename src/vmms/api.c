// SPDX-License-Identifier: GPL-2.0-only
/*
 * REST API v1 (docs/api.yaml) with libmicrohttpd on a Unix socket. One thread
 * per connection, so long operations (start, shutdown) and the event stream may
 * block their own thread; every handler takes m->lock only briefly.
 */
#include "vmms/core.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define VMMS_BODY_MAX (64 * 1024)
#define VMMS_SHUTDOWN_TIMEOUT_DEFAULT 60
#define VMMS_SHUTDOWN_TIMEOUT_MAX 3600

struct vmms_api {
	struct vmms *m;
	struct MHD_Daemon *d;
};

struct vmms_req {
	char *body;
	size_t len;
	bool too_big;
};

/* What a handler produces: a status and a JSON body (NULL for 204). */
struct vmms_resp {
	unsigned status;
	struct json_object *body;
	const char *allow; /* for 405 */
	char *raw; /* preformatted JSON text (with newline), instead of body */
	size_t raw_len;
};

static void vmms_resp_error(struct vmms_resp *r, const char *code, const char *msg)
{
	struct json_object *e = json_object_new_object(), *o = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	json_object_put(r->body);
	r->status = (unsigned)vmms_code_http(code);
	r->body = o;
}

static void vmms_resp_err(struct vmms_resp *r, const char *code)
{
	vmms_resp_error(r, code, err_msg()[0] ? err_msg() : "unspecified error");
}

static void vmms_resp_ok(struct vmms_resp *r, unsigned status, struct json_object *o)
{
	r->status = status;
	r->body = o;
}

/* ---- query arguments: only the listed ones, with typed values ---- */

struct vmms_query {
	const char *const *allowed;
	char bad[128];
	bool force, delete_disks, discard;
	bool have_timeout;
	long timeout;
};

static bool vmms_parse_bool(const char *v, bool *out)
{
	if (!v || !strcmp(v, "") || !strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return true;
	}
	return false;
}

static enum MHD_Result vmms_query_it(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct vmms_query *q = cls;
	bool known = false, ok = true;

	for (const char *const *a = q->allowed; a && *a; a++)
		known |= !strcmp(*a, key);
	if (!known) {
		snprintf(q->bad, sizeof(q->bad), "unknown query parameter '%.60s'", key);
		return MHD_NO;
	}
	if (!strcmp(key, "force"))
		ok = vmms_parse_bool(value, &q->force);
	else if (!strcmp(key, "delete_disks"))
		ok = vmms_parse_bool(value, &q->delete_disks);
	else if (!strcmp(key, "discard"))
		ok = vmms_parse_bool(value, &q->discard);
	else if (!strcmp(key, "timeout")) {
		char *end;

		errno = 0;
		q->timeout = value ? strtol(value, &end, 10) : -1;
		ok = value && *value && !*end && !errno && q->timeout >= 0 &&
		     q->timeout <= VMMS_SHUTDOWN_TIMEOUT_MAX;
		q->have_timeout = true;
		if (!ok) {
			snprintf(q->bad, sizeof(q->bad),
				 "'timeout' must be whole seconds between 0 and %d",
				 VMMS_SHUTDOWN_TIMEOUT_MAX);
			return MHD_NO;
		}
	}
	if (!ok) {
		snprintf(q->bad, sizeof(q->bad), "'%.40s' must be true or false", key);
		return MHD_NO;
	}
	return MHD_YES;
}

static bool vmms_query_parse(struct MHD_Connection *c, struct vmms_query *q,
			     const char *const *allowed, struct vmms_resp *r)
{
	q->allowed = allowed;
	q->bad[0] = 0;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, vmms_query_it, q);
	if (q->bad[0]) {
		vmms_resp_error(r, "invalid_query", q->bad);
		return false;
	}
	return true;
}

/* ---- helpers ---- */

static bool vmms_idle(enum vmms_state s)
{
	return s == VMMS_OFF || s == VMMS_CRITICAL;
}

static struct json_object *vmms_body_parse(struct vmms_req *req, struct MHD_Connection *c,
					   struct vmms_resp *r)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	struct json_object *o;

	if (ct && strncasecmp(ct, "application/json", 16)) {
		char msg[160];

		snprintf(msg, sizeof(msg), "send the body as application/json, not '%.60s'", ct);
		vmms_resp_error(r, "unsupported_media_type", msg);
		return NULL;
	}
	o = vmms_json_parse(req->body ? req->body : "", req->len);
	if (!o) {
		vmms_resp_err(r, "malformed_json");
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		vmms_resp_error(r, "invalid_type", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* Finds and pins a VM; NULL with a 404 response. Under m->lock. */
static struct vmms_vm *vmms_lookup(struct vmms *m, const char *name, struct vmms_resp *r)
{
	struct vmms_vm *vm = vmms_name_valid(name) ? vmms_vm_find(m, name) : NULL;

	if (!vm) {
		err_set("no VM named '%.80s'", name);
		vmms_resp_err(r, "not_found");
		return NULL;
	}
	vmms_vm_get(vm);
	return vm;
}

static void vmms_invalid_state(struct vmms_vm *vm, const char *what, struct vmms_resp *r)
{
	if (vm->busy)
		err_set("VM %s is busy with another operation (%s); retry when it is done",
			vm->cfg.name, vmms_state_name(vm->state));
	else
		err_set("cannot %s VM %s while it is %s", what, vm->cfg.name,
			vmms_state_name(vm->state));
	vmms_resp_err(r, vm->busy ? "busy" : "invalid_state");
}

static bool vmms_disks_free(struct vmms *m, const struct vmms_config *cfg,
			    const struct vmms_vm *self, struct vmms_resp *r)
{
	const char *path;
	struct vmms_vm *o = vmms_disk_user(m, cfg, self, &path);

	if (!o)
		return true;
	err_set("disk %.200s is attached to VM %s, which is %s", path, o->cfg.name,
		vmms_state_name(o->state));
	vmms_resp_err(r, "disk_in_use");
	return false;
}

/* ---- handlers ---- */

static void vmms_h_host(struct vmms *m, struct vmms_resp *r)
{
	struct json_object *o = json_object_new_object(), *k = json_object_new_object();
	struct json_object *l = json_object_new_object(), *v = json_object_new_object();
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	size_t running = 0;

	json_object_object_add(o, "version", json_object_new_string(VIRIDIAN_VERSION));
	json_object_object_add(k, "available", json_object_new_boolean(fd >= 0));
	if (fd < 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "cannot open /dev/kvm: %s", strerror(errno));
		json_object_object_add(k, "error", json_object_new_string(msg));
	} else {
		close(fd);
	}
	json_object_object_add(o, "kvm", k);
	json_object_object_add(l, "max_vms", json_object_new_int(VMMS_MAX_VMS));
	json_object_object_add(l, "name_max", json_object_new_int(VMMS_NAME_MAX));
	json_object_object_add(l, "memory_mb_min", json_object_new_int(VMMS_MEM_MIN_MB));
	json_object_object_add(l, "memory_mb_max", json_object_new_int(VMMS_MEM_MAX_MB));
	json_object_object_add(l, "cpus_max", json_object_new_int(VMMS_CPUS_MAX));
	json_object_object_add(l, "disks_max", json_object_new_int(VMMS_MAX_DISKS));
	json_object_object_add(l, "devices_max", json_object_new_int(VMMS_MAX_DEVICES));
	json_object_object_add(l, "body_max", json_object_new_int(VMMS_BODY_MAX));
	json_object_object_add(o, "limits", l);
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nvms; i++)
		running += !vmms_idle(m->vms[i]->state);
	json_object_object_add(v, "total", json_object_new_int64((int64_t)m->nvms));
	json_object_object_add(v, "running", json_object_new_int64((int64_t)running));
	pthread_mutex_unlock(&m->lock);
	json_object_object_add(o, "vms", v);
	vmms_resp_ok(r, 200, o);
}

/* Joins the cached VM texts: no JSON tree is built per request. */
static void vmms_h_list(struct vmms *m, struct vmms_resp *r)
{
	static const char head[] = "{\"vms\":[", tail[] = "]}\n";
	size_t total = sizeof(head) + sizeof(tail), len, off;
	char *buf;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nvms; i++) {
		if (!vmms_vm_json_text(m, m->vms[i], &len))
			goto oom;
		total += len + 1;
	}
	buf = malloc(total);
	if (!buf)
		goto oom;
	memcpy(buf, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	for (size_t i = 0; i < m->nvms; i++) {
		const char *t = vmms_vm_json_text(m, m->vms[i], &len);

		if (i)
			buf[off++] = ',';
		memcpy(buf + off, t, len);
		off += len;
	}
	pthread_mutex_unlock(&m->lock);
	memcpy(buf + off, tail, sizeof(tail) - 1);
	off += sizeof(tail) - 1;
	r->status = 200;
	r->raw = buf;
	r->raw_len = off;
	return;
oom:
	pthread_mutex_unlock(&m->lock);
	err_set("out of memory");
	vmms_resp_err(r, "internal");
}

static void vmms_h_create(struct vmms *m, struct vmms_req *req, struct MHD_Connection *c,
			  struct vmms_resp *r)
{
	struct json_object *o = vmms_body_parse(req, c, r);
	struct vmms_config cfg;
	struct vmms_vm *vm;
	const char *code;

	if (!o)
		return;
	vmms_config_init(&cfg);
	if (vmms_config_apply(&cfg, o, VMMS_CONFIG_CREATE, &code)) {
		vmms_resp_err(r, code);
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	if (vmms_disks_free(m, &cfg, NULL, r)) {
		if (vmms_vm_create(m, &cfg, &vm, &code))
			vmms_resp_err(r, code);
		else
			vmms_resp_ok(r, 201, vmms_vm_to_json(m, vm));
	}
	pthread_mutex_unlock(&m->lock);
out:
	vmms_config_free(&cfg);
	json_object_put(o);
}

static void vmms_h_get(struct vmms *m, const char *name, struct vmms_resp *r)
{
	struct vmms_vm *vm;

	pthread_mutex_lock(&m->lock);
	vm = vmms_lookup(m, name, r);
	if (vm) {
		vmms_resp_ok(r, 200, vmms_vm_to_json(m, vm));
		vmms_vm_put(m, vm);
	}
	pthread_mutex_unlock(&m->lock);
}

static void vmms_h_patch(struct vmms *m, const char *name, struct vmms_req *req,
			 struct MHD_Connection *c, struct vmms_resp *r)
{
	struct json_object *o = vmms_body_parse(req, c, r);
	struct vmms_config ncfg, old;
	struct vmms_vm *vm;
	const char *code;

	if (!o)
		return;
	pthread_mutex_lock(&m->lock);
	vm = vmms_lookup(m, name, r);
	if (!vm)
		goto out;
	if (!vmms_idle(vm->state) || vm->busy) {
		vmms_invalid_state(vm, "change", r);
		goto put;
	}
	if (vmms_config_copy(&ncfg, &vm->cfg)) {
		vmms_resp_err(r, "internal");
		goto put;
	}
	if (vmms_config_apply(&ncfg, o, VMMS_CONFIG_PATCH, &code)) {
		vmms_resp_err(r, code);
		vmms_config_free(&ncfg);
		goto put;
	}
	if (!vmms_disks_free(m, &ncfg, vm, r)) {
		vmms_config_free(&ncfg);
		goto put;
	}
	/* Disks listed again keep vmms's ownership mark (checkpoint children). */
	for (unsigned i = 0; i < ncfg.ndisks; i++)
		for (unsigned j = 0; j < vm->cfg.ndisks; j++)
			if (!strcmp(ncfg.disks[i].path, vm->cfg.disks[j].path))
				ncfg.disks[i].owned = vm->cfg.disks[j].owned;
	old = vm->cfg;
	vm->cfg = ncfg;
	if (vmms_vm_save(m, vm, &code)) {
		vm->cfg = old;
		vmms_config_free(&ncfg);
		vmms_resp_err(r, code);
		goto put;
	}
	vmms_config_free(&old);
	vmms_resp_ok(r, 200, vmms_vm_to_json(m, vm));
put:
	vmms_vm_put(m, vm);
out:
	pthread_mutex_unlock(&m->lock);
	json_object_put(o);
}

static void vmms_h_delete(struct vmms *m, const char *name, struct MHD_Connection *c,
			  struct vmms_resp *r)
{
	static const char *const allowed[] = {"force", "delete_disks", NULL};
	struct vmms_query q = {0};
	struct vmms_vm *vm;
	const char *code;

	if (!vmms_query_parse(c, &q, allowed, r))
		return;
	pthread_mutex_lock(&m->lock);
	vm = vmms_lookup(m, name, r);
	if (!vm)
		goto out;
	if (vm->busy) {
		vmms_invalid_state(vm, "remove", r);
		goto put;
	}
	if (!vmms_idle(vm->state) && !q.force) {
		err_set("VM %s is %s; stop it first or add ?force=true", name,
			vmms_state_name(vm->state));
		vmms_resp_err(r, "invalid_state");
		goto put;
	}
	if (!vmms_idle(vm->state)) {
		vm->busy = true;
		pthread_mutex_unlock(&m->lock);
		int rs = vmms_worker_stop(m, vm, &code);

		pthread_mutex_lock(&m->lock);
		vm->busy = false;
		if (rs) {
			vmms_resp_err(r, code);
			goto put;
		}
	}
	if (vm->gone) {
		err_set("no VM named '%.80s'", name);
		vmms_resp_err(r, "not_found");
	} else if (vmms_vm_remove(m, vm, q.delete_disks, &code)) {
		vmms_resp_err(r, code);
	} else {
		vmms_resp_ok(r, 204, NULL);
	}
put:
	vmms_vm_put(m, vm);
out:
	pthread_mutex_unlock(&m->lock);
}

static void vmms_h_action(struct vmms *m, const char *name, const char *action,
			  struct MHD_Connection *c, struct vmms_resp *r)
{
	static const char *const none[] = {NULL};
	static const char *const shutdown_q[] = {"timeout", NULL};
	bool is_shutdown = !strcmp(action, "shutdown");
	struct vmms_query q = {0};
	struct vmms_vm *vm;
	const char *code = NULL;
	bool took_busy = false;
	int rs = 0;

	if (!vmms_query_parse(c, &q, is_shutdown ? shutdown_q : none, r))
		return;
	pthread_mutex_lock(&m->lock);
	vm = vmms_lookup(m, name, r);
	if (!vm)
		goto out;
	if (!strcmp(action, "start")) {
		if (!vmms_idle(vm->state) || vm->busy) {
			vmms_invalid_state(vm, "start", r);
			goto put;
		}
		if (!vmms_disks_free(m, &vm->cfg, vm, r))
			goto put;
		vm->busy = took_busy = true;
		vm->stop_requested = false;
		vm->off_reported = false;
		if (!vm->cfg.checkpoint_dirty) {
			/* Applying a checkpoint later must know this state exists. */
			vm->cfg.checkpoint_dirty = true;
			if (vmms_vm_save(m, vm, &code)) {
				vm->cfg.checkpoint_dirty = false;
				vmms_resp_err(r, code);
				goto put;
			}
		}
		vmms_vm_set_state(m, vm, VMMS_STARTING, "");
		pthread_mutex_unlock(&m->lock);
		rs = vmms_worker_start(m, vm, &code);
	} else if (!strcmp(action, "stop")) {
		if (vmms_idle(vm->state) || (vm->busy && vm->state != VMMS_STOPPING)) {
			vmms_invalid_state(vm, "stop", r);
			goto put;
		}
		took_busy = !vm->busy;
		vm->busy = true;
		pthread_mutex_unlock(&m->lock);
		rs = vmms_worker_stop(m, vm, &code);
	} else if (is_shutdown) {
		if (vm->state != VMMS_RUNNING || vm->busy) {
			vmms_invalid_state(vm, "shut down", r);
			goto put;
		}
		vm->busy = took_busy = true;
		pthread_mutex_unlock(&m->lock);
		rs = vmms_worker_shutdown(
			m, vm, q.have_timeout ? (unsigned)q.timeout : VMMS_SHUTDOWN_TIMEOUT_DEFAULT,
			&code);
	} else {
		bool ok = !strcmp(action, "pause") ? vm->state == VMMS_RUNNING
			  : !strcmp(action, "resume")
				  ? vm->state == VMMS_PAUSED
				  : vm->state == VMMS_RUNNING || vm->state == VMMS_PAUSED;

		if (!ok || vm->busy) {
			vmms_invalid_state(vm, action, r);
			goto put;
		}
		pthread_mutex_unlock(&m->lock);
		rs = vmms_worker_command(m, vm, action, &code);
	}
	pthread_mutex_lock(&m->lock);
	if (took_busy)
		vm->busy = false;
	if (rs)
		vmms_resp_err(r, code ? code : "internal");
	else
		vmms_resp_ok(r, 200, vmms_vm_to_json(m, vm));
put:
	vmms_vm_put(m, vm);
out:
	pthread_mutex_unlock(&m->lock);
}

/* Checkpoint operations: VM must be Off (or Critical); the VM is busy meanwhile. */
static void vmms_h_checkpoint(struct vmms *m, const char *name, const char *method, const char *cp,
			      bool apply, struct vmms_req *req, struct MHD_Connection *c,
			      struct vmms_resp *r)
{
	static const char *const none[] = {NULL};
	static const char *const apply_q[] = {"discard", NULL};
	struct json_object *body = NULL, *res = NULL;
	bool list = !strcmp(method, "GET"), create = !cp && !list;
	char cpname[VMMS_NAME_MAX + 1] = "";
	struct vmms_query q = {0};
	struct vmms_vm *vm;
	const char *code = "internal";
	int rs = 0;

	if (!vmms_query_parse(c, &q, apply ? apply_q : none, r))
		return;
	if (create) {
		struct json_object *v;

		body = vmms_body_parse(req, c, r);
		if (!body)
			return;
		json_object_object_foreach(body, key, val)
		{
			(void)val;
			if (strcmp(key, "name")) {
				char msg[128];

				snprintf(msg, sizeof(msg), "unknown field '%.60s' (known: name)",
					 key);
				vmms_resp_error(r, "unknown_field", msg);
				json_object_put(body);
				return;
			}
		}
		if (!json_object_object_get_ex(body, "name", &v) ||
		    !json_object_is_type(v, json_type_string)) {
			vmms_resp_error(r, "missing_field", "'name' (a string) is required");
			json_object_put(body);
			return;
		}
		snprintf(cpname, sizeof(cpname), "%.64s", json_object_get_string(v));
		if (strlen(json_object_get_string(v)) > VMMS_NAME_MAX) {
			vmms_resp_error(r, "invalid_name",
					"checkpoint names are at most 64 characters");
			json_object_put(body);
			return;
		}
		json_object_put(body);
	}
	pthread_mutex_lock(&m->lock);
	vm = vmms_lookup(m, name, r);
	if (!vm)
		goto out;
	if (list) {
		/* PATCH may replace vm->cfg meanwhile: use a copy of the name. */
		char cur[VMMS_NAME_MAX + 1];

		snprintf(cur, sizeof(cur), "%s", vm->cfg.checkpoint ? vm->cfg.checkpoint : "");
		pthread_mutex_unlock(&m->lock);
		res = vmms_checkpoint_list(vm, cur[0] ? cur : NULL, &code);
		pthread_mutex_lock(&m->lock);
		vmms_resp_ok(r, 200, res);
		goto put;
	}
	if (!vmms_idle(vm->state) || vm->busy) {
		vmms_invalid_state(vm, "change the checkpoints of", r);
		goto put;
	}
	vm->busy = true;
	pthread_mutex_unlock(&m->lock);
	if (create) {
		res = vmms_checkpoint_create(m, vm, cpname, &code);
		rs = res ? 0 : -1;
	} else if (apply) {
		rs = vmms_checkpoint_apply(m, vm, cp, q.discard, &code);
	} else {
		rs = vmms_checkpoint_delete(m, vm, cp, &code);
	}
	pthread_mutex_lock(&m->lock);
	vm->busy = false;
	if (rs)
		vmms_resp_err(r, code);
	else if (create)
		vmms_resp_ok(r, 201, res);
	else if (apply)
		vmms_resp_ok(r, 200, vmms_vm_to_json(m, vm));
	else
		vmms_resp_ok(r, 204, NULL);
put:
	vmms_vm_put(m, vm);
out:
	pthread_mutex_unlock(&m->lock);
}

/* ---- event stream ---- */

struct vmms_stream {
	struct vmms *m;
	uint64_t seq;
	char pending[1024];
	size_t off, len;
};

static ssize_t vmms_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct vmms_stream *s = cls;
	size_t n;

	if (s->off == s->len) {
		int r;

		pthread_mutex_lock(&s->m->lock);
		/* A blank line every 10 s keeps idle streams alive and detects gone clients. */
		r = vmms_event_next(s->m, &s->seq, s->pending, sizeof(s->pending), 10000);
		pthread_mutex_unlock(&s->m->lock);
		if (r < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (r == 0)
			snprintf(s->pending, sizeof(s->pending), "\n");
		s->off = 0;
		s->len = strlen(s->pending);
	}
	n = MIN(max, s->len - s->off);
	memcpy(buf, s->pending + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static enum MHD_Result vmms_send_events(struct vmms *m, struct MHD_Connection *c)
{
	struct vmms_stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!s)
		return MHD_NO;
	s->m = m;
	pthread_mutex_lock(&m->lock);
	s->seq = m->event_seq; /* new events only */
	pthread_mutex_unlock(&m->lock);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, vmms_stream_read, s, free);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- routing ---- */

static void vmms_method_not_allowed(struct vmms_resp *r, const char *method, const char *allow)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "method %.16s is not allowed here (allowed: %s)", method, allow);
	vmms_resp_error(r, "method_not_allowed", msg);
	r->allow = allow;
}

static bool vmms_is_action(const char *s)
{
	static const char *const actions[] = {"start", "stop",	 "shutdown",
					      "pause", "resume", "reset"};

	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		if (!strcmp(s, actions[i]))
			return true;
	return false;
}

/* Returns true when the request was a stream that has been queued already. */
static bool vmms_route(struct vmms *m, struct MHD_Connection *c, const char *url,
		       const char *method, struct vmms_req *req, struct vmms_resp *r,
		       enum MHD_Result *stream_ret)
{
	char path[512], *seg[8], *save = NULL;
	unsigned n = 0;
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	bool del = !strcmp(method, "DELETE"), patch = !strcmp(method, "PATCH");

	if (strlen(url) >= sizeof(path)) {
		vmms_resp_error(r, "not_found", "no such resource (URL too long)");
		return false;
	}
	snprintf(path, sizeof(path), "%s", url);
	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == ARRAY_SIZE(seg)) {
			n++;
			break;
		}
		seg[n++] = t;
	}
	err_clear();
	if (n < 2 || n > 6 || strcmp(seg[0], "v1"))
		goto notfound;
	if (n == 2 && !strcmp(seg[1], "host")) {
		if (!get)
			return vmms_method_not_allowed(r, method, "GET"), false;
		vmms_h_host(m, r);
		return false;
	}
	if (n == 2 && !strcmp(seg[1], "events")) {
		if (!get)
			return vmms_method_not_allowed(r, method, "GET"), false;
		*stream_ret = vmms_send_events(m, c);
		return true;
	}
	if (strcmp(seg[1], "vms"))
		goto notfound;
	if (n == 2) {
		if (get)
			vmms_h_list(m, r);
		else if (post)
			vmms_h_create(m, req, c, r);
		else
			vmms_method_not_allowed(r, method, "GET, POST");
		return false;
	}
	if (n == 3) {
		if (get)
			vmms_h_get(m, seg[2], r);
		else if (patch)
			vmms_h_patch(m, seg[2], req, c, r);
		else if (del)
			vmms_h_delete(m, seg[2], c, r);
		else
			vmms_method_not_allowed(r, method, "GET, PATCH, DELETE");
		return false;
	}
	if (n == 4 && vmms_is_action(seg[3])) {
		if (!post)
			return vmms_method_not_allowed(r, method, "POST"), false;
		vmms_h_action(m, seg[2], seg[3], c, r);
		return false;
	}
	if (strcmp(seg[3], "checkpoints"))
		goto notfound;
	if (n == 4) {
		if (!get && !post)
			return vmms_method_not_allowed(r, method, "GET, POST"), false;
		vmms_h_checkpoint(m, seg[2], method, NULL, false, req, c, r);
		return false;
	}
	if (n == 5) {
		if (!del)
			return vmms_method_not_allowed(r, method, "DELETE"), false;
		vmms_h_checkpoint(m, seg[2], method, seg[4], false, req, c, r);
		return false;
	}
	if (n == 6 && !strcmp(seg[5], "apply")) {
		if (!post)
			return vmms_method_not_allowed(r, method, "POST"), false;
		vmms_h_checkpoint(m, seg[2], method, seg[4], true, req, c, r);
		return false;
	}
notfound:
	vmms_resp_error(r, "not_found", "no such resource; the API is described in docs/api.yaml");
	return false;
}

static enum MHD_Result vmms_api_handler(void *cls, struct MHD_Connection *c, const char *url,
					const char *method, const char *version,
					const char *upload_data, size_t *upload_data_size,
					void **con_cls)
{
	struct vmms_api *api = cls;
	struct vmms_req *req = *con_cls;
	struct vmms_resp r = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;
	const char *s = "";

	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!req->too_big && req->len + *upload_data_size <= VMMS_BODY_MAX) {
			char *nb = realloc(req->body, req->len + *upload_data_size + 1);

			if (!nb)
				return MHD_NO;
			req->body = nb;
			memcpy(req->body + req->len, upload_data, *upload_data_size);
			req->len += *upload_data_size;
			req->body[req->len] = 0;
		} else {
			req->too_big = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_big) {
		char msg[96];

		snprintf(msg, sizeof(msg), "the request body is larger than %d bytes",
			 VMMS_BODY_MAX);
		vmms_resp_error(&r, "body_too_large", msg);
	} else if (vmms_route(api->m, c, url, method, req, &r, &ret)) {
		return ret;
	}
	if (r.body)
		s = json_object_to_json_string_ext(r.body, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	char *text = NULL;
	size_t tlen = 0;

	if (r.raw) {
		text = r.raw;
		tlen = r.raw_len;
	} else if (r.body && asprintf(&text, "%s\n", s) >= 0) {
		tlen = strlen(text);
	} else {
		text = NULL;
	}
	resp = MHD_create_response_from_buffer(tlen, text ? text : (char *)"",
					       text ? MHD_RESPMEM_MUST_FREE
						    : MHD_RESPMEM_PERSISTENT);
	if (resp) {
		if (r.body || r.raw)
			MHD_add_response_header(resp, "Content-Type", "application/json");
		if (r.allow)
			MHD_add_response_header(resp, "Allow", r.allow);
		ret = MHD_queue_response(c, r.status ? r.status : 500, resp);
		MHD_destroy_response(resp);
	} else {
		free(text);
	}
	if (r.status >= 500)
		log_error("vmms", "%s %s -> %u: %s", method, url, r.status, s);
	else
		log_debug("vmms", "%s %s -> %u", method, url, r.status);
	json_object_put(r.body);
	return ret;
}

static void vmms_api_done(void *cls, struct MHD_Connection *c, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct vmms_req *req = *con_cls;

	if (req) {
		free(req->body);
		free(req);
		*con_cls = NULL;
	}
}

static void vmms_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	log_debug("vmms", "http: %s", buf);
}

struct vmms_api *vmms_api_start(struct vmms *m, int listen_fd)
{
	struct vmms_api *api = calloc(1, sizeof(*api));

	if (!api) {
		err_set("out of memory");
		return NULL;
	}
	api->m = m;
	api->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					  MHD_USE_ERROR_LOG | MHD_USE_ITC,
				  0, NULL, NULL, vmms_api_handler, api, MHD_OPTION_EXTERNAL_LOGGER,
				  vmms_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
				  MHD_OPTION_NOTIFY_COMPLETED, vmms_api_done, NULL,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
	if (!api->d) {
		err_set("cannot start the HTTP server on the API socket");
		free(api);
		return NULL;
	}
	return api;
}

void vmms_api_stop(struct vmms_api *api)
{
	if (!api)
		return;
	MHD_stop_daemon(api->d);
	free(api);
}
