/* pareto: the MapPareto object — preference vectors, reference points, the parallel search over
 * preferences, gathering, filtering (DESIGN.md §5.4). The TAO solves are in pareto_tao.c. */
#include "paretoimpl.h"
#include <math.h>

/* RNG streams of the start points */
#define MAP_PARETO_STREAM_ANCHOR 0x414e4348ULL /* "ANCH" + objective */
#define MAP_PARETO_STREAM_START  0x53545254ULL /* "STRT" + preference index */
#define MAP_PARETO_PICK_INDEX    0xffffffffULL /* preference "index" of MapParetoPick */

static const char *const MapParetoScalarizations[] = {"chebyshev", "weighted_sum", "MapParetoScalarization", "MAP_PARETO_", NULL};
static const char *const MapParetoSolverTypes[]    = {"smoothmax", "epigraph", "MapParetoSolverType", "MAP_PARETO_", NULL};

/*
  MapParetoCreate - a Pareto search on comm with the defaults: Chebyshev in epigraph form (TAOALMM), 4 starts
  per preference, box [0,1], seed 0, Das-Dennis divisions chosen from m. Collective.
*/
PetscErrorCode MapParetoCreate(MPI_Comm comm, MapPareto *p)
{
  MapPareto q;

  PetscFunctionBegin;
  PetscCall(MapInitializePackage());
  PetscCall(PetscNew(&q));
  q->comm       = comm;
  q->lo         = 0;
  q->hi         = 1;
  q->scal       = MAP_PARETO_CHEBYSHEV;
  q->solver     = MAP_PARETO_EPIGRAPH;
  q->starts     = 4;
  q->rho        = 1e-4;
  q->utopia_eps = 1e-3;
  q->tau_final  = 1e-5;
  q->tau_start  = 1e-3;
  q->gatol      = 1e-10;
  q->maxit      = 2000;
  *p            = q;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetFromOptions(MapPareto p)
{
  PetscInt  seed = (PetscInt)p->seed, scal = p->scal, solver = p->solver;
  char      boxbuf[128] = "";
  double    box[2];
  int       nbox = 0;
  PetscBool flg;

  PetscFunctionBegin;
  PetscOptionsBegin(p->comm, NULL, "MAP Pareto search (DESIGN.md 5.4)", "MapPareto");
  PetscCall(PetscOptionsInt("-map_pareto_divisions", "Das-Dennis divisions H of the preference simplex (0: from the number of objectives)",
                            "MapParetoSetDivisions", p->divisions, &p->divisions, NULL));
  PetscCall(PetscOptionsEList("-map_pareto_scalarization", "scalarisation", "MapParetoSetScalarization", MapParetoScalarizations, 2,
                              MapParetoScalarizations[scal], &scal, NULL));
  PetscCall(PetscOptionsEList("-map_pareto_solver", "how Chebyshev's max is solved: smooth max + BLMVM, or epigraph + ALMM",
                              "MapParetoSetSolverType", MapParetoSolverTypes, 2, MapParetoSolverTypes[solver], &solver, NULL));
  PetscCall(PetscOptionsInt("-map_pareto_starts", "TAO starts per preference vector", "MapParetoSetStarts", p->starts, &p->starts, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_rho", "augmentation weight of the Chebyshev scalarisation", NULL, p->rho, &p->rho, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_gatol", "TAO gradient tolerance of each scalarised solve", NULL, p->gatol, &p->gatol, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_tau_start", "first temperature of the smooth max (normalised objective units)", NULL, p->tau_start,
                             &p->tau_start, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_tau", "final temperature of the smooth max (normalised objective units)", NULL, p->tau_final,
                             &p->tau_final, NULL));
  PetscCall(PetscOptionsInt("-map_seed", "the one seed everything is derived from", NULL, seed, &seed, NULL));
  PetscCall(PetscOptionsString("-map_box", "box lo,hi for sampling and search", NULL, boxbuf, boxbuf, sizeof(boxbuf), NULL));
  PetscOptionsEnd();
  PetscCall(MapOptionsGetRealList("-map_box", 2, box, &nbox, &flg));
  if (flg) {
    PetscCheck(nbox == 2 && box[0] < box[1], p->comm, PETSC_ERR_ARG_WRONG, "-map_box: expected lo,hi with lo < hi, got \"%s\"", boxbuf);
    p->lo = box[0];
    p->hi = box[1];
  }
  PetscCheck(p->divisions >= 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_divisions: need >= 0, got %" PetscInt_FMT, p->divisions);
  PetscCheck(p->starts >= 1, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_starts: need >= 1, got %" PetscInt_FMT, p->starts);
  PetscCheck(p->rho >= 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_rho: need >= 0, got %g", p->rho);
  PetscCheck(p->gatol > 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_gatol: need > 0, got %g", p->gatol);
  PetscCheck(p->tau_final > 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_tau: need > 0, got %g", p->tau_final);
  p->seed   = (uint64_t)seed;
  p->scal   = (MapParetoScalarization)scal;
  p->solver = (MapParetoSolverType)solver;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetObjectives(MapPareto p, int T, int m, MapObjectiveFn fn, void *ctx)
{
  PetscFunctionBegin;
  PetscCheck(T >= 1 && m >= 1 && m <= 64 && fn, p->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "MapParetoSetObjectives: need T >= 1, 1 <= m <= 64 and a function, got T=%d m=%d", T, m);
  p->T          = T;
  p->m          = m;
  p->fn         = fn;
  p->ctx        = ctx;
  p->have_ideal = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetBox(MapPareto p, double lo, double hi)
{
  PetscFunctionBegin;
  PetscCheck(lo < hi && isfinite(lo) && isfinite(hi), p->comm, PETSC_ERR_ARG_OUTOFRANGE, "Pareto box: need finite lo < hi, got %g,%g", lo, hi);
  p->lo         = lo;
  p->hi         = hi;
  p->have_ideal = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetScalarization(MapPareto p, MapParetoScalarization s)
{
  PetscFunctionBegin;
  p->scal = s;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetSolverType(MapPareto p, MapParetoSolverType t)
{
  PetscFunctionBegin;
  p->solver = t;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetDivisions(MapPareto p, PetscInt H)
{
  PetscFunctionBegin;
  PetscCheck(H >= 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "Pareto divisions: need >= 0, got %" PetscInt_FMT, H);
  p->divisions = H;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetStarts(MapPareto p, PetscInt starts)
{
  PetscFunctionBegin;
  PetscCheck(starts >= 1, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "Pareto starts: need >= 1, got %" PetscInt_FMT, starts);
  p->starts = starts;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetSeed(MapPareto p, uint64_t seed)
{
  PetscFunctionBegin;
  p->seed       = seed;
  p->have_ideal = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoGetStatistics(MapPareto p, PetscInt *npref, PetscInt *nsolves, PetscInt *nfailed)
{
  PetscFunctionBegin;
  if (npref) *npref = p->npref;
  if (nsolves) *nsolves = p->nsolves;
  if (nfailed) *nfailed = p->nfailed;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoGetIdealNadir(MapPareto p, const double **ideal, const double **nadir)
{
  PetscFunctionBegin;
  PetscCheck(p->have_ideal, p->comm, PETSC_ERR_ORDER, "the ideal point is computed by MapParetoSolve or MapParetoPick; call one first");
  if (ideal) *ideal = p->ideal;
  if (nadir) *nadir = p->nadir;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoGetFront(MapPareto p, PetscInt *k, const double **C, const double **F, const double **W)
{
  PetscFunctionBegin;
  if (k) *k = p->k;
  if (C) *C = p->C;
  if (F) *F = p->F;
  if (W) *W = p->W;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoDestroy(MapPareto *p)
{
  PetscFunctionBegin;
  if (!p || !*p) PetscFunctionReturn(0);
  PetscCall(PetscFree5((*p)->ideal, (*p)->nadir, (*p)->range, (*p)->utopia, (*p)->anchors));
  PetscCall(PetscFree3((*p)->C, (*p)->F, (*p)->W));
  PetscCall(PetscFree(*p));
  PetscFunctionReturn(0);
}

/* number of Das-Dennis vectors C(H+m-1, m-1) (as a double: only compared against limits) */
static double MapParetoLatticeCount(int m, PetscInt H)
{
  double c = 1;
  for (int j = 1; j < m; j++) c = c * (double)(H + j) / j;
  return c;
}

/* default divisions: the largest H <= 40 whose lattice has at most 150 vectors (m=2: 40, m=3: 15,
   m=4: 7, m=5: 5, m=8: 3, ...; at least 1) */
static PetscInt MapParetoDefaultDivisions(int m)
{
  for (PetscInt H = 40; H > 1; H--)
    if (MapParetoLatticeCount(m, H) <= 150) return H;
  return 1;
}

PetscErrorCode MapParetoPreferences(int m, PetscInt H, PetscInt *n, double **W)
{
  PetscInt *k, cnt = 0;
  double    total = MapParetoLatticeCount(m, H);

  PetscFunctionBegin;
  PetscCheck(m >= 1 && H >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "preference lattice: need m >= 1 and H >= 1, got m=%d H=%" PetscInt_FMT,
             m, H);
  PetscCheck(total <= 1e7, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "preference lattice: %d objectives with %" PetscInt_FMT " divisions give %.3g vectors (limit 1e7); lower -map_pareto_divisions", m, H,
             total);
  PetscCall(PetscMalloc1((PetscInt)total * m, W));
  PetscCall(PetscCalloc1(m, &k));
  k[0] = H;
  for (;;) {
    for (int j = 0; j < m; j++) (*W)[cnt * m + j] = (double)k[j] / (double)H;
    cnt++;
    /* next composition in lexicographically decreasing order */
    int j = m - 2;
    while (j >= 0 && k[j] == 0) j--;
    if (j < 0) break;
    PetscInt tail = k[m - 1];
    k[m - 1]      = 0;
    k[j]--;
    k[j + 1] = tail + 1;
  }
  PetscCall(PetscFree(k));
  *n = cnt;
  PetscFunctionReturn(0);
}

/* start s of preference `index` (weights w, NULL for a single-objective solve of objective
   `index`); depends only on (seed, index, s), never on which rank solves it or what it solved
   before, so the front is the same for any rank count. */
static void MapParetoStartPoint(MapPareto p, uint64_t stream, const double *w, PetscInt s, double *x0)
{
  const int T = p->T;

  if (s == 0 && w) {
    /* the preference-weighted mix of the single-objective optima: on the front for convex problems */
    for (int j = 0; j < T; j++) {
      x0[j] = 0;
      for (int i = 0; i < p->m; i++) x0[j] += w[i] * p->anchors[i * T + j];
      x0[j] = PetscMin(p->hi, PetscMax(p->lo, x0[j]));
    }
  } else if ((s == 1 && w) || (s == 0 && !w)) {
    for (int j = 0; j < T; j++) x0[j] = 0.5 * (p->lo + p->hi);
  } else {
    for (int j = 0; j < T; j++) x0[j] = p->lo + (p->hi - p->lo) * MapRngU01(p->seed, stream, (uint64_t)(s * T + j));
  }
}

/* best of the starts for preference w (extra: one more start, or NULL); *valid = 0 when every start failed */
static PetscErrorCode MapParetoSolvePreference(MapPareto p, uint64_t index, const double *w, const double *extra, double *c, double *f,
                                               double *value, PetscBool *valid, PetscInt *nsolves, PetscInt *nfailed)
{
  const int T = p->T;
  double   *x0, *cs, *fs, v;
  PetscInt  nstart = p->starts + (extra ? 1 : 0);

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(T, &x0, T, &cs, p->m, &fs));
  *valid = PETSC_FALSE;
  *value = PETSC_MAX_REAL;
  for (PetscInt s = 0; s < nstart; s++) {
    PetscBool ok;
    if (s < p->starts) MapParetoStartPoint(p, MAP_PARETO_STREAM_START + (index << 32), w, s, x0);
    else PetscCall(PetscArraycpy(x0, extra, T));
    PetscCall(MapParetoSolveScalar(p, w, -1, x0, cs, &ok));
    (*nsolves)++;
    if (!ok) {
      (*nfailed)++;
      continue;
    }
    PetscCall(MapParetoScalarValue(p, w, cs, &v, fs));
    if (v < *value) { /* strict: ties keep the earlier start */
      *value = v;
      *valid = PETSC_TRUE;
      PetscCall(PetscArraycpy(c, cs, T));
      PetscCall(PetscArraycpy(f, fs, p->m));
    }
  }
  PetscCall(PetscFree3(x0, cs, fs));
  PetscFunctionReturn(0);
}

/* ideal point, single-objective optima (anchors), nadir estimate, ranges, utopia: solved on rank 0
   (m problems, several starts each) and broadcast, so every rank holds the same bits. Collective. */
static PetscErrorCode MapParetoComputeIdeal(MapPareto p)
{
  const int   T = p->T, m = p->m;
  PetscMPIInt rank;
  double     *buf, *x0, *cs, *f;
  PetscInt    nbuf = 1 + m * T + m;

  PetscFunctionBegin;
  if (p->have_ideal) PetscFunctionReturn(0);
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapPareto: call MapParetoSetObjectives before solving");
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCall(PetscFree5(p->ideal, p->nadir, p->range, p->utopia, p->anchors));
  PetscCall(PetscMalloc5(m, &p->ideal, m, &p->nadir, m, &p->range, m, &p->utopia, m * T, &p->anchors));
  PetscCall(PetscCalloc1(nbuf, &buf));
  PetscCall(PetscMalloc3(T, &x0, T, &cs, m, &f));
  if (rank == 0) {
    int failed = -1;
    for (int i = 0; i < m && failed < 0; i++) {
      double best = -PETSC_MAX_REAL;
      for (PetscInt s = 0; s < p->starts; s++) {
        PetscBool ok;
        MapParetoStartPoint(p, MAP_PARETO_STREAM_ANCHOR + ((uint64_t)i << 32), NULL, s, x0);
        PetscCall(MapParetoSolveScalar(p, NULL, i, x0, cs, &ok));
        p->nsolves++;
        if (!ok) {
          p->nfailed++;
          continue;
        }
        PetscCall(p->fn(p->ctx, cs, f, NULL));
        if (isfinite(f[i]) && f[i] > best) {
          best = f[i];
          PetscCall(PetscArraycpy(p->anchors + i * T, cs, T));
        }
      }
      if (best == -PETSC_MAX_REAL) failed = i;
    }
    buf[0] = failed;
    if (failed < 0) {
      PetscCall(PetscArraycpy(buf + 1, p->anchors, m * T));
      for (int i = 0; i < m; i++) {
        PetscCall(p->fn(p->ctx, p->anchors + i * T, f, NULL));
        buf[1 + m * T + i] = f[i];
      }
    }
  }
  PetscCallMPI(MPI_Bcast(buf, (PetscMPIInt)nbuf, MPI_DOUBLE, 0, p->comm));
  PetscCheck(buf[0] < 0, p->comm, PETSC_ERR_NOT_CONVERGED,
             "Pareto search: every TAO solve maximising objective %d alone failed (%" PetscInt_FMT " starts); run with -info for the TAO errors",
             (int)buf[0], p->starts);
  PetscCall(PetscArraycpy(p->anchors, buf + 1, m * T));
  for (int i = 0; i < m; i++) p->ideal[i] = buf[1 + m * T + i];
  /* nadir estimate from the payoff table: objective i at every single-objective optimum */
  for (int i = 0; i < m; i++) p->nadir[i] = p->ideal[i];
  for (int j = 0; j < m; j++) {
    PetscCall(p->fn(p->ctx, p->anchors + j * T, f, NULL));
    for (int i = 0; i < m; i++) p->nadir[i] = PetscMin(p->nadir[i], f[i]);
  }
  for (int i = 0; i < m; i++) {
    double r = p->ideal[i] - p->nadir[i];
    /* a non-conflicting objective has no range: fall back to its scale (or 1) */
    p->range[i]  = r > 1e-9 * (1 + PetscAbsReal(p->ideal[i])) ? r : 1;
    p->utopia[i] = p->ideal[i] + p->utopia_eps * p->range[i];
  }
  p->have_ideal = PETSC_TRUE;
  PetscCall(PetscFree3(x0, cs, f));
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}

/* keep[] = the non-dominated valid points, then drop later points whose c lies within
   1e-6 (hi - lo) (max norm) of an earlier kept one; preference order is kept */
static PetscErrorCode MapParetoFilter(MapPareto p, PetscInt n, const double *R, PetscInt stride, const double *Wall)
{
  const int T = p->T, m = p->m;
  int      *keep;
  double   *Fv, tol = 1e-6 * (p->hi - p->lo);
  PetscInt *idx, nv = 0, k = 0;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(n, &keep, n * m, &Fv, n, &idx));
  for (PetscInt q = 0; q < n; q++) {
    if (R[q * stride] == 0) continue;
    PetscCall(PetscArraycpy(Fv + nv * m, R + q * stride + 2 + T, m));
    idx[nv++] = q;
  }
  (void)MapNonDominated(m, nv, Fv, keep);
  PetscCall(PetscFree3(p->C, p->F, p->W));
  PetscCall(PetscMalloc3(nv * T, &p->C, nv * m, &p->F, nv * m, &p->W));
  for (PetscInt v = 0; v < nv; v++) {
    if (!keep[v]) continue;
    const double *r   = R + idx[v] * stride;
    PetscBool     dup = PETSC_FALSE;
    for (PetscInt u = 0; u < k && !dup; u++) {
      double d = 0;
      for (int j = 0; j < T; j++) d = PetscMax(d, PetscAbsReal(p->C[u * T + j] - r[2 + j]));
      dup = d < tol ? PETSC_TRUE : PETSC_FALSE;
    }
    if (dup) continue;
    PetscCall(PetscArraycpy(p->C + k * T, r + 2, T));
    PetscCall(PetscArraycpy(p->F + k * m, r + 2 + T, m));
    PetscCall(PetscArraycpy(p->W + k * m, Wall + idx[v] * m, m));
    k++;
  }
  p->k = k;
  PetscCall(PetscFree3(keep, Fv, idx));
  PetscFunctionReturn(0);
}

/*
  MapParetoSolve - the Pareto set of the objectives over the box. Collective.

  1. ideal point and single-objective optima (rank 0, broadcast);
  2. preference vectors: the Das-Dennis lattice with H divisions (corners included), split into
     contiguous blocks over the ranks; each vector solved from -map_pareto_starts starts (keyed on
     seed and preference index only) and the best kept;
  3. MPI_Allgatherv in preference order; non-dominated filter; near-duplicates merged.
  Failed TAO solves are trapped, counted and reported; the result is bitwise the same for any
  rank count.
*/
PetscErrorCode MapParetoSolve(MapPareto p)
{
  const int    T = p->T, m = p->m;
  PetscMPIInt  rank, size, *counts, *displs;
  PetscInt     N, H, q0, q1, stride = 2 + T + m, stats[3], gstats[3];
  double      *Wall, *local, *all;

  PetscFunctionBegin;
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapParetoSolve: call MapParetoSetObjectives first");
  PetscCall(PetscLogEventBegin(MAP_EVENT_ParetoSolve, 0, 0, 0, 0));
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  p->nsolves = p->nfailed = 0;
  PetscCall(MapParetoComputeIdeal(p));
  H = p->divisions > 0 ? p->divisions : MapParetoDefaultDivisions(m);
  PetscCall(MapParetoPreferences(m, H, &N, &Wall));
  PetscCheck((double)N * stride < 2e9, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "Pareto search: %" PetscInt_FMT " preference vectors are too many to gather", N);
  q0 = (N * rank) / size;
  q1 = (N * (rank + 1)) / size;
  PetscCall(PetscCalloc1((q1 - q0) * stride + 1, &local));
  for (PetscInt q = q0; q < q1; q++) {
    double   *r = local + (q - q0) * stride;
    PetscBool valid;
    PetscCall(MapParetoSolvePreference(p, (uint64_t)q, Wall + q * m, NULL, r + 2, r + 2 + T, &r[1], &valid, &p->nsolves, &p->nfailed));
    r[0] = valid ? 1 : 0;
  }
  PetscCall(PetscMalloc2(size, &counts, size, &displs));
  for (PetscMPIInt r = 0; r < size; r++) {
    PetscInt a = (N * r) / size, b = (N * (r + 1)) / size;
    counts[r]  = (PetscMPIInt)((b - a) * stride);
    displs[r]  = (PetscMPIInt)(a * stride);
  }
  PetscCall(PetscMalloc1(N * stride, &all));
  PetscCallMPI(MPI_Allgatherv(local, counts[rank], MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, p->comm));
  PetscCall(MapParetoFilter(p, N, all, stride, Wall));
  stats[0] = p->nsolves;
  stats[1] = p->nfailed;
  stats[2] = 0;
  for (PetscInt q = 0; q < N; q++) stats[2] += all[q * stride] == 0; /* the same on every rank */
  PetscCallMPI(MPI_Allreduce(stats, gstats, 2, MPIU_INT, MPI_SUM, p->comm));
  gstats[2] = stats[2];
  p->npref   = N;
  p->nsolves = gstats[0];
  p->nfailed = gstats[1];
  if (gstats[1])
    PetscCall(PetscPrintf(p->comm, "Pareto search: %" PetscInt_FMT " of %" PetscInt_FMT " TAO solves failed and were skipped (%" PetscInt_FMT
                                   " preference vectors without any solution); -info shows the errors\n",
                          gstats[1], gstats[0], gstats[2]));
  PetscCheck(p->k > 0, p->comm, PETSC_ERR_NOT_CONVERGED, "Pareto search: no preference vector of %" PetscInt_FMT " gave a solution", N);
  PetscCall(PetscInfo(NULL, "MapParetoSolve: %" PetscInt_FMT " preferences (H=%" PetscInt_FMT "), %" PetscInt_FMT " front points\n", N, H, p->k));
  PetscCall(PetscFree2(counts, displs));
  PetscCall(PetscFree(all));
  PetscCall(PetscFree(local));
  PetscCall(PetscFree(Wall));
  PetscCall(PetscLogEventEnd(MAP_EVENT_ParetoSolve, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/*
  MapParetoPick - the solution of the scalarised problem (the same scalarisation as the search) for
  the preference w[m] (non-negative, normalised to sum 1 inside): c[T] and f[m]. Rank 0 solves,
  from the usual starts plus the front point that scores best for w (when a front exists), and
  broadcasts. Collective.
*/
PetscErrorCode MapParetoPick(MapPareto p, const double *w, double *c, double *f)
{
  const int   T = p->T, m = p->m;
  PetscMPIInt rank;
  double     *wn, *buf, sum = 0;

  PetscFunctionBegin;
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapParetoPick: call MapParetoSetObjectives first");
  for (int i = 0; i < m; i++) {
    PetscCheck(w[i] >= 0 && isfinite(w[i]), p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_preference: weight %d is %g; weights must be finite and >= 0", i + 1,
               w[i]);
    sum += w[i];
  }
  PetscCheck(sum > 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_preference: the %d weights sum to 0; give at least one positive weight", m);
  PetscCall(MapParetoComputeIdeal(p));
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCall(PetscMalloc2(m, &wn, 1 + T + m, &buf));
  for (int i = 0; i < m; i++) wn[i] = w[i] / sum;
  if (rank == 0) {
    const double *extra = NULL;
    double        best  = PETSC_MAX_REAL, v, value;
    PetscBool     valid;
    PetscInt      ns = 0, nf = 0;
    for (PetscInt u = 0; u < p->k; u++) {
      PetscCall(MapParetoScalarValue(p, wn, p->C + u * T, &v, buf));
      if (v < best) {
        best  = v;
        extra = p->C + u * T;
      }
    }
    PetscCall(MapParetoSolvePreference(p, MAP_PARETO_PICK_INDEX, wn, extra, buf + 1, buf + 1 + T, &value, &valid, &ns, &nf));
    buf[0] = valid ? 1 : 0;
  }
  PetscCallMPI(MPI_Bcast(buf, 1 + T + m, MPI_DOUBLE, 0, p->comm));
  PetscCheck(buf[0] != 0, p->comm, PETSC_ERR_NOT_CONVERGED, "MapParetoPick: every TAO solve for the preference failed; run with -info for the errors");
  PetscCall(PetscArraycpy(c, buf + 1, T));
  PetscCall(PetscArraycpy(f, buf + 1 + T, m));
  PetscCall(PetscFree2(wn, buf));
  PetscFunctionReturn(0);
}
