/* eval_external: what the command and worker evaluators (external programs) share: their private
   temporary folder, logs, GPUs per evaluator group, and whether the run itself was signalled.
   Below both evaluators and below the evaluator registry (eval.c), so no arrow runs back up. */
#ifndef _GNU_SOURCE
  #define _GNU_SOURCE /* setenv, usleep, mkdtemp under -std=c17 */
#endif
#include "evalimpl.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void MapEvalApplyGPU(MapEvaluator ev)
{
  if (ev->cuda[0]) (void)setenv("CUDA_VISIBLE_DEVICES", ev->cuda, 1);
}

void MapEvalLogName(MapEvaluator ev, const char *dir, const char *base, char *path, size_t len)
{
  if (ev->group >= 0) snprintf(path, len, "%s/%s-%d.log", dir, base, ev->group);
  else snprintf(path, len, "%s/%s.log", dir, base);
}

static int (*map_eval_interrupt_query)(void);

void MapEvalSetInterruptQuery(int (*fn)(void)) { map_eval_interrupt_query = fn; }

int MapEvalInterrupted(void) { return map_eval_interrupt_query ? map_eval_interrupt_query() : 0; }

/* the last `lines` lines of text (pointer into it) */
const char *MapEvalTailLines(const char *text, int lines)
{
  if (!text) return "";
  const char *end = text + strlen(text);
  while (end > text && (end[-1] == '\n' || end[-1] == '\r')) end--;
  const char *p = end;
  int         n = 0;
  while (p > text) {
    if (p[-1] == '\n' && ++n == lines) break;
    p--;
  }
  return p;
}

double MapEvalNow(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The temporary models go into a folder only this run can have made (mkdtemp, mode 0700), so no
   other job can read or replace them, whatever its pid. Default: a node-local $TMPDIR (or /tmp)
   when every rank is on rank 0's node, else the store's folder (the ranks write the file together,
   so it must be on a file system they all see); -map_eval_tmpdir overrides. */
PetscErrorCode MapEvalMakePrivateDir(MapEvaluator ev, MapStore store, char *dir, size_t dirlen)
{
  MPI_Comm    node;
  PetscMPIInt rank, size, nsize;
  char        base[MAP_PATH_LEN];
  struct {
    int  ok;
    char text[MAP_PATH_LEN + 256];
  } r;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(ev->comm, &rank));
  PetscCallMPI(MPI_Comm_size(ev->comm, &size));
  PetscCallMPI(MPI_Comm_split_type(ev->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  PetscCallMPI(MPI_Comm_size(node, &nsize));
  PetscCallMPI(MPI_Comm_free(&node));
  if (ev->tmpdir[0]) PetscCall(PetscStrncpy(base, ev->tmpdir, sizeof(base)));
  else if (nsize == size) PetscCall(PetscStrncpy(base, getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp", sizeof(base)));
  else {
    const char *sp;
    char        d[MAP_PATH_LEN];
    PetscCall(MapStoreGetPath(store, &sp));
    PetscCall(PetscStrncpy(d, sp, sizeof(d)));
    PetscCall(PetscStrncpy(base, dirname(d), sizeof(base)));
  }
  memset(&r, 0, sizeof(r));
  if (!rank) {
    int n = snprintf(r.text, sizeof(r.text), "%s/mapmerge-eval-XXXXXX", base);
    if (n >= MAP_PATH_LEN - 64) snprintf(r.text, sizeof(r.text), "-map_eval_tmpdir: the path %.200s... is too long (%d characters)", base, n);
    else if (!mkdtemp(r.text)) {
      int e = errno;
      snprintf(r.text, sizeof(r.text), "-map_eval_tmpdir: cannot create a private folder in %s for the evaluator's model: %s", base, strerror(e));
    } else r.ok = 1;
  }
  PetscCallMPI(MPI_Bcast(&r, (int)sizeof(r), MPI_BYTE, 0, ev->comm));
  PetscCheck(r.ok, ev->comm, PETSC_ERR_FILE_WRITE, "%s", r.text);
  PetscCall(PetscStrncpy(dir, r.text, dirlen));
  if (!rank) PetscCall(MapTempRegister(dir)); /* removed (after the files in it) on any error path */
  PetscFunctionReturn(0);
}

/* The program died of a signal it was not sent by us. When the job step was signalled as a whole
   (SIGTERM/SIGUSR1 reached the run too, MapRunCatchSignals), that is an interruption, not a failed
   evaluation: everything finished is journaled, so the run ends with PETSC_ERR_SIG, which the
   driver turns into exit status 85 (checkpointed, requeue). Collective: the ranks agree on it. The
   signal reaches the run and the program at about the same time; wait up to 1 s for the flag. */
PetscErrorCode MapEvalCheckInterrupted(MapEvaluator ev, const char *msg)
{
  int mine, any;

  PetscFunctionBegin;
  for (int k = 0; k < 50 && !MapEvalInterrupted(); k++) usleep(20000);
  mine = MapEvalInterrupted();
  PetscCallMPI(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, ev->comm));
  if (any) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_SIG, "interrupted by signal %d while the evaluation command ran (%.200s); every finished evaluation is journaled: resume with -map_resume",
                   any, msg);
  PetscFunctionReturn(0);
}

/* the last `lines` lines of the file at path (its last 16 KiB at most) */
void MapEvalLogTail(const char *path, int lines, char *buf, size_t len)
{
  char  tail[16385];
  int   fd = open(path, O_RDONLY | O_CLOEXEC);
  off_t end;

  buf[0] = 0;
  if (fd < 0) return;
  end = lseek(fd, 0, SEEK_END);
  if (end > 0) {
    off_t   from = end > 16384 ? end - 16384 : 0;
    ssize_t r    = pread(fd, tail, (size_t)(end - from), from);
    if (r > 0) {
      tail[r] = 0;
      snprintf(buf, len, "%s", MapEvalTailLines(tail, lines));
    }
  }
  close(fd);
}

PetscErrorCode MapEvalViewExternal(MapEvaluator ev, PetscViewer viewer, const char *option, const char *tmpl, const char *log)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "program (%s): %s\n", option, tmpl[0] ? tmpl : "(none)"));
  PetscCall(PetscViewerASCIIPrintf(viewer, "timeout: %g s (-map_eval_timeout)\n", (double)ev->timeout));
  if (ev->gpus[0]) PetscCall(PetscViewerASCIIPrintf(viewer, "GPUs: %s (-map_eval_gpus); this group's: %s\n", ev->gpus, ev->cuda));
  if (ev->tmpdir[0]) PetscCall(PetscViewerASCIIPrintf(viewer, "temporary folder in: %s (-map_eval_tmpdir)\n", ev->tmpdir));
  if (ev->stream) PetscCall(PetscViewerASCIIPrintf(viewer, "model files: merged straight from the store in blocks of %g MiB per rank (-map_eval_stream)\n", (double)ev->block_mb));
  if (log && log[0]) PetscCall(PetscViewerASCIIPrintf(viewer, "log: %s\n", log));
  PetscFunctionReturn(0);
}
