/* safetensors: dtypes, float conversions, header parser and validator. The reader (open/read) is
 * in safetensors_read.c, the writers in safetensors_write.c. */
#define _POSIX_C_SOURCE 200809L
#include <mapmerge/safetensors.h>
#include <jansson.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  #error "mapmerge's safetensors code assumes a little-endian host (the format is little-endian)"
#endif

/* ---- dtypes ---- */
static const struct {
  const char *name;
  MapDType    dt;
  size_t      size;
} map_dtypes[] = {
  {"F32", MAP_DTYPE_F32, 4},
  {"F16", MAP_DTYPE_F16, 2},
  {"BF16", MAP_DTYPE_BF16, 2},
  {"F64", MAP_DTYPE_F64, 8},
  {"I64", MAP_DTYPE_I64, 8},
  {"I32", MAP_DTYPE_I32, 4},
  {"I16", MAP_DTYPE_I16, 2},
  {"I8", MAP_DTYPE_I8, 1},
  {"U8", MAP_DTYPE_U8, 1},
  {"BOOL", MAP_DTYPE_BOOL, 1},
  {"U16", MAP_DTYPE_OTHER, 2},
  {"U32", MAP_DTYPE_OTHER, 4},
  {"U64", MAP_DTYPE_OTHER, 8},
  {"F8_E5M2", MAP_DTYPE_OTHER, 1},
  {"F8_E4M3", MAP_DTYPE_OTHER, 1},
  {"F8_E8M0", MAP_DTYPE_OTHER, 1},
  {"C64", MAP_DTYPE_OTHER, 8},
};
#define MAP_NDTYPES (sizeof(map_dtypes) / sizeof(map_dtypes[0]))

const char *MapDTypeName(MapDType dt)
{
  if (dt == MAP_DTYPE_OTHER) return "OTHER";
  for (size_t i = 0; i < MAP_NDTYPES; i++)
    if (map_dtypes[i].dt == dt) return map_dtypes[i].name;
  return "INVALID";
}

const char *MapTensorDTypeName(const MapTensorInfo *t) { return t->dtype_name[0] ? t->dtype_name : MapDTypeName(t->dtype); }

size_t MapDTypeSize(MapDType dt)
{
  if (dt == MAP_DTYPE_OTHER) return 0; /* the size depends on the name; use end-begin */
  for (size_t i = 0; i < MAP_NDTYPES; i++)
    if (map_dtypes[i].dt == dt) return map_dtypes[i].size;
  return 0;
}

PetscBool MapDTypeIsFloat(MapDType dt)
{
  return (dt == MAP_DTYPE_F32 || dt == MAP_DTYPE_F16 || dt == MAP_DTYPE_BF16 || dt == MAP_DTYPE_F64) ? PETSC_TRUE : PETSC_FALSE;
}

PetscErrorCode MapDTypeFromName(const char *name, MapDType *dt, size_t *size, PetscBool *found)
{
  PetscFunctionBegin;
  *found = PETSC_FALSE;
  for (size_t i = 0; i < MAP_NDTYPES; i++) {
    if (!strcmp(map_dtypes[i].name, name)) {
      *dt    = map_dtypes[i].dt;
      *size  = map_dtypes[i].size;
      *found = PETSC_TRUE;
      break;
    }
  }
  PetscFunctionReturn(0);
}

/* ---- IEEE half / bfloat16 ---- */
static inline uint32_t map_f2u(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float map_u2f(uint32_t u)
{
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float MapF16ToF32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24 is exact in F32 */
    float v = (float)mant * 0x1p-24f;
    return map_u2f(map_f2u(v) | sign);
  }
  if (exp == 31) return map_u2f(sign | 0x7f800000u | (mant << 13)); /* Inf, NaN (payload kept) */
  return map_u2f(sign | ((exp + 112u) << 23) | (mant << 13));
}

float MapBF16ToF32(uint16_t b) { return map_u2f((uint32_t)b << 16); }

