/* surrogate_quad: the model itself — the links (sigmoid for accuracy, softplus for loss, identity), the
 * quadratic features, and the value, gradient and Hessian of g(phi(c) . theta) in c. Shared by the fit
 * (surrogate_fit.c), the surrogate object (surrogate.c) and every consumer of stored parameters, so
 * the same parameters give the same bits everywhere. */
#include "surrogateimpl.h"

/* Clipping of the targets for the linearised start only (the final fit is in metric space). */
#define MAP_CLIP_ACC  1e-4 /* accuracies into [1e-4, 1-1e-4] before the logit */
#define MAP_CLIP_LOSS 1e-8 /* losses to >= 1e-8 before softplus^{-1} */

static double map_sigmoid(double z)
{
  if (z >= 0) return 1.0 / (1.0 + exp(-z));
  double e = exp(z);
  return e / (1.0 + e);
}

double MapLinkEval(MapLink link, double z)
{
  switch (link) {
  case MAP_LINK_SIGMOID:
    return map_sigmoid(z);
  case MAP_LINK_SOFTPLUS:
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
  default:
    return z;
  }
}

double MapLinkDeriv(MapLink link, double z)
{
  switch (link) {
  case MAP_LINK_SIGMOID: {
    double g = map_sigmoid(z);
    return g * (1.0 - g);
  }
  case MAP_LINK_SOFTPLUS:
    return map_sigmoid(z);
  default:
    return 1.0;
  }
}

double MapLinkDeriv2(MapLink link, double z)
{
  switch (link) {
  case MAP_LINK_SIGMOID: {
    double g = map_sigmoid(z);
    return g * (1.0 - g) * (1.0 - 2.0 * g);
  }
  case MAP_LINK_SOFTPLUS: {
    double g = map_sigmoid(z);
    return g * (1.0 - g);
  }
  default:
    return 0.0;
  }
}

double MapLinkInverseClipped(MapLink link, double y)
{
  switch (link) {
  case MAP_LINK_SIGMOID: {
    double p = PetscMin(PetscMax(y, MAP_CLIP_ACC), 1.0 - MAP_CLIP_ACC);
    return log(p) - log1p(-p);
  }
  case MAP_LINK_SOFTPLUS: {
    double v = PetscMax(y, MAP_CLIP_LOSS);
    /* log(expm1(v)) overflows for large v; there log(e^v - 1) = v + log1p(-e^{-v}) */
    return v > 30 ? v + log1p(-exp(-v)) : log(expm1(v));
  }
  default:
    return y;
  }
}

const char *MapLinkName(MapLink link)
{
  switch (link) {
  case MAP_LINK_SIGMOID:
    return "sigmoid";
  case MAP_LINK_SOFTPLUS:
    return "softplus";
  default:
    return "identity";
  }
}

void MapQuadraticFeatures(int T, const double *c, double *phi)
{
  int k    = 0;
  phi[k++] = 1.0;
  for (int i = 0; i < T; i++) phi[k++] = c[i];
  for (int i = 0; i < T; i++)
    for (int j = i; j < T; j++) phi[k++] = c[i] * c[j];
}

/*
  MapQuadraticPredict - g(phi(c) . theta) and its gradient in c for the fixed feature order; the one
  formula behind MapSurrogatePredict and every consumer of stored parameters (export's pick), so the
  same parameters give the same bits everywhere. Not collective.
*/
/* z = phi(c) . theta and, when gz != NULL, grad z = b + A c (the same operation order everywhere) */
static void MapQuadraticZ(int T, const double *th, const double *c, double *z, double *gz)
{
  *z = th[0];
  for (int i = 0; i < T; i++) *z += th[1 + i] * c[i];
  for (int i = 0, q = 1 + T; i < T; i++)
    for (int j = i; j < T; j++, q++) *z += th[q] * c[i] * c[j];
  if (!gz) return;
  for (int i = 0; i < T; i++) gz[i] = th[1 + i];
  for (int i = 0, q = 1 + T; i < T; i++)
    for (int j = i; j < T; j++, q++) {
      if (i == j) gz[i] += 2 * th[q] * c[i];
      else {
        gz[i] += th[q] * c[j];
        gz[j] += th[q] * c[i];
      }
    }
}

PetscErrorCode MapQuadraticPredict(int T, MapLink link, const double *th, const double *c, double *value, double *grad)
{
  double z;

  PetscFunctionBegin;
  MapQuadraticZ(T, th, c, &z, grad);
  if (value) *value = MapLinkEval(link, z);
  if (grad) {
    double gp = MapLinkDeriv(link, z);
    for (int i = 0; i < T; i++) grad[i] *= gp;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode MapQuadraticHessianAdd(int T, MapLink link, const double *th, const double *c, double scale, double *H)
{
  double z, gz[MAP_NAME_LEN], d1, d2;

  PetscFunctionBegin;
  PetscCheck(T <= MAP_NAME_LEN, PETSC_COMM_SELF, PETSC_ERR_SUP, "MapQuadraticHessianAdd: at most %d coefficients, got %d", MAP_NAME_LEN, T);
  MapQuadraticZ(T, th, c, &z, gz);
  d1 = scale * MapLinkDeriv(link, z);
  d2 = scale * MapLinkDeriv2(link, z);
  for (int j = 0; j < T; j++)
    for (int i = 0; i < T; i++) H[i + j * T] += d2 * gz[i] * gz[j];
  for (int i = 0, q = 1 + T; i < T; i++)
    for (int j = i; j < T; j++, q++) {
      if (i == j) H[i + i * T] += 2 * d1 * th[q];
      else {
        H[i + j * T] += d1 * th[q];
        H[j + i * T] += d1 * th[q];
      }
    }
  PetscFunctionReturn(0);
}
