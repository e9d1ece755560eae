/* Test-and-set spinlock (xchg is a locked read-modify-write, Intel SDM vol. 3 8.1.2). */
#ifndef TGUEST_LIB_SPINLOCK_H
#define TGUEST_LIB_SPINLOCK_H

#include <stdbool.h>

struct spinlock {
	volatile int locked;
};

static inline bool spin_trylock(struct spinlock *l)
{
	return __atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE) == 0;
}

static inline void spin_lock(struct spinlock *l)
{
	while (!spin_trylock(l))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			__asm__ volatile("pause" ::: "memory");
}

static inline void spin_unlock(struct spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

#endif
