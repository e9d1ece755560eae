// SPDX-License-Identifier: GPL-2.0-only
/*
 * viridian vm: the command line of the management service (Hyper-V's PowerShell cmdlets).
 * Every command is one or two REST calls to vmms over its Unix socket (docs/api.yaml); the
 * daemon validates, this side only shapes arguments and prints. Tables for people, --json for
 * scripts; exit 0 ok, 1 the service refused or failed, 2 bad command line.
 */
#include "cli/commands.h"
#include "lib/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define VM_DEFAULT_SOCKET "/run/viridian/vmms.sock"
#define VM_REPLY_MAX (16u << 20)
#define VM_MAX_DISKS 64
#define VM_MAX_DEVICES 64
#define VM_DETACH_KEY 0x1d /* Ctrl-] */

struct vm_cli {
	const char *socket;
	bool json;
};

struct vm_buf {
	char *data;
	size_t len;
	bool too_big;
};

static int __attribute__((format(printf, 2, 3))) vm_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("viridian vm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void vm_usage(FILE *f)
{
	fprintf(f,
		"usage: viridian vm [--socket PATH] COMMAND [ARGS]\n"
		"  list [--json]                       VMs as a table (Name State CPUs Memory)\n"
		"  show NAME [--json]                  one VM's configuration and state\n"
		"  create NAME --memory SIZE --cpus N --kernel PATH [--initrd PATH]\n"
		"         [--cmdline S] [--disk PATH[,ro][,format=raw|vhd|vhdx]]... [--device D]...\n"
		"         [--user USER]                (alias: new)\n"
		"  modify NAME [same options as create] change an Off VM (alias: set)\n"
		"  start|stop|pause|resume|reset NAME\n"
		"  shutdown NAME [--timeout SECONDS]   ACPI power button, hard stop after SECONDS\n"
		"  remove NAME [--force] [--delete-disks]  (alias: rm)\n"
		"  checkpoint create NAME CP | list NAME | apply NAME CP [--discard] | remove NAME CP\n"
		"  checkpoints NAME, restore NAME CP   (aliases of checkpoint list / apply)\n"
		"  console NAME                        attach to COM1; Ctrl-] detaches\n"
		"  events [--json]                     state changes of every VM as they happen\n"
		"The service is found at --socket PATH, else $VIRIDIAN_SOCKET, else %s.\n"
		"SIZE: a number of MiB or a size such as 512M or 2G.\n"
		"exit codes: 0 ok, 1 refused or failed (one line on stderr), 2 bad command line\n",
		VM_DEFAULT_SOCKET);
}

static size_t vm_write_cb(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct vm_buf *b = opaque;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > VM_REPLY_MAX) {
		b->too_big = true;
		return 0;
	}
	p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, n);
	b->data = p;
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

/* Percent-encodes a path segment (names are restricted by the service, but never trusted). */
static void vm_escape(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, size - o, "%%%02X", ch);
	}
	out[o] = 0;
}

/*
 * One request. Returns the HTTP status with *reply set (parsed JSON or NULL for an empty
 * body), or -1 after printing why the service could not be reached.
 */
