/* SPDX-License-Identifier: Apache-2.0 */
/* Standard base64 (with padding) both ways, through GnuTLS's codec. */
#include "common/base64.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "common/buf.h"

int base64_encode(const void *in, size_t len, struct buf *out)
{
	gnutls_datum_t data, text = {NULL, 0};
	int r;

	if (len == 0)
		return 0;
	if (len > UINT_MAX / 2)
		return -E2BIG;
	data.data = (unsigned char *)(uintptr_t)in;
	data.size = (unsigned)len;
	r = gnutls_base64_encode2(&data, &text);
	if (r < 0)
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
	r = buf_append(out, text.data, text.size);
	gnutls_free(text.data);
	return r;
}

int base64_decode(const char *in, size_t max, struct buf *out)
{
	gnutls_datum_t text, data = {NULL, 0};
	size_t len = strlen(in);
	int r;

	/* GnuTLS stops at a '-' (a PEM boundary); in a bare value it is a stray byte. */
	if (strchr(in, '-'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (in[i] != ' ' && in[i] != '\t' && in[i] != '\r' && in[i] != '\n')
			goto decode;
	return 0;
decode:
	if (len > UINT_MAX)
		return -E2BIG;
	text.data = (unsigned char *)(uintptr_t)in;
	text.size = (unsigned)len;
	r = gnutls_base64_decode2(&text, &data);
	if (r < 0)
		return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EINVAL;
	r = data.size > max ? -E2BIG : buf_append(out, data.data, data.size);
	/* What was decoded may be a private key (a kubeconfig's client-key-data). */
	gnutls_memset(data.data, 0, data.size);
	gnutls_free(data.data);
	return r;
}
