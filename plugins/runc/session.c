/*
 * session.c: interactive sessions (berth-plugin.h's session_* operations):
 * one process started with `runc exec` in a running container, its stdin
 * open, its output read as it comes, and its exit status at the end.
 *
 * A session owns a supervisor, a child of the plugin's process in a
 * process group of its own that is a child subreaper
 * (PR_SET_CHILD_SUBREAPER).  It runs `runc --root R exec --detach
 * --pid-file F [-t --console-socket S] RID argv...`: runc starts the
 * process and exits, the process (runc's child) is handed to the
 * supervisor, which waits for it and exits with its status as a shell
 * reports it (the code, or 128 + the signal; runc's own status when runc
 * failed).  A detached exec gives the process the descriptors runc was
 * given, so that without a TTY its stdin is one end of a socket pair (a
 * write to a process that exited fails with EPIPE rather than raising
 * SIGPIPE in the agent) and its stdout and stderr are one pipe, in the
 * order written; the pipe's read end is the session's descriptor, and its
 * end of file the end of output.  With a TTY, the session listens on a
 * unix socket S in a private temporary directory; runc's side sends the
 * master of the terminal it made for the process over it (SCM_RIGHTS,
 * runc's --console-socket protocol), and the session sizes it before
 * session_open returns.  The master is the session's descriptor: EIO on
 * it means the process and its children closed the terminal (end of
 * output; when runc could not start the process, its message, which it
 * wrote to a file, ends the output instead).  session_resize sets the
 * master's size: the kernel sends the process SIGWINCH.
 *
 * Closing a session before the output ended closes its terminal (a hang
 * up) or its input, sends the process SIGHUP and SIGTERM, then after a
 * grace SIGKILL, and reaps the supervisor.  The process's pid (from the
 * pid file) stays the process's as long as the supervisor has not exited,
 * since the supervisor alone can reap it.  Between fork and exec, and in
 * the supervisor, only async-signal-safe calls and memory prepared before
 * the fork are used.  This file must never leave a child unreaped, wait
 * without a deadline on a process that was not killed, signal a pid it
 * cannot vouch for, or touch the context after session_open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "runc.h"

#define SESSION_READ_WAIT_MS 50         /* session_read's short wait        */
#define SESSION_WRITE_MS 5000           /* a write the process must take   */
#define SESSION_EXIT_WAIT_MS 5000       /* the status after the output ended */
#define SESSION_GRACE_MS 2000           /* after SIGHUP/SIGTERM             */
#define SESSION_DEFAULT_ROWS 24
#define SESSION_DEFAULT_COLS 80
#define SESSION_NO_STATUS 255           /* the supervisor lost the process  */

typedef struct runc_session {
    pid_t pid;                  /* the supervisor, leader of its group       */
    bool tty;
    int master;                 /* tty: the terminal's master (the output)   */
    int in;                     /* no tty: the process's stdin (our end)     */
    int out;                    /* no tty: the output pipe's read end        */
    bool ended;                 /* the output ended                          */
    bool reaped;                /* the supervisor was reaped: status valid   */
    bool err_shown;             /* tty: runc's messages were considered      */
    int status;
    char dir[RUNC_PATH_MAX];    /* private: the pid file, the console socket */
    char pid_file[RUNC_PATH_MAX];
    char sock[RUNC_PATH_MAX];   /* tty: the console socket                   */
    char err_file[RUNC_PATH_MAX]; /* tty: runc's own messages                */
} runc_session_t;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads a decimal pid from `path`; 0 when there is none.  Async-signal-safe. */
static pid_t pid_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    long v = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9' && v < 1L << 30; i++)
        v = v * 10 + (buf[i] - '0');
    return v > 1 ? (pid_t)v : 0;
}

/* The supervisor: runs runc (argv, with stdin `in` and stdout/stderr
 * `out`), then, once runc has started the process and exited, waits for
 * the process, which becomes its child, and exits with its status.  Uses
 * only async-signal-safe calls and what the parent prepared. */
