/*
 * fuzz.h: what the libFuzzer harnesses in fuzz/ share.  Each harness feeds one decoder of hostile input the
 * bytes libFuzzer makes, through the very function the program calls, and then checks the decoder's
 * contract (what its header promises about an accepted message) so that a wrong answer is a crash too, not
 * only a memory error.  fuzz/README.md says how to run them.
 */
#ifndef MW_FUZZ_H
#define MW_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken contract: libFuzzer saves the input as a crash. */
#define FUZZ_CHECK(cond)                                                                                  \
	do {                                                                                              \
		if (!(cond)) {                                                                            \
			fprintf(stderr, "fuzz: contract broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                          \
		}                                                                                         \
	} while (0)

/* Little-endian reads of the harness's own header bytes (never of a protocol message: those are copied
 * into their struct, as the programs do). */
static inline uint32_t fuzz_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t fuzz_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* MW_FUZZ_H */
