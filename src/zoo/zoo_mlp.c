/* zoo: a small MLP trainer (forward, backward, Adam) on fixed-order kernels (MapFixedGemm,
 * MapFixedExp/Log), not BLAS: one (seed, task) gives the same bits on whichever rank trains it,
 * and on any x86-64 CPU whatever kernels or thread count its BLAS would choose. */
#include "zooimpl.h"
#include "fixedimpl.h"
#include <math.h>

PetscErrorCode MapZooMLPCreate(int L, const int *widths, MapZooMLP *m)
{
  PetscFunctionBegin;
  PetscCheck(L >= 1 && L <= MAP_ZOO_MAX_LAYERS, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "MLP: expected 1..%d encoder layers, got %d", MAP_ZOO_MAX_LAYERS, L);
  PetscCall(PetscMemzero(m, sizeof(*m)));
  m->L = L;
  for (int k = 0; k <= L; k++) m->w[k] = widths[k];
  m->w[L + 1] = MAP_ZOO_CLASSES;
  int64_t off = 0;
  for (int k = 0; k <= L; k++) {
    m->offW[k] = off;
    off += (int64_t)m->w[k + 1] * m->w[k];
    m->offb[k] = off;
    off += m->w[k + 1];
  }
  m->P = off;
  PetscCall(PetscCalloc1(m->P, &m->p));
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooMLPCopy(const MapZooMLP *src, MapZooMLP *dst)
{
  PetscFunctionBegin;
  PetscCall(MapZooMLPCreate(src->L, src->w, dst));
  PetscCall(PetscArraycpy(dst->p, src->p, src->P));
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooMLPDestroy(MapZooMLP *m)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(m->p));
  m->P = 0;
  PetscFunctionReturn(0);
}

void MapZooMLPInit(MapZooMLP *m, uint64_t seed, uint64_t stream)
{
  for (int k = 0; k <= m->L; k++) {
    int64_t nw = (int64_t)m->w[k + 1] * m->w[k];
    double  a  = sqrt(6.0 / m->w[k]); /* He-uniform for ReLU inputs */
    for (int64_t i = 0; i < nw; i++) {
      int64_t g            = m->offW[k] + i; /* global element index: the key */
      m->p[m->offW[k] + i] = (float)((2.0 * MapRngU01(seed, stream, (uint64_t)g) - 1.0) * a);
    }
    for (int i = 0; i < m->w[k + 1]; i++) m->p[m->offb[k] + i] = 0.0f;
  }
}

/* Work space of a forward/backward pass over at most B rows. */
typedef struct {
  int    B;
  float *x;                           /* [B, w0] */
  float *act[MAP_ZOO_MAX_LAYERS + 2]; /* act[k] = input of layer k; act[L+1] = logits */
  float *dA, *dB;                     /* gradient w.r.t. activations, ping-pong [B, maxw] */
  float *Wt;                          /* one layer's weight transposed, [in, out] */
} MapZooWork;

static PetscErrorCode MapZooWorkCreate(const MapZooMLP *m, int B, MapZooWork *w)
{
  int     maxw = 0;
  int64_t maxp = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(w, sizeof(*w)));
  w->B = B;
  for (int k = 0; k <= m->L + 1; k++) maxw = PetscMax(maxw, m->w[k]);
  for (int k = 0; k <= m->L; k++) maxp = PetscMax(maxp, (int64_t)m->w[k] * m->w[k + 1]);
  PetscCall(PetscMalloc1(maxp, &w->Wt));
  PetscCall(PetscMalloc1((size_t)B * m->w[0], &w->x));
  w->act[0] = w->x;
  for (int k = 1; k <= m->L + 1; k++) PetscCall(PetscMalloc1((size_t)B * m->w[k], &w->act[k]));
  PetscCall(PetscMalloc1((size_t)B * maxw, &w->dA));
  PetscCall(PetscMalloc1((size_t)B * maxw, &w->dB));
  PetscFunctionReturn(0);
}

static PetscErrorCode MapZooWorkDestroy(const MapZooMLP *m, MapZooWork *w)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(w->x));
  for (int k = 1; k <= m->L + 1; k++) PetscCall(PetscFree(w->act[k]));
  PetscCall(PetscFree(w->dA));
  PetscCall(PetscFree(w->dB));
  PetscCall(PetscFree(w->Wt));
  PetscFunctionReturn(0);
}

