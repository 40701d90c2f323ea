/* Bayesian MAP sampling step tests: hyperspherical round trip, bin layout for large T, determinism
 * (same bits on every rank and every call; other iteration or seed -> other points), all points in
 * the box, draws concentrated where the residuals are, empty bins scored for exploration, maximin
 * candidates and exploration (space filling), option parsing and errors. Prints "FAIL ..." on a
 * failed check and "ALL OK: 0 failures" at the end. */
#include <mapmerge/sample.h>
#include <math.h>

#include "../maptest.h"

static const int Ts[] = {2, 3, 4, 8, 12};
#define NT ((int)(sizeof(Ts) / sizeof(Ts[0])))

static PetscErrorCode TestRoundTrip(void)
{
  double x[16], y[16], phi[16], r;

  PetscFunctionBegin;
  for (int it = 0; it < NT; it++) {
    int    T = Ts[it];
    double err = 0, angle_out = 0;
    for (int s = 0; s < 500; s++) {
      int positive = s % 2 == 0;
      for (int j = 0; j < T; j++) {
        double w = MapRngU01(11, (uint64_t)T, (uint64_t)(s * T + j));
        x[j]     = positive ? w : 4 * w - 2;
      }
      if (s == 2) x[T - 1] = 0; /* points on faces of the orthant */
      if (s == 4) x[0] = 0;
      MapHypersphericalFromCartesian(T, x, &r, phi);
      MapHypersphericalToCartesian(T, r, phi, y);
      for (int j = 0; j < T; j++) err = fmax(err, fabs(x[j] - y[j]));
      if (positive)
        for (int k = 0; k < T - 1; k++)
          if (phi[k] < 0 || phi[k] > 1.5707963267948966) angle_out = fmax(angle_out, fabs(phi[k]));
      double nrm = 0;
      for (int j = 0; j < T; j++) nrm += x[j] * x[j];
      CHECK(fabs(r - sqrt(nrm)) <= 1e-12 * (1 + r), "T=%d: radius %.17g, |x| %.17g", T, r, sqrt(nrm));
    }
    CHECK(err <= 1e-12, "T=%d: hyperspherical round trip error %.3e > 1e-12", T, err);
    CHECK(angle_out == 0, "T=%d: an angle of a point x >= 0 left [0, pi/2]: %g", T, angle_out);
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "round trip T=%d: max error %.3e\n", T, err));
  }
  /* the zero vector: r = 0, angles 0, back to zero */
  for (int j = 0; j < 5; j++) x[j] = 0;
  MapHypersphericalFromCartesian(5, x, &r, phi);
  MapHypersphericalToCartesian(5, r, phi, y);
  CHECK(r == 0 && phi[0] == 0 && phi[3] == 0 && y[4] == 0, "zero vector: r %g phi0 %g", r, phi[0]);
  PetscFunctionReturn(0);
}

static PetscErrorCode TestBinLayout(void)
{
  MapBayesOptions o;
  int             b, m;
  PetscInt        nb;
  struct {
    int      T, bins, maxb, b, m;
    PetscInt nb;
  } cases[] = {
    {2, 0, 4096, 4, 1, 4},      {3, 0, 4096, 4, 2, 16},     {4, 0, 4096, 2, 3, 8},   {8, 0, 4096, 2, 7, 128},
    {12, 0, 4096, 2, 11, 2048}, {13, 0, 4096, 2, 12, 4096}, {16, 0, 4096, 2, 12, 4096}, {40, 0, 4096, 2, 12, 4096},
    {8, 3, 100, 3, 4, 81},      {5, 1, 4096, 1, 4, 1},
  };

  PetscFunctionBegin;
  MapBayesOptionsDefault(&o);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    o.bins_per_angle = cases[i].bins;
    o.max_bins       = cases[i].maxb;
    PetscCall(MapBayesGetBins(cases[i].T, &o, &b, &m, &nb));
    CHECK(b == cases[i].b && m == cases[i].m && nb == cases[i].nb, "T=%d bins=%d max=%d: got b=%d m=%d nbins=%d, expected %d %d %d",
          cases[i].T, cases[i].bins, cases[i].maxb, b, m, (int)nb, cases[i].b, cases[i].m, (int)cases[i].nb);
  }
  PetscFunctionReturn(0);
}

/* residual of a smooth function the quadratic cannot fit: large near the corner (hi,..,hi) */
static double SyntheticResidual(int T, const double *c)
{
  double s = 0;
  for (int j = 0; j < T; j++) s += c[j] * c[j] * c[j];
  return s * s;
}

