/* Calibrated TSC delays and deadlines. */
#ifndef TGUEST_TIMER_H
#define TGUEST_TIMER_H

#include <stdbool.h>
#include <stdint.h>

extern uint64_t tsc_khz;
extern const char *timer_source; /* what the TSC was calibrated against */

void timer_init(void);
uint64_t timer_deadline_us(uint64_t us);
bool timer_expired(uint64_t deadline);
void udelay(uint64_t us);

#endif