/* forward pass of b rows of w->x; logits end in w->act[L+1] */
static void MapZooForward(const MapZooMLP *m, MapZooWork *w, int b)
{
  for (int k = 0; k <= m->L; k++) {
    const int    in = m->w[k], out = m->w[k + 1];
    float       *A = w->act[k], *Z = w->act[k + 1];
    const float *W = m->p + m->offW[k], *bias = m->p + m->offb[k];
    /* Z[b,out] = A[b,in] W^T + bias, W^T [in,out] made contiguous in out for the kernel's lanes */
    for (int j = 0; j < out; j++)
      for (int i = 0; i < in; i++) w->Wt[(size_t)i * out + j] = W[(size_t)j * in + i];
    MapFixedGemm(b, out, in, A, in, 1, w->Wt, out, Z, out);
    for (int r = 0; r < b; r++)
      for (int j = 0; j < out; j++) Z[(size_t)r * out + j] += bias[j];
    if (k < m->L)
      for (size_t i = 0; i < (size_t)b * out; i++) Z[i] = Z[i] > 0.0f ? Z[i] : 0.0f;
  }
}

/* softmax cross-entropy of row r of the logits: loss (double), whether the argmax (first maximum)
   is the label, and when grad != NULL, (softmax - onehot) * scale into grad[10] */
static double MapZooSoftmaxCE(const float *z, int label, float scale, float *grad, int *correct)
{
  int   am = 0;
  float mx = z[0];
  for (int j = 1; j < MAP_ZOO_CLASSES; j++)
    if (z[j] > mx) mx = z[j], am = j;
  double s = 0.0;
  float  e[MAP_ZOO_CLASSES];
  for (int j = 0; j < MAP_ZOO_CLASSES; j++) {
    e[j] = (float)MapFixedExp((double)(z[j] - mx));
    s += e[j];
  }
  *correct = am == label;
  if (grad) {
    float inv = (float)(1.0 / s);
    for (int j = 0; j < MAP_ZOO_CLASSES; j++) grad[j] = (e[j] * inv - (j == label ? 1.0f : 0.0f)) * scale;
  }
  return MapFixedLog(s) - (double)(z[label] - mx);
}

/* backward pass of b rows (after MapZooForward), gradient of the mean loss into g[P] */
static void MapZooBackward(const MapZooMLP *m, MapZooWork *w, int b, float *g)
{
  float *dZ = w->dA, *dNext = w->dB;
  /* dZ holds d loss / d (pre-activation of layer k), [b, w[k+1]], on entry: of the logits */
  for (int k = m->L; k >= 0; k--) {
    const int in = m->w[k], out = m->w[k + 1];
    float    *gW = g + m->offW[k], *gb = g + m->offb[k];
    /* gW[out,in] = dZ[b,out]^T A[b,in] */
    MapFixedGemm(out, in, b, dZ, 1, out, w->act[k], in, gW, in);
    for (int j = 0; j < out; j++) gb[j] = 0.0f;
    for (int r = 0; r < b; r++)
      for (int j = 0; j < out; j++) gb[j] += dZ[(size_t)r * out + j];
    if (k == 0) break;
    /* dA[b,in] = dZ[b,out] W[out,in], then through the ReLU of layer k-1 */
    MapFixedGemm(b, in, out, dZ, out, 1, m->p + m->offW[k], in, dNext, in);
    const float *A = w->act[k];
    for (size_t i = 0; i < (size_t)b * in; i++)
      if (!(A[i] > 0.0f)) dNext[i] = 0.0f;
    float *t = dZ;
    dZ       = dNext;
    dNext    = t;
  }
}

