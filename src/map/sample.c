/* sample: designs of coefficient vectors (reference, Latin hypercube, file) and the
 * identifiability check of the quadratic surrogate (docs/design.md §5.1). */
#include <mapmerge/sample.h>
#include <math.h>

/* RNG streams: one per purpose, so the design points never share draws. */
#define MAP_SAMPLE_STREAM_LHS_ORDER  0x4c48534fULL /* "LHSO" + coordinate */
#define MAP_SAMPLE_STREAM_LHS_OFFSET 0x4c48534eULL /* "LHSN" + coordinate */
#define MAP_SAMPLE_SEED_REFERENCE    0x52454644ULL /* "REFD": reference design's LHS fill */

typedef struct {
  double   key;
  PetscInt index;
} MapSampleKey;

static int MapSampleKeyCompare(const void *a, const void *b)
{
  const MapSampleKey *x = (const MapSampleKey *)a, *y = (const MapSampleKey *)b;
  if (x->key < y->key) return -1;
  if (x->key > y->key) return 1;
  return (x->index > y->index) - (x->index < y->index);
}

/* Latin hypercube: in coordinate j the n points take the n strata [k/n, (k+1)/n) in the order of
   the keys U(seed, j, point); inside the stratum at the offset U(seed, j', point). Every draw is
   keyed on (point, coordinate), so no rank count or call order can change a point. */
static PetscErrorCode MapSampleLHS(int T, PetscInt n, double lo, double hi, uint64_t seed, double *C, PetscInt ldc)
{
  MapSampleKey *keys;

  PetscFunctionBegin;
  if (n <= 0) PetscFunctionReturn(0);
  PetscCall(PetscMalloc1(n, &keys));
  for (int j = 0; j < T; j++) {
    for (PetscInt p = 0; p < n; p++) {
      keys[p].key   = MapRngU01(seed, MAP_SAMPLE_STREAM_LHS_ORDER + ((uint64_t)j << 32), (uint64_t)p);
      keys[p].index = p;
    }
    qsort(keys, (size_t)n, sizeof(*keys), MapSampleKeyCompare);
    for (PetscInt k = 0; k < n; k++) {
      PetscInt p     = keys[k].index;
      double   off   = MapRngU01(seed, MAP_SAMPLE_STREAM_LHS_OFFSET + ((uint64_t)j << 32), (uint64_t)p);
      C[p * ldc + j] = lo + (hi - lo) * (((double)k + off) / (double)n);
    }
  }
  PetscCall(PetscFree(keys));
  PetscFunctionReturn(0);
}

/* The structured part of the reference design, in this order: the T one-hots (the task models),
   the origin (the pretrained model), the centre, and for every pair i<j the point with
   c_i = c_j = hi, others lo. Pairs sit at hi, not at the centre: for T = 2 a centred pair would repeat
   the centre point, and nothing else would sample the corner where both task vectors are added in
   full, where an unsampled quadratic overestimates (bench/map_quality measured the front's
   hypervolume rising from 0.89 to 0.97 of the grid's on flip_v,shift). Returns the number of points
   written (at most nmax). */
static PetscInt MapSampleReferenceStructured(int T, double lo, double hi, PetscInt nmax, double *C)
{
  PetscInt np  = 0;
  double   mid = lo + 0.5 * (hi - lo);

#define MAP_SAMPLE_NEWPOINT(fill) \
  do { \
    if (np >= nmax) return np; \
    for (int k = 0; k < T; k++) C[np * T + k] = (fill); \
  } while (0)
  for (int i = 0; i < T; i++) {
    MAP_SAMPLE_NEWPOINT(lo);
    C[np * T + i] = hi;
    np++;
  }
  MAP_SAMPLE_NEWPOINT(lo);
  np++;
  MAP_SAMPLE_NEWPOINT(mid);
  np++;
  for (int i = 0; i < T; i++) {
    for (int j = i + 1; j < T; j++) {
      MAP_SAMPLE_NEWPOINT(lo);
      C[np * T + i] = hi;
      C[np * T + j] = hi;
      np++;
    }
  }
#undef MAP_SAMPLE_NEWPOINT
  return np;
}

