#ifndef TGUEST_POWER_H
#define TGUEST_POWER_H

/* Enter S5 the way an ACPI OS does; prints "# power-off failed" and halts if that fails. */
__attribute__((noreturn)) void power_off(void);

#endif
