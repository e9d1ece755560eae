/* Hosted stand-in for guest/scenario.h: scenarios become plain globals the test can call. */
#ifndef HARNESS_SHIM_SCENARIO_H
#define HARNESS_SHIM_SCENARIO_H

struct scenario {
	const char *name;
	unsigned int (*count)(void);
	void (*run)(void);
	int explicit_only;
};

#define SCENARIO_REGISTER(s) const struct scenario *const scenario_ptr_##s = &(s)

#endif
