/* pareto: the MapPareto object — preference vectors, reference points, the parallel search over
 * preferences, gathering, filtering (docs/design.md §5.4). The TAO solves are in pareto_tao.c. */
#include "paretoimpl.h"
#include <petsctao.h>
#include <math.h>

/* RNG streams of the start points */
#define MAP_PARETO_STREAM_ANCHOR 0x414e4348ULL /* "ANCH" + objective */
#define MAP_PARETO_STREAM_POOL   0x504f4f4cULL /* "POOL" */

static const char *const MapParetoScalarizations[] = {"chebyshev", "weighted_sum", "MapParetoScalarization", "MAP_PARETO_", NULL};
static const char *const MapParetoSolverTypes[]    = {"smoothmax", "epigraph", "MapParetoSolverType", "MAP_PARETO_", NULL};

/*
  MapParetoCreate - a Pareto search on comm with the defaults: Chebyshev by a smooth max (projected
  Newton in a TAOSHELL), no chains (-map_pareto_chain 1), 2 starts per preference (the
  preference-weighted mix of the single-objective optima and the best of a seeded pool of 128
  points), 2 polishing rounds, box [0,1], seed 0, Das-Dennis divisions chosen from m. Collective.
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
  q->solver     = MAP_PARETO_SMOOTHMAX;
  q->starts     = 2;
  q->npool      = 128;
  q->polish     = 2;
  q->chain      = 1; /* 8 is 1.5x faster but on the T = 8 default carried a worse basin into the centre of the front */
  q->rho        = 1e-4;
  q->utopia_eps = 1e-3;
  q->tau_final  = 1e-5;
  q->tau_start  = 1e-3;
  q->gatol      = 1e-7;
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
  PetscOptionsBegin(p->comm, NULL, "MAP Pareto search (docs/design.md 5.4)", "MapPareto");
  PetscCall(PetscOptionsInt("-map_pareto_divisions", "Das-Dennis divisions H of the preference simplex (0: from the number of objectives)",
                            "MapParetoSetDivisions", p->divisions, &p->divisions, NULL));
  PetscCall(PetscOptionsEList("-map_pareto_scalarization", "scalarisation", "MapParetoSetScalarization", MapParetoScalarizations, 2,
                              MapParetoScalarizations[scal], &scal, NULL));
  PetscCall(PetscOptionsEList("-map_pareto_solver", "how Chebyshev's max is solved: smooth max (projected Newton, or -map_pareto_tao_type), or epigraph + ALMM",
                              "MapParetoSetSolverType", MapParetoSolverTypes, 2, MapParetoSolverTypes[solver], &solver, NULL));
  PetscCall(PetscOptionsInt("-map_pareto_starts", "TAO starts per preference vector", "MapParetoSetStarts", p->starts, &p->starts, NULL));
  PetscCall(PetscOptionsInt("-map_pareto_pool", "seeded candidate start points scored for each preference (the best become starts)", NULL,
                            p->npool, &p->npool, NULL));
  PetscCall(PetscOptionsInt("-map_pareto_polish", "rounds of re-solving a preference from a better solution found for another one", NULL,
                            p->polish, &p->polish, NULL));
  PetscCall(PetscOptionsInt("-map_pareto_chain",
                            "preferences per chain: consecutive lattice vectors, each solved from its predecessor's solution (1: every one from its own starts)",
                            NULL, p->chain, &p->chain, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_rho", "augmentation weight of the Chebyshev scalarisation", NULL, p->rho, &p->rho, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_gatol", "TAO gradient tolerance of each scalarised solve", NULL, p->gatol, &p->gatol, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_tau_start", "first temperature of the smooth max (normalised objective units)", NULL, p->tau_start,
                             &p->tau_start, NULL));
  PetscCall(PetscOptionsReal("-map_pareto_tau", "final temperature of the smooth max (normalised objective units)", NULL, p->tau_final,
                             &p->tau_final, NULL));
  PetscCall(PetscOptionsInt("-map_seed", "the one seed everything is derived from", NULL, seed, &seed, NULL));
  PetscCall(PetscOptionsString("-map_box", "box lo,hi for sampling and search", NULL, boxbuf, boxbuf, sizeof(boxbuf), NULL));
  PetscCall(PetscOptionsName("-map_pareto_view", "print the search after each Solve (MapParetoView; -map_pareto_view ascii:FILE for a file)",
                             "MapParetoView", &flg));
  PetscOptionsEnd();
  PetscCall(MapOptionsGetRealList("-map_box", 2, box, &nbox, &flg));
  if (flg) {
    PetscCheck(nbox == 2 && box[0] < box[1], p->comm, PETSC_ERR_ARG_WRONG, "-map_box: expected lo,hi with lo < hi, got \"%s\"", boxbuf);
    p->lo = box[0];
    p->hi = box[1];
  }
  PetscCheck(p->divisions >= 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_divisions: need >= 0, got %" PetscInt_FMT, p->divisions);
  PetscCheck(p->starts >= 1, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_starts: need >= 1, got %" PetscInt_FMT, p->starts);
  PetscCheck(p->npool >= 1, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_pool: need >= 1, got %" PetscInt_FMT, p->npool);
  PetscCheck(p->polish >= 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_polish: need >= 0, got %" PetscInt_FMT, p->polish);
  PetscCheck(p->chain >= 1, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_chain: need >= 1, got %" PetscInt_FMT, p->chain);
  PetscCheck(p->rho >= 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_rho: need >= 0, got %g", p->rho);
  PetscCheck(p->gatol > 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_gatol: need > 0, got %g", p->gatol);
  PetscCheck(p->tau_final > 0, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_pareto_tau: need > 0, got %g", p->tau_final);
  p->seed   = (uint64_t)seed;
  p->scal   = (MapParetoScalarization)scal;
  p->solver = (MapParetoSolverType)solver;
  {
    /* read the TAO options of the solves now (-map_pareto_tao_type, -map_pareto_tao_monitor, ...): the
       commands reject unused options before any evaluation, and the solvers are only built later */
    Tao tao;
    PetscCall(TaoCreate(PETSC_COMM_SELF, &tao));
    PetscCall(TaoSetType(tao, p->solver == MAP_PARETO_EPIGRAPH ? TAOALMM : TAOSHELL));
    PetscCall(TaoSetOptionsPrefix(tao, "map_pareto_"));
    PetscCall(TaoSetFromOptions(tao));
    PetscCall(TaoDestroy(&tao));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetObjectives(MapPareto p, int T, int m, MapObjectiveFn fn, void *ctx)
{
  PetscFunctionBegin;
  PetscCheck(T >= 1 && m >= 1 && m <= MAP_MAX_TASKS && fn, p->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "MapParetoSetObjectives: need T >= 1, 1 <= m <= %d and a function, got T=%d m=%d", MAP_MAX_TASKS, T, m);
  if (p->T != T || p->m != m) PetscCall(MapParetoTaoCacheDestroy(p));
  p->T          = T;
  p->m          = m;
  p->fn         = fn;
  p->hfn        = NULL;
  p->ctx        = ctx;
  p->have_ideal = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode MapParetoSetObjectiveHessian(MapPareto p, MapObjectiveHessianFn hfn)
{
  PetscFunctionBegin;
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapParetoSetObjectiveHessian: call MapParetoSetObjectives first");
  p->hfn = hfn;
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

PetscErrorCode MapParetoPreferenceValue(MapPareto p, const double *w, const double *f, double *value)
{
  double wn[MAP_MAX_TASKS], sum = 0;

  PetscFunctionBegin;
  PetscCheck(p->have_ideal, PETSC_COMM_SELF, PETSC_ERR_ORDER, "MapParetoPreferenceValue: the ideal point is computed by MapParetoSolve or MapParetoPick; call one first");
  PetscCheck(p->m <= MAP_MAX_TASKS, PETSC_COMM_SELF, PETSC_ERR_SUP, "MapParetoPreferenceValue: at most %d objectives", MAP_MAX_TASKS);
  for (int i = 0; i < p->m; i++) sum += w[i];
  PetscCheck(sum > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "MapParetoPreferenceValue: the weights sum to %g", sum);
  for (int i = 0; i < p->m; i++) wn[i] = w[i] / sum; /* as MapParetoPick normalises them */
  *value = MapParetoScalarValueF(p, wn, f);
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
  PetscCall(MapParetoTaoCacheDestroy(*p));
  PetscCall(PetscFree5((*p)->ideal, (*p)->nadir, (*p)->range, (*p)->utopia, (*p)->anchors));
  PetscCall(PetscFree3((*p)->C, (*p)->F, (*p)->W));
  PetscCall(PetscFree2((*p)->poolC, (*p)->poolF));
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

PetscErrorCode MapParetoCheckDivisions(MapPareto p, int m)
{
  PetscFunctionBegin;
  if (p->divisions > 0)
    PetscCheck(MapParetoLatticeCount(m, p->divisions) <= 1e7, p->comm, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_pareto_divisions %" PetscInt_FMT ": with %d objectives the preference lattice has %.3g vectors (limit 1e7); lower it", p->divisions,
               m, MapParetoLatticeCount(m, p->divisions));
  PetscFunctionReturn(0);
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

/* start s of the single-objective solve of objective i (stream MAP_PARETO_STREAM_ANCHOR + i): the box
   centre, then seeded uniform draws; depends only on (seed, i, s), never on the rank that solves it */
static void MapParetoAnchorStart(MapPareto p, int i, PetscInt s, double *x0)
{
  const int      T      = p->T;
  const uint64_t stream = MAP_PARETO_STREAM_ANCHOR + ((uint64_t)i << 32);

  for (int j = 0; j < T; j++) x0[j] = s == 0 ? 0.5 * (p->lo + p->hi) : p->lo + (p->hi - p->lo) * MapRngU01(p->seed, stream, (uint64_t)(s * T + j));
}

/* the starts of preference w: X0[0] the preference-weighted mix of the single-objective optima
   (on the front for convex problems), then the pool points that score best for w (ties: lower pool
   index), skipping exact repeats. They depend only on (seed, w) and the pool, which every rank
   builds identically, so the front is the same for any rank count. Returns the count (<= nmax). */
static PetscInt MapParetoStarts(MapPareto p, const double *w, PetscInt nmax, double *X0, double *score)
{
  const int T = p->T;
  PetscInt  n = 1;

  for (int j = 0; j < T; j++) {
    X0[j] = 0;
    for (int i = 0; i < p->m; i++) X0[j] += w[i] * p->anchors[i * T + j];
    X0[j] = PetscMin(p->hi, PetscMax(p->lo, X0[j]));
  }
  for (PetscInt u = 0; u < p->kpool; u++) score[u] = MapParetoScalarValueF(p, w, p->poolF + u * p->m);
  while (n < nmax) {
    PetscInt best = -1;
    for (PetscInt u = 0; u < p->kpool; u++)
      if (score[u] < PETSC_MAX_REAL && (best < 0 || score[u] < score[best])) best = u;
    if (best < 0) break;
    score[best]       = PETSC_MAX_REAL; /* taken */
    PetscBool repeat = PETSC_FALSE;
    for (PetscInt v = 0; v < n && !repeat; v++) repeat = memcmp(X0 + v * T, p->poolC + best * T, sizeof(double) * T) ? PETSC_FALSE : PETSC_TRUE;
    if (!repeat) memcpy(X0 + n++ * T, p->poolC + best * T, sizeof(double) * T);
  }
  return n;
}

/* best of the solves of preference w from X0[n*T]; *valid = 0 when every start failed */
static PetscErrorCode MapParetoSolvePreference(MapPareto p, const double *w, PetscInt n, const double *X0, double *c, double *f, double *value,
                                               PetscBool *valid, PetscInt *nsolves, PetscInt *nfailed)
{
  const int T = p->T;
  double   *cs, *fs, v;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(T, &cs, p->m, &fs));
  *valid = PETSC_FALSE;
  *value = PETSC_MAX_REAL;
  for (PetscInt s = 0; s < n; s++) {
    PetscBool ok;
    PetscCall(MapParetoSolveScalar(p, w, -1, X0 + s * T, cs, &ok));
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
  PetscCall(PetscFree2(cs, fs));
  PetscFunctionReturn(0);
}

/* ideal point, single-objective optima (anchors), nadir estimate, ranges, utopia, and the start
   pool. Objective i is maximised on rank i % size (from MAP_PARETO_ANCHOR_STARTS starts, at least
   -map_pareto_starts) and broadcast from there, so every rank holds the same bits for any rank
   count. Collective. */
#define MAP_PARETO_ANCHOR_STARTS 4
static PetscErrorCode MapParetoComputeIdeal(MapPareto p)
{
  const int   T = p->T, m = p->m;
  PetscMPIInt rank, size;
  double     *buf, *x0, *cs, *f;
  PetscInt    nbuf = 2 + T, nstart = PetscMax(p->starts, MAP_PARETO_ANCHOR_STARTS);

  PetscFunctionBegin;
  if (p->have_ideal) PetscFunctionReturn(0);
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapPareto: call MapParetoSetObjectives before solving");
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  PetscCall(PetscFree5(p->ideal, p->nadir, p->range, p->utopia, p->anchors));
  PetscCall(PetscMalloc5(m, &p->ideal, m, &p->nadir, m, &p->range, m, &p->utopia, m * T, &p->anchors));
  PetscCall(PetscMalloc1(m * nbuf, &buf));
  PetscCall(PetscMalloc3(T, &x0, T, &cs, m, &f));
  for (int i = 0; i < m; i++) {
    double *b = buf + i * nbuf; /* [found, f_i, anchor] */
    if (i % size != rank) continue;
    b[0] = 0;
    for (PetscInt s = 0; s < nstart; s++) {
      PetscBool ok;
      MapParetoAnchorStart(p, i, s, x0);
      PetscCall(MapParetoSolveScalar(p, NULL, i, x0, cs, &ok));
      p->nsolves++;
      if (!ok) {
        p->nfailed++;
        continue;
      }
      PetscCall(p->fn(p->ctx, cs, f, NULL));
      if (isfinite(f[i]) && (b[0] == 0 || f[i] > b[1])) {
        b[0] = 1;
        b[1] = f[i];
        PetscCall(PetscArraycpy(b + 2, cs, T));
      }
    }
  }
  for (int i = 0; i < m; i++) PetscCallMPI(MPI_Bcast(buf + i * nbuf, (PetscMPIInt)nbuf, MPI_DOUBLE, (PetscMPIInt)(i % size), p->comm));
  for (int i = 0; i < m; i++) {
    PetscCheck(buf[i * nbuf] != 0, p->comm, PETSC_ERR_NOT_CONVERGED,
               "Pareto search: every TAO solve maximising objective %d alone failed (%" PetscInt_FMT " starts); run with -info for the TAO errors", i,
               nstart);
    PetscCall(PetscArraycpy(p->anchors + i * T, buf + i * nbuf + 2, T));
    p->ideal[i] = buf[i * nbuf + 1];
  }
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
  /* the start pool: the box centre, the anchors, seeded uniform draws; objectives evaluated on every
     rank (cheap next to one TAO solve, and the same bits everywhere) */
  PetscCall(PetscFree2(p->poolC, p->poolF));
  p->kpool = PetscMax(p->npool, 1 + m);
  PetscCall(PetscMalloc2(p->kpool * T, &p->poolC, p->kpool * m, &p->poolF));
  for (PetscInt u = 0; u < p->kpool; u++) {
    double *c = p->poolC + u * T;
    if (u == 0)
      for (int j = 0; j < T; j++) c[j] = 0.5 * (p->lo + p->hi);
    else if (u <= m) PetscCall(PetscArraycpy(c, p->anchors + (u - 1) * T, T));
    else
      for (int j = 0; j < T; j++) c[j] = p->lo + (p->hi - p->lo) * MapRngU01(p->seed, MAP_PARETO_STREAM_POOL, (uint64_t)(u * T + j));
    PetscCall(p->fn(p->ctx, c, p->poolF + u * m, NULL));
  }
  p->have_ideal = PETSC_TRUE;
  PetscCall(PetscFree3(x0, cs, f));
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}

/* every rank's per-preference records (stride elements of the MPI type `type`, `bytes` bytes each;
   record i of rank r is preference order[displs[r]/stride + i]; counts and displs in elements) into
   `all`, in preference order */
static PetscErrorCode MapParetoGather(MPI_Comm comm, MPI_Datatype type, size_t bytes, PetscInt stride, const PetscInt *order, const void *local,
                                      const PetscMPIInt *counts, const PetscMPIInt *displs, void *gathered, void *all)
{
  PetscMPIInt rank, size;
  size_t      rec = (size_t)stride * bytes;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Allgatherv(local, counts[rank], type, gathered, counts, displs, type, comm));
  for (PetscMPIInt r = 0; r < size; r++)
    for (PetscInt i = 0; i < counts[r] / stride; i++) {
      PetscInt k = displs[r] / stride + i;
      memcpy((char *)all + (size_t)order[k] * rec, (char *)gathered + (size_t)k * rec, rec);
    }
  PetscFunctionReturn(0);
}

/* The front: the valid points that no other valid point dominates, less those whose c lies within
   1e-6 (hi - lo) (max norm) of an earlier non-dominated one; in preference order. Each rank decides
   for its own preferences (O(N^2 / size) per rank: a replicated filter was half of the search time at
   2 ranks with N = 1600) and the flags are gathered. Collective. */
static PetscErrorCode MapParetoFilter(MapPareto p, PetscInt N, const double *R, PetscInt stride, const double *Wall, const PetscInt *order,
                                      const PetscMPIInt *counts, const PetscMPIInt *displs)
{
  const int       T = p->T, m = p->m;
  double          tol = 1e-6 * (p->hi - p->lo);
  PetscMPIInt     rank, size, *cnt, *dsp;
  int            *flag, *gathered, *nondom, *keep;
  PetscInt        nloc, k = 0;
  const PetscInt *mine;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  PetscCall(PetscMalloc2(size, &cnt, size, &dsp));
  for (PetscMPIInt r = 0; r < size; r++) {
    cnt[r] = (PetscMPIInt)(counts[r] / stride);
    dsp[r] = (PetscMPIInt)(displs[r] / stride);
  }
  nloc = cnt[rank];
  mine = order + dsp[rank];
  PetscCall(PetscMalloc4(nloc + 1, &flag, N, &gathered, N, &nondom, N, &keep));
  for (PetscInt i = 0; i < nloc; i++) {
    PetscInt      q = mine[i];
    const double *f = R + q * stride + 2 + T;
    flag[i]         = R[q * stride] != 0;
    for (PetscInt j = 0; j < N && flag[i]; j++)
      if (j != q && R[j * stride] != 0 && MapDominates(m, R + j * stride + 2 + T, f)) flag[i] = 0;
  }
  PetscCall(MapParetoGather(p->comm, MPI_INT, sizeof(int), 1, order, flag, cnt, dsp, gathered, nondom));
  for (PetscInt i = 0; i < nloc; i++) {
    PetscInt      q = mine[i];
    const double *c = R + q * stride + 2;
    flag[i]         = nondom[q];
    for (PetscInt j = 0; j < q && flag[i]; j++) {
      if (!nondom[j]) continue;
      double d = 0;
      for (int t = 0; t < T; t++) d = PetscMax(d, PetscAbsReal(R[j * stride + 2 + t] - c[t]));
      if (d < tol) flag[i] = 0;
    }
  }
  PetscCall(MapParetoGather(p->comm, MPI_INT, sizeof(int), 1, order, flag, cnt, dsp, gathered, keep));
  for (PetscInt q = 0; q < N; q++) k += keep[q];
  PetscCall(PetscFree3(p->C, p->F, p->W));
  PetscCall(PetscMalloc3(k * T + 1, &p->C, k * m + 1, &p->F, k * m + 1, &p->W));
  k = 0;
  for (PetscInt q = 0; q < N; q++) {
    if (!keep[q]) continue;
    PetscCall(PetscArraycpy(p->C + k * T, R + q * stride + 2, T));
    PetscCall(PetscArraycpy(p->F + k * m, R + q * stride + 2 + T, m));
    PetscCall(PetscArraycpy(p->W + k * m, Wall + q * m, m));
    k++;
  }
  p->k = k;
  PetscCall(PetscFree4(flag, gathered, nondom, keep));
  PetscCall(PetscFree2(cnt, dsp));
  PetscFunctionReturn(0);
}

/*
  MapParetoView - prints the search: scalarisation and solver, preference lattice, starts, pool,
  polishing, chains, tolerances, box and seed; after Solve also the preference vectors, TAO solves
  (failed ones), polished preferences, the front's size and the ideal and nadir points. viewer NULL:
  stdout of the object's communicator. -map_pareto_view [ascii:FILE] prints it after each Solve.
  Collective.
*/
PetscErrorCode MapParetoView(MapPareto p, PetscViewer viewer)
{
  PetscBool ascii;
  PetscInt  H = p->divisions > 0 ? p->divisions : (p->m > 0 ? MapParetoDefaultDivisions(p->m) : 0);

  PetscFunctionBegin;
  if (!viewer) viewer = PETSC_VIEWER_STDOUT_(p->comm);
  PetscCall(PetscObjectTypeCompare((PetscObject)viewer, PETSCVIEWERASCII, &ascii));
  if (!ascii) PetscFunctionReturn(0);
  PetscCall(PetscViewerASCIIPrintf(viewer, "MapPareto: %s scalarisation%s, %d objectives over %d coefficients in [%g, %g]^T\n",
                                   MapParetoScalarizations[p->scal],
                                   p->scal == MAP_PARETO_CHEBYSHEV ? (p->solver == MAP_PARETO_EPIGRAPH ? " (epigraph form, TAOALMM)" : " (smooth max)") : "",
                                   p->m, p->T, p->lo, p->hi));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  PetscCall(PetscViewerASCIIPrintf(viewer, "preferences: Das-Dennis lattice, %" PetscInt_FMT " divisions%s, in chains of %" PetscInt_FMT "\n", H,
                                   p->divisions > 0 ? "" : " (from the number of objectives)", p->chain));
  PetscCall(PetscViewerASCIIPrintf(viewer, "starts per preference: %" PetscInt_FMT " (pool of %" PetscInt_FMT " seeded points, seed %llu); polishing rounds: %" PetscInt_FMT "\n",
                                   p->starts, p->npool, (unsigned long long)p->seed, p->polish));
  PetscCall(PetscViewerASCIIPrintf(viewer, "rho %g, TAO gatol %g, smooth-max temperature %g -> %g\n", p->rho, p->gatol, p->tau_start, p->tau_final));
  if (p->npref > 0) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "last solve: %" PetscInt_FMT " preference vectors, %" PetscInt_FMT " TAO solves (%" PetscInt_FMT
                                     " failed), %" PetscInt_FMT " preferences improved by polishing, %" PetscInt_FMT " front points\n",
                                     p->npref, p->nsolves, p->nfailed, p->npolished, p->k));
  }
  if (p->have_ideal) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "ideal:"));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_FALSE));
    for (int i = 0; i < p->m; i++) PetscCall(PetscViewerASCIIPrintf(viewer, " %.6g", p->ideal[i]));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_TRUE));
    PetscCall(PetscViewerASCIIPrintf(viewer, "nadir:"));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_FALSE));
    for (int i = 0; i < p->m; i++) PetscCall(PetscViewerASCIIPrintf(viewer, " %.6g", p->nadir[i]));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_TRUE));
  }
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscFunctionReturn(0);
}

