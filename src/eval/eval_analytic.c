/* eval_analytic: closed-form test problems in the coefficients c with known Pareto fronts
 * (-map_eval_type analytic, -map_analytic_problem). Self-contained: depends on core only.
 *
 * Both problems are defined on the box [0,1]^T and report, per task i, an accuracy-like metric in
 * (0,1) that is to be maximised, and loss_i = 1 - accuracy_i (so every loss is the same closed form
 * as its accuracy; an identity-link surrogate represents "quadratic" exactly).
 *
 * quadratic (T >= 1): p_i = 0.2 * 1 + 0.6 * e_i (task i's "best merge": its own coefficient high,
 *   the others low) and
 *       accuracy_i(c) = 0.95 - (0.9 / 0.64) * ||c - p_i||^2 / T,
 *   which lies in [0.05, 0.95] on [0,1]^T. All objectives are concave quadratics with the same
 *   Hessian, so the Pareto set is the convex hull of the p_i, {0.2 + 0.6 lambda : lambda in the
 *   simplex}, and the front is convex (weighted sums find all of it).
 *
 * nonconvex (T >= 2): shares lambda_i = c_i / (T-1) for i < T and lambda_T = 1 - sum_{i<T} lambda_i (for
 *   T = 2: lambda = (c_1, 1 - c_1)), distance g = (c_T - 1/2)^2, phi(x) = x (1 + (1 - x)/2) (increasing,
 *   strictly concave) and
 *       accuracy_i(c) = 0.95 - 0.7 (1 + g) phi(lambda_i),   in [0.075, 0.95] on [0,1]^T.
 *   The Pareto set is exactly {c_T = 1/2} (c_1..c_{T-1} free: the lambda are then mutually
 *   non-dominated, as phi is increasing and sum lambda = 1; g > 0 only makes every objective worse).
 *   The front 0.95 - 0.7 phi(lambda) bulges away from the ideal point (at T = 2 its middle is
 *   0.95 - 0.7 * 0.625 per objective, below the chord's 0.95 - 0.7 * 0.5): weighted sums, being
 *   minimised by a concave function of lambda, find only the vertices of the lambda-region, while
 *   Chebyshev scalarisation finds all of it. Unlike DTLZ2 (sin/cos), no objective is flat at the
 *   box faces, so the scalarised problems have no spurious stationary points there.
 */
#include <mapmerge/eval.h>
#include <math.h>

#define MAP_ANALYTIC_QUAD_A     0.2
#define MAP_ANALYTIC_QUAD_B     0.6
#define MAP_ANALYTIC_QUAD_TOP   0.95
#define MAP_ANALYTIC_QUAD_SCALE (0.9 / 0.64)
#define MAP_ANALYTIC_NC_TOP     0.95
#define MAP_ANALYTIC_NC_SCALE   0.7

static PetscErrorCode MapAnalyticCheckProblem(const char *problem, int T)
{
  PetscFunctionBegin;
  PetscCheck(problem, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "analytic evaluator: no problem given (-map_analytic_problem quadratic|nonconvex)");
  if (!strcmp(problem, "quadratic")) {
    PetscCheck(T >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "analytic problem quadratic needs T >= 1 tasks, got %d", T);
  } else if (!strcmp(problem, "nonconvex")) {
    PetscCheck(T >= 2, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "analytic problem nonconvex needs T >= 2 tasks, got %d", T);
  } else {
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_UNKNOWN_TYPE, "-map_analytic_problem: unknown problem \"%s\"; one of quadratic, nonconvex",
            problem);
  }
  PetscFunctionReturn(0);
}

/*
  MapAnalyticEvaluate - metrics[T] of an analytic problem at c[T] (see the top of this file for the
  definitions). accuracy in (0,1) on [0,1]^T, loss = 1 - accuracy, correct = count = 0 (there are
  no samples). Not collective; errors on an unknown problem or a wrong task count.
*/
PetscErrorCode MapAnalyticEvaluate(const char *problem, int T, const double *c, MapTaskMetrics *metrics)
{
  PetscFunctionBegin;
  PetscCall(MapAnalyticCheckProblem(problem, T));
  for (int i = 0; i < T; i++) PetscCheck(isfinite(c[i]), PETSC_COMM_SELF, PETSC_ERR_FP, "analytic evaluator: c[%d] = %g is not finite", i, c[i]);
  if (!strcmp(problem, "quadratic")) {
    for (int i = 0; i < T; i++) {
      double d2 = 0;
      for (int k = 0; k < T; k++) {
        double e = c[k] - (MAP_ANALYTIC_QUAD_A + (k == i ? MAP_ANALYTIC_QUAD_B : 0));
        d2 += e * e;
      }
      metrics[i].accuracy = MAP_ANALYTIC_QUAD_TOP - MAP_ANALYTIC_QUAD_SCALE * d2 / T;
    }
  } else {
    double g = (c[T - 1] - 0.5) * (c[T - 1] - 0.5), rest = 1;
    for (int i = 0; i < T; i++) {
      double lam;
      if (i < T - 1) {
        lam = c[i] / (T - 1);
        rest -= lam;
      } else lam = rest;
      metrics[i].accuracy = MAP_ANALYTIC_NC_TOP - MAP_ANALYTIC_NC_SCALE * (1 + g) * lam * (1 + 0.5 * (1 - lam));
    }
  }
  for (int i = 0; i < T; i++) {
    metrics[i].loss    = 1 - metrics[i].accuracy;
    metrics[i].correct = 0;
    metrics[i].count   = 0;
  }
  PetscFunctionReturn(0);
}