static void __attribute__((noreturn)) supervise(char *const argv[], int in, int out,
                                                const char *pid_file)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setpgid(0, 0) != 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        _exit(SESSION_NO_STATUS);
    pid_t runc = fork();
    if (runc == 0) {
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(127);
        close_from(3);
        execvp(argv[0], argv);
        _exit(127);
    }
    /* The supervisor holds nothing of the process's input or output. */
    close_from(0);
    if (runc < 0)
        _exit(SESSION_NO_STATUS);
    int st = 0;
    while (waitpid(runc, &st, 0) < 0)
        if (errno != EINTR)
            _exit(SESSION_NO_STATUS);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        _exit(wait_code(st) & 0xff);
    pid_t process = pid_read(pid_file);
    if (process == 0)
        _exit(SESSION_NO_STATUS);
    for (;;) {
        pid_t w = waitpid(-1, &st, 0);
        if (w == process)
            _exit(wait_code(st) & 0xff);
        if (w < 0 && errno != EINTR)
            _exit(SESSION_NO_STATUS);
    }
}

/* True when the supervisor has exited (without reaping it). */
static bool supervisor_exited(const runc_session_t *s)
{
    if (s->reaped)
        return true;
    siginfo_t info;
    memset(&info, 0, sizeof info);
    return waitid(P_PID, (id_t)s->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == s->pid;
}

/* Reaps the supervisor within ms milliseconds (ms < 0: until it exits);
 * true (s->status set) when reaped. */
static bool reap(runc_session_t *s, int ms)
{
    int64_t deadline = berth__clock_monotonic_ms() + ms;
    while (!s->reaped) {
        int st = 0;
        pid_t r = waitpid(s->pid, &st, ms < 0 ? 0 : WNOHANG);
        if (r == s->pid) {
            s->reaped = true;
            s->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (r < 0 && errno != EINTR) {
            s->reaped = true;   /* ECHILD: someone else reaped it */
            s->status = SESSION_NO_STATUS;
            break;
        }
        if (ms >= 0 && berth__clock_monotonic_ms() >= deadline)
            return false;
        if (r == 0)
            sleep_ms(10);
    }
    return true;
}

/* Signals the process while the supervisor vouches for its pid. */
static void signal_process(runc_session_t *s, int sig)
{
    pid_t p = pid_read(s->pid_file);
    if (p > 0 && !supervisor_exited(s))
        kill(p, sig);
}

/* Ends the process and the supervisor before the output ended (see the
 * opening comment) and reaps the supervisor. */
static void session_kill(runc_session_t *s)
{
    close_fd(&s->master);
    close_fd(&s->in);
    close_fd(&s->out);
    if (s->reaped)
        return;
    signal_process(s, SIGHUP);
    signal_process(s, SIGTERM);
    if (reap(s, SESSION_GRACE_MS))
        return;
    signal_process(s, SIGKILL);
    if (reap(s, RUNC_KILL_WAIT_MS))
        return;
    /* runc itself hangs: the supervisor's group goes, runc with it. */
    kill(-s->pid, SIGKILL);
    reap(s, -1);
}

static void session_free(runc_session_t *s)
{
    close_fd(&s->master);
    close_fd(&s->in);
    close_fd(&s->out);
    if (s->dir[0] != '\0') {
        unlink(s->pid_file);
        if (s->tty) {
            unlink(s->sock);
            unlink(s->err_file);
        }
        rmdir(s->dir);
    }
    free(s);
}

/* Receives the terminal's master from the console socket `listener`,
 * waiting at most RUNC_START_WAIT_MS, and stops early when the supervisor
 * exits (runc failed).  Returns the master, or -1 with *why set. */
static int console_receive(runc_session_t *s, int listener, const char **why)
{
    int64_t deadline = berth__clock_monotonic_ms() + RUNC_START_WAIT_MS;
    int conn = -1;
    while (conn < 0) {
        struct pollfd p = {.fd = listener, .events = POLLIN};
        int r = poll(&p, 1, 50);
        if (r > 0) {
            conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
            if (conn < 0 && errno != EINTR && errno != EAGAIN) {
                *why = "cannot accept the console socket's connection";
                return -1;
            }
            continue;
        }
        if (supervisor_exited(s)) {
            *why = NULL;    /* runc failed: its message says why */
            return -1;
        }
        if (berth__clock_monotonic_ms() >= deadline) {
            *why = "runc sent no terminal in time";
            return -1;
        }
    }
    char data[256];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    int master = -1;
    struct pollfd p = {.fd = conn, .events = POLLIN};
    int left = (int)(deadline - berth__clock_monotonic_ms());
    if (poll(&p, 1, left > 0 ? left : 0) > 0 && recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(&master, CMSG_DATA(c), sizeof master);
    }
    close(conn);
    if (master < 0)
        *why = "runc sent no terminal over the console socket";
    return master;
}

/* Waits (at most RUNC_START_WAIT_MS) until runc wrote the process's pid
 * file or the supervisor exited (runc failed: its message is in the
 * output).  Returns 0, or BERTH_EIO ("SessionFailed") when neither
 * happened in time. */
static int wait_started(runc_session_t *s, berth_error_t *err)
{
    int64_t deadline = berth__clock_monotonic_ms() + RUNC_START_WAIT_MS;
    while (pid_read(s->pid_file) == 0 && !supervisor_exited(s)) {
        if (berth__clock_monotonic_ms() >= deadline)
            return berth_error_set(err, BERTH_EIO, "SessionFailed", "",
                                   "runc exec did not start the process within %d s",
                                   RUNC_START_WAIT_MS / 1000);
        sleep_ms(5);
    }
    return 0;
}

/* Everything session_open prepares before the fork. */
typedef struct session_plan {
    char **argv;
    int child_in, child_out;    /* the supervisor's runc's stdio            */
    int listener;               /* tty: the console socket                  */
} session_plan_t;

static void plan_close(session_plan_t *p)
{
    free(p->argv);
    p->argv = NULL;
    close_fd(&p->child_in);
    close_fd(&p->child_out);
    close_fd(&p->listener);
}

/* Makes the private directory, the descriptors and runc's argv. */
static int session_prepare(runc_ctx_t *ctx, runc_session_t *s, const char *rid,
                           const char *const *argv, size_t argc, session_plan_t *p,
                           berth_error_t *err)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/')
        tmp = "/tmp";
    if (!path_fmt(s->dir, sizeof s->dir, "%s/berth-runc-session-XXXXXX", tmp) ||
        mkdtemp(s->dir) == NULL) {
        int e = errno;
        s->dir[0] = '\0';
        return berth_error_set(err, BERTH_EIO, "SessionFailed", "",
                               "cannot make a session directory in %s: %s", tmp, strerror(e));
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (!path_fmt(s->pid_file, sizeof s->pid_file, "%s/pid", s->dir) ||
        !path_fmt(s->sock, sizeof s->sock, "%s/console", s->dir) ||
        !path_fmt(s->err_file, sizeof s->err_file, "%s/runc.err", s->dir) ||
        strlen(s->sock) >= sizeof addr.sun_path)
        return berth_error_set(err, BERTH_EINVAL, "SessionFailed", "",
                               "the temporary directory's path %s is too long", tmp);
    p->argv = calloc(argc + 12, sizeof *p->argv);
    if (p->argv == NULL)
        return oom(err);
    size_t n = 0;
    p->argv[n++] = ctx->runc;
    p->argv[n++] = (char *)"--root";
    p->argv[n++] = ctx->root;
    p->argv[n++] = (char *)"exec";
    p->argv[n++] = (char *)"--detach";
    p->argv[n++] = (char *)"--pid-file";
    p->argv[n++] = s->pid_file;
    if (s->tty) {
        p->argv[n++] = (char *)"-t";
        p->argv[n++] = (char *)"--console-socket";
        p->argv[n++] = s->sock;
    }
    p->argv[n++] = (char *)rid;
    for (size_t i = 0; i < argc; i++)
        p->argv[n++] = (char *)argv[i];
    p->argv[n] = NULL;

    const char *what = NULL;
    if (s->tty) {
        memcpy(addr.sun_path, s->sock, strlen(s->sock) + 1);
        p->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p->listener < 0 || bind(p->listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
            listen(p->listener, 1) != 0)
            what = "the console socket";
        else if ((p->child_in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
                 (p->child_out = open(s->err_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                      0600)) < 0)
            what = "runc's message file";
    } else {
        int sp[2], pp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
            what = "the input socket";
        } else {
            s->in = sp[0];
            p->child_in = sp[1];
            if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) != 0) {
                what = "the output pipe";
            } else {
                s->out = pp[0];
                p->child_out = pp[1];
                /* The process's end blocks, as a program expects. */
                int fl = fcntl(pp[1], F_GETFL);
                if (fl < 0 || fcntl(pp[1], F_SETFL, fl & ~O_NONBLOCK) != 0)
                    what = "the output pipe";
            }
        }
    }
    if (what != NULL)
        return berth_error_set(err, BERTH_EIO, "SessionFailed", "", "cannot make %s: %s",
                               what, strerror(errno));
    return 0;
}

