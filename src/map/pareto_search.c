/* pareto_search: MapParetoSolve and MapParetoPick (docs/design.md §5.4) — reference points and the
 * start pool, the preferences dealt to the ranks in chains, gathering in preference order,
 * polishing, the non-dominated filter. One scalarised problem is solved in pareto_tao.c. */
#include "paretoimpl.h"
#include <petsctao.h>
#include <math.h>

/* RNG streams of the start points */
#define MAP_PARETO_STREAM_ANCHOR 0x414e4348ULL /* "ANCH" + objective */
#define MAP_PARETO_STREAM_POOL   0x504f4f4cULL /* "POOL" */

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
    score[best]      = PETSC_MAX_REAL; /* taken */
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

/* the state of one MapParetoSolve: the lattice Wall[N*m]; rows of `stride` doubles (valid, value,
   c[T], f[m]) of my nloc preferences (local, in the order of mine[]) and of all N after a gather
   (all, in preference order); the deal (order, counts, displs); work arrays */
typedef struct {
  PetscMPIInt     rank, size, *counts, *displs;
  PetscInt        N, stride, nloc, nmax, *order;
  const PetscInt *mine;
  double         *Wall, *local, *all, *gathered, *X0, *score, *cs, *fs;
} MapParetoSearch;

/* chains of -map_pareto_chain consecutive lattice vectors (neighbours in preference space), chain k
   on rank k % size: the first member of a chain is solved from its own starts, each later one from
   its predecessor's solution, which lies close to its own (1.5x faster; off by default: on the
   T = 8 default a chain carried a worse basin into the centre of the front). With chains of 1 every
   preference is solved from its own starts and dealt cyclically. The chains do not depend on the rank count, and results are put back in preference order after
   every gather, so neither does the front. Cyclic over chains: the costly and the cheap parts of
   the lattice mix (a contiguous split left the busiest rank with 1.4x the work). */
static PetscErrorCode MapParetoDeal(MapPareto p, MapParetoSearch *S)
{
  const PetscInt N = S->N, stride = S->stride, nchain = (N + p->chain - 1) / p->chain;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(N, &S->order, S->size, &S->counts, S->size, &S->displs));
  for (PetscMPIInt r = 0, k = 0; r < S->size; r++) {
    S->displs[r] = (PetscMPIInt)(k * stride);
    for (PetscInt ch = r; ch < nchain; ch += S->size)
      for (PetscInt q = ch * p->chain; q < PetscMin(N, (ch + 1) * p->chain); q++) S->order[k++] = q;
    S->counts[r] = (PetscMPIInt)(k * stride) - S->displs[r];
  }
  S->nloc = S->counts[S->rank] / stride;
  S->mine = S->order + S->displs[S->rank] / stride;
  PetscFunctionReturn(0);
}

/* my preferences, each from its starts (or from its chain predecessor's solution) */
static PetscErrorCode MapParetoSolveMine(MapPareto p, MapParetoSearch *S)
{
  const int      T = p->T, m = p->m;
  const PetscInt stride = S->stride;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < S->nloc; i++) {
    PetscInt  q = S->mine[i], n;
    double   *r = S->local + i * stride;
    PetscBool valid;
    if (q % p->chain && r[-stride] != 0) { /* a later chain member whose predecessor was solved */
      n = 1;
      PetscCall(PetscArraycpy(S->X0, r - stride + 2, T));
    } else n = MapParetoStarts(p, S->Wall + q * m, S->nmax, S->X0, S->score);
    PetscCall(MapParetoSolvePreference(p, S->Wall + q * m, n, S->X0, r + 2, r + 2 + T, &r[1], &valid, &p->nsolves, &p->nfailed));
    r[0] = valid ? 1 : 0;
  }
  PetscFunctionReturn(0);
}

/* one polishing round over my preferences: each one for which another's gathered solution scores
   clearly better is solved again from there; *changed = how many were replaced */
static PetscErrorCode MapParetoPolishMine(MapPareto p, MapParetoSearch *S, PetscInt *changed)
{
  const int      T = p->T, m = p->m;
  const PetscInt stride = S->stride, N = S->N;
  double        *all = S->all, *score = S->score, *cs = S->cs, *fs = S->fs;

  PetscFunctionBegin;
  *changed = 0;
  for (PetscInt i = 0; i < S->nloc; i++) {
    PetscInt      q = S->mine[i];
    const double *w = S->Wall + q * m;
    double       *r = S->local + i * stride, v, own = r[0] != 0 ? r[1] : PETSC_MAX_REAL;
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
    (*changed)++;
  }
  PetscFunctionReturn(0);
}