/* n points lambda[n*T] of the unit simplex: the Das-Dennis lattice with the most divisions that
   fits into n, then uniform random points (fixed seed) up to n. */
static PetscErrorCode MapAnalyticSimplexPoints(int T, int n, double *lambda)
{
  int H = 0, cnt = 0, *k;

  PetscFunctionBegin;
  if (T == 1) {
    for (int p = 0; p < n; p++) lambda[p] = 1;
    PetscFunctionReturn(0);
  }
  /* count(H) = C(H+T-1, T-1) */
  for (int h = 1;; h++) {
    double c = 1;
    for (int j = 1; j < T; j++) c = c * (h + j) / j;
    if (c > n) break;
    H = h;
    if (h > 100000) break;
  }
  PetscCall(PetscCalloc1(T, &k));
  if (H > 0) {
    /* lexicographic enumeration of k with sum H */
    k[0] = H;
    for (;;) {
      for (int j = 0; j < T; j++) lambda[cnt * T + j] = (double)k[j] / H;
      cnt++;
      /* next composition: move one unit right from the last nonzero entry before the tail */
      int j = T - 2;
      while (j >= 0 && k[j] == 0) j--;
      if (j < 0) break;
      int tail = k[T - 1];
      k[T - 1] = 0;
      k[j]--;
      k[j + 1] = tail + 1;
    }
  }
  for (int p = cnt; p < n; p++) {
    double s = 0;
    for (int j = 0; j < T; j++) {
      lambda[p * T + j] = -log(1 - MapRngU01(0x414e414cULL, (uint64_t)j, (uint64_t)p));
      s += lambda[p * T + j];
    }
    for (int j = 0; j < T; j++) lambda[p * T + j] /= s;
  }
  PetscCall(PetscFree(k));
  PetscFunctionReturn(0);
}

/*
  MapAnalyticTrueFront - n points of the true Pareto front of an analytic problem in objective
  space (the accuracies, maximised): *F[n*T] (PetscFree). quadratic: the images of points spread
  over the convex hull of the p_i; nonconvex: the images of points of the Pareto set c_T = 1/2
  (c_1..c_{T-1} on a grid, uniform for T = 2, completed with fixed-seed random points). Not collective.
*/
PetscErrorCode MapAnalyticTrueFront(const char *problem, int T, int n, double **F)
{
  double         *lambda, *c;
  MapTaskMetrics *met;

  PetscFunctionBegin;
  PetscCall(MapAnalyticCheckProblem(problem, T));
  PetscCheck(n >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "true front: need n >= 1 points, got %d", n);
  PetscCall(PetscMalloc1((size_t)n * T, F));
  PetscCall(PetscMalloc3((size_t)n * T, &lambda, T, &c, T, &met));
  if (!strcmp(problem, "quadratic")) {
    if (T == 2) {
      for (int p = 0; p < n; p++) {
        double s          = n > 1 ? (double)p / (n - 1) : 0.5;
        lambda[2 * p]     = 1 - s;
        lambda[2 * p + 1] = s;
      }
    } else PetscCall(MapAnalyticSimplexPoints(T, n, lambda));
  } else {
    /* grid of G^(T-1) points over c_1..c_{T-1}, then random points */
    int G = 1, d = T - 1, cnt = 0;
    while (pow(G + 1, d) <= n) G++;
    int total = (int)pow(G, d);
    for (; cnt < total && G > 1; cnt++) {
      int r = cnt;
      for (int k = 0; k < d; k++) {
        lambda[(size_t)cnt * T + k] = (double)(r % G) / (G - 1);
        r /= G;
      }
    }
    for (; cnt < n; cnt++)
      for (int k = 0; k < d; k++) lambda[(size_t)cnt * T + k] = MapRngU01(0x4e434f4eULL, (uint64_t)k, (uint64_t)cnt);
  }
  for (int p = 0; p < n; p++) {
    const double *l = lambda + (size_t)p * T;
    if (!strcmp(problem, "quadratic")) {
      for (int k = 0; k < T; k++) c[k] = MAP_ANALYTIC_QUAD_A + MAP_ANALYTIC_QUAD_B * l[k];
    } else {
      for (int k = 0; k < T - 1; k++) c[k] = l[k];
      c[T - 1] = 0.5;
    }
    PetscCall(MapAnalyticEvaluate(problem, T, c, met));
    for (int k = 0; k < T; k++) (*F)[(size_t)p * T + k] = met[k].accuracy;
  }
  PetscCall(PetscFree3(lambda, c, met));
  PetscFunctionReturn(0);
}