/* The plugin's session_open operation (berth-plugin.h). */
int op_session_open(void *vctx, const char *key, const char *container,
                    const char *const *argv, size_t argc, const berth_session_opts_t *opts,
                    void **session, int *fd, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    *session = NULL;
    *fd = -1;
    if (argv == NULL || argc == 0 || argc > 4096)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "argv",
                               "exec needs a command");
    char rid[RUNC_ID_MAX];
    int rc = exec_target(ctx, key, container, rid, err);
    if (rc != 0)
        return rc;
    runc_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return oom(err);
    s->master = s->in = s->out = -1;
    s->tty = opts != NULL && opts->tty;
    session_plan_t plan = {.child_in = -1, .child_out = -1, .listener = -1};
    rc = session_prepare(ctx, s, rid, argv, argc, &plan, err);
    if (rc != 0) {
        plan_close(&plan);
        session_free(s);
        return rc;
    }
    s->pid = fork();
    if (s->pid == 0)
        supervise(plan.argv, plan.child_in, plan.child_out, s->pid_file);
    int e = errno;
    int listener = plan.listener;
    plan.listener = -1;
    plan_close(&plan);
    if (s->pid < 0) {
        close_fd(&listener);
        session_free(s);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "", "cannot fork: %s",
                               strerror(e));
    }
    setpgid(s->pid, s->pid);   /* as the supervisor does: whichever runs first */
    if (s->tty) {
        const char *why = NULL;
        s->master = console_receive(s, listener, &why);
        close_fd(&listener);
        struct winsize ws = {
            .ws_row = opts->rows ? opts->rows : SESSION_DEFAULT_ROWS,
            .ws_col = opts->cols ? opts->cols : SESSION_DEFAULT_COLS,
        };
        if (s->master >= 0 && (ioctl(s->master, TIOCSWINSZ, &ws) != 0 ||
                               fcntl(s->master, F_SETFL,
                                     fcntl(s->master, F_GETFL) | O_NONBLOCK) != 0))
            why = "cannot set up the terminal";
        if (s->master < 0 || why != NULL) {
            char text[512] = "";
            if (why == NULL) {
                char msg[4096];
                ssize_t n = read_small(s->err_file, msg, sizeof msg);
                msg[n > 0 ? n : 0] = '\0';
                last_line(msg, text, sizeof text);
            }
            rc = berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "command",
                                 "runc exec failed: %s",
                                 why != NULL ? why : text[0] ? text : "no message");
        }
    } else {
        rc = wait_started(s, err);
    }
    if (rc != 0) {
        session_kill(s);
        session_free(s);
        return rc;
    }
    *session = s;
    *fd = s->tty ? s->master : s->out;
    return 0;
}