static long vm_http(const struct vm_cli *cli, const char *method, const char *path,
		    struct json_object *body, struct json_object **reply)
{
	struct vm_buf b = {0};
	struct curl_slist *hdr = NULL;
	char url[1024], errbuf[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode rc;
	long status = -1;

	*reply = NULL;
	c = curl_easy_init();
	if (!c) {
		vm_fail(1, "cannot initialise libcurl");
		return -1;
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, cli->socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, vm_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A shutdown waits up to its --timeout (at most 3600 s) before the hard stop. */
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 3700L);
	if (body) {
		const char *s = json_object_to_json_string_ext(
			body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(s));
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, s);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (b.len) {
			*reply = json_tokener_parse(b.data);
			if (!*reply) {
				vm_fail(1, "vmms at %s sent a reply that is not JSON (HTTP %ld)",
					cli->socket, status);
				status = -1;
			}
		}
	} else if (b.too_big) {
		vm_fail(1, "vmms at %s sent more than %u MiB", cli->socket, VM_REPLY_MAX >> 20);
	} else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		   rc == CURLE_OPERATION_TIMEDOUT) {
		int e = access(cli->socket, F_OK) < 0 ? errno : 0;

		vm_fail(1, "cannot reach vmms at %s: %s; start it with `viridian vmms`",
			cli->socket,
			e ? strerror(e) : (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
	} else {
		vm_fail(1, "request to vmms at %s failed: %s", cli->socket,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(b.data);
	return status;
}

static const char *vm_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

/* Calls the API; on an HTTP error prints error.message and returns 1. */
static int vm_call(const struct vm_cli *cli, const char *method, const char *path,
		   struct json_object *body, struct json_object **reply)
{
	struct json_object *r = NULL, *err;
	long st = vm_http(cli, method, path, body, &r);

	if (reply)
		*reply = NULL;
	if (st < 0) {
		json_object_put(r);
		return VIRIDIAN_EXIT_ERROR;
	}
	if (st >= 400 || st < 200) {
		const char *msg = NULL;

		if (r && json_object_object_get_ex(r, "error", &err))
			msg = vm_str(err, "message");
		vm_fail(1, "%s", msg ? msg : "the service answered with an unexpected status");
		if (!msg)
			fprintf(stderr, "  (HTTP %ld for %s %s)\n", st, method, path);
		json_object_put(r);
		return VIRIDIAN_EXIT_ERROR;
	}
	if (reply)
		*reply = r;
	else
		json_object_put(r);
	return VIRIDIAN_EXIT_OK;
}

static void vm_print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int vm_cmd_list(const struct vm_cli *cli)
{
	struct json_object *r, *vms;
	int w_name = 4, w_state = 5, rc;
	size_t n;

	rc = vm_call(cli, "GET", "/v1/vms", NULL, &r);
	if (rc)
		return rc;
	if (cli->json) {
		vm_print_json(r);
		json_object_put(r);
		return 0;
	}
	if (!json_object_object_get_ex(r, "vms", &vms) ||
	    !json_object_is_type(vms, json_type_array)) {
		json_object_put(r);
		return vm_fail(1, "vmms sent a VM list without \"vms\"");
	}
	n = json_object_array_length(vms);
	for (size_t i = 0; i < n; i++) {
		struct json_object *vm = json_object_array_get_idx(vms, i);
		const char *name = vm_str(vm, "name"), *state = vm_str(vm, "state");

		w_name = MAX(w_name, name ? (int)MIN(strlen(name), 64u) : 1);
		w_state = MAX(w_state, state ? (int)MIN(strlen(state), 16u) : 1);
	}
	printf("%-*s  %-*s  %4s  %10s\n", w_name, "Name", w_state, "State", "CPUs", "Memory(MB)");
	for (size_t i = 0; i < n; i++) {
		struct json_object *vm = json_object_array_get_idx(vms, i);
		const char *name = vm_str(vm, "name"), *state = vm_str(vm, "state");
		const char *cpus = vm_str(vm, "cpus"), *mem = vm_str(vm, "memory_mb");

		printf("%-*.64s  %-*.16s  %4s  %10s\n", w_name, name ? name : "?", w_state,
		       state ? state : "?", cpus ? cpus : "?", mem ? mem : "?");
	}
	json_object_put(r);
	return 0;
}

static void vm_show_field(struct json_object *vm, const char *label, const char *key)
{
	const char *v = vm_str(vm, key);

	if (v && *v)
		printf("%-14s %s\n", label, v);
}

static int vm_cmd_show(const struct vm_cli *cli, const char *name)
{
	struct json_object *vm, *a;
	char path[2048], esc[800];
	int rc;

	vm_escape(esc, sizeof(esc), name);
	snprintf(path, sizeof(path), "/v1/vms/%s", esc);
	rc = vm_call(cli, "GET", path, NULL, &vm);
	if (rc)
		return rc;
	if (cli->json) {
		vm_print_json(vm);
		json_object_put(vm);
		return 0;
	}
	vm_show_field(vm, "Name", "name");
	vm_show_field(vm, "State", "state");
	vm_show_field(vm, "Reason", "reason");
	vm_show_field(vm, "UUID", "uuid");
	vm_show_field(vm, "Generation", "generation");
	vm_show_field(vm, "CPUs", "cpus");
	vm_show_field(vm, "Memory(MB)", "memory_mb");
	vm_show_field(vm, "Kernel", "kernel");
	vm_show_field(vm, "Initrd", "initrd");
	vm_show_field(vm, "Cmdline", "cmdline");
	vm_show_field(vm, "User", "user");
	vm_show_field(vm, "PID", "pid");
	vm_show_field(vm, "Console", "console_socket");
	if (json_object_object_get_ex(vm, "disks", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *d = json_object_array_get_idx(a, i), *ro;
			const char *fmt = vm_str(d, "format");
			bool readonly = json_object_object_get_ex(d, "readonly", &ro) &&
					json_object_get_boolean(ro);

			printf("%-14s %s (%s%s)\n", i ? "" : "Disks", vm_str(d, "path") ?: "?",
			       fmt ? fmt : "raw", readonly ? ", read-only" : "");
		}
	if (json_object_object_get_ex(vm, "devices", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++)
			printf("%-14s %s\n", i ? "" : "Devices",
			       json_object_get_string(json_object_array_get_idx(a, i)));
	json_object_put(vm);
	return 0;
}

/* "PATH[,ro][,format=F]" -> {"path":..,"readonly":..,"format":..}. */
static struct json_object *vm_parse_disk(const char *spec)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	struct json_object *d;
	bool ro = false;
	const char *fmt = NULL;

	if (!copy)
		return NULL;
	tok = strtok_r(copy, ",", &save);
	if (!tok || tok[0] != '/') {
		vm_fail(2, "--disk '%s': expected an absolute PATH[,ro][,format=raw|vhd|vhdx]",
			spec);
		free(copy);
		return NULL;
	}
	d = json_object_new_object();
	json_object_object_add(d, "path", json_object_new_string(tok));
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strcmp(tok, "ro") || !strcmp(tok, "readonly")) {
			ro = true;
		} else if (!strcmp(tok, "rw")) {
			ro = false;
		} else if (!strncmp(tok, "format=", 7) &&
			   (!strcmp(tok + 7, "raw") || !strcmp(tok + 7, "vhd") ||
			    !strcmp(tok + 7, "vhdx"))) {
			fmt = tok + 7;
		} else {
			vm_fail(2, "--disk '%s': unknown option '%s' (ro, format=raw|vhd|vhdx)",
				spec, tok);
			json_object_put(d);
			free(copy);
			return NULL;
		}
	}
	json_object_object_add(d, "readonly", json_object_new_boolean(ro));
	if (!fmt) {
		/* The service wants a format; the extension is the usual hint. */
		size_t n = strlen(spec);

		fmt = n > 5 && !strcmp(spec + n - 5, ".vhdx")  ? "vhdx"
		      : n > 4 && !strcmp(spec + n - 4, ".vhd") ? "vhd"
							       : "raw";
	}
	json_object_object_add(d, "format", json_object_new_string(fmt));
	free(copy);
	return d;
}

/* Options shared by create and modify; builds the request body. */
static int vm_parse_config(int argc, char **argv, bool create, struct json_object *body, bool *json)
{
	enum {
		O_MEMORY = 256,
		O_CPUS,
		O_KERNEL,
		O_INITRD,
		O_CMDLINE,
		O_DISK,
		O_DEVICE,
		O_USER,
		O_JSON
	};
	static const struct option opts[] = {
		{"memory", required_argument, NULL, O_MEMORY},
		{"cpus", required_argument, NULL, O_CPUS},
		{"kernel", required_argument, NULL, O_KERNEL},
		{"initrd", required_argument, NULL, O_INITRD},
		{"cmdline", required_argument, NULL, O_CMDLINE},
		{"disk", required_argument, NULL, O_DISK},
		{"device", required_argument, NULL, O_DEVICE},
		{"user", required_argument, NULL, O_USER},
		{"json", no_argument, NULL, O_JSON},
		{NULL, 0, NULL, 0},
	};
	struct json_object *disks = NULL, *devices = NULL;
	bool have_mem = false, have_cpus = false, have_kernel = false;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		uint64_t n;
		char abs[4096];

		switch (c) {
		case O_MEMORY: {
			const char *s = optarg;
			size_t l = strlen(s);

			/* A bare number is MiB (as memory_mb); a suffix makes it a size. */
			if (util_parse_u64(s, &n) == 0) {
				/* nothing to convert */
			} else if (l && util_parse_size(s, &n) == 0 && n % (1u << 20) == 0) {
				n >>= 20;
			} else {
				json_object_put(disks);
				json_object_put(devices);
				return vm_fail(
					2, "--memory '%s': expected MiB or a size such as 512M", s);
			}
			json_object_object_add(body, "memory_mb",
					       json_object_new_int64((int64_t)n));
			have_mem = true;
			break;
		}
		case O_CPUS:
			if (util_parse_u64(optarg, &n) < 0 || n > 1u << 20) {
				json_object_put(disks);
				json_object_put(devices);
				return vm_fail(2, "--cpus '%s': expected a number", optarg);
			}
			json_object_object_add(body, "cpus", json_object_new_int64((int64_t)n));
			have_cpus = true;
			break;
		case O_KERNEL:
		case O_INITRD:
			/* The service runs elsewhere: relative paths mean the caller's directory.
			 */
			if (optarg[0] != '/' && realpath(optarg, abs))
				optarg = abs;
			json_object_object_add(body, c == O_KERNEL ? "kernel" : "initrd",
					       json_object_new_string(optarg));
			have_kernel |= c == O_KERNEL;
			break;
		case O_CMDLINE:
			json_object_object_add(body, "cmdline", json_object_new_string(optarg));
			break;
		case O_USER:
			json_object_object_add(body, "user", json_object_new_string(optarg));
			break;
		case O_JSON:
			*json = true;
			break;
		case O_DISK: {
			struct json_object *d;

			if (optarg[0] != '/' && strchr(optarg, ',') == NULL &&
			    realpath(optarg, abs))
				optarg = abs;
			d = vm_parse_disk(optarg);
			if (!d) {
				json_object_put(disks);
				json_object_put(devices);
				return VIRIDIAN_EXIT_USAGE;
			}
			if (!disks)
				disks = json_object_new_array();
			json_object_array_add(disks, d);
			break;
		}
		case O_DEVICE:
			if (!devices)
				devices = json_object_new_array();
			json_object_array_add(devices, json_object_new_string(optarg));
			break;
		default:
			json_object_put(disks);
			json_object_put(devices);
			if (optopt)
				return vm_fail(2, "option '%s' needs a value", argv[optind - 1]);
			return vm_fail(2, "unknown option '%s'; see viridian vm --help",
				       argv[optind - 1]);
		}
	}
	if (disks)
		json_object_object_add(body, "disks", disks);
	if (devices)
		json_object_object_add(body, "devices", devices);
	if (optind < argc)
		return vm_fail(2, "unexpected argument '%s'", argv[optind]);
	if (create && (!have_mem || !have_cpus || !have_kernel))
		return vm_fail(2, "create needs --memory, --cpus and --kernel");
	if (!create && json_object_object_length(body) == 0)
		return vm_fail(2, "modify: nothing to change; give at least one option");
	return 0;
}

static int vm_cmd_create(struct vm_cli *cli, const char *name, int argc, char **argv, bool create)
{
	struct json_object *body = json_object_new_object(), *vm = NULL;
	char path[2048], esc[800];
	int rc;

	rc = vm_parse_config(argc, argv, create, body, &cli->json);
	if (rc) {
		json_object_put(body);
		return rc;
	}
	vm_escape(esc, sizeof(esc), name);
	if (create) {
		json_object_object_add(body, "name", json_object_new_string(name));
		rc = vm_call(cli, "POST", "/v1/vms", body, &vm);
	} else {
		snprintf(path, sizeof(path), "/v1/vms/%s", esc);
		rc = vm_call(cli, "PATCH", path, body, &vm);
	}
	json_object_put(body);
	if (rc == 0) {
		if (cli->json)
			vm_print_json(vm);
		else
			printf("%s %s\n", create ? "created" : "modified", name);
	}
	json_object_put(vm);
	return rc;
}

/* start/stop/... and the state the VM reached. */
static int vm_cmd_action(const struct vm_cli *cli, const char *action, const char *name,
			 const char *query)
{
	struct json_object *vm;
	char path[2048], esc[800];
	int rc;

	vm_escape(esc, sizeof(esc), name);
	snprintf(path, sizeof(path), "/v1/vms/%s/%s%s", esc, action, query ? query : "");
	rc = vm_call(cli, "POST", path, NULL, &vm);
	if (rc)
		return rc;
	if (cli->json)
		vm_print_json(vm);
	else
		printf("%s: %s\n", name, vm_str(vm, "state") ?: "done");
	json_object_put(vm);
	return 0;
}

static int vm_cmd_remove(const struct vm_cli *cli, const char *name, bool force, bool disks)
{
	char path[2048], esc[800];
	int rc;

	vm_escape(esc, sizeof(esc), name);
	snprintf(path, sizeof(path), "/v1/vms/%s%s%s", esc, force ? "?force=true" : "",
		 disks ? (force ? "&delete_disks=true" : "?delete_disks=true") : "");
	rc = vm_call(cli, "DELETE", path, NULL, NULL);
	if (rc == 0 && !cli->json)
		printf("removed %s\n", name);
	return rc;
}

static int vm_cmd_cp_list(const struct vm_cli *cli, const char *name)
{
	struct json_object *r, *cps;
	char path[2048], esc[800];
	size_t n;
	int rc, w = 10;

	vm_escape(esc, sizeof(esc), name);
	snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints", esc);
	rc = vm_call(cli, "GET", path, NULL, &r);
	if (rc)
		return rc;
	if (cli->json) {
		vm_print_json(r);
		json_object_put(r);
		return 0;
	}
	if (!json_object_object_get_ex(r, "checkpoints", &cps) ||
	    !json_object_is_type(cps, json_type_array)) {
		json_object_put(r);
		return vm_fail(1, "vmms sent a checkpoint list without \"checkpoints\"");
	}
	n = json_object_array_length(cps);
	for (size_t i = 0; i < n; i++) {
		const char *s = vm_str(json_object_array_get_idx(cps, i), "name");

		w = MAX(w, s ? (int)MIN(strlen(s), 64u) : 1);
	}
	printf("%-*s  %-*s  %-20s  %s\n", w, "Checkpoint", w, "Parent", "Created", "Current");
	for (size_t i = 0; i < n; i++) {
		struct json_object *cp = json_object_array_get_idx(cps, i), *cur;
		bool current = json_object_object_get_ex(cp, "current", &cur) &&
			       json_object_get_boolean(cur);

		printf("%-*.64s  %-*.64s  %-20.32s  %s\n", w, vm_str(cp, "name") ?: "?", w,
		       vm_str(cp, "parent") ?: "-", vm_str(cp, "created") ?: "-",
		       current ? "*" : "");
	}
	json_object_put(r);
	return 0;
}

static int vm_cmd_cp(const struct vm_cli *cli, const char *op, const char *name, const char *cp,
		     bool discard)
{
	struct json_object *body = NULL, *r = NULL;
	char path[2048], esc[800], cpesc[800];
	int rc;

	if (strlen(name) > 255 || strlen(cp) > 255)
		return vm_fail(2, "checkpoint: NAME or CHECKPOINT is longer than 255 characters");

	vm_escape(esc, sizeof(esc), name);
	vm_escape(cpesc, sizeof(cpesc), cp);
	if (!strcmp(op, "create")) {
		snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints", esc);
		body = json_object_new_object();
		json_object_object_add(body, "name", json_object_new_string(cp));
		rc = vm_call(cli, "POST", path, body, &r);
	} else if (!strcmp(op, "apply")) {
		snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints/%s/apply%s", esc, cpesc,
			 discard ? "?discard=true" : "");
		rc = vm_call(cli, "POST", path, NULL, &r);
	} else {
		snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints/%s", esc, cpesc);
		rc = vm_call(cli, "DELETE", path, NULL, &r);
	}
	json_object_put(body);
	if (rc == 0) {
		if (cli->json && r)
			vm_print_json(r);
		else if (!cli->json)
			printf("%s: checkpoint %s %s\n", name, cp,
			       !strcmp(op, "create")  ? "created"
			       : !strcmp(op, "apply") ? "applied"
						      : "removed");
	}
	json_object_put(r);
	return rc;
}