static PetscErrorCode TestDeterminismAndBox(MPI_Comm comm)
{
  const double lo = -0.5, hi = 1.5;
  PetscInt     B  = 64;

  PetscFunctionBegin;
  /* T beyond the bin cap (16, 20: only the first 12 angles binned) must work as well */
  const int Tp[] = {2, 3, 4, 8, 12, 16, 20};
  for (int it = 0; it < (int)(sizeof(Tp) / sizeof(Tp[0])); it++) {
    int             T = Tp[it];
    MapBayesOptions o;
    PetscInt        n, nbins;
    double         *C, *res, *A1, *A2, *A3, *A4, *sc;
    char           *names[20];
    char            nbuf[20][8];

    MapBayesOptionsDefault(&o);
    for (int j = 0; j < T; j++) {
      snprintf(nbuf[j], sizeof(nbuf[j]), "t%d", j);
      names[j] = nbuf[j];
    }
    PetscCall(MapSampleGenerate(MAP_SAMPLE_LHS, T, (const char *const *)names, 3 * T + 10, lo, hi, 5, NULL, &n, &C));
    PetscCall(MapBayesGetBins(T, &o, NULL, NULL, &nbins));
    PetscCall(PetscMalloc6(n, &res, B * T, &A1, B * T, &A2, B * T, &A3, B * T, &A4, nbins, &sc));
    for (PetscInt i = 0; i < n; i++) res[i] = SyntheticResidual(T, C + i * T);
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 42, 3, B, &o, A1, sc));
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 42, 3, B, &o, A2, NULL));
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 42, 4, B, &o, A3, NULL));
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 43, 3, B, &o, A4, NULL));
    CHECK(!memcmp(A1, A2, sizeof(double) * B * T), "T=%d: same inputs gave different points", T);
    CHECK(memcmp(A1, A3, sizeof(double) * B * T) != 0, "T=%d: iterations 3 and 4 gave the same points", T);
    CHECK(memcmp(A1, A4, sizeof(double) * B * T) != 0, "T=%d: seeds 42 and 43 gave the same points", T);
    /* the same bits on every rank: rank 0's points are broadcast and compared */
    PetscCall(PetscArraycpy(A2, A1, B * T));
    PetscCallMPI(MPI_Bcast(A2, (int)(B * T), MPI_DOUBLE, 0, comm));
    CHECK(!memcmp(A1, A2, sizeof(double) * B * T), "T=%d: this rank's points differ from rank 0's", T);
    int    outside = 0, distinct = 1;
    double minc = hi, maxc = lo;
    for (PetscInt i = 0; i < B * T; i++) {
      if (!(A1[i] >= lo && A1[i] <= hi)) outside++;
      minc = fmin(minc, A1[i]);
      maxc = fmax(maxc, A1[i]);
    }
    for (PetscInt i = 1; i < B; i++)
      if (!memcmp(A1 + i * T, A1 + (i - 1) * T, sizeof(double) * T)) distinct = 0;
    CHECK(outside == 0, "T=%d: %d coordinates outside [%g, %g]", T, outside, lo, hi);
    CHECK(distinct, "T=%d: two consecutive proposals are identical", T);
    int badscore = 0;
    for (PetscInt k = 0; k < nbins; k++)
      if (!(sc[k] >= 0 && isfinite(sc[k]))) badscore++;
    CHECK(badscore == 0, "T=%d: %d of %d bin scores negative or not finite", T, badscore, (int)nbins);
    /* radius up to the whole ray: points reach the box faces and must still be inside (bin draws
       only: exploration points are uniform in the box) */
    o.explore   = 0;
    o.radius_lo = 0.9;
    o.radius_hi = 1.0;
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 42, 3, B, &o, A3, NULL));
    int outside_full = 0, onface = 0;
    for (PetscInt d = 0; d < B; d++) {
      double cmax = lo;
      for (int j = 0; j < T; j++) {
        if (!(A3[d * T + j] >= lo && A3[d * T + j] <= hi)) outside_full++;
        cmax = fmax(cmax, A3[d * T + j]);
      }
      if (cmax >= lo + 0.9 * (hi - lo) - 1e-12) onface++;
    }
    CHECK(outside_full == 0 && onface == B, "T=%d radius 0.9..1: %d coordinates outside the box, %d of %d points near the far faces", T,
          outside_full, onface, (int)B);
    PetscCall(PetscPrintf(comm, "propose T=%d: n=%d, %d bins, %d points in [%.3f, %.3f]\n", T, (int)n, (int)nbins, (int)B, minc, maxc));
    PetscCall(PetscFree6(res, A1, A2, A3, A4, sc));
    PetscCall(PetscFree(C));
  }
  PetscFunctionReturn(0);
}