uint16_t MapF32ToF16(float f)
{
  uint32_t x = map_f2u(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN stays a quiet NaN */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                       /* >= 65520 rounds to Inf (65504 is odd) */
  if (a < 0x38800000u) {
    /* result is subnormal in F16: round a * 2^24 to an integer, ties to even */
    if (a <= 0x33000000u) return (uint16_t)sign; /* <= 2^-25: the tie at 2^-25 goes to even, 0 */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (uint16_t)(sign | r); /* r == 0x400 is the smallest normal, encoded right */
  }
  uint32_t h = (a >> 13) - (112u << 10), rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* a carry into the exponent is correct */
  return (uint16_t)(sign | h);
}

#if defined(__x86_64__) && defined(__GNUC__)
  #include <immintrin.h>
__attribute__((target("f16c,avx"))) static int64_t F32ToF16_F16C(const float *x, int64_t n, uint16_t *h)
{
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm_storeu_si128((__m128i *)(h + j), _mm256_cvtps_ph(_mm256_loadu_ps(x + j), _MM_FROUND_TO_NEAREST_INT));
  return j;
}
#endif

void MapF32ToF16Array(const float *x, int64_t n, uint16_t *h)
{
  int64_t j = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  }
  if (have) j = F32ToF16_F16C(x, n, h);
#endif
  for (; j < n; j++) h[j] = MapF32ToF16(x[j]);
}

/* MapBF16ToF32Array: BF16 checkpoints are the common case of an LLM import, so 8 at a time where AVX2
   is available (exact either way: a BF16 value is the high half of an F32) */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void BF16ToF32_AVX2(const unsigned char *b, int64_t n, float *o)
{
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    _mm256_storeu_si256((__m256i *)(o + k), _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(b + 2 * k))), 16));
  for (; k < n; k++) {
    uint16_t h;
    memcpy(&h, b + 2 * k, 2);
    o[k] = MapBF16ToF32(h);
  }
}
#endif

void MapBF16ToF32Array(const void *bf16, int64_t n, float *out)
{
  const unsigned char *b = (const unsigned char *)bf16;
#if defined(__x86_64__) && defined(__GNUC__)
  static int have = -1;
  if (have < 0) have = __builtin_cpu_supports("avx2") ? 1 : 0;
  if (have) {
    BF16ToF32_AVX2(b, n, out);
    return;
  }
#endif
  for (int64_t k = 0; k < n; k++) {
    uint16_t h;
    memcpy(&h, b + 2 * k, 2);
    out[k] = MapBF16ToF32(h);
  }
}

