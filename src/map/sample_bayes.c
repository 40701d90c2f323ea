/* sample_bayes: the adaptive-sampling step of Bayesian MAP (docs/design.md §5 "Bayesian MAP").
 *
 * The points sampled so far are shifted to the unit box, x = (c - lo)/(hi - lo), and written in
 * hyperspherical coordinates around the corner lo, so every angle of a point in the box lies in
 * [0, pi/2]. Each angle is split into equal bins; a bin is scored by how badly the current surrogate
 * fits the points in it, and new points are drawn in proportion to softmax(score / temperature).
 *
 * Differences from the reference code (issue 6): the caller passes ALL points so far (the reference
 * scores bins from the initial design only); there is no T limit (the reference refuses T > 6), the
 * number of bins is capped instead (MapBayesGetBins); every random draw is keyed with MapRngU64 on
 * (seed, iteration, bin, resample, point) or (seed, iteration, draw, coordinate), so a resumed or
 * re-ranked run proposes the same points. */
#include <mapmerge/sample.h>
#include <math.h>

/* RNG streams, one per purpose, so no two kinds of draws share a key. */
#define MAP_BAYES_STREAM_RESAMPLE 0x42524553ULL /* "BRES": which points a resample drops */
#define MAP_BAYES_STREAM_BIN      0x4242494eULL /* "BBIN": which bin a new point falls in */
#define MAP_BAYES_STREAM_POINT    0x42505054ULL /* "BPPT": angles and radius inside the bin */
#define MAP_BAYES_STREAM_CAND     0x4243414eULL /* "BCAN": the candidates after the first (maximin) */
#define MAP_BAYES_STREAM_EXPLORE  0x4245584cULL /* "BEXL": exploration candidates over the whole box */

#define MAP_BAYES_HALF_PI 1.57079632679489661923

void MapBayesOptionsDefault(MapBayesOptions *o)
{
  o->temperature    = 0.07;
  o->lambda         = 0.5;
  o->resamples      = 30;
  o->drop_fraction  = 0.2;
  o->radius_lo      = 0.2;
  o->radius_hi      = 0.8;
  o->bins_per_angle = 0;
  /* 4096 bins = 2^12: every angle binned up to T = 13 with the default 2 bins per angle. More bins
     than that would be almost all empty for any affordable number of evaluations. */
  o->max_bins = 4096;
  /* Not in the reference: measured on the embedded default (bench/README.md, "Bayesian and Nested
     MAP"), the reference draw (candidates 1, explore 0) clumps points in the worst-fit bins and
     loses to a plain LHS of the same size in surrogate RMSE and front IGD; maximin over 64
     candidates with half the points exploring the whole box does not. */
  o->candidates = 64;
  o->explore    = 0.5;
}