/* -map_pareto_view [ascii:FILE]: MapParetoView after Solve (as -tao_view after TaoSolve) */
static PetscErrorCode MapParetoViewFromOptions(MapPareto p)
{
  PetscViewer       viewer;
  PetscViewerFormat format;
  PetscBool         flg;

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetViewer(p->comm, NULL, NULL, "-map_pareto_view", &viewer, &format, &flg));
  if (!flg) PetscFunctionReturn(0);
  PetscCall(PetscViewerPushFormat(viewer, format));
  PetscCall(MapParetoView(p, viewer));
  PetscCall(PetscViewerPopFormat(viewer));
  PetscCall(PetscViewerDestroy(&viewer));
  PetscFunctionReturn(0);
}

/*
  MapParetoSolve - the Pareto set of the objectives over the box. Collective.

  1. ideal point and single-objective optima (objective i on rank i % size, broadcast); the start
     pool (box centre, anchors, -map_pareto_pool seeded points) with its objectives, on every rank;
  2. preference vectors: the Das-Dennis lattice with H divisions (corners included), cut into chains
     of -map_pareto_chain consecutive vectors dealt cyclically to the ranks; the first vector of a
     chain is solved from -map_pareto_starts starts (the weighted mix of the anchors, then the pool
     points that score best for it) and the best kept, every later one from its predecessor's
     solution;
  3. MPI_Allgatherv in preference order;
  4. polishing (-map_pareto_polish rounds): a preference for which the gathered solution of another
     preference scores better than its own is solved again from that point (the problem is
     multimodal; neighbouring preferences share basins). Every round starts from the complete
     gathered set, so it too is independent of how the preferences are spread over the ranks;
  5. non-dominated filter; near-duplicates merged (each rank filters its own preferences against all).
  Failed TAO solves are trapped, counted and reported; the result is bitwise the same for any
  rank count.
*/
PetscErrorCode MapParetoSolve(MapPareto p)
{
  const int    T = p->T, m = p->m;
  PetscMPIInt  rank, size, *counts, *displs;
  PetscInt     N, H, nloc, nchain, stride = 2 + T + m, stats[4], gstats[4], nmax, *order;
  const PetscInt *mine;
  double      *Wall, *local, *all, *gathered, *X0, *score, *cs, *fs;

  PetscFunctionBegin;
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapParetoSolve: call MapParetoSetObjectives first");
  PetscCall(PetscLogEventBegin(MAP_EVENT_ParetoSolve, 0, 0, 0, 0));
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  p->nsolves = p->nfailed = p->npolished = 0;
  PetscCall(MapParetoComputeIdeal(p));
  H = p->divisions > 0 ? p->divisions : MapParetoDefaultDivisions(m);
  PetscCall(MapParetoPreferences(m, H, &N, &Wall));
  PetscCheck((double)N * stride < 2e9, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "Pareto search: %" PetscInt_FMT " preference vectors are too many to gather", N);
  /* chains of -map_pareto_chain consecutive lattice vectors (neighbours in preference space), chain k
     on rank k % size: the first member of a chain is solved from its own starts, each later one from
     its predecessor's solution, which lies close to its own (1.5x faster; off by default: on the
     T = 8 default a chain carried a worse basin into the centre of the front). With chains of 1 every
     preference is solved from its own starts and dealt cyclically. The chains do not depend on the rank count, and results are put back in preference order after
     every gather, so neither does the front. Cyclic over chains: the costly and the cheap parts of
     the lattice mix (a contiguous split left the busiest rank with 1.4x the work). */
  nchain = (N + p->chain - 1) / p->chain;
  PetscCall(PetscMalloc3(N, &order, size, &counts, size, &displs));
  for (PetscMPIInt r = 0, k = 0; r < size; r++) {
    displs[r] = (PetscMPIInt)(k * stride);
    for (PetscInt ch = r; ch < nchain; ch += size)
      for (PetscInt q = ch * p->chain; q < PetscMin(N, (ch + 1) * p->chain); q++) order[k++] = q;
    counts[r] = (PetscMPIInt)(k * stride) - displs[r];
  }
  nloc = counts[rank] / stride;
  mine = order + displs[rank] / stride;
  nmax = PetscMin(p->starts, p->kpool + 1);
  PetscCall(PetscMalloc5(nmax * T, &X0, PetscMax(p->kpool, N), &score, T, &cs, m, &fs, N * stride, &all));
  PetscCall(PetscMalloc1(N * stride, &gathered));
  PetscCall(PetscCalloc1(nloc * stride + 1, &local));
  for (PetscInt i = 0; i < nloc; i++) {
    PetscInt  q = mine[i], n;
    double   *r = local + i * stride;
    PetscBool valid;
    if (q % p->chain && r[-stride] != 0) { /* a later chain member whose predecessor was solved */
      n = 1;
      PetscCall(PetscArraycpy(X0, r - stride + 2, T));
    } else n = MapParetoStarts(p, Wall + q * m, nmax, X0, score);
    PetscCall(MapParetoSolvePreference(p, Wall + q * m, n, X0, r + 2, r + 2 + T, &r[1], &valid, &p->nsolves, &p->nfailed));
    r[0] = valid ? 1 : 0;
  }
  PetscCall(MapParetoGather(p->comm, MPI_DOUBLE, sizeof(double), stride, order, local, counts, displs, gathered, all));
  for (PetscInt round = 0; round < p->polish; round++) {
    PetscInt changed = 0, gchanged;
    for (PetscInt i = 0; i < nloc; i++) {
      PetscInt      q = mine[i];
      const double *w = Wall + q * m;
      double       *r = local + i * stride, v, own = r[0] != 0 ? r[1] : PETSC_MAX_REAL;
      PetscInt      best = -1;
      PetscBool     valid;
      /* the gathered solution that scores best for w, if clearly better than w's own */
      for (PetscInt j = 0; j < N; j++) {
        if (j == q || all[j * stride] == 0) continue;
        v = MapParetoScalarValueF(p, w, all + j * stride + 2 + T);
        if (v < own - 1e-9 * (1 + PetscAbsReal(own)) && (best < 0 || v < score[0])) {
          best     = j;
          score[0] = v;
        }
      }
      if (best < 0) continue;
      PetscCall(MapParetoSolvePreference(p, w, 1, all + best * stride + 2, cs, fs, &v, &valid, &p->nsolves, &p->nfailed));
      if (!valid || v > score[0]) { /* TAO went uphill from there: keep the point itself */
        v = score[0];
        PetscCall(PetscArraycpy(cs, all + best * stride + 2, T));
        PetscCall(PetscArraycpy(fs, all + best * stride + 2 + T, m));
      }
      r[0] = 1;
      r[1] = v;
      PetscCall(PetscArraycpy(r + 2, cs, T));
      PetscCall(PetscArraycpy(r + 2 + T, fs, m));
      changed++;
    }
    PetscCallMPI(MPI_Allreduce(&changed, &gchanged, 1, MPIU_INT, MPI_SUM, p->comm));
    p->npolished += changed;
    if (!gchanged) break;
    PetscCall(MapParetoGather(p->comm, MPI_DOUBLE, sizeof(double), stride, order, local, counts, displs, gathered, all));
  }
  PetscCall(MapParetoFilter(p, N, all, stride, Wall, order, counts, displs));
  stats[0] = p->nsolves;
  stats[1] = p->nfailed;
  stats[2] = p->npolished;
  stats[3] = 0;
  for (PetscInt q = 0; q < N; q++) stats[3] += all[q * stride] == 0; /* the same on every rank */
  PetscCallMPI(MPI_Allreduce(stats, gstats, 3, MPIU_INT, MPI_SUM, p->comm));
  gstats[3]    = stats[3];
  p->npref     = N;
  p->nsolves   = gstats[0];
  p->nfailed   = gstats[1];
  p->npolished = gstats[2];
  if (gstats[1])
    PetscCall(PetscPrintf(p->comm, "Pareto search: %" PetscInt_FMT " of %" PetscInt_FMT " TAO solves failed and were skipped (%" PetscInt_FMT
                                   " preference vectors without any solution); -info shows the errors\n",
                          gstats[1], gstats[0], gstats[3]));
  PetscCheck(p->k > 0, p->comm, PETSC_ERR_NOT_CONVERGED, "Pareto search: no preference vector of %" PetscInt_FMT " gave a solution", N);
  PetscCall(PetscInfo(NULL, "MapParetoSolve: %" PetscInt_FMT " preferences (H=%" PetscInt_FMT "), %" PetscInt_FMT " front points, %" PetscInt_FMT
                            " solves, %" PetscInt_FMT " preferences improved by polishing\n",
                      N, H, p->k, p->nsolves, p->npolished));
  PetscCall(PetscFree3(order, counts, displs));
  PetscCall(PetscFree5(X0, score, cs, fs, all));
  PetscCall(PetscFree(local));
  PetscCall(PetscFree(gathered));
  PetscCall(PetscFree(Wall));
  PetscCall(PetscLogEventEnd(MAP_EVENT_ParetoSolve, 0, 0, 0, 0));
  PetscCall(MapParetoViewFromOptions(p));
  PetscFunctionReturn(0);
}