/* Points placed in every bin (k per bin, angles inside the bin, radius mid-box); residual 1 in the
   target bin and 0.01 elsewhere. At temperature 0.07 most draws must land in the target bin; at a
   high temperature the draws spread out. */
static PetscErrorCode TestConcentration(MPI_Comm comm)
{
  const double lo = 0, hi = 2;
  const int    per = 5;
  const int    B   = 400;

  PetscFunctionBegin;
  for (int T = 2; T <= 4; T++) {
    MapBayesOptions o;
    int             b, m;
    PetscInt        nbins, target, binchk;
    double         *C, *res, *A, *sc, phi[8], x[8];

    MapBayesOptionsDefault(&o);
    o.candidates = 1; /* the reference draw: every point from its bin, no exploration */
    o.explore    = 0;
    PetscCall(MapBayesGetBins(T, &o, &b, &m, &nbins));
    target   = nbins / 2 + 1;
    PetscInt n = nbins * per;
    PetscCall(PetscMalloc4(n * T, &C, n, &res, B * T, &A, nbins, &sc));
    int misplaced = 0;
    for (PetscInt k = 0; k < nbins; k++) {
      for (int p = 0; p < per; p++) {
        PetscInt i = k * per + p, rem = k;
        for (int a = 0; a < T - 1; a++) {
          int digit = (int)(rem % b);
          rem /= b;
          phi[a] = (digit + 0.1 + 0.8 * MapRngU01(3, (uint64_t)i, (uint64_t)a)) / b * 1.5707963267948966;
        }
        MapHypersphericalToCartesian(T, 0.5, phi, x);
        for (int j = 0; j < T; j++) C[i * T + j] = lo + (hi - lo) * x[j];
        res[i] = k == target ? 1.0 + 0.2 * p : 0.01 * (1 + p % 2);
        PetscCall(MapBayesBinOf(T, C + i * T, lo, hi, &o, &binchk));
        if (binchk != k) misplaced++;
      }
    }
    CHECK(misplaced == 0, "T=%d: %d constructed points not in their bin", T, misplaced);
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 9, 1, B, &o, A, sc));
    int hits = 0;
    for (int d = 0; d < B; d++) {
      PetscCall(MapBayesBinOf(T, A + d * T, lo, hi, &o, &binchk));
      if (binchk == target) hits++;
    }
    /* the target bin's score: mean of its residuals plus a positive std term */
    double mean = 0;
    for (int p = 0; p < per; p++) mean += 1.0 + 0.2 * p;
    mean /= per;
    CHECK(sc[target] > mean && sc[target] < mean + o.lambda * 0.8, "T=%d: target score %g, expected in (%g, %g)", T, sc[target], mean,
          mean + o.lambda * 0.8);
    CHECK(hits > B / 2, "T=%d: %d of %d draws in the high-residual bin at temperature %g (expected > 50%%)", T, hits, B, o.temperature);
    PetscCall(PetscPrintf(comm, "concentration T=%d: %d bins, %d/%d draws in the high-residual bin (T=0.07)", T, (int)nbins, hits, B));

    /* lambda = 0: the score is exactly the mean */
    o.lambda = 0;
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 9, 1, 0, &o, NULL, sc));
    CHECK(fabs(sc[target] - mean) <= 1e-15 * mean, "T=%d: lambda 0 score %.17g, mean %.17g", T, sc[target], mean);
    o.lambda = 0.5;

    o.temperature = 100;
    PetscCall(MapBayesPropose(T, n, C, res, lo, hi, 9, 1, B, &o, A, NULL));
    int hits_hot = 0;
    for (int d = 0; d < B; d++) {
      PetscCall(MapBayesBinOf(T, A + d * T, lo, hi, &o, &binchk));
      if (binchk == target) hits_hot++;
    }
    CHECK(hits_hot < hits && hits_hot < B / 2 + B / 8, "T=%d: at temperature 100, %d draws in the target bin (at 0.07: %d)", T,
          hits_hot, hits);
    PetscCall(PetscPrintf(comm, ", %d/%d at temperature 100\n", hits_hot, B));
    PetscCall(PetscFree4(C, res, A, sc));
  }
  PetscFunctionReturn(0);
}

