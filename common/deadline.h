/* deadline: absolute CLOCK_REALTIME times for pthread_cond_timedwait,
 * which takes a point in time, not a duration. */
#ifndef IOTRULES_DEADLINE_H
#define IOTRULES_DEADLINE_H

#include <time.h>

/* Sets *ts to ms milliseconds from now. */
void deadline_in(struct timespec *ts, int ms);

#endif