/* GET /v1/events: one JSON object per line, for as long as the service keeps it open. */
struct vm_events {
	bool json;
	char line[8192];
	size_t len;
};

static void vm_events_line(struct vm_events *e, const char *line)
{
	struct json_object *o;

	if (e->json) {
		printf("%s\n", line);
		fflush(stdout);
		return;
	}
	o = json_tokener_parse(line);
	if (!o)
		return;
	printf("%-20s %-9s %s\n", vm_str(o, "vm") ?: "?", vm_str(o, "state") ?: "?",
	       vm_str(o, "reason") ?: "");
	fflush(stdout);
	json_object_put(o);
}

static size_t vm_events_cb(char *ptr, size_t size, size_t nmemb, void *opaque)
{
	struct vm_events *e = opaque;
	size_t n = size * nmemb;

	for (size_t i = 0; i < n; i++) {
		if (ptr[i] == '\n') {
			e->line[e->len] = 0;
			if (e->len)
				vm_events_line(e, e->line);
			e->len = 0;
		} else if (e->len + 1 < sizeof(e->line)) {
			e->line[e->len++] = ptr[i];
		}
	}
	return n;
}

static int vm_cmd_events(const struct vm_cli *cli)
{
	struct vm_events e = {.json = cli->json};
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	CURLcode rc;
	long status = 0;

	if (!c)
		return vm_fail(1, "cannot initialise libcurl");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, cli->socket);
	curl_easy_setopt(c, CURLOPT_URL, "http://localhost/v1/events");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, vm_events_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &e);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	if (!cli->json)
		printf("%-20s %-9s %s\n", "VM", "State", "Reason");
	fflush(stdout);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (rc == CURLE_COULDNT_CONNECT)
		return vm_fail(1, "cannot reach vmms at %s: %s; start it with `viridian vmms`",
			       cli->socket,
			       access(cli->socket, F_OK) < 0 ? strerror(errno)
							     : (errbuf[0] ? errbuf : "refused"));
	if (rc != CURLE_OK)
		return vm_fail(1, "event stream from vmms at %s ended: %s", cli->socket,
			       errbuf[0] ? errbuf : curl_easy_strerror(rc));
	if (status >= 400)
		return vm_fail(1, "vmms refused the event stream (HTTP %ld)", status);
	return 0;
}

