/* pareto_front: dominance filter and front-quality measures (objectives maximised). */
#include <mapmerge/pareto.h>
#include <math.h>

/* a dominates b (maximisation): a >= b everywhere and a > b somewhere */
int MapDominates(int m, const double *a, const double *b)
{
  int strict = 0;
  for (int i = 0; i < m; i++) {
    if (a[i] < b[i]) return 0;
    if (a[i] > b[i]) strict = 1;
  }
  return strict;
}

/*
  MapNonDominated - keep[i] = 1 when no other point dominates point i (maximisation); equal points
  are all kept (merge duplicates separately). Returns the number kept. Not collective; O(n^2 m).
*/
PetscInt MapNonDominated(int m, PetscInt n, const double *F, int *keep)
{
  PetscInt cnt = 0;
  for (PetscInt i = 0; i < n; i++) {
    keep[i] = 1;
    for (PetscInt j = 0; j < n && keep[i]; j++)
      if (j != i && MapDominates(m, F + j * m, F + i * m)) keep[i] = 0;
    cnt += keep[i];
  }
  return cnt;
}

/*
  MapFrontIGD - inverted generational distance: the mean over the ntrue points of the Euclidean
  distance to the nearest of the nfound points. Swap the arguments for GD. INFINITY when nothing
  was found. Not collective.
*/
double MapFrontIGD(int m, PetscInt ntrue, const double *Ftrue, PetscInt nfound, const double *Ffound)
{
  double sum = 0;
  if (nfound <= 0) return INFINITY;
  if (ntrue <= 0) return 0;
  for (PetscInt i = 0; i < ntrue; i++) {
    double best = INFINITY;
    for (PetscInt j = 0; j < nfound; j++) {
      double d = 0;
      for (int k = 0; k < m; k++) {
        double e = Ftrue[i * m + k] - Ffound[j * m + k];
        d += e * e;
      }
      best = PetscMin(best, d);
    }
    sum += sqrt(best);
  }
  return sum / (double)ntrue;
}

typedef struct {
  double x, y;
} MapPoint2;

static int MapPoint2DescX(const void *a, const void *b)
{
  const MapPoint2 *p = (const MapPoint2 *)a, *q = (const MapPoint2 *)b;
  if (p->x != q->x) return p->x > q->x ? -1 : 1;
  return (p->y < q->y) - (p->y > q->y);
}

/* exact 2-D hypervolume of n points (already strictly above ref) by a sweep in decreasing x */
static double MapHV2(PetscInt n, MapPoint2 *P, double rx, double ry)
{
  double area = 0, best = ry;
  qsort(P, (size_t)n, sizeof(*P), MapPoint2DescX);
  for (PetscInt i = 0; i < n; i++) {
    if (P[i].y > best) {
      area += (P[i].x - rx) * (P[i].y - best);
      best = P[i].y;
    }
  }
  return area;
}

