/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole file or descriptor into memory, up to a ceiling. */
#include "common/io/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/buf.h"

int file_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct buf b;
	char chunk[65536];
	ssize_t n;
	int r = 0;

	buf_init(&b, max);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		r = buf_append(&b, chunk, (size_t)n);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = buf_steal(&b, ret, ret_len);
	buf_finish(&b);
	return r;
}

int file_read_path(const char *path, size_t max, char **ret, size_t *ret_len)
{
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	r = file_read_fd(fd, max, ret, ret_len);
	(void)close(fd);
	return r;
}