PetscErrorCode MapZooTrain(MapZooMLP *m, const MapZooTransform *tf, const MapZooSplit *s, const MapZooTrainConfig *cfg,
                           MapZooProgressFn progress, void *ctx)
{
  MapZooWork   w;
  float       *g, *mom, *vel;
  int         *order, *idx;
  int          labels[4096];
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double       b1t = 1.0, b2t = 1.0; /* b1^step, b2^step: running products, not pow() (libm variants) */

  PetscFunctionBegin;
  PetscCheck(cfg->n >= 1 && cfg->n <= s->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "zoo: training set size must be in [1, %d], got %d", s->n, cfg->n);
  PetscCheck(cfg->batch >= 1 && cfg->batch <= 4096, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "zoo: batch size must be in [1, 4096], got %d", cfg->batch);
  PetscCall(MapZooWorkCreate(m, cfg->batch, &w));
  PetscCall(PetscCalloc1(m->P, &g));
  PetscCall(PetscCalloc1(m->P, &mom));
  PetscCall(PetscCalloc1(m->P, &vel));
  PetscCall(PetscMalloc1(cfg->n, &order));
  PetscCall(PetscMalloc1(cfg->batch, &idx));
  for (int e = 0; e < cfg->epochs; e++) {
    double loss    = 0.0;
    long   correct = 0;
    /* Fisher-Yates with counter-based draws keyed on (epoch, position) */
    for (int i = 0; i < cfg->n; i++) order[i] = i;
    for (int i = cfg->n - 1; i > 0; i--) {
      int j    = (int)(MapRngU64(cfg->seed, cfg->stream, (uint64_t)e * (uint64_t)cfg->n + (uint64_t)i) % (uint64_t)(i + 1));
      int t    = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    for (int start = 0; start < cfg->n; start += cfg->batch) {
      int b = PetscMin(cfg->batch, cfg->n - start);
      for (int r = 0; r < b; r++) {
        idx[r]    = order[start + r];
        labels[r] = s->labels[idx[r]];
      }
      MapZooTransformApply(tf, s, idx, b, w.x);
      MapZooForward(m, &w, b);
      const float *Z = w.act[m->L + 1];
      for (int r = 0; r < b; r++) {
        int c;
        loss += MapZooSoftmaxCE(Z + (size_t)r * MAP_ZOO_CLASSES, labels[r], 1.0f / (float)b, w.dA + (size_t)r * MAP_ZOO_CLASSES, &c);
        correct += c;
      }
      MapZooBackward(m, &w, b, g);
      /* Adam with bias correction folded into the step size */
      b1t *= b1;
      b2t *= b2;
      const float lr_t = (float)(cfg->lr * sqrt(1.0 - b2t) / (1.0 - b1t));
      for (int64_t i = 0; i < m->P; i++) {
        mom[i] = (float)b1 * mom[i] + (float)(1.0 - b1) * g[i];
        vel[i] = (float)b2 * vel[i] + (float)(1.0 - b2) * g[i] * g[i];
        m->p[i] -= lr_t * mom[i] / (sqrtf(vel[i]) + (float)eps);
      }
    }
    PetscCheck(isfinite(loss), PETSC_COMM_SELF, PETSC_ERR_FP, "zoo: training diverged in epoch %d (loss %g); lower -map_zoo_lr (%g)",
               e + 1, loss, cfg->lr);
    if (progress) PetscCall(progress(ctx, e + 1, loss / cfg->n, (double)correct / cfg->n));
  }
  PetscCall(PetscFree(idx));
  PetscCall(PetscFree(order));
  PetscCall(PetscFree(vel));
  PetscCall(PetscFree(mom));
  PetscCall(PetscFree(g));
  PetscCall(MapZooWorkDestroy(m, &w));
  PetscFunctionReturn(0);
}

PetscErrorCode MapZooEvaluate(const MapZooMLP *m, const MapZooTransform *tf, const MapZooSplit *s, int first, int n,
                              double *acc, double *loss)
{
  const int  B = 500;
  MapZooWork w;
  int        idx[500];
  double     l       = 0.0;
  long       correct = 0;

  PetscFunctionBegin;
  PetscCheck(first >= 0 && n >= 1 && first + n <= s->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE,
             "zoo: evaluation range [%d, %d) outside the split of %d images", first, first + n, s->n);
  PetscCall(MapZooWorkCreate(m, B, &w));
  for (int start = 0; start < n; start += B) {
    int b = PetscMin(B, n - start);
    for (int r = 0; r < b; r++) idx[r] = first + start + r;
    MapZooTransformApply(tf, s, idx, b, w.x);
    MapZooForward(m, &w, b);
    for (int r = 0; r < b; r++) {
      int c;
      l += MapZooSoftmaxCE(w.act[m->L + 1] + (size_t)r * MAP_ZOO_CLASSES, s->labels[idx[r]], 1.0f, NULL, &c);
      correct += c;
    }
  }
  PetscCall(MapZooWorkDestroy(m, &w));
  *acc  = (double)correct / n;
  *loss = l / n;
  PetscFunctionReturn(0);
}