static int MapDoubleDesc(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/*
  MapFrontHypervolume - volume of the region dominated by the points and dominating ref
  (maximisation); points not strictly above ref in every objective add nothing. Exact for m <= 3
  (2-D sweep; 3-D by slicing along the third objective), Karp-Luby Monte Carlo with 2^18
  counter-based draws (fixed seed) for m > 3. Not collective. Returns -1 on allocation failure.
*/
/* m = 3: slices between consecutive distinct z levels, each the 2-D volume of the points at or above
   it (P: scratch of np points); -1 when out of memory */
static double MapHV3(PetscInt np, const double *G, MapPoint2 *P, const double *ref)
{
  double *z, hv = 0;

  if (PetscMalloc1(np, &z)) return -1;
  for (PetscInt i = 0; i < np; i++) z[i] = G[3 * i + 2];
  qsort(z, (size_t)np, sizeof(double), MapDoubleDesc);
  for (PetscInt s = 0; s < np; s++) {
    if (s > 0 && z[s] == z[s - 1]) continue;
    PetscInt q = 0;
    for (PetscInt i = 0; i < np; i++)
      if (G[3 * i + 2] >= z[s]) P[q++] = (MapPoint2){G[3 * i], G[3 * i + 1]};
    double below = ref[2];
    for (PetscInt t = s + 1; t < np; t++)
      if (z[t] < z[s]) {
        below = z[t];
        break;
      }
    hv += (z[s] - below) * MapHV2(q, P, ref[0], ref[1]);
  }
  PetscFree(z);
  return hv;
}

/* m > 3, Karp-Luby: draw a point uniformly from the union of the boxes [ref, p_i] counted with
   multiplicity (box i with probability vol_i / V, then uniform inside it) and count it only when i
   is the first box that holds it; HV = V x that fraction. Unbiased, and its error shrinks with the
   union itself rather than with the bounding box (plain sampling of the bounding box put only ~80
   of 2^18 draws inside an 8-objective front: +-11%). Fixed seed: reproducible. -1 when out of memory. */
static double MapHVKarpLuby(int m, PetscInt np, const double *G, const double *ref)
{
  const uint64_t ns = 1u << 18, seed = 0x48595045ULL;
  double        *cum = NULL, V = 0;
  uint64_t       hits = 0;

  if (m > MAP_MAX_TASKS || PetscMalloc1(np, &cum)) return -1;
  for (PetscInt i = 0; i < np; i++) {
    double v = 1;
    for (int k = 0; k < m; k++) v *= G[i * m + k] - ref[k];
    V += v;
    cum[i] = V;
  }
  double y[MAP_MAX_TASKS];
  for (uint64_t s = 0; s < ns; s++) {
    double   u  = MapRngU01(seed, 0, s) * V;
    PetscInt lo = 0, hi = np - 1;
    while (lo < hi) { /* first i with cum[i] > u */
      PetscInt mid = (lo + hi) / 2;
      if (cum[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    for (int k = 0; k < m; k++) y[k] = ref[k] + (G[lo * m + k] - ref[k]) * MapRngU01(seed, 1 + (uint64_t)k, s);
    int first = 1;
    for (PetscInt j = 0; j < lo && first; j++) {
      int holds = 1;
      for (int k = 0; k < m && holds; k++)
        if (G[j * m + k] < y[k]) holds = 0;
      if (holds) first = 0;
    }
    hits += first;
  }
  PetscFree(cum);
  return V * (double)hits / (double)ns;
}

double MapFrontHypervolume(int m, PetscInt n, const double *F, const double *ref)
{
  PetscInt   np = 0;
  double    *G = NULL, hv = 0;
  MapPoint2 *P = NULL;

  if (n <= 0 || m <= 0) return 0;
  if (PetscMalloc1(n * m, &G)) return -1;
  for (PetscInt i = 0; i < n; i++) { /* the points that dominate ref */
    int above = 1;
    for (int k = 0; k < m; k++)
      if (!(F[i * m + k] > ref[k])) above = 0;
    if (above) {
      for (int k = 0; k < m; k++) G[np * m + k] = F[i * m + k];
      np++;
    }
  }
  if (!np) goto done;
  if (m == 1) {
    for (PetscInt i = 0; i < np; i++) hv = PetscMax(hv, G[i] - ref[0]);
  } else if (m == 2 || m == 3) {
    if (PetscMalloc1(np, &P)) {
      hv = -1;
      goto done;
    }
    if (m == 2) {
      for (PetscInt i = 0; i < np; i++) P[i] = (MapPoint2){G[2 * i], G[2 * i + 1]};
      hv = MapHV2(np, P, ref[0], ref[1]);
    } else hv = MapHV3(np, G, P, ref);
  } else hv = MapHVKarpLuby(m, np, G, ref);
done:
  PetscFree(P);
  PetscFree(G);
  return hv;
}