/*
  MapSampleGenerate - a design of coefficient vectors in [lo,hi]^T.

  Not collective: every rank computes the same points (all draws are counter-based).

  Input:
+ type       - MAP_SAMPLE_REFERENCE, MAP_SAMPLE_LHS or MAP_SAMPLE_FILE
. T          - number of tasks (coordinates)
. task_names - the T task names (only for file)
. n          - number of points; n <= 0 means the default (T+1)(T+2) for reference (required > 0 for lhs;
               ignored for file, which takes every row)
. lo, hi     - the box
. seed       - the run seed
- file       - the CSV for file

  Output:
+ nout - number of points
- C    - nout*T row-major (PetscFree)

  The reference design is ours, not the paper's lattice (which degenerates to {0,1}^T for T >= 8,
  where c_i^2 = c_i and the quadratic is not identifiable): the T one-hots, the origin, the
  centre, all pairs (c_i = c_j = hi), then a seeded Latin-hypercube fill up to n points, whose
  continuous levels make the quadratic identifiable for any T.
*/
PetscErrorCode MapSampleGenerate(MapSampleType type, int T, const char *const *task_names, PetscInt n, double lo, double hi,
                                 uint64_t seed, const char *file, PetscInt *nout, double **C)
{
  PetscFunctionBegin;
  *nout = 0;
  *C    = NULL;
  PetscCheck(T >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "sampler: number of tasks must be >= 1, got %d", T);
  if (type != MAP_SAMPLE_FILE)
    PetscCheck(lo < hi && isfinite(lo) && isfinite(hi), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_box: need finite lo < hi, got %g,%g", lo, hi);
  switch (type) {
  case MAP_SAMPLE_REFERENCE: {
    PetscInt ntot = n > 0 ? n : (PetscInt)(T + 1) * (T + 2);
    PetscCall(PetscMalloc1(ntot * T, C));
    PetscInt ns = MapSampleReferenceStructured(T, lo, hi, ntot, *C);
    PetscCall(MapSampleLHS(T, ntot - ns, lo, hi, MapRngU64(seed, MAP_SAMPLE_SEED_REFERENCE, 0), *C + ns * T, T));
    *nout = ntot;
  } break;
  case MAP_SAMPLE_LHS:
    PetscCheck(n > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
               "-map_sample_type lhs needs -map_sample_n > 0 (e.g. %d = 2 x the %d surrogate unknowns), got %" PetscInt_FMT,
               (T + 1) * (T + 2), (T + 1) * (T + 2) / 2, n);
    PetscCall(PetscMalloc1(n * T, C));
    PetscCall(MapSampleLHS(T, n, lo, hi, seed, *C, T));
    *nout = n;
    break;
  case MAP_SAMPLE_FILE:
    PetscCheck(file && file[0], PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "-map_sample_type file needs a CSV file (-map_coeffs)");
    PetscCall(MapReadCoeffCSV(file, T, task_names, nout, C));
    break;
  default:
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_UNKNOWN_TYPE, "sampler: unknown type %d", (int)type);
  }
  PetscFunctionReturn(0);
}

/* Householder QR with column pivoting on A (n x F, column-major, overwritten); returns the
   numerical rank: the count of |R_kk| above tol * |R_00| (columns pre-scaled to unit norm). */
static int MapSampleRankQRCP(PetscInt n, int F, double *A, double tol)
{
  double *norms;
  int     rank = 0, kmax = (int)PetscMin((PetscInt)F, n);
  double  r00 = 0;

  if (PetscMalloc1(F, &norms)) return -1;
  for (int j = 0; j < F; j++) {
    double s = 0;
    for (PetscInt i = 0; i < n; i++) s += A[(size_t)j * n + i] * A[(size_t)j * n + i];
    norms[j] = s;
  }
  for (int k = 0; k < kmax; k++) {
    int p = k;
    for (int j = k + 1; j < F; j++)
      if (norms[j] > norms[p]) p = j;
    if (p != k) {
      for (PetscInt i = 0; i < n; i++) {
        double t             = A[(size_t)k * n + i];
        A[(size_t)k * n + i] = A[(size_t)p * n + i];
        A[(size_t)p * n + i] = t;
      }
      double t = norms[k];
      norms[k] = norms[p];
      norms[p] = t;
    }
    double *a = A + (size_t)k * n, s = 0;
    for (PetscInt i = k; i < n; i++) s += a[i] * a[i];
    double alpha = sqrt(s);
    if (k == 0) r00 = alpha;
    if (!(alpha > tol * r00) || alpha == 0) break;
    rank++;
    /* Householder vector v = a[k:] + sign(a_k) alpha e_k, applied to the remaining columns */
    double beta = a[k] >= 0 ? alpha : -alpha;
    a[k] += beta;
    double vtv = s + 2 * beta * (a[k] - beta) + beta * beta; /* ||v||^2 */
    for (int j = k + 1; j < F; j++) {
      double *b = A + (size_t)j * n, d = 0;
      for (PetscInt i = k; i < n; i++) d += a[i] * b[i];
      d *= 2 / vtv;
      for (PetscInt i = k; i < n; i++) b[i] -= d * a[i];
      /* recompute the trailing norm exactly: downdating loses accuracy at tight tolerances */
      double t = 0;
      for (PetscInt i = k + 1; i < n; i++) t += b[i] * b[i];
      norms[j] = t;
    }
  }
  PetscFree(norms);
  return rank;
}