/* points in one bin only: every empty bin gets the highest score (exploration), and with no points
   at all every bin is equally likely */
static PetscErrorCode TestEmptyBins(MPI_Comm comm)
{
  MapBayesOptions o;
  const int       T = 3, n = 6, B = 512;
  double          C[6 * 3], res[6], sc[16], A[512 * 3], phi[2];
  PetscInt        nbins, bin, count[16] = {0};

  PetscFunctionBegin;
  MapBayesOptionsDefault(&o);
  o.candidates = 1;
  o.explore    = 0;
  PetscCall(MapBayesGetBins(T, &o, NULL, NULL, &nbins));
  for (int i = 0; i < n; i++) {
    phi[0] = 0.1 + 0.02 * i;
    phi[1] = 0.1;
    MapHypersphericalToCartesian(T, 0.6, phi, C + i * T);
    res[i] = 0.5 + 0.1 * i;
  }
  PetscCall(MapBayesPropose(T, n, C, res, 0, 1, 1, 0, B, &o, A, sc));
  int notmax = 0;
  for (PetscInt k = 1; k < nbins; k++)
    if (sc[k] != sc[0]) notmax++;
  CHECK(notmax == 0, "empty bins: %d of %d empty bins do not carry the occupied bin's score %g", notmax, (int)nbins - 1, sc[0]);
  PetscCall(MapBayesPropose(T, 0, NULL, NULL, 0, 1, 1, 0, B, &o, A, sc));
  for (int d = 0; d < B; d++) {
    PetscCall(MapBayesBinOf(T, A + d * T, 0, 1, &o, &bin));
    count[bin]++;
  }
  PetscInt cmin = B, cmax = 0;
  for (PetscInt k = 0; k < nbins; k++) cmin = PetscMin(cmin, count[k]), cmax = PetscMax(cmax, count[k]);
  /* 512 draws over 16 equally likely bins: 32 expected per bin; 12..60 is beyond 4 sigma */
  CHECK(cmin >= 12 && cmax <= 60, "no points: bin counts range %d..%d, expected about %d each", (int)cmin, (int)cmax, B / (int)nbins);
  PetscCall(PetscPrintf(comm, "no points: draws per bin %d..%d (expected %d)\n", (int)cmin, (int)cmax, B / (int)nbins));
  PetscFunctionReturn(0);
}

/* squared distance from point i of P (unit box of [lo,hi]) to its nearest neighbour among the n0
   points of Q and P's points before i */
static double NearestSq(int T, const double *P, PetscInt i, PetscInt n0, const double *Q)
{
  double best = INFINITY;
  for (PetscInt k = 0; k < n0 + i; k++) {
    const double *q  = k < n0 ? Q + k * T : P + (k - n0) * T;
    double        d2 = 0;
    for (int j = 0; j < T; j++) d2 += (P[i * T + j] - q[j]) * (P[i * T + j] - q[j]);
    best = fmin(best, d2);
  }
  return best;
}

/* Space filling (-map_bayes_candidates M, -map_bayes_explore f) on a fixed seed: every point of an
   M = 64 batch lies in the bin the reference draw (M = 1) chose for it, the batch's points keep
   farther from the points so far and from each other (smallest nearest-neighbour distance and
   mean nearest-neighbour distance both larger than M = 1's); explore f = 0.5 sends exactly half
   of a batch of 64 over the whole box (coordinates beyond the radius cap, which no bin draw
   reaches); explore 1 ignores the residuals; the same bits on every rank. */
