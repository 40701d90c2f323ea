/* zoo: a small MLP trainer on cblas_sgemm (forward, backward, Adam). Everything is a fixed
 * sequence of BLAS calls and plain loops in a fixed order, so one (seed, task) gives the same
 * bits on whichever rank trains it. */
#include "zooimpl.h"
#include <cblas.h>
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
      int64_t g             = m->offW[k] + i; /* global element index: the key */
      m->p[m->offW[k] + i] = (float)((2.0 * MapRngU01(seed, stream, (uint64_t)g) - 1.0) * a);
    }
    for (int i = 0; i < m->w[k + 1]; i++) m->p[m->offb[k] + i] = 0.0f;
  }
}

/* Work space of a forward/backward pass over at most B rows. */
typedef struct {
  int    B;
  float *x;                          /* [B, w0] */
  float *act[MAP_ZOO_MAX_LAYERS + 2]; /* act[k] = input of layer k; act[L+1] = logits */
  float *dA, *dB;                    /* gradient w.r.t. activations, ping-pong [B, maxw] */
} MapZooWork;

static PetscErrorCode MapZooWorkCreate(const MapZooMLP *m, int B, MapZooWork *w)
{
  int maxw = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(w, sizeof(*w)));
  w->B = B;
  for (int k = 0; k <= m->L + 1; k++) maxw = PetscMax(maxw, m->w[k]);
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
  PetscFunctionReturn(0);
}

/* forward pass of b rows of w->x; logits end in w->act[L+1] */
static void MapZooForward(const MapZooMLP *m, MapZooWork *w, int b)
{
  for (int k = 0; k <= m->L; k++) {
    const int in = m->w[k], out = m->w[k + 1];
    float    *A = w->act[k], *Z = w->act[k + 1];
    const float *W = m->p + m->offW[k], *bias = m->p + m->offb[k];
    for (int r = 0; r < b; r++)
      for (int j = 0; j < out; j++) Z[(size_t)r * out + j] = bias[j];
    /* Z[b,out] += A[b,in] W[out,in]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, out, in, 1.0f, A, in, W, in, 1.0f, Z, out);
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
    e[j] = expf(z[j] - mx);
    s += e[j];
  }
  *correct = am == label;
  if (grad) {
    float inv = (float)(1.0 / s);
    for (int j = 0; j < MAP_ZOO_CLASSES; j++) grad[j] = (e[j] * inv - (j == label ? 1.0f : 0.0f)) * scale;
  }
  return log(s) - (double)(z[label] - mx);
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
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, b, 1.0f, dZ, out, w->act[k], in, 0.0f, gW, in);
    for (int j = 0; j < out; j++) gb[j] = 0.0f;
    for (int r = 0; r < b; r++)
      for (int j = 0; j < out; j++) gb[j] += dZ[(size_t)r * out + j];
    if (k == 0) break;
    /* dA[b,in] = dZ[b,out] W[out,in], then through the ReLU of layer k-1 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, in, out, 1.0f, dZ, out, m->p + m->offW[k], in, 0.0f, dNext, in);
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
  MapZooWork w;
  float     *g, *mom, *vel;
  int       *order, *idx;
  int        labels[4096];
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  int64_t    step = 0;

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
    double loss = 0.0;
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
      step++;
      const float lr_t = (float)(cfg->lr * sqrt(1.0 - pow(b2, (double)step)) / (1.0 - pow(b1, (double)step)));
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
  double     l = 0.0;
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