/* With a TTY, runc's own messages go to s->err_file, not to the terminal:
 * when runc failed to start the process (it wrote no pid file), they are
 * the end of the output, copied into buf ("\n" as "\r\n", as the
 * terminal shows lines), once.  Returns the bytes copied. */
static size_t runc_failure(runc_session_t *s, char *buf, size_t cap)
{
    s->err_shown = true;
    if (pid_read(s->pid_file) != 0)
        return 0;
    /* runc writes its message after the terminal closed: once it exited
     * (a process that ended at once may also have had its pid file
     * written since). */
    reap(s, SESSION_EXIT_WAIT_MS);
    if (pid_read(s->pid_file) != 0)
        return 0;
    char msg[2048];
    ssize_t k = read_small(s->err_file, msg, sizeof msg);
    size_t n = 0;
    for (ssize_t i = 0; i < k && n + 2 <= cap; i++) {
        if (msg[i] == '\n')
            buf[n++] = '\r';
        buf[n++] = msg[i];
    }
    return n;
}

/* The plugin's session_read operation (berth-plugin.h). */
int op_session_read(void *vs, char *buf, size_t cap, size_t *n, berth_error_t *err)
{
    runc_session_t *s = vs;
    *n = 0;
    if (s->ended)
        return 1;
    int fd = s->tty ? s->master : s->out;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, SESSION_READ_WAIT_MS) <= 0)
        return 0;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r > 0) {
            *n = (size_t)r;
            return 0;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        /* 0 on the pipe, EIO on a master whose terminal nobody holds. */
        if (r == 0 || errno == EIO) {
            if (s->tty && !s->err_shown && (*n = runc_failure(s, buf, cap)) > 0)
                return 0;
            s->ended = true;
            return 1;
        }
        return berth_error_set(err, BERTH_EIO, "SessionFailed", "",
                               "cannot read the output: %s", strerror(errno));
    }
}

