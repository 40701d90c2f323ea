/* eval_command_run: runs one external program for the command evaluator (MapEvalRunCommand):
   posix_spawnp (no shell) in its own process group, stdout and stderr captured through pipes (the
   last MiB of each), a timeout that ends the program and everything it started, and the metrics
   parsed from its last stdout line. Rank-local, no PETSc errors: the caller agrees collectively. */
#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* posix_spawn, strsignal, usleep under -std=c17 */
#endif
#include "evalimpl.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

typedef struct {
  char  *buf;
  size_t len, cap;
} Capture;

/* Keeps the last MAP_CAPTURE_KEEP bytes (the JSON line is last; the tail of stderr is what the
   error message shows). The buffer grows to twice that, then the older half is dropped in one move,
   so a program that floods its pipes costs O(bytes) and bounded memory. */
#define MAP_CAPTURE_KEEP ((size_t)1 << 20)

static void CaptureAppend(Capture *c, const char *s, size_t n)
{
  if (n >= MAP_CAPTURE_KEEP) { /* this piece alone fills what is kept */
    s += n - MAP_CAPTURE_KEEP;
    n      = MAP_CAPTURE_KEEP;
    c->len = 0;
  }
  if (!c->buf) {
    c->cap = 2 * MAP_CAPTURE_KEEP + 1;
    c->buf = malloc(c->cap);
    if (!c->buf) {
      c->cap = 0;
      return;
    }
  }
  if (c->len + n + 1 > c->cap) {
    size_t keep = MAP_CAPTURE_KEEP - n; /* fits: n < KEEP */
    if (keep > c->len) keep = c->len;
    memmove(c->buf, c->buf + c->len - keep, keep);
    c->len = keep;
  }
  memcpy(c->buf + c->len, s, n);
  c->len += n;
  c->buf[c->len] = 0;
}


/* drain what is readable on fd into c, at most 1 MiB per call so the caller's deadline is checked
   even while the program keeps the pipe full; returns 1 at EOF or error */
static int Drain(int fd, Capture *c)
{
  char buf[65536];
  for (int k = 0; k < 16; k++) {
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r > 0) {
      CaptureAppend(c, buf, (size_t)r);
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (r < 0 && errno == EINTR) continue;
    return 1;
  }
  return 0;
}

static int ParseMetrics(const char *out, const char *task, const char *prog, const char *metric, MapTaskMetrics *m, char *msg, size_t msglen)
{
  /* the last non-empty line */
  const char *end = out + strlen(out);
  while (end > out && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
  const char *start = end;
  while (start > out && start[-1] != '\n') start--;
  if (end == start) {
    snprintf(msg, msglen, "task %s: %s printed nothing on stdout; expected a last line like {\"%s\": 0.9%s}", task, prog, metric,
             strcmp(metric, "accuracy") ? "" : ", \"loss\": 0.3");
    return 1;
  }
  json_error_t err;
  char        *last = strndup(start, (size_t)(end - start)), *line = last ? MapEvalJsonNonFinite(last) : NULL;
  free(last);
  if (!line) {
    snprintf(msg, msglen, "task %s: out of memory", task);
    return 1;
  }
  json_t *root = json_loads(line, 0, &err); /* Python's NaN/Infinity read as null: a failed point, not garbage */
  free(line);
  if (!root || !json_is_object(root)) {
    snprintf(msg, msglen, "task %s: the last line of %s's stdout is not a JSON object (%s); expected {\"%s\": x%s}. Output:\n%s",
             task, prog, root ? "another JSON value" : err.text, metric, strcmp(metric, "accuracy") ? "" : ", \"loss\": y", MapEvalTailLines(out, 20));
    if (root) json_decref(root);
    return 1;
  }
  int rc = MapEvalReadMetrics(root, metric, task, m, msg, msglen);
  json_decref(root);
  if (rc) {
    size_t l = strlen(msg);
    snprintf(msg + l, msglen - l, " in %s's output:\n%s", prog, MapEvalTailLines(out, 20));
  }
  return rc;
}

/* starts argv with stdin from /dev/null and stdout/stderr into the pipes' write ends, in its own
   process group (so a timeout kills the program and everything it started) with default signal
   handling and mask; returns posix_spawnp's error (0: started, *pid set) */
static int SpawnCommand(char *const *argv, int out1, int err1, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t          at;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out1, 1);
  posix_spawn_file_actions_adddup2(&fa, err1, 2);
  posix_spawnattr_init(&at);
  posix_spawnattr_setpgroup(&at, 0);
  short    flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, flags);
  int e = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return e;
}

/* the program's end: SIGTERM to its group, 2 s in which it may still write and exit, then SIGKILL */
static void KillAfterTimeout(pid_t pid, int out0, int err0, int *eof_o, int *eof_e, Capture *co, Capture *ce, int *status, int *exited)
{
  kill(-pid, SIGTERM);
  double t1 = MapEvalNow();
  while (MapEvalNow() - t1 < 2.0) {
    if (waitpid(pid, status, WNOHANG) == pid) {
      *exited = 1;
      break;
    }
    if (!*eof_o) *eof_o = Drain(out0, co); /* a program that handles SIGTERM may still write */
    if (!*eof_e) *eof_e = Drain(err0, ce);
    usleep(20000);
  }
  kill(-pid, SIGKILL);
  if (!*exited) (void)waitpid(pid, status, 0);
  *exited = 1;
}

