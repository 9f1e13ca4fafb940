/* SIGTERM and SIGINT forwarded to a pipe, for Core's TerminationSignal. The handler only
 * write()s (async-signal-safe), so it is plain C rather than a Swift closure. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static inline int *uc_signal_pipe_writer(void) {
    static int writer = -1;
    return &writer;
}

static inline void uc_signal_forward(int number) {
    int saved = errno;
    unsigned char byte = (unsigned char)number;
    ssize_t written = write(*uc_signal_pipe_writer(), &byte, 1);
    (void)written;
    errno = saved;
}

/* Ignores SIGPIPE. */
static inline void uc_ignore_sigpipe(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_IGN;
    sigemptyset(&action.sa_mask);
    sigaction(SIGPIPE, &action, NULL);
}

/* Sends each SIGTERM, SIGINT and SIGHUP to `writer` as one byte holding its number.
 * sigaction replaces the default action in one step, so no signal is lost or ignored on the
 * way. A SIGINT or SIGHUP the parent set to be ignored stays ignored (a service started with
 * `&` from a script: Ctrl-C is the script's to handle; `nohup`). All three are then
 * unblocked in the calling thread and the threads it starts later: a parent may have spawned
 * the process with every signal blocked, as Foundation's Process does from a thread that
 * blocks them.
 * 0 on success, -1 with errno. */
static inline int uc_forward_termination_signals(int writer) {
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    *uc_signal_pipe_writer() = writer;
    action.sa_handler = uc_signal_forward;
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &action, NULL) != 0) return -1;
    int optional[] = {SIGINT, SIGHUP};
    for (unsigned i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        if (sigaction(optional[i], NULL, &previous) != 0) return -1;
        if (previous.sa_handler != SIG_IGN && sigaction(optional[i], &action, NULL) != 0) {
            return -1;
        }
    }
    sigset_t termination;
    sigemptyset(&termination);
    sigaddset(&termination, SIGTERM);
    sigaddset(&termination, SIGINT);
    sigaddset(&termination, SIGHUP);
    return pthread_sigmask(SIG_UNBLOCK, &termination, NULL) == 0 ? 0 : -1;
}

/* Puts SIGTERM, SIGINT and SIGHUP back to their default action (the process ends on them). */
static inline void uc_default_termination_signals(void) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}
