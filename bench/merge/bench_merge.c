/* bench_merge: memory bandwidth of the merge kernel against a STREAM-triad loop, same run, same P.
 *
 *   bench_merge [-P 100000000] [-T 8] [-reps 5] [-ref_reps 2]
 *
 * Bytes counted per element: (T+1) reads of the storage type plus one F32 write (the useful
 * traffic; write-allocate reads are not counted, for the triad either: 3 x 4 bytes per element).
 * Each figure is the best of -reps repetitions; the triad and the fast kernels alternate within
 * each repetition, so that load from other processes affects them alike. The fast kernels are validated bitwise against
 * the reference kernels before the report ends with VALID or INVALID. Single process, single thread.
 * Lines starting with "RESULT" are machine-readable: RESULT <name> <GB/s> <best seconds>. */
#include <mapmerge/mapmerge.h>

static char help[] = "bench_merge: merge kernel bandwidth vs STREAM triad.\n";

/* The triad as STREAM writes it; vectorised (checked with objdump: vmulps/vaddps on ymm). */
__attribute__((noinline, target("avx2"), optimize("tree-vectorize"))) static void Triad(int64_t n, float *restrict a,
                                                                             const float *restrict b, float s,
                                                                             const float *restrict c)
{
  for (int64_t j = 0; j < n; j++) a[j] = b[j] + s * c[j];
}

/* Cheap deterministic fill (the values only need to be finite and varied). */
static void Fill(int64_t n, uint64_t seed, float *x)
{
  for (int64_t j = 0; j < n; j++) {
    uint32_t h = (uint32_t)((uint64_t)(j + seed * 0x9E3779B9ULL) * 2654435761ULL >> 7);
    x[j]       = (float)((int32_t)h) * 0x1.0p-33f;
  }
}

static void ToBF16(int64_t n, const float *x, uint16_t *b)
{
  for (int64_t j = 0; j < n; j++) {
    uint32_t u;
    memcpy(&u, &x[j], sizeof(u));
    b[j] = (uint16_t)(u >> 16);
  }
}

typedef enum { K_TRIAD, K_F32, K_F32_REF, K_BF16, K_BF16_REF, K_F16, K_F16_REF } KernelId;

typedef struct {
  int64_t   P;
  int       T;
  float    *pre, *tau, *theta;
  uint16_t *preb, *taub, *preh, *tauh; /* BF16 and IEEE half copies */
  double   *c;
} BenchData;

static PetscErrorCode RunOnce(BenchData *d, KernelId k, double *sec)
{
  double t0 = MapWallTime();

  PetscFunctionBegin;
  switch (k) {
  case K_TRIAD:
    Triad(d->P, d->theta, d->pre, 0.7f, d->tau);
    break;
  case K_F32:
    PetscCall(MapMergeApply(MAP_DTYPE_F32, d->P, d->pre, d->T, d->tau, d->P, d->c, d->theta));
    break;
  case K_F32_REF:
    PetscCall(MapMergeApply_Ref(MAP_DTYPE_F32, d->P, d->pre, d->T, d->tau, d->P, d->c, d->theta));
    break;
  case K_BF16:
    PetscCall(MapMergeApply(MAP_DTYPE_BF16, d->P, d->preb, d->T, d->taub, d->P, d->c, d->theta));
    break;
  case K_BF16_REF:
    PetscCall(MapMergeApply_Ref(MAP_DTYPE_BF16, d->P, d->preb, d->T, d->taub, d->P, d->c, d->theta));
    break;
  case K_F16:
    PetscCall(MapMergeApply(MAP_DTYPE_F16, d->P, d->preh, d->T, d->tauh, d->P, d->c, d->theta));
    break;
  case K_F16_REF:
    PetscCall(MapMergeApply_Ref(MAP_DTYPE_F16, d->P, d->preh, d->T, d->tauh, d->P, d->c, d->theta));
    break;
  }
  *sec = MapWallTime() - t0;
  PetscFunctionReturn(0);
}