static struct termios vm_saved_tio;
static bool vm_tio_saved;

static void vm_tty_restore(void)
{
	if (vm_tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &vm_saved_tio);
	vm_tio_saved = false;
}

static int vm_cmd_console(const struct vm_cli *cli, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct json_object *vm;
	char path[2048], esc[800];
	bool tty = isatty(STDIN_FILENO), in_open = true;
	const char *sock;
	int rc, fd;

	vm_escape(esc, sizeof(esc), name);
	snprintf(path, sizeof(path), "/v1/vms/%s", esc);
	rc = vm_call(cli, "GET", path, NULL, &vm);
	if (rc)
		return rc;
	sock = vm_str(vm, "console_socket");
	if (!sock || !*sock) {
		rc = vm_fail(1, "%s is %s: it has no console until it runs; start it first", name,
			     vm_str(vm, "state") ?: "not running");
		json_object_put(vm);
		return rc;
	}
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		json_object_put(vm);
		return vm_fail(1, "console socket path is too long");
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	json_object_put(vm);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = vm_fail(1, "cannot connect to the console of %s at %s: %s", name, sa.sun_path,
			     strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (tty && tcgetattr(STDIN_FILENO, &vm_saved_tio) == 0) {
		struct termios raw = vm_saved_tio;

		cfmakeraw(&raw);
		vm_tio_saved = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
		atexit(vm_tty_restore);
		fprintf(stderr, "Connected to the console of %s; Ctrl-] detaches.\r\n", name);
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
		char buf[4096];
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break; /* the VM stopped */
			if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
		if (p[1].revents) {
			char *k;

			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				/* End of input (a pipe): keep showing output until the VM ends. */
				in_open = false;
				shutdown(fd, SHUT_WR);
				continue;
			}
			k = tty ? memchr(buf, VM_DETACH_KEY, (size_t)n) : NULL;
			if (k)
				n = k - buf;
			if (n > 0 && write(fd, buf, (size_t)n) < 0)
				break;
			if (k)
				break;
		}
	}
	close(fd);
	vm_tty_restore();
	if (tty)
		fprintf(stderr, "\r\nDetached from %s.\n", name);
	return 0;
}

