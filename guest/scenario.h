/*
 * A scenario is named on the command line (tests=a,b) and emits exactly count() TAP
 * lines. Each lives in scenarios/<name>.c and registers itself with SCENARIO_REGISTER,
 * which drops a pointer into the .scenarios section that main.c walks.
 */
#ifndef TGUEST_SCENARIO_H
#define TGUEST_SCENARIO_H

struct scenario {
	const char *name;
	unsigned int (*count)(void);
	void (*run)(void);
	int explicit_only; /* not part of the default run (no tests= on the command line) */
};

#define SCENARIO_REGISTER(s)                                 \
	static const struct scenario *const scenario_ptr_##s \
		__attribute__((used, section(".scenarios"))) = &(s)

extern const struct scenario *const __scenarios_start[], *const __scenarios_end[];

#endif