/* reads both pipes until the program exits or the timeout kills it; -1 when waitpid fails (msg set) */
static int WaitCommand(pid_t pid, const int *out, const int *err, double timeout, const char *task, Capture *co, Capture *ce, int *status,
                       int *timedout, char *msg, size_t msglen)
{
  fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
  fcntl(err[0], F_SETFL, fcntl(err[0], F_GETFL) | O_NONBLOCK);
  double t0    = MapEvalNow();
  int    eof_o = 0, eof_e = 0, exited = 0;
  while (!exited) {
    struct pollfd pf[2];
    int           np = 0;
    if (!eof_o) pf[np].fd = out[0], pf[np].events = POLLIN, pf[np].revents = 0, np++;
    if (!eof_e) pf[np].fd = err[0], pf[np].events = POLLIN, pf[np].revents = 0, np++;
    if (np) (void)poll(pf, (nfds_t)np, 50);
    else usleep(20000);
    if (!eof_o) eof_o = Drain(out[0], co);
    if (!eof_e) eof_e = Drain(err[0], ce);
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid) exited = 1;
    else if (w < 0 && errno != EINTR) {
      snprintf(msg, msglen, "task %s: waitpid failed: %s", task, strerror(errno));
      return -1;
    }
    if (!exited && MapEvalNow() - t0 > timeout) { /* checked on every pass: Drain returns even while the pipe stays full */
      *timedout = 1;
      KillAfterTimeout(pid, out[0], err[0], &eof_o, &eof_e, co, ce, status, &exited);
    }
  }
  /* what the program wrote before it exited is in the pipes: take it (bounded: a descendant may
     still be writing) */
  if (!eof_o) (void)Drain(out[0], co);
  if (!eof_e) (void)Drain(err[0], ce);
  return 0;
}

/* the verdict on a finished program: timeout, signal (2: not sent by us), exit status, else its metrics */
static int CommandVerdict(int status, int timedout, double timeout, const char *task, const char *prog, const char *metric, const Capture *co,
                          const Capture *ce, MapTaskMetrics *m, char *msg, size_t msglen)
{
  if (timedout) {
    snprintf(msg, msglen, "task %s: \"%s\" did not finish within %g s (-map_eval_timeout) and was killed. Last stderr lines:\n%s", task, prog,
             timeout, MapEvalTailLines(ce->buf, 20));
    return 1;
  }
  if (WIFSIGNALED(status)) {
    snprintf(msg, msglen, "task %s: \"%s\" was killed by signal %d (%s). Last stderr lines:\n%s", task, prog, WTERMSIG(status),
             strsignal(WTERMSIG(status)), MapEvalTailLines(ce->buf, 20));
    return 2; /* not sent by us: the caller asks whether the run itself was signalled */
  }
  if (WEXITSTATUS(status) != 0) {
    snprintf(msg, msglen, "task %s: \"%s\" failed with exit status %d. Last stderr lines:\n%s", task, prog, WEXITSTATUS(status),
             MapEvalTailLines(ce->buf, 20));
    return WEXITSTATUS(status) > 128 ? 2 : 1; /* > 128: a shell's way of saying its child died of signal status-128 */
  }
  return ParseMetrics(co->buf ? co->buf : "", task, prog, metric, m, msg, msglen);
}

int MapEvalRunCommand(char *const *argv, double timeout, const char *task, const char *metric, int logfd, MapTaskMetrics *m, char *msg, size_t msglen)
{
  int         out[2] = {-1, -1}, err[2] = {-1, -1}, rc = 1, status = 0, nold = 0, timedout = 0;
  pid_t       pid = 0, old[64];
  Capture     co = {0}, ce = {0};
  const char *prog = argv[0];

  msg[0] = 0;
  MapEvalBecomeSubreaper(); /* descendants that leave the process group stay findable (MapEvalKillTree) */
  nold = MapEvalChildrenNow(old, 64);
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    snprintf(msg, msglen, "task %s: pipe() failed: %s", task, strerror(errno));
    goto done;
  }
  int e = SpawnCommand(argv, out[1], err[1], &pid);
  close(out[1]);
  close(err[1]);
  out[1] = err[1] = -1;
  if (e) {
    pid = 0;
    snprintf(msg, msglen, "task %s: cannot run \"%s\" (-map_eval_command): %s", task, prog, strerror(e));
    goto done;
  }
  if (WaitCommand(pid, out, err, timeout, task, &co, &ce, &status, &timedout, msg, msglen)) goto done;
  /* then end everything it started, including what left its process group */
  (void)MapEvalKillTree(pid, old, nold);
  pid = 0;
  if (logfd >= 0) {
    dprintf(logfd, "== task %s: %s ==\n", task, prog);
    if (ce.len) (void)!write(logfd, ce.buf, ce.len);
  }
  rc = CommandVerdict(status, timedout, timeout, task, prog, metric, &co, &ce, m, msg, msglen);
done:
  if (pid > 0) (void)MapEvalKillTree(pid, old, nold);
  for (int k = 0; k < 2; k++) {
    if (out[k] >= 0) close(out[k]);
    if (err[k] >= 0) close(err[k]);
  }
  free(co.buf);
  free(ce.buf);
  return rc;
}