static PetscErrorCode TestSpaceFilling(MPI_Comm comm)
{
  const PetscInt B = 64;

  PetscFunctionBegin;
  for (int T = 2; T <= 4; T++) {
    MapBayesOptions o1, oM;
    double         *C, *res, *res2, *A1, *AM, *AE, *AF, *AG;
    PetscInt        n;
    char           *names[4], nbuf[4][8];

    for (int j = 0; j < T; j++) {
      snprintf(nbuf[j], sizeof(nbuf[j]), "t%d", j);
      names[j] = nbuf[j];
    }
    PetscCall(MapSampleGenerate(MAP_SAMPLE_LHS, T, (const char *const *)names, 4 * T, 0, 1, 7, NULL, &n, &C));
    PetscCall(PetscMalloc7(n, &res, n, &res2, B * T, &A1, B * T, &AM, B * T, &AE, B * T, &AF, B * T, &AG));
    for (PetscInt i = 0; i < n; i++) {
      res[i]  = SyntheticResidual(T, C + i * T);
      res2[i] = 1.0 / (1.0 + res[i]); /* other residuals: other bins */
    }
    MapBayesOptionsDefault(&o1);
    o1.candidates = 1;
    o1.explore    = 0;
    oM            = o1;
    oM.candidates = 64;
    PetscCall(MapBayesPropose(T, n, C, res, 0, 1, 2024, 1, B, &o1, A1, NULL));
    PetscCall(MapBayesPropose(T, n, C, res, 0, 1, 2024, 1, B, &oM, AM, NULL));
    int      wrongbin = 0;
    double   min1 = INFINITY, minM = INFINITY, mean1 = 0, meanM = 0;
    PetscInt b1, bM;
    for (PetscInt d = 0; d < B; d++) {
      PetscCall(MapBayesBinOf(T, A1 + d * T, 0, 1, &o1, &b1));
      PetscCall(MapBayesBinOf(T, AM + d * T, 0, 1, &oM, &bM));
      if (b1 != bM) wrongbin++;
      double d1 = sqrt(NearestSq(T, A1, d, n, C)), dM = sqrt(NearestSq(T, AM, d, n, C));
      min1 = fmin(min1, d1), minM = fmin(minM, dM);
      mean1 += d1 / B, meanM += dM / B;
    }
    CHECK(wrongbin == 0, "T=%d: %d of %d maximin points left the bin the reference draw chose", T, wrongbin, (int)B);
    CHECK(minM > min1 && meanM > 1.2 * mean1, "T=%d: maximin nearest distances min %.4f mean %.4f, reference draw min %.4f mean %.4f", T,
          minM, meanM, min1, mean1);
    PetscCall(PetscPrintf(comm, "space filling T=%d: nearest-neighbour distance min %.4f mean %.4f (M=64) vs %.4f %.4f (M=1)\n", T, minM,
                          meanM, min1, mean1));

    /* exploration: exactly half the batch anywhere in the box, the other half still in the reference's bins */
    oM.explore = 0.5;
    PetscCall(MapBayesPropose(T, n, C, res, 0, 1, 2024, 1, B, &oM, AE, NULL));
    int beyond = 0, inbin = 0;
    for (PetscInt d = 0; d < B; d++) {
      double cmax = 0;
      for (int j = 0; j < T; j++) cmax = fmax(cmax, AE[d * T + j]);
      if (cmax > oM.radius_hi + 1e-12) beyond++;
      PetscCall(MapBayesBinOf(T, A1 + d * T, 0, 1, &o1, &b1));
      PetscCall(MapBayesBinOf(T, AE + d * T, 0, 1, &oM, &bM));
      if (d % 2 == 0 && b1 == bM) inbin++; /* g = B + d: the even d are the bin draws */
    }
    CHECK(beyond > 0 && beyond <= B / 2, "T=%d explore 0.5: %d points beyond the radius cap %g, expected 1..%d", T, beyond, oM.radius_hi,
          (int)B / 2);
    CHECK(inbin == B / 2, "T=%d explore 0.5: %d of %d bin points in the reference's bins", T, inbin, (int)B / 2);
    /* explore 1: no bin draws, so the residuals do not matter; explore 0.5 with other residuals: they do */
    oM.explore = 1;
    PetscCall(MapBayesPropose(T, n, C, res, 0, 1, 2024, 1, B, &oM, AF, NULL));
    PetscCall(MapBayesPropose(T, n, C, res2, 0, 1, 2024, 1, B, &oM, AG, NULL));
    CHECK(!memcmp(AF, AG, sizeof(double) * B * T), "T=%d explore 1: the points depend on the residuals", T);
    oM.explore = 0.5;
    PetscCall(MapBayesPropose(T, n, C, res2, 0, 1, 2024, 1, B, &oM, AG, NULL));
    CHECK(memcmp(AE, AG, sizeof(double) * B * T) != 0, "T=%d explore 0.5: the points ignore the residuals", T);
    /* same bits on every rank */
    PetscCall(PetscArraycpy(AG, AE, B * T));
    PetscCallMPI(MPI_Bcast(AG, (int)(B * T), MPI_DOUBLE, 0, comm));
    CHECK(!memcmp(AE, AG, sizeof(double) * B * T), "T=%d: maximin points on this rank differ from rank 0's", T);
    PetscCall(PetscPrintf(comm, "explore 0.5 T=%d: %d of %d points beyond the radius cap\n", T, beyond, (int)B));
    PetscCall(PetscFree7(res, res2, A1, AM, AE, AF, AG));
    PetscCall(PetscFree(C));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode TestOptions(MPI_Comm comm)
{
  MapBayesOptions o;
  char            msg[1024];
  double          C[4] = {0.2, 0.3, 0.5, 0.5}, res[2] = {1, 2}, A[4];

  PetscFunctionBegin;
  MapBayesOptionsDefault(&o);
  CHECK(o.temperature == 0.07 && o.lambda == 0.5 && o.resamples == 30 && o.drop_fraction == 0.2 && o.radius_lo == 0.2 &&
          o.radius_hi == 0.8 && o.bins_per_angle == 0,
        "defaults differ from the reference's");
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_candidates", "0"));
  EXPECT_ERROR(MapBayesOptionsSetFromOptions(comm, &o), msg);
  CHECK(strstr(msg, "-map_bayes_candidates") && strstr(msg, "got 0"), "candidates error message: %s", msg);
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_candidates"));
  MapBayesOptionsDefault(&o);
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_explore", "1.5"));
  EXPECT_ERROR(MapBayesOptionsSetFromOptions(comm, &o), msg);
  CHECK(strstr(msg, "-map_bayes_explore") && strstr(msg, "1.5"), "explore error message: %s", msg);
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_explore"));
  MapBayesOptionsDefault(&o);
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_candidates", "7"));
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_explore", "0.25"));
  PetscCall(MapBayesOptionsSetFromOptions(comm, &o));
  CHECK(o.candidates == 7 && o.explore == 0.25, "options read: candidates %d explore %g", o.candidates, o.explore);
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_candidates"));
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_explore"));
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_radius", "0.1,0.9"));
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_temperature", "0.5"));
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_bins", "3"));
  PetscCall(MapBayesOptionsSetFromOptions(comm, &o));
  CHECK(o.radius_lo == 0.1 && o.radius_hi == 0.9 && o.temperature == 0.5 && o.bins_per_angle == 3 && o.lambda == 0.5,
        "options read: radius %g,%g temperature %g bins %d", o.radius_lo, o.radius_hi, o.temperature, o.bins_per_angle);
  PetscCall(PetscOptionsSetValue(NULL, "-map_bayes_radius", "0.9,0.1"));
  EXPECT_ERROR(MapBayesOptionsSetFromOptions(comm, &o), msg);
  CHECK(strstr(msg, "-map_bayes_radius") && strstr(msg, "0.9,0.1"), "radius error message: %s", msg);
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_radius"));
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_temperature"));
  PetscCall(PetscOptionsClearValue(NULL, "-map_bayes_bins"));

  MapBayesOptionsDefault(&o);
  o.temperature = 0;
  EXPECT_ERROR(MapBayesPropose(2, 2, C, res, 0, 1, 1, 0, 2, &o, A, NULL), msg);
  CHECK(strstr(msg, "-map_bayes_temperature") && strstr(msg, "got 0"), "temperature error message: %s", msg);
  MapBayesOptionsDefault(&o);
  res[1] = NAN;
  EXPECT_ERROR(MapBayesPropose(2, 2, C, res, 0, 1, 1, 0, 2, &o, A, NULL), msg);
  CHECK(strstr(msg, "point 1"), "NaN residual error message: %s", msg);
  res[1] = 2;
  EXPECT_ERROR(MapBayesPropose(2, 2, C, res, 1, 1, 1, 0, 2, &o, A, NULL), msg);
  CHECK(strstr(msg, "lo < hi"), "empty box error message: %s", msg);
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  PetscCall(PetscInitialize(&argc, &argv, NULL, "Bayesian MAP sampling tests"));
  MPI_Comm comm = PETSC_COMM_WORLD;
  PetscCall(TestRoundTrip());
  PetscCall(TestBinLayout());
  PetscCall(TestDeterminismAndBox(comm));
  PetscCall(TestConcentration(comm));
  PetscCall(TestEmptyBins(comm));
  PetscCall(TestSpaceFilling(comm));
  PetscCall(TestOptions(comm));
  int total = 0;
  PetscCallMPI(MPI_Allreduce(&nfail, &total, 1, MPI_INT, MPI_SUM, comm));
  PetscCall(PetscPrintf(comm, "ALL OK: %d failures\n", total));
  PetscCall(PetscFinalize());
  return total ? 1 : 0;
}
