/* eval_proctree: the external evaluator's whole process tree, found and ended without cgroups.
   The program runs in its own process group, but a descendant can leave it (setsid, setpgid) and
   so escape kill(-pgid). Rank 0 is a child subreaper (PR_SET_CHILD_SUBREAPER), so an orphaned
   descendant is re-parented to it instead of to init: every process the program started stays in
   rank 0's tree, where /proc finds it. Processes that were rank 0's children before the program
   started (none in a plain run) are left alone. */

#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* usleep under -std=c17 */
#endif
#include "evalimpl.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void MapEvalBecomeSubreaper(void) { (void)prctl(PR_SET_CHILD_SUBREAPER, 1); }

typedef struct {
  pid_t pid, ppid;
  char  state;
} ProcEntry;

/* every process of the system: pid, parent, state (from /proc/<pid>/stat); malloc'ed */
static int ProcList(ProcEntry **list)
{
  DIR           *d = opendir("/proc");
  struct dirent *de;
  int            n = 0, cap = 256;
  ProcEntry     *l = malloc(sizeof(*l) * (size_t)cap);

  *list = NULL;
  if (!d || !l) {
    if (d) closedir(d);
    free(l);
    return 0;
  }
  while ((de = readdir(d))) {
    char  path[64], buf[512];
    pid_t p = (pid_t)atol(de->d_name);
    if (p <= 0) continue;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)p);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0) continue;
    buf[r]  = 0;
    char *e = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    char  st;
    long  pp;
    if (!e || sscanf(e + 1, " %c %ld", &st, &pp) != 2) continue;
    if (n == cap) {
      ProcEntry *nl = realloc(l, sizeof(*l) * (size_t)(cap *= 2));
      if (!nl) break;
      l = nl;
    }
    l[n].pid = p, l[n].ppid = (pid_t)pp, l[n].state = st, n++;
  }
  closedir(d);
  *list = l;
  return n;
}

static pid_t ParentOf(const ProcEntry *l, int n, pid_t p)
{
  for (int i = 0; i < n; i++)
    if (l[i].pid == p) return l[i].ppid;
  return 0;
}

/* whether p descends from self through none of the `nold` children self had before the program */
static int IsOurs(const ProcEntry *l, int n, pid_t p, pid_t self, const pid_t *old, int nold)
{
  for (int depth = 0; depth < 4096 && p > 1; depth++) {
    pid_t pp = ParentOf(l, n, p);
    if (pp == self) {
      for (int k = 0; k < nold; k++)
        if (old[k] == p) return 0;
      return 1;
    }
    p = pp;
  }
  return 0;
}

/* rank 0's children now (before the program starts) */
int MapEvalChildrenNow(pid_t *kids, int max)
{
  ProcEntry *l;
  int        n = ProcList(&l), k = 0;
  for (int i = 0; i < n && k < max; i++)
    if (l[i].ppid == getpid()) kids[k++] = l[i].pid;
  free(l);
  return k;
}

/* SIGKILL every live process of the program's tree and reap the ones that are (or became) our
   children, until none is left or 5 s have passed; returns how many were still alive at the end */
int MapEvalKillTree(pid_t pgid, const pid_t *old, int nold)
{
  pid_t           self = getpid();
  double          t0   = 0;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t0 = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  if (pgid > 0) (void)kill(-pgid, SIGKILL);
  for (;;) {
    ProcEntry *l;
    int        n = ProcList(&l), alive = 0;
    for (int i = 0; i < n; i++) {
      if (!IsOurs(l, n, l[i].pid, self, old, nold)) continue;
      if (l[i].state != 'Z') {
        alive++;
        (void)kill(l[i].pid, SIGKILL);
      }
      if (l[i].ppid == self) (void)waitpid(l[i].pid, NULL, WNOHANG);
    }
    free(l);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (!alive || (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - t0 > 5.0) return alive;
    usleep(10000);
  }
}
