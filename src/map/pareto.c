/* pareto: the MapPareto object — life cycle, options, View — and the Das-Dennis preference lattice
 * (docs/design.md §5.4). The parallel search over preferences is in pareto_search.c, the TAO solves
 * of one scalarised problem in pareto_tao.c and pareto_newton.c. */
#include "paretoimpl.h"
#include <petsctao.h>
#include <math.h>

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
PetscInt MapParetoDefaultDivisions(int m)
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
    PetscCall(PetscViewerASCIIPrintf(viewer, "last solve: %" PetscInt_FMT " preference vectors, %" PetscInt_FMT " TAO solves (%" PetscInt_FMT " failed), %" PetscInt_FMT " preferences improved by polishing, %" PetscInt_FMT " front points\n",
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
PetscErrorCode MapParetoViewFromOptions(MapPareto p)
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