static PetscErrorCode Measure(BenchData *d, KernelId k, const char *name, int reps, double bytes_per_elem, double *gbs)
{
  double best = 1e300, sec;

  PetscFunctionBegin;
  for (int r = 0; r < reps; r++) {
    PetscCall(RunOnce(d, k, &sec));
    if (sec < best) best = sec;
  }
  *gbs = bytes_per_elem * (double)d->P / best / 1e9;
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "RESULT %s %.3f %.6f\n", name, *gbs, best));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  BenchData d;
  PetscInt  P = 100000000, T = 8, reps = 5, ref_reps = 2;
  double    g_triad, g_f32, g_f32r, g_bf, g_bfr, g_h, g_hr;
  float    *check;
  int       valid = 1;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCall(MapInitializePackage());
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "bench_merge options", NULL);
  PetscCall(PetscOptionsInt("-P", "elements per vector", NULL, P, &P, NULL));
  PetscCall(PetscOptionsInt("-T", "number of task vectors", NULL, T, &T, NULL));
  PetscCall(PetscOptionsInt("-reps", "repetitions of the fast kernels and the triad (best is kept)", NULL, reps, &reps, NULL));
  PetscCall(PetscOptionsInt("-ref_reps", "repetitions of the reference kernels", NULL, ref_reps, &ref_reps, NULL));
  PetscOptionsEnd();
  PetscCheck(P > 0 && T > 0 && reps > 0 && ref_reps > 0, PETSC_COMM_WORLD, PETSC_ERR_ARG_OUTOFRANGE,
             "-P, -T, -reps, -ref_reps must be > 0; got %" PetscInt_FMT ", %" PetscInt_FMT ", %" PetscInt_FMT ", %" PetscInt_FMT,
             P, T, reps, ref_reps);
  d.P = P;
  d.T = (int)T;
  PetscCall(PetscMalloc3(P, &d.pre, (size_t)T * P, &d.tau, P, &d.theta));
  PetscCall(PetscMalloc3(P, &d.preb, (size_t)T * P, &d.taub, T, &d.c));
  PetscCall(PetscMalloc2(P, &d.preh, (size_t)T * P, &d.tauh));
  PetscCall(PetscMalloc1(P, &check));
  Fill(P, 1, d.pre);
  Fill(T * P, 2, d.tau);
  ToBF16(P, d.pre, d.preb);
  ToBF16(T * P, d.tau, d.taub);
  MapF32ToF16Array(d.pre, P, d.preh);
  MapF32ToF16Array(d.tau, T * P, d.tauh);
  memset(d.theta, 0, P * sizeof(float));
  memset(check, 0, P * sizeof(float));
  for (PetscInt i = 0; i < T; i++) d.c[i] = 0.1 + 0.37 * i;

  PetscCall(PetscPrintf(PETSC_COMM_SELF, "bench_merge: P = %" PetscInt_FMT ", T = %" PetscInt_FMT ", best of %" PetscInt_FMT
                                         " (ref: %" PetscInt_FMT "), working set F32 %.2f GB, BF16 or F16 %.2f GB\n",
                        P, T, reps, ref_reps, (T + 2) * 4.0 * P / 1e9, ((T + 1) * 2.0 + 4.0) * P / 1e9));
  /* warm-up: page in everything once */
  double sec;
  PetscCall(RunOnce(&d, K_TRIAD, &sec));
  PetscCall(RunOnce(&d, K_F32, &sec));
  PetscCall(RunOnce(&d, K_BF16, &sec));
  PetscCall(RunOnce(&d, K_F16, &sec));

  /* The triad and the fast kernels alternate within each repetition, so that a change in the
     machine's load during the run hits them alike; the best of each is kept. */
  const double   bf32 = (T + 1) * 4.0 + 4.0, bbf = (T + 1) * 2.0 + 4.0;
  const KernelId fast[4]  = {K_TRIAD, K_F32, K_BF16, K_F16};
  const char    *names[4] = {"triad", "f32_fast", "bf16_fast", "f16_fast"};
  const double   bytes[4] = {12.0, bf32, bbf, bbf};
  double         best[4]  = {1e300, 1e300, 1e300, 1e300};
  for (PetscInt r = 0; r < reps; r++) {
    for (int k = 0; k < 4; k++) {
      PetscCall(RunOnce(&d, fast[k], &sec));
      if (sec < best[k]) best[k] = sec;
    }
  }
  double *g[4] = {&g_triad, &g_f32, &g_bf, &g_h};
  for (int k = 0; k < 4; k++) {
    *g[k] = bytes[k] * (double)P / best[k] / 1e9;
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "RESULT %s %.3f %.6f\n", names[k], *g[k], best[k]));
  }
  PetscCall(MapMergeApply_Ref(MAP_DTYPE_F32, P, d.pre, (int)T, d.tau, P, d.c, check));
  PetscCall(MapMergeApply(MAP_DTYPE_F32, P, d.pre, (int)T, d.tau, P, d.c, d.theta));
  if (memcmp(check, d.theta, P * sizeof(float))) valid = 0;
  PetscCall(Measure(&d, K_F32_REF, "f32_ref", ref_reps, bf32, &g_f32r));
  PetscCall(MapMergeApply_Ref(MAP_DTYPE_BF16, P, d.preb, (int)T, d.taub, P, d.c, check));
  PetscCall(MapMergeApply(MAP_DTYPE_BF16, P, d.preb, (int)T, d.taub, P, d.c, d.theta));
  if (memcmp(check, d.theta, P * sizeof(float))) valid = 0;
  PetscCall(Measure(&d, K_BF16_REF, "bf16_ref", ref_reps, bbf, &g_bfr));
  PetscCall(MapMergeApply_Ref(MAP_DTYPE_F16, P, d.preh, (int)T, d.tauh, P, d.c, check));
  PetscCall(MapMergeApply(MAP_DTYPE_F16, P, d.preh, (int)T, d.tauh, P, d.c, d.theta));
  if (memcmp(check, d.theta, P * sizeof(float))) valid = 0;
  PetscCall(Measure(&d, K_F16_REF, "f16_ref", ref_reps, bbf, &g_hr));

  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10s %12s\n", "kernel", "GB/s", "vs triad"));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "triad", g_triad, 1.0));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "f32_fast", g_f32, g_f32 / g_triad));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "f32_ref", g_f32r, g_f32r / g_triad));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "bf16_fast", g_bf, g_bf / g_triad));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "bf16_ref", g_bfr, g_bfr / g_triad));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "f16_fast", g_h, g_h / g_triad));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%-10s %10.2f %12.3f\n", "f16_ref", g_hr, g_hr / g_triad));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "fast/ref speedup: F32 %.2fx, BF16 %.2fx, F16 %.2fx\n", g_f32 / g_f32r, g_bf / g_bfr, g_h / g_hr));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "validation (fast == ref bitwise, F32, BF16 and F16): %s\n", valid ? "VALID" : "INVALID"));
  PetscCall(PetscFree(check));
  PetscCall(PetscFree3(d.preb, d.taub, d.c));
  PetscCall(PetscFree2(d.preh, d.tauh));
  PetscCall(PetscFree3(d.pre, d.tau, d.theta));
  PetscCall(PetscFinalize());
  return valid ? 0 : 1;
}