uint16_t MapF32ToBF16(float f)
{
  uint32_t x = map_f2u(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN, sign kept */
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

/* ---- header parser ---- */
#define MAP_ST_MAX_HEADER 100000000ull

typedef struct {
  MapTensorInfo info;
  int           order; /* position in the JSON object, breaks ties between empty tensors */
} map_sort_entry;

static int map_cmp_begin(const void *a, const void *b)
{
  const map_sort_entry *x = (const map_sort_entry *)a, *y = (const map_sort_entry *)b;
  if (x->info.begin != y->info.begin) return x->info.begin < y->info.begin ? -1 : 1;
  if (x->info.end != y->info.end) return x->info.end < y->info.end ? -1 : 1;
  return (x->order > y->order) - (x->order < y->order);
}

/* reads a JSON integer >= 0 */
static PetscErrorCode map_get_uint(const char *what, const char *tname, const char *field, json_t *v, uint64_t *out)
{
  PetscFunctionBegin;
  PetscCheck(json_is_integer(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\": %s must hold integers, got a JSON %s",
             what, tname, field,
             json_is_real(v) ? "real" : json_is_string(v) ? "string"
                                      : json_is_array(v)  ? "array"
                                      : json_is_object(v) ? "object"
                                                          : "literal");
  json_int_t i = json_integer_value(v);
  PetscCheck(i >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\": %s must be >= 0, got %lld", what, tname, field,
             (long long)i);
  *out = (uint64_t)i;
  PetscFunctionReturn(0);
}

static PetscErrorCode map_parse_tensor(const char *what, const char *key, json_t *val, uint64_t data_size, MapTensorInfo *t)
{
  size_t    isize = 0, klen = strlen(key);
  PetscBool found;

  PetscFunctionBegin;
  PetscCheck(klen < MAP_NAME_LEN, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor name of %zu bytes is longer than the limit %d: \"%.64s...\"",
             what, klen, MAP_NAME_LEN - 1, key);
  /* the writer cannot give such a tensor back (PyTorch's state_dict has no "" key either): refuse it on reading */
  PetscCheck(klen > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: a tensor has an empty name \"\"; every tensor needs a name", what);
  memset(t, 0, sizeof(*t));
  memcpy(t->name, key, klen + 1);
  PetscCheck(json_is_object(val), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\": expected a JSON object {dtype, shape, data_offsets}", what,
             key);
  json_t *dt = json_object_get(val, "dtype"), *shape = json_object_get(val, "shape"), *offs = json_object_get(val, "data_offsets");
  PetscCheck(json_is_string(dt), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\": \"dtype\" %s", what, key,
             dt ? "is not a string" : "is missing");
  PetscCall(MapDTypeFromName(json_string_value(dt), &t->dtype, &isize, &found));
  if (found) PetscCall(PetscStrncpy(t->dtype_name, json_string_value(dt), sizeof(t->dtype_name)));
  PetscCheck(found, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: tensor \"%s\": unsupported dtype \"%.32s\" (known: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL U16 U32 U64 F8_E5M2 F8_E4M3 F8_E8M0 C64)",
             what, key, json_string_value(dt));
  PetscCheck(json_is_array(shape), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\": \"shape\" %s", what, key,
             shape ? "is not an array" : "is missing");
  size_t nd = json_array_size(shape);
  PetscCheck(nd <= MAP_MAX_NDIM, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: tensor \"%s\": %zu dimensions, at most %d supported", what, key, nd, MAP_MAX_NDIM);
  t->ndim        = (int)nd;
  uint64_t numel = 1;
  for (size_t d = 0; d < nd; d++) {
    uint64_t s;
    PetscCall(map_get_uint(what, key, "shape", json_array_get(shape, d), &s));
    PetscCheck(!__builtin_mul_overflow(numel, s, &numel) && numel <= (uint64_t)INT64_MAX, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "%s: tensor \"%s\": the number of elements overflows 64 bits", what, key);
    t->shape[d] = (int64_t)s;
  }
  t->numel = (int64_t)numel;
  PetscCheck(json_is_array(offs) && json_array_size(offs) == 2, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: tensor \"%s\": \"data_offsets\" must be an array [begin, end]", what, key);
  PetscCall(map_get_uint(what, key, "data_offsets", json_array_get(offs, 0), &t->begin));
  PetscCall(map_get_uint(what, key, "data_offsets", json_array_get(offs, 1), &t->end));
  PetscCheck(t->begin <= t->end, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor \"%s\": data_offsets [%llu, %llu] end before begin", what, key,
             (unsigned long long)t->begin, (unsigned long long)t->end);
  PetscCheck(t->end <= data_size, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: tensor \"%s\": data_offsets [%llu, %llu] end past the data section of %llu bytes (file truncated?)", what, key,
             (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_size);
  uint64_t nbytes;
  PetscCheck(!__builtin_mul_overflow(numel, (uint64_t)isize, &nbytes) && nbytes == t->end - t->begin, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: tensor \"%s\": shape holds %llu elements of %s = %llu bytes, but data_offsets [%llu, %llu] span %llu bytes", what, key,
             (unsigned long long)numel, json_string_value(dt), (unsigned long long)(numel * isize), (unsigned long long)t->begin,
             (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
  PetscFunctionReturn(0);
}

static PetscErrorCode map_parse_metadata(const char *what, json_t *meta, char **metadata)
{
  const char *k;
  json_t     *v;

  PetscFunctionBegin;
  if (json_is_null(meta)) PetscFunctionReturn(0);
  PetscCheck(json_is_object(meta), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: \"__metadata__\" must be an object of strings", what);
  json_object_foreach(meta, k, v)
  {
    PetscCheck(json_is_string(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: \"__metadata__\": value of key \"%.64s\" is not a string", what, k);
  }
  if (metadata) {
    char *s = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER);
    PetscCheck(s, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: cannot serialise __metadata__", what);
    size_t         l    = strlen(s);
    PetscErrorCode ierr = PetscMalloc1(l + 1, metadata);
    if (!ierr) memcpy(*metadata, s, l + 1);
    free(s);
    PetscCall(ierr);
  }
  PetscFunctionReturn(0);
}

/* the body of MapSafetensorsParseHeader; *root is released by the caller on every path */
static PetscErrorCode map_parse_header(const char *what, const char *json, size_t json_len, uint64_t data_size, json_t **root,
                                       map_sort_entry **entp, int *ntensors, MapTensorInfo **tensors, char **metadata)
{
  json_error_t    jerr;
  map_sort_entry *ent;
  const char     *key;
  json_t         *val;
  size_t          n = 0, cnt = 0;

  PetscFunctionBegin;
  PetscCheck(json_len <= MAP_ST_MAX_HEADER, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: header length %zu exceeds the limit of %llu bytes", what,
             json_len, MAP_ST_MAX_HEADER);
  PetscCheck(json_len > 0 && json[0] == '{', PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: the header does not start with '{' (not a safetensors file?)", what);
  *root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
  PetscCheck(*root, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: header is not valid JSON: %s (at byte %d)", what, jerr.text, jerr.position);
  PetscCheck(json_is_object(*root), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: header is not a JSON object", what);
  n = json_object_size(*root);
  PetscCheck(n <= (size_t)INT32_MAX, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: too many tensors (%zu)", what, n);
  PetscCall(PetscMalloc1(n ? n : 1, entp));
  ent = *entp;
  json_object_foreach(*root, key, val)
  {
    if (!strcmp(key, "__metadata__")) continue;
    PetscCall(map_parse_tensor(what, key, val, data_size, &ent[cnt].info));
    ent[cnt].order = (int)cnt;
    cnt++;
  }
  if (metadata) *metadata = NULL;
  if ((val = json_object_get(*root, "__metadata__"))) PetscCall(map_parse_metadata(what, val, metadata));
  qsort(ent, cnt, sizeof(*ent), map_cmp_begin);
  /* the reference reader's rule: sorted by offset, each tensor starts where the previous ended */
  uint64_t pos = 0;
  for (size_t i = 0; i < cnt; i++) {
    const MapTensorInfo *t = &ent[i].info;
    PetscCheck(t->begin == pos, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "%s: tensor \"%s\": data_offsets [%llu, %llu] %s: expected it to begin at byte %llu, where %s%s%s ends", what, t->name,
               (unsigned long long)t->begin, (unsigned long long)t->end, t->begin < pos ? "overlap the previous tensor" : "leave a hole",
               (unsigned long long)pos, i ? "tensor \"" : "the data section begins", i ? ent[i - 1].info.name : "", i ? "\"" : "");
    pos = t->end;
  }
  PetscCheck(pos == data_size, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: the tensors end at data byte %llu but the data section holds %llu bytes (%s)", what, (unsigned long long)pos,
             (unsigned long long)data_size, pos < data_size ? "trailing bytes after the last tensor" : "file truncated");
  PetscCall(PetscMalloc1(cnt ? cnt : 1, tensors));
  for (size_t i = 0; i < cnt; i++) (*tensors)[i] = ent[i].info;
  *ntensors = (int)cnt;
  PetscFunctionReturn(0);
}

/*
  MapSafetensorsParseHeader - see safetensors.h. The checks follow the reference reader
  (huggingface/safetensors): a JSON object starting with '{', known dtypes, non-negative shapes,
  numel * itemsize == end - begin, offsets contiguous from 0 and the last end equal to data_size.
  Duplicate keys are an error (JSON_REJECT_DUPLICATES), as is a header over 100 MB.
*/
PetscErrorCode MapSafetensorsParseHeader(const char *what, const char *json, size_t json_len, uint64_t data_size, int *ntensors,
                                         MapTensorInfo **tensors, char **metadata)
{
  json_t         *root = NULL;
  map_sort_entry *ent  = NULL;
  MapTensorInfo  *t    = NULL;
  char           *meta = NULL;
  int             n    = 0;
  PetscErrorCode  ierr;

  PetscFunctionBegin;
  *ntensors = 0;
  *tensors  = NULL;
  if (metadata) *metadata = NULL;
  ierr = map_parse_header(what, json, json_len, data_size, &root, &ent, &n, &t, metadata ? &meta : NULL);
  /* release whatever the parse allocated, also when it failed half-way */
  json_decref(root);
  PetscCall(PetscFree(ent));
  if (ierr) {
    PetscCall(PetscFree(meta));
    PetscCall(PetscFree(t));
    PetscCall(ierr);
  }
  *ntensors = n;
  *tensors  = t;
  if (metadata) *metadata = meta;
  PetscFunctionReturn(0);
}