/* the statistics summed over the ranks; failed solves reported once */
static PetscErrorCode MapParetoSumStatistics(MapPareto p, const MapParetoSearch *S)
{
  PetscInt stats[4], gstats[4];

  PetscFunctionBegin;
  stats[0] = p->nsolves;
  stats[1] = p->nfailed;
  stats[2] = p->npolished;
  stats[3] = 0;
  for (PetscInt q = 0; q < S->N; q++) stats[3] += S->all[q * S->stride] == 0; /* the same on every rank */
  PetscCallMPI(MPI_Allreduce(stats, gstats, 3, MPIU_INT, MPI_SUM, p->comm));
  gstats[3]    = stats[3];
  p->npref     = S->N;
  p->nsolves   = gstats[0];
  p->nfailed   = gstats[1];
  p->npolished = gstats[2];
  if (gstats[1])
    PetscCall(PetscPrintf(p->comm, "Pareto search: %" PetscInt_FMT " of %" PetscInt_FMT " TAO solves failed and were skipped (%" PetscInt_FMT " preference vectors without any solution); -info shows the errors\n",
                          gstats[1], gstats[0], gstats[3]));
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
  const int       T = p->T, m = p->m;
  PetscInt        H;
  MapParetoSearch S;

  PetscFunctionBegin;
  PetscCheck(p->fn, p->comm, PETSC_ERR_ORDER, "MapParetoSolve: call MapParetoSetObjectives first");
  PetscCall(PetscLogEventBegin(MAP_EVENT_ParetoSolve, 0, 0, 0, 0));
  PetscCallMPI(MPI_Comm_rank(p->comm, &S.rank));
  PetscCallMPI(MPI_Comm_size(p->comm, &S.size));
  S.stride   = 2 + T + m;
  p->nsolves = p->nfailed = p->npolished = 0;
  PetscCall(MapParetoComputeIdeal(p));
  H = p->divisions > 0 ? p->divisions : MapParetoDefaultDivisions(m);
  PetscCall(MapParetoPreferences(m, H, &S.N, &S.Wall));
  PetscCheck((double)S.N * S.stride < 2e9, p->comm, PETSC_ERR_ARG_OUTOFRANGE, "Pareto search: %" PetscInt_FMT " preference vectors are too many to gather", S.N);
  PetscCall(MapParetoDeal(p, &S));
  S.nmax = PetscMin(p->starts, p->kpool + 1);
  PetscCall(PetscMalloc5(S.nmax * T, &S.X0, PetscMax(p->kpool, S.N), &S.score, T, &S.cs, m, &S.fs, S.N * S.stride, &S.all));
  PetscCall(PetscMalloc1(S.N * S.stride, &S.gathered));
  PetscCall(PetscCalloc1(S.nloc * S.stride + 1, &S.local));
  PetscCall(MapParetoSolveMine(p, &S));
  PetscCall(MapParetoGather(p->comm, MPI_DOUBLE, sizeof(double), S.stride, S.order, S.local, S.counts, S.displs, S.gathered, S.all));
  for (PetscInt round = 0; round < p->polish; round++) {
    PetscInt changed, gchanged;
    PetscCall(MapParetoPolishMine(p, &S, &changed));
    PetscCallMPI(MPI_Allreduce(&changed, &gchanged, 1, MPIU_INT, MPI_SUM, p->comm));
    p->npolished += changed;
    if (!gchanged) break;
    PetscCall(MapParetoGather(p->comm, MPI_DOUBLE, sizeof(double), S.stride, S.order, S.local, S.counts, S.displs, S.gathered, S.all));
  }
  PetscCall(MapParetoFilter(p, S.N, S.all, S.stride, S.Wall, S.order, S.counts, S.displs));
  PetscCall(MapParetoSumStatistics(p, &S));
  PetscCheck(p->k > 0, p->comm, PETSC_ERR_NOT_CONVERGED, "Pareto search: no preference vector of %" PetscInt_FMT " gave a solution", S.N);
  PetscCall(PetscInfo(NULL, "MapParetoSolve: %" PetscInt_FMT " preferences (H=%" PetscInt_FMT "), %" PetscInt_FMT " front points, %" PetscInt_FMT " solves, %" PetscInt_FMT " preferences improved by polishing\n",
                      S.N, H, p->k, p->nsolves, p->npolished));
  PetscCall(PetscFree3(S.order, S.counts, S.displs));
  PetscCall(PetscFree5(S.X0, S.score, S.cs, S.fs, S.all));
  PetscCall(PetscFree(S.local));
  PetscCall(PetscFree(S.gathered));
  PetscCall(PetscFree(S.Wall));
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
    double *X0, *score, best = PETSC_MAX_REAL, v, value;
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
