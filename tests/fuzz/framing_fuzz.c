/* framing_fuzz: the strict header-section scan on arbitrary bytes, fed
 * whole and in the chunks the fuzzer chooses: the verdict, the header
 * length and the defect must not depend on how the bytes arrive; what it
 * accepts has only CR LF line ends, no NUL, and ends with an empty line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* the first byte chooses the chunk size */
	size_t chunk = (size_t)data[0] % 17 + 1;
	const uint8_t *bytes = data + 1;
	size_t n = size - 1;
	cs_framing whole, pieces;
	cs_framing_reset(&whole);
	size_t used_whole = cs_framing_feed(&whole, bytes, n);
	cs_framing_reset(&pieces);
	size_t used_pieces = 0;
	for (size_t at = 0; at < n; at += chunk)
		used_pieces += cs_framing_feed(&pieces, bytes + at, n - at < chunk ? n - at : chunk);
	if (used_whole != used_pieces || whole.defect != pieces.defect ||
	    whole.in_body != pieces.in_body || whole.header_bytes != pieces.header_bytes ||
	    used_whole > n || whole.header_bytes != used_whole)
		abort();
	if (whole.defect == NULL) {
		/* accepted: every LF ends a CR LF, and no NUL was let through */
		for (size_t i = 0; i < used_whole; i++)
			if ((bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r')) || bytes[i] == '\0')
				abort();
		/* a finished section ends with the empty line */
		if (whole.in_body && (used_whole < 4 || memcmp(bytes + used_whole - 4, "\r\n\r\n", 4) != 0))
			abort();
	}
	return 0;
}
