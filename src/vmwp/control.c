// SPDX-License-Identifier: GPL-2.0-only
/*
 * The worker's control protocol: one JSON object per line.
 *   {"id": 1, "cmd": "status|stop|shutdown|pause|resume|reset"}
 *   -> {"id": 1, "ok": true, "state": "Running", "pid": 1234}
 *   -> {"id": 1, "ok": false, "error": "one line"}
 * Events: {"event": "state", "state": "...", "reason": "..."}.
 */
#include "vmwp/vmwp.h"

#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void vmwp_control_put(struct json_object *o, char *out, size_t size)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

	/* A reply that does not fit is cut at a JSON boundary rather than sent torn. */
	if (strlen(s) + 2 > size)
		snprintf(out, size, "{\"ok\":false,\"error\":\"reply too long\"}\n");
	else
		snprintf(out, size, "%s\n", s);
	json_object_put(o);
}

static void vmwp_control_error(struct json_object *id, const char *msg, char *out, size_t size)
{
	struct json_object *o = json_object_new_object();

	if (id)
		json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	vmwp_control_put(o, out, size);
}

static const struct {
	const char *name;
	int req; /* -1: status */
} vmwp_cmds[] = {
	{"status", -1},		  {"stop", RUN_REQ_STOP},     {"shutdown", RUN_REQ_SHUTDOWN},
	{"pause", RUN_REQ_PAUSE}, {"resume", RUN_REQ_RESUME}, {"reset", RUN_REQ_RESET},
};

void vmwp_control_handle(struct run_ctl *ctl, const char *line, char *out, size_t size)
{
	struct json_object *req, *id = NULL, *cmd, *o;
	enum run_state state;
	const char *name;
	size_t i;

	req = json_tokener_parse(line);
	if (!req || !json_object_is_type(req, json_type_object)) {
		vmwp_control_error(NULL, "request is not a JSON object", out, size);
		json_object_put(req);
		return;
	}
	if (json_object_object_get_ex(req, "id", &id) && !json_object_is_type(id, json_type_int) &&
	    !json_object_is_type(id, json_type_string))
		id = NULL;
	if (!json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string)) {
		vmwp_control_error(id, "request has no \"cmd\" string", out, size);
		json_object_put(req);
		return;
	}
	name = json_object_get_string(cmd);
	for (i = 0; i < ARRAY_SIZE(vmwp_cmds); i++)
		if (!strcmp(name, vmwp_cmds[i].name))
			break;
	if (i == ARRAY_SIZE(vmwp_cmds)) {
		char msg[160];

		snprintf(msg, sizeof(msg),
			 "unknown cmd '%.64s': expected status, stop, shutdown, pause, resume or "
			 "reset",
			 name);
		vmwp_control_error(id, msg, out, size);
		json_object_put(req);
		return;
	}
	if (vmwp_cmds[i].req >= 0) {
		int r = ctl ? run_ctl_request(ctl, (enum run_request)vmwp_cmds[i].req) : -ENODEV;

		if (r < 0) {
			vmwp_control_error(id, ctl ? err_msg() : "the VM is not running", out,
					   size);
			json_object_put(req);
			return;
		}
	}
	state = ctl ? run_ctl_state(ctl) : RUN_STATE_OFF;
	o = json_object_new_object();
	if (id)
		json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "state", json_object_new_string(run_state_name(state)));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_put(req);
	vmwp_control_put(o, out, size);
}

void vmwp_control_event(enum run_state s, const char *reason, char *out, size_t size)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string("state"));
	json_object_object_add(o, "state", json_object_new_string(run_state_name(s)));
	json_object_object_add(o, "reason", json_object_new_string(reason ? reason : ""));
	vmwp_control_put(o, out, size);
}
