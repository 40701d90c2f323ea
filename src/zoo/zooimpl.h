/* Private to the zoo module: the Fashion-MNIST reader, the image transforms and a small MLP
 * trainer (Linear+ReLU encoder, linear head, softmax cross-entropy, Adam) on fixed-order kernels. */
#ifndef MAPMERGE_ZOOIMPL_H
#define MAPMERGE_ZOOIMPL_H

#include <mapmerge/zoo.h>

#define MAP_ZOO_SIDE    28
#define MAP_ZOO_PIXELS  (MAP_ZOO_SIDE * MAP_ZOO_SIDE)
#define MAP_ZOO_CLASSES 10

/* One split of Fashion-MNIST: n images of 784 uint8 pixels (row-major 28x28) and labels 0..9. */
typedef struct {
  int            n;
  unsigned char *pixels; /* [n*784] */
  unsigned char *labels; /* [n] */
} MapZooSplit;

PetscErrorCode MapZooSplitLoad(const char *dir, const char *prefix, int expect_n, MapZooSplit *s);
PetscErrorCode MapZooSplitFree(MapZooSplit *s);

/* A task: a pixel permutation (out[p] = in[src[p]]), then optionally 1 - x. */
typedef struct {
  char name[MAP_NAME_LEN];
  int  src[MAP_ZOO_PIXELS];
  int  invert;
} MapZooTransform;

/* MapZooTransformSetUp - the transform named `name` (see MapZooTaskNames); `seed` keys the
   random pixel permutation of "permute". */
PetscErrorCode MapZooTransformSetUp(const char *name, uint64_t seed, MapZooTransform *tf);
/* MapZooTransformApply - rows idx[0..b) of the split, transformed, as floats in [0,1]: x[b*784]. */
void                     MapZooTransformApply(const MapZooTransform *tf, const MapZooSplit *s, const int *idx, int b, float *x);
extern const char *const MapZooTaskNames[]; /* NULL-terminated list of the known transforms */

/* The MLP: encoder layers k = 0..L-1 (weight [w[k+1], w[k]], bias [w[k+1]]) with ReLU after each,
   then the head (weight [10, w[L]], bias [10]). All parameters live in one buffer `p`, layer by
   layer (W then b), head last; offW/offb index into it. */
typedef struct {
  int     L;
  int     w[MAP_ZOO_MAX_LAYERS + 2];
  int64_t P;
  int64_t offW[MAP_ZOO_MAX_LAYERS + 1], offb[MAP_ZOO_MAX_LAYERS + 1];
  float  *p;
} MapZooMLP;

PetscErrorCode MapZooMLPCreate(int L, const int *widths, MapZooMLP *m);
PetscErrorCode MapZooMLPCopy(const MapZooMLP *src, MapZooMLP *dst);
PetscErrorCode MapZooMLPDestroy(MapZooMLP *m);
/* MapZooMLPInit - He-uniform weights, zero biases, keyed on (seed, stream, element index). */
void MapZooMLPInit(MapZooMLP *m, uint64_t seed, uint64_t stream);

/* Training hyper-parameters for one phase. */
typedef struct {
  int      n; /* number of training images used (the first n of the split) */
  int      epochs;
  int      batch;
  double   lr;
  uint64_t seed, stream; /* key of the per-epoch shuffles */
} MapZooTrainConfig;

/* MapZooTrain - Adam on softmax cross-entropy. progress(ctx, epoch, loss, acc) after each epoch. */
typedef PetscErrorCode (*MapZooProgressFn)(void *ctx, int epoch, double loss, double acc);
PetscErrorCode MapZooTrain(MapZooMLP *m, const MapZooTransform *tf, const MapZooSplit *s, const MapZooTrainConfig *cfg,
                           MapZooProgressFn progress, void *ctx);
/* MapZooEvaluate - accuracy and mean loss on images [first, first+n) of the split. */
PetscErrorCode MapZooEvaluate(const MapZooMLP *m, const MapZooTransform *tf, const MapZooSplit *s, int first, int n,
                              double *acc, double *loss);

/* MapZooStream - a 64-bit RNG stream id from a purpose, a name and an index (FNV-1a), so that
   what a task draws depends on its name, not on its position in the list or on the rank. */
uint64_t MapZooStream(const char *purpose, const char *name, uint64_t index);

#endif