/* Flags after the VM name: only the few each command takes. */
struct vm_flags {
	bool json, force, delete_disks, discard;
	const char *timeout;
};

static bool vm_flag_allowed(const char *allowed, const char *flag, size_t len)
{
	for (const char *p = allowed; *p;) {
		size_t n = strcspn(p, " ");

		if (n == len && !strncmp(p, flag, len))
			return true;
		p += n;
		p += *p == ' ';
	}
	return false;
}

static int vm_parse_flags(int argc, char **argv, int first, struct vm_flags *f, const char *allowed,
			  const char *cmd)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *flag, *val = NULL;
		size_t len;
		uint64_t t;

		if (strncmp(a, "--", 2) || !a[2])
			return vm_fail(2, "%s: unexpected argument '%s'; see viridian vm --help",
				       cmd, a);
		flag = a + 2;
		len = strcspn(flag, "=");
		if (flag[len] == '=')
			val = flag + len + 1;
		if (!vm_flag_allowed(allowed, flag, len))
			return vm_fail(2, "%s: unknown option '%s'; see viridian vm --help", cmd,
				       a);
		if (strncmp(flag, "timeout", len) && val)
			return vm_fail(2, "%s: option '--%.*s' takes no value", cmd, (int)len,
				       flag);
		if (!strncmp(flag, "json", len)) {
			f->json = true;
		} else if (!strncmp(flag, "force", len)) {
			f->force = true;
		} else if (!strncmp(flag, "delete-disks", len)) {
			f->delete_disks = true;
		} else if (!strncmp(flag, "discard", len)) {
			f->discard = true;
		} else {
			if (!val && i + 1 < argc)
				val = argv[++i];
			if (!val)
				return vm_fail(2, "--timeout needs a number of seconds");
			if (util_parse_u64(val, &t) < 0 || t > 3600)
				return vm_fail(
					2, "--timeout '%s': expected whole seconds (0..3600)", val);
			f->timeout = val;
		}
	}
	return 0;
}

