/* SPDX-License-Identifier: MIT */
/* The fuzz targets' assertion: a failed check is a finding (abort). */
#ifndef IBSNAP_FUZZ_CHECK_H
#define IBSNAP_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                             \
	do {                                                                 \
		if (!(c)) {                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
				__FILE__, __LINE__, #c);                     \
			abort();                                             \
		}                                                            \
	} while (0)

#endif
