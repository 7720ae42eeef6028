/* kanary-pause: the process that holds a pod's sandbox open. */
/*
 * containerd starts it as PID 1 of each pod's namespaces and it does nothing but wait: the
 * namespaces live as long as it does. Being PID 1, it inherits every orphan of the pod, so it
 * reaps them on SIGCHLD instead of leaving zombies. SIGINT and SIGTERM end it with status 0,
 * which is how the runtime stops a sandbox. It is linked statically and runs FROM scratch.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "1"

/* _exit is async-signal-safe; nothing is buffered that would need flushing. */
static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

/* Reap every child that has ended; one SIGCHLD may stand for several. */
static void on_child(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static int handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigfillset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		if (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0) {
			printf("kanary-pause %s\n", PAUSE_VERSION);
			return 0;
		}
		fprintf(stderr, "usage: %s [--version]\n", argv[0]);
		return 2;
	}
	if (handle(SIGINT, on_stop, 0) != 0 || handle(SIGTERM, on_stop, 0) != 0 ||
	    handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) != 0) {
		perror("kanary-pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
}