static PetscErrorCode MapBayesOptionsCheck(MPI_Comm comm, const MapBayesOptions *o)
{
  PetscFunctionBegin;
  PetscCheck(o->temperature > 0 && isfinite(o->temperature), comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_temperature: expected a finite value > 0, got %g", o->temperature);
  PetscCheck(o->lambda >= 0 && isfinite(o->lambda), comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_lambda: expected a finite value >= 0, got %g", o->lambda);
  PetscCheck(o->resamples >= 0, comm, PETSC_ERR_ARG_OUTOFRANGE, "-map_bayes_resamples: expected >= 0, got %d", o->resamples);
  PetscCheck(o->drop_fraction >= 0 && o->drop_fraction < 1, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_drop_fraction: expected a value in [0, 1), got %g", o->drop_fraction);
  PetscCheck(o->radius_lo >= 0 && o->radius_lo <= o->radius_hi && o->radius_hi <= 1, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_radius: expected lo,hi with 0 <= lo <= hi <= 1 (fractions of the ray inside the box), got %g,%g",
             o->radius_lo, o->radius_hi);
  PetscCheck(o->bins_per_angle >= 0 && o->bins_per_angle <= 1024, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_bins: expected 0 (default) or 1..1024 bins per angle, got %d", o->bins_per_angle);
  PetscCheck(o->max_bins >= 1 && o->max_bins <= (1 << 24), comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_max_bins: expected 1..%d, got %d", 1 << 24, o->max_bins);
  PetscCheck(o->candidates >= 1 && o->candidates <= 100000, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_candidates: expected 1..100000 candidates per new point, got %d", o->candidates);
  PetscCheck(o->explore >= 0 && o->explore <= 1, comm, PETSC_ERR_ARG_OUTOFRANGE,
             "-map_bayes_explore: expected a fraction in [0, 1], got %g", o->explore);
  PetscFunctionReturn(0);
}

PetscErrorCode MapBayesOptionsSetFromOptions(MPI_Comm comm, MapBayesOptions *o)
{
  PetscReal radius[2] = {o->radius_lo, o->radius_hi};
  PetscInt  nr        = 2;
  PetscBool flg;

  PetscFunctionBegin;
  PetscOptionsBegin(comm, NULL, "Bayesian MAP: adaptive sampling (docs/design.md 5)", NULL);
  PetscCall(PetscOptionsReal("-map_bayes_temperature", "softmax temperature on bin scores divided by their maximum", NULL,
                             o->temperature, &o->temperature, NULL));
  PetscCall(PetscOptionsReal("-map_bayes_lambda", "bin score = mean + lambda * std of its squared residuals", NULL, o->lambda,
                             &o->lambda, NULL));
  PetscCall(PetscOptionsInt("-map_bayes_resamples", "resamples for the std of a bin's mean squared residual", NULL, o->resamples,
                            &o->resamples, NULL));
  PetscCall(PetscOptionsReal("-map_bayes_drop_fraction", "fraction of a bin's points each resample drops", NULL, o->drop_fraction,
                             &o->drop_fraction, NULL));
  PetscCall(PetscOptionsRealArray("-map_bayes_radius", "lo,hi: radius ~ U(lo,hi) as a fraction of the ray from the box corner lo to the box boundary",
                                  NULL, radius, &nr, &flg));
  PetscCall(PetscOptionsInt("-map_bayes_bins", "bins per angle (0: 4 for T < 4, 2 otherwise)", NULL, o->bins_per_angle,
                            &o->bins_per_angle, NULL));
  PetscCall(PetscOptionsInt("-map_bayes_max_bins", "at most this many bins: for large T only the first angles are binned", NULL,
                            o->max_bins, &o->max_bins, NULL));
  PetscCall(PetscOptionsInt("-map_bayes_candidates",
                            "candidates per new point; the one farthest from every point so far is kept (1: reference draw)", NULL,
                            o->candidates, &o->candidates, NULL));
  PetscCall(PetscOptionsReal("-map_bayes_explore", "fraction of each batch placed over the whole box (maximin), not in a scored bin",
                             NULL, o->explore, &o->explore, NULL));
  PetscOptionsEnd();
  if (flg) {
    PetscCheck(nr == 2, comm, PETSC_ERR_ARG_WRONG, "-map_bayes_radius: expected two values lo,hi, got %d", (int)nr);
    o->radius_lo = radius[0];
    o->radius_hi = radius[1];
  }
  PetscCall(MapBayesOptionsCheck(comm, o));
  PetscFunctionReturn(0);
}

PetscErrorCode MapBayesGetBins(int T, const MapBayesOptions *o, int *bins_per_angle, int *nangles, PetscInt *nbins)
{
  PetscFunctionBegin;
  PetscCheck(T >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "Bayesian MAP: expected T >= 1 tasks, got %d", T);
  PetscCall(MapBayesOptionsCheck(PETSC_COMM_SELF, o));
  int b = o->bins_per_angle > 0 ? o->bins_per_angle : (T < 4 ? 4 : 2);
  /* b^(T-1) bins explode with T; bin only the first angles, as many as fit in max_bins. The unbinned
     angles are drawn uniformly over [0, pi/2]: beyond that cap the data could not score the bins anyway. */
  int      m  = 0;
  PetscInt nb = 1;
  if (b == 1) m = T - 1;
  else
    while (m < T - 1 && nb * b <= (PetscInt)o->max_bins) nb *= b, m++;
  if (bins_per_angle) *bins_per_angle = b;
  if (nangles) *nangles = m;
  if (nbins) *nbins = nb;
  PetscFunctionReturn(0);
}

void MapHypersphericalFromCartesian(int T, const double *x, double *r, double *phi)
{
  if (T == 1) {
    *r = x[0];
    return;
  }
  /* tail = |(x_k+1, .., x_T-1)|, accumulated from the end so each angle costs O(1) */
  double tail = fabs(x[T - 1]);
  phi[T - 2]  = atan2(x[T - 1], x[T - 2]);
  tail        = hypot(x[T - 2], tail);
  for (int k = T - 3; k >= 0; k--) {
    phi[k] = atan2(tail, x[k]);
    tail   = hypot(x[k], tail);
  }
  *r = tail;
}

void MapHypersphericalToCartesian(int T, double r, const double *phi, double *x)
{
  double s = r; /* r sin phi_0 .. sin phi_k-1 */
  for (int k = 0; k < T - 1; k++) {
    x[k] = s * cos(phi[k]);
    s *= sin(phi[k]);
  }
  x[T - 1] = s;
}

/* angular bin of the unit-box point x: digit k is the bin of angle k, clamped into [0, b-1] */
static PetscInt MapBayesBinOfUnit(int T, const double *x, int b, int m, double *phi)
{
  double   r;
  PetscInt bin = 0, place = 1;

  MapHypersphericalFromCartesian(T, x, &r, phi);
  for (int k = 0; k < m; k++) {
    double f = phi[k] / MAP_BAYES_HALF_PI * b;
    int    d = f <= 0 ? 0 : (f >= b ? b - 1 : (int)f);
    bin += d * place;
    place *= b;
  }
  return bin;
}

PetscErrorCode MapBayesBinOf(int T, const double *c, double lo, double hi, const MapBayesOptions *o, PetscInt *bin)
{
  int     b, m;
  double *x, *phi;

  PetscFunctionBegin;
  PetscCheck(hi > lo, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "Bayesian MAP: box lo,hi needs lo < hi, got %g,%g", lo, hi);
  PetscCall(MapBayesGetBins(T, o, &b, &m, NULL));
  PetscCall(PetscMalloc2(T, &x, T, &phi));
  for (int j = 0; j < T; j++) x[j] = (c[j] - lo) / (hi - lo);
  *bin = MapBayesBinOfUnit(T, x, b, m, phi);
  PetscCall(PetscFree2(x, phi));
  PetscFunctionReturn(0);
}

/* Score of one bin with cnt points (their indices in idx, ascending): mean of their squared
   residuals plus lambda times the sample std, over the resamples, of the mean over the points a
   resample keeps. A resample drops floor(drop_fraction * cnt) points chosen by a partial
   Fisher-Yates shuffle with draws keyed on (seed, iteration, bin, resample, step). scratch[cnt]. */
static double MapBayesBinScore(PetscInt cnt, const PetscInt *idx, const double *sqres, const MapBayesOptions *o, uint64_t seed,
                               int iteration, PetscInt bin, PetscInt *scratch)
{
  double sum = 0;
  for (PetscInt i = 0; i < cnt; i++) sum += sqres[idx[i]];
  double   mean  = sum / (double)cnt;
  PetscInt ndrop = (PetscInt)floor(o->drop_fraction * (double)cnt);
  if (ndrop >= cnt) ndrop = cnt - 1;
  /* dropping nothing (or a single resample) gives no spread: std = 0, not a random number */
  if (ndrop <= 0 || o->resamples < 2 || o->lambda == 0) return mean;

  uint64_t kiter = MapRngU64(seed, MAP_BAYES_STREAM_RESAMPLE, (uint64_t)iteration);
  double   s1 = 0, s2 = 0;
  for (int rs = 0; rs < o->resamples; rs++) {
    uint64_t key = MapRngU64(kiter, (uint64_t)bin, (uint64_t)rs);
    for (PetscInt i = 0; i < cnt; i++) scratch[i] = idx[i];
    for (PetscInt k = 0; k < ndrop; k++) {
      PetscInt j = k + (PetscInt)(MapRngU01(key, 0, (uint64_t)k) * (double)(cnt - k));
      if (j >= cnt) j = cnt - 1;
      PetscInt t = scratch[k];
      scratch[k] = scratch[j];
      scratch[j] = t;
    }
    double ks = 0;
    for (PetscInt i = ndrop; i < cnt; i++) ks += sqres[scratch[i]];
    double km = ks / (double)(cnt - ndrop);
    s1 += km;
    s2 += km * km;
  }
  double R   = (double)o->resamples;
  double var = (s2 - s1 * s1 / R) / (R - 1);
  return mean + o->lambda * (var > 0 ? sqrt(var) : 0);
}

/* scores[nbins] from the points; empty bins get the highest score of the non-empty ones */
static PetscErrorCode MapBayesScoreBins(int T, PetscInt n, const double *C, const double *sqres, double lo, double hi, uint64_t seed,
                                        int iteration, const MapBayesOptions *o, int b, int m, PetscInt nbins, double *scores)
{
  PetscInt *binof, *start, *members, *fill, *scratch;
  double   *x, *phi;

  PetscFunctionBegin;
  PetscCall(PetscMalloc5(n + 1, &binof, nbins + 1, &start, n + 1, &members, nbins, &fill, n + 1, &scratch));
  PetscCall(PetscMalloc2(T, &x, T, &phi));
  for (PetscInt i = 0; i < n; i++) {
    for (int j = 0; j < T; j++) x[j] = (C[i * T + j] - lo) / (hi - lo);
    binof[i] = MapBayesBinOfUnit(T, x, b, m, phi);
  }
  /* counting sort: each bin's points in ascending point order, so scores never depend on the caller's layout */
  PetscCall(PetscArrayzero(start, nbins + 1));
  for (PetscInt i = 0; i < n; i++) start[binof[i] + 1]++;
  for (PetscInt k = 0; k < nbins; k++) start[k + 1] += start[k];
  PetscCall(PetscArraycpy(fill, start, nbins));
  for (PetscInt i = 0; i < n; i++) members[fill[binof[i]]++] = i;

  double   smax   = 0;
  PetscInt nempty = 0;
  for (PetscInt k = 0; k < nbins; k++) {
    PetscInt cnt = start[k + 1] - start[k];
    if (!cnt) {
      nempty++;
      scores[k] = -1;
      continue;
    }
    scores[k] = MapBayesBinScore(cnt, members + start[k], sqres, o, seed, iteration, k, scratch);
    if (scores[k] > smax) smax = scores[k];
  }
  /* Exploration: a bin nobody has sampled is treated as badly as the worst sampled one. */
  if (nempty)
    for (PetscInt k = 0; k < nbins; k++)
      if (scores[k] < 0) scores[k] = smax;
  PetscCall(PetscFree2(x, phi));
  PetscCall(PetscFree5(binof, start, members, fill, scratch));
  PetscFunctionReturn(0);
}

/* the arguments of MapBayesPropose, with messages that name the bad value */
static PetscErrorCode MapBayesCheckProposeArgs(int T, PetscInt n, const double *C, const double *sqres, double lo, double hi, int iteration, PetscInt B,
                                               const double *Cnew)
{
  PetscFunctionBegin;
  PetscCheck(hi > lo && isfinite(lo) && isfinite(hi), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "Bayesian MAP: box lo,hi needs finite lo < hi, got %g,%g", lo, hi);
  PetscCheck(n >= 0 && B >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "Bayesian MAP: expected n >= 0 points and B >= 0 new points, got n = %" PetscInt_FMT ", B = %" PetscInt_FMT, n, B);
  PetscCheck(iteration >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "Bayesian MAP: expected iteration >= 0, got %d", iteration);
  PetscCheck(!n || (C && sqres), PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "Bayesian MAP: %" PetscInt_FMT " points but C or sqres is NULL", n);
  PetscCheck(!B || Cnew, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "Bayesian MAP: %" PetscInt_FMT " new points asked for but Cnew is NULL", B);
  for (PetscInt i = 0; i < n; i++) {
    PetscCheck(sqres[i] >= 0 && isfinite(sqres[i]), PETSC_COMM_SELF, PETSC_ERR_FP,
               "Bayesian MAP: squared residual of point %" PetscInt_FMT " must be finite and >= 0, got %g", i, sqres[i]);
    for (int j = 0; j < T; j++)
      PetscCheck(isfinite(C[i * T + j]), PETSC_COMM_SELF, PETSC_ERR_FP, "Bayesian MAP: point %" PetscInt_FMT " coordinate %d is %g", i,
                 j, C[i * T + j]);
  }
  PetscFunctionReturn(0);
}

/* cdf[nbins]: the cumulative softmax weights of the bin scores; returns their total.
   Scores are divided by their maximum before the softmax, so the temperature does not depend on
   the scale of the metrics (0.07 means: a bin scoring 10% below the best is e^(0.1/0.07) ~ 4x less
   likely). With no residual anywhere (n = 0 or a perfect fit) every bin is equally likely. */
static double MapBayesSoftmaxCDF(PetscInt nbins, const double *scores, double temperature, double *cdf)
{
  double smax = 0;
  for (PetscInt k = 0; k < nbins; k++) smax = PetscMax(smax, scores[k]);
  double total = 0;
  for (PetscInt k = 0; k < nbins; k++) {
    double s = smax > 0 ? scores[k] / smax : 1;
    total += exp((s - 1) / temperature); /* exponent <= 0: no overflow; the best bin contributes 1 */
    cdf[k] = total;
  }
  return total;
}

/* inverse CDF: the first bin whose cumulative weight exceeds the uniform draw d of stream kbin */
static PetscInt MapBayesDrawBin(uint64_t kbin, PetscInt d, PetscInt nbins, const double *cdf, double total)
{
  double   v = MapRngU01(kbin, 0, (uint64_t)d) * total;
  PetscInt a = 0, z = nbins - 1;
  while (a < z) {
    PetscInt mid = a + (z - a) / 2;
    if (cdf[mid] > v) z = mid;
    else a = mid + 1;
  }
  return a;
}

/* x[T] in the unit box: candidate j of new point d, uniform for an exploration point, else a ray inside bin;
   phi[T-1] and u[T] are scratch */
static void MapBayesCandidate(int T, const MapBayesOptions *o, int b, int m, PetscBool explore, PetscInt bin, uint64_t key, uint64_t kpt, PetscInt d,
                              int j, double *phi, double *u, double *x)
{
  if (explore) {
    /* exploration: uniform in the unit box, where a bin draw (radius < 1 of the ray) may not reach */
    for (int k = 0; k < T; k++) x[k] = MapRngU01(key, 0, (uint64_t)k);
  } else {
    PetscInt rest = bin;
    /* angles: uniform inside the bin for binned angles, over [0, pi/2] for the rest */
    for (int k = 0; k < T - 1; k++) {
      double w = j ? MapRngU01(key, 0, (uint64_t)k) : MapRngU01(kpt, (uint64_t)d, (uint64_t)k);
      if (k < m) {
        int digit = (int)(rest % b);
        rest /= b;
        phi[k] = (digit + w) / b * MAP_BAYES_HALF_PI;
      } else phi[k] = w * MAP_BAYES_HALF_PI;
    }
    MapHypersphericalToCartesian(T, 1.0, phi, u);
    /* The ray from the corner lo along u leaves the unit box at length 1/max_j u_j; the radius is a
       fraction of that, so every direction reaches as far into the box (the reference takes an
       absolute radius U(0.2, 0.8) in [0,1]^T, which never reaches the far corner region). */
    double umax = 0;
    for (int k = 0; k < T; k++) umax = PetscMax(umax, u[k]);
    double w   = j ? MapRngU01(key, 0, (uint64_t)(T - 1)) : MapRngU01(kpt, (uint64_t)d, (uint64_t)(T - 1));
    double f   = o->radius_lo + (o->radius_hi - o->radius_lo) * w;
    double rho = umax > 0 ? f / umax : 0;
    for (int k = 0; k < T; k++) {
      x[k] = rho * u[k];
      x[k] = x[k] < 0 ? 0 : (x[k] > 1 ? 1 : x[k]); /* rounding only: x is in [0,1] by construction */
    }
  }
}

/* maximin: squared distance from x (unit box) to the nearest point so far (the n evaluated, then this batch's first d) */
static double MapBayesNearestSq(int T, PetscInt n, PetscInt d, const double *C, const double *Cnew, double lo, double hi, const double *x)
{
  double dmin = INFINITY;
  for (PetscInt i = 0; i < n + d; i++) {
    const double *c  = i < n ? &C[i * T] : &Cnew[(i - n) * T];
    double        d2 = 0;
    for (int k = 0; k < T; k++) {
      double e = x[k] - (c[k] - lo) / (hi - lo);
      d2 += e * e;
    }
    dmin = PetscMin(dmin, d2);
  }
  return dmin;
}

PetscErrorCode MapBayesPropose(int T, PetscInt n, const double *C, const double *sqres, double lo, double hi, uint64_t seed,
                               int iteration, PetscInt B, const MapBayesOptions *o, double *Cnew, double *bin_scores_out)
{
  int      b, m;
  PetscInt nbins;
  double  *scores, *cdf, *u, *phi, *x;

  PetscFunctionBegin;
  PetscCall(MapBayesGetBins(T, o, &b, &m, &nbins));
  PetscCall(MapBayesCheckProposeArgs(T, n, C, sqres, lo, hi, iteration, B, Cnew));

  PetscCall(PetscMalloc5(nbins, &scores, nbins, &cdf, T, &u, T, &phi, T, &x));
  PetscCall(MapBayesScoreBins(T, n, C, sqres, lo, hi, seed, iteration, o, b, m, nbins, scores));
  if (bin_scores_out) PetscCall(PetscArraycpy(bin_scores_out, scores, nbins));
  double total = MapBayesSoftmaxCDF(nbins, scores, o->temperature, cdf);

  uint64_t kbin = MapRngU64(seed, MAP_BAYES_STREAM_BIN, (uint64_t)iteration);
  uint64_t kpt  = MapRngU64(seed, MAP_BAYES_STREAM_POINT, (uint64_t)iteration);
  uint64_t kcan = MapRngU64(seed, MAP_BAYES_STREAM_CAND, (uint64_t)iteration);
  uint64_t kexp = MapRngU64(seed, MAP_BAYES_STREAM_EXPLORE, (uint64_t)iteration);
  for (PetscInt d = 0; d < B; d++) {
    /* exploration points interleaved over the run (batches of B): the g-th new point of the run
       explores when floor(explore * (g+1)) > floor(explore * g), so any prefix of the run holds
       the fraction `explore` of them whatever B is (B = 2 or 3 with explore 0.5: not 1 of 2, 2 of 3) */
    double    g       = (double)iteration * (double)B + (double)d;
    PetscBool explore = floor(o->explore * (g + 1)) > floor(o->explore * g) ? PETSC_TRUE : PETSC_FALSE;
    PetscInt  bin     = 0;
    if (!explore) bin = MapBayesDrawBin(kbin, d, nbins, cdf, total);
    double best = -1;
    for (int j = 0; j < o->candidates; j++) {
      /* candidate 0 of a bin point uses the reference keys, so candidates = 1 is the reference draw */
      uint64_t key = explore ? MapRngU64(kexp, (uint64_t)d, (uint64_t)j) : (j ? MapRngU64(kcan, (uint64_t)d, (uint64_t)j) : 0);
      MapBayesCandidate(T, o, b, m, explore, bin, key, kpt, d, j, phi, u, x);
      double dmin = INFINITY;
      if (o->candidates > 1) dmin = MapBayesNearestSq(T, n, d, C, Cnew, lo, hi, x);
      if (j == 0 || dmin > best) {
        best = dmin;
        for (int k = 0; k < T; k++) {
          double c        = lo + (hi - lo) * x[k];
          Cnew[d * T + k] = c < lo ? lo : (c > hi ? hi : c);
        }
      }
    }
  }
  PetscCall(PetscFree5(scores, cdf, u, phi, x));
  PetscFunctionReturn(0);
}
