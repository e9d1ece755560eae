/* Hosted stand-in for guest/timer.h, on the harness's 2 GHz guest TSC. */
#ifndef HARNESS_SHIM_TIMER_H
#define HARNESS_SHIM_TIMER_H

#include <stdbool.h>
#include <stdint.h>

extern uint64_t tsc_khz;

uint64_t timer_deadline_us(uint64_t us);
bool timer_expired(uint64_t deadline);
void udelay(uint64_t us);

#endif