int cmd_vm(int argc, char **argv)
{
	struct vm_cli cli = {.socket = getenv("VIRIDIAN_SOCKET")};
	struct vm_flags f = {0};
	const char *cmd, *name;
	int i = 1, rc;

	if (!cli.socket || !*cli.socket)
		cli.socket = VM_DEFAULT_SOCKET;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			cli.socket = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			cli.socket = argv[i] + 9;
			i++;
		} else if (!strcmp(argv[i], "--json")) {
			cli.json = true;
			i++;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			vm_usage(stdout);
			return 0;
		} else {
			return vm_fail(2, "unknown option '%s'; see viridian vm --help", argv[i]);
		}
	}
	if (i >= argc) {
		vm_usage(stderr);
		return VIRIDIAN_EXIT_USAGE;
	}
	if (strlen(cli.socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return vm_fail(2, "--socket %s: path longer than %zu bytes", cli.socket,
			       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	cmd = argv[i++];
	if (!strcmp(cmd, "help")) {
		vm_usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "list")) {
		rc = vm_parse_flags(argc, argv, i, &f, "json", cmd);
		cli.json |= f.json;
		if (rc)
			return rc;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = vm_cmd_list(&cli);
		curl_global_cleanup();
		return rc;
	}
	if (!strcmp(cmd, "events")) {
		rc = vm_parse_flags(argc, argv, i, &f, "json", cmd);
		cli.json |= f.json;
		if (rc)
			return rc;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = vm_cmd_events(&cli);
		curl_global_cleanup();
		return rc;
	}
	if (!strcmp(cmd, "checkpoint")) {
		const char *op = i < argc ? argv[i++] : NULL;

		if (op && !strcmp(op, "list"))
			cmd = "checkpoints";
		else if (!op || (strcmp(op, "create") && strcmp(op, "apply") &&
				 strcmp(op, "remove") && strcmp(op, "rm")))
			return vm_fail(2, "checkpoint: expected create, list, apply or remove");
		else {
			if (i + 2 > argc || argv[i][0] == '-' || argv[i + 1][0] == '-')
				return vm_fail(2, "checkpoint %s NAME CHECKPOINT", op);
			rc = vm_parse_flags(argc, argv, i + 2, &f,
					    !strcmp(op, "apply") ? "json discard" : "json", cmd);
			cli.json |= f.json;
			if (rc)
				return rc;
			curl_global_init(CURL_GLOBAL_DEFAULT);
			rc = vm_cmd_cp(&cli, !strcmp(op, "rm") ? "remove" : op, argv[i],
				       argv[i + 1], f.discard);
			curl_global_cleanup();
			return rc;
		}
	}
	if (!strcmp(cmd, "restore")) {
		if (i + 2 > argc || argv[i][0] == '-' || argv[i + 1][0] == '-')
			return vm_fail(2, "restore NAME CHECKPOINT");
		rc = vm_parse_flags(argc, argv, i + 2, &f, "json discard", cmd);
		cli.json |= f.json;
		if (rc)
			return rc;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = vm_cmd_cp(&cli, "apply", argv[i], argv[i + 1], f.discard);
		curl_global_cleanup();
		return rc;
	}
	if (i >= argc || argv[i][0] == '-')
		return vm_fail(2, "%s: the VM NAME is missing; see viridian vm --help", cmd);
	name = argv[i++];
	if (strlen(name) > 255)
		return vm_fail(2, "%s: NAME is longer than 255 characters", cmd);
	if (!strcmp(cmd, "create") || !strcmp(cmd, "new") || !strcmp(cmd, "modify") ||
	    !strcmp(cmd, "set")) {
		bool create = cmd[0] == 'c' || cmd[0] == 'n';

		/* getopt wants argv[0] to be skipped: hand it the options after NAME. */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = vm_cmd_create(&cli, name, argc - i + 1, argv + i - 1, create);
		curl_global_cleanup();
		return rc;
	}
	if (!strcmp(cmd, "show"))
		rc = vm_parse_flags(argc, argv, i, &f, "json", cmd);
	else if (!strcmp(cmd, "shutdown"))
		rc = vm_parse_flags(argc, argv, i, &f, "json timeout", cmd);
	else if (!strcmp(cmd, "stop"))
		rc = vm_parse_flags(argc, argv, i, &f, "json force", cmd);
	else if (!strcmp(cmd, "remove") || !strcmp(cmd, "rm"))
		rc = vm_parse_flags(argc, argv, i, &f, "json force delete-disks", cmd);
	else if (!strcmp(cmd, "start") || !strcmp(cmd, "pause") || !strcmp(cmd, "resume") ||
		 !strcmp(cmd, "reset") || !strcmp(cmd, "checkpoints"))
		rc = vm_parse_flags(argc, argv, i, &f, "json", cmd);
	else if (!strcmp(cmd, "console"))
		rc = vm_parse_flags(argc, argv, i, &f, "", cmd);
	else
		return vm_fail(2, "unknown command '%s'; see viridian vm --help", cmd);
	if (rc)
		return rc;
	cli.json |= f.json;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!strcmp(cmd, "show")) {
		rc = vm_cmd_show(&cli, name);
	} else if (!strcmp(cmd, "shutdown")) {
		char q[40] = "";

		if (f.timeout)
			snprintf(q, sizeof(q), "?timeout=%s", f.timeout);
		rc = vm_cmd_action(&cli, "shutdown", name, q);
	} else if (!strcmp(cmd, "remove") || !strcmp(cmd, "rm")) {
		rc = vm_cmd_remove(&cli, name, f.force, f.delete_disks);
	} else if (!strcmp(cmd, "checkpoints")) {
		rc = vm_cmd_cp_list(&cli, name);
	} else if (!strcmp(cmd, "console")) {
		rc = vm_cmd_console(&cli, name);
	} else {
		/* stop is always a hard stop; --force is accepted for scripts that say so. */
		rc = vm_cmd_action(&cli, cmd, name, NULL);
	}
	curl_global_cleanup();
	return rc;
}