/* Writes all of data to fd within SESSION_WRITE_MS. */
static int write_all(runc_session_t *s, int fd, const char *data, size_t len,
                     berth_error_t *err)
{
    int64_t deadline = berth__clock_monotonic_ms() + SESSION_WRITE_MS;
    size_t done = 0;
    while (done < len) {
        ssize_t w = s->tty ? write(fd, data + done, len - done)
                           : send(fd, data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - berth__clock_monotonic_ms();
            if (left <= 0)
                return berth_error_set(err, BERTH_EIO, "SessionWriteTimeout", "",
                                       "the process took no input for %d s",
                                       SESSION_WRITE_MS / 1000);
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, (int)(left < 1000 ? left : 1000));
            continue;
        }
        return berth_error_set(err, BERTH_EIO, "SessionEnded", "",
                               "the process no longer takes input: %s", strerror(errno));
    }
    return 0;
}

/* The plugin's session_write operation (berth-plugin.h). */
int op_session_write(void *vs, const char *data, size_t len, berth_error_t *err)
{
    runc_session_t *s = vs;
    if (s->ended && len == 0)
        return 0;   /* the input of a process that exited: closed already */
    if (s->ended)
        return berth_error_set(err, BERTH_EIO, "SessionEnded", "",
                               "the process's output has ended");
    if (s->tty) {
        if (len > 0)
            return write_all(s, s->master, data, len, err);
        /* The end of input on a terminal: its EOF character, as typed. */
        char eof = 4;
        struct termios t;
        if (tcgetattr(s->master, &t) == 0 && t.c_cc[VEOF] != 0)
            eof = (char)t.c_cc[VEOF];
        return write_all(s, s->master, &eof, 1, err);
    }
    if (s->in < 0)
        return len == 0 ? 0
                        : berth_error_set(err, BERTH_EIO, "SessionEnded", "",
                                          "the process's input is closed");
    if (len > 0)
        return write_all(s, s->in, data, len, err);
    shutdown(s->in, SHUT_WR);
    close_fd(&s->in);
    return 0;
}

/* The plugin's session_resize operation (berth-plugin.h). */
int op_session_resize(void *vs, uint16_t rows, uint16_t cols, berth_error_t *err)
{
    runc_session_t *s = vs;
    if (!s->tty || s->master < 0)
        return 0;
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    if (ioctl(s->master, TIOCSWINSZ, &ws) != 0)
        return berth_error_set(err, BERTH_EIO, "SessionFailed", "",
                               "cannot resize the terminal: %s", strerror(errno));
    return 0;
}

/* The plugin's session_close operation (berth-plugin.h). */
int op_session_close(void *vs, int *exit_code, berth_error_t *err)
{
    runc_session_t *s = vs;
    int code = -1;
    int rc = 0;
    if (s != NULL) {
        if (s->ended && reap(s, SESSION_EXIT_WAIT_MS)) {
            code = s->status;
        } else {
            if (s->ended)
                rc = berth_error_set(err, BERTH_EIO, "SessionFailed", "",
                                     "the process did not exit within %d s after its "
                                     "output ended", SESSION_EXIT_WAIT_MS / 1000);
            session_kill(s);
        }
        session_free(s);
    }
    if (exit_code != NULL)
        *exit_code = code;
    return rc;
}