/*
  MapParetoPick - the solution of the scalarised problem (the same scalarisation as the search) for
  the preference w[m] (non-negative, normalised to sum 1 inside): c[T] and f[m]. Rank 0 solves,
  from max(-map_pareto_starts, 8) starts plus the front point that scores best for w (when a front exists), and
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
    double   *X0, *score, best = PETSC_MAX_REAL, v, value;
    /* one preference: afford more starts than the search does (the pick is what users take) */
    PetscInt  n, nmax = PetscMin(PetscMax(p->starts, 8), p->kpool + 1), extra = -1, ns = 0, nf = 0;
    PetscBool valid;
    PetscCall(PetscMalloc2((nmax + 1) * T, &X0, p->kpool, &score));
    n = MapParetoStarts(p, wn, nmax, X0, score);
    for (PetscInt u = 0; u < p->k; u++) {
      v = MapParetoScalarValueF(p, wn, p->F + u * m);
      if (v < best) {
        best  = v;
        extra = u;
      }
    }
    if (extra >= 0) PetscCall(PetscArraycpy(X0 + n++ * T, p->C + extra * T, T));
    PetscCall(MapParetoSolvePreference(p, wn, n, X0, buf + 1, buf + 1 + T, &value, &valid, &ns, &nf));
    buf[0] = valid ? 1 : 0;
    PetscCall(PetscFree2(X0, score));
  }
  PetscCallMPI(MPI_Bcast(buf, 1 + T + m, MPI_DOUBLE, 0, p->comm));
  PetscCheck(buf[0] != 0, p->comm, PETSC_ERR_NOT_CONVERGED, "MapParetoPick: every TAO solve for the preference failed; run with -info for the errors");
  PetscCall(PetscArraycpy(c, buf + 1, T));
  PetscCall(PetscArraycpy(f, buf + 1 + T, m));
  PetscCall(PetscFree2(wn, buf));
  PetscFunctionReturn(0);
}