/*
  MapSampleDesignRank - numerical rank of the quadratic design matrix [1, c_i, c_i c_j (i<=j)] of n
  points, F = (T+1)(T+2)/2 columns. Not collective.

  Each coordinate is first mapped affinely onto [-1,1] by its range in the design (the rank of a
  quadratic design does not change under affine maps, and the scaling keeps the matrix well
  conditioned); columns are scaled to unit norm; then Householder QR with column pivoting in
  double, rank = #{|R_kk| > 1e-9 |R_00|}.
*/
PetscErrorCode MapSampleDesignRank(int T, PetscInt n, const double *C, int *rank, int *F)
{
  double *A, *shift, *scale;
  int     nf = (T + 1) * (T + 2) / 2;

  PetscFunctionBegin;
  PetscCheck(T >= 1 && n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "design rank: need T >= 1 and n >= 0, got T=%d n=%" PetscInt_FMT,
             T, n);
  *F    = nf;
  *rank = 0;
  if (n == 0) PetscFunctionReturn(0);
  PetscCall(PetscMalloc3((size_t)n * nf, &A, T, &shift, T, &scale));
  for (int j = 0; j < T; j++) {
    double mn = C[j], mx = C[j];
    for (PetscInt p = 1; p < n; p++) {
      mn = PetscMin(mn, C[p * T + j]);
      mx = PetscMax(mx, C[p * T + j]);
    }
    shift[j] = 0.5 * (mn + mx);
    scale[j] = mx > mn ? 2 / (mx - mn) : 1;
  }
  for (PetscInt p = 0; p < n; p++) {
    int col                  = 0;
    A[(size_t)col++ * n + p] = 1;
    for (int i = 0; i < T; i++) A[(size_t)col++ * n + p] = (C[p * T + i] - shift[i]) * scale[i];
    for (int i = 0; i < T; i++) {
      double xi = (C[p * T + i] - shift[i]) * scale[i];
      for (int j = i; j < T; j++) A[(size_t)col++ * n + p] = xi * (C[p * T + j] - shift[j]) * scale[j];
    }
  }
  for (int j = 0; j < nf; j++) {
    double s = 0;
    for (PetscInt p = 0; p < n; p++) s += A[(size_t)j * n + p] * A[(size_t)j * n + p];
    s = sqrt(s);
    if (s > 0)
      for (PetscInt p = 0; p < n; p++) A[(size_t)j * n + p] /= s;
  }
  int r = MapSampleRankQRCP(n, nf, A, 1e-9);
  PetscCall(PetscFree3(A, shift, scale));
  PetscCheck(r >= 0, PETSC_COMM_SELF, PETSC_ERR_MEM, "design rank: out of memory for %d column norms", nf);
  *rank = r;
  PetscFunctionReturn(0);
}

/*
  MapSampleCheckIdentifiable - error when the quadratic surrogate (F = (T+1)(T+2)/2 unknowns per
  target) cannot be identified from the n design points: the message gives the rank found and the
  rank needed. Not collective (the design is the same on every rank).
*/
PetscErrorCode MapSampleCheckIdentifiable(int T, PetscInt n, const double *C)
{
  int rank, F;

  PetscFunctionBegin;
  PetscCall(MapSampleDesignRank(T, n, C, &rank, &F));
  PetscCheck(rank == F, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "the design of %" PetscInt_FMT " points cannot identify the quadratic surrogate: its design matrix "
             "[1, c_i, c_i c_j] has rank %d, but the %d tasks need rank F = %d (%s); use more samples "
             "(-map_sample_n, at least %d recommended) or -map_sample_type lhs",
             n, rank, T, F, n < F ? "fewer points than unknowns" : "too few distinct levels per coordinate or collinear points",
             (3 * F + 1) / 2);
  PetscFunctionReturn(0);
}
